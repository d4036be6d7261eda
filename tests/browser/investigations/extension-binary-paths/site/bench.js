// Page side (MAIN world). Opens a channel over one path, measures up (page→offscreen), per-chunk
// round trip, and down (offscreen→page).
(() => {
  const now = () => performance.now();
  function withTimeout(p, ms, what) {
    let t;
    return Promise.race([
      p.finally(() => clearTimeout(t)),
      new Promise((_, rej) => (t = setTimeout(() => rej(new Error('timeout: ' + what)), ms))),
    ]);
  }
  async function open(path, mode, extId) {
    let end;
    if (path === 'p4') {
      if (!(window.chrome && chrome.runtime && chrome.runtime.connect))
        throw new Error('no chrome.runtime.connect in the page');
      end = CB.rtEnd(chrome.runtime.connect(extId, { name: 'ext:' + mode }), mode, 'ext');
    } else if (path.startsWith('p3page-')) {
      // the page embeds the web-accessible extension frame itself (no content script involved)
      const extOrigin = `chrome-extension://${extId}`;
      window.__extFrame ??= new Promise((res, rej) => {
        const f = document.createElement('iframe');
        f.src = `${extOrigin}/frame.html`;
        f.onload = () => res(f);
        document.body.appendChild(f);
        setTimeout(() => rej(new Error('frame load timeout')), 5000);
      });
      const f = await window.__extFrame;
      const mc = new MessageChannel();
      f.contentWindow.postMessage({ cmd: 'bridge', kind: path.slice('p3page-'.length), mode }, extOrigin, [mc.port2]);
      end = CB.mpEnd(mc.port1, 'frame');
    } else {
      const mc = new MessageChannel();
      window.postMessage({ ns: 'chan-bench', cmd: 'open', path, mode }, location.origin, [mc.port2]);
      end = CB.mpEnd(mc.port1, 'cs');
    }
    const diags = [];
    let handler = null;
    end.on((m) => {
      if (m && m.t === 'diag') diags.push(m);
      else if (handler) handler(m);
    });
    const next = (pred) =>
      new Promise(
        (res) =>
          (handler = (m) => {
            if (pred(m)) res(m);
          }),
      );
    return { end, diags, setHandler: (h) => (handler = h), next };
  }

  async function test({ path, mode, extId, mib = 64, latN = 20, down = true, helloMs = 4000, phaseMs = 90000 }) {
    const r = { path, mode, mib };
    let ch;
    try {
      ch = await open(path, mode, extId);
      const t = now();
      ch.end.post({ t: 'hello' });
      const ack = await withTimeout(
        ch.next((m) => m.t === 'hello-ack'),
        helloMs,
        'hello-ack',
      );
      r.hello = { ms: +(now() - t).toFixed(1), where: ack.where };
    } catch (e) {
      r.error = String(e);
      r.diags = ch && ch.diags;
      return r;
    }
    const { end } = ch;
    const n = mib * 4,
      size = CB.CHUNK;
    try {
      // up: blast n chunks, ack at the end
      const t0 = now();
      const done = ch.next((m) => m.t === 'ack');
      for (let i = 0; i < n; i++) end.post({ t: 'c', i, size, d: CB.fromU8(end.kind, CB.makeChunk(i, size)) });
      const tPosted = now();
      end.post({ t: 'end', n });
      const ack = await withTimeout(done, phaseMs, 'up ack');
      const ms = now() - t0;
      r.up = {
        MBps: +((n * size) / 1e6 / (ms / 1000)).toFixed(1),
        ms: Math.round(ms),
        postLoopMs: Math.round(tPosted - t0),
        n: ack.n,
        bad: ack.bad,
        firstErr: ack.firstErr,
      };
    } catch (e) {
      r.up = { error: String(e) };
    }
    try {
      // per-chunk round trip: one 256 KiB chunk, wait for a small pong
      const lat = [];
      for (let i = 0; i < latN; i++) {
        const t = now();
        const p = ch.next((m) => m.t === 'pong' && m.i === i);
        end.post({ t: 'ping', i, size, d: CB.fromU8(end.kind, CB.makeChunk(i, size)) });
        const pong = await withTimeout(p, 10000, 'pong');
        if (!pong.ok) throw new Error('pong not ok');
        lat.push(now() - t);
      }
      lat.sort((a, b) => a - b);
      r.rtt256k = {
        median: +lat[lat.length >> 1].toFixed(2),
        p90: +lat[Math.floor(lat.length * 0.9)].toFixed(2),
        min: +lat[0].toFixed(2),
      };
    } catch (e) {
      r.rtt256k = { error: String(e) };
    }
    if (down) {
      try {
        let got = 0,
          bad = 0,
          firstErr = null;
        const t0 = now();
        const done = new Promise((res) => {
          ch.setHandler((m) => {
            if (m.t === 'c') {
              try {
                if (!CB.check(CB.toU8(end.kind, m.d), m.i, m.size)) bad++;
                got++;
              } catch (e) {
                bad++;
                firstErr ??= String(e);
              }
            } else if (m.t === 'end') res();
          });
        });
        end.post({ t: 'pull', n, size });
        await withTimeout(done, phaseMs, 'down end');
        const ms = now() - t0;
        r.down = { MBps: +((got * size) / 1e6 / (ms / 1000)).toFixed(1), ms: Math.round(ms), n: got, bad, firstErr };
      } catch (e) {
        r.down = { error: String(e) };
      }
    }
    r.diags = ch.diags;
    try {
      end.post({ t: 'bye' });
    } catch {}
    return r;
  }
  window.bench = { test };
})();
