// The content relay (isolated world) and window.chordial (main world), on a fake window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRelay, KEEPALIVE_MS } from '../../../extension/content/relay.js';
import { createProvider } from '../../../extension/inpage/provider.js';
import { watchWallets } from '../../../extension/inpage/wallet.js';
import { WINDOW_NS } from '../../../extension/shared/protocol.js';
import { FakeWindow, FakeTimers, until } from './fakes.mjs';

/** A Port seen from the content script; `toBackground` holds what it sent. */
class ContentPort {
  constructor() {
    this.toBackground = [];
    this.msgListeners = [];
    this.discListeners = [];
    this.connected = true;
  }
  onMessage = { addListener: (fn) => this.msgListeners.push(fn) };
  onDisconnect = { addListener: (fn) => this.discListeners.push(fn) };
  postMessage(m) {
    if (!this.connected) throw new Error('disconnected');
    this.toBackground.push(structuredClone(m));
  }
  disconnect() {
    this.connected = false;
  }
  reply(m) {
    for (const fn of this.msgListeners) fn(structuredClone(m));
  }
  drop() {
    this.connected = false;
    for (const fn of this.discListeners) fn();
  }
}

function relayHarness({ connectThrows = false } = {}) {
  const win = new FakeWindow('https://dapp.example');
  const ports = [];
  const timers = new FakeTimers();
  let clock = 0;
  const relay = startRelay({
    win,
    timers,
    now: () => clock,
    connect: (name) => {
      assert.equal(name, 'chordial-page');
      if (connectThrows) throw new Error('Extension context invalidated.');
      const p = new ContentPort();
      ports.push(p);
      return p;
    },
  });
  const toPage = () => win.sent.filter((s) => s.data.to === 'page');
  const request = (id, method, extra = {}) =>
    win.postMessage(
      { ns: WINDOW_NS, to: 'content', kind: 'request', id, method, params: {}, ...extra },
      win.location.origin,
    );
  return { win, ports, relay, timers, toPage, request, tick: (ms) => (clock += ms) };
}

test("relay: forwards only this window's namespaced requests, and only id/method/params", async () => {
  const h = relayHarness();
  h.request(1, 'chordial_status', { origin: 'https://evil.example', sender: 'x' });
  await until(() => h.ports.length === 1 && h.ports[0].toBackground.length === 1);
  assert.deepEqual(h.ports[0].toBackground[0], { kind: 'request', id: 1, method: 'chordial_status', params: {} });
  // From an iframe or another window: event.source is not this window.
  h.win.deliver({ ns: WINDOW_NS, to: 'content', kind: 'request', id: 2, method: 'chordial_status' }, { other: true });
  // Wrong namespace, wrong direction, malformed.
  h.win.deliver({ ns: 'other', to: 'content', kind: 'request', id: 3, method: 'chordial_status' }, h.win);
  h.win.deliver({ ns: WINDOW_NS, to: 'page', kind: 'request', id: 4, method: 'chordial_status' }, h.win);
  h.win.deliver({ ns: WINDOW_NS, to: 'content', kind: 'request', id: { x: 1 }, method: 'chordial_status' }, h.win);
  h.win.deliver('a string', h.win);
  h.request(5, 'chordial_status');
  await until(() => h.ports[0].toBackground.length === 2);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    h.ports[0].toBackground.map((m) => m.id),
    [1, 5],
  );
  assert.equal(h.ports.length, 1, 'one Port per page');
});

test('relay: replies and events go to the page\'s own origin, never "*"', async () => {
  const h = relayHarness();
  h.request('a', 'chordial_status');
  await until(() => h.ports.length === 1);
  h.ports[0].reply({ kind: 'response', id: 'a', result: { installed: true } });
  h.ports[0].reply({ kind: 'event', event: 'message', data: { from: '0x1' } });
  h.ports[0].reply({ kind: 'response', id: 'never-asked', result: 1 }); // not pending: dropped
  await until(() => h.toPage().length === 2);
  for (const s of h.toPage()) assert.equal(s.targetOrigin, 'https://dapp.example');
  assert.equal(
    h.win.sent.some((s) => s.targetOrigin === '*'),
    false,
  );
  assert.deepEqual(h.toPage()[0].data.result, { installed: true });
  assert.equal(h.toPage()[1].data.event, 'message');
});

