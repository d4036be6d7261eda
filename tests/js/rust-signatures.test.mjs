// Delegations and SIWE messages signed by chordial-core (tests/fixtures/siwe/rust-signed.json, written by
// core/tests/delegation_fixtures.rs) checked with viem: if Rust's EIP-191 signatures, EIP-55 addresses,
// SIWE text or did:key encoding were wrong, this fails.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { recoverMessageAddress, verifyMessage } from 'viem';
import { createSiweMessage, parseSiweMessage, validateSiweMessage } from 'viem/siwe';
import { DELEGATION_STATEMENT, NETWORK_RESOURCE_PREFIX, didKey, hexToBytes } from './siwe-common.mjs';

const fixtures = JSON.parse(
  readFileSync(new URL('../fixtures/siwe/rust-signed.json', import.meta.url), 'utf8'),
);

test('the fixture has delegations and a general SIWE message', () => {
  assert.equal(fixtures.statement, DELEGATION_STATEMENT);
  assert.ok(fixtures.cases.filter((c) => c.kind === 'delegation').length >= 2);
  assert.ok(fixtures.cases.some((c) => c.kind === 'siwe'));
});

for (const c of fixtures.cases) {
  test(`${c.name}: viem verifies Rust's signature`, async () => {
    assert.equal(await recoverMessageAddress({ message: c.message, signature: c.signature }), c.address);
    assert.ok(await verifyMessage({ address: c.address, message: c.message, signature: c.signature }));
    assert.equal(
      await verifyMessage({ address: c.address, message: c.message + ' ', signature: c.signature }),
      false,
    );
  });

  test(`${c.name}: viem parses Rust's SIWE text to the expected fields and writes the same text`, () => {
    const parsed = parseSiweMessage(c.message);
    const e = c.expected;
    assert.equal(parsed.domain, e.domain);
    assert.equal(parsed.address, e.address);
    assert.equal(parsed.statement ?? null, e.statement);
    assert.equal(parsed.uri, e.uri);
    assert.equal(parsed.version, e.version);
    assert.equal(parsed.chainId, e.chainId);
    assert.equal(parsed.nonce, e.nonce);
    assert.equal(parsed.issuedAt.toISOString(), e.issuedAt);
    assert.equal(parsed.expirationTime?.toISOString() ?? null, e.expirationTime);
    assert.equal(parsed.notBefore?.toISOString() ?? null, e.notBefore);
    assert.equal(parsed.requestId ?? null, e.requestId);
    assert.deepEqual(parsed.resources ?? [], e.resources);
    assert.ok(validateSiweMessage({ address: c.address, message: parsed, time: new Date(c.now) }));
    // Byte-for-byte the text viem would have produced from the same fields.
    assert.equal(createSiweMessage(parsed), c.message);
  });

  if (c.kind === 'delegation') {
    test(`${c.name}: the URI is the session key's did:key and the resource names the network`, () => {
      const parsed = parseSiweMessage(c.message);
      assert.equal(parsed.uri, didKey(hexToBytes(c.session_public_key)));
      assert.equal(parsed.uri, c.session_did);
      assert.ok(parsed.uri.startsWith('did:key:zQ3s'));
      assert.equal(parsed.statement, DELEGATION_STATEMENT);
      assert.deepEqual(parsed.resources, [NETWORK_RESOURCE_PREFIX + fixtures.network]);
      assert.ok(parsed.expirationTime > parsed.issuedAt);
      assert.ok(/^[A-Za-z0-9]{16}$/.test(parsed.nonce));
    });
  }
}
