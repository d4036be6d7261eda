#!/usr/bin/env node
// `npm start`'s demo (scripts/start.sh runs it after the build):
//
//   node scripts/walkthrough.mjs             headless: a narrated tour with two scripted wallets, screenshots
//                                            in demo-output/ (or $CHORDIAL_DEMO_OUTPUT); ends by itself
//   node scripts/walkthrough.mjs --display   a local server + the demo dApp + Chromium with the extension on
//                                            the demo page, for a person; ends when the browser closes
//
// Both start a chordial-server and the demo dApp on 127.0.0.1 and stop everything they started when they end
// (or on Ctrl-C). Headless, the two wallets are test wallets whose keys stay in this Node process (viem):
// no wallet extension can be scripted here, and their signatures are real EIP-191 signatures all the same.
// start.sh runs the headless tour inside a private network namespace when it runs as root.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchWithExtension, freshProfile, approvalPage, EXTENSION_ID } from '../tests/browser/lib/browser.mjs';
import { installTestWallet } from '../tests/browser/lib/wallet.mjs';
import { interfaces } from '../tests/browser/lib/netns.mjs';
import { generatePrivateKey } from 'viem/accounts';
import { serveStatic } from '../tests/browser/lib/http.mjs';
import { startServer, serverBinary } from '../tests/browser/lib/chordial-server.mjs';
import {
  call,
  connect,
  waitOnline,
  joinTopic,
  waitForPeer,
  sendText,
  shownMessages,
  until,
} from '../tests/browser/lib/demo-driver.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const EXT = path.join(ROOT, 'dist/chrome');
const OUT = path.resolve(process.env.CHORDIAL_DEMO_OUTPUT || path.join(ROOT, 'demo-output'));
const POPUP = 'popup/popup.html';
const DISPLAY_SERVER = '127.0.0.1:7700';
const DISPLAY_DEMO_PORT = 8080;

// ---- what this run started, stopped in reverse order whatever happens ----------------------------------------
const started = []; // [{what, stop}]
function track(what, stop) {
  started.push({ what, stop });
}
async function stopAll() {
  const stopped = [];
  while (started.length > 0) {
    const { what, stop } = started.pop();
    try {
      await stop();
      stopped.push(what);
    } catch (e) {
      console.log(`   could not stop ${what}: ${e.message}`);
    }
  }
  return stopped;
}
let stopping = null;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    stopping ??= stopAll()
      .then((stopped) => console.log(`\nInterrupted. Stopped what it started: ${stopped.join(', ') || 'nothing'}.`))
      .finally(() => process.exit(130));
  });
}

// ---- narration -------------------------------------------------------------------------------------------------
const TOTAL = 10;
let stepNo = 0;
const t0 = Date.now();
const secs = () => ((Date.now() - t0) / 1000).toFixed(1).padStart(5);
function step(text) {
  stepNo += 1;
  console.log(`\n[${stepNo}/${TOTAL}] ${text}`);
}
const note = (text) => console.log(`   ${secs()} s  ${text}`);
const screenshots = [];
/** What to print when the current step fails (set by the steps worth a closer look). */
let diagnose = null;
/** A path as a person would type it: relative to the repository when inside it. */
const shown = (p) => (path.relative(ROOT, p).startsWith('..') ? p : path.relative(ROOT, p));
async function shoot(page, name, what) {
  const file = path.join(OUT, name);
  await page.screenshot({ path: file, fullPage: true });
  screenshots.push(file);
  note(`screenshot: ${shown(file)} — ${what}`);
}
function check(cond, what) {
  if (!cond) throw new Error(what);
}

