// The background router: origin scoping, permissions, the one-signature flow, event routing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Router, GRANT_TTL_MS } from '../../../extension/background/router.js';
import { PermissionStore } from '../../../extension/background/permissions.js';
import { SettingsStore } from '../../../extension/background/settings.js';
import { rejected } from '../../../extension/shared/errors.js';
import { FakePort, FakeStorageArea, nodeError, pageSender, until } from './fakes.mjs';

const W = '0x' + '11'.repeat(20);
const OTHER = '0x' + '22'.repeat(20);
const SIG = '0x' + 'aa'.repeat(65);
const BAD_SIG = '0x' + 'bb'.repeat(65);
const EXT = 'chrome-extension://ext';

class FakeNodeOps {
  constructor() {
    this.delegated = false;
    this.calls = [];
    this.inbox = {};
  }
  ops(name) {
    return this.calls.filter((c) => c.op === name);
  }
  async call(op, args) {
    this.calls.push({ op, args });
    await Promise.resolve();
    switch (op) {
      case 'status':
        return {
          available: true,
          online: this.delegated,
          wallet: this.delegated ? W : null,
          delegated: this.delegated,
        };
      case 'delegationRequest':
        return `SIWE ${args.domain} ${args.address} ${args.chainId}`;
      case 'completeDelegation':
        if (args.signature === BAD_SIG) throw nodeError('BAD_SIGNATURE', 'signer is not the address');
        this.delegated = true;
        return { wallet: W, expires: 1e13 };
      case 'send':
        return { id: '7', result: 'delivered' };
      case 'lookup':
        return { address: args.address, sessions: [], online: false };
      case 'announce':
      case 'withdraw':
        return null;
      case 'discover':
        return [{ address: W, announcedAt: 1 }];
      case 'forgetOrigin':
      case 'pairState':
        return null;
      case 'pairComplete':
        if (args.code !== 'chordial-answer:OK') throw nodeError('BAD_CODE', 'this is an offer code');
        return { link: 1, peer: 'ab'.repeat(20) };
      case 'peekInbox':
        return this.inbox[args.origin] ?? [];
      case 'ackInbox':
        this.inbox[args.origin] = (this.inbox[args.origin] ?? []).filter((m) => !args.ids.includes(m.id));
        return null;
      default:
        throw { code: 'INVALID_ARGUMENT', message: op };
    }
  }
}

function setup({ approve = true } = {}) {
  const area = new FakeStorageArea();
  const permissions = new PermissionStore(area);
  const node = new FakeNodeOps();
  const approvals = {
    requests: [],
    request(origin, info) {
      this.requests.push({ origin, ...info });
      return approve ? Promise.resolve(true) : Promise.reject(rejected('The user rejected the request.'));
    },
    get: () => null,
    decide: () => false,
  };
  let now = 1_000_000;
  const router = new Router({
    permissions,
    approvals,
    node,
    settings: new SettingsStore(area, { network: 'test', bootstrap: [], iceServers: [] }),
    version: '0.1.0',
    extensionOrigin: EXT,
    offscreenUrl: `${EXT}/offscreen.html`,
    now: () => now,
  });
  const connect = (url, opts) => {
    const port = new FakePort({ sender: pageSender(url, opts) });
    router.onConnect(port);
    return port;
  };
  let seq = 0;
  /** Sends a request on `port` and waits for its response. */
  const ask = async (port, method, params, extra = {}) => {
    const id = ++seq;
    port.send({ kind: 'request', id, method, params, ...extra });
    await until(() => port.responses().some((r) => r.id === id));
    return port.responses().find((r) => r.id === id);
  };
  return { router, node, permissions, approvals, connect, ask, area, advance: (ms) => (now += ms) };
}

test('chordial_status works unapproved and reveals no address', async () => {
  const s = setup();
  s.node.delegated = true;
  const port = s.connect('https://a.example/');
  const r = await ask(s, port, 'chordial_status');
  assert.deepEqual(r.result, { installed: true, version: '0.1.0', online: true, approved: false, address: null });
});

