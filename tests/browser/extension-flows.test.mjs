// The extension's own flows in real Chromium, with the node replaced by a test double of node-wasm's API
// (tests/browser/fake-node-wasm/): the approval window, the one wallet signature and its refusal, origin
// scoping and spoofing, service-worker restarts, and the page → offscreen → page round trip.
//
//   node tests/browser/extension-flows.test.mjs      (re-runs itself inside `unshare -n`; needs dist/chrome)
//
// The same flows against the real node and a chordial-server: extension-real.test.mjs.

import { enterNetns } from './lib/netns.mjs';

enterNetns();

const { test, after } = await import('node:test');
const assert = (await import('node:assert/strict')).default;
const { cpSync, existsSync, mkdirSync, mkdtempSync } = await import('node:fs');
const { tmpdir } = await import('node:os');
const path = (await import('node:path')).default;
const { launchWithExtension, stopServiceWorker, currentWorker, approvalPage, withDeadline, CHROMIUM, freshProfile } =
  await import('./lib/browser.mjs');
const { chromium } = await import('playwright-core');
const { installTestWallet } = await import('./lib/wallet.mjs');
const { serveStatic } = await import('./lib/http.mjs');
const { call, recordEvents, requestAccess, waitForEvents, nodeStatus } = await import('./lib/dapp.mjs');

const ROOT = path.resolve(import.meta.dirname, '../..');
const ARTIFACTS = process.env.CHORDIAL_ARTIFACTS || path.join(ROOT, 'test-artifacts/extension');
mkdirSync(ARTIFACTS, { recursive: true });

// dist/chrome with the test double as its node-wasm/.
const built = path.join(ROOT, 'dist/chrome');
assert.ok(existsSync(path.join(built, 'manifest.json')), 'dist/chrome is missing: run `npm run build` first');
const EXT = mkdtempSync(path.join(tmpdir(), 'chordial-ext-fake-'));
cpSync(built, EXT, { recursive: true });
cpSync(path.join(import.meta.dirname, 'fake-node-wasm'), path.join(EXT, 'node-wasm'), { recursive: true });

const PAGE = '<!doctype html><meta charset="utf-8"><title>dApp</title><h1>test dApp</h1>';
const siteA = await serveStatic(ROOT, { '/app': PAGE });
const demo = await serveStatic(path.join(ROOT, 'demo'));
const siteB = await serveStatic(ROOT, {
  '/app': PAGE,
  // A cross-origin iframe that tries to talk to the embedding page's content script.
  '/frame': `<!doctype html><script>
    const msg = (id, method, params) => ({ ns: 'chordial:v1', to: 'content', kind: 'request', id, method, params,
      origin: new URLSearchParams(location.search).get('claim') });
    parent.postMessage(msg('evil-1', 'chordial_send', { to: new URLSearchParams(location.search).get('to'),
      data: { text: 'from the iframe' } }), '*');
    parent.postMessage(msg('evil-2', 'chordial_discover', { topic: 'lobby' }), '*');
    document.title = 'posted';
  </script>`,
});
after(async () => {
  await siteA.close();
  await siteB.close();
  await demo.close();
});

async function profile(label) {
  const b = await launchWithExtension(EXT);
  const wallet = await installTestWallet(b.context);
  const open = async (url) => {
    const page = await b.context.newPage();
    page.on('pageerror', (e) => console.log(`[${label}] page error: ${e.message}`));
    await page.goto(url);
    await recordEvents(page);
    return page;
  };
  return { ...b, wallet, open, close: () => b.context.close() };
}

test('window.chordial is announced; status works unapproved; everything else is 4100', async () => {
  const p = await profile('guards');
  try {
    const page = await p.open(`${siteA.origin}/app`);
    const announced = await page.evaluate(
      () =>
        new Promise((resolve) => {
          window.addEventListener('chordial:announceProvider', (e) =>
            resolve({ rdns: e.detail.info.rdns, same: e.detail.provider === window.chordial }),
          );
          window.dispatchEvent(new Event('chordial:requestProvider'));
        }),
    );
    assert.deepEqual(announced, { rdns: 'org.chordial', same: true });
    const st = await call(page, 'chordial_status');
    assert.deepEqual(st.result, { installed: true, version: '0.1.0', online: false, approved: false, address: null });
    for (const [m, params] of [
      ['chordial_send', { to: p.wallet.address, data: 'x' }],
      ['chordial_lookup', { address: p.wallet.address }],
      ['chordial_announce', { topic: 'lobby' }],
      ['chordial_withdraw', { topic: 'lobby' }],
      ['chordial_discover', { topic: 'lobby' }],
    ]) {
      assert.equal((await call(page, m, params)).error?.code, 4100, m);
    }
    assert.equal((await call(page, 'eth_sendTransaction', {})).error?.code, 4200);
    assert.equal(p.wallet.calls.length, 0, 'the wallet was not touched');
  } finally {
    await p.close();
  }
});

