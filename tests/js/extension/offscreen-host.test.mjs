// NodeHost (offscreen document): node lifecycle, the inbox, status and presence events — on a fake node
// that implements node-wasm's interface (docs/api.md of chordial-node-wasm).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeHost, INBOX_LIMIT } from '../../../extension/offscreen/host.js';
import { FakeTimers, nodeError, until } from './fakes.mjs';

const W = '0x' + '11'.repeat(20);
const B = '0x' + '22'.repeat(20);
const NOW = 1_700_000_000_000;

class FakeWasmNode {
  constructor({ wallet = null, expires = null } = {}) {
    this.st = { state: 'idle', wallet, sessionExpires: expires, joined: false, nodeId: 'ab'.repeat(20) };
    this.listeners = [];
    this.log = [];
    this.topics = new Map();
  }
  status() {
    return { ...this.st };
  }
  onEvent(cb) {
    this.listeners.push(cb);
    return this.listeners.length;
  }
  fire(ev) {
    for (const cb of this.listeners) cb(ev);
  }
  async start() {
    if (!this.st.wallet) throw { code: 'NO_DELEGATION', message: 'none' };
    this.log.push('start');
    this.st.state = 'running';
  }
  async stop() {
    this.log.push('stop');
    this.st.state = 'idle';
    this.st.joined = false;
  }
  async completeDelegation(sig) {
    this.log.push(`complete ${sig}`);
    this.st.wallet = W;
    this.st.sessionExpires = NOW + 1e9;
    return { wallet: W, expires: NOW + 1e9 };
  }
  async send(origin, to, bytes) {
    this.log.push({ send: [origin, to, [...bytes]] });
    return { id: '1', result: 'stored' };
  }
  async lookup(wallet) {
    // An unknown wallet (node-wasm resolves it with no sessions, or rejects NOT_FOUND), or a routing failure.
    if (this.lookupFails) throw nodeError(this.lookupFails, 'the node of that session left');
    throw nodeError('NOT_FOUND', `no presence for ${wallet}`);
  }
  async announce(origin, topic) {
    this.topics.set(`${origin} ${topic}`, [W]);
  }
  async withdraw(origin, topic) {
    this.topics.delete(`${origin} ${topic}`);
  }
  async discover(origin, topic) {
    return (this.topics.get(`${origin} ${topic}`) ?? []).map((wallet) => ({ wallet, announcedAt: 1 }));
  }
  async setSettings(s) {
    this.log.push({ settings: s });
  }
}

function harness(node, { deliver = () => false } = {}) {
  const emitted = [];
  const timers = new FakeTimers();
  const host = new NodeHost({
    openNode: async (cfg) => {
      node.config = cfg;
      return node;
    },
    emit: async (ev) => {
      emitted.push(ev);
      return { delivered: deliver(ev) };
    },
    now: () => NOW,
    timers,
    presencePollMs: 1000,
  });
  return { host, emitted, timers };
}

test('a stored, still valid delegation starts the node at once; an expired one does not', async () => {
  const live = new FakeWasmNode({ wallet: W, expires: NOW + 1 });
  await harness(live).host.init({ network: 'test', bootstrap: [], iceServers: [] });
  assert.deepEqual(live.log, ['start']);
  assert.equal(live.config.network, 'test');
  const expired = new FakeWasmNode({ wallet: W, expires: NOW - 1 });
  const h = harness(expired);
  await h.host.init({});
  assert.deepEqual(expired.log, []);
  assert.equal((await h.host.handle('status', {})).delegated, false);
});

test('completeDelegation restarts a running node under the new delegation', async () => {
  const node = new FakeWasmNode({ wallet: B, expires: NOW - 1 });
  node.st.state = 'running';
  const h = harness(node);
  await h.host.init({});
  const r = await h.host.handle('completeDelegation', { signature: '0xsig' });
  assert.deepEqual(r, { wallet: W, expires: NOW + 1e9 });
  assert.deepEqual(node.log, ['complete 0xsig', 'stop', 'start']);
});

test('send tags the payload; lookup of an unknown wallet is "offline", not an error', async () => {
  const node = new FakeWasmNode({ wallet: W, expires: NOW + 1e9 });
  const h = harness(node);
  await h.host.init({});
  assert.deepEqual(await h.host.handle('send', { origin: 'https://a', to: B, data: { text: 'hi' } }), {
    id: '1',
    result: 'stored',
  });
  assert.deepEqual(node.log.at(-1), { send: ['https://a', B, [1, 104, 105]] });
  assert.deepEqual(await h.host.handle('lookup', { address: B }), { address: B, sessions: [], online: false });
  await assert.rejects(h.host.handle('nonsense', {}), { code: 'INVALID_ARGUMENT' });
});

