// The receiving end of every path.
// Chrome delivers a runtime.connect() to EVERY extension context with an onConnect listener, and a receiver's
// port.disconnect() closes the channel for all: so ports that are not ours are left alone, never disconnected.
if (!self.CFG.offscreenNoOnConnect) {
  chrome.runtime.onConnect.addListener((port) => {
    const [kind, mode] = port.name.split(':');
    if (kind === 'direct') CB.sink(CB.rtEnd(port, mode, kind), 'offscreen/' + kind);
  });
}
// Path 1 (status quo): the service worker relays with runtime.sendMessage {relay: id, m}; answers go back the same way.
const relays = new Map();
chrome.runtime.onMessage.addListener((x) => {
  if (!x || x.relay === undefined) return;
  if (!relays.has(x.relay)) {
    const id = x.relay;
    CB.sink(
      {
        kind: x.mode,
        label: 'relay',
        post(m) {
          chrome.runtime.sendMessage({ back: id, m }).catch((e) => console.warn(e));
        },
        on(f) {
          relays.set(id, f);
        },
        close() {
          relays.delete(id);
        },
      },
      'offscreen/relay-via-sw-sendMessage',
    );
  }
  relays.get(x.relay)?.(x.m);
});
if (chrome.runtime.onConnectExternal) {
  chrome.runtime.onConnectExternal.addListener((port) => {
    const [, mode] = port.name.split(':');
    CB.sink(CB.rtEnd(port, mode, 'ext'), 'offscreen/external');
  });
}

// BroadcastChannel, multiplexed by channel id (one sink per frame channel).
const bc = new BroadcastChannel('chan-bench');
const bcHandlers = new Map();
bc.onmessage = (e) => {
  const x = e.data;
  if (!x || x.to !== 'off') return;
  if (!bcHandlers.has(x.ch)) {
    const ch = x.ch;
    CB.sink(
      {
        kind: 'ab',
        label: 'bc',
        post(m) {
          bc.postMessage({ ch, to: 'frame', m });
        },
        on(f) {
          bcHandlers.set(ch, f);
        },
        close() {
          bcHandlers.delete(ch);
        },
      },
      'offscreen/bc',
    );
  }
  bcHandlers.get(x.ch)?.(x.m);
};

// MessagePorts handed over by the service worker, a SharedWorker, or a window reference.
if (navigator.serviceWorker) {
  navigator.serviceWorker.onmessage = (e) => {
    if (e.data && e.data.t === 'port') CB.sink(CB.mpEnd(e.ports[0], 'port'), 'offscreen/port-via-sw');
  };
}
try {
  const w = new SharedWorker('shw.js');
  w.port.onmessage = (e) => {
    if (e.data && e.data.t === 'port') CB.sink(CB.mpEnd(e.ports[0], 'port'), 'offscreen/port-via-sharedworker');
  };
  w.port.postMessage({ t: 'offscreen' });
} catch (e) {
  console.warn('no SharedWorker in offscreen', e);
}
window.addEventListener('message', (e) => {
  if (e.data && e.data.t === 'port' && e.ports[0]) CB.sink(CB.mpEnd(e.ports[0], 'port'), 'offscreen/port-via-window');
});
