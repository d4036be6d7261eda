// The popup, driven like a person would, in Chromium profiles with the real extension (dist/chrome built
// WITH node-wasm), the test wallet and the demo dApp on 127.0.0.1, inside a private network namespace:
//
//   popup_shows_the_ring  a chordial-server and two browsers: the popup lists the server and the other browser
//                         among its links with roles, draws a marker for each on the ring, lists the demo's
//                         origin, and Revoke takes the demo's access away (4100).
//   manual_pairing        two browsers and NO server link through an offer code and an answer code carried
//                         between their popups, then message each other both ways.
//   popup_settings_restart_the_node  bootstrap and ICE servers (TURN credentials) edited in the popup are
//                         validated, stored, and applied by restarting the node.
//
// Screenshots (360×600) go to $CHORDIAL_ARTIFACTS (tests/suites/60-popup.sh: $CHORDIAL_LOG_DIR/popup/).
//
//   npm run build && cargo build --release -p chordial-server && node tests/browser/popup.test.mjs

import { enterNetns } from './lib/netns.mjs';

enterNetns();

const { test, before, after } = await import('node:test');
const assert = (await import('node:assert/strict')).default;
const { existsSync, mkdirSync } = await import('node:fs');
const path = (await import('node:path')).default;
const { getAddress } = await import('viem');
const { launchWithExtension, freshProfile, currentWorker, EXTENSION_ID } = await import('./lib/browser.mjs');
const { installTestWallet } = await import('./lib/wallet.mjs');
const { serveStatic } = await import('./lib/http.mjs');
const { startServer, serverBinary } = await import('./lib/chordial-server.mjs');
const { call, recordEvents, requestAccess, waitForEvents, nodeStatus } = await import('./lib/dapp.mjs');
const { formatBytes } = await import('../../extension/popup/model.js');

const ROOT = path.resolve(import.meta.dirname, '../..');
const EXT = process.env.CHORDIAL_EXTENSION_DIR || path.join(ROOT, 'dist/chrome');
const ARTIFACTS = process.env.CHORDIAL_ARTIFACTS || path.join(ROOT, 'test-artifacts/popup');
mkdirSync(ARTIFACTS, { recursive: true });
const NETWORK = process.env.CHORDIAL_NETWORK || 'chordial-dev';
const POPUP_URL = `chrome-extension://${EXTENSION_ID}/popup/popup.html`;
const ROLES = new Set(['successor', 'predecessor', 'finger', 'direct', 'bootstrap', 'pairing']);

let demo;

before(async () => {
  assert.ok(
    existsSync(path.join(EXT, 'node-wasm/chordial_node_wasm.js')),
    'dist/chrome has no node-wasm: build node-wasm (scripts/build-wasm.sh), then npm run build',
  );
  assert.ok(existsSync(path.join(EXT, 'popup/popup.html')), 'dist/chrome has no popup/popup.html');
  demo = await serveStatic(path.join(ROOT, 'demo'));
});

after(async () => {
  await demo?.close();
});

/** A browser profile with the extension, its settings (bootstrap list) and a test wallet. */
async function profile(label, { bootstrap = [] } = {}) {
  const b = await launchWithExtension(EXT, { userDataDir: freshProfile(label) });
  const sw = await b.serviceWorker();
  await sw.evaluate(
    (list) => chrome.storage.local.set({ 'chordial.settings': { bootstrap: list, iceServers: [] } }),
    bootstrap,
  );
  const wallet = await installTestWallet(b.context);
  const openPage = async (url) => {
    const page = await b.context.newPage();
    page.on('pageerror', (e) => console.log(`[${label}] page error: ${e.message}`));
    await page.goto(url);
    return page;
  };
  const dapp = async () => {
    const page = await openPage(demo.url);
    await recordEvents(page);
    const { outcome } = await requestAccess(b.context, page);
    assert.equal(outcome.result?.address, wallet.address, JSON.stringify(outcome));
    return page;
  };
  const popup = async () => {
    const page = await openPage(POPUP_URL);
    await page.setViewportSize({ width: 360, height: 600 });
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
    return page;
  };
  const status = async () => nodeStatus(await currentWorker(b.context));
  return { ...b, label, wallet, dapp, popup, status, close: () => b.context.close() };
}

/** Retries `fn` until `ok(result)` or the deadline (the ring settles over a few seconds). */
async function eventually(fn, ok, timeout = 30_000, what = 'condition') {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`deadline: ${what}; last: ${JSON.stringify(last)?.slice(0, 2000)}`);
}

