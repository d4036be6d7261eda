// The web-accessible extension frame the content script embeds in the page.
let bc = null;
window.addEventListener('message', async (e) => {
  const x = e.data;
  if (!x || x.cmd !== 'bridge') return;
  const pagePort = e.ports[0];
  const pageEnd = CB.mpEnd(pagePort, 'page');
  const diag = {
    t: 'diag',
    where: 'frame',
    kind: x.kind,
    eventOrigin: e.origin,
    ancestorOrigins: [...(location.ancestorOrigins || [])],
    runtime: !!(globalThis.chrome && chrome.runtime && chrome.runtime.id),
  };
  try {
    if (x.kind === 'bc') {
      bc ??= new BroadcastChannel('chan-bench');
      const ch = Math.random().toString(36).slice(2);
      CB.bridge(pageEnd, CB.bcEnd(bc, ch, 'frame', 'off'));
      pagePort.postMessage(diag);
    } else if (x.kind === 'rt') {
      CB.bridge(pageEnd, CB.rtEnd(chrome.runtime.connect({ name: 'direct:' + x.mode }), x.mode, 'rt'));
      pagePort.postMessage(diag);
    } else if (x.kind === 'sw') {
      diag.controller = !!(navigator.serviceWorker && navigator.serviceWorker.controller);
      const reg = await Promise.race([navigator.serviceWorker.getRegistration(), CB.sleep(2000).then(() => 'timeout')]);
      diag.registration = reg === 'timeout' ? 'timeout' : reg ? reg.scope : null;
      diag.active = !!(reg && reg.active);
      pagePort.postMessage(diag);
      if (reg && reg.active) reg.active.postMessage({ t: 'handoff' }, [pagePort]);
    } else if (x.kind === 'shw') {
      const w = new SharedWorker('shw.js');
      pagePort.postMessage(diag);
      w.port.postMessage({ t: 'handoff' }, [pagePort]);
    } else if (x.kind === 'views') {
      const views = chrome.extension && chrome.extension.getViews ? chrome.extension.getViews() : null;
      diag.views = views
        ? views.map((v) => {
            try {
              return v.location.pathname;
            } catch {
              return '?';
            }
          })
        : 'no chrome.extension.getViews';
      diag.clientsViaRuntime = chrome.runtime.getContexts ? 'has getContexts' : 'no getContexts';
      pagePort.postMessage(diag);
      const off =
        views &&
        views.find((v) => {
          try {
            return v.location.pathname === '/offscreen.html';
          } catch {
            return false;
          }
        });
      if (off) off.postMessage({ t: 'port' }, location.origin, [pagePort]);
    } else {
      throw new Error('unknown kind ' + x.kind);
    }
  } catch (err) {
    diag.error = String(err);
    pagePort.postMessage(diag);
  }
});