test('relay: a dropped Port answers pending requests 4900, then reconnects', async () => {
  const h = relayHarness();
  h.request(1, 'chordial_requestAccess');
  h.request(2, 'chordial_status');
  await until(() => h.ports.length === 1 && h.ports[0].toBackground.length === 2);
  h.ports[0].reply({ kind: 'response', id: 2, result: {} });
  // Pending requests keep the service worker awake with pings.
  h.timers.advance(KEEPALIVE_MS);
  assert.deepEqual(h.ports[0].toBackground.at(-1), { kind: 'ping' });
  h.tick(5_000);
  h.ports[0].drop();
  await until(() => h.toPage().some((s) => s.data.id === 1));
  const r = h.toPage().find((s) => s.data.id === 1).data;
  assert.equal(r.error.code, 4900);
  assert.equal(h.toPage().filter((s) => s.data.id === 2).length, 1, 'the answered one is not answered twice');
  assert.equal(h.ports.length, 2, 'reopened at once so events keep coming');
  assert.equal(h.timers.pending, 0, 'no pings without pending requests');
  h.request(3, 'chordial_status');
  await until(() => h.ports[1].toBackground.length === 1);
});

test('relay: when the extension is gone, requests get 4900 and the page a disconnect event', async () => {
  const h = relayHarness({ connectThrows: true });
  h.request(1, 'chordial_status');
  await until(() => h.toPage().length === 2);
  assert.equal(h.toPage()[0].data.event, 'disconnect');
  assert.equal(h.toPage()[1].data.error.code, 4900);
});

/** A provider wired to a fake content script that answers with `backend(method, params)`. */
function providerHarness(backend, wallet) {
  const win = new FakeWindow('https://dapp.example');
  const seen = [];
  win.addEventListener('message', (ev) => {
    const m = ev.data;
    if (ev.source !== win || m?.ns !== WINDOW_NS || m.to !== 'content') return;
    seen.push(m);
    Promise.resolve()
      .then(() => backend(m.method, m.params))
      .then(
        (result) =>
          win.postMessage({ ns: WINDOW_NS, to: 'page', kind: 'response', id: m.id, result }, win.location.origin),
        (error) =>
          win.postMessage({ ns: WINDOW_NS, to: 'page', kind: 'response', id: m.id, error }, win.location.origin),
      );
  });
  if (wallet) win.ethereum = wallet;
  const provider = createProvider({ win, findWallet: watchWallets(win) });
  return { win, provider, seen };
}

function testWallet({ refuse = false } = {}) {
  const calls = [];
  return {
    calls,
    async request({ method, params }) {
      calls.push(method);
      if (method === 'eth_requestAccounts') return ['0x' + '11'.repeat(20)];
      if (method === 'eth_chainId') return '0x1';
      if (method === 'personal_sign') {
        if (refuse) throw Object.assign(new Error('User denied'), { code: 4001 });
        assert.match(params[0], /^0x[0-9a-f]+$/);
        return '0x' + 'aa'.repeat(65);
      }
      throw new Error(`unexpected ${method}`);
    },
  };
}

test('window.chordial: unknown methods and bad shapes fail locally with typed errors', async () => {
  const h = providerHarness(() => null);
  await assert.rejects(h.provider.request({ method: 'eth_sendTransaction' }), { code: 4200 });
  await assert.rejects(h.provider.request({ method: 'chordial_internal_completeDelegation' }), { code: 4200 });
  await assert.rejects(h.provider.request('chordial_status'), { code: -32602 });
  await assert.rejects(h.provider.request({ method: 'chordial_send', params: { to: '0x', data: 5 } }), {
    code: -32602,
  });
  assert.throws(() => h.provider.on('nope', () => {}), { code: -32602 });
  assert.equal(h.seen.length, 0, 'nothing reached the content script');
});