const openPeers = (st) => new Set(st.links.filter((l) => l.open && l.peer).map((l) => l.peer));

/** Sends until the recipient's presence is findable, then checks `delivered`. */
async function sendWhenFound(page, to, data) {
  const r = await eventually(
    () => call(page, 'chordial_send', { to, data }),
    (x) => x.result || !['NOT_FOUND', 'NODE_NOT_FOUND', 'TIMEOUT', 'NO_ROUTE'].includes(x.error?.data?.reason),
    60_000,
    `send to ${to}`,
  );
  assert.equal(r.result?.result, 'delivered', JSON.stringify(r));
}

test('popup_shows_the_ring: links with roles, a marker per linked node, sites and Revoke → 4100', async () => {
  assert.ok(serverBinary(), 'no chordial-server binary: cargo build --release -p chordial-server');
  const server = await startServer({ network: NETWORK });
  const A = await profile('popup-A', { bootstrap: [server.url] });
  const B = await profile('popup-B', { bootstrap: [server.url] });
  try {
    const a = await A.dapp();
    await B.dapp();
    const idB = (await B.status()).nodeId;
    // The three nodes form a ring: A has open links to the server and to B.
    const stA = await eventually(
      () => A.status(),
      (st) => st.joined && openPeers(st).has(server.nodeId) && openPeers(st).has(idB),
      45_000,
      'A linked to the server and to B',
    );

    const p = await A.popup();
    await p.waitForSelector('#state[data-state="online"]', { timeout: 15_000 });
    // Identity: the wallet in EIP-55 form, the node id.
    const shown = await p.textContent('#wallet');
    assert.equal(shown, A.wallet.address);
    assert.equal(shown, getAddress(shown.toLowerCase()), 'EIP-55 checksummed');
    assert.notEqual(shown, shown.toLowerCase());
    assert.equal(await p.getAttribute('#copy-wallet', 'data-copy'), A.wallet.address);
    assert.equal(await p.getAttribute('#node-id', 'title'), stA.nodeId);
    assert.match(await p.textContent('#session'), /^expires in (29|30) days/);

    // Links: the server and B, open, each with its ring roles from the node. A link can open a moment
    // before stabilization gives it a role; the popup shows the role as soon as the node has it.
    for (const [peer, what] of [
      [server.nodeId, 'server'],
      [idB, 'browser B'],
    ]) {
      const sel = `#links li[data-peer="${peer}"][data-open="true"]`;
      await p.waitForFunction(
        (q) => /\b(successor|predecessor|finger)\b/.test(document.querySelector(q)?.dataset.roles ?? ''),
        sel,
        { timeout: 30_000 },
      );
      const row = p.locator(sel);
      const roles = (await row.getAttribute('data-roles')).split(' ').filter(Boolean);
      assert.ok(roles.length > 0, `${what} has roles`);
      for (const r of roles) assert.ok(ROLES.has(r), `${what}: role ${r}`);
      const badges = await row.locator('.badge').allTextContents();
      assert.ok(
        badges.some((b) => /^(successor|predecessor|finger)/.test(b)),
        `${what} is a ring neighbour: ${badges}`,
      );
      assert.match(await row.locator('.line2').textContent(), /^RTT (\d+ ms|<1 ms|–) · ↓ \d/);
    }
    assert.match(await p.textContent(`#links li[data-peer="${server.nodeId}"] .name`), /^server 127\.0\.0\.1:\d+$/);
    assert.equal(await p.getAttribute(`#servers li[data-url="${server.url}"]`, 'data-state'), 'linked');

    // The ring: this node, and a marker for every linked node — the server and B among them.
    assert.equal(await p.locator(`#ring [data-self="true"][data-node-id="${stA.nodeId}"]`).count(), 1);
    for (const peer of [server.nodeId, idB]) {
      assert.equal(await p.locator(`#ring [data-node-id="${peer}"][data-linked="true"]`).count(), 1, peer);
    }
    assert.equal(await p.getAttribute(`#ring [data-node-id="${server.nodeId}"]`, 'data-server'), server.url);
    // One linked marker per open link's peer, no more: compared while the links stay the same across a poll.
    await eventually(
      async () => {
        const before = [...openPeers(await A.status())].sort();
        await new Promise((r) => setTimeout(r, 1500)); // one popup refresh
        const markers = await p.$$eval('#ring [data-linked="true"]', (els) => els.map((e) => e.dataset.nodeId));
        const after = [...openPeers(await A.status())].sort();
        return { before, after, markers: markers.sort() };
      },
      (x) =>
        JSON.stringify(x.before) === JSON.stringify(x.after) && JSON.stringify(x.markers) === JSON.stringify(x.after),
      20_000,
      'one ring marker per linked node',
    );

    // Live: the traffic of the server link grows while the popup stays open (one end pings every 1.5 s).
    // The exact counters (the tooltip's) are compared: the rounded text moves only every few hundred bytes
    // once a link has carried more than 10 KB, and that can take longer than a few pings.
    const trafficSel = `#links li[data-peer="${server.nodeId}"] .line2`;
    const total = () => p.$eval(trafficSel, (e) => Number(e.dataset.bytesIn) + Number(e.dataset.bytesOut));
    const t0 = await total();
    assert.ok(t0 > 0, `server link carried bytes: ${t0}`);
    await p.waitForFunction(
      ([sel, before]) => {
        const e = document.querySelector(sel);
        return e && Number(e.dataset.bytesIn) + Number(e.dataset.bytesOut) > before;
      },
      [trafficSel, t0],
      { timeout: 10_000 },
    );
    // The text and the tooltip say the same as the counters.
    const shownTraffic = await p.$eval(trafficSel, (e) => ({
      text: e.textContent,
      title: e.title,
      bytesIn: Number(e.dataset.bytesIn),
      bytesOut: Number(e.dataset.bytesOut),
    }));
    assert.ok(
      shownTraffic.text.endsWith(`↓ ${formatBytes(shownTraffic.bytesIn)} · ↑ ${formatBytes(shownTraffic.bytesOut)}`),
      JSON.stringify(shownTraffic),
    );
    assert.equal(
      shownTraffic.title,
      `received ${shownTraffic.bytesIn.toLocaleString('en')} bytes, sent ${shownTraffic.bytesOut.toLocaleString('en')} bytes`,
    );
    // Both links show a measured round trip once pings went both ways.
    for (const peer of [server.nodeId, idB]) {
      await p.waitForFunction(
        (sel) => /^RTT (\d+ ms|<1 ms) · /.test(document.querySelector(sel)?.textContent ?? ''),
        `#links li[data-peer="${peer}"] .line2`,
        { timeout: 15_000 },
      );
    }
    await p.screenshot({ path: path.join(ARTIFACTS, 'popup-status.png') });

    // Keyboard: arrows move between tabs.
    await p.focus('#tab-status');
    await p.keyboard.press('ArrowRight');
    assert.equal(await p.getAttribute('#tab-sites', 'aria-selected'), 'true');
    assert.equal(await p.evaluate(() => document.activeElement.id), 'tab-sites');
    assert.equal(await p.isVisible('#panel-sites'), true);
    assert.equal(await p.isVisible('#panel-status'), false);

    // Sites: the demo's origin, then Revoke.
    const site = p.locator(`#sites li[data-origin="${demo.origin}"]`);
    await site.waitFor();
    assert.equal(await p.isVisible('#sites-empty'), false);
    await p.screenshot({ path: path.join(ARTIFACTS, 'popup-sites.png') });
    // Before: the dApp works (B's presence may take a moment to be stored).
    await eventually(
      () => call(a, 'chordial_lookup', { address: B.wallet.address }),
      (x) => x.result?.online === true,
      30_000,
      'A finds B through the dApp',
    );
    await site.getByRole('button', { name: `Revoke access for ${demo.origin}` }).click();
    await site.waitFor({ state: 'detached' });
    await p.waitForSelector('#sites-empty', { state: 'visible' });
    await p.screenshot({ path: path.join(ARTIFACTS, 'popup-sites-empty.png') });
    // The dApp learns it lost access, and from now on gets 4100.
    const changed = await waitForEvents(a, 'statusChanged', 1, 10_000);
    assert.equal(changed.at(-1).address, null);
    for (const [m, params] of [
      ['chordial_send', { to: B.wallet.address, data: 'after revoke' }],
      ['chordial_lookup', { address: B.wallet.address }],
      ['chordial_discover', { topic: 'lobby' }],
    ]) {
      assert.equal((await call(a, m, params)).error?.code, 4100, m);
    }
    assert.deepEqual((await call(a, 'chordial_status')).result.approved, false);
  } finally {
    await A.close();
    await B.close();
    await server.stop();
  }
});