test('approve + one signature; a second dApp reuses the session; messages and topics work', async () => {
  const p = await profile('approve');
  try {
    const a = await p.open(`${siteA.origin}/app`);
    const { outcome, approval } = await requestAccess(p.context, a, {
      screenshot: path.join(ARTIFACTS, 'approval-window.png'),
    });
    assert.deepEqual(outcome, { result: { address: p.wallet.address } });
    assert.equal(approval.origin, siteA.origin);
    assert.equal(approval.wallet, 'not connected yet');
    assert.equal(p.wallet.count('personal_sign'), 1);
    // The SIWE text names the page's own host.
    const signed = p.wallet.calls.find((c) => c.method === 'personal_sign').params[0];
    assert.match(
      Buffer.from(signed.slice(2), 'hex').toString('utf8'),
      new RegExp(`^${siteA.origin.slice(7)} wants you`),
    );

    const st = await call(a, 'chordial_status');
    assert.deepEqual(st.result, {
      installed: true,
      version: '0.1.0',
      online: true,
      approved: true,
      address: p.wallet.address,
    });
    // Exact data back, strings as strings and bytes as bytes.
    const sent = await call(a, 'chordial_send', { to: p.wallet.address, data: 'hello ✓' });
    assert.equal(sent.result.result, 'delivered');
    await call(a, 'chordial_send', { to: p.wallet.address, data: { __bytes: [0, 1, 254, 255] } });
    const msgs = await waitForEvents(a, 'message', 2);
    assert.deepEqual(
      msgs.map((m) => [m.from, m.data]),
      [
        [p.wallet.address, 'hello ✓'],
        [p.wallet.address, { bytes: [0, 1, 254, 255] }],
      ],
    );
    assert.equal((await call(a, 'chordial_announce', { topic: 'lobby' })).result, true);
    assert.deepEqual(
      (await call(a, 'chordial_discover', { topic: 'lobby' })).result.map((x) => x.address),
      [p.wallet.address],
    );
    const presence = await waitForEvents(a, 'presence', 1);
    assert.deepEqual(presence[0], { topic: 'lobby', address: p.wallet.address, present: true });

    // A second dApp: approval shows the wallet, and no second signature.
    const b = await p.open(`${siteB.origin}/app`);
    const second = await requestAccess(p.context, b);
    assert.deepEqual(second.outcome, { result: { address: p.wallet.address } });
    assert.equal(second.approval.wallet, p.wallet.address);
    assert.equal(p.wallet.count('personal_sign'), 1, 'no second signature');
    // Asking again once approved opens no window.
    assert.deepEqual((await requestAccess(p.context, a, { decision: 'none' })).outcome, {
      result: { address: p.wallet.address },
    });
    await a.screenshot({ path: path.join(ARTIFACTS, 'approved-page.png') });
  } finally {
    await p.close();
  }
});

test('wallet_refuses: a refused signature is 4001, nothing is stored, a later attempt works', async () => {
  const p = await profile('refuse');
  try {
    const page = await p.open(`${siteA.origin}/app`);
    p.wallet.refuse('personal_sign');
    const first = await requestAccess(p.context, page);
    assert.equal(first.outcome.error?.code, 4001);
    assert.deepEqual((await call(page, 'chordial_status')).result.approved, false, 'the approval was not kept');
    assert.equal((await call(page, 'chordial_discover', { topic: 't' })).error?.code, 4100);
    p.wallet.allow('personal_sign');
    const second = await requestAccess(p.context, page);
    assert.deepEqual(second.outcome, { result: { address: p.wallet.address } });
    assert.equal(p.wallet.count('personal_sign'), 2);
  } finally {
    await p.close();
  }
});

test('the approval window: Reject and closing it are 4001', async () => {
  const p = await profile('reject');
  try {
    const page = await p.open(`${siteA.origin}/app`);
    assert.equal((await requestAccess(p.context, page, { decision: 'reject' })).outcome.error?.code, 4001);
    assert.equal((await requestAccess(p.context, page, { decision: 'close' })).outcome.error?.code, 4001);
    assert.equal((await call(page, 'chordial_status')).result.approved, false);
    assert.equal(p.wallet.calls.length, 0);
  } finally {
    await p.close();
  }
});

