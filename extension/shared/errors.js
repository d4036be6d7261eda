// Errors as a dApp sees them: EIP-1193 provider errors (a numeric `code`, a `message`, optional `data`).
// The numbers the extension raises itself are here; a node error (string `code` from node-wasm, see
// docs/api.md) brings its number along as `rpcCode`, and fromNodeError uses it.

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

// Errors with a string `code` that the extension raises itself, not the node: their provider codes. A node
// error carries its own number (`rpcCode`, from the one table in node-wasm/src/error.rs, printed in
// docs/dapp-api.md); the extension keeps no copy of that table.
const EXTENSION_REASONS = Object.freeze({
  UNAVAILABLE: ErrorCode.DISCONNECTED, // no node-wasm in this build, or the node's document cannot be reached
  INTERNAL: ErrorCode.INTERNAL,
});

/**
 * Maps a node error (`{code: 'TIMEOUT', rpcCode: -32000, message}`) to a ProviderError; `data.reason` keeps the
 * node's code. The number is the error's own `rpcCode`; without one (the extension's own reasons, or something
 * unexpected) it is the extension's, else INTERNAL.
 */
export function fromNodeError(err) {
  const reason = typeof err?.code === 'string' ? err.code : 'INTERNAL';
  const code = isProviderCode(err?.rpcCode) ? err.rpcCode : (EXTENSION_REASONS[reason] ?? ErrorCode.INTERNAL);
  const message = typeof err?.message === 'string' && err.message ? err.message : reason;
  return new ProviderError(code, message, { reason });
}

const PROVIDER_CODES = new Set(Object.values(ErrorCode));
const isProviderCode = (n) => PROVIDER_CODES.has(n);

/** A node error in the plain form that crosses contexts: its `code`, `message` and, when it has one, `rpcCode`. */
export function plainNodeError(e) {
  const out = { code: typeof e?.code === 'string' ? e.code : 'INTERNAL', message: String(e?.message ?? e) };
  if (isProviderCode(e?.rpcCode)) out.rpcCode = e.rpcCode;
  return out;
}
