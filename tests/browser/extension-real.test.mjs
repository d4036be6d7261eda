// Issue 7's scenarios with the real node: Chromium profiles with the extension (dist/chrome, built WITH
// node-wasm), the test wallet, the demo dApp on 127.0.0.1 and a chordial-server, all inside a private network
// namespace. Missing node-wasm or server binary is a failure, not a skip.
//
//   npm run build && cargo build --release -p chordial-server && node tests/browser/extension-real.test.mjs

import { enterNetns } from './lib/netns.mjs';

enterNetns();

const { test, before, after } = await import('node:test');
const assert = (await import('node:assert/strict')).default;
const { existsSync, mkdirSync } = await import('node:fs');
const path = (await import('node:path')).default;
const { launchWithExtension, freshProfile, stopServiceWorker, currentWorker, approvalPage, withDeadline } =
  await import('./lib/browser.mjs');
const { installTestWallet } = await import('./lib/wallet.mjs');
const { generatePrivateKey } = await import('viem/accounts');
const { serveStatic } = await import('./lib/http.mjs');
const { startServer, serverBinary } = await import('./lib/chordial-server.mjs');
const { call, recordEvents, requestAccess, waitForEvents, nodeStatus } = await import('./lib/dapp.mjs');

const ROOT = path.resolve(import.meta.dirname, '../..');
const EXT = process.env.CHORDIAL_EXTENSION_DIR || path.join(ROOT, 'dist/chrome');
const ARTIFACTS = process.env.CHORDIAL_ARTIFACTS || path.join(ROOT, 'test-artifacts/extension');
mkdirSync(ARTIFACTS, { recursive: true });
const NETWORK = process.env.CHORDIAL_NETWORK || 'chordial-dev';

let server;
let demo;
let other; // a second origin serving the same dApp
let third; // an origin that is never approved

before(async () => {
  assert.ok(
    existsSync(path.join(EXT, 'node-wasm/chordial_node_wasm.js')),
    'dist/chrome has no node-wasm: build node-wasm (scripts/build-wasm.sh), then npm run build',
  );
  assert.ok(serverBinary(), 'no chordial-server binary: cargo build --release -p chordial-server');
  server = await startServer({ network: NETWORK });
  demo = await serveStatic(path.join(ROOT, 'demo'));
  other = await serveStatic(path.join(ROOT, 'demo'));
  third = await serveStatic(path.join(ROOT, 'demo'));
});

after(async () => {
  await server?.stop();
  await demo?.close();
  await other?.close();
  await third?.close();
});

/** A browser profile with the extension pointed at the test's server, and a test wallet. */
async function profile(label, { userDataDir = freshProfile(label), privateKey = generatePrivateKey() } = {}) {
  const b = await launchWithExtension(EXT, { userDataDir });
  const sw = await b.serviceWorker();
  await sw.evaluate(
    (url) => chrome.storage.local.set({ 'chordial.settings': { bootstrap: [url], iceServers: [] } }),
    server.url,
  );
  const wallet = await installTestWallet(b.context, { privateKey });
  const open = async (url) => {
    const page = await b.context.newPage();
    page.on('pageerror', (e) => console.log(`[${label}] page error: ${e.message}`));
    await page.goto(url);
    await recordEvents(page);
    return page;
  };
  return { ...b, label, wallet, privateKey, userDataDir, open, close: () => b.context.close() };
}

/** Connect through the demo's own button, answering the approval window (screenshotted to `shot`). */
async function connectViaDemo(p, page, { shot } = {}) {
  const clicked = page.click('#connect');
  const win = await approvalPage(p.context);
  if (shot) await win.screenshot({ path: path.join(ARTIFACTS, shot) });
  await win.click('#approve', { noWaitAfter: true }).catch((e) => {
    if (!/closed/i.test(e.message)) throw e;
  });
  await clicked;
  await page.waitForFunction(() => document.getElementById('me').textContent.startsWith('0x'), null, {
    timeout: 30_000,
  });
  return page.textContent('#me');
}

/**
 * Waits (with a deadline) until chordial_status says online. Polled from here, not with page.waitForFunction:
 * that one takes the Promise an async predicate returns for a truthy answer and returns at once.
 */
async function waitOnline(page, timeout = 30_000) {
  await eventually(
    () => call(page, 'chordial_status'),
    (r) => r.result?.online === true,
    timeout,
    'online',
  );
}

