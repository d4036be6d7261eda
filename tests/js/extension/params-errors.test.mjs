// Method validation, error codes and payload encoding shared by every context.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateRequest } from '../../../extension/shared/params.js';
import {
  ErrorCode,
  fromNodeError,
  fromPlain,
  plainNodeError,
  ProviderError,
} from '../../../extension/shared/errors.js';
import { RPC_CODES as FAKE_NODE_RPC_CODES } from '../../browser/fake-node-wasm/chordial_node_wasm.js';
import { NODE_RPC_CODES, nodeError } from './fakes.mjs';
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

test('node errors bring their provider code; data.reason keeps the node code', () => {
  const e = fromNodeError(nodeError('TIMEOUT', 'no answer'));
  assert.ok(e instanceof ProviderError);
  assert.deepEqual(e.toJSON(), { code: -32000, message: 'no answer', data: { reason: 'TIMEOUT' } });
  // The number is the error's own, whatever its name: the extension keeps no table of node codes.
  assert.equal(fromNodeError({ code: 'SOMETHING_NEW', rpcCode: 4900 }).code, 4900);
  assert.equal(fromNodeError(nodeError('NOT_RUNNING')).code, 4900);
  assert.equal(fromNodeError(nodeError('INVALID_ARGUMENT')).code, -32602);
  assert.equal(fromNodeError(nodeError('NO_DELEGATION')).code, 4100);
  // The extension's own reasons, and anything without a usable number.
  assert.equal(fromNodeError({ code: 'UNAVAILABLE' }).code, 4900);
  assert.equal(fromNodeError({ code: 'TIMEOUT' }).code, -32603, 'no rpcCode: not a node error');
  assert.equal(fromNodeError({ code: 'TIMEOUT', rpcCode: 12345 }).code, -32603, 'not a provider code');
  assert.equal(fromNodeError('a string').code, -32603);
  assert.equal(fromPlain({ code: 4001, message: 'no' }).code, 4001);
  assert.equal(fromPlain({ nope: true }).code, -32603);
});

test('no such wallet and a missing node stay apart all the way to the page', () => {
  const wallet = fromNodeError(nodeError('NOT_FOUND', 'wallet not found')).toJSON();
  const node = fromNodeError(nodeError('NODE_NOT_FOUND', 'node not found')).toJSON();
  assert.deepEqual(wallet.data, { reason: 'NOT_FOUND' });
  assert.deepEqual(node.data, { reason: 'NODE_NOT_FOUND' });
  for (const r of ['NO_ROUTE', 'TIMEOUT', 'HOP_LIMIT']) {
    assert.notEqual(fromNodeError(nodeError(r)).data.reason, 'NOT_FOUND');
  }
});

test('node errors cross contexts with their number', () => {
  const plain = plainNodeError(nodeError('MAILBOX_FULL', 'full'));
  assert.deepEqual(plain, { code: 'MAILBOX_FULL', message: 'full', rpcCode: -32000 });
  assert.deepEqual(JSON.parse(JSON.stringify(plain)), plain);
  assert.deepEqual(plainNodeError(new Error('boom')), { code: 'INTERNAL', message: 'boom' });
  assert.equal(fromNodeError(plainNodeError(nodeError('BAD_CODE'))).code, -32602);
});

test("the node's error table uses only provider codes the extension knows; the test double agrees", () => {
  const known = new Set(Object.values(ErrorCode));
  const names = Object.keys(NODE_RPC_CODES);
  assert.ok(names.length >= 20, `docs/dapp-api.md lists ${names.length} node codes`);
  for (const name of ['NOT_FOUND', 'NODE_NOT_FOUND', 'TIMEOUT', 'NO_ROUTE']) assert.ok(name in NODE_RPC_CODES, name);
  for (const [name, n] of Object.entries(NODE_RPC_CODES)) assert.ok(known.has(n), `${name}: ${n}`);
  for (const [name, n] of Object.entries(FAKE_NODE_RPC_CODES)) assert.equal(n, NODE_RPC_CODES[name], name);
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
