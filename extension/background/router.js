// The background's router: page Ports in, node operations out, node events back to the pages of the right
// origin. It decides who may do what; the offscreen document only carries out.
//
//   page Port ──{kind: 'request', id, method, params}──▶ handleRequest(origin from port.sender)
//        ◀──{kind: 'response', id, result | error}──
//        ◀──{kind: 'event', event, data}── (messages, presence, statusChanged; approved origins only)
//
// Access: an origin is approved when it is in the PermissionStore. The one-signature flow adds a short-lived,
// in-memory "grant" between the user's approval and the wallet's signature: only a granted origin may ask the
// node for its SIWE text and hand back the signature, and the approval is stored only once the signature
// verified — a refusal leaves nothing behind.

import {
  Kind,
  PAGE_PORT,
  PUBLIC_METHODS,
  INTERNAL_METHODS,
  UNAPPROVED_METHODS,
  BackgroundMsg,
  OffscreenOp,
} from '../shared/protocol.js';
import { ProviderError, ErrorCode, fromNodeError, unauthorized, invalidParams, unsupported } from '../shared/errors.js';
import { validateRequest } from '../shared/params.js';
import { originOfSender } from './permissions.js';

/** How long an approved origin may take to bring the wallet's signature. */
export const GRANT_TTL_MS = 5 * 60_000;

export class Router {
  /**
   * @param deps.permissions PermissionStore
   * @param deps.approvals   ApprovalManager
   * @param deps.node        {call(op, args)} — OffscreenManager
   * @param deps.settings    SettingsStore
   * @param deps.version     extension version string
   * @param deps.extensionId      runtime.id — `sender.id` of this extension's own pages (on Firefox the
   *                              gecko id, not the host of its moz-extension:// URLs); default: that host
   * @param deps.extensionOrigin  "chrome-extension://<id>" — senders of popup / approval messages
   * @param deps.offscreenUrl     URL of the offscreen document — the only sender of node events (null on
   *                              Firefox, where the node lives in the background page itself)
   */
  constructor({
    permissions,
    approvals,
    node,
    settings,
    version,
    extensionId,
    extensionOrigin,
    offscreenUrl,
    now = Date.now,
  }) {
    this.permissions = permissions;
    this.approvals = approvals;
    this.node = node;
    this.settings = settings;
    this.version = version;
    this.extensionOrigin = extensionOrigin;
    this.extensionId = extensionId ?? new URL(extensionOrigin).host;
    this.offscreenUrl = offscreenUrl ?? null;
    this.now = now;
    this.ports = new Map(); // Port → {origin}
    this.grants = new Map(); // origin → expiry (ms)
    this.flushing = new Map(); // origin → the inbox flush under way
  }

  // ---- page Ports ----------------------------------------------------------------------------------------

  /** chrome.runtime.onConnect. */
  onConnect(port) {
    if (port.name !== PAGE_PORT) return;
    const origin = originOfSender(port.sender);
    if (!origin) {
      port.disconnect();
      return;
    }
    this.ports.set(port, { origin });
    port.onDisconnect.addListener(() => this.ports.delete(port));
    port.onMessage.addListener((msg) => this.onPortMessage(port, origin, msg));
    // Messages that arrived while no page of this origin was connected.
    this.flushInbox(origin).catch(() => {});
  }

  onPortMessage(port, origin, msg) {
    if (!msg || typeof msg !== 'object' || msg.kind !== Kind.REQUEST) return; // pings and noise
    const { id } = msg;
    if (typeof id !== 'string' && !Number.isFinite(id)) return;
    // The origin is the one the browser gave the Port; any origin field in the payload is ignored.
    this.handleRequest(origin, msg.method, msg.params).then(
      (result) => safePost(port, { kind: Kind.RESPONSE, id, result: result ?? null }),
      (err) => safePost(port, { kind: Kind.RESPONSE, id, error: toProviderError(err).toJSON() }),
    );
  }

