// Errors as a dApp sees them: EIP-1193 provider errors (a numeric `code`, a `message`, optional `data`).
// Node errors (string codes from node-wasm, see docs/api.md) are mapped here, in one place.

export const ErrorCode = Object.freeze({
  USER_REJECTED: 4001, // the user (or the wallet) refused
  UNAUTHORIZED: 4100, // the origin is not approved, or the step is not allowed now
  UNSUPPORTED_METHOD: 4200, // not a method window.chordial knows
  DISCONNECTED: 4900, // the extension or its node cannot be reached
  INVALID_PARAMS: -32602, // malformed parameters
  REQUEST_FAILED: -32000, // the network could not carry the request; `data.reason` says why
  INTERNAL: -32603, // a bug or an unexpected failure inside the extension
});

const DEFAULT_MESSAGES = {
  4001: 'User rejected the request.',
  4100: 'This origin is not authorized; call chordial_requestAccess first.',
  4200: 'Unsupported method.',
  4900: 'Chordial is disconnected.',
  [-32602]: 'Invalid params.',
  [-32000]: 'The request failed.',
  [-32603]: 'Internal error.',
};

/** An EIP-1193 error. Crosses contexts as the plain object `toJSON()` gives. */
export class ProviderError extends Error {
  constructor(code, message, data) {
    super(message || DEFAULT_MESSAGES[code] || 'Error');
    this.name = 'ProviderError';
    this.code = code;
    if (data !== undefined) this.data = data;
  }

  toJSON() {
    const out = { code: this.code, message: this.message };
    if (this.data !== undefined) out.data = this.data;
    return out;
  }
}

export const rejected = (message) => new ProviderError(ErrorCode.USER_REJECTED, message);
export const unauthorized = (message) => new ProviderError(ErrorCode.UNAUTHORIZED, message);
export const unsupported = (method) =>
  new ProviderError(ErrorCode.UNSUPPORTED_METHOD, `Unsupported method: ${String(method)}`);
export const disconnected = (message) => new ProviderError(ErrorCode.DISCONNECTED, message);
export const invalidParams = (message) => new ProviderError(ErrorCode.INVALID_PARAMS, message);

/** Rebuilds a ProviderError from its plain form; anything unrecognisable becomes an internal error. */
export function fromPlain(plain) {
  if (plain instanceof ProviderError) return plain;
  if (plain && Number.isInteger(plain.code) && typeof plain.message === 'string') {
    return new ProviderError(plain.code, plain.message, plain.data);
  }
  return new ProviderError(ErrorCode.INTERNAL, String(plain?.message ?? plain));
}

// node-wasm error codes (ChordialError.code) → provider codes.
const NODE_CODE_MAP = {
  INVALID_ARGUMENT: ErrorCode.INVALID_PARAMS,
  TOO_LARGE: ErrorCode.INVALID_PARAMS,
  NO_DELEGATION: ErrorCode.UNAUTHORIZED,
  NO_PENDING_REQUEST: ErrorCode.UNAUTHORIZED,
  BAD_SIGNATURE: ErrorCode.INVALID_PARAMS, // a signature that does not verify is bad input, not a refusal
  NOT_RUNNING: ErrorCode.DISCONNECTED,
  STOPPED: ErrorCode.DISCONNECTED,
  CLOSED: ErrorCode.DISCONNECTED,
  UNSUPPORTED: ErrorCode.DISCONNECTED,
  UNAVAILABLE: ErrorCode.DISCONNECTED, // the extension was built without node-wasm
  NOT_CONNECTED: ErrorCode.REQUEST_FAILED,
  NOT_FOUND: ErrorCode.REQUEST_FAILED,
  MAILBOX_FULL: ErrorCode.REQUEST_FAILED,
  TIMEOUT: ErrorCode.REQUEST_FAILED,
  NO_ROUTE: ErrorCode.REQUEST_FAILED,
  HOP_LIMIT: ErrorCode.REQUEST_FAILED,
  REFUSED: ErrorCode.REQUEST_FAILED,
  RECORD_REFUSED: ErrorCode.REQUEST_FAILED,
  STORAGE: ErrorCode.INTERNAL,
  ALREADY_RUNNING: ErrorCode.INTERNAL,
  BUSY: ErrorCode.REQUEST_FAILED,
  WEBRTC: ErrorCode.REQUEST_FAILED,
  // Pairing codes (popup only): a code that cannot be used is bad input.
  BAD_CODE: ErrorCode.INVALID_PARAMS,
  CODE_EXPIRED: ErrorCode.INVALID_PARAMS,
  CODE_USED: ErrorCode.INVALID_PARAMS,
  NO_MATCHING_OFFER: ErrorCode.INVALID_PARAMS,
};

/** Maps a node error (`{code: 'TIMEOUT', message}`) to a ProviderError; `data.reason` keeps the node's code. */
export function fromNodeError(err) {
  const reason = typeof err?.code === 'string' ? err.code : 'INTERNAL';
  const code = NODE_CODE_MAP[reason] ?? ErrorCode.INTERNAL;
  const message = typeof err?.message === 'string' && err.message ? err.message : reason;
  return new ProviderError(code, message, { reason });
}
