// Writes tests/fixtures/siwe/viem-signed.json: Chordial delegations built and signed by viem (an
// implementation independent of ours), valid ones and broken ones, each broken one labelled with the
// DelegationError variant (or "SignatureHex" for WalletSignature::from_hex) the Rust verifier must return.
//
//   node tests/js/gen-siwe-fixtures.mjs
//
// Keys, times and nonces are fixed and signing is RFC 6979, so the output is identical on every run;
// tests/js/viem-fixtures.test.mjs checks that the committed file is what this script produces.

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createSiweMessage } from 'viem/siwe';
import { privateKeyToAccount } from 'viem/accounts';
import {
  DELEGATION_STATEMENT,
  NETWORK_RESOURCE_PREFIX,
  base58,
  bytesToHex,
  compressedPublicKey,
  didKey,
  hexToBytes,
} from './siwe-common.mjs';

export const FIXTURE_PATH = fileURLToPath(new URL('../fixtures/siwe/viem-signed.json', import.meta.url));

const NETWORK = 'chordial-test';
const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const MINUTE = 60_000;
const DAY = 86_400_000;
/** secp256k1 group order. */
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

// Test-only keys. Never use patterned keys for anything real.
const WALLET_A = '0x' + '11'.repeat(32);
const WALLET_B = '0x' + '22'.repeat(32);
const SESSION_1 = '0x' + 'a1'.repeat(32);
const SESSION_2 = '0x' + 'b2'.repeat(32);

function session(privateKey) {
  const compressed = compressedPublicKey(privateKey);
  return { privateKey, publicKey: bytesToHex(compressed), did: didKey(compressed) };
}

/** A Chordial delegation message as viem builds it; `over` overrides createSiweMessage parameters. */
function delegationText({ wallet = WALLET_A, sessionKey = SESSION_1, ...over } = {}) {
  return createSiweMessage({
    domain: 'app.example.org',
    address: privateKeyToAccount(wallet).address,
    statement: DELEGATION_STATEMENT,
    uri: session(sessionKey).did,
    version: '1',
    chainId: 1,
    nonce: 'viemNonce0000001',
    issuedAt: new Date(NOW - DAY),
    expirationTime: new Date(NOW - DAY + 30 * DAY),
    resources: [NETWORK_RESOURCE_PREFIX + NETWORK],
    ...over,
  });
}

async function sign(wallet, message) {
  return privateKeyToAccount(wallet).signMessage({ message });
}

/** Replaces the last byte (v) of a 0x-hex signature. */
function withV(signature, v) {
  return signature.slice(0, 130) + v.toString(16).padStart(2, '0');
}

/** The malleated twin of a signature: s → n − s with the recovery parity flipped. */
function highS(signature) {
  const bytes = hexToBytes(signature);
  const s = BigInt(bytesToHex(bytes.slice(32, 64)));
  const twin = (N - s).toString(16).padStart(64, '0');
  const v = bytes[64] === 27 ? 28 : 27;
  return signature.slice(0, 66) + twin + v.toString(16);
}

