// Approval windows: a dApp origin asks for access, a small extension window shows the origin and the wallet,
// the user approves or rejects. One window per origin however many requests wait on it; closing the window
// or leaving it unanswered for `timeoutMs` rejects with 4001.

import { rejected } from '../shared/errors.js';

export const APPROVAL_PATH = 'approval.html';
export const DEFAULT_APPROVAL_TIMEOUT_MS = 120_000;

export class ApprovalManager {
  /**
   * @param openWindow   async (url) => windowId
   * @param closeWindow  async (windowId) => void
   * @param urlFor       (id) => URL of the approval page for request `id`
   */
  constructor({ openWindow, closeWindow, urlFor, timeoutMs = DEFAULT_APPROVAL_TIMEOUT_MS, timers = globalThis }) {
    this.openWindow = openWindow;
    this.closeWindow = closeWindow;
    this.urlFor = urlFor;
    this.timeoutMs = timeoutMs;
    this.timers = timers;
    this.byId = new Map(); // id → pending
    this.byOrigin = new Map(); // origin → pending
    this.nextId = 1;
  }

  /** Resolves when the user approves `origin`; rejects 4001 on reject, close or time-out. */
  request(origin, { wallet = null } = {}) {
    const existing = this.byOrigin.get(origin);
    if (existing) return existing.promise;
    const id = `${Date.now().toString(36)}-${this.nextId++}`;
    const pending = { id, origin, wallet, windowId: null, settled: false };
    pending.promise = new Promise((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
    });
    this.byId.set(id, pending);
    this.byOrigin.set(origin, pending);
    pending.timer = this.timers.setTimeout(
      () => this.settle(pending, false, 'The approval request timed out.'),
      this.timeoutMs,
    );
    Promise.resolve()
      .then(() => this.openWindow(this.urlFor(id)))
      .then((windowId) => {
        pending.windowId = windowId ?? null;
        // Settled before the window even opened (a very short time-out): close it again.
        if (pending.settled && windowId != null) this.closeWindow(windowId).catch(() => {});
      })
      .catch((e) => this.settle(pending, false, `Could not open the approval window: ${e?.message ?? e}`));
    return pending.promise;
  }

  /** What the approval page shows: {origin, wallet}, or null for an unknown or finished request. */
  get(id) {
    const p = this.byId.get(id);
    return p ? { origin: p.origin, wallet: p.wallet } : null;
  }

  /** The user's answer from the approval page. Returns false for an unknown or finished request. */
  decide(id, approve) {
    const p = this.byId.get(id);
    if (!p) return false;
    this.settle(p, approve === true, 'The user rejected the request.');
    return true;
  }

  /** chrome.windows.onRemoved: a closed approval window is a rejection. */
  windowClosed(windowId) {
    for (const p of this.byId.values()) {
      if (p.windowId === windowId) this.settle(p, false, 'The approval window was closed.', { keepWindow: true });
    }
  }

  get pendingCount() {
    return this.byId.size;
  }

  settle(p, approved, reason, { keepWindow = false } = {}) {
    if (p.settled) return;
    p.settled = true;
    this.timers.clearTimeout(p.timer);
    this.byId.delete(p.id);
    if (this.byOrigin.get(p.origin) === p) this.byOrigin.delete(p.origin);
    if (!keepWindow && p.windowId != null) this.closeWindow(p.windowId).catch(() => {});
    if (approved) p.resolve(true);
    else p.reject(rejected(reason));
  }
}
