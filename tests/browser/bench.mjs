// The browser benchmark (one Chromium run, inside a private network namespace: scripts/bench-browser.sh).
// Prints a table and writes target/bench/browser.json.
//
// - raw RTCDataChannel throughput between two pages vs Chordial `send` throughput between the same two
//   pages, payloads of 1, 16 and 64 KiB: MB/s (payload bytes, 10^6) and the ratio.
// - latency of 1 KiB messages one at a time: `send` → `delivered` against a raw message and its echo.
// - time from start() to the first open link against the bootstrap node (a chordial-server when the tree
//   has one, else a founder page behind an HTTP relay) vs a raw offer/answer over HTTP with a page behind
//   the relay (chordial-server only speaks signed offers, so the raw peer is a page).
// - .wasm size raw and gzip; instantiate and open time.
import { mkdir, writeFile, stat, readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { staticServer, signalRelay, launchBrowser, installWallet, until, ROOT, PKG } from './harness.mjs';
import { startServer, serverBinary } from './lib/chordial-server.mjs';

const ORIGIN = 'https://bench.example';
const SIZES = [1024, 16 * 1024, 64 * 1024];
// Bytes per measurement: enough for a steady rate, small enough for a 2-core machine.
const RAW_BYTES = 24 << 20;
const CHORDIAL_BYTES = 6 << 20;
const WINDOW = 16;
// Messages sent one at a time for the latency row.
const LATENCY_COUNT = 200;

const cleanup = [];
try {
  const web = await staticServer();
  cleanup.push(web.close);
  const pages = {};
  const relay = await signalRelay({
    base: (body) => pages.base.evaluate((b) => window.chordialPage.signal(b), [...body]),
    raw: async (body) =>
      Buffer.from(await pages.base.evaluate((sdp) => window.chordialPage.rawAnswer(sdp), body.toString())),
  });
  cleanup.push(relay.close);
  const browser = await launchBrowser();
  cleanup.push(browser.close);
  const wallet = await installWallet(browser.context);
  const open = async (name) => {
    const p = await browser.context.newPage();
    await p.goto(`${web.url}/page.html`);
    await p.waitForFunction(() => window.chordialPage !== undefined);
    pages[name] = p;
    return p;
  };
  // All pages share one browser context (one Chromium run), so each uses a database of its own. The
  // context's wallet serves base and A; B needs a wallet of its own (sends address a wallet's sessions),
  // installed on its page before it boots.
  // The bootstrap node: a chordial-server when this tree has one, else the base page (founder of the ring)
  // behind the relay. The base page also answers the raw offer/answer in both cases.
  const base = await open('base');
  let bootUrl = `${relay.url}/base`;
  let bootstrapNode = 'browser page behind an HTTP relay (no chordial-server in this tree)';
  if (serverBinary()) {
    const server = await startServer({ network: 'bench' });
    cleanup.push(() => server.stop());
    bootUrl = server.url;
    bootstrapNode = 'chordial-server (release build)';
  } else {
    await base.evaluate(() => window.chordialPage.boot({ network: 'bench', bootstrap: [], database: 'base' }));
  }

  const a = await open('a');
  await a.evaluate((url) => window.chordialPage.boot({ network: 'bench', bootstrap: [url], database: 'a' }), bootUrl);
  const instantiateMs = (await a.evaluate(() => window.chordialPage.timings)).instantiateMs;
  const openMs = (await a.evaluate(() => window.chordialPage.timings)).openMs;
  await until('A joins', () => a.evaluate(() => window.chordialPage.joined()));
  const startToLinkMs = await a.evaluate(() => window.chordialPage.firstLinkOpenMs());
  const rawSetupMs = await a.evaluate((url) => window.chordialPage.rawSetupOverHttp(url), `${relay.url}/raw/v1/signal`);
  await a.evaluate(() => window.chordialPage.raw.pc.close());

  // B: a second wallet. The page's wallet is the context's; B switches it before booting.
  const b = await open('b');
  const other = await import('viem/accounts');
  const keyB = other.generatePrivateKey();
  const accountB = other.privateKeyToAccount(keyB);
  await b.exposeFunction('__benchSignB', (hex) => accountB.signMessage({ message: { raw: hex } }));
  await b.evaluate((address) => {
    window.ethereum = {
      async request({ method, params }) {
        if (method === 'eth_requestAccounts') return [address];
        if (method === 'eth_chainId') return '0x1';
        if (method === 'personal_sign') return window.__benchSignB(params[0]);
        throw Object.assign(new Error('unsupported'), { code: 4200 });
      },
    };
  }, accountB.address);
  await b.evaluate((url) => window.chordialPage.boot({ network: 'bench', bootstrap: [url], database: 'b' }), bootUrl);
  await until('B joins', () => b.evaluate(() => window.chordialPage.joined()));
  // Wait until B is reachable (its presence record stored), then let A and B link directly if the ring
  // makes them neighbours.
  await a.evaluate(([o, to]) => window.chordialPage.sendRetrying(o, to, 'warm-up'), [ORIGIN, accountB.address]);

  // Raw pair A ↔ B (signalled through Playwright).
  const offer = await a.evaluate(() => window.chordialPage.rawOffer());
  const answer = await b.evaluate((sdp) => window.chordialPage.rawAnswer(sdp), offer);
  await a.evaluate((sdp) => window.chordialPage.rawFinish(sdp), answer);

  const rows = [];
  for (const size of SIZES) {
    const rawCount = Math.ceil(RAW_BYTES / size);
    await b.evaluate((n) => window.chordialPage.rawExpect(n), rawCount * size);
    const rawMs = await a.evaluate(([s, n]) => window.chordialPage.rawSend(s, n), [size, rawCount]);
    const rawMBs = (rawCount * size) / 1e6 / (rawMs / 1000);

    const count = Math.max(WINDOW * 4, Math.ceil(CHORDIAL_BYTES / size));
    const before = await b.evaluate(() => window.chordialPage.messages.length);
    const r = await a.evaluate(
      ([o, to, s, n, w]) => window.chordialPage.burst(o, to, s, n, w),
      [ORIGIN, accountB.address, size, count, WINDOW],
    );
    await until(
      'B receives every delivered message',
      async () => (await b.evaluate(() => window.chordialPage.messages.length)) - before >= (r.outcomes.delivered ?? 0),
      15000,
    );
    const delivered = r.outcomes.delivered ?? 0;
    const chordialMBs = (delivered * size) / 1e6 / (r.ms / 1000);
    rows.push({
      payloadBytes: size,
      rawMBs: +rawMBs.toFixed(2),
      chordialMBs: +chordialMBs.toFixed(2),
      ratio: +(chordialMBs / rawMBs).toFixed(3),
      chordialMessages: count,
      outcomes: r.outcomes,
    });
  }
  // Latency, one message at a time: Chordial `send` → `delivered` (the receipt is back) against a raw
  // message and its one-byte echo on the raw channel between the same pages.
  const pct = (xs, p) => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length ? +s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(2) : null;
  };
  await b.evaluate(() => window.chordialPage.rawEcho());
  const rawRtt = await a.evaluate(([s, n]) => window.chordialPage.rawRoundTrips(s, n), [1024, LATENCY_COUNT]);
  const sendMs = await a.evaluate(
    ([o, to, s, n]) => window.chordialPage.sendLatencies(o, to, s, n),
    [ORIGIN, accountB.address, 1024, LATENCY_COUNT],
  );
  const latency = {
    payloadBytes: 1024,
    count: LATENCY_COUNT,
    rawRoundTripMs: { p50: pct(rawRtt, 50), p99: pct(rawRtt, 99) },
    sendToDeliveredMs: { p50: pct(sendMs, 50), p99: pct(sendMs, 99), delivered: sendMs.length },
  };
  const hops = await b.evaluate(() => {
    const h = {};
    for (const m of window.chordialPage.messages) h[m.hops] = (h[m.hops] ?? 0) + 1;
    return h;
  });
  const wasmPath = join(PKG, 'chordial_node_wasm_bg.wasm');
  const wasm = await readFile(wasmPath);
  const result = {
    when: new Date().toISOString(),
    chromium: browser.context.browser()?.version() ?? null,
    throughput: rows,
    setup: {
      startToFirstLinkOpenMs: +startToLinkMs.toFixed(1),
      rawOfferAnswerOverHttpMs: +rawSetupMs.toFixed(1),
      bootstrapNode,
      rawPeer: 'a browser page behind the HTTP relay (chordial-server has no raw offer/answer endpoint)',
    },
    wasm: { rawBytes: (await stat(wasmPath)).size, gzipBytes: gzipSync(wasm, { level: 9 }).length },
    load: { instantiateMs: +instantiateMs.toFixed(1), openMs: +openMs.toFixed(1) },
    messageHops: hops,
    latency,
  };
  console.log('\npayload   raw MB/s   chordial MB/s   ratio   chordial outcomes');
  for (const r of rows) {
    console.log(
      `${String(r.payloadBytes / 1024).padStart(4)} KiB ${r.rawMBs.toFixed(2).padStart(10)} ${r.chordialMBs.toFixed(2).padStart(15)} ${(r.ratio * 100).toFixed(1).padStart(6)}%   ${JSON.stringify(r.outcomes)}`,
    );
  }
  console.log(
    `\nstart() → first link open: ${result.setup.startToFirstLinkOpenMs} ms; raw offer/answer over HTTP: ${result.setup.rawOfferAnswerOverHttpMs} ms`,
  );
  console.log(
    `latency, ${LATENCY_COUNT} × 1 KiB one at a time: send → delivered p50 ${latency.sendToDeliveredMs.p50} ms, p99 ${latency.sendToDeliveredMs.p99} ms (${latency.sendToDeliveredMs.delivered} delivered); raw round trip p50 ${latency.rawRoundTripMs.p50} ms, p99 ${latency.rawRoundTripMs.p99} ms`,
  );
  console.log(`hops of the messages B received: ${JSON.stringify(hops)}`);
  console.log(
    `wasm: ${result.wasm.rawBytes} bytes raw, ${result.wasm.gzipBytes} bytes gzip; instantiate ${result.load.instantiateMs} ms, open ${result.load.openMs} ms`,
  );
  await mkdir(join(ROOT, 'target', 'bench'), { recursive: true });
  await writeFile(join(ROOT, 'target', 'bench', 'browser.json'), JSON.stringify(result, null, 2) + '\n');
  console.log('written: target/bench/browser.json');
} finally {
  for (const c of cleanup.reverse()) await c().catch((e) => console.log(`cleanup: ${e}`));
}