/**
 * Waits until the nodes of profiles `p` and `q` are in each other's ring view: each has a predecessor and
 * names the other as a successor or its predecessor. Right after joining, a node can be "joined" (its own
 * view) while the others have not taken it in yet; records placed in that window can sit on the wrong node
 * for a while (docs/extension.md, known gaps). The offline scenarios are about a settled ring.
 */
async function ringSettled(p, q, timeout = 60_000) {
  const both = async () => [
    await nodeStatus(await currentWorker(p.context)),
    await nodeStatus(await currentWorker(q.context)),
  ];
  const knows = (x, y) => x.predecessor === y.nodeId || x.successors.includes(y.nodeId);
  await eventually(
    both,
    ([x, y]) => Boolean(x.predecessor && y.predecessor) && knows(x, y) && knows(y, x),
    timeout,
    'the ring took both nodes in',
  );
}

/** Retries `fn` until `ok(result)` or the deadline (ring operations are eventually consistent). */
async function eventually(fn, ok, timeout = 30_000, what = 'condition') {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`deadline: ${what}; last: ${JSON.stringify(last)}`);
}

test('two_wallets_chat: approve, sign once, announce, discover, send → delivered with sender and exact data', async () => {
  const A = await profile('A');
  const B = await profile('B');
  try {
    const a = await A.open(demo.url);
    const b = await B.open(demo.url);
    const addrA = await connectViaDemo(A, a, { shot: 'approval-window.png' });
    const addrB = await connectViaDemo(B, b);
    // Both wallets are in: the later chordial_requestAccess resolved (approved, signed, node restarted under
    // the delegation). From here on it is what a user waits for.
    const tAccess = Date.now();
    assert.equal(addrA, A.wallet.address);
    assert.equal(addrB, B.wallet.address);
    assert.equal(A.wallet.count('personal_sign'), 1);
    assert.equal(B.wallet.count('personal_sign'), 1);
    await waitOnline(a);
    await waitOnline(b);
    const tOnline = Date.now();
    for (const page of [a, b]) {
      await page.fill('#topic', 'lobby');
      await page.click('#join');
    }
    // A discovers B (the demo's list fills from discover and presence events).
    await a.waitForSelector(`#peers li[data-address="${addrB}"]`, { timeout: 30_000 });
    const tFound = Date.now();
    await a.click(`#peers li[data-address="${addrB}"]`);
    const text = 'hello from A ✓ — 🚀';
    await a.fill('#text', text);
    await a.click('#send');
    await a.waitForSelector('#messages li.out .mark.delivered', { timeout: 30_000 });
    const tDelivered = Date.now();
    const got = await waitForEvents(b, 'message', 1, 30_000);
    assert.equal(got[0].from, addrA);
    assert.equal(got[0].data, text);
    await b.waitForSelector('#messages li.in');
    console.log(
      `measure: chordial_requestAccess resolved → first message delivered: ${tDelivered - tAccess} ms ` +
        `(both online after ${tOnline - tAccess} ms, B discovered by A after ${tFound - tAccess} ms)`,
    );
    await a.screenshot({ path: path.join(ARTIFACTS, 'demo-A.png'), fullPage: true });
    await b.screenshot({ path: path.join(ARTIFACTS, 'demo-B.png'), fullPage: true });

    // chordial_status round trip: page → content script → service worker → offscreen node → and back.
    const CALLS = 100;
    const rtts = await a.evaluate(async (n) => {
      const out = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        const st = await window.chordial.request({ method: 'chordial_status' });
        out.push({ ms: performance.now() - t, online: st.online, approved: st.approved });
      }
      return out;
    }, CALLS);
    assert.ok(
      rtts.every((r) => r.online === true && r.approved === true),
      'every status call answered by the node',
    );
    const ms = rtts.map((r) => r.ms).sort((x, y) => x - y);
    const pct = (p) => ms[Math.min(ms.length - 1, Math.ceil((p / 100) * ms.length) - 1)];
    console.log(
      `measure: chordial_status round trip page → offscreen → page over ${CALLS} calls: ` +
        `median ${pct(50).toFixed(2)} ms, p95 ${pct(95).toFixed(2)} ms, max ${ms.at(-1).toFixed(2)} ms`,
    );
  } finally {
    await A.close();
    await B.close();
  }
});

