// The one wallet signature, in the requesting page (extension pages cannot reach injected wallets).
//   1. find the wallet: EIP-6963 (`eip6963:requestProvider` → `eip6963:announceProvider`), else window.ethereum
//   2. eth_requestAccounts, eth_chainId
//   3. the node's SIWE text for this page's domain (the background fills in the domain from the Port sender)
//   4. personal_sign of that text → the node verifies and stores the delegation
// Any wallet refusal surfaces as 4001; the caller then tells the background to drop the pending grant.

import { ProviderError, ErrorCode, rejected } from '../shared/errors.js';

/** How long to wait for EIP-6963 announcements once requested (wallets answer synchronously in practice). */
export const EIP6963_WAIT_MS = 300;

/** Collects EIP-6963 announcements from page load on, so that wallets injected early are known. */
export function watchWallets(win) {
  const seen = [];
  const waiters = new Set();
  win.addEventListener('eip6963:announceProvider', (ev) => {
    const detail = ev?.detail;
    if (!detail?.provider || typeof detail.provider.request !== 'function') return;
    if (detail.provider.isChordial) return;
    if (seen.some((d) => d.provider === detail.provider)) return;
    seen.push(detail);
    for (const w of waiters) w();
  });
  /** The first EIP-6963 wallet, else window.ethereum, else null. */
  return async function findWallet() {
    if (seen.length === 0) {
      await new Promise((resolve) => {
        const done = () => {
          waiters.delete(done);
          win.clearTimeout(timer);
          resolve();
        };
        const timer = win.setTimeout(done, EIP6963_WAIT_MS);
        waiters.add(done);
        win.dispatchEvent(new win.Event('eip6963:requestProvider'));
      });
    }
    if (seen.length > 0) return seen[0].provider;
    const eth = win.ethereum;
    return eth && typeof eth.request === 'function' ? eth : null;
  };
}

function utf8ToHex(text) {
  const bytes = new TextEncoder().encode(text);
  let hex = '0x';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return hex;
}

/** A wallet error → a ProviderError; refusals keep 4001. */
function walletError(e, step) {
  if (e?.code === ErrorCode.USER_REJECTED) return rejected(`The wallet refused (${step}).`);
  if (e instanceof ProviderError) return e;
  return new ProviderError(ErrorCode.INTERNAL, `The wallet failed (${step}): ${e?.message ?? e}`);
}

/** Runs steps 1-4; resolves {address} once the node holds the delegation. */
export async function obtainDelegation({ call, findWallet }) {
  const wallet = await findWallet();
  if (!wallet) {
    throw new ProviderError(
      ErrorCode.UNAUTHORIZED,
      'No Ethereum wallet found in this page (EIP-6963 or window.ethereum).',
    );
  }
  let accounts;
  let chainIdHex;
  try {
    accounts = await wallet.request({ method: 'eth_requestAccounts' });
    chainIdHex = await wallet.request({ method: 'eth_chainId' });
  } catch (e) {
    throw walletError(e, 'accounts');
  }
  const address = Array.isArray(accounts) ? accounts[0] : null;
  if (typeof address !== 'string') throw new ProviderError(ErrorCode.UNAUTHORIZED, 'The wallet gave no account.');
  const chainId = Number.parseInt(String(chainIdHex), 16) || 1;
  const { message } = await call('chordial_internal_delegationRequest', { address, chainId });
  let signature;
  try {
    signature = await wallet.request({ method: 'personal_sign', params: [utf8ToHex(message), address] });
  } catch (e) {
    throw walletError(e, 'personal_sign');
  }
  const done = await call('chordial_internal_completeDelegation', { signature });
  return { address: done.address };
}