  /** One page request; resolves with the result or rejects with a ProviderError. */
  async handleRequest(origin, method, rawParams) {
    // Order matters: an unknown method is 4200, then an unapproved origin learns nothing more than 4100,
    // then the params are checked (-32602).
    if (!isKnownMethod(method)) throw unsupported(method);
    const approved = await this.permissions.isApproved(origin);
    if (!approved && !UNAPPROVED_METHODS.includes(method) && !INTERNAL_METHODS.includes(method)) {
      throw unauthorized();
    }
    const params = validateRequest(method, rawParams);
    switch (method) {
      case 'chordial_status':
        return this.status(origin, approved);
      case 'chordial_requestAccess':
        return this.requestAccess(origin, approved);
      case 'chordial_internal_delegationRequest':
        return this.delegationRequest(origin, params);
      case 'chordial_internal_completeDelegation':
        return this.completeDelegation(origin, params);
      case 'chordial_internal_abortAccess':
        this.grants.delete(origin);
        return null;
      case 'chordial_send':
        return this.nodeCall(OffscreenOp.SEND, { origin, to: params.to, data: params.data });
      case 'chordial_lookup':
        return this.nodeCall(OffscreenOp.LOOKUP, { address: params.address });
      case 'chordial_announce':
        await this.nodeCall(OffscreenOp.ANNOUNCE, { origin, topic: params.topic, ttl: params.ttl });
        return true;
      case 'chordial_withdraw':
        await this.nodeCall(OffscreenOp.WITHDRAW, { origin, topic: params.topic });
        return true;
      case 'chordial_discover':
        return this.nodeCall(OffscreenOp.DISCOVER, { origin, topic: params.topic });
      default:
        throw new ProviderError(ErrorCode.UNSUPPORTED_METHOD, `Unsupported method: ${method}`);
    }
  }

  async nodeCall(op, args) {
    try {
      return await this.node.call(op, args);
    } catch (e) {
      throw fromNodeError(e);
    }
  }

  async nodeStatus() {
    try {
      return await this.node.call(OffscreenOp.STATUS, {});
    } catch (e) {
      return { online: false, wallet: null, delegated: false, available: false, error: e };
    }
  }

  async status(origin, approved) {
    const st = await this.nodeStatus();
    return {
      installed: true,
      version: this.version,
      online: st.online === true,
      approved,
      address: approved && st.delegated ? st.wallet : null,
    };
  }

  async requestAccess(origin, approved) {
    let st = await this.nodeStatus();
    if (st.available === false) {
      throw fromNodeError({
        code: st.error?.code ?? 'UNAVAILABLE',
        message: `The Chordial node is not available: ${st.error?.message ?? 'unknown reason'}`,
      });
    }
    if (approved && st.delegated) return { address: st.wallet };
    if (!approved) {
      await this.approvals.request(origin, { wallet: st.delegated ? st.wallet : null }); // rejects 4001
      st = await this.nodeStatus();
      if (st.delegated) {
        await this.permissions.approve(origin, { wallet: st.wallet });
        this.flushInbox(origin).catch(() => {});
        return { address: st.wallet };
      }
    }
    // Approved (now or earlier) but the node has no valid delegation: the page must bring one signature.
    this.grants.set(origin, this.now() + GRANT_TTL_MS);
    return { needsDelegation: true };
  }

  requireGrant(origin) {
    const until = this.grants.get(origin);
    if (until === undefined || until < this.now()) {
      this.grants.delete(origin);
      throw unauthorized('No access request is waiting for a signature from this origin.');
    }
  }

  async delegationRequest(origin, { address, chainId }) {
    this.requireGrant(origin);
    // The SIWE domain is the page's own host, as the browser reported it.
    const domain = new URL(origin).host;
    const message = await this.nodeCall(OffscreenOp.DELEGATION_REQUEST, { domain, address, chainId });
    return { message };
  }

