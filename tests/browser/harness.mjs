// Shared by the browser scenarios and the browser benchmark: a static file server for the built wasm
// package, Chromium instances with the flags of ../shared/browser-testing.md, an in-page EIP-1193 test
// wallet whose key stays in Node (viem), a bootstrap relay that hands /v1/signal bodies to a page's
// node, and waiting helpers with deadlines. Must run inside a private network namespace (see the suite
// scripts): it binds 127.0.0.1 only and Chromium is told to gather loopback candidates.

import { createServer } from 'node:http';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, extname, resolve, sep } from 'node:path';
import { chromium } from 'playwright-core';
import { privateKeyToAccount, generatePrivateKey } from 'viem/accounts';

export const ROOT = resolve(new URL('../..', import.meta.url).pathname);
// The web package under test: dist/node-wasm, or another build (CHORDIAL_NODE_WASM_PKG) to compare builds.
export const PKG = process.env.CHORDIAL_NODE_WASM_PKG ?? join(ROOT, 'dist', 'node-wasm');

export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--allow-loopback-in-peer-connection',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
];

const TYPES = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
};

/** Serves dist/node-wasm under /pkg/ and tests/browser/ under / on 127.0.0.1 (an ephemeral port). */
export async function staticServer() {
  const roots = [
    ['/pkg/', PKG],
    ['/', join(ROOT, 'tests', 'browser')],
  ];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    for (const [prefix, dir] of roots) {
      if (!url.pathname.startsWith(prefix)) continue;
      const file = resolve(dir, '.' + url.pathname.slice(prefix.length - 1));
      if (!file.startsWith(dir + sep)) break;
      try {
        const body = await readFile(file);
        res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
        res.end(body);
        return;
      } catch {
        break;
      }
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${server.address().port}`, close: () => closeServer(server) };
}

function closeServer(server) {
  server.closeAllConnections?.();
  return new Promise((r) => server.close(() => r()));
}

/**
 * A bootstrap relay speaking chordial-server's /v1/signal shape (docs/protocol.md): POST /<name>/v1/signal
 * with {"offer": base64} hands the decoded offer to `targets[name]` (an async function body → answer
 * bytes) and answers {"answer": base64}, with the CORS headers a chordial-server sends. A target named
 * `raw` gets and returns the body as it is (plain SDP, for the benchmark's raw offer/answer).
 */
export async function signalRelay(targets) {
  const server = createServer(async (req, res) => {
    const cors = { 'access-control-allow-origin': '*', 'access-control-allow-headers': 'content-type' };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'access-control-allow-methods': 'POST' }).end();
      return;
    }
    const m = /^\/([a-z0-9-]+)\/v1\/signal$/.exec(req.url);
    const target = m && targets[m[1]];
    if (req.method !== 'POST' || !target) {
      res.writeHead(404, cors).end();
      return;
    }
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    try {
      if (m[1] === 'raw') {
        res.writeHead(200, cors).end(Buffer.from(await target(body)));
        return;
      }
      const offer = Buffer.from(JSON.parse(body.toString()).offer, 'base64');
      const answer = Buffer.from(await target(offer)).toString('base64');
      res.writeHead(200, { ...cors, 'content-type': 'application/json' }).end(JSON.stringify({ answer }));
    } catch (e) {
      const message = String(e?.message ?? e);
      res
        .writeHead(503, { ...cors, 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'relay', message }));
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => closeServer(server) };
}

/** A Chromium instance of its own (fresh profile) with media permission (for loopback candidates). */
export async function launchBrowser() {
  const dir = await mkdtemp(join(tmpdir(), 'chordial-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
  });
  await context.grantPermissions(['microphone', 'camera']);
  return {
    context,
    async close() {
      await context.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Installs an EIP-1193 wallet in every page of `context` (as `window.ethereum`, announced with EIP-6963);
 * the key stays in Node. `wallet.signatures` counts personal_sign calls; `wallet.refuse = true` makes the
 * wallet reject with 4001.
 */
export async function installWallet(context, privateKey = generatePrivateKey()) {
  const account = privateKeyToAccount(privateKey);
  const wallet = { address: account.address, signatures: 0, refuse: false };
  await context.exposeBinding('__chordialTestWallet', async (_source, method, params) => {
    switch (method) {
      case 'eth_requestAccounts':
      case 'eth_accounts':
        return [account.address];
      case 'eth_chainId':
        return '0x1';
      case 'personal_sign': {
        if (wallet.refuse) return { error: { code: 4001, message: 'User rejected the request.' } };
        wallet.signatures += 1;
        return account.signMessage({ message: { raw: params[0] } });
      }
      default:
        return { error: { code: 4200, message: `unsupported method ${method}` } };
    }
  });
  await context.addInitScript(() => {
    const provider = {
      async request({ method, params }) {
        const r = await window.__chordialTestWallet(method, params ?? []);
        if (r && typeof r === 'object' && r.error) {
          const e = new Error(r.error.message);
          e.code = r.error.code;
          throw e;
        }
        return r;
      },
    };
    window.ethereum = provider;
    const info = {
      uuid: '00000000-0000-4000-8000-000000000001',
      name: 'Test Wallet',
      icon: 'data:,',
      rdns: 'test.wallet',
    };
    const announce = () =>
      window.dispatchEvent(new CustomEvent('eip6963:announceProvider', { detail: Object.freeze({ info, provider }) }));
    window.addEventListener('eip6963:requestProvider', announce);
    announce();
  });
  return wallet;
}

/** Waits until `fn()` returns a truthy value (checked every `every` ms); throws `what` after `ms`. */
export async function until(what, fn, ms = 20000, every = 50) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** A tiny test runner: runs the named async tests in order, prints results and "N passed, N failed". */
export async function run(tests) {
  let passed = 0;
  let failed = 0;
  for (const [name, fn] of tests) {
    const t0 = Date.now();
    try {
      await fn();
      passed += 1;
      console.log(`ok - ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed += 1;
      console.log(`FAIL - ${name} (${Date.now() - t0} ms)\n${e?.stack ?? e}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0;
}
