// Validation of the parameters of every method a page may call. The background runs this on everything that
// arrives from a page before it acts; a failure is a -32602 error naming the bad field.

import { invalidParams, unsupported } from './errors.js';
import { PUBLIC_METHODS, INTERNAL_METHODS } from './protocol.js';
import { MAX_DATA_BYTES, wireByteLength } from './payload.js';

export const MAX_TOPIC_LENGTH = 128;
export const MAX_TTL_SECONDS = 24 * 3600;
const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
const SIGNATURE_RE = /^0x[0-9a-fA-F]{130}$/;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** EIP-1193 allows params as an object or an array; Chordial's methods take one object (or nothing). */
function unwrap(method, params) {
  if (params === undefined || params === null) return {};
  if (Array.isArray(params)) {
    if (params.length === 0) return {};
    if (params.length === 1 && isPlainObject(params[0])) return params[0];
    throw invalidParams(`${method}: params must be one object`);
  }
  if (isPlainObject(params)) return params;
  throw invalidParams(`${method}: params must be an object`);
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function address(method, p, field) {
  const v = p[field];
  if (typeof v !== 'string' || !ADDRESS_RE.test(v)) {
    throw invalidParams(`${method}: ${field} must be a 0x-prefixed 20-byte hex address`);
  }
  return v;
}

function topic(method, p) {
  const t = p.topic;
  if (typeof t !== 'string' || t.length === 0 || t.length > MAX_TOPIC_LENGTH) {
    throw invalidParams(`${method}: topic must be a non-empty string of at most ${MAX_TOPIC_LENGTH} characters`);
  }
  return t;
}

function wireData(method, d) {
  const isText = isPlainObject(d) && typeof d.text === 'string' && Object.keys(d).length === 1;
  const isBytes =
    isPlainObject(d) &&
    typeof d.base64 === 'string' &&
    Object.keys(d).length === 1 &&
    d.base64.length % 4 === 0 &&
    BASE64_RE.test(d.base64);
  if (!isText && !isBytes) throw invalidParams(`${method}: data must be a string or bytes`);
  if (wireByteLength(d) > MAX_DATA_BYTES) {
    throw invalidParams(`${method}: data is larger than ${MAX_DATA_BYTES} bytes`);
  }
  return isText ? { text: d.text } : { base64: d.base64 };
}

/**
 * Checks `method` and its params; returns the normalised params object. Throws 4200 for a method that is not
 * public or internal, -32602 for bad params.
 */
export function validateRequest(method, params) {
  if (typeof method !== 'string' || (!PUBLIC_METHODS.includes(method) && !INTERNAL_METHODS.includes(method))) {
    throw unsupported(method);
  }
  const p = unwrap(method, params);
  switch (method) {
    case 'chordial_status':
    case 'chordial_requestAccess':
    case 'chordial_internal_abortAccess':
      return {};
    case 'chordial_send':
      return { to: address(method, p, 'to'), data: wireData(method, p.data) };
    case 'chordial_lookup':
      return { address: address(method, p, 'address') };
    case 'chordial_announce': {
      const out = { topic: topic(method, p) };
      if (p.ttl !== undefined) {
        if (!Number.isInteger(p.ttl) || p.ttl < 1 || p.ttl > MAX_TTL_SECONDS) {
          throw invalidParams(`${method}: ttl must be an integer number of seconds, 1 to ${MAX_TTL_SECONDS}`);
        }
        out.ttl = p.ttl;
      }
      return out;
    }
    case 'chordial_withdraw':
    case 'chordial_discover':
      return { topic: topic(method, p) };
    case 'chordial_internal_delegationRequest': {
      const chainId = p.chainId;
      if (!Number.isSafeInteger(chainId) || chainId < 1) {
        throw invalidParams(`${method}: chainId must be a positive integer`);
      }
      return { address: address(method, p, 'address'), chainId };
    }
    case 'chordial_internal_completeDelegation':
      if (typeof p.signature !== 'string' || !SIGNATURE_RE.test(p.signature)) {
        throw invalidParams(`${method}: signature must be a 0x-prefixed 65-byte hex string`);
      }
      return { signature: p.signature };
    default:
      throw unsupported(method);
  }
}
