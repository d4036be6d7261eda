// NodeHost: what the offscreen document does with the node, without knowing Chrome or wasm.
//
//   background ──handle(op, args)──▶ NodeHost ──▶ node (node.js adapter over node-wasm)
//   node.onEvent ──▶ NodeHost ──emit(event)──▶ background ──▶ pages of the event's origin
//
// - It opens the node with the settings the background gave, and starts it at once when a stored delegation
//   is still valid (a reload or browser restart resumes without a signature).
// - Messages the background could not hand to any page (no page of that origin open, or the service worker
//   was asleep) wait in a bounded inbox per origin until a page connects (peekInbox / ackInbox).
// - `presence` events come from polling discover() for the topics this node announced: node-wasm pushes no
//   presence, and a chat wants to see who comes and goes.
// - Pairing (popup): the last offer and answer codes are kept until they expire, because the popup closes
//   whenever it loses focus — typically while the person copies a code into another window.

import { wireToNodeBytes, nodeBytesToWire } from '../shared/payload.js';
import { OffscreenOp } from '../shared/protocol.js';

export const INBOX_LIMIT = 256; // per origin; the oldest go first
export const PRESENCE_POLL_MS = 5_000;

export class NodeHost {
  /**
   * @param openNode async (config) => node   (see node.js for the interface)
   * @param emit     async (event) => {delivered: boolean} | undefined   — to the background
   */
  constructor({ openNode, emit, now = Date.now, timers = globalThis, presencePollMs = PRESENCE_POLL_MS }) {
    this.openNode = openNode;
    this.emit = emit;
    this.now = now;
    this.timers = timers;
    this.presencePollMs = presencePollMs;
    this.node = null;
    this.opening = null;
    this.inbox = new Map(); // origin → [message event]
    this.watched = new Map(); // `${origin}\n${topic}` → {origin, topic, present: Set|null}
    this.lastOnline = null;
    this.pollTimer = null;
    this.pairing = { offer: null, answer: null }; // {code, expires} each, while usable
  }

  /** Opens the node once; later calls wait for the same opening. */
  init(config) {
    if (!this.opening) {
      this.opening = (async () => {
        const node = await this.openNode(config);
        node.onEvent((ev) => this.onNodeEvent(ev));
        this.node = node;
        if (this.delegated()) await node.start();
        this.checkStatus();
        return node;
      })();
      // A failed opening can be retried by the next request.
      this.opening.catch(() => {
        this.opening = null;
      });
    }
    return this.opening;
  }

  /**
   * The document is going away (the browser or the extension is closing): begin the node's graceful leave
   * now. node-wasm's stop() sends `Leave` and the withdrawn presence synchronously, before its promise
   * settles; whether they get out depends on how long the browser lets the process live, so this is best
   * effort. Peers that hear nothing treat the node as crashed, which works too — only more slowly.
   */
  leave() {
    if (!this.node || this.node.status().state !== 'running') return false;
    this.node.stop().catch(() => {});
    return true;
  }

  delegated() {
    const st = this.node.status();
    return Boolean(st.wallet) && typeof st.sessionExpires === 'number' && st.sessionExpires > this.now();
  }

  online() {
    const st = this.node.status();
    return st.state === 'running' && st.joined === true;
  }

  /** One operation from the background. Resolves with a JSON-able result or rejects with {code, message}. */
  async handle(op, args) {
    const node = await this.opening;
    if (!node) throw { code: 'UNAVAILABLE', message: 'the node is not open' };
    switch (op) {
      case OffscreenOp.STATUS: {
        const st = node.status();
        return {
          available: true,
          online: this.online(),
          state: st.state,
          wallet: st.wallet ?? null,
          delegated: this.delegated(),
          sessionExpires: st.sessionExpires ?? null,
          nodeId: st.nodeId ?? null,
        };
      }
      case OffscreenOp.DETAILED_STATUS:
        return node.status();
      case OffscreenOp.DELEGATION_REQUEST:
        return node.delegationRequest({ domain: args.domain, address: args.address, chainId: args.chainId });
      case OffscreenOp.COMPLETE_DELEGATION: {
        const done = await node.completeDelegation(args.signature);
        // A running node keeps its old delegation until restarted.
        if (node.status().state === 'running') await node.stop();
        await node.start();
        this.checkStatus();
        return { wallet: done.wallet, expires: done.expires };
      }
      case OffscreenOp.SEND: {
        const r = await node.send(args.origin, args.to, wireToNodeBytes(args.data));
        return { id: r.id, result: r.result };
      }
      case OffscreenOp.LOOKUP:
        return this.lookup(node, args.address);
      case OffscreenOp.ANNOUNCE:
        await node.announce(args.origin, args.topic, args.ttl);
        this.watch(args.origin, args.topic);
        return null;
      case OffscreenOp.WITHDRAW:
        await node.withdraw(args.origin, args.topic);
        this.watched.delete(key(args.origin, args.topic));
        return null;
      case OffscreenOp.DISCOVER: {
        const list = await node.discover(args.origin, args.topic);
        return list.map((x) => ({ address: x.wallet, announcedAt: x.announcedAt }));
      }
      case OffscreenOp.APPLY_SETTINGS: {
        await node.setSettings({ bootstrap: args.bootstrap, iceServers: args.iceServers });
        if (node.status().state === 'running') {
          await node.stop();
          this.pairing = { offer: null, answer: null }; // their links went with the stop
          await node.start();
        }
        this.checkStatus();
        return null;
      }
      case OffscreenOp.FORGET_ORIGIN:
        return this.forgetOrigin(node, args.origin);
      case OffscreenOp.PAIR_OFFER:
        this.pairing.offer = await node.pairOffer();
        return this.pairing.offer;
      case OffscreenOp.PAIR_ANSWER:
        this.pairing.answer = await node.pairAnswer(String(args.code ?? ''));
        return this.pairing.answer;
      case OffscreenOp.PAIR_COMPLETE: {
        const linked = await node.pairComplete(String(args.code ?? ''));
        this.pairing.offer = null; // answered and linked: nothing left to show
        return linked;
      }
      case OffscreenOp.PAIR_STATE: {
        const usable = (c) => (c && c.expires > this.now() ? c : null);
        this.pairing = { offer: usable(this.pairing.offer), answer: usable(this.pairing.answer) };
        return { ...this.pairing };
      }
      case OffscreenOp.PEEK_INBOX:
        return [...(this.inbox.get(args.origin) ?? [])];
      case OffscreenOp.ACK_INBOX: {
        const ids = new Set(args.ids);
        const left = (this.inbox.get(args.origin) ?? []).filter((m) => !ids.has(m.id));
        if (left.length > 0) this.inbox.set(args.origin, left);
        else this.inbox.delete(args.origin);
        return null;
      }
      default:
        throw { code: 'INVALID_ARGUMENT', message: `unknown operation ${String(op)}` };
    }
  }