  async completeDelegation(origin, { signature }) {
    this.requireGrant(origin);
    const st = await this.nodeStatus();
    if (st.delegated) {
      this.grants.delete(origin);
      throw unauthorized('The node already has a session; request access again.');
    }
    let done;
    try {
      done = await this.nodeCall(OffscreenOp.COMPLETE_DELEGATION, { signature });
    } finally {
      this.grants.delete(origin);
    }
    await this.permissions.approve(origin, { wallet: done.wallet });
    this.broadcastStatus({ online: false, address: done.wallet }).catch(() => {});
    this.flushInbox(origin).catch(() => {});
    return { address: done.wallet };
  }

  /**
   * The user revoked `origin` in the popup. From the next request on its pages get 4100 (the store is read on
   * every request); they hear `statusChanged` with no address now, its topics are withdrawn and its waiting
   * messages dropped. Resolves whether the origin was approved.
   */
  async revoke(origin) {
    const was = await this.permissions.revoke(origin);
    this.grants.delete(origin);
    if (!was) return false;
    const ports = this.portsOf(origin);
    if (ports.length > 0) {
      const st = await this.nodeStatus();
      for (const p of ports) {
        safePost(p, { kind: Kind.EVENT, event: 'statusChanged', data: { online: st.online === true, address: null } });
      }
    }
    // The node may not be running (no session yet): nothing of this origin is announced then.
    await this.node.call(OffscreenOp.FORGET_ORIGIN, { origin }).catch(() => {});
    return true;
  }

  // ---- node events (from the offscreen document) -----------------------------------------------------------

  portsOf(origin) {
    return [...this.ports].filter(([, v]) => v.origin === origin).map(([p]) => p);
  }

  /** Delivers one message event to the connected pages of its origin; false when none could take it. */
  async deliverMessage(ev) {
    const ports = this.portsOf(ev.origin);
    if (ports.length === 0 || !(await this.permissions.isApproved(ev.origin))) return false;
    const data = { from: ev.from, data: ev.data, id: ev.id, sentAt: ev.sentAt };
    let delivered = false;
    for (const p of ports) delivered = safePost(p, { kind: Kind.EVENT, event: 'message', data }) || delivered;
    return delivered;
  }

  /** Hands the offscreen inbox of `origin` to its pages; what was posted is acknowledged and leaves the inbox. */
  flushInbox(origin) {
    // One flush per origin at a time, so two pages connecting together never get the same message twice.
    const prev = this.flushing.get(origin) ?? Promise.resolve();
    const run = prev.catch(() => {}).then(() => this.flushInboxNow(origin));
    this.flushing.set(origin, run);
    run
      .finally(() => {
        if (this.flushing.get(origin) === run) this.flushing.delete(origin);
      })
      .catch(() => {});
    return run;
  }

  async flushInboxNow(origin) {
    if (this.portsOf(origin).length === 0 || !(await this.permissions.isApproved(origin))) return;
    const items = await this.node.call(OffscreenOp.PEEK_INBOX, { origin });
    const ids = [];
    for (const ev of items ?? []) {
      if (!(await this.deliverMessage(ev))) break; // the pages went away: the rest stays for the next flush
      ids.push(ev.id);
    }
    if (ids.length > 0) await this.node.call(OffscreenOp.ACK_INBOX, { origin, ids });
  }

  async broadcastStatus({ online, address }) {
    const seen = new Map();
    for (const [port, { origin }] of this.ports) {
      if (!seen.has(origin)) seen.set(origin, await this.permissions.isApproved(origin));
      if (seen.get(origin)) safePost(port, { kind: Kind.EVENT, event: 'statusChanged', data: { online, address } });
    }
  }

  async onNodeEvent(ev) {
    switch (ev?.type) {
      case 'message':
        return { delivered: await this.deliverMessage(ev) };
      case 'presence': {
        if (!(await this.permissions.isApproved(ev.origin))) return { delivered: false };
        const data = { topic: ev.topic, address: ev.address, present: ev.present };
        for (const p of this.portsOf(ev.origin)) safePost(p, { kind: Kind.EVENT, event: 'presence', data });
        return { delivered: true };
      }
      case 'status':
        await this.broadcastStatus({ online: ev.online, address: ev.address ?? null });
        return { delivered: true };
      default:
        return { delivered: false };
    }
  }