async function ask(s, port, method, params, extra) {
  return s.ask(port, method, params, extra);
}

test('an unapproved origin gets 4100 for everything else, and the node is not touched', async () => {
  const s = setup();
  const port = s.connect('https://a.example/');
  for (const [m, p] of [
    ['chordial_send', { to: W, data: { text: 'x' } }],
    ['chordial_lookup', { address: W }],
    ['chordial_announce', { topic: 't' }],
    ['chordial_withdraw', { topic: 't' }],
    ['chordial_discover', { topic: 't' }],
    ['chordial_send', 'even with bad params'],
  ]) {
    assert.equal((await ask(s, port, m, p)).error.code, 4100, m);
  }
  assert.equal((await ask(s, port, 'eth_sendTransaction', {})).error.code, 4200);
  assert.deepEqual(
    s.node.calls.map((c) => c.op).filter((op) => op !== 'status'),
    [],
  );
});

test("the origin is the Port sender's; an origin in the payload is ignored", async () => {
  const s = setup();
  await s.permissions.approve('https://a.example');
  const port = s.connect('https://a.example/page');
  const r = await ask(
    s,
    port,
    'chordial_announce',
    { topic: 'lobby', origin: 'https://b.example' },
    {
      origin: 'https://b.example',
    },
  );
  assert.equal(r.result, true);
  assert.deepEqual(s.node.ops('announce')[0].args, { origin: 'https://a.example', topic: 'lobby', ttl: undefined });
  // An unapproved origin cannot borrow an approved one's access by claiming it.
  const portB = s.connect('https://b.example/');
  const rb = await ask(s, portB, 'chordial_discover', { topic: 'lobby' }, { origin: 'https://a.example' });
  assert.equal(rb.error.code, 4100);
});

test('ports from sub-frames, non-http pages or with another name are refused', () => {
  const s = setup();
  const sub = s.connect('https://a.example/', { frameId: 2 });
  assert.equal(sub.connected, false);
  const ext = new FakePort({ sender: { id: 'ext', url: `${EXT}/x.html`, tab: { id: 1 }, frameId: 0 } });
  s.router.onConnect(ext);
  assert.equal(ext.connected, false);
  const other = new FakePort({ name: 'something-else', sender: pageSender('https://a.example/') });
  s.router.onConnect(other);
  assert.equal(s.router.ports.size, 0);
});

test("requestAccess: approve, one signature for the page's own domain, then approved for good", async () => {
  const s = setup();
  const port = s.connect('http://127.0.0.1:8080/chat');
  const first = await ask(s, port, 'chordial_requestAccess');
  assert.deepEqual(first.result, { needsDelegation: true });
  assert.deepEqual(s.approvals.requests, [{ origin: 'http://127.0.0.1:8080', wallet: null }]);
  assert.equal(await s.permissions.isApproved('http://127.0.0.1:8080'), false, 'not stored before the signature');
  const siwe = await ask(s, port, 'chordial_internal_delegationRequest', {
    address: W,
    chainId: 1,
    domain: 'evil.example',
  });
  assert.equal(siwe.result.message, `SIWE 127.0.0.1:8080 ${W} 1`, 'domain from the sender, not the payload');
  const done = await ask(s, port, 'chordial_internal_completeDelegation', { signature: SIG });
  assert.deepEqual(done.result, { address: W });
  assert.equal(await s.permissions.isApproved('http://127.0.0.1:8080'), true);
  assert.equal((await ask(s, port, 'chordial_send', { to: OTHER, data: { text: 'hi' } })).result.result, 'delivered');
  // Asking again changes nothing and opens no window.
  assert.deepEqual((await ask(s, port, 'chordial_requestAccess')).result, { address: W });
  assert.equal(s.approvals.requests.length, 1);
});