test('unapproved_and_spoofed: forged origins and cross-origin iframes reach nothing; origins are separate', async () => {
  const p = await profile('spoof');
  try {
    const a = await p.open(`${siteA.origin}/app`);
    await requestAccess(p.context, a);
    await call(a, 'chordial_announce', { topic: 'lobby' });

    // An unapproved origin claiming to be A, straight on the window channel.
    const b = await p.open(`${siteB.origin}/app`);
    const forged = await b.evaluate(
      (claim) =>
        new Promise((resolve) => {
          window.addEventListener('message', (e) => {
            if (e.data?.to === 'page' && e.data.id === 'forged') resolve(e.data.error?.code ?? 'answered');
          });
          window.postMessage(
            {
              ns: 'chordial:v1',
              to: 'content',
              kind: 'request',
              id: 'forged',
              method: 'chordial_discover',
              params: { topic: 'lobby', origin: claim },
              origin: claim,
            },
            location.origin,
          );
        }),
      siteA.origin,
    );
    assert.equal(forged, 4100);

    // A cross-origin iframe inside A posts requests to A's window: the content script ignores them.
    const evil = await a.evaluate(
      ([frameUrl]) =>
        new Promise((resolve) => {
          const answered = [];
          window.addEventListener('message', (e) => {
            if (e.data?.to === 'page' && String(e.data.id).startsWith('evil')) answered.push(e.data.id);
          });
          const f = document.createElement('iframe');
          f.src = frameUrl;
          f.onload = () =>
            // A request of the page itself after the iframe's: once it is answered, the iframe's would have been.
            window.chordial.request({ method: 'chordial_status' }).then(() => resolve(answered));
          document.body.append(f);
        }),
      [`${siteB.origin}/frame?to=${p.wallet.address}&claim=${encodeURIComponent(siteA.origin)}`],
    );
    assert.deepEqual(evil, []);
    await call(a, 'chordial_send', { to: p.wallet.address, data: 'from A itself' });
    const msgs = await waitForEvents(a, 'message', 1);
    assert.deepEqual(
      msgs.map((m) => m.data),
      ['from A itself'],
      "the iframe's message was never sent",
    );

    // B approved: it sees neither A's topic nor A's messages.
    await requestAccess(p.context, b);
    assert.deepEqual((await call(b, 'chordial_discover', { topic: 'lobby' })).result, []);
    await call(a, 'chordial_send', { to: p.wallet.address, data: 'second from A' });
    await waitForEvents(a, 'message', 2);
    await call(b, 'chordial_send', { to: p.wallet.address, data: 'from B' });
    const bMsgs = await waitForEvents(b, 'message', 1);
    assert.deepEqual(
      bMsgs.map((m) => m.data),
      ['from B'],
    );
    assert.deepEqual(
      (await waitForEvents(a, 'message', 2)).map((m) => m.data),
      ['from A itself', 'second from A'],
    );
  } finally {
    await p.close();
  }
});

test('service_worker_restarts: pending calls reject 4900, new calls work, the node lives on', async () => {
  const p = await profile('restart');
  try {
    const a = await p.open(`${siteA.origin}/app`);
    await requestAccess(p.context, a);
    const before = await nodeStatus(await currentWorker(p.context));

    // A call that stays pending: an approval the user has not answered yet.
    const b = await p.open(`${siteB.origin}/app`);
    const pending = call(b, 'chordial_requestAccess');
    await approvalPage(p.context);
    await stopServiceWorker(p.context, a);
    const rejected = await withDeadline(pending, 10_000, 'the pending call did not settle');
    assert.equal(rejected.error?.code, 4900);

    // New calls work (the worker starts again), and the node in the offscreen document is the same one.
    const st = await call(a, 'chordial_status');
    assert.equal(st.result.online, true);
    assert.equal(st.result.approved, true);
    await call(a, 'chordial_send', { to: p.wallet.address, data: 'after the restart' });
    assert.deepEqual(
      (await waitForEvents(a, 'message', 1)).map((m) => m.data),
      ['after the restart'],
    );
    const afterSt = await nodeStatus(await currentWorker(p.context));
    assert.deepEqual(afterSt.fake, before.fake, 'same node instance, not restarted');
    assert.equal(afterSt.counters.starts, 1);
  } finally {
    await p.close();
  }
});

