// The offscreen document that hosts the node: created on demand with reason WEB_RTC, exactly once even when
// many requests race for it, and created again if Chrome closed it. `call` is how the background talks to the
// node: one runtime message per operation, answered {ok: true, result} or {ok: false, error: {code, message}}.

import { Target } from '../shared/protocol.js';

export const OFFSCREEN_PATH = 'offscreen.html';
const NO_RECEIVER = /Receiving end does not exist|Could not establish connection/i;
const ALREADY_EXISTS = /single offscreen document|already exists/i;

export class OffscreenManager {
  /** @param chromeApi  the `chrome` namespace (or a fake with runtime and offscreen) */
  constructor(chromeApi, { path = OFFSCREEN_PATH } = {}) {
    this.chrome = chromeApi;
    this.path = path;
    this.url = chromeApi.runtime.getURL(path);
    this.creating = null;
    this.created = 0; // how many times this manager created the document (for tests and diagnostics)
  }

  async exists() {
    const { runtime, offscreen } = this.chrome;
    if (typeof runtime.getContexts === 'function') {
      const contexts = await runtime.getContexts({
        contextTypes: ['OFFSCREEN_DOCUMENT'],
        documentUrls: [this.url],
      });
      return contexts.length > 0;
    }
    return typeof offscreen.hasDocument === 'function' ? offscreen.hasDocument() : false;
  }

  /** Makes sure the document exists. Concurrent callers share one check-and-create. */
  ensure() {
    if (!this.creating) {
      this.creating = (async () => {
        if (await this.exists()) return;
        try {
          await this.chrome.offscreen.createDocument({
            url: this.path,
            reasons: ['WEB_RTC'],
            justification: 'Hosts the Chordial peer-to-peer node (WebRTC data channels).',
          });
          this.created += 1;
        } catch (e) {
          // Another context of this extension (an earlier service worker life) won the race: fine.
          if (!ALREADY_EXISTS.test(String(e?.message ?? e))) throw e;
        }
      })().finally(() => {
        this.creating = null;
      });
    }
    return this.creating;
  }

  /**
   * Runs one node operation in the offscreen document. Rejects with {code, message, rpcCode?} (node errors
   * with their provider code, plus UNAVAILABLE when the document cannot be reached).
   */
  async call(op, args = {}) {
    for (let attempt = 0; ; attempt++) {
      await this.ensure();
      let reply;
      try {
        reply = await this.chrome.runtime.sendMessage({ target: Target.OFFSCREEN, op, args });
      } catch (e) {
        // The document went away between ensure() and the send: create it again, once.
        if (attempt === 0 && NO_RECEIVER.test(String(e?.message ?? e))) continue;
        throw { code: 'UNAVAILABLE', message: `offscreen document unreachable: ${e?.message ?? e}` };
      }
      if (reply === undefined && attempt === 0) continue;
      if (!reply || typeof reply !== 'object') {
        throw { code: 'UNAVAILABLE', message: 'the offscreen document did not answer' };
      }
      if (reply.ok) return reply.result;
      throw reply.error ?? { code: 'INTERNAL', message: 'offscreen error without details' };
    }
  }
}