test('requestAccess: a rejected approval is 4001 and leaves nothing behind', async () => {
  const s = setup({ approve: false });
  const port = s.connect('https://a.example/');
  assert.equal((await ask(s, port, 'chordial_requestAccess')).error.code, 4001);
  assert.equal(await s.permissions.isApproved('https://a.example'), false);
  const step = await ask(s, port, 'chordial_internal_delegationRequest', { address: W, chainId: 1 });
  assert.equal(step.error.code, 4100, 'no grant, no SIWE text');
  assert.equal(s.node.ops('delegationRequest').length, 0);
});

test('requestAccess: a bad signature or an abort drops the grant and stores nothing', async () => {
  const s = setup();
  const port = s.connect('https://a.example/');
  await ask(s, port, 'chordial_requestAccess');
  await ask(s, port, 'chordial_internal_delegationRequest', { address: W, chainId: 1 });
  const bad = await ask(s, port, 'chordial_internal_completeDelegation', { signature: BAD_SIG });
  assert.equal(bad.error.code, -32602);
  assert.equal(bad.error.data.reason, 'BAD_SIGNATURE');
  assert.equal(await s.permissions.isApproved('https://a.example'), false);
  assert.equal((await ask(s, port, 'chordial_internal_completeDelegation', { signature: SIG })).error.code, 4100);

  await ask(s, port, 'chordial_requestAccess');
  await ask(s, port, 'chordial_internal_abortAccess');
  assert.equal((await ask(s, port, 'chordial_internal_completeDelegation', { signature: SIG })).error.code, 4100);
  assert.equal(s.node.delegated, false);
});

test('requestAccess: a grant expires', async () => {
  const s = setup();
  const port = s.connect('https://a.example/');
  await ask(s, port, 'chordial_requestAccess');
  s.advance(GRANT_TTL_MS + 1);
  assert.equal(
    (await ask(s, port, 'chordial_internal_delegationRequest', { address: W, chainId: 1 })).error.code,
    4100,
  );
});

test('a second dApp reuses the session: approval, no second signature', async () => {
  const s = setup();
  s.node.delegated = true;
  const port = s.connect('https://b.example/');
  assert.deepEqual((await ask(s, port, 'chordial_requestAccess')).result, { address: W });
  assert.deepEqual(s.approvals.requests, [{ origin: 'https://b.example', wallet: W }]);
  assert.equal(s.node.ops('delegationRequest').length, 0);
  assert.equal(await s.permissions.isApproved('https://b.example'), true);
});

test('an approved page cannot re-delegate a node that has a session (no wallet swap)', async () => {
  const s = setup();
  await s.permissions.approve('https://a.example');
  const port = s.connect('https://a.example/');
  // Not granted: the node already has a session, requestAccess returns at once.
  s.node.delegated = true;
  await ask(s, port, 'chordial_requestAccess');
  assert.equal(
    (await ask(s, port, 'chordial_internal_delegationRequest', { address: OTHER, chainId: 1 })).error.code,
    4100,
  );
  // Even with a grant from before the session appeared (another origin finished first).
  s.node.delegated = false;
  await ask(s, port, 'chordial_requestAccess');
  s.node.delegated = true;
  assert.equal((await ask(s, port, 'chordial_internal_completeDelegation', { signature: SIG })).error.code, 4100);
  assert.equal(s.node.ops('completeDelegation').length, 0);
});

test('messages reach only the pages of their origin; undelivered ones wait in the inbox', async () => {
  const s = setup();
  await s.permissions.approve('https://a.example');
  await s.permissions.approve('https://b.example');
  const a = s.connect('https://a.example/');
  const b = s.connect('https://b.example/');
  const ev = { type: 'message', origin: 'https://a.example', from: OTHER, data: { text: 'hi' }, id: 'm1', sentAt: 5 };
  assert.deepEqual(await s.router.onNodeEvent(ev), { delivered: true });
  assert.equal(a.events('message').length, 1);
  assert.deepEqual(a.events('message')[0].data, { from: OTHER, data: { text: 'hi' }, id: 'm1', sentAt: 5 });
  assert.equal(b.events('message').length, 0);
  // No page of an unapproved origin gets anything, even if connected.
  const c = s.connect('https://c.example/');
  assert.deepEqual(await s.router.onNodeEvent({ ...ev, origin: 'https://c.example' }), { delivered: false });
  assert.equal(c.events().length, 0);
  // Nobody of origin a connected: not delivered; when a page connects, the inbox is flushed and acknowledged.
  a.drop();
  assert.deepEqual(await s.router.onNodeEvent({ ...ev, id: 'm2' }), { delivered: false });
  s.node.inbox['https://a.example'] = [{ ...ev, id: 'm2' }];
  const a2 = s.connect('https://a.example/');
  await until(() => s.node.ops('ackInbox').length === 1);
  assert.deepEqual(
    a2.events('message').map((m) => m.data.id),
    ['m2'],
  );
  assert.deepEqual(s.node.inbox['https://a.example'], []);
});

