importScripts('common.js', 'config.js');
self.directPolicy = 'drop';
self.stats = { relayPorts: 0, relayMsgs: 0, otherPortsSeen: 0, handoffs: 0, handoffClients: null };

async function ensureOffscreen() {
  let ctx = await chrome.runtime.getContexts({ contextTypes: ['OFFSCREEN_DOCUMENT'] });
  if (ctx.length) return ctx;
  try {
    await chrome.offscreen.createDocument({ url: 'offscreen.html', reasons: ['WORKERS'], justification: 'bench' });
  } catch (e) {
    if (!String(e).includes('single')) throw e;
  }
  for (let i = 0; i < 50; i++) {
    ctx = await chrome.runtime.getContexts({ contextTypes: ['OFFSCREEN_DOCUMENT'] });
    if (ctx.length) return ctx;
    await new Promise((r) => setTimeout(r, 100));
  }
  return ctx;
}
self.ensureOffscreen = ensureOffscreen;
ensureOffscreen();

// Path 1: the worker relays a content script's Port to a second Port into the offscreen document.
if (!self.CFG.noOnConnect)
  chrome.runtime.onConnect.addListener((port) => {
    const [kind, mode] = port.name.split(':');
    if (kind !== 'relay') {
      self.stats.otherPortsSeen++;
      // not ours: the offscreen document takes it. 'disconnect' closes our end; 'ignore' keeps it (and receives every message)
      if (self.directPolicy === 'disconnect') port.disconnect();
      else if (self.directPolicy === 'drop')
        return; // leave the port object alone
      else port.onMessage.addListener(() => (self.stats.otherMsgs = (self.stats.otherMsgs || 0) + 1));
      return;
    }
    self.stats.relayPorts++;
    const id = ++relaySeq;
    let back = null;
    relayBack.set(id, (m) => back && back(m));
    const toOffscreen = {
      kind: mode,
      label: 'off',
      post(m) {
        chrome.runtime.sendMessage({ relay: id, mode, m }).catch((e) => (self.stats.sendErr = String(e)));
      },
      on(f) {
        back = f;
      },
      close() {
        relayBack.delete(id);
      },
    };
    CB.bridge(CB.rtEnd(port, mode, 'cs'), toOffscreen, () => self.stats.relayMsgs++);
  });
let relaySeq = 0;
const relayBack = new Map();
chrome.runtime.onMessage.addListener((x) => {
  if (x && x.back !== undefined) relayBack.get(x.back)?.(x.m);
});

// Path 3 (sw handoff): an extension frame sends a MessagePort; pass it to the offscreen client.
self.addEventListener('message', (e) => {
  if (!e.data || e.data.t !== 'handoff') return;
  e.waitUntil(
    (async () => {
      self.stats.handoffs++;
      await ensureOffscreen();
      const all = await clients.matchAll({ includeUncontrolled: true, type: 'all' });
      const list = all.map((c) => `${new URL(c.url).pathname} ${c.type}/${c.frameType}`);
      self.stats.handoffClients = list;
      const port = e.ports[0];
      const off = all.find((c) => new URL(c.url).pathname === '/offscreen.html');
      if (!off) {
        port.postMessage({ t: 'diag', where: 'sw', error: 'no offscreen client', clients: list });
        return;
      }
      port.postMessage({ t: 'diag', where: 'sw', clients: list });
      off.postMessage({ t: 'port', via: 'sw' }, [port]);
    })(),
  );
});
