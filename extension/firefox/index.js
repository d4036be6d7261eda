// Background entry for Firefox (an MV3 event page: `background.scripts` in the derived manifest). There is
// no offscreen API, so the node is hosted right here, by the same NodeHost the Chrome offscreen document
// runs, and kept alive while it is in use (keepalive.js). Everything else is the shared wiring of
// background/app.js.

import { startBackground } from '../background/app.js';
import { APPROVED_KEY } from '../background/permissions.js';
import { NodeHost } from '../offscreen/host.js';
import { openWasmNode } from '../offscreen/node.js';
import { InProcessNode } from './in-process.js';
import { KeepAlive } from './keepalive.js';

/* global __CHORDIAL_DEFAULTS__ */
let router = null;
const host = new NodeHost({
  openNode: (config) => openWasmNode(config),
  emit: async (event) => (router ? router.onNodeEvent(event) : { delivered: false }),
});
let settings = null;
const node = new InProcessNode(host, () => settings.get());

let startNodeIfUsed;
({ router, settings, startNodeIfUsed } = startBackground({
  api: chrome,
  node,
  nodeUrl: null,
  defaults: __CHORDIAL_DEFAULTS__,
}));

// Is the node in use? It has open links, or some dApp is approved (kept in memory from storage, so that the
// check itself calls no API — an API call would keep the page awake by itself).
let approvedCount = 0;
chrome.storage.local
  .get(APPROVED_KEY)
  .then((got) => (approvedCount = Object.keys(got?.[APPROVED_KEY] ?? {}).length))
  .catch(() => {});
chrome.storage.onChanged.addListener((changes, area) => {
  if (area === 'local' && changes[APPROVED_KEY])
    approvedCount = Object.keys(changes[APPROVED_KEY].newValue ?? {}).length;
});
function nodeInUse() {
  return approvedCount > 0 || Boolean(host.node?.status().links?.some((l) => l.open));
}

const keepAlive = new KeepAlive({ wanted: nodeInUse, ping: () => chrome.runtime.getPlatformInfo() });

// Suspended anyway (nothing in use, or the browser decided): leave the ring gracefully if there is time.
chrome.runtime.onSuspend.addListener(() => {
  keepAlive.stop();
  if (host.node?.status().state === 'running') host.node.stop().catch(() => {});
});

// Unlike Chrome's offscreen document, this page does not outlive a suspension: whenever it (re)loads while a
// dApp is approved, bring the node back up at once (it resumes its stored session without a signature).
startNodeIfUsed().catch((e) => console.warn('chordial: node start', e));