/** A Chromium profile with the extension, pointed at `serverUrl`, with a scripted wallet. */
async function person(name, serverUrl, { userDataDir, privateKey = generatePrivateKey() } = {}) {
  if (!userDataDir) {
    userDataDir = freshProfile(name.toLowerCase());
    const dir = userDataDir;
    track(`${name}'s browser profile`, () => rmSync(dir, { recursive: true, force: true }));
  }
  const b = await launchWithExtension(EXT, { userDataDir });
  track(`${name}'s browser`, () => b.context.close());
  const sw = await b.serviceWorker();
  await sw.evaluate(
    (url) => chrome.storage.local.set({ 'chordial.settings': { bootstrap: [url], iceServers: [] } }),
    serverUrl,
  );
  const wallet = await installTestWallet(b.context, { privateKey });
  const page = await b.context.newPage();
  await page.setViewportSize({ width: 900, height: 900 });
  return { name, ...b, userDataDir, wallet, page, privateKey };
}

async function walkthrough() {
  mkdirSync(OUT, { recursive: true });
  for (const f of readdirSync(OUT)) if (f.endsWith('.png')) rmSync(path.join(OUT, f));
  console.log('Chordial walkthrough: two people, two browsers with the extension, one local server.');
  const ifaces = interfaces();
  console.log(
    ifaces.join(',') === 'lo'
      ? 'Network: a private namespace with only loopback (lo) — nothing here can reach another host.'
      : `Network: this machine's own (${ifaces.join(', ')}); everything listens and connects on 127.0.0.1 only.`,
  );
  console.log(`Screenshots go to ${OUT}/.`);

  step('Start a local chordial-server (the bootstrap node)');
  const dataDir = mkdtempSync(path.join(tmpdir(), 'chordial-demo-server-'));
  const server = await startServer({ listen: '127.0.0.1:0', dataDir });
  track('the chordial-server', async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  note(`listening on ${server.url} — node ${server.nodeId.slice(0, 12)}…, wallet ${server.wallet}`);

  step('Serve the demo dApp (demo/, a chat that uses only window.chordial)');
  const demo = await serveStatic(path.join(ROOT, 'demo'));
  track('the demo dApp server', () => demo.close());
  note(`demo dApp at ${demo.url}`);

  step('Open two browsers (Chromium, the extension from dist/chrome): Alice and Bob');
  const alice = await person('Alice', server.url);
  const bob = await person('Bob', server.url);
  note(`Alice's wallet ${alice.wallet.address}`);
  note(`Bob's wallet   ${bob.wallet.address}`);
  note('(scripted wallets: their keys stay in this process; a person would use MetaMask or any EIP-1193 wallet)');

  step('Alice clicks Connect: Chordial asks her to approve the site, then her wallet signs once');
  await alice.page.goto(demo.url);
  await shoot(alice.page, '01-demo-before-connecting.png', 'the demo dApp before connecting');
  const addrA = await connect(alice.page, async () => {
    const win = await approvalPage(alice.context);
    await win.setViewportSize({ width: 380, height: 460 }); // the size the extension opens it at
    await shoot(win, '02-approval-window.png', "Chordial's approval window");
    await win.click('#approve', { noWaitAfter: true }).catch((e) => {
      if (!/closed/i.test(e.message)) throw e;
    });
  });
  check(addrA === alice.wallet.address, `the demo shows ${addrA}, not Alice's wallet`);
  note(`Alice is connected as ${addrA}; her wallet signed ${alice.wallet.count('personal_sign')} time(s) (SIWE)`);

  step('Bob does the same in his browser');
  await bob.page.goto(demo.url);
  const addrB = await connect(bob.page, async () => {
    const win = await approvalPage(bob.context);
    await win.click('#approve', { noWaitAfter: true }).catch((e) => {
      if (!/closed/i.test(e.message)) throw e;
    });
  });
  check(addrB === bob.wallet.address, `the demo shows ${addrB}, not Bob's wallet`);
  note(`Bob is connected as ${addrB}; his wallet signed ${bob.wallet.count('personal_sign')} time(s)`);
  await waitOnline(alice.page);
  await waitOnline(bob.page);
  note('both nodes joined the ring through the server');

  step('Both join the topic "lobby" and discover each other');
  await joinTopic(alice.page, 'lobby');
  await joinTopic(bob.page, 'lobby');
  await waitForPeer(alice.page, addrB);
  await waitForPeer(bob.page, addrA);
  note('Alice sees Bob on "lobby", Bob sees Alice');

  step('They chat, end to end encrypted, with no server in the message path');
  const hello = 'Hi Bob! This went straight from my browser to yours.';
  const r1 = await sendText(alice.page, addrB, hello);
  check(r1 === 'delivered', `Alice's message: ${r1}`);
  await until(
    bob.page,
    (t) => [...document.querySelectorAll('#messages li.in .text')].some((e) => e.textContent === t),
    hello,
    {
      what: "Alice's message on Bob's screen",
    },
  );
  note(`Alice → Bob: "${hello}" — ${r1}`);
  const reply = 'Hello Alice, got it. Signed by my wallet, encrypted to yours.';
  const r2 = await sendText(bob.page, addrA, reply);
  check(r2 === 'delivered', `Bob's reply: ${r2}`);
  await until(
    alice.page,
    (t) => [...document.querySelectorAll('#messages li.in .text')].some((e) => e.textContent === t),
    reply,
    {
      what: "Bob's reply on Alice's screen",
    },
  );
  note(`Bob → Alice: "${reply}" — ${r2}`);
  await shoot(alice.page, '03-alice-chat.png', "Alice's chat: delivered marks, Bob's address on his message");
  await shoot(bob.page, '04-bob-chat.png', "Bob's chat");

  step('Bob goes offline (closes his browser); Alice writes anyway');
  await bob.context.close();
  started.splice(
    started.findIndex((s) => s.what === "Bob's browser"),
    1,
  );
  const away = 'Are you still there? Read this when you are back.';
  const r3 = await sendText(alice.page, addrB, away, 90_000);
  note(`Alice → Bob (offline): "${away}" — ${r3}`);
  await shoot(alice.page, '05-alice-stored.png', 'the message waits, encrypted, in the network (✉ stored)');
  check(r3 === 'stored', `a message to an offline wallet should be stored, it was: ${r3}`);

  step('Bob comes back: same browser profile, no new signature, and the stored message arrives');
  // The same profile and the same wallet key as before (a person's wallet does not change between sessions).
  const bob2 = await person('Bob', server.url, { userDataDir: bob.userDataDir, privateKey: bob.privateKey });
  await bob2.page.goto(demo.url);
  diagnose = async () => ({
    bobStatus: (await call(bob2.page, 'chordial_status')).result,
    aliceLooksUpBob: (await call(alice.page, 'chordial_lookup', { address: addrB })).result,
    server: await fetch(`${server.adminUrl}/v1/status`)
      .then((r) => r.json())
      .then((st) => ({ records: st.records, mailbox_entries: st.mailbox_entries, links: st.links.length })),
  });
  const shown = await until(
    bob2.page,
    (t) => [...document.querySelectorAll('#messages li.in .text')].some((e) => e.textContent === t),
    away,
    { timeout: 90_000, what: 'the stored message on Bob’s screen after his return' },
  ).then(() => shownMessages(bob2.page));
  const got = shown.find((m) => m.text === away);
  check(got.from === addrA, `the stored message shows sender ${got.from}, not Alice`);
  check(bob2.wallet.calls.length === 0, 'Bob’s wallet was asked again');
  note(`Bob received "${got.text}" from ${got.from} — his wallet was not asked for anything`);
  await shoot(bob2.page, '06-bob-back.png', 'Bob after his return: the message that waited for him');

  step("The extension's popup");
  if (existsSync(path.join(EXT, POPUP))) {
    const popup = await alice.context.newPage();
    await popup.setViewportSize({ width: 360, height: 600 });
    await popup.goto(`chrome-extension://${EXTENSION_ID}/${POPUP}`);
    await popup.waitForLoadState('load');
    await until(popup, () => document.body.innerText.trim().length > 0, null, { what: 'the popup shows something' });
    await popup.waitForTimeout(1_500); // its first live update
    await shoot(popup, '07-popup.png', "Alice's popup: her node, its links and the ring");
  } else {
    note(`no popup in this build yet (dist/chrome/${POPUP} does not exist): no popup screenshot`);
  }
  return { server, demo };
}

/** --display: the real thing for a person, with the browser window open until they close it. */
async function withDisplay() {
  mkdirSync(OUT, { recursive: true });
  const dataDir = path.join(OUT, 'server-data');
  const server = await startServer({ listen: DISPLAY_SERVER, dataDir });
  track('the chordial-server', () => server.stop());
  const demo = await serveStatic(path.join(ROOT, 'demo'), {}, { port: DISPLAY_DEMO_PORT }).catch(() =>
    serveStatic(path.join(ROOT, 'demo')),
  );
  track('the demo dApp server', () => demo.close());
  const { chromium } = await import('playwright-core');
  const profile = path.join(OUT, 'chromium-profile');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHORDIAL_CHROMIUM || '/usr/bin/chromium',
    headless: false,
    viewport: null,
    ignoreDefaultArgs: ['--disable-extensions', '--disable-component-extensions-with-background-pages'],
    args: [
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      `--disable-extensions-except=${EXT}`,
      `--load-extension=${EXT}`,
    ],
  });
  track('Chromium', () => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(demo.url);
  console.log(`Chordial is running:
  chordial-server  ${server.url}   (data in ${shown(dataDir)}/)
  demo dApp        ${demo.url}
  Chromium         profile ${shown(profile)}/, the extension from dist/chrome
This Chromium profile has no wallet yet: install MetaMask (or any EIP-1193 wallet) in it once, then click
Connect. Open the demo in a second profile or browser to chat with yourself. Close the browser (or press
Ctrl-C) to stop everything.`);
  await new Promise((resolve) => context.on('close', resolve));
}