test('manual_pairing: two browsers, no server, link through codes in their popups and message both ways', async () => {
  const A = await profile('pair-A');
  const B = await profile('pair-B');
  try {
    // Before the first approval: a welcome that says how to start, and no sites.
    const first = await A.popup();
    await first.waitForSelector('#state[data-state="offline"]');
    assert.equal(await first.textContent('#state'), 'Not signed in');
    assert.equal(await first.isVisible('#welcome'), true);
    assert.equal(await first.isVisible('#ring'), false);
    await first.screenshot({ path: path.join(ARTIFACTS, 'popup-first-run.png') });
    await first.click('#tab-sites');
    assert.equal(await first.isVisible('#sites-empty'), true);
    assert.equal(await first.locator('#sites li').count(), 0);
    // Pairing needs a session first, and says so.
    await first.click('#tab-pair');
    await first.click('#pair-offer');
    await first.waitForSelector('#pair-offer-msg[data-kind="error"]');
    assert.match(await first.textContent('#pair-offer-msg'), /connect from a dApp first/);
    assert.equal(await first.isVisible('#offer-out'), false);
    await first.close();

    const a = await A.dapp();
    const b = await B.dapp();
    const [pa, pb] = [await A.popup(), await B.popup()];
    for (const p of [pa, pb]) {
      // Alone: no server, no other node.
      await p.waitForFunction(() => document.getElementById('state').textContent === 'Alone');
      assert.equal(await p.getAttribute('#state', 'data-state'), 'offline');
      assert.match(await p.textContent('#reason'), /pair with another browser/);
      await p.click('#tab-pair');
    }
    const idA = (await A.status()).nodeId;
    const idB = (await B.status()).nodeId;

    // A makes an offer.
    await pa.click('#pair-offer');
    await pa.waitForFunction(() => document.getElementById('offer-code').value.startsWith('chordial-offer:'));
    const offer = await pa.inputValue('#offer-code');
    assert.match(await pa.textContent('#offer-expiry'), /^expires in [45]:\d\d$/);
    await pa.screenshot({ path: path.join(ARTIFACTS, 'popup-pair-offer.png') });

    // B: pasted mistakes are refused with a reason, and lose nothing.
    const answerWith = async (text) => {
      await pb.fill('#offer-in', text);
      await pb.click('#pair-answer');
      await pb.waitForFunction(() => !document.getElementById('pair-answer').disabled);
      return {
        kind: await pb.getAttribute('#pair-answer-msg', 'data-kind'),
        text: await pb.textContent('#pair-answer-msg'),
      };
    };
    let r = await answerWith('hello there');
    assert.equal(r.kind, 'error');
    assert.match(r.text, /not a Chordial pairing code/);
    const damaged = offer.slice(0, 200) + (offer[200] === 'A' ? 'B' : 'A') + offer.slice(201);
    r = await answerWith(damaged);
    assert.equal(r.kind, 'error');
    assert.match(r.text, /altered|damaged|does not read/);
    assert.equal(await pb.inputValue('#offer-in'), damaged, 'the pasted text stays for fixing');
    // The real offer, wrapped over lines as a chat app might.
    r = await answerWith(offer.match(/.{1,64}/g).join('\n'));
    assert.equal(r.kind, 'ok', r.text);
    const answer = await pb.inputValue('#answer-code');
    await pb.screenshot({ path: path.join(ARTIFACTS, 'popup-pair-answer.png') });
    assert.match(answer, /^chordial-answer:[A-Za-z0-9_-]+$/);
    r = await answerWith(offer);
    assert.equal(r.kind, 'error');
    assert.match(r.text, /already answered/);

    // A: the offer pasted back, a damaged answer, then the answer.
    const completeWith = async (text) => {
      await pa.fill('#answer-in', text);
      await pa.click('#pair-complete');
      await pa.waitForFunction(() => !document.getElementById('pair-complete').disabled, null, { timeout: 70_000 });
      return {
        kind: await pa.getAttribute('#pair-offer-msg', 'data-kind'),
        text: await pa.textContent('#pair-offer-msg'),
      };
    };
    r = await completeWith(offer);
    assert.equal(r.kind, 'error');
    assert.match(r.text, /offer code, not an answer code/);
    r = await completeWith(answer.slice(0, -30));
    assert.equal(r.kind, 'error');
    assert.match(r.text, /cut short|damaged|does not read|altered/);
    assert.equal(await pa.isVisible('#offer-out'), true, 'the offer still waits');
    r = await completeWith(answer);
    assert.equal(r.kind, 'ok', r.text);
    assert.match(r.text, new RegExp(`^Linked with node ${idB.slice(0, 8)}`));
    console.log(`pairing codes: offer ${offer.length} characters, answer ${answer.length} characters`);

    // Both join one ring: their popups say so, and each lists and draws the other.
    for (const [p, other] of [
      [pa, idB],
      [pb, idA],
    ]) {
      await p.waitForSelector('#state[data-state="online"]', { timeout: 30_000 });
      await p.click('#tab-status');
      const row = p.locator(`#links li[data-peer="${other}"][data-open="true"]`);
      await row.waitFor({ timeout: 15_000 });
      assert.match(await row.getAttribute('data-roles'), /successor/);
      assert.equal(await p.locator(`#ring [data-node-id="${other}"][data-linked="true"]`).count(), 1);
    }
    await pa.screenshot({ path: path.join(ARTIFACTS, 'popup-paired.png') });

    // Messages both ways through window.chordial, exact data and sender.
    await sendWhenFound(a, B.wallet.address, 'hello B, from A over a paired link ✓');
    await sendWhenFound(b, A.wallet.address, 'and back to A 🚀');
    const atB = await waitForEvents(b, 'message', 1, 30_000);
    const atA = await waitForEvents(a, 'message', 1, 30_000);
    assert.deepEqual(
      atB.map((m) => [m.from, m.data]),
      [[A.wallet.address, 'hello B, from A over a paired link ✓']],
    );
    assert.deepEqual(
      atA.map((m) => [m.from, m.data]),
      [[B.wallet.address, 'and back to A 🚀']],
    );
  } finally {
    await A.close();
    await B.close();
  }
});

