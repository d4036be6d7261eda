// The Firefox build's own pieces: the derived manifest, the webpack entries, the in-process node (the same
// NodeHost as Chrome's offscreen document, reached without runtime messages), the keep-alive, and the
// router's sender rules on Firefox terms (sender.id is the gecko id, not the moz-extension:// host).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { firefoxManifest, GECKO_ID } from '../../../scripts/lib/manifest.mjs';
import { NodeHost } from '../../../extension/offscreen/host.js';
import { InProcessNode } from '../../../extension/firefox/in-process.js';
import { KeepAlive } from '../../../extension/firefox/keepalive.js';
import { Router } from '../../../extension/background/router.js';
import { PermissionStore } from '../../../extension/background/permissions.js';
import { SettingsStore } from '../../../extension/background/settings.js';
import { FakePort, FakeStorageArea, FakeTimers, nodeError, pageSender, until } from './fakes.mjs';

const root = path.resolve(import.meta.dirname, '../../..');
const chromeManifest = JSON.parse(readFileSync(path.join(root, 'manifest.json'), 'utf8'));
const W = '0x' + '11'.repeat(20);
const B = '0x' + '22'.repeat(20);
const MOZ = 'moz-extension://6a1d3f0e-4c2b-4f5e-9a7d-0c1b2a3d4e5f';

test('firefox manifest: event page instead of service worker + offscreen, gecko id, same CSP and scripts', () => {
  const m = firefoxManifest(chromeManifest);
  assert.equal(m.manifest_version, 3);
  assert.deepEqual(m.background, { scripts: ['background.js'] });
  assert.deepEqual(m.permissions, ['storage']);
  assert.equal(m.browser_specific_settings.gecko.id, GECKO_ID);
  assert.ok(Number.parseFloat(m.browser_specific_settings.gecko.strict_min_version) >= 128, 'world: MAIN needs 128');
  assert.equal(m.key, undefined);
  assert.equal(m.minimum_chrome_version, undefined);
  assert.deepEqual(m.content_security_policy, chromeManifest.content_security_policy);
  assert.match(m.content_security_policy.extension_pages, /'wasm-unsafe-eval'/);
  assert.deepEqual(m.content_scripts, chromeManifest.content_scripts);
  assert.equal(m.version, chromeManifest.version);
  assert.equal(chromeManifest.background.service_worker, 'background.js', 'the Chrome manifest is left as it was');
});

test('webpack: dist/firefox gets the Firefox background entry and no offscreen document', async () => {
  const { default: config, configs } = await import('../../../webpack.config.js');
  const [chrome, firefox] = configs({});
  assert.deepEqual(chrome, { ...config({}), plugins: chrome.plugins }); // the default is Chrome's
  assert.equal(chrome.output.path, path.join(root, 'dist/chrome'));
  assert.equal(firefox.output.path, path.join(root, 'dist/firefox'));
  assert.equal(firefox.entry.background, './extension/firefox/index.js');
  assert.equal(chrome.entry.background, './extension/background/index.js');
  assert.deepEqual(Object.keys(firefox.entry).sort(), ['approval', 'background', 'content', 'inpage', 'popup/popup']);
  const copies = (c) => c.plugins.find((p) => p.patterns).patterns.map((p) => p.from);
  assert.ok(!copies(firefox).includes('extension/offscreen/offscreen.html'));
  assert.ok(copies(firefox).includes('extension/popup/popup.html'), 'Firefox gets the popup too');
  const transform = firefox.plugins.find((p) => p.patterns).patterns.find((p) => p.from === 'manifest.json').transform;
  assert.deepEqual(JSON.parse(transform(Buffer.from(JSON.stringify(chromeManifest)))), firefoxManifest(chromeManifest));
});

/** The part of node-wasm's interface NodeHost uses here. */
class FakeWasmNode {
  constructor() {
    this.st = { state: 'idle', wallet: W, sessionExpires: Date.now() + 60_000, joined: true, nodeId: 'ab'.repeat(20) };
    this.listeners = [];
  }
  status() {
    return { ...this.st, links: [] };
  }
  onEvent(cb) {
    this.listeners.push(cb);
  }
  fire(ev) {
    for (const cb of this.listeners) cb(ev);
  }
  async start() {
    this.st.state = 'running';
  }
  async stop() {
    this.st.state = 'idle';
  }
  async send(origin, to) {
    if (to === B) throw nodeError('NO_ROUTE', 'no route');
    return { id: '1', result: 'delivered' };
  }
}

function firefoxBackground({ openNode }) {
  const area = new FakeStorageArea();
  let router = null;
  const host = new NodeHost({ openNode, emit: async (ev) => router.onNodeEvent(ev) });
  const settings = new SettingsStore(area, { network: 'test', bootstrap: ['http://10.0.0.1:7700'], iceServers: [] });
  const node = new InProcessNode(host, () => settings.get());
  const permissions = new PermissionStore(area);
  router = new Router({
    permissions,
    approvals: { request: () => Promise.resolve(true), get: () => ({ origin: 'x', wallet: null }), decide: () => true },
    node,
    settings,
    version: '0.1.0',
    extensionId: GECKO_ID,
    extensionOrigin: MOZ,
    offscreenUrl: null,
  });
  return { router, node, host, permissions };
}

