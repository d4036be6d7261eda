// Shared by every context of the bench extension and by the test page (classic script, defines CB).
// Endpoint kinds: 'ab' = ArrayBuffer over a web channel (MessagePort transfers it, BroadcastChannel clones it),
// 'sc' = ArrayBuffer over chrome.runtime with message_serialization structured_clone,
// 'b64' = base64 string over chrome.runtime (JSON), 'arr' = plain number array over chrome.runtime (JSON).
var CB = (() => {
  const CHUNK = 256 * 1024;
  const TEMPLATE = new Uint8Array(CHUNK);
  for (let j = 0; j < CHUNK; j++) TEMPLATE[j] = (j * 31 + 7) & 255;

  function describe(d) {
    let s;
    try {
      s = JSON.stringify(d);
    } catch {
      s = String(d);
    }
    return Object.prototype.toString.call(d) + ' ' + String(s).slice(0, 60);
  }
  function toU8(kind, d) {
    switch (kind) {
      case 'ab':
      case 'sc':
        if (d instanceof ArrayBuffer) return new Uint8Array(d);
        if (ArrayBuffer.isView(d)) return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
        throw new Error('not binary: ' + describe(d));
      case 'b64':
        return Uint8Array.fromBase64(d);
      case 'arr':
        return Uint8Array.from(d);
    }
    throw new Error('kind ' + kind);
  }
  function fromU8(kind, u8) {
    switch (kind) {
      case 'ab':
      case 'sc':
        return u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength ? u8.buffer : u8.slice().buffer;
      case 'b64':
        return u8.toBase64();
      case 'arr':
        return Array.from(u8);
    }
    throw new Error('kind ' + kind);
  }
  function makeChunk(i, size) {
    const u8 = new Uint8Array(size);
    u8.set(TEMPLATE.subarray(0, size));
    new DataView(u8.buffer).setUint32(0, i);
    return u8;
  }
  function check(u8, i, size) {
    return (
      u8.length === size &&
      new DataView(u8.buffer, u8.byteOffset, u8.byteLength).getUint32(0) === i &&
      u8[size - 1] === TEMPLATE[size - 1] &&
      u8[size >> 1] === TEMPLATE[size >> 1]
    );
  }

  function mpEnd(port, label) {
    return {
      kind: 'ab',
      label,
      post(m) {
        port.postMessage(m, m && m.d instanceof ArrayBuffer ? [m.d] : []);
      },
      on(f) {
        port.onmessage = (e) => f(e.data);
      },
      close() {
        port.close();
      },
    };
  }
  function rtEnd(port, kind, label) {
    return {
      kind,
      label,
      port,
      post(m) {
        port.postMessage(m);
      },
      on(f) {
        port.onMessage.addListener(f);
      },
      close() {
        try {
          port.disconnect();
        } catch {}
      },
    };
  }
  // One BroadcastChannel, multiplexed by channel id; BroadcastChannel clones (no transfer).
  function bcEnd(bc, ch, me, peer) {
    let h = null;
    bc.addEventListener('message', (e) => {
      const x = e.data;
      if (x && x.ch === ch && x.to === me && h) h(x.m);
    });
    return {
      kind: 'ab',
      label: 'bc',
      post(m) {
        bc.postMessage({ ch, to: peer, m });
      },
      on(f) {
        h = f;
      },
      close() {},
    };
  }

  function convert(m, from, to) {
    if (m && m.d !== undefined && from.kind !== to.kind) m = { ...m, d: fromU8(to.kind, toU8(from.kind, m.d)) };
    return m;
  }
  function bridge(a, b, onMsg) {
    a.on((m) => {
      if (onMsg) onMsg(m);
      try {
        b.post(convert(m, a, b));
      } catch (e) {
        a.post({ t: 'diag', where: 'bridge ' + a.label + '→' + b.label, error: String(e) });
      }
      if (m && m.t === 'bye') {
        a.close();
        b.close();
      }
    });
    b.on((m) => {
      try {
        a.post(convert(m, b, a));
      } catch (e) {
        a.post({ t: 'diag', where: 'bridge ' + b.label + '→' + a.label, error: String(e) });
      }
    });
  }

  // The receiving end of a benchmark (lives in the offscreen document).
  function sink(end, where) {
    let bytes = 0,
      n = 0,
      bad = 0,
      firstErr = null;
    end.on((m) => {
      try {
        switch (m.t) {
          case 'hello':
            end.post({ t: 'hello-ack', where, kind: end.kind });
            break;
          case 'c': {
            const u8 = toU8(end.kind, m.d);
            if (!check(u8, m.i, m.size)) bad++;
            bytes += u8.length;
            n++;
            break;
          }
          case 'end':
            end.post({ t: 'ack', n, bytes, bad, firstErr });
            n = bytes = bad = 0;
            firstErr = null;
            break;
          case 'ping': {
            const u8 = toU8(end.kind, m.d);
            end.post({ t: 'pong', i: m.i, ok: check(u8, m.i, m.size) });
            break;
          }
          case 'pull':
            for (let i = 0; i < m.n; i++)
              end.post({ t: 'c', i, size: m.size, d: fromU8(end.kind, makeChunk(i, m.size)) });
            end.post({ t: 'end', n: m.n });
            break;
          case 'bye':
            end.close();
            break;
        }
      } catch (e) {
        bad++;
        firstErr ??= String(e);
      }
    });
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  return { CHUNK, toU8, fromU8, makeChunk, check, mpEnd, rtEnd, bcEnd, bridge, sink, sleep };
})();