  // ---- runtime messages (offscreen, approval window, popup) ------------------------------------------------

  /** chrome.runtime.onMessage; resolves with the reply, or undefined when the message is not for us. */
  async onRuntimeMessage(msg, sender) {
    if (!msg || msg.target !== 'background') return undefined;
    const fromExtension = sender?.id === this.extensionId;
    const url = typeof sender?.url === 'string' ? sender.url : '';
    if (!fromExtension || !url.startsWith(`${this.extensionOrigin}/`)) {
      return { ok: false, error: unauthorized('Not an extension page.').toJSON() };
    }
    try {
      return { ok: true, result: await this.runtimeRequest(msg, url) };
    } catch (e) {
      return { ok: false, error: toProviderError(e).toJSON() };
    }
  }

  async runtimeRequest(msg, url) {
    const fromOffscreen = this.offscreenUrl !== null && url.split(/[?#]/)[0] === this.offscreenUrl;
    switch (msg.type) {
      case BackgroundMsg.OFFSCREEN_CONFIG:
        if (!fromOffscreen) throw unauthorized('Only the offscreen document asks for its config.');
        return this.settings.get();
      case BackgroundMsg.NODE_EVENT:
        if (!fromOffscreen) throw unauthorized('Only the offscreen document reports node events.');
        return this.onNodeEvent(msg.event);
      case BackgroundMsg.APPROVAL_GET: {
        const req = this.approvals.get(msg.id);
        if (!req) throw invalidParams('No such approval request (it may have timed out).');
        return req;
      }
      case BackgroundMsg.APPROVAL_DECIDE:
        if (!this.approvals.decide(msg.id, msg.approve === true)) {
          throw invalidParams('No such approval request (it may have timed out).');
        }
        return true;
      case BackgroundMsg.POPUP_STATUS:
        return this.nodeCall(OffscreenOp.DETAILED_STATUS, {});
      case BackgroundMsg.POPUP_LIST_APPROVED:
        return this.permissions.list();
      case BackgroundMsg.POPUP_REVOKE:
        return this.revoke(String(msg.origin));
      case BackgroundMsg.POPUP_GET_SETTINGS:
        return this.settings.get();
      case BackgroundMsg.POPUP_SET_SETTINGS: {
        const next = await this.settings.set(msg.settings ?? {});
        await this.nodeCall(OffscreenOp.APPLY_SETTINGS, next);
        return next;
      }
      case BackgroundMsg.POPUP_PAIR_OFFER:
        return this.nodeCall(OffscreenOp.PAIR_OFFER, {});
      case BackgroundMsg.POPUP_PAIR_ANSWER:
        return this.nodeCall(OffscreenOp.PAIR_ANSWER, { code: String(msg.code ?? '') });
      case BackgroundMsg.POPUP_PAIR_COMPLETE:
        return this.nodeCall(OffscreenOp.PAIR_COMPLETE, { code: String(msg.code ?? '') });
      case BackgroundMsg.POPUP_PAIR_STATE:
        return this.nodeCall(OffscreenOp.PAIR_STATE, {});
      default:
        throw invalidParams(`Unknown message type: ${String(msg.type)}`);
    }
  }
}

function isKnownMethod(m) {
  return typeof m === 'string' && (PUBLIC_METHODS.includes(m) || INTERNAL_METHODS.includes(m));
}

function toProviderError(e) {
  if (e instanceof ProviderError) return e;
  if (e && Number.isInteger(e.code)) return new ProviderError(e.code, e.message, e.data);
  if (e && typeof e.code === 'string') return fromNodeError(e);
  return new ProviderError(ErrorCode.INTERNAL, String(e?.message ?? e));
}

/** Posts on a Port that may have gone; returns whether it was posted. */
function safePost(port, msg) {
  try {
    port.postMessage(msg);
    return true;
  } catch {
    return false;
  }
}