test('lookup: a routing failure stays an error, with its own code and number, not "offline"', async () => {
  const node = new FakeWasmNode({ wallet: W, expires: NOW + 1e9 });
  const h = harness(node);
  await h.host.init({});
  for (const code of ['NODE_NOT_FOUND', 'NO_ROUTE', 'TIMEOUT']) {
    node.lookupFails = code;
    await assert.rejects(h.host.handle('lookup', { address: B }), { code, rpcCode: -32000 });
  }
});

test('messages nobody took wait in a bounded inbox per origin until acknowledged', async () => {
  const node = new FakeWasmNode({ wallet: W, expires: NOW + 1e9 });
  let open = false;
  const h = harness(node, { deliver: (ev) => ev.type === 'message' && open });
  await h.host.init({});
  const msg = (i, appOrigin = 'https://a') => ({
    type: 'message',
    from: B,
    appOrigin,
    data: new Uint8Array([1, 0x41 + (i % 26)]),
    id: `m${i}`,
    sentAt: i,
  });
  node.fire(msg(0));
  node.fire(msg(1, 'https://b'));
  await until(() => h.emitted.filter((e) => e.type === 'message').length === 2);
  await new Promise((r) => setImmediate(r));
  const inboxA = await h.host.handle('peekInbox', { origin: 'https://a' });
  assert.deepEqual(
    inboxA.map((m) => [m.id, m.origin, m.data]),
    [['m0', 'https://a', { text: 'A' }]],
  );
  assert.equal((await h.host.handle('peekInbox', { origin: 'https://b' })).length, 1);
  await h.host.handle('ackInbox', { origin: 'https://a', ids: ['m0'] });
  assert.deepEqual(await h.host.handle('peekInbox', { origin: 'https://a' }), []);
  // Delivered live: not kept.
  open = true;
  node.fire(msg(2));
  await until(() => h.emitted.filter((e) => e.type === 'message').length === 3);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(await h.host.handle('peekInbox', { origin: 'https://a' }), []);
  // Bounded.
  open = false;
  for (let i = 0; i < INBOX_LIMIT + 10; i++) node.fire(msg(100 + i));
  await until(() => h.emitted.length >= INBOX_LIMIT + 13);
  await new Promise((r) => setImmediate(r));
  const kept = await h.host.handle('peekInbox', { origin: 'https://a' });
  assert.equal(kept.length, INBOX_LIMIT);
  assert.equal(kept[0].id, 'm110', 'the oldest went first');
});

test('status events fire when the node goes online or offline, once per change', async () => {
  const node = new FakeWasmNode({ wallet: W, expires: NOW + 1e9 });
  const h = harness(node);
  await h.host.init({});
  const statuses = () => h.emitted.filter((e) => e.type === 'status').map((e) => e.online);
  assert.deepEqual(statuses(), [false]);
  node.st.joined = true;
  node.fire({ type: 'membership', joined: true });
  node.fire({ type: 'membership', joined: true });
  node.st.joined = false;
  node.fire({ type: 'membership', joined: false });
  assert.deepEqual(statuses(), [false, true, false]);
  assert.equal(h.emitted.find((e) => e.type === 'status').address, W);
});

test('presence: announced topics are polled and comings and goings reported', async () => {
  const node = new FakeWasmNode({ wallet: W, expires: NOW + 1e9 });
  const h = harness(node);
  await h.host.init({});
  await h.host.handle('announce', { origin: 'https://a', topic: 'lobby' });
  const presence = () =>
    h.emitted.filter((e) => e.type === 'presence').map((e) => `${e.address.slice(0, 4)} ${e.present}`);
  await until(() => presence().length === 1);
  assert.deepEqual(
    h.emitted.find((e) => e.type === 'presence'),
    {
      type: 'presence',
      origin: 'https://a',
      topic: 'lobby',
      address: W,
      present: true,
    },
  );
  node.topics.set('https://a lobby', [W, B]);
  h.timers.advance(1000);
  await until(() => presence().length === 2);
  node.topics.set('https://a lobby', [B]);
  h.timers.advance(1000);
  await until(() => presence().length === 3);
  assert.deepEqual(presence(), ['0x11 true', '0x22 true', '0x11 false']);
  assert.deepEqual(await h.host.handle('discover', { origin: 'https://a', topic: 'lobby' }), [
    { address: B, announcedAt: 1 },
  ]);
  await h.host.handle('withdraw', { origin: 'https://a', topic: 'lobby' });
  h.timers.advance(1000);
  await new Promise((r) => setImmediate(r));
  assert.equal(h.timers.pending, 0, 'polling stops with nothing to watch');
});

test('a node that fails to open is reported, and the next init tries again', async () => {
  let attempts = 0;
  const host = new NodeHost({
    openNode: async () => {
      attempts += 1;
      if (attempts === 1) throw { code: 'UNAVAILABLE', message: 'no node-wasm' };
      return new FakeWasmNode();
    },
    emit: async () => ({ delivered: false }),
    now: () => NOW,
    timers: new FakeTimers(),
  });
  await assert.rejects(host.init({}), { code: 'UNAVAILABLE' });
  await new Promise((r) => setImmediate(r));
  await host.init({});
  assert.equal((await host.handle('status', {})).available, true);
});