test('offline_delivery: B closes, A sends → stored; B returns → receives it with no new signature', async () => {
  const A = await profile('A-off');
  let B = await profile('B-off');
  try {
    const a = await A.open(demo.url);
    let b = await B.open(demo.url);
    await requestAccess(A.context, a);
    const addrB = (await requestAccess(B.context, b)).outcome.result.address;
    await waitOnline(a);
    await waitOnline(b);
    await eventually(
      () => call(a, 'chordial_lookup', { address: addrB }),
      (r) => r.result?.online === true,
      30_000,
      'A sees B online',
    );
    await ringSettled(A, B);
    await B.close();
    // A browser shutting down does not fire the offscreen document's pagehide (checked in Chromium), so B's
    // node gets no chance to leave: the ring sees a crash. The delivery to B's session fails, and the
    // message is stored. (After a graceful leave it is stored too: core/tests/messaging_basics.rs and
    // sim/tests/mail_for_a_wallet_that_just_went.rs.)
    const gone = await call(a, 'chordial_lookup', { address: addrB });
    console.log(
      `offline_delivery: right after B's browser closed, A's lookup finds B ${
        gone.result?.online ? 'still online (no Leave arrived: B counts as crashed)' : 'offline (B left gracefully)'
      }`,
    );

    const tSend = Date.now();
    const sent = await call(a, 'chordial_send', { to: addrB, data: 'while you were away' });
    assert.equal(sent.result?.result, 'stored', JSON.stringify(sent));
    console.log(`offline_delivery: chordial_send → stored in ${Date.now() - tSend} ms`);

    // B's browser starts again with the same profile (and the same wallet, whose calls are counted afresh).
    B = await profile('B-off', { userDataDir: B.userDataDir, privateKey: B.privateKey });
    b = await B.open(demo.url); // the demo calls chordial_status at once, which opens the Port
    const got = await waitForEvents(b, 'message', 1, 60_000);
    assert.equal(got[0].from, A.wallet.address);
    assert.equal(got[0].data, 'while you were away');
    const again = await requestAccess(B.context, b, { decision: 'none' });
    assert.deepEqual(again.outcome, { result: { address: addrB } });
    assert.equal(B.wallet.calls.length, 0, 'the wallet was not asked for anything the second time');
    // Exactly once: a message sent after it, to the online B, arrives after it and nothing came in between.
    await waitOnline(b);
    const live = await eventually(
      () => call(a, 'chordial_send', { to: addrB, data: 'welcome back' }),
      (r) => r.result?.result === 'delivered',
      30_000,
      'A reaches B again',
    );
    assert.equal(live.result.result, 'delivered');
    const all = await waitForEvents(b, 'message', 2, 30_000);
    const datas = all.map((m) => m.data);
    assert.equal(datas[0], 'while you were away');
    assert.ok(
      datas.slice(1).every((d) => d === 'welcome back'),
      `nothing but the live message(s) after the stored one: ${JSON.stringify(datas)}`,
    );
  } finally {
    await A.close();
    await B.close();
  }
});

test("unapproved_and_spoofed: 4100 unapproved; origins do not see each other's messages or topics", async () => {
  const A = await profile('A-scope');
  const B = await profile('B-scope');
  try {
    const a1 = await A.open(demo.url);
    const a2 = await A.open(other.url);
    const a3 = await A.open(third.url);
    const b1 = await B.open(demo.url);
    const b2 = await B.open(other.url);
    await requestAccess(A.context, a1);
    await requestAccess(A.context, a2);
    await requestAccess(B.context, b1);
    await requestAccess(B.context, b2);
    for (const m of [
      'chordial_send',
      'chordial_lookup',
      'chordial_announce',
      'chordial_discover',
      'chordial_withdraw',
    ]) {
      const params = { to: B.wallet.address, address: B.wallet.address, topic: 't', data: 'x' };
      assert.equal((await call(a3, m, params)).error?.code, 4100, m);
    }
    assert.equal((await call(a3, 'chordial_status')).result.approved, false);
    await waitOnline(a1);
    await waitOnline(b1);
    await call(a1, 'chordial_announce', { topic: 'lobby' });
    await eventually(
      () => call(b1, 'chordial_discover', { topic: 'lobby' }),
      (r) => r.result?.some((x) => x.address === A.wallet.address),
      30_000,
      "B sees A on the first origin's topic",
    );
    assert.deepEqual((await call(b2, 'chordial_discover', { topic: 'lobby' })).result, [], 'not on the second origin');
    // A's presence record may reach its owner a little after A joined (the ring around it was still
    // settling); a send before that would find no session. Wait until B can see A at all.
    await eventually(
      () => call(b1, 'chordial_lookup', { address: A.wallet.address }),
      (r) => r.result?.online === true,
      60_000,
      'B finds A online',
    );
    const sent = await call(b1, 'chordial_send', { to: A.wallet.address, data: 'for the first origin only' });
    assert.equal(sent.result?.result, 'delivered', JSON.stringify(sent));
    const got = await waitForEvents(a1, 'message', 1);
    assert.equal(got[0].data, 'for the first origin only');
    // A marker message on the second origin, sent after: once it arrived, the first one would have too.
    await call(b2, 'chordial_send', { to: A.wallet.address, data: 'marker' });
    const marker = await waitForEvents(a2, 'message', 1);
    assert.deepEqual(
      marker.map((m) => m.data),
      ['marker'],
    );
    // The forged-origin and cross-origin-iframe cases are in extension-flows.test.mjs (node-independent).
  } finally {
    await A.close();
    await B.close();
  }
});