  /** The user revoked `origin`: stop announcing it anywhere and drop what waited for it. */
  async forgetOrigin(node, origin) {
    const mine = [...this.watched.values()].filter((w) => w.origin === origin);
    for (const w of mine) this.watched.delete(key(w.origin, w.topic));
    this.inbox.delete(origin);
    let withdrawn = 0;
    for (const w of mine) {
      try {
        await node.withdraw(w.origin, w.topic);
        withdrawn += 1;
      } catch {
        // Best effort: a record that cannot be withdrawn now expires with its TTL.
      }
    }
    return { topics: mine.length, withdrawn };
  }

  async lookup(node, address) {
    try {
      const r = await node.lookup(address);
      return { address: r.wallet, sessions: r.sessions, online: r.sessions.length > 0 };
    } catch (e) {
      // NOT_FOUND is "no such wallet online" (node-wasm may reject an unknown wallet so instead of resolving
      // with no sessions): offline, not an error. A routing failure (NODE_NOT_FOUND, NO_ROUTE, TIMEOUT…) says
      // nothing about the wallet and stays an error.
      if (e?.code === 'NOT_FOUND') return { address, sessions: [], online: false };
      throw e;
    }
  }

  // ---- events ----------------------------------------------------------------------------------------------

  onNodeEvent(ev) {
    switch (ev?.type) {
      case 'message': {
        const msg = {
          type: 'message',
          origin: ev.appOrigin,
          from: ev.from,
          data: nodeBytesToWire(ev.data),
          id: ev.id,
          sentAt: ev.sentAt,
        };
        this.forward(msg);
        break;
      }
      case 'membership':
      case 'state':
      case 'bootstrap':
        this.checkStatus();
        break;
      default:
        break;
    }
  }

  /** Sends a message event to the background; keeps it in the inbox unless a page took it. */
  async forward(msg) {
    let delivered = false;
    try {
      delivered = (await this.emit(msg))?.delivered === true;
    } catch {
      delivered = false;
    }
    if (!delivered) {
      const list = this.inbox.get(msg.origin) ?? [];
      list.push(msg);
      while (list.length > INBOX_LIMIT) list.shift();
      this.inbox.set(msg.origin, list);
    }
  }

  checkStatus() {
    if (!this.node) return;
    const online = this.online();
    if (online === this.lastOnline) return;
    this.lastOnline = online;
    const address = this.node.status().wallet ?? null;
    Promise.resolve(this.emit({ type: 'status', online, address })).catch(() => {});
  }

  watch(origin, topic) {
    const k = key(origin, topic);
    if (!this.watched.has(k)) this.watched.set(k, { origin, topic, present: null });
    if (!this.pollTimer) {
      this.pollTimer = this.timers.setInterval(() => this.pollPresence().catch(() => {}), this.presencePollMs);
    }
    this.pollPresence().catch(() => {});
  }

  /** One discover() per watched topic; emits a presence event for every wallet that came or went. */
  async pollPresence() {
    if (this.watched.size === 0 && this.pollTimer) {
      this.timers.clearInterval(this.pollTimer);
      this.pollTimer = null;
      return;
    }
    for (const w of [...this.watched.values()]) {
      const list = await this.node.discover(w.origin, w.topic);
      const now = new Set(list.map((x) => x.wallet));
      const before = w.present ?? new Set();
      for (const a of now) if (!before.has(a)) this.emitPresence(w, a, true);
      for (const a of before) if (!now.has(a)) this.emitPresence(w, a, false);
      w.present = now;
    }
  }

  emitPresence(w, address, present) {
    Promise.resolve(this.emit({ type: 'presence', origin: w.origin, topic: w.topic, address, present })).catch(
      () => {},
    );
  }
}

const key = (origin, topic) => `${origin}\n${topic}`;
