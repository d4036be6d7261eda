// Shared by the SIWE fixture generator and tests: an independent (JavaScript) statement of what a Chordial
// delegation is. Nothing here is imported from the Rust side, so agreement between the two is evidence.

import { privateKeyToAccount } from 'viem/accounts';

/** The statement every Chordial delegation carries (core/src/identity/delegation.rs DELEGATION_STATEMENT). */
export const DELEGATION_STATEMENT =
  "Chordial: let this device's Chordial node (session key in the URI) publish your presence, join topics, " +
  'and send and receive end-to-end encrypted messages as this address until the expiration time. ' +
  'It cannot sign transactions or move funds.';

export const NETWORK_RESOURCE_PREFIX = 'urn:chordial:network:';

const BASE58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** Bitcoin base58 of a byte array. */
export function base58(bytes) {
  let n = 0n;
  for (const b of bytes) n = n * 256n + BigInt(b);
  let out = '';
  while (n > 0n) {
    out = BASE58_ALPHABET[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = '1' + out;
  }
  return out;
}

export function hexToBytes(hex) {
  const h = hex.startsWith('0x') ? hex.slice(2) : hex;
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  return '0x' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The 33-byte compressed SEC1 public key of a secp256k1 private key (hex), via viem's account. */
export function compressedPublicKey(privateKey) {
  const uncompressed = hexToBytes(privateKeyToAccount(privateKey).publicKey); // 0x04 ‖ x ‖ y
  const out = new Uint8Array(33);
  out[0] = uncompressed[64] % 2 === 0 ? 0x02 : 0x03;
  out.set(uncompressed.slice(1, 33), 1);
  return out;
}

/** did:key of a compressed secp256k1 key: multicodec secp256k1-pub (0xe7 0x01), multibase base58btc. */
export function didKey(compressed) {
  return 'did:key:z' + base58(Uint8Array.of(0xe7, 0x01, ...compressed));
}