test('popup_settings_restart_the_node: edited settings are validated, stored and applied', async () => {
  const server = await startServer({ network: NETWORK });
  const A = await profile('settings-A', { bootstrap: [server.url] });
  try {
    await A.dapp();
    const before = await eventually(
      () => A.status(),
      (st) => st.joined && openPeers(st).has(server.nodeId),
      30_000,
      'A online through the server',
    );
    const p = await A.popup();
    await p.click('#tab-settings');
    await p.waitForFunction((url) => document.getElementById('bootstrap').value === url, server.url);

    // A bad URL: refused with the reason, nothing stored, the node untouched.
    await p.fill('#bootstrap', `${server.url}\nftp://files.example`);
    await p.click('#settings-save');
    await p.waitForSelector('#settings-msg[data-kind="error"]');
    assert.match(await p.textContent('#settings-msg'), /bootstrap must be a list of http\(s\) URLs/);
    const sw = await currentWorker(A.context);
    const stored = () =>
      sw.evaluate(async () => (await chrome.storage.local.get('chordial.settings'))['chordial.settings']);
    assert.deepEqual((await stored()).bootstrap, [server.url]);

    // The server plus a TURN server with credentials (on loopback: nothing leaves the namespace).
    await p.fill('#bootstrap', `  ${server.url}  \n\n`);
    await p.click('#ice-add');
    const row = p.locator('#ice-rows .ice-row').last();
    await row.locator('.ice-urls').fill('turn:127.0.0.1:3478');
    await row.locator('.ice-username').fill('alice');
    await row.locator('.ice-credential').fill('s3cret');
    await p.screenshot({ path: path.join(ARTIFACTS, 'popup-settings.png') });
    await p.click('#settings-save');
    await p.waitForSelector('#settings-msg[data-kind="ok"]', { timeout: 30_000 });
    assert.deepEqual(await stored(), {
      bootstrap: [server.url],
      iceServers: [{ urls: 'turn:127.0.0.1:3478', username: 'alice', credential: 's3cret' }],
    });
    // Applied by a restart: new peer connections, and back online through the server.
    await eventually(
      () => A.status(),
      (st) =>
        st.joined &&
        openPeers(st).has(server.nodeId) &&
        st.counters.peerConnectionsCreated > before.counters.peerConnectionsCreated,
      45_000,
      'A restarted and back online',
    );
    await p.click('#tab-status');
    await p.waitForSelector('#state[data-state="online"]', { timeout: 15_000 });
    // The form shows what was stored when opened again.
    const q = await A.popup();
    await q.click('#tab-settings');
    await q.waitForFunction(() => document.querySelectorAll('#ice-rows .ice-row').length === 1);
    assert.equal(await q.inputValue('#ice-rows .ice-urls'), 'turn:127.0.0.1:3478');
    assert.equal(await q.inputValue('#ice-rows .ice-username'), 'alice');
    assert.equal(await q.getAttribute('#ice-rows .ice-credential', 'type'), 'password');
  } finally {
    await A.close();
    await server.stop();
  }
});
