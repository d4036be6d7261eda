// Permission store, origin of a sender, offscreen creation, approvals, settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PermissionStore, originOfSender, APPROVED_KEY } from '../../../extension/background/permissions.js';
import { OffscreenManager } from '../../../extension/background/offscreen.js';
import { ApprovalManager } from '../../../extension/background/approvals.js';
import { SettingsStore, defaultsFromEnv } from '../../../extension/background/settings.js';
import { FakeStorageArea, FakeTimers, pageSender, until } from './fakes.mjs';

test('permission store: approve, list, revoke, persisted in chrome.storage.local', async () => {
  const area = new FakeStorageArea();
  let t = 1000;
  const store = new PermissionStore(area, () => t++);
  assert.equal(await store.isApproved('https://a.example'), false);
  await store.approve('https://a.example', { wallet: '0xA' });
  await store.approve('https://b.example');
  assert.equal(await store.isApproved('https://a.example'), true);
  assert.deepEqual(
    (await store.list()).map((x) => x.origin),
    ['https://a.example', 'https://b.example'],
  );
  // A second store over the same storage (a restarted service worker) sees the same.
  assert.equal(await new PermissionStore(area).isApproved('https://b.example'), true);
  assert.equal(await store.revoke('https://a.example'), true);
  assert.equal(await store.revoke('https://a.example'), false);
  assert.deepEqual(Object.keys(area.data[APPROVED_KEY]), ['https://b.example']);
});

test('permission store: concurrent approvals are all kept', async () => {
  const store = new PermissionStore(new FakeStorageArea());
  const origins = Array.from({ length: 20 }, (_, i) => `https://o${i}.example`);
  await Promise.all(origins.map((o) => store.approve(o)));
  assert.equal((await store.list()).length, 20);
});

test('origin comes from the sender: top frames of http(s) tabs only', () => {
  assert.equal(originOfSender(pageSender('https://a.example/x?y')), 'https://a.example');
  assert.equal(originOfSender(pageSender('http://127.0.0.1:8080/')), 'http://127.0.0.1:8080');
  assert.equal(originOfSender({ ...pageSender('https://a.example/'), origin: undefined }), 'https://a.example');
  assert.equal(originOfSender(pageSender('https://a.example/', { frameId: 3 })), null);
  assert.equal(originOfSender(pageSender('https://a.example/', { tab: null })), null);
  assert.equal(originOfSender({ ...pageSender('https://a.example/'), origin: 'null' }), null);
  assert.equal(originOfSender({ id: 'ext', url: 'chrome-extension://abc/popup.html', tab: { id: 1 } }), null);
  assert.equal(originOfSender(undefined), null);
});

function fakeChromeForOffscreen() {
  const state = { docs: 0, creates: 0, listening: true, failNextSend: null };
  const chrome = {
    runtime: {
      getURL: (p) => `chrome-extension://ext/${p}`,
      async getContexts({ contextTypes, documentUrls }) {
        assert.deepEqual(contextTypes, ['OFFSCREEN_DOCUMENT']);
        assert.deepEqual(documentUrls, ['chrome-extension://ext/offscreen.html']);
        await new Promise((r) => setImmediate(r));
        return Array.from({ length: state.docs }, () => ({ contextType: 'OFFSCREEN_DOCUMENT' }));
      },
      async sendMessage(msg) {
        if (state.failNextSend) {
          const e = state.failNextSend;
          state.failNextSend = null;
          throw e;
        }
        if (state.docs === 0) throw new Error('Could not establish connection. Receiving end does not exist.');
        return { ok: true, result: { echo: msg } };
      },
    },
    offscreen: {
      async createDocument(opts) {
        state.creates += 1;
        assert.deepEqual(opts.reasons, ['WEB_RTC']);
        await new Promise((r) => setImmediate(r));
        if (state.docs > 0) throw new Error('Only a single offscreen document may be created.');
        state.docs += 1;
      },
    },
  };
  return { chrome, state };
}

test('offscreen document: one creation under concurrent requests', async () => {
  const { chrome, state } = fakeChromeForOffscreen();
  const m = new OffscreenManager(chrome);
  await Promise.all(Array.from({ length: 10 }, () => m.ensure()));
  assert.equal(state.creates, 1);
  assert.equal(state.docs, 1);
  await m.ensure();
  assert.equal(state.creates, 1, 'an existing document is not created again');
});

