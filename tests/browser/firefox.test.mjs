// Issue 8's Firefox scenarios: the extension built for Firefox (dist/firefox: an MV3 event page hosting
// node-wasm) in firefox-esr, driven over WebDriver BiDi (puppeteer-core), meets a Chromium profile with
// dist/chrome, both through one chordial-server, on the demo dApp. Everything runs in a private network
// namespace made here with a veth pair of its own (Firefox gathers no ICE candidates on loopback alone).
//
//   firefox_meets_chromium  both approve the demo (one signature each), see each other on a topic, and
//                           message both ways: exact data, sender addresses, delivered marks
//   firefox_survives_idle   no extension page and no dApp tab open in Firefox for 60 s (its event-page idle
//                           timeout is 30 s): the node keeps the very same link to the server, open the whole
//                           time, and a message to it is delivered (not stored) and then shown
//
//   npm run build && cargo build --release -p chordial-server && node tests/browser/firefox.test.mjs

import { enterNetns, VETH_A } from './lib/netns.mjs';

enterNetns({ veth: true });

const { test, before, after } = await import('node:test');
const assert = (await import('node:assert/strict')).default;
const { existsSync, mkdirSync, rmSync } = await import('node:fs');
const path = (await import('node:path')).default;
const { launchWithExtension, freshProfile } = await import('./lib/browser.mjs');
const { launchFirefox, firefoxApprovalPage, askBackground, clickAndClose } = await import('./lib/firefox.mjs');
const { installTestWallet, installTestWalletInPage } = await import('./lib/wallet.mjs');
const { serveStatic } = await import('./lib/http.mjs');
const { startServer, serverBinary } = await import('./lib/chordial-server.mjs');
const { approvalPage } = await import('./lib/browser.mjs');
const demoDriver = await import('./lib/demo-driver.mjs');
const {
  recordEvents,
  waitForEvents,
  connect,
  waitOnline,
  joinTopic,
  waitForPeer,
  sendText,
  shownMessages,
  call,
  until,
} = demoDriver;

const ROOT = path.resolve(import.meta.dirname, '../..');
const FIREFOX_EXT = process.env.CHORDIAL_FIREFOX_EXTENSION_DIR || path.join(ROOT, 'dist/firefox');
const CHROME_EXT = process.env.CHORDIAL_EXTENSION_DIR || path.join(ROOT, 'dist/chrome');
const ARTIFACTS = process.env.CHORDIAL_ARTIFACTS || path.join(ROOT, 'test-artifacts/firefox');
mkdirSync(ARTIFACTS, { recursive: true });
const IDLE_MS = Number(process.env.CHORDIAL_FIREFOX_IDLE_MS || 60_000);

let server;
let demo;
let F; // Firefox: {browser, wallet, page, nodeId}
let C; // Chromium: {context, wallet, page}

/** The server's own view of its links (GET /v1/status on its admin listener). */
async function serverLinks() {
  const r = await fetch(`${server.adminUrl}/v1/status`);
  return (await r.json()).links;
}

before(async () => {
  for (const dir of [FIREFOX_EXT, CHROME_EXT]) {
    assert.ok(existsSync(path.join(dir, 'node-wasm/chordial_node_wasm.js')), `${dir} has no node-wasm: npm run build`);
  }
  assert.ok(serverBinary(), 'no chordial-server binary: cargo build --release -p chordial-server');
  // On the veth address: its WebRTC sockets bind there, where Firefox's candidates can reach them.
  server = await startServer({ listen: `${VETH_A}:0` });
  demo = await serveStatic(path.join(ROOT, 'demo'));

  const ff = await launchFirefox(FIREFOX_EXT);
  const page = await ff.browser.newPage();
  page.on('pageerror', (e) => console.log(`[firefox] page error: ${e.message}`));
  const wallet = await installTestWalletInPage(page);
  F = { ...ff, page, wallet };

  const cr = await launchWithExtension(CHROME_EXT, { userDataDir: freshProfile('chromium') });
  const sw = await cr.serviceWorker();
  await sw.evaluate(
    (url) => chrome.storage.local.set({ 'chordial.settings': { bootstrap: [url], iceServers: [] } }),
    server.url,
  );
  const cwallet = await installTestWallet(cr.context);
  const cpage = await cr.context.newPage();
  cpage.on('pageerror', (e) => console.log(`[chromium] page error: ${e.message}`));
  C = { ...cr, page: cpage, wallet: cwallet };
});

after(async () => {
  await F?.close();
  await C?.context.close().catch(() => {});
  if (C) rmSync(C.userDataDir, { recursive: true, force: true });
  await server?.stop();
  await demo?.close();
});