function nextSteps(mode) {
  console.log(`
Next:
  - Load the extension yourself: chrome://extensions → Developer mode → Load unpacked → ${path.join(ROOT, 'dist/chrome')}
    (Firefox: about:debugging → This Firefox → Load Temporary Add-on → dist/firefox/manifest.json).
    npm start built it with http://${DISPLAY_SERVER} as its bootstrap server; run one there with
      cargo run -p chordial-server --release -- --listen ${DISPLAY_SERVER} --data-dir ./chordial-data
    and serve demo/ on 127.0.0.1 (any static server), or change the server in the extension's settings.
  - ${mode === 'headless' ? `Look at the screenshots in ${shown(OUT)}/.` : 'Run `npm start` without a display for the scripted tour and its screenshots.'}
  - Build a dApp: docs/dapp-api.md (window.chordial); demo/app.js is the reference.
  - Run every test: npm test.`);
}

async function main() {
  const display = process.argv.includes('--display');
  if (!existsSync(path.join(EXT, 'node-wasm/chordial_node_wasm.js'))) {
    throw new Error('dist/chrome has no node-wasm: run `npm run build` first (npm start does)');
  }
  if (!serverBinary()) throw new Error('no chordial-server binary: cargo build --release -p chordial-server');
  if (display) await withDisplay();
  else await walkthrough();
}

main().then(
  async () => {
    const stopped = await stopAll();
    console.log(`\nDone in ${secs().trim()} s. Stopped what it started: ${stopped.join(', ') || 'nothing'}.`);
    if (screenshots.length > 0) {
      console.log('Screenshots:');
      for (const f of screenshots) console.log(`  ${shown(f)}  (${statSync(f).size} bytes)`);
    }
    nextSteps(process.argv.includes('--display') ? 'display' : 'headless');
    process.exit(0);
  },
  async (e) => {
    console.log(`\nWALKTHROUGH FAILED${stepNo ? ` at step ${stepNo}` : ''}: ${e.message}`);
    if (diagnose) {
      const d = await diagnose().catch((err) => `(diagnostics failed: ${err.message})`);
      console.log(`Diagnostics: ${JSON.stringify(d, null, 2)}`);
    }
    const stopped = await stopAll();
    console.log(`Stopped what it started: ${stopped.join(', ') || 'nothing'}.`);
    process.exit(1);
  },
);
