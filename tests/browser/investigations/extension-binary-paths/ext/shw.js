// A SharedWorker of the extension origin that passes a frame's MessagePort to the offscreen document.
let off = null;
const pending = [];
onconnect = (e) => {
  const p = e.ports[0];
  p.onmessage = (ev) => {
    if (ev.data.t === 'offscreen') {
      off = p;
      for (const [m, ports] of pending.splice(0)) off.postMessage(m, ports);
    } else if (ev.data.t === 'handoff') {
      const m = { t: 'port', via: 'sharedworker' };
      const ports = [...ev.ports];
      if (off) off.postMessage(m, ports);
      else pending.push([m, ports]);
    }
  };
};
