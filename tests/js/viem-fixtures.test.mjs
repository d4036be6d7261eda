// The committed viem fixture is exactly what the generator produces, and viem itself agrees with the labels
// of its valid cases (so a fixture bug cannot hide behind a matching Rust bug).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { verifyMessage } from 'viem';
import { parseSiweMessage, validateSiweMessage } from 'viem/siwe';
import { FIXTURE_PATH, generate, serialize } from './gen-siwe-fixtures.mjs';
import { DELEGATION_STATEMENT, NETWORK_RESOURCE_PREFIX } from './siwe-common.mjs';

const fixtures = await generate();

test('committed viem-signed.json equals a fresh run of the generator', () => {
  assert.equal(readFileSync(FIXTURE_PATH, 'utf8'), serialize(fixtures));
});

test('viem verifies every case labelled ok', async () => {
  const ok = fixtures.cases.filter((c) => c.expect === 'ok');
  assert.ok(ok.length >= 5);
  for (const c of ok) {
    assert.ok(await verifyMessage({ address: c.address, message: c.message, signature: c.signature }), c.name);
    const parsed = parseSiweMessage(c.message);
    assert.ok(validateSiweMessage({ address: c.address, message: parsed, time: new Date(c.now) }), c.name);
    assert.equal(parsed.statement, DELEGATION_STATEMENT, c.name);
    assert.equal(parsed.uri, c.session_did, c.name);
    assert.deepEqual(parsed.resources, [NETWORK_RESOURCE_PREFIX + c.network], c.name);
  }
});

test('signature-level negative cases really fail signature verification in viem too', async () => {
  const names = ['tampered_nonce', 'tampered_expiration_time', 'signature_of_another_message', 'v_flipped'];
  for (const name of names) {
    const c = fixtures.cases.find((x) => x.name === name);
    const address = parseSiweMessage(c.message).address;
    assert.equal(await verifyMessage({ address, message: c.message, signature: c.signature }), false, name);
  }
});