test('presence and status events are scoped too', async () => {
  const s = setup();
  await s.permissions.approve('https://a.example');
  const a = s.connect('https://a.example/');
  const b = s.connect('https://b.example/');
  await s.router.onNodeEvent({ type: 'presence', origin: 'https://a.example', topic: 't', address: W, present: true });
  await s.router.onNodeEvent({ type: 'status', online: true, address: W });
  assert.deepEqual(a.events('presence')[0].data, { topic: 't', address: W, present: true });
  assert.deepEqual(a.events('statusChanged')[0].data, { online: true, address: W });
  assert.equal(b.events().length, 0);
});

test('runtime messages: only extension pages, node events only from the offscreen document', async () => {
  const s = setup();
  const page = { id: 'ext', url: 'https://a.example/', tab: { id: 1 } };
  const other = { id: 'another-extension', url: `${EXT}/offscreen.html` };
  const approval = { id: 'ext', url: `${EXT}/approval.html?id=1` };
  const offscreen = { id: 'ext', url: `${EXT}/offscreen.html` };
  assert.equal((await s.router.onRuntimeMessage({ target: 'background', type: 'popupListApproved' }, page)).ok, false);
  assert.equal((await s.router.onRuntimeMessage({ target: 'background', type: 'offscreenConfig' }, other)).ok, false);
  const cfg = await s.router.onRuntimeMessage({ target: 'background', type: 'offscreenConfig' }, approval);
  assert.equal(cfg.ok, false);
  const ok = await s.router.onRuntimeMessage({ target: 'background', type: 'offscreenConfig' }, offscreen);
  assert.deepEqual(ok, { ok: true, result: { network: 'test', bootstrap: [], iceServers: [] } });
  assert.equal(await s.router.onRuntimeMessage({ target: 'offscreen', op: 'status' }, offscreen), undefined);
  await s.permissions.approve('https://a.example');
  const revoke = await s.router.onRuntimeMessage(
    { target: 'background', type: 'popupRevoke', origin: 'https://a.example' },
    approval,
  );
  assert.deepEqual(revoke, { ok: true, result: true });
});

test('a reply to a page that went away does not throw', async () => {
  const s = setup();
  const port = s.connect('https://a.example/');
  port.send({ kind: 'request', id: 1, method: 'chordial_status' });
  port.drop();
  await until(() => s.node.ops('status').length === 1);
  await new Promise((r) => setImmediate(r));
  assert.equal(s.router.ports.size, 0);
});

test('an approved origin whose session expired signs again without a second approval window', async () => {
  const s = setup();
  await s.permissions.approve('https://a.example');
  const port = s.connect('https://a.example/');
  assert.deepEqual((await ask(s, port, 'chordial_requestAccess')).result, { needsDelegation: true });
  assert.equal(s.approvals.requests.length, 0);
  assert.equal(
    (await ask(s, port, 'chordial_internal_delegationRequest', { address: W, chainId: 5 })).result.message,
    `SIWE a.example ${W} 5`,
  );
});

