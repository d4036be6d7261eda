// Method validation, error codes and payload encoding shared by every context.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateRequest } from '../../../extension/shared/params.js';
import { ErrorCode, fromNodeError, fromPlain, ProviderError } from '../../../extension/shared/errors.js';
import {
  dataToWire,
  wireToData,
  wireToNodeBytes,
  nodeBytesToWire,
  MAX_DATA_BYTES,
  bytesToBase64,
} from '../../../extension/shared/payload.js';

const A = '0x' + 'ab'.repeat(20);
const code = (fn) => {
  try {
    fn();
  } catch (e) {
    return e.code;
  }
  return 'no error';
};

test('error codes are the EIP-1193 numbers', () => {
  assert.deepEqual(
    [ErrorCode.USER_REJECTED, ErrorCode.UNAUTHORIZED, ErrorCode.UNSUPPORTED_METHOD, ErrorCode.DISCONNECTED],
    [4001, 4100, 4200, 4900],
  );
  assert.equal(ErrorCode.INVALID_PARAMS, -32602);
});

test('unknown methods are 4200, including eth_ methods and non-strings', () => {
  for (const m of ['eth_sendTransaction', 'chordial_forget', '', undefined, 42, 'constructor']) {
    assert.equal(
      code(() => validateRequest(m, {})),
      4200,
      String(m),
    );
  }
});

test('send: address and data are checked, and normalised', () => {
  assert.deepEqual(validateRequest('chordial_send', { to: A, data: { text: 'hi' } }), { to: A, data: { text: 'hi' } });
  assert.deepEqual(validateRequest('chordial_send', [{ to: A, data: { base64: 'AAE=' } }]), {
    to: A,
    data: { base64: 'AAE=' },
  });
  for (const bad of [
    { to: '0x12', data: { text: 'x' } },
    { to: A.slice(2), data: { text: 'x' } },
    { to: A, data: 'raw string is the inpage form, not the wire form' },
    { to: A, data: { text: 'x', base64: '' } },
    { to: A, data: { base64: 'not base64!' } },
    { to: A, data: { text: 'x'.repeat(MAX_DATA_BYTES + 1) } },
    { to: A },
    'string params',
    [{ to: A, data: { text: 'x' } }, {}],
  ]) {
    assert.equal(
      code(() => validateRequest('chordial_send', bad)),
      -32602,
      JSON.stringify(bad).slice(0, 60),
    );
  }
  // Exactly at the limit is fine.
  validateRequest('chordial_send', { to: A, data: { text: 'x'.repeat(MAX_DATA_BYTES) } });
});

test('topics and ttl', () => {
  assert.deepEqual(validateRequest('chordial_announce', { topic: 'lobby', ttl: 60 }), { topic: 'lobby', ttl: 60 });
  assert.deepEqual(validateRequest('chordial_discover', { topic: 'lobby' }), { topic: 'lobby' });
  for (const bad of [
    {},
    { topic: '' },
    { topic: 5 },
    { topic: 'x'.repeat(129) },
    { topic: 'a', ttl: 0 },
    { topic: 'a', ttl: 1.5 },
  ]) {
    assert.equal(
      code(() => validateRequest('chordial_announce', bad)),
      -32602,
      JSON.stringify(bad),
    );
  }
  assert.equal(
    code(() => validateRequest('chordial_withdraw', {})),
    -32602,
  );
});

test('internal steps check their fields', () => {
  assert.equal(
    code(() => validateRequest('chordial_internal_delegationRequest', { address: A, chainId: 0 })),
    -32602,
  );
  assert.equal(
    code(() => validateRequest('chordial_internal_completeDelegation', { signature: '0x12' })),
    -32602,
  );
  validateRequest('chordial_internal_completeDelegation', { signature: '0x' + '1'.repeat(130) });
});

test('node errors map to provider codes and keep the node code as data.reason', () => {
  const e = fromNodeError({ code: 'TIMEOUT', message: 'no answer' });
  assert.ok(e instanceof ProviderError);
  assert.deepEqual(e.toJSON(), { code: -32000, message: 'no answer', data: { reason: 'TIMEOUT' } });
  assert.equal(fromNodeError({ code: 'NOT_RUNNING' }).code, 4900);
  assert.equal(fromNodeError({ code: 'UNAVAILABLE' }).code, 4900);
  assert.equal(fromNodeError({ code: 'INVALID_ARGUMENT' }).code, -32602);
  assert.equal(fromNodeError({ code: 'NO_DELEGATION' }).code, 4100);
  assert.equal(fromNodeError({ code: 'SOMETHING_NEW' }).code, -32603);
  assert.equal(fromNodeError('a string').code, -32603);
  assert.equal(fromPlain({ code: 4001, message: 'no' }).code, 4001);
  assert.equal(fromPlain({ nope: true }).code, -32603);
});

test('payloads: strings stay strings and bytes stay bytes, end to end', () => {
  const samples = ['', 'hello', 'ünïcødé ✓ 🚀', new Uint8Array([0, 1, 2, 255]), new Uint8Array(0)];
  for (const s of samples) {
    const wire = dataToWire(s);
    const back = wireToData(nodeBytesToWire(wireToNodeBytes(wire)));
    if (typeof s === 'string') assert.equal(back, s);
    else assert.deepEqual([...back], [...s]);
  }
  assert.equal(wireToNodeBytes({ text: 'a' })[0], 1);
  assert.equal(wireToNodeBytes({ base64: 'AA==' })[0], 2);
  // Untagged bytes from another kind of sender arrive whole, as bytes.
  assert.deepEqual(nodeBytesToWire(new Uint8Array([9, 8])), { base64: bytesToBase64(new Uint8Array([9, 8])) });
  // A text tag with invalid UTF-8 is not silently mangled.
  assert.deepEqual(nodeBytesToWire(new Uint8Array([1, 0xff])), { base64: bytesToBase64(new Uint8Array([1, 0xff])) });
  assert.equal(dataToWire(42), null);
  assert.equal(dataToWire({ text: 'x' }), null);
  assert.deepEqual(dataToWire(new Uint16Array([1]).buffer), { base64: 'AQA=' });
});
