// Content script (isolated world). The page hands over a MessagePort; the content script connects it to a path.
(() => {
  const EXT_ORIGIN = new URL(chrome.runtime.getURL('')).origin;
  let framePromise = null;
  function frame() {
    framePromise ??= new Promise((resolve, reject) => {
      const f = document.createElement('iframe');
      f.src = chrome.runtime.getURL('frame.html');
      f.style.cssText = 'width:1px;height:1px;border:0;position:absolute;left:-10px';
      f.onload = () => resolve(f);
      (document.body || document.documentElement).appendChild(f);
      setTimeout(() => reject(new Error('frame load timeout')), 5000);
    });
    return framePromise;
  }
  window.addEventListener('message', async (e) => {
    if (e.source !== window || !e.data || e.data.ns !== 'chan-bench' || e.data.cmd !== 'open') return;
    const pagePort = e.ports[0];
    const { path, mode } = e.data;
    try {
      if (path === 'p1' || path === 'p2') {
        const port = chrome.runtime.connect({ name: (path === 'p1' ? 'relay:' : 'direct:') + mode });
        CB.bridge(CB.mpEnd(pagePort, 'page'), CB.rtEnd(port, mode, 'rt'));
        port.onDisconnect.addListener(() =>
          pagePort.postMessage({
            t: 'diag',
            where: 'cs',
            error: 'runtime port disconnected ' + (chrome.runtime.lastError?.message || ''),
          }),
        );
      } else if (path.startsWith('p3-')) {
        const f = await frame();
        f.contentWindow.postMessage({ cmd: 'bridge', kind: path.slice(3), mode }, EXT_ORIGIN, [pagePort]);
      } else throw new Error('unknown path ' + path);
    } catch (err) {
      pagePort.postMessage({ t: 'diag', where: 'cs', error: String(err) });
    }
  });
})();