export async function generate() {
  const cases = [];
  const valid = async (name, { wallet = WALLET_A, sessionKey = SESSION_1, now = NOW, ...over } = {}, edit) => {
    const message = delegationText({ wallet, sessionKey, ...over });
    let signature = await sign(wallet, message);
    if (edit) signature = edit(signature);
    const s = session(sessionKey);
    const parsedTimes = {
      issued_at: (over.issuedAt ?? new Date(NOW - DAY)).getTime(),
      expires: (over.expirationTime ?? new Date(NOW - DAY + 30 * DAY)).getTime(),
    };
    cases.push({
      name,
      expect: 'ok',
      network: NETWORK,
      now,
      message,
      signature,
      address: privateKeyToAccount(wallet).address,
      wallet_private_key: wallet,
      session_private_key: s.privateKey,
      session_public_key: s.publicKey,
      session_did: s.did,
      ...parsedTimes,
      not_before: Math.max(parsedTimes.issued_at, over.notBefore?.getTime() ?? 0),
    });
  };
  const invalid = (name, expect, message, signature, extra = {}) =>
    cases.push({ name, expect, network: NETWORK, now: NOW, message, signature, ...extra });

  // Valid delegations.
  await valid('basic');
  await valid('other_wallet_chain_not_before_request_id', {
    wallet: WALLET_B,
    sessionKey: SESSION_2,
    domain: 'localhost:8080',
    chainId: 11155111,
    nonce: 'Nonce2ndWallet77',
    notBefore: new Date(NOW - DAY + 3_600_000),
    requestId: 'req-42',
  });
  await valid('v_written_as_0_or_1', {}, (sig) => withV(sig, hexToBytes(sig)[64] - 27));
  await valid('uppercase_hex_signature', {}, (sig) => '0x' + sig.slice(2).toUpperCase());
  await valid('issued_within_clock_skew', {
    issuedAt: new Date(NOW + 4 * MINUTE),
    expirationTime: new Date(NOW + 30 * DAY),
  });
  await valid('maximum_lifetime_366_days', {
    issuedAt: new Date(NOW - DAY),
    expirationTime: new Date(NOW - DAY + 366 * DAY),
  });
  await valid('one_millisecond_before_expiry', { now: NOW - DAY + 30 * DAY - 1 });

  // Broken delegations.
  const base = delegationText();
  const baseSig = await sign(WALLET_A, base);
  const addressB = privateKeyToAccount(WALLET_B).address;

  const claimsB = delegationText({ address: addressB });
  invalid('address_line_names_another_wallet', 'WrongSigner', claimsB, await sign(WALLET_A, claimsB));
  invalid('tampered_statement', 'WrongStatement', base.replace('It cannot sign', 'It can sign'), baseSig);
  invalid(
    'foreign_statement_properly_signed',
    'WrongStatement',
    delegationText({ statement: 'Sign in to app.example.org.' }),
    await sign(WALLET_A, delegationText({ statement: 'Sign in to app.example.org.' })),
  );
  invalid('no_statement', 'WrongStatement', delegationText({ statement: undefined }),
    await sign(WALLET_A, delegationText({ statement: undefined })));
  invalid('tampered_nonce', 'WrongSigner', base.replace('viemNonce0000001', 'viemNonce0000002'), baseSig);
  const extended = base.replace(
    `Expiration Time: ${new Date(NOW - DAY + 30 * DAY).toISOString()}`,
    `Expiration Time: ${new Date(NOW - DAY + 300 * DAY).toISOString()}`,
  );
  invalid('tampered_expiration_time', 'WrongSigner', extended, baseSig);

  const signedWith = async (name, expect, over, extra) => {
    const message = delegationText(over);
    invalid(name, expect, message, await sign(WALLET_A, message), extra);
  };
  await signedWith('expired', 'Expired', {
    issuedAt: new Date(NOW - 40 * DAY),
    expirationTime: new Date(NOW - 10 * DAY),
  });
  await signedWith('expires_exactly_now', 'Expired', {
    issuedAt: new Date(NOW - DAY),
    expirationTime: new Date(NOW),
  });
  await signedWith('issued_in_the_future', 'NotYetValid', {
    issuedAt: new Date(NOW + 6 * MINUTE),
    expirationTime: new Date(NOW + 30 * DAY),
  });
  await signedWith('not_before_in_the_future', 'NotYetValid', { notBefore: new Date(NOW + DAY) });
  await signedWith('expires_before_it_starts', 'InvalidWindow', {
    issuedAt: new Date(NOW - DAY),
    expirationTime: new Date(NOW - 2 * DAY),
  });
  await signedWith('lifetime_too_long', 'LifetimeTooLong', {
    issuedAt: new Date(NOW - DAY),
    expirationTime: new Date(NOW - DAY + 367 * DAY),
  });
  await signedWith('no_expiration_time', 'MissingExpiration', { expirationTime: undefined });
  await signedWith('wrong_network', 'WrongNetwork', { resources: [NETWORK_RESOURCE_PREFIX + 'other'] });
  await signedWith('two_resources', 'BadResources', {
    resources: [NETWORK_RESOURCE_PREFIX + NETWORK, 'https://app.example.org/'],
  });
  await signedWith('resource_not_a_network', 'BadResources', { resources: ['https://app.example.org/'] });
  await signedWith('uri_not_a_did_key', 'BadUri', { uri: 'https://app.example.org/' });
  const edDid = 'did:key:z' + base58(Uint8Array.of(0xed, 0x01, ...new Uint8Array(32).fill(7)));
  await signedWith('uri_ed25519_did_key', 'BadUri', { uri: edDid });
  // Valid delegation to session 2, presented by session 1.
  await signedWith('presented_by_another_session', 'WrongSession', { sessionKey: SESSION_2 }, {
    verify_for: session(SESSION_1).did,
  });

  invalid('malformed_signature_hex', 'SignatureHex', base, baseSig.slice(0, 10) + 'zz' + baseSig.slice(12));
  invalid('signature_too_short', 'SignatureHex', base, baseSig.slice(0, 130));
  invalid('signature_without_0x', 'SignatureHex', base, baseSig.slice(2));
  invalid('v_is_29', 'SignatureHex', base, withV(baseSig, 29), { expect_raw: 'BadSignature' });
  invalid('v_flipped', 'WrongSigner', base, withV(baseSig, hexToBytes(baseSig)[64] === 27 ? 28 : 27));
  invalid('high_s_twin', 'BadSignature', base, highS(baseSig));
  invalid('zero_signature', 'BadSignature', base, '0x' + '00'.repeat(64) + '1b');
  const other = delegationText({ nonce: 'someOtherNonce01' });
  invalid('signature_of_another_message', 'WrongSigner', base, await sign(WALLET_A, other));
  invalid('signed_by_another_wallet', 'WrongSigner', base, await sign(WALLET_B, base));

  // Properly signed, but not strict EIP-4361 as Chordial reads it.
  const malformed = async (name, message) => invalid(name, 'Malformed', message, await sign(WALLET_A, message));
  await malformed('version_2', base.replace('Version: 1', 'Version: 2'));
  await malformed('nonce_too_short', base.replace('viemNonce0000001', 'short7n'));
  await malformed('lowercase_address_line', base.replace(
    privateKeyToAccount(WALLET_A).address, privateKeyToAccount(WALLET_A).address.toLowerCase()));
  await malformed('trailing_newline', base + '\n');
  await malformed('crlf_line_endings', base.replaceAll('\n', '\r\n'));
  await malformed('scheme_before_domain', delegationText({ scheme: 'https' }));
  await malformed('issued_at_not_rfc3339', base.replace(/Issued At: (\S+)/, 'Issued At: Sat Feb 28 2026'));
  await malformed('too_long', base.replace(DELEGATION_STATEMENT, DELEGATION_STATEMENT + ' x'.repeat(2000)));

  return {
    about:
      'Chordial delegations signed by viem (tests/js/gen-siwe-fixtures.mjs). expect: "ok", a DelegationError ' +
      'variant, or "SignatureHex" (WalletSignature::from_hex refuses the signature; expect_raw then names ' +
      'the error for the decoded bytes). verify_for: the did:key the delegation is presented for.',
    viem_version: '2.57.20',
    statement: DELEGATION_STATEMENT,
    cases,
  };
}

export function serialize(fixtures) {
  return JSON.stringify(fixtures, null, 2) + '\n';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(FIXTURE_PATH, serialize(await generate()));
  console.log(`wrote ${FIXTURE_PATH}`);
}
