// window.chordial — the provider a dApp sees (main world). EIP-1193 shaped:
//   request({method, params}) → Promise        on(event, fn) / removeListener(event, fn)
// It talks to the content script over the namespaced window channel; the content script relays to the
// extension. `chordial_requestAccess` is orchestrated here because the one wallet signature has to happen
// in the page, where the wallet is (see wallet.js).

import { WINDOW_NS, TO_CONTENT, TO_PAGE, Kind, PUBLIC_METHODS, EVENTS, isWindowMessage } from '../shared/protocol.js';
import { ProviderError, ErrorCode, fromPlain, unsupported, invalidParams, rejected } from '../shared/errors.js';
import { dataToWire, wireToData } from '../shared/payload.js';
import { obtainDelegation } from './wallet.js';

export function createProvider({ win, findWallet }) {
  const pending = new Map(); // id → {resolve, reject}
  const listeners = new Map(EVENTS.map((e) => [e, new Set()]));
  let seq = 0;
  let accessInFlight = null;
  let portOpened = false;

  // Raw call through the content script (any method the background knows, internal steps included).
  function call(method, params) {
    portOpened = true;
    const id = `chordial-${Date.now().toString(36)}-${++seq}`;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      win.postMessage({ ns: WINDOW_NS, to: TO_CONTENT, kind: Kind.REQUEST, id, method, params }, win.location.origin);
    });
  }

  function emit(event, payload) {
    for (const fn of [...(listeners.get(event) ?? [])]) {
      try {
        fn(payload);
      } catch (e) {
        // A dApp listener that throws must not break the others.
        win.console?.error?.('chordial: listener for', event, 'threw', e);
      }
    }
  }

  win.addEventListener('message', (event) => {
    if (event.source !== win || !isWindowMessage(event.data, TO_PAGE)) return;
    const msg = event.data;
    if (msg.kind === Kind.RESPONSE) {
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      if (msg.error) p.reject(fromPlain(msg.error));
      else p.resolve(msg.result);
    } else if (msg.kind === Kind.EVENT && listeners.has(msg.event)) {
      emit(msg.event, eventPayload(msg.event, msg.data));
    }
  });

  async function requestAccess() {
    const first = await call('chordial_requestAccess');
    if (!first?.needsDelegation) return { address: first.address };
    try {
      return await obtainDelegation({ call, findWallet });
    } catch (e) {
      // Tell the background to drop the grant; nothing stays half-done.
      call('chordial_internal_abortAccess').catch(() => {});
      throw e;
    }
  }

  const provider = {
    isChordial: true,

    async request(args) {
      if (!args || typeof args !== 'object' || typeof args.method !== 'string') {
        throw invalidParams('request expects {method, params}');
      }
      const { method, params } = args;
      if (!PUBLIC_METHODS.includes(method)) throw unsupported(method);
      switch (method) {
        case 'chordial_requestAccess':
          // Concurrent calls share one approval and one signature.
          if (!accessInFlight) {
            accessInFlight = requestAccess().finally(() => {
              accessInFlight = null;
            });
          }
          return accessInFlight;
        case 'chordial_send': {
          const p = Array.isArray(params) ? params[0] : params;
          if (!p || typeof p !== 'object') throw invalidParams('chordial_send expects {to, data}');
          const data = dataToWire(p.data);
          if (!data) throw invalidParams('chordial_send: data must be a string or bytes');
          return call(method, { to: p.to, data });
        }
        default:
          return call(method, params);
      }
    },

    on(event, fn) {
      if (!listeners.has(event)) throw invalidParams(`Unknown event: ${String(event)}`);
      if (typeof fn !== 'function') throw invalidParams('listener must be a function');
      listeners.get(event).add(fn);
      // The content script opens its Port on the first request; a page that only listens needs one too, or
      // messages waiting for it would stay in the extension until it calls something.
      if (!portOpened && event !== 'disconnect') {
        portOpened = true;
        call('chordial_status').catch(() => {
          portOpened = false;
        });
      }
      return provider;
    },

    removeListener(event, fn) {
      listeners.get(event)?.delete(fn);
      return provider;
    },
  };
  provider.off = provider.removeListener;
  return provider;
}

function eventPayload(event, data) {
  if (event === 'message') {
    return { from: data.from, data: wireToData(data.data), id: data.id, sentAt: data.sentAt };
  }
  if (event === 'disconnect') return fromPlain(data);
  return data;
}

export { ProviderError, ErrorCode, rejected };