test('in-process node: opens once with the stored settings, starts a delegated node, maps errors', async () => {
  const opened = [];
  const fake = new FakeWasmNode();
  const { node } = firefoxBackground({
    openNode: async (config) => {
      opened.push(config);
      return fake;
    },
  });
  await Promise.all([node.ensure(), node.ensure(), node.call('status')]);
  assert.deepEqual(opened, [{ network: 'test', bootstrap: ['http://10.0.0.1:7700'], iceServers: [] }]);
  assert.equal(fake.st.state, 'running', 'a stored, valid delegation starts the node at once');
  const st = await node.call('status');
  assert.equal(st.wallet, W);
  assert.equal(st.delegated, true);
  assert.deepEqual(await node.call('send', { origin: 'https://a.example', to: W, data: { text: 'hi' } }), {
    id: '1',
    result: 'delivered',
  });
  await assert.rejects(node.call('send', { origin: 'https://a.example', to: B, data: { text: 'x' } }), {
    code: 'NO_ROUTE',
    rpcCode: -32000,
    message: 'no route',
  });
  await assert.rejects(node.call('noSuchOp'), { code: 'INVALID_ARGUMENT' });
});

test('in-process node: a failed opening is retried by the next call', async () => {
  let attempts = 0;
  const { node } = firefoxBackground({
    openNode: async () => {
      attempts += 1;
      if (attempts === 1) throw Object.assign(new Error('no node-wasm'), { code: 'UNAVAILABLE' });
      return new FakeWasmNode();
    },
  });
  await assert.rejects(node.call('status'), { code: 'UNAVAILABLE' });
  assert.equal((await node.call('status')).available, true);
  assert.equal(attempts, 2);
});

test('in-process node: a message event reaches the pages of its origin; without one it waits in the inbox', async () => {
  const fake = new FakeWasmNode();
  const { router, node, permissions } = firefoxBackground({ openNode: async () => fake });
  await permissions.approve('https://a.example', { wallet: W });
  await node.ensure();
  const msg = (id) => ({
    type: 'message',
    appOrigin: 'https://a.example',
    from: B,
    data: new Uint8Array([1, 104, 105]),
    id,
    sentAt: 5,
  });
  fake.fire(msg('m1')); // no page open: kept
  await until(async () => (await node.call('peekInbox', { origin: 'https://a.example' })).length === 1);
  const port = new FakePort({ sender: pageSender('https://a.example/chat') });
  router.onConnect(port); // the page connects: the inbox is handed over and acknowledged
  await until(() => port.events('message').length === 1);
  fake.fire(msg('m2')); // a page is open: straight to it
  await until(() => port.events('message').length === 2);
  assert.deepEqual(
    port.events('message').map((e) => [e.data.id, e.data.from]),
    [
      ['m1', B],
      ['m2', B],
    ],
  );
  await until(async () => (await node.call('peekInbox', { origin: 'https://a.example' })).length === 0);
});

test('router on Firefox: extension pages are known by the gecko id; nothing may pose as the node', async () => {
  const { router } = firefoxBackground({ openNode: async () => new FakeWasmNode() });
  const approval = { id: GECKO_ID, url: `${MOZ}/approval.html?id=1` };
  const byHost = { id: new URL(MOZ).host, url: `${MOZ}/approval.html?id=1` };
  const page = { id: GECKO_ID, url: 'https://a.example/', tab: { id: 1 } };
  assert.deepEqual(await router.onRuntimeMessage({ target: 'background', type: 'popupListApproved' }, approval), {
    ok: true,
    result: [],
  });
  assert.equal((await router.onRuntimeMessage({ target: 'background', type: 'popupListApproved' }, byHost)).ok, false);
  assert.equal((await router.onRuntimeMessage({ target: 'background', type: 'popupListApproved' }, page)).ok, false);
  // There is no offscreen document on Firefox: node events and config requests come from no page at all.
  for (const type of ['nodeEvent', 'offscreenConfig']) {
    const r = await router.onRuntimeMessage({ target: 'background', type, event: { type: 'status' } }, approval);
    assert.equal(r.ok, false, type);
    assert.equal(r.error.code, 4100);
  }
});

test('keep-alive: pings only while the node is in use, and stops', () => {
  const timers = new FakeTimers();
  let inUse = false;
  let pings = 0;
  const k = new KeepAlive({ wanted: () => inUse, ping: async () => (pings += 1), intervalMs: 10_000, timers });
  timers.advance(60_000);
  assert.equal(pings, 0, 'an idle extension is left to unload');
  inUse = true;
  timers.advance(60_000);
  assert.equal(k.pings, 6);
  inUse = false;
  timers.advance(30_000);
  assert.equal(k.pings, 6);
  inUse = true;
  k.stop();
  timers.advance(60_000);
  assert.equal(k.pings, 6);
  assert.equal(timers.pending, 0);
});

test('keep-alive: a failing check or ping does not stop it', async () => {
  const timers = new FakeTimers();
  let n = 0;
  const k = new KeepAlive({
    wanted: () => {
      n += 1;
      if (n === 1) throw new Error('status unavailable');
      return true;
    },
    ping: async () => {
      throw new Error('context gone');
    },
    intervalMs: 10_000,
    timers,
  });
  timers.advance(30_000);
  await Promise.resolve();
  assert.equal(k.pings, 2);
  k.stop();
});
