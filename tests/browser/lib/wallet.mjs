// The test wallet of shared/browser-testing.md: an EIP-1193 provider in the page whose key stays in Node
// (viem). Announced through EIP-6963 and set as window.ethereum. It counts every call, and can be told to
// refuse (4001) a method, so the rejection path is tested.
//
//   installTestWallet(playwrightContext, opts)   every page of a Chromium profile (playwright-core)
//   installTestWalletInPage(puppeteerPage, opts) one page, before it navigates (puppeteer-core: Firefox)
//
// Both return the same handle ({address, account, calls, count, refuse, allow}); pass `wallet` (a handle
// from an earlier call) to the second to share one key and one call log across several pages.
import { privateKeyToAccount, generatePrivateKey } from 'viem/accounts';

let walletSeq = 0;

/** The Node side: one key, one call log, the EIP-1193 methods the extension's page side uses. */
function walletBackend({ privateKey = generatePrivateKey(), chainId = 1 } = {}) {
  const account = privateKeyToAccount(privateKey);
  const state = { calls: [], refuse: new Set() };
  const handle = async (method, params) => {
    state.calls.push({ method, params });
    if (state.refuse.has(method)) return { error: { code: 4001, message: 'User rejected the request.' } };
    switch (method) {
      case 'eth_requestAccounts':
      case 'eth_accounts':
        return { result: [account.address] };
      case 'eth_chainId':
        return { result: `0x${chainId.toString(16)}` };
      case 'personal_sign': {
        const [data, addr] = params;
        if (addr.toLowerCase() !== account.address.toLowerCase()) {
          return { error: { code: 4100, message: 'unknown account' } };
        }
        const message = /^0x[0-9a-fA-F]*$/.test(data) ? { raw: data } : data;
        return { result: await account.signMessage({ message }) };
      }
      default:
        return { error: { code: 4200, message: `unsupported ${method}` } };
    }
  };
  return {
    handle,
    address: account.address,
    account,
    calls: state.calls,
    count: (method) => state.calls.filter((c) => c.method === method).length,
    refuse: (method) => state.refuse.add(method),
    allow: (method) => state.refuse.delete(method),
  };
}

/** Runs in the page (main world) before its scripts: window.ethereum + the EIP-6963 announcement. */
function pageSide(fnName) {
  const provider = {
    isTestWallet: true,
    async request({ method, params }) {
      const r = await window[fnName](method, params ?? []);
      if (r.error) throw Object.assign(new Error(r.error.message), { code: r.error.code });
      return r.result;
    },
    on() {},
    removeListener() {},
  };
  window.ethereum = provider;
  const info = {
    uuid: '00000000-0000-4000-8000-000000000001',
    name: 'Test wallet',
    icon: 'data:,',
    rdns: 'test.wallet',
  };
  const announce = () =>
    window.dispatchEvent(new CustomEvent('eip6963:announceProvider', { detail: Object.freeze({ info, provider }) }));
  window.addEventListener('eip6963:requestProvider', announce);
  announce();
}

const publicHandle = ({ handle, ...rest }) => (void handle, rest);

/** Every page of a playwright-core context (a Chromium profile) gets the wallet. */
export async function installTestWallet(context, opts = {}) {
  const backend = walletBackend(opts);
  const fn = `__chordialTestWallet${++walletSeq}`;
  await context.exposeFunction(fn, backend.handle);
  await context.addInitScript(pageSide, fn);
  return publicHandle(backend);
}

const backends = new WeakMap(); // public handle → backend, so that pages can share one wallet

/** One puppeteer-core page (Firefox over WebDriver BiDi) gets the wallet; call before page.goto. */
export async function installTestWalletInPage(page, { wallet, ...opts } = {}) {
  let backend = wallet ? backends.get(wallet) : null;
  if (wallet && !backend) throw new Error('installTestWalletInPage: unknown wallet handle');
  backend ??= walletBackend(opts);
  const fn = `__chordialTestWallet${++walletSeq}`;
  await page.exposeFunction(fn, backend.handle);
  await page.evaluateOnNewDocument(pageSide, fn);
  const pub = wallet ?? publicHandle(backend);
  backends.set(pub, backend);
  return pub;
}
