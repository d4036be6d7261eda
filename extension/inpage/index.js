// Inpage entry (main world, document_start): defines window.chordial and announces it, EIP-6963 style, with
// an event pair of its own: `chordial:requestProvider` → `chordial:announceProvider` {info, provider}.
import { createProvider } from './provider.js';
import { watchWallets } from './wallet.js';

// crypto.randomUUID exists only in secure contexts; plain http pages get window.chordial too.
function uuidV4() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const PROVIDER_INFO = Object.freeze({
  uuid: uuidV4(),
  name: 'Chordial',
  rdns: 'org.chordial',
  icon:
    'data:image/svg+xml,' +
    encodeURIComponent(
      '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="12" fill="none" ' +
        'stroke="#5b4cdb" stroke-width="3"/><circle cx="16" cy="4" r="3" fill="#5b4cdb"/>' +
        '<circle cx="26.4" cy="22" r="3" fill="#5b4cdb"/><circle cx="5.6" cy="22" r="3" fill="#5b4cdb"/></svg>',
    ),
});

if (!window.chordial) {
  const provider = Object.freeze(createProvider({ win: window, findWallet: watchWallets(window) }));
  Object.defineProperty(window, 'chordial', { value: provider, writable: false, configurable: false });
  const announce = () =>
    window.dispatchEvent(
      new CustomEvent('chordial:announceProvider', { detail: Object.freeze({ info: PROVIDER_INFO, provider }) }),
    );
  window.addEventListener('chordial:requestProvider', announce);
  announce();
}