test('wallet_refuses: personal_sign refused → 4001; a later attempt works', async () => {
  const A = await profile('A-refuse');
  try {
    const a = await A.open(demo.url);
    A.wallet.refuse('personal_sign');
    assert.equal((await requestAccess(A.context, a)).outcome.error?.code, 4001);
    assert.equal((await call(a, 'chordial_status')).result.approved, false);
    A.wallet.allow('personal_sign');
    assert.deepEqual((await requestAccess(A.context, a)).outcome, { result: { address: A.wallet.address } });
    await waitOnline(a);
  } finally {
    await A.close();
  }
});

test('service_worker_restarts: pending calls reject 4900, new calls work, the node kept its links', async () => {
  const A = await profile('A-sw');
  try {
    const a = await A.open(demo.url);
    await requestAccess(A.context, a);
    await waitOnline(a);
    const links = (st) => new Map(st.links.filter((l) => l.open).map((l) => [`${l.link}:${l.peer}`, l]));
    const before = await eventually(
      async () => nodeStatus(await currentWorker(A.context)),
      (st) => st.joined && links(st).size > 0,
      30_000,
      'the node joined with an open link',
    );
    // The node's own presence is findable (a matter of the ring settling, not of the worker) before the
    // worker stops, so that finding it afterwards says something about the restart.
    await eventually(
      () => call(a, 'chordial_lookup', { address: A.wallet.address }),
      (r) => r.result?.online === true,
      60_000,
      'A finds its own presence',
    );
    const docBefore = await offscreenDocuments(A.context);
    assert.equal(docBefore.length, 1, JSON.stringify(docBefore));

    const pendingPage = await A.open(other.url);
    const pending = call(pendingPage, 'chordial_requestAccess');
    await approvalPage(A.context);
    await stopServiceWorker(A.context, a);
    assert.equal((await withDeadline(pending, 10_000, 'pending call did not settle')).error?.code, 4900);

    // New calls work (they wake a new service worker).
    const st = await call(a, 'chordial_status');
    assert.equal(st.result?.online, true, JSON.stringify(st));
    const look = await call(a, 'chordial_lookup', { address: A.wallet.address });
    assert.equal(look.result?.online, true, JSON.stringify(look));

    // The offscreen document is the same one, and so is the node in it: every link open before is open
    // now under the same id to the same peer, and its traffic counters only grew (a restarted node would
    // number its links afresh and count from zero).
    const docAfter = await offscreenDocuments(A.context);
    assert.deepEqual(
      docAfter.map((d) => d.documentId),
      docBefore.map((d) => d.documentId),
      'the offscreen document survived',
    );
    const after = await nodeStatus(await currentWorker(A.context));
    assert.equal(after.nodeId, before.nodeId);
    assert.equal(after.joined, true);
    const now = links(after);
    for (const [k, l] of links(before)) {
      const n = now.get(k);
      assert.ok(n, `link ${k} is still open: ${JSON.stringify([...now.keys()])}`);
      assert.ok(n.bytesIn >= l.bytesIn && n.bytesOut >= l.bytesOut, `link ${k} counters went back`);
    }
    assert.ok(after.counters.peerConnectionsCreated >= before.counters.peerConnectionsCreated);
  } finally {
    await A.close();
  }
});

/** The extension's offscreen documents, as the (current) service worker sees them. */
async function offscreenDocuments(context) {
  const worker = await currentWorker(context);
  return worker.evaluate(() => chrome.runtime.getContexts({ contextTypes: ['OFFSCREEN_DOCUMENT'] }));
}