test('offscreen document: recreated when gone, and a call that finds it gone retries once', async () => {
  const { chrome, state } = fakeChromeForOffscreen();
  const m = new OffscreenManager(chrome);
  assert.deepEqual(await m.call('status', {}), { echo: { target: 'offscreen', op: 'status', args: {} } });
  state.docs = 0; // Chrome closed it
  await m.call('status', {});
  assert.equal(state.creates, 2);
  // Gone between ensure() and sendMessage: the call creates it again and succeeds.
  state.failNextSend = new Error('Could not establish connection. Receiving end does not exist.');
  await m.call('status', {});
  // Another context already created it: "single offscreen document" is not an error.
  const m2 = new OffscreenManager({ ...chrome, runtime: { ...chrome.runtime, getContexts: async () => [] } });
  await m2.ensure();
});

test('offscreen call: errors come back as {code, message}', async () => {
  const { chrome } = fakeChromeForOffscreen();
  chrome.runtime.sendMessage = async () => ({ ok: false, error: { code: 'TIMEOUT', message: 'slow' } });
  const m = new OffscreenManager(chrome);
  await assert.rejects(m.call('send', {}), { code: 'TIMEOUT' });
  chrome.runtime.sendMessage = async () => {
    throw new Error('boom');
  };
  await assert.rejects(m.call('send', {}), { code: 'UNAVAILABLE' });
});

function approvalHarness(timeoutMs = 1000) {
  const timers = new FakeTimers();
  const opened = [];
  const closed = [];
  const mgr = new ApprovalManager({
    urlFor: (id) => `chrome-extension://ext/approval.html?id=${id}`,
    openWindow: async (url) => {
      opened.push(url);
      return 100 + opened.length;
    },
    closeWindow: async (id) => {
      closed.push(id);
    },
    timeoutMs,
    timers,
  });
  const idOf = (i) => new URL(opened[i]).searchParams.get('id');
  return { mgr, timers, opened, closed, idOf };
}

test('approvals: one window per origin, approve resolves every waiter and closes the window', async () => {
  const h = approvalHarness();
  const a1 = h.mgr.request('https://a.example', { wallet: '0xW' });
  const a2 = h.mgr.request('https://a.example');
  await until(() => h.opened.length === 1);
  assert.deepEqual(h.mgr.get(h.idOf(0)), { origin: 'https://a.example', wallet: '0xW' });
  assert.equal(h.mgr.decide(h.idOf(0), true), true);
  assert.equal(await a1, true);
  assert.equal(await a2, true);
  assert.deepEqual(h.closed, [101]);
  assert.equal(h.mgr.decide(h.idOf(0), true), false, 'a decided request is gone');
  assert.equal(h.timers.pending, 0);
});

test('approvals: reject, closed window and time-out all reject with 4001', async () => {
  const h = approvalHarness(1000);
  const r = h.mgr.request('https://a.example');
  await until(() => h.opened.length === 1);
  h.mgr.decide(h.idOf(0), false);
  await assert.rejects(r, { code: 4001 });

  const c = h.mgr.request('https://b.example');
  await until(() => h.opened.length === 2);
  h.mgr.windowClosed(102);
  await assert.rejects(c, { code: 4001 });

  const t = h.mgr.request('https://c.example');
  await until(() => h.opened.length === 3);
  h.timers.advance(999);
  assert.equal(h.mgr.pendingCount, 1);
  h.timers.advance(1);
  await assert.rejects(t, { code: 4001, message: /timed out/ });
  assert.ok(h.closed.includes(103), 'the timed-out window is closed');
  assert.equal(h.mgr.pendingCount, 0);
});

test('settings: build defaults, validation, storage', async () => {
  const d = defaultsFromEnv({
    CHORDIAL_BOOTSTRAP: 'http://127.0.0.1:8080, https://boot.example',
    CHORDIAL_ICE: 'stun:127.0.0.1:3478,turn:alice:s3cret@127.0.0.1:3479',
  });
  assert.deepEqual(d.bootstrap, ['http://127.0.0.1:8080', 'https://boot.example']);
  assert.deepEqual(d.iceServers, [
    { urls: 'stun:127.0.0.1:3478' },
    { urls: 'turn:127.0.0.1:3479', username: 'alice', credential: 's3cret' },
  ]);
  assert.deepEqual(
    defaultsFromEnv({}),
    { network: 'chordial-dev', bootstrap: [], iceServers: [] },
    'no STUN by default',
  );
  const store = new SettingsStore(new FakeStorageArea(), d);
  assert.deepEqual((await store.get()).bootstrap, d.bootstrap);
  await store.set({ iceServers: [] });
  assert.deepEqual((await store.get()).iceServers, []);
  assert.deepEqual((await store.get()).bootstrap, d.bootstrap);
  await assert.rejects(store.set({ bootstrap: ['ftp://x'] }), { code: -32602 });
  await assert.rejects(store.set({ iceServers: [{ urls: 'http://x' }] }), { code: -32602 });
});
