// The message vocabulary shared by every context of the extension.
//
//   page (inpage, main world) ──window.postMessage──▶ content (isolated world) ──runtime Port──▶ background
//   background ──runtime.sendMessage {target: 'offscreen'}──▶ offscreen (hosts the node)
//   offscreen  ──runtime.sendMessage {target: 'background'}──▶ background (node events)
//   popup / approval window ──runtime.sendMessage {target: 'background'}──▶ background
//
// Every hop names its direction so that a context never mistakes its own outgoing traffic (or another
// context's) for something addressed to it.

/** Namespace of the window channel between the inpage and content scripts. */
export const WINDOW_NS = 'chordial:v1';
/** `to` field of window messages. */
export const TO_CONTENT = 'content';
export const TO_PAGE = 'page';
/** Name of the runtime Port a content script opens to the background. */
export const PAGE_PORT = 'chordial-page';

/** Kinds of messages on the window channel and the page Port. */
export const Kind = Object.freeze({
  REQUEST: 'request', // {id, method, params}
  RESPONSE: 'response', // {id, result} | {id, error: {code, message, data?}}
  EVENT: 'event', // {event, data}
});

/** Public methods a page may call through `window.chordial.request`. */
export const PUBLIC_METHODS = Object.freeze([
  'chordial_status',
  'chordial_requestAccess',
  'chordial_send',
  'chordial_lookup',
  'chordial_announce',
  'chordial_withdraw',
  'chordial_discover',
]);

/** Steps of the one-signature flow, sent by the inpage script itself, never by `window.chordial.request`. */
export const INTERNAL_METHODS = Object.freeze([
  'chordial_internal_delegationRequest',
  'chordial_internal_completeDelegation',
  'chordial_internal_abortAccess',
]);

/** Methods allowed before the user approved the origin. */
export const UNAPPROVED_METHODS = Object.freeze(['chordial_status', 'chordial_requestAccess']);

/** Events `window.chordial.on` accepts. */
export const EVENTS = Object.freeze(['message', 'presence', 'statusChanged', 'disconnect']);

/** Targets of `chrome.runtime.sendMessage` traffic. */
export const Target = Object.freeze({ BACKGROUND: 'background', OFFSCREEN: 'offscreen' });

/** Operations the background asks of the offscreen document (`{target: 'offscreen', op, args}`). */
export const OffscreenOp = Object.freeze({
  STATUS: 'status',
  DELEGATION_REQUEST: 'delegationRequest',
  COMPLETE_DELEGATION: 'completeDelegation',
  SEND: 'send',
  LOOKUP: 'lookup',
  ANNOUNCE: 'announce',
  WITHDRAW: 'withdraw',
  DISCOVER: 'discover',
  APPLY_SETTINGS: 'applySettings',
  PEEK_INBOX: 'peekInbox', // messages the background could not hand to a page yet
  ACK_INBOX: 'ackInbox', // {origin, ids} — those were handed over
  DETAILED_STATUS: 'detailedStatus',
  FORGET_ORIGIN: 'forgetOrigin', // {origin} — revoked: withdraw its topics, drop its inbox
  PAIR_OFFER: 'pairOffer', // → {code, expires}
  PAIR_ANSWER: 'pairAnswer', // {code} → {code, expires}
  PAIR_COMPLETE: 'pairComplete', // {code} → {link, peer} once the link is open
  PAIR_STATE: 'pairState', // → {offer: {code, expires} | null, answer: {code, expires} | null}
});

/** Messages to the background from extension pages and the offscreen document (`{target: 'background', type}`). */
export const BackgroundMsg = Object.freeze({
  // offscreen → background
  OFFSCREEN_CONFIG: 'offscreenConfig', // the offscreen document asks for its settings when it loads
  NODE_EVENT: 'nodeEvent', // {event} — a node event, already mapped to the dApp vocabulary
  // approval window → background
  APPROVAL_GET: 'approvalGet', // {id} → {origin, wallet}
  APPROVAL_DECIDE: 'approvalDecide', // {id, approve}
  // popup → background
  POPUP_STATUS: 'popupStatus', // → node status (detailed)
  POPUP_LIST_APPROVED: 'popupListApproved', // → [{origin, approvedAt, wallet}]
  POPUP_REVOKE: 'popupRevoke', // {origin} → whether it was approved (its pages get 4100 from now on)
  POPUP_GET_SETTINGS: 'popupGetSettings', // → settings
  POPUP_SET_SETTINGS: 'popupSetSettings', // {settings} → settings (node restarted with them)
  POPUP_PAIR_OFFER: 'popupPairOffer', // → {code, expires}
  POPUP_PAIR_ANSWER: 'popupPairAnswer', // {code} → {code, expires}
  POPUP_PAIR_COMPLETE: 'popupPairComplete', // {code} → {link, peer}
  POPUP_PAIR_STATE: 'popupPairState', // → {offer, answer} still usable (the popup closes when it loses focus)
});

/** Whether a value is a window-channel message addressed `to` the given side. */
export function isWindowMessage(data, to) {
  return (
    data !== null &&
    typeof data === 'object' &&
    data.ns === WINDOW_NS &&
    data.to === to &&
    typeof data.kind === 'string'
  );
}
