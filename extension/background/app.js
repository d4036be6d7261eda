// The background's wiring, shared by both browsers: the stores, the approval windows, the router, and every
// runtime listener. What differs is where the node lives, passed in as `node`:
//
//   Chrome  (background/index.js): a service worker; `node` is the OffscreenManager (the node runs in the
//           offscreen document and reaches the router through runtime messages from `nodeUrl`).
//   Firefox (firefox/index.js):    an event page; `node` runs in this very page (firefox/in-process.js) and
//           hands its events to the router directly, so `nodeUrl` is null.
//
// Every listener is registered synchronously, at the top level of the entry's first run, so that an event
// which wakes the background (a page Port, an approval click) finds it.

import { Router } from './router.js';
import { PermissionStore } from './permissions.js';
import { ApprovalManager, APPROVAL_PATH } from './approvals.js';
import { SettingsStore } from './settings.js';

/**
 * @param api       the `chrome` namespace (promise-returning; Firefox's MV3 `chrome` is)
 * @param node      {call(op, args), ensure()} — where node operations go
 * @param nodeUrl   URL of the extension page allowed to report node events and ask for its config, or null
 * @param defaults  build-time settings (__CHORDIAL_DEFAULTS__)
 */
export function startBackground({ api, node, nodeUrl = null, defaults }) {
  const permissions = new PermissionStore(api.storage.local);
  const settings = new SettingsStore(api.storage.local, defaults);
  const approvals = new ApprovalManager({
    urlFor: (id) => api.runtime.getURL(`${APPROVAL_PATH}?id=${encodeURIComponent(id)}`),
    openWindow: async (url) => {
      const w = await api.windows.create({ url, type: 'popup', width: 380, height: 460, focused: true });
      return w?.id ?? null;
    },
    closeWindow: (windowId) => api.windows.remove(windowId),
  });

  const router = new Router({
    permissions,
    approvals,
    node,
    settings,
    version: api.runtime.getManifest().version,
    extensionId: api.runtime.id,
    extensionOrigin: api.runtime.getURL('').replace(/\/$/, ''),
    offscreenUrl: nodeUrl,
  });

  api.runtime.onConnect.addListener((port) => router.onConnect(port));

  api.runtime.onMessage.addListener((msg, sender, sendResponse) => {
    if (!msg || msg.target !== 'background') return false;
    router
      .onRuntimeMessage(msg, sender)
      .then(sendResponse, (e) =>
        sendResponse({ ok: false, error: { code: -32603, message: String(e?.message ?? e) } }),
      );
    return true; // the reply is asynchronous
  });

  api.windows.onRemoved.addListener((windowId) => approvals.windowClosed(windowId));

  // Bring the node up with the browser when the user has a session in use, so that messages waiting in the
  // mailbox arrive without waiting for a dApp page.
  async function startNodeIfUsed() {
    if ((await permissions.list()).length > 0) await node.ensure();
  }
  api.runtime.onStartup.addListener(() => startNodeIfUsed().catch((e) => console.warn('chordial: startup', e)));
  api.runtime.onInstalled.addListener(() => startNodeIfUsed().catch((e) => console.warn('chordial: install', e)));

  return { router, permissions, settings, approvals, startNodeIfUsed };
}
