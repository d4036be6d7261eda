// Service worker entry: wires the router to Chrome. Every listener is registered synchronously at the top
// level, so that an event which wakes the worker (a page Port, a node event, an approval click) finds it.

import { Router } from './router.js';
import { PermissionStore } from './permissions.js';
import { OffscreenManager, OFFSCREEN_PATH } from './offscreen.js';
import { ApprovalManager, APPROVAL_PATH } from './approvals.js';
import { SettingsStore } from './settings.js';

/* global __CHORDIAL_DEFAULTS__ */
const defaults = __CHORDIAL_DEFAULTS__;

const offscreen = new OffscreenManager(chrome, { path: OFFSCREEN_PATH });
const permissions = new PermissionStore(chrome.storage.local);
const settings = new SettingsStore(chrome.storage.local, defaults);
const approvals = new ApprovalManager({
  urlFor: (id) => chrome.runtime.getURL(`${APPROVAL_PATH}?id=${encodeURIComponent(id)}`),
  openWindow: async (url) => {
    const w = await chrome.windows.create({ url, type: 'popup', width: 380, height: 460, focused: true });
    return w?.id ?? null;
  },
  closeWindow: (windowId) => chrome.windows.remove(windowId),
});

const router = new Router({
  permissions,
  approvals,
  node: offscreen,
  settings,
  version: chrome.runtime.getManifest().version,
  extensionOrigin: chrome.runtime.getURL('').replace(/\/$/, ''),
  offscreenUrl: chrome.runtime.getURL(OFFSCREEN_PATH),
});

chrome.runtime.onConnect.addListener((port) => router.onConnect(port));

chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  if (!msg || msg.target !== 'background') return false;
  router
    .onRuntimeMessage(msg, sender)
    .then(sendResponse, (e) => sendResponse({ ok: false, error: { code: -32603, message: String(e?.message ?? e) } }));
  return true; // the reply is asynchronous
});

chrome.windows.onRemoved.addListener((windowId) => approvals.windowClosed(windowId));

// Bring the node up with the browser when the user has a session in use, so that messages waiting in the
// mailbox arrive without waiting for a dApp page.
async function startNodeIfUsed() {
  if ((await permissions.list()).length > 0) await offscreen.ensure();
}
chrome.runtime.onStartup.addListener(() => startNodeIfUsed().catch((e) => console.warn('chordial: startup', e)));
chrome.runtime.onInstalled.addListener(() => startNodeIfUsed().catch((e) => console.warn('chordial: install', e)));