test('window.chordial: bytes and strings are sent in wire form; events arrive decoded', async () => {
  const h = providerHarness((method, params) => ({ method, params }));
  const r = await h.provider.request({ method: 'chordial_send', params: { to: '0xab', data: new Uint8Array([1, 2]) } });
  assert.deepEqual(r.params, { to: '0xab', data: { base64: 'AQI=' } });
  const got = [];
  const fn = (m) => got.push(m);
  h.provider.on('message', fn);
  h.win.postMessage(
    {
      ns: WINDOW_NS,
      to: 'page',
      kind: 'event',
      event: 'message',
      data: { from: '0x1', data: { base64: 'AQI=' }, id: 'i', sentAt: 1 },
    },
    h.win.location.origin,
  );
  await until(() => got.length === 1);
  assert.deepEqual([...got[0].data], [1, 2]);
  h.provider.removeListener('message', fn);
  h.win.postMessage(
    {
      ns: WINDOW_NS,
      to: 'page',
      kind: 'event',
      event: 'message',
      data: { from: '0x1', data: { text: 'x' }, id: 'j', sentAt: 2 },
    },
    h.win.location.origin,
  );
  await new Promise((r) => setImmediate(r));
  assert.equal(got.length, 1);
});

test('requestAccess: one signature through window.ethereum, SIWE text signed as UTF-8 hex', async () => {
  const wallet = testWallet();
  const steps = [];
  const h = providerHarness((method, params) => {
    steps.push(method);
    if (method === 'chordial_requestAccess') return { needsDelegation: true };
    if (method === 'chordial_internal_delegationRequest')
      return { message: `sign for ${params.address} on ${params.chainId}` };
    if (method === 'chordial_internal_completeDelegation') return { address: '0x' + '11'.repeat(20) };
    throw { code: 4200, message: method };
  }, wallet);
  const [a, b] = await Promise.all([
    h.provider.request({ method: 'chordial_requestAccess' }),
    h.provider.request({ method: 'chordial_requestAccess' }),
  ]);
  assert.deepEqual(a, { address: '0x' + '11'.repeat(20) });
  assert.deepEqual(b, a);
  assert.deepEqual(wallet.calls, ['eth_requestAccounts', 'eth_chainId', 'personal_sign'], 'one signature');
  assert.deepEqual(steps, [
    'chordial_requestAccess',
    'chordial_internal_delegationRequest',
    'chordial_internal_completeDelegation',
  ]);
});

test('requestAccess: a refused signature is 4001 and the background is told to drop the grant', async () => {
  const wallet = testWallet({ refuse: true });
  const steps = [];
  const h = providerHarness((method) => {
    steps.push(method);
    if (method === 'chordial_requestAccess') return { needsDelegation: true };
    if (method === 'chordial_internal_delegationRequest') return { message: 'text' };
    return null;
  }, wallet);
  await assert.rejects(h.provider.request({ method: 'chordial_requestAccess' }), { code: 4001 });
  await until(() => steps.includes('chordial_internal_abortAccess'));
  assert.equal(steps.includes('chordial_internal_completeDelegation'), false);
});

test('requestAccess: an EIP-6963 wallet is preferred over window.ethereum', async () => {
  const legacy = testWallet();
  const announced = testWallet();
  const h = providerHarness((method) => {
    if (method === 'chordial_requestAccess') return { needsDelegation: true };
    if (method === 'chordial_internal_delegationRequest') return { message: 'text' };
    return { address: '0x' + '11'.repeat(20) };
  }, legacy);
  h.win.addEventListener('eip6963:requestProvider', () => {
    const ev = new Event('eip6963:announceProvider');
    ev.detail = { info: { rdns: 'test.wallet' }, provider: announced };
    h.win.dispatchEvent(ev);
  });
  await h.provider.request({ method: 'chordial_requestAccess' });
  assert.equal(announced.calls.length, 3);
  assert.equal(legacy.calls.length, 0);
});

test('requestAccess: no wallet at all is 4100 with a clear message', async () => {
  const h = providerHarness((method) => (method === 'chordial_requestAccess' ? { needsDelegation: true } : null));
  await assert.rejects(h.provider.request({ method: 'chordial_requestAccess' }), {
    code: 4100,
    message: /No Ethereum wallet/,
  });
});

test('window.chordial: registering a listener opens the channel once (so waiting messages can arrive)', async () => {
  const h = providerHarness(() => ({ installed: true }));
  h.provider.on('disconnect', () => {});
  assert.equal(h.seen.length, 0, 'disconnect alone does not need the channel');
  h.provider.on('message', () => {});
  h.provider.on('presence', () => {});
  await until(() => h.seen.length === 1);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    h.seen.map((m) => m.method),
    ['chordial_status'],
  );
});
