// The content script's relay (isolated world), between the page's window channel and one runtime Port.
//
// - It takes only messages whose `event.source` is this very window (not an iframe, not another tab) and
//   that carry Chordial's namespace and direction; it forwards only {id, method, params} — nothing a page
//   writes can name an origin, the background takes that from the Port's sender.
// - Replies and events go back with postMessage(msg, location.origin), never '*'.
// - The Port opens on the page's first request. When it drops (the service worker stopped, the extension
//   reloaded), every request still pending is answered 4900, and the Port reopens at once so that events keep
//   coming; if it cannot (the extension is gone) the page gets a `disconnect` event.
// - While requests are pending it pings the Port, which keeps the service worker awake (an approval window
//   may take the user a minute).

import { WINDOW_NS, TO_CONTENT, TO_PAGE, Kind, PAGE_PORT, isWindowMessage } from '../shared/protocol.js';
import { disconnected } from '../shared/errors.js';

export const KEEPALIVE_MS = 20_000;
/** A Port that lived less than this before dropping is not reopened eagerly (no reconnect storms). */
export const MIN_EAGER_LIFETIME_MS = 1_000;

export function startRelay({ win, connect, timers = globalThis, now = Date.now }) {
  let port = null;
  let portOpenedAt = 0;
  let gone = false; // the extension context is invalid: nothing will ever answer again
  const pending = new Set(); // request ids forwarded on the current Port
  let keepalive = null;

  const toPage = (msg) => win.postMessage({ ns: WINDOW_NS, to: TO_PAGE, ...msg }, win.location.origin);

  function openPort() {
    if (port) return port;
    if (gone) return null;
    let p;
    try {
      p = connect(PAGE_PORT);
    } catch {
      gone = true;
      toPage({ kind: Kind.EVENT, event: 'disconnect', data: disconnected('The Chordial extension is gone.').toJSON() });
      return null;
    }
    port = p;
    portOpenedAt = now();
    p.onMessage.addListener((msg) => {
      if (!msg || typeof msg !== 'object') return;
      if (msg.kind === Kind.RESPONSE) {
        if (!pending.delete(msg.id)) return;
        updateKeepalive();
        toPage({ kind: Kind.RESPONSE, id: msg.id, result: msg.result, error: msg.error });
      } else if (msg.kind === Kind.EVENT && typeof msg.event === 'string') {
        toPage({ kind: Kind.EVENT, event: msg.event, data: msg.data });
      }
    });
    p.onDisconnect.addListener(() => {
      if (port !== p) return;
      port = null;
      const lived = now() - portOpenedAt;
      for (const id of pending) {
        toPage({ kind: Kind.RESPONSE, id, error: disconnected('The Chordial background restarted.').toJSON() });
      }
      pending.clear();
      updateKeepalive();
      if (lived >= MIN_EAGER_LIFETIME_MS) openPort();
    });
    return p;
  }

  function updateKeepalive() {
    if (pending.size > 0 && !keepalive) {
      keepalive = timers.setInterval(() => {
        try {
          port?.postMessage({ kind: 'ping' });
        } catch {
          /* the disconnect handler deals with it */
        }
      }, KEEPALIVE_MS);
    } else if (pending.size === 0 && keepalive) {
      timers.clearInterval(keepalive);
      keepalive = null;
    }
  }

  function onWindowMessage(event) {
    if (event.source !== win) return;
    const data = event.data;
    if (!isWindowMessage(data, TO_CONTENT) || data.kind !== Kind.REQUEST) return;
    const { id, method, params } = data;
    if ((typeof id !== 'string' && !Number.isFinite(id)) || typeof method !== 'string') return;
    const p = openPort();
    if (!p) {
      toPage({ kind: Kind.RESPONSE, id, error: disconnected('The Chordial extension is gone.').toJSON() });
      return;
    }
    try {
      p.postMessage({ kind: Kind.REQUEST, id, method, params });
      pending.add(id);
      updateKeepalive();
    } catch {
      toPage({ kind: Kind.RESPONSE, id, error: disconnected().toJSON() });
    }
  }

  win.addEventListener('message', onWindowMessage);
  return {
    get port() {
      return port;
    },
    get pendingCount() {
      return pending.size;
    },
    stop() {
      win.removeEventListener('message', onWindowMessage);
      if (keepalive) timers.clearInterval(keepalive);
      port?.disconnect();
    },
  };
}
