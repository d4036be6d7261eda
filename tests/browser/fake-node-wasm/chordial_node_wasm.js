// TEST DOUBLE of node-wasm's JavaScript API (docs/api.md), used only by tests/browser/extension-flows.test.mjs
// to drive the extension's own flows (approval, the one signature, origin scoping, service-worker restarts)
// in a real browser before and independently of the real node. It has no network and verifies no signature:
// a message sent to this node's own wallet is delivered locally; to anyone else it is "stored".
// The real scenarios (tests/browser/extension-real.test.mjs) use the real node-wasm and a chordial-server.

export default async function init() {}

const listeners = new Map();
let nextToken = 1;
// The provider codes the real node gives these errors (node-wasm/src/error.rs, printed in docs/dapp-api.md;
// tests/js/extension/params-errors.test.mjs checks this copy against that table).
export const RPC_CODES = Object.freeze({
  INVALID_ARGUMENT: -32602,
  NO_PENDING_REQUEST: 4100,
  BAD_SIGNATURE: -32602,
  NO_DELEGATION: 4100,
  ALREADY_RUNNING: -32603,
  NOT_RUNNING: 4900,
});
const fail = (code, message) =>
  Object.assign(new Error(message), { name: 'ChordialError', code, rpcCode: RPC_CODES[code] });
const instanceId = Math.random().toString(16).slice(2, 10).padEnd(8, '0');

export class ChordialNode {
  static async open(options) {
    return new ChordialNode(options);
  }

  constructor(options) {
    this.options = options;
    this.state = 'idle';
    this.wallet = null;
    this.expires = null;
    this.pending = null;
    this.topics = new Map();
    this.startedAt = null;
    this.starts = 0;
    this.seq = 0;
    this.restore();
  }

  // Persist the "delegation" in localStorage of the offscreen document (the real node uses IndexedDB).
  restore() {
    try {
      const saved = JSON.parse(localStorage.getItem('fake-node') ?? 'null');
      if (saved) ({ wallet: this.wallet, expires: this.expires } = saved);
    } catch {
      /* nothing saved */
    }
  }

  emit(ev) {
    for (const cb of listeners.values()) queueMicrotask(() => cb(ev));
  }

  async delegationRequest({ domain, address, chainId }) {
    if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw fail('INVALID_ARGUMENT', 'bad address');
    this.pending = { domain, address, chainId };
    return `${domain} wants you to sign in with your Ethereum account:\n${address}\n\nFAKE NODE delegation (test double).\n\nChain ID: ${chainId}`;
  }

  async completeDelegation(signature) {
    if (!this.pending) throw fail('NO_PENDING_REQUEST', 'no delegation request');
    if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) throw fail('BAD_SIGNATURE', 'not a 65-byte signature');
    this.wallet = this.pending.address;
    this.expires = Date.now() + 30 * 24 * 3600 * 1000;
    this.pending = null;
    localStorage.setItem('fake-node', JSON.stringify({ wallet: this.wallet, expires: this.expires }));
    return { wallet: this.wallet, expires: this.expires };
  }

  async setSettings(s) {
    Object.assign(this.options, s);
  }

  async start() {
    if (!this.wallet || this.expires < Date.now()) throw fail('NO_DELEGATION', 'no delegation');
    if (this.state === 'running') throw fail('ALREADY_RUNNING', 'running');
    this.state = 'running';
    this.startedAt = Date.now();
    this.starts += 1;
    this.emit({ type: 'state', state: 'running' });
    this.emit({ type: 'membership', joined: true });
  }

  async stop() {
    this.state = 'idle';
    this.emit({ type: 'membership', joined: false });
  }

  requireRunning() {
    if (this.state !== 'running') throw fail('NOT_RUNNING', 'not running');
  }

  async send(appOrigin, toWallet, bytes) {
    this.requireRunning();
    const id = String(++this.seq);
    if (toWallet.toLowerCase() === this.wallet.toLowerCase()) {
      const msgId = `${instanceId}${String(this.seq).padStart(24, '0')}`;
      this.emit({
        type: 'message',
        from: this.wallet,
        appOrigin,
        data: new Uint8Array(bytes),
        id: msgId,
        sentAt: Date.now(),
      });
      return { id, result: 'delivered' };
    }
    return { id, result: 'stored' };
  }

  async lookup(wallet) {
    this.requireRunning();
    const mine = wallet.toLowerCase() === this.wallet.toLowerCase();
    return {
      wallet,
      sessions: mine ? [{ nodeId: instanceId.repeat(5), session: '02'.padEnd(66, '0'), expires: this.expires }] : [],
    };
  }

  async announce(appOrigin, topic) {
    this.requireRunning();
    this.topics.set(`${appOrigin} ${topic}`, Date.now());
  }

  async withdraw(appOrigin, topic) {
    this.topics.delete(`${appOrigin} ${topic}`);
  }

  async discover(appOrigin, topic) {
    this.requireRunning();
    const at = this.topics.get(`${appOrigin} ${topic}`);
    return at ? [{ wallet: this.wallet, announcedAt: at }] : [];
  }

  status() {
    return {
      network: this.options.network,
      state: this.state,
      wallet: this.wallet,
      sessionKey: '02'.padEnd(66, '0'),
      nodeId: instanceId.repeat(5),
      sessionExpires: this.expires,
      bootstrap: { state: 'idle', servers: [], lastError: null },
      joined: this.state === 'running',
      successors: [],
      predecessor: null,
      fingers: [],
      links: [],
      counters: { peerConnectionsCreated: 0, starts: this.starts },
      fake: { instanceId, startedAt: this.startedAt },
    };
  }

  onEvent(cb) {
    const t = nextToken++;
    listeners.set(t, cb);
    return t;
  }

  offEvent(t) {
    listeners.delete(t);
  }

  async forget() {
    localStorage.removeItem('fake-node');
    this.state = 'closed';
  }

  close() {
    this.state = 'closed';
  }
}
