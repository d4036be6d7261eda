// The node in the background page itself (Firefox has no offscreen documents). It offers the router the same
// {call(op, args), ensure()} as the OffscreenManager does on Chrome, over the same NodeHost the offscreen
// document runs — one implementation of what the node host does, two ways of reaching it.
//
//   router ──call(op, args)──▶ InProcessNode ──▶ NodeHost.handle (offscreen/host.js) ──▶ node-wasm
//   node-wasm events ──▶ NodeHost ──emit(event)──▶ router.onNodeEvent (wired by firefox/index.js)

import { plainNodeError } from '../shared/errors.js';

export class InProcessNode {
  /**
   * @param host    NodeHost
   * @param config  async () => {network, bootstrap, iceServers} — the settings the node opens with
   */
  constructor(host, config) {
    this.host = host;
    this.config = config;
    this.booting = null;
  }

  /** Opens the node once (starting it when a stored delegation is valid); a failed opening is retried. */
  ensure() {
    if (!this.booting) {
      this.booting = (async () => {
        await this.host.init(await this.config());
      })();
      this.booting.catch((e) => {
        console.error('chordial: the node did not open', e);
        this.booting = null;
      });
    }
    return this.booting;
  }

  /** One node operation; rejects with {code, message, rpcCode?} like the offscreen document's replies do. */
  async call(op, args = {}) {
    try {
      await this.ensure();
      const result = await this.host.handle(op, args);
      return result ?? null;
    } catch (e) {
      throw plainNodeError(e);
    }
  }
}
