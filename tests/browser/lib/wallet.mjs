// The test wallet of shared/browser-testing.md: an EIP-1193 provider in the page whose key stays in Node
// (viem). Announced through EIP-6963 and set as window.ethereum. It counts every call, and can be told to
// refuse (4001) a method, so the rejection path is tested.
import { privateKeyToAccount, generatePrivateKey } from 'viem/accounts';

let walletSeq = 0;

export async function installTestWallet(context, { privateKey = generatePrivateKey(), chainId = 1 } = {}) {
  const account = privateKeyToAccount(privateKey);
  const state = { calls: [], refuse: new Set() };
  const fn = `__chordialTestWallet${++walletSeq}`;
  await context.exposeFunction(fn, async (method, params) => {
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
  });
  await context.addInitScript((fnName) => {
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
  }, fn);
  return {
    address: account.address,
    account,
    calls: state.calls,
    count: (method) => state.calls.filter((c) => c.method === method).length,
    refuse: (method) => state.refuse.add(method),
    allow: (method) => state.refuse.delete(method),
  };
}
