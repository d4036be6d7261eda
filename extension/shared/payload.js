// Message payloads. A dApp sends a string or bytes; the node carries bytes. To give the receiving page back
// exactly what was sent (a string stays a string), window.chordial prefixes one tag byte:
//   0x01 ‖ UTF-8 text        0x02 ‖ raw bytes
// A payload without a known tag (sent through the node API by something other than window.chordial) reaches
// the page as bytes, whole. Between contexts (runtime messaging is JSON) data travels as
// {text: string} or {base64: string}.

export const TAG_TEXT = 0x01;
export const TAG_BYTES = 0x02;
/** The node's limit on one message (node-wasm `send`: at most 65,536 bytes), tag included. */
export const MAX_NODE_PAYLOAD = 65536;
export const MAX_DATA_BYTES = MAX_NODE_PAYLOAD - 1;

export function bytesToBase64(bytes) {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

export function base64ToBytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A page value (string, Uint8Array, ArrayBuffer, other typed array) → the wire form, or null if neither. */
export function dataToWire(data) {
  if (typeof data === 'string') return { text: data };
  if (data instanceof Uint8Array) return { base64: bytesToBase64(data) };
  if (data instanceof ArrayBuffer) return { base64: bytesToBase64(new Uint8Array(data)) };
  if (ArrayBuffer.isView(data)) {
    return { base64: bytesToBase64(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)) };
  }
  return null;
}

/** The wire form → what the page gets (string or Uint8Array). */
export function wireToData(wire) {
  if (typeof wire?.text === 'string') return wire.text;
  return base64ToBytes(wire.base64);
}

/** The wire form → the node's tagged bytes. Throws on a malformed wire value. */
export function wireToNodeBytes(wire) {
  if (wire && typeof wire.text === 'string' && !('base64' in wire)) {
    const utf8 = new TextEncoder().encode(wire.text);
    const out = new Uint8Array(utf8.length + 1);
    out[0] = TAG_TEXT;
    out.set(utf8, 1);
    return out;
  }
  if (wire && typeof wire.base64 === 'string' && !('text' in wire)) {
    const raw = base64ToBytes(wire.base64);
    const out = new Uint8Array(raw.length + 1);
    out[0] = TAG_BYTES;
    out.set(raw, 1);
    return out;
  }
  throw new TypeError('data must be {text} or {base64}');
}

/** The node's bytes → the wire form (see the header for untagged payloads). */
export function nodeBytesToWire(bytes) {
  if (bytes.length > 0 && bytes[0] === TAG_TEXT) {
    try {
      return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(1)) };
    } catch {
      return { base64: bytesToBase64(bytes) };
    }
  }
  if (bytes.length > 0 && bytes[0] === TAG_BYTES) return { base64: bytesToBase64(bytes.subarray(1)) };
  return { base64: bytesToBase64(bytes) };
}

/** Size in bytes of a wire value once decoded (without the tag). */
export function wireByteLength(wire) {
  if (typeof wire?.text === 'string') return new TextEncoder().encode(wire.text).length;
  const b64 = wire.base64;
  const pad = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  return (b64.length / 4) * 3 - pad;
}