test('round trip of chordial_status page → offscreen → page (reported, not asserted)', async () => {
  const p = await profile('rtt');
  try {
    const page = await p.open(`${siteA.origin}/app`);
    await call(page, 'chordial_status'); // wakes everything up
    const ms = await page.evaluate(async () => {
      const out = [];
      for (let i = 0; i < 50; i++) {
        const t = performance.now();
        await window.chordial.request({ method: 'chordial_status' });
        out.push(performance.now() - t);
      }
      return out.sort((x, y) => x - y);
    });
    console.log(
      `chordial_status round trip over 50 calls: median ${ms[25].toFixed(2)} ms, p90 ${ms[45].toFixed(2)} ms, max ${ms[49].toFixed(2)} ms`,
    );
    assert.equal(ms.length, 50);
  } finally {
    await p.close();
  }
});

test('demo dApp: connect, join, chat (to oneself here), marks; screenshot', async () => {
  const p = await profile('demo');
  try {
    const page = await p.open(demo.url);
    await page.waitForSelector('#app:not([hidden])');
    const clicked = page.click('#connect');
    const win = await approvalPage(p.context);
    await win.click('#approve', { noWaitAfter: true }).catch((e) => {
      if (!/closed/i.test(e.message)) throw e;
    });
    await clicked;
    await page.waitForFunction((a) => document.getElementById('me').textContent === a, p.wallet.address);
    await page.click('#join');
    await page.waitForSelector(`#peers li[data-address="${p.wallet.address}"]`);
    await page.click(`#peers li[data-address="${p.wallet.address}"]`);
    await page.fill('#text', 'hello, me');
    await page.click('#send');
    await page.waitForSelector('#messages li.out .mark.delivered');
    await page.waitForSelector('#messages li.in');
    assert.equal(await page.textContent('#messages li.in .text'), 'hello, me');
    assert.equal(await page.textContent('#messages li.in .from'), p.wallet.address);
    await page.fill('#to', '0x' + '42'.repeat(20));
    await page.fill('#text', 'for someone offline');
    await page.click('#send');
    await page.waitForSelector('#messages li.out .mark.stored');
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-double.png'), fullPage: true });
  } finally {
    await p.close();
  }
});

test('demo dApp without the extension says so', async () => {
  const context = await chromium.launchPersistentContext(freshProfile('no-ext'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const page = await context.newPage();
    await page.goto(demo.url);
    await page.waitForSelector('#missing:not([hidden])', { timeout: 10_000 });
    assert.match(await page.textContent('#status'), /not found/);
    assert.equal(await page.isHidden('#app'), true);
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-no-extension.png') });
  } finally {
    await context.close();
  }
});

test('the offscreen document is recreated when gone, and the node resumes its stored session', async () => {
  const p = await profile('recreate');
  try {
    const a = await p.open(`${siteA.origin}/app`);
    await requestAccess(p.context, a);
    const before = await nodeStatus(await currentWorker(p.context));
    const sw = await currentWorker(p.context);
    await sw.evaluate(() => chrome.offscreen.closeDocument());
    const gone = await sw.evaluate(
      async () => (await chrome.runtime.getContexts({ contextTypes: ['OFFSCREEN_DOCUMENT'] })).length,
    );
    assert.equal(gone, 0);
    const st = await call(a, 'chordial_status');
    assert.deepEqual(st.result, {
      installed: true,
      version: '0.1.0',
      online: true,
      approved: true,
      address: p.wallet.address,
    });
    const after = await nodeStatus(await currentWorker(p.context));
    assert.notEqual(after.fake.instanceId, before.fake.instanceId, 'a new document');
    assert.equal(p.wallet.count('personal_sign'), 1, 'no new signature');
    await call(a, 'chordial_send', { to: p.wallet.address, data: 'after recreation' });
    assert.deepEqual(
      (await waitForEvents(a, 'message', 1)).map((m) => m.data),
      ['after recreation'],
    );
  } finally {
    await p.close();
  }
});

test('window.chordial also exists on plain-http pages (not a secure context)', async () => {
  // insecure.test resolves to 127.0.0.1 inside the browser only: an http origin that is not potentially trustworthy.
  const b = await launchWithExtension(EXT, { extraArgs: ['--host-resolver-rules=MAP insecure.test 127.0.0.1'] });
  try {
    const page = await b.context.newPage();
    await page.goto(`http://insecure.test:${new URL(siteA.origin).port}/app`);
    assert.equal(await page.evaluate(() => window.isSecureContext), false);
    const st = await page.evaluate(() => window.chordial.request({ method: 'chordial_status' }));
    assert.equal(st.installed, true);
    assert.equal(st.approved, false);
  } finally {
    await b.context.close();
  }
});
