// Offscreen document entry (Chrome): hosts the node. Answers {target: 'offscreen'} messages from the service
// worker and reports node events back to it. It has only chrome.runtime: its settings come from the service
// worker (offscreenConfig), its identity from node-wasm's own IndexedDB storage.

import { NodeHost } from './host.js';
import { openWasmNode } from './node.js';
import { Target, BackgroundMsg } from '../shared/protocol.js';
import { plainNodeError } from '../shared/errors.js';

async function toBackground(msg) {
  const reply = await chrome.runtime.sendMessage({ target: Target.BACKGROUND, ...msg });
  if (!reply?.ok) throw reply?.error ?? { code: 'UNAVAILABLE', message: 'the service worker did not answer' };
  return reply.result;
}

const host = new NodeHost({
  openNode: (config) => openWasmNode(config),
  emit: (event) => toBackground({ type: BackgroundMsg.NODE_EVENT, event }),
});

let booting = null;
function boot() {
  if (!booting) {
    booting = (async () => host.init(await toBackground({ type: BackgroundMsg.OFFSCREEN_CONFIG })))();
    booting.catch((e) => {
      console.error('chordial: the node did not open', e);
      booting = null; // the next request tries again
    });
  }
  return booting;
}

chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  if (!msg || msg.target !== Target.OFFSCREEN || sender.id !== chrome.runtime.id) return false;
  (async () => {
    await boot();
    return host.handle(msg.op, msg.args ?? {});
  })().then(
    (result) => sendResponse({ ok: true, result: result ?? null }),
    (e) =>
      sendResponse({
        ok: false,
        error: plainNodeError(e),
      }),
  );
  return true;
});

boot();

// Closing the browser, disabling or updating the extension: say goodbye to the ring while we can.
addEventListener('pagehide', () => host.leave());
