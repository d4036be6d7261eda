// The popup's pure parts: ids on the ring, role labels, formatting, the overall state and its reason, the
// ring picture's contents, link and server rows, and the settings form's parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  idFraction,
  arcFraction,
  pointAt,
  shortId,
  shortAddress,
  roleLabels,
  formatBytes,
  formatRtt,
  formatDuration,
  formatCountdown,
  overallState,
  ringLayout,
  ownedShare,
  linkRows,
  serverRows,
  parseBootstrap,
  iceFromRows,
  rowsFromIce,
} from '../../../extension/popup/model.js';

const id = (prefix) => prefix.padEnd(40, '0');
const NOW = 1_800_000_000_000;
const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} ≉ ${b}`);

test('an id sits at id / 2^160 of the circle, 0 at the top, clockwise', () => {
  assert.equal(idFraction(id('0')), 0);
  assert.equal(idFraction(id('8')), 0.5);
  assert.equal(idFraction(id('4')), 0.25);
  assert.equal(idFraction(id('C')), 0.75, 'upper case too');
  const top = idFraction('f'.repeat(40));
  assert.ok(top < 1 && top > 0.999999);
  assert.equal(idFraction('not an id'), 0);
  assert.equal(idFraction(null), 0);
  close(arcFraction(id('c'), id('4')), 0.5); // wraps past zero
  close(arcFraction(id('4'), id('c')), 0.5);
  const p0 = pointAt(0, 10, 100, 100);
  close(p0.x, 100);
  close(p0.y, 90);
  const p1 = pointAt(0.25, 10, 100, 100);
  close(p1.x, 110);
  close(p1.y, 100);
  const p2 = pointAt(0.5, 10, 100, 100);
  close(p2.y, 110);
});

test('role labels: the core roles in a fixed order, later successors numbered, and the in-between states', () => {
  const succ = [id('1'), id('2')];
  assert.deepEqual(roleLabels({ open: false, roles: ['successor'], peer: id('1') }, succ), ['connecting']);
  assert.deepEqual(roleLabels({ open: true, roles: [], peer: id('9') }, succ), ['idle']);
  assert.deepEqual(roleLabels({ open: true, roles: ['predecessor', 'successor'], peer: id('1') }, succ), [
    'successor',
    'predecessor',
  ]);
  assert.deepEqual(roleLabels({ open: true, roles: ['finger', 'successor'], peer: id('2') }, succ), [
    'successor 2',
    'finger',
  ]);
  assert.deepEqual(roleLabels({ open: true, roles: ['bootstrap'], peer: id('5') }, succ), ['joining']);
  assert.deepEqual(roleLabels({ open: true, roles: ['pairing', 'direct'], peer: id('5') }, succ), [
    'direct',
    'pairing',
  ]);
});

test('numbers read as a person expects', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1536), '1.5 KB');
  assert.equal(formatBytes(20 * 1024 * 1024), '20 MB');
  assert.equal(formatBytes(-1), '–');
  assert.equal(formatRtt(null), '–');
  assert.equal(formatRtt(0), '<1 ms');
  assert.equal(formatRtt(12.4), '12 ms');
  assert.equal(formatRtt(1500), '1.5 s');
  assert.equal(formatDuration(30 * 86400_000 - 1000), '29 days');
  assert.equal(formatDuration(5 * 3600_000), '5 hours');
  assert.equal(formatDuration(3 * 60_000), '3 minutes');
  assert.equal(formatDuration(40_000), '40 s');
  assert.equal(formatCountdown(300_000), '5:00');
  assert.equal(formatCountdown(61_001), '1:02');
  assert.equal(formatCountdown(-5), '0:00');
  assert.equal(shortId('abcdef0123456789'), 'abcdef01…');
  assert.equal(shortAddress('0x53e6aee8A3f79ccE8616f7c1Cb0B6dde2eF1E25C'), '0x53e6…E25C', 'keeps the EIP-55 case');
});

const base = (over = {}) => ({
  state: 'running',
  wallet: '0x53e6aee8A3f79ccE8616f7c1Cb0B6dde2eF1E25C',
  sessionExpires: NOW + 86400_000,
  nodeId: id('8'),
  joined: false,
  bootstrap: { state: 'idle', servers: [], lastError: null },
  successors: [],
  predecessor: null,
  fingers: [],
  links: [],
  ...over,
});

test('the overall state says online / connecting / offline, and why', () => {
  const s = (st, err) => overallState(st, err, NOW);
  assert.deepEqual(s(null, { code: 4900, message: 'x', data: { reason: 'UNAVAILABLE' } }).state, 'offline');
  assert.match(s(null, { data: { reason: 'UNAVAILABLE' } }).reason, /without node-wasm/);
  assert.match(s(null, { message: 'offscreen document unreachable' }).reason, /cannot be reached: offscreen/);
  assert.equal(s(base({ wallet: null, sessionExpires: null, state: 'idle' })).title, 'Not signed in');
  assert.equal(s(base({ sessionExpires: NOW - 1 })).title, 'Session expired');
  assert.equal(s(base({ state: 'idle' })).title, 'Stopped');
  assert.equal(s(base({ state: 'stopping' })).state, 'connecting');
  const link = { link: 1, peer: id('4'), open: true, roles: ['successor'] };
  assert.deepEqual(s(base({ joined: true, links: [link] })), {
    state: 'online',
    title: 'Online',
    reason: 'In the ring with 1 link.',
  });
  const connecting = s(
    base({
      bootstrap: { state: 'connecting', servers: [{ url: 'https://b.example', nodeId: null }], lastError: null },
    }),
  );
  assert.equal(connecting.state, 'connecting');
  assert.equal(connecting.reason, 'Contacting https://b.example.');
  assert.equal(s(base({ links: [link] })).reason, 'Joining the ring.');
  const failed = s(
    base({
      bootstrap: {
        state: 'failed',
        servers: [{ url: 'https://b.example', nodeId: null }],
        lastError: 'https://b.example: HTTP 503',
      },
    }),
  );
  assert.equal(failed.state, 'offline');
  assert.match(failed.reason, /HTTP 503/);
  const alone = s(base({ links: [{ link: 2, peer: null, open: false, roles: ['pairing'] }] }));
  assert.equal(alone.title, 'Alone', 'an offer waiting for its answer is not "connecting"');
  assert.match(alone.reason, /pair with another browser/);
});

test('the ring picture holds every known node once, with merged roles, linked only over open links', () => {
  const me = id('8');
  const server = id('c');
  const b = id('2');
  const st = base({
    nodeId: me,
    joined: true,
    successors: [server, b],
    predecessor: b,
    fingers: [
      { index: 159, nodeId: server },
      { index: 150, nodeId: id('e') },
    ],
    bootstrap: { state: 'joined', servers: [{ url: 'http://127.0.0.1:7700', nodeId: server }], lastError: null },
    links: [
      { link: 1, peer: server, open: true, roles: ['successor', 'finger'], rttMs: 3 },
      { link: 2, peer: b, open: true, roles: ['predecessor', 'successor'], rttMs: 1 },
      { link: 3, peer: id('e'), open: false, roles: [] },
      { link: 4, peer: null, open: false, roles: ['pairing'] },
      { link: 5, peer: me, open: true, roles: [] }, // never drawn as another node
    ],
  });
  const L = ringLayout(st);
  assert.deepEqual(L.self, { id: me, fraction: 0.5 });
  assert.deepEqual(
    L.nodes.map((n) => [n.id.slice(0, 1), n.roles.join(' '), n.linked, n.server]),
    [
      ['2', 'successor predecessor', true, null],
      ['c', 'successor finger', true, 'http://127.0.0.1:7700'],
      ['e', 'finger', false, null],
    ],
  );
  assert.deepEqual(L.owned, { from: 0.125, to: 0.5 });
  assert.equal(ownedShare(st), 0.375);
  assert.equal(ownedShare(base()), null);
  assert.deepEqual(ringLayout(null), { self: null, nodes: [], owned: null });
});

test('link rows: open first, by role; servers named; traffic and RTT formatted', () => {
  const server = id('c');
  const st = base({
    successors: [server],
    bootstrap: { state: 'joined', servers: [{ url: 'http://127.0.0.1:7700', nodeId: server }], lastError: null },
    links: [
      { link: 3, peer: null, open: false, roles: [], rttMs: null, bytesIn: 0, bytesOut: 0 },
      { link: 2, peer: id('9'), open: true, roles: ['finger'], rttMs: null, bytesIn: 10, bytesOut: 20 },
      { link: 1, peer: server, open: true, roles: ['successor'], rttMs: 4.2, bytesIn: 2048, bytesOut: 100 },
    ],
  });
  assert.deepEqual(
    linkRows(st).map((r) => [
      r.link,
      r.labels.join(','),
      r.server,
      r.rtt,
      r.bytesIn,
      r.bytesOut,
      r.exactIn,
      r.exactOut,
    ]),
    [
      [1, 'successor', 'http://127.0.0.1:7700', '4 ms', '2.0 KB', '100 B', 2048, 100],
      [2, 'finger', null, '–', '10 B', '20 B', 10, 20],
      [3, 'connecting', null, '–', '0 B', '0 B', 0, 0],
    ],
  );
  const unknown = base({ links: [{ link: 4, peer: null, open: false, roles: [], rttMs: null }] });
  assert.deepEqual(
    linkRows(unknown).map((r) => [r.bytesIn, r.exactIn, r.exactOut]),
    [['–', null, null]],
  );
});

test('bootstrap servers: linked, connecting, failed with the reason, or not linked', () => {
  const a = 'http://127.0.0.1:7700';
  const b = 'http://127.0.0.1:7701';
  const servers = [
    { url: a, nodeId: id('c') },
    { url: b, nodeId: null },
  ];
  const linked = base({
    bootstrap: { state: 'joined', servers, lastError: `${b}: HTTP 503 busy` },
    links: [{ link: 1, peer: id('c'), open: true, roles: ['successor'] }],
  });
  assert.deepEqual(
    serverRows(linked).map((r) => [r.state, r.detail]),
    [
      ['linked', null],
      ['failed', 'HTTP 503 busy'],
    ],
  );
  const connecting = base({ bootstrap: { state: 'connecting', servers, lastError: null } });
  assert.deepEqual(
    serverRows(connecting).map((r) => r.state),
    ['connecting', 'connecting'],
  );
  const stopped = base({ state: 'idle', bootstrap: { state: 'idle', servers, lastError: null } });
  assert.deepEqual(
    serverRows(stopped).map((r) => r.state),
    ['not linked', 'not linked'],
  );
});

test('the settings form: one bootstrap URL per line; ICE rows with optional TURN credentials', () => {
  assert.deepEqual(parseBootstrap('  https://a.example \n\n http://127.0.0.1:7700\r\n'), [
    'https://a.example',
    'http://127.0.0.1:7700',
  ]);
  assert.deepEqual(parseBootstrap(''), []);
  const rows = [
    { urls: 'stun:stun.example:3478', username: '', credential: '' },
    { urls: ' ', username: 'ignored', credential: 'x' },
    { urls: 'turn:t.example:3478, turns:t.example:5349', username: ' alice ', credential: ' s3 cret' },
  ];
  const ice = iceFromRows(rows);
  assert.deepEqual(ice, [
    { urls: 'stun:stun.example:3478' },
    { urls: ['turn:t.example:3478', 'turns:t.example:5349'], username: 'alice', credential: ' s3 cret' },
  ]);
  assert.deepEqual(rowsFromIce(ice), [
    { urls: 'stun:stun.example:3478', username: '', credential: '' },
    { urls: 'turn:t.example:3478 turns:t.example:5349', username: 'alice', credential: ' s3 cret' },
  ]);
  assert.deepEqual(iceFromRows(rowsFromIce(ice)), ice, 'round trip');
});