test('applySettings stores the settings in the node and restarts it only if it was running', async () => {
  const node = new FakeWasmNode({ wallet: W, expires: NOW + 1e9 });
  const h = harness(node);
  await h.host.init({});
  const settings = { bootstrap: ['http://127.0.0.1:7700'], iceServers: [] };
  await h.host.handle('applySettings', { network: 'x', ...settings });
  assert.deepEqual(node.log, ['start', { settings }, 'stop', 'start']);
  await node.stop();
  node.log.length = 0;
  await h.host.handle('applySettings', { network: 'x', ...settings });
  assert.deepEqual(node.log, [{ settings }]);
});

test('pairing codes are kept for a popup that closed meanwhile, until they expire or are used', async () => {
  const node = new FakeWasmNode({ wallet: W, expires: NOW + 1e9 });
  node.pairOffer = async () => ({ code: 'chordial-offer:AAA', expires: NOW + 300_000 });
  node.pairAnswer = async (code) => {
    if (!code.startsWith('chordial-offer:')) throw { code: 'BAD_CODE', message: 'not an offer code' };
    return { code: 'chordial-answer:BBB', expires: NOW - 1 }; // already expired, for the test
  };
  node.pairComplete = async (code) => {
    if (code !== 'chordial-answer:CCC') throw { code: 'NO_MATCHING_OFFER', message: 'no offer waits' };
    return { link: 3, peer: 'cd'.repeat(20) };
  };
  const h = harness(node);
  await h.host.init({});
  assert.deepEqual(await h.host.handle('pairState', {}), { offer: null, answer: null });
  const offer = await h.host.handle('pairOffer', {});
  assert.deepEqual(await h.host.handle('pairState', {}), { offer, answer: null });
  await assert.rejects(h.host.handle('pairAnswer', { code: 'nope' }), { code: 'BAD_CODE' });
  await h.host.handle('pairAnswer', { code: 'chordial-offer:X' });
  assert.deepEqual(await h.host.handle('pairState', {}), { offer, answer: null }, 'the expired answer is dropped');
  // A refused answer leaves the offer in place; the right one uses it up.
  await assert.rejects(h.host.handle('pairComplete', { code: 'chordial-answer:bad' }), { code: 'NO_MATCHING_OFFER' });
  assert.deepEqual((await h.host.handle('pairState', {})).offer, offer);
  assert.deepEqual(await h.host.handle('pairComplete', { code: 'chordial-answer:CCC' }), {
    link: 3,
    peer: 'cd'.repeat(20),
  });
  assert.deepEqual(await h.host.handle('pairState', {}), { offer: null, answer: null });
  // Settings restart the node: its links, and with them any waiting offer, are gone.
  await h.host.handle('pairOffer', {});
  node.st.state = 'running';
  await h.host.handle('applySettings', { bootstrap: [], iceServers: [] });
  assert.deepEqual(await h.host.handle('pairState', {}), { offer: null, answer: null });
});

test('forgetting a revoked origin withdraws its topics, stops its presence polling and drops its inbox', async () => {
  const node = new FakeWasmNode({ wallet: W, expires: NOW + 1e9 });
  const h = harness(node);
  await h.host.init({});
  await h.host.handle('announce', { origin: 'https://a', topic: 'lobby' });
  await h.host.handle('announce', { origin: 'https://a', topic: 'news' });
  await h.host.handle('announce', { origin: 'https://b', topic: 'lobby' });
  node.fire({ type: 'message', from: B, appOrigin: 'https://a', data: new Uint8Array([1, 0x41]), id: 'm1', sentAt: 1 });
  await until(() => h.emitted.some((e) => e.type === 'message'));
  await new Promise((r) => setImmediate(r));
  assert.equal((await h.host.handle('peekInbox', { origin: 'https://a' })).length, 1);
  assert.deepEqual(await h.host.handle('forgetOrigin', { origin: 'https://a' }), { topics: 2, withdrawn: 2 });
  assert.deepEqual([...node.topics.keys()], ['https://b lobby']);
  assert.deepEqual(await h.host.handle('peekInbox', { origin: 'https://a' }), []);
  assert.deepEqual(
    [...h.host.watched.values()].map((w) => `${w.origin} ${w.topic}`),
    ['https://b lobby'],
  );
});

test('leave() (the document is going away) stops a running node, and does nothing otherwise', async () => {
  const idle = new FakeWasmNode();
  const h1 = harness(idle);
  await h1.host.init({});
  assert.equal(h1.host.leave(), false);
  assert.deepEqual(idle.log, []);

  const node = new FakeWasmNode({ wallet: W, expires: NOW + 1e9 });
  const { host } = harness(node);
  assert.equal(host.leave(), false, 'not open yet');
  await host.init({});
  assert.equal(host.leave(), true);
  assert.deepEqual(node.log, ['start', 'stop']);
  assert.equal(host.leave(), false, 'already stopped');
});