test('popup settings are validated, stored and applied to the node', async () => {
  const s = setup();
  const popup = { id: 'ext', url: `${EXT}/popup.html` };
  const bad = await s.router.onRuntimeMessage(
    { target: 'background', type: 'popupSetSettings', settings: { bootstrap: ['nope'] } },
    popup,
  );
  assert.equal(bad.ok, false);
  assert.equal(bad.error.code, -32602);
  assert.equal(s.node.ops('applySettings').length, 0);
  s.node.call = ((orig) => async (op, args) =>
    op === 'applySettings' ? (s.node.calls.push({ op, args }), null) : orig(op, args))(s.node.call.bind(s.node));
  const settings = {
    bootstrap: ['http://127.0.0.1:7700'],
    iceServers: [{ urls: 'turn:127.0.0.1:3478', username: 'u', credential: 'c' }],
  };
  const ok = await s.router.onRuntimeMessage({ target: 'background', type: 'popupSetSettings', settings }, popup);
  assert.equal(ok.ok, true);
  assert.deepEqual(s.node.ops('applySettings')[0].args, { network: 'test', ...settings });
  const got = await s.router.onRuntimeMessage({ target: 'background', type: 'popupGetSettings' }, popup);
  assert.deepEqual(got.result, { network: 'test', ...settings });
});

test('Revoke in the popup: the origin gets 4100 from then on, hears statusChanged, its topics are forgotten', async () => {
  const s = setup();
  s.node.delegated = true;
  await s.permissions.approve('https://a.example', { wallet: W });
  await s.permissions.approve('https://b.example', { wallet: W });
  const a = s.connect('https://a.example/');
  const b = s.connect('https://b.example/');
  assert.deepEqual((await ask(s, a, 'chordial_lookup', { address: OTHER })).result.online, false);
  const popup = { id: 'ext', url: `${EXT}/popup/popup.html` };
  const revoke = (origin) => s.router.onRuntimeMessage({ target: 'background', type: 'popupRevoke', origin }, popup);
  assert.deepEqual(await revoke('https://a.example'), { ok: true, result: true });
  assert.deepEqual(await revoke('https://a.example'), { ok: true, result: false }, 'already gone');
  assert.deepEqual(a.events('statusChanged').at(-1).data, { online: true, address: null });
  assert.equal(b.events('statusChanged').length, 0);
  assert.deepEqual(
    s.node.ops('forgetOrigin').map((c) => c.args),
    [{ origin: 'https://a.example' }],
  );
  for (const [method, params] of [
    ['chordial_lookup', { address: OTHER }],
    ['chordial_send', { to: OTHER, data: 'x' }],
    ['chordial_announce', { topic: 't' }],
  ]) {
    assert.equal((await ask(s, a, method, params)).error.code, 4100, method);
  }
  assert.equal((await ask(s, a, 'chordial_status')).result.approved, false);
  assert.equal((await ask(s, b, 'chordial_lookup', { address: OTHER })).result.online, false, 'b keeps access');
  const list = await s.router.onRuntimeMessage({ target: 'background', type: 'popupListApproved' }, popup);
  assert.deepEqual(
    list.result.map((x) => x.origin),
    ['https://b.example'],
  );
});

test('pairing from the popup reaches the node; its refusals keep the node code for the popup', async () => {
  const s = setup();
  const popup = { id: 'ext', url: `${EXT}/popup/popup.html` };
  const bad = await s.router.onRuntimeMessage(
    { target: 'background', type: 'popupPairComplete', code: 'chordial-offer:X' },
    popup,
  );
  assert.equal(bad.ok, false);
  assert.equal(bad.error.code, -32602);
  assert.equal(bad.error.data.reason, 'BAD_CODE');
  assert.equal(bad.error.message, 'this is an offer code');
  const ok = await s.router.onRuntimeMessage(
    { target: 'background', type: 'popupPairComplete', code: 'chordial-answer:OK' },
    popup,
  );
  assert.deepEqual(ok, { ok: true, result: { link: 1, peer: 'ab'.repeat(20) } });
  // Only extension pages may pair.
  const page = { id: 'ext', url: 'https://a.example/', tab: { id: 1 } };
  const no = await s.router.onRuntimeMessage({ target: 'background', type: 'popupPairOffer' }, page);
  assert.equal(no.ok, false);
  assert.equal(s.node.ops('pairOffer').length, 0);
});