test('firefox_meets_chromium: both approve the demo, see each other, and message both ways', async () => {
  // Firefox: the demo's Connect → the extension's approval window (in Firefox) → one signature.
  await F.page.goto(demo.url);
  await recordEvents(F.page);
  const addrF = await connect(F.page, async () => {
    const win = await firefoxApprovalPage(F.browser);
    assert.equal(await win.$eval('#origin', (e) => e.textContent), demo.origin);
    await win.screenshot({ path: path.join(ARTIFACTS, 'firefox-approval.png') });
    // The settings the popup would set: this test's server as the bootstrap server.
    await askBackground(win, 'popupSetSettings', { settings: { bootstrap: [server.url], iceServers: [] } });
    F.nodeId = (await askBackground(win, 'popupStatus')).nodeId;
    await clickAndClose(win, '#approve');
  });
  assert.equal(addrF, F.wallet.address);
  assert.equal(F.wallet.count('personal_sign'), 1);

  await C.page.goto(demo.url);
  await recordEvents(C.page);
  const addrC = await connect(C.page, async () => {
    const win = await approvalPage(C.context);
    await win.click('#approve', { noWaitAfter: true }).catch((e) => {
      if (!/closed/i.test(e.message)) throw e;
    });
  });
  assert.equal(addrC, C.wallet.address);
  assert.equal(C.wallet.count('personal_sign'), 1);

  await waitOnline(F.page);
  await waitOnline(C.page);
  await joinTopic(F.page, 'lobby');
  await joinTopic(C.page, 'lobby');
  await waitForPeer(F.page, addrC);
  await waitForPeer(C.page, addrF);

  const toChromium = 'from Firefox: héllo ✓ 🦊';
  assert.equal(await sendText(F.page, addrC, toChromium), 'delivered');
  const atC = await waitForEvents(C.page, 'message', 1);
  assert.deepEqual(
    atC.map((m) => [m.from, m.data]),
    [[addrF, toChromium]],
  );

  const toFirefox = 'from Chromium: grüß dich ✓ 🌐';
  assert.equal(await sendText(C.page, addrF, toFirefox), 'delivered');
  const atF = await waitForEvents(F.page, 'message', 1);
  assert.deepEqual(
    atF.map((m) => [m.from, m.data]),
    [[addrC, toFirefox]],
  );
  assert.deepEqual(await shownMessages(F.page), [{ from: addrC, text: toFirefox }]);
  assert.deepEqual(await shownMessages(C.page), [{ from: addrF, text: toChromium }]);

  await F.page.screenshot({ path: path.join(ARTIFACTS, 'firefox-demo.png'), fullPage: true });
  await C.page.screenshot({ path: path.join(ARTIFACTS, 'chromium-demo.png'), fullPage: true });
});

test('firefox_survives_idle: 60 s with no extension page or dApp tab open, the node keeps its link and gets a message', async () => {
  assert.ok(F.nodeId, 'firefox_meets_chromium ran first and learned the Firefox node id');
  const linkToF = async () => (await serverLinks()).find((l) => l.peer === F.nodeId && l.open);
  const before = await linkToF();
  assert.ok(before, 'the server has an open link to the Firefox node');

  // Firefox keeps only a blank tab: no dApp Port, no extension page (either would count as activity).
  const blank = await F.browser.newPage();
  await F.page.close();
  const t0 = Date.now();
  let checks = 0;
  while (Date.now() - t0 < IDLE_MS) {
    await new Promise((r) => setTimeout(r, 5_000));
    const now = await linkToF();
    assert.ok(now, `after ${Math.round((Date.now() - t0) / 1000)} s the server lost its link to the Firefox node`);
    assert.equal(now.link, before.link, 'the same link, never re-established');
    checks += 1;
  }
  const after = await linkToF();
  assert.ok(checks >= Math.floor(IDLE_MS / 5_000) - 1);
  assert.ok(after.bytes_in > before.bytes_in, 'the Firefox node kept talking to the server while idle');
  console.log(
    `idle ${IDLE_MS / 1000} s: link ${after.link} open throughout; bytes from Firefox ${before.bytes_in} → ${after.bytes_in}`,
  );

  // A message now is delivered to the live node (an unloaded node would make it 'stored')...
  const text = `after ${IDLE_MS / 1000} s of idle`;
  const sent = await call(C.page, 'chordial_send', { to: F.wallet.address, data: text });
  assert.equal(sent.result?.result, 'delivered', JSON.stringify(sent));
  // ...and kept by the extension until a page of the demo's origin opens in Firefox.
  F.page = blank;
  await installTestWalletInPage(F.page, { wallet: F.wallet });
  await F.page.goto(demo.url);
  // The demo listens before its first request, so the message waiting for it is on screen right away.
  const shown = await until(F.page, () => document.querySelectorAll('#messages li.in').length > 0, null, {
    what: 'the waiting message on screen',
  }).then(() => shownMessages(F.page));
  assert.deepEqual(shown, [{ from: C.wallet.address, text }]);
  const st = await call(F.page, 'chordial_status');
  assert.equal(st.result.online, true);
  assert.equal(st.result.address, F.wallet.address);
  assert.equal(F.wallet.count('personal_sign'), 1, 'no second signature');
});
