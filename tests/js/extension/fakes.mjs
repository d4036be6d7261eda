// Small fakes of the Chrome and window surfaces the extension's pure modules touch.

import { readFileSync } from 'node:fs';

/** chrome.storage.local: get(key) → {key: value}, set(obj); values are deep-copied like real storage. */
export class FakeStorageArea {
  constructor(initial = {}) {
    this.data = structuredClone(initial);
    this.sets = 0;
  }
  async get(key) {
    await Promise.resolve();
    return Object.hasOwn(this.data, key) ? { [key]: structuredClone(this.data[key]) } : {};
  }
  async set(obj) {
    await Promise.resolve();
    this.sets += 1;
    Object.assign(this.data, structuredClone(obj));
  }
}

class FakeEvent {
  constructor() {
    this.listeners = [];
  }
  addListener(fn) {
    this.listeners.push(fn);
  }
  removeListener(fn) {
    this.listeners = this.listeners.filter((f) => f !== fn);
  }
  fire(...args) {
    for (const fn of [...this.listeners]) fn(...args);
  }
}

/** A runtime Port seen from the background: `posted` holds what the background sent to the page. */
export class FakePort {
  constructor({ name = 'chordial-page', sender }) {
    this.name = name;
    this.sender = sender;
    this.onMessage = new FakeEvent();
    this.onDisconnect = new FakeEvent();
    this.posted = [];
    this.connected = true;
  }
  postMessage(msg) {
    if (!this.connected) throw new Error('Attempting to use a disconnected port object');
    this.posted.push(structuredClone(msg));
  }
  disconnect() {
    this.connected = false;
  }
  /** The page side sends a message. */
  send(msg) {
    this.onMessage.fire(structuredClone(msg), this);
  }
  /** The other side goes away. */
  drop() {
    this.connected = false;
    this.onDisconnect.fire(this);
  }
  responses() {
    return this.posted.filter((m) => m.kind === 'response');
  }
  events(name) {
    return this.posted.filter((m) => m.kind === 'event' && (!name || m.event === name));
  }
}

export function pageSender(url, { frameId = 0, tab = { id: 7 } } = {}) {
  return { id: 'ext', url, origin: new URL(url).origin, frameId, tab };
}

/** A window with postMessage/EventTarget semantics close enough for the relay and the provider. */
export class FakeWindow extends EventTarget {
  constructor(origin = 'https://dapp.example') {
    super();
    this.location = { origin };
    this.sent = []; // [{data, targetOrigin}]
    this.console = { error() {} };
    this.Event = Event;
    this.setTimeout = setTimeout;
    this.clearTimeout = clearTimeout;
  }
  postMessage(data, targetOrigin) {
    if (targetOrigin === undefined) throw new TypeError('targetOrigin required');
    this.sent.push({ data: structuredClone(data), targetOrigin });
    if (targetOrigin !== '*' && targetOrigin !== this.location.origin) return;
    this.deliver(data, this);
  }
  /** Dispatches a message event as if posted by `source` (this window, an iframe, another tab). */
  deliver(data, source) {
    const ev = new Event('message');
    Object.defineProperty(ev, 'data', { value: structuredClone(data) });
    Object.defineProperty(ev, 'source', { value: source });
    queueMicrotask(() => this.dispatchEvent(ev));
  }
}

/** Fake timers: nothing runs until `advance(ms)`. */
export class FakeTimers {
  constructor() {
    this.now = 0;
    this.nextId = 1;
    this.tasks = new Map(); // id → {at, fn, every}
  }
  setTimeout(fn, ms) {
    const id = this.nextId++;
    this.tasks.set(id, { at: this.now + ms, fn, every: null });
    return id;
  }
  setInterval(fn, ms) {
    const id = this.nextId++;
    this.tasks.set(id, { at: this.now + ms, fn, every: ms });
    return id;
  }
  clearTimeout(id) {
    this.tasks.delete(id);
  }
  clearInterval(id) {
    this.tasks.delete(id);
  }
  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      let next = null;
      for (const [id, t] of this.tasks) if (t.at <= end && (!next || t.at < next[1].at)) next = [id, t];
      if (!next) break;
      const [id, t] = next;
      this.now = t.at;
      if (t.every) t.at += t.every;
      else this.tasks.delete(id);
      t.fn();
    }
    this.now = end;
  }
  get pending() {
    return this.tasks.size;
  }
}

/** Resolves once `cond()` is true, checking after each macrotask turn; fails after `turns`. */
export async function until(cond, turns = 200) {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('condition not reached');
}

/**
 * node-wasm's error table as docs/dapp-api.md prints it (generated from node-wasm/src/error.rs, whose tests
 * check that copy): node code → provider code. Doubles of the node give their errors the numbers the real one
 * gives, from here.
 */
export const NODE_RPC_CODES = (() => {
  const doc = readFileSync(new URL('../../../docs/dapp-api.md', import.meta.url), 'utf8');
  const begin = doc.indexOf('<!-- node-error-table: begin');
  const end = doc.indexOf('<!-- node-error-table: end -->');
  const table = {};
  for (const row of doc.slice(begin, end).split('\n')) {
    const cells = row.split('|').map((c) => c.trim());
    const name = /^`([A-Z_]+)`$/.exec(cells[2] ?? '')?.[1];
    if (name) table[name] = Number(cells[3]);
  }
  return Object.freeze(table);
})();

/** An error as node-wasm rejects with it: ChordialError, string `code`, `rpcCode` from the table. */
export function nodeError(code, message = code) {
  if (!(code in NODE_RPC_CODES)) throw new Error(`fakes: ${code} is not a node-wasm code`);
  return Object.assign(new Error(message), { name: 'ChordialError', code, rpcCode: NODE_RPC_CODES[code] });
}
