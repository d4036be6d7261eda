// Keeps Firefox's event page — and so the node in it — alive while the node is in use.
//
// Firefox MV3 has no persistent background: an event page idle for `extensions.background.idle.timeout`
// (30 s) is suspended, which would close every peer connection of the node. `"persistent": true` is ignored
// in MV3 (checked with firefox-esr 153). What resets the idle timer is an extension API call from the
// background that goes to the parent process; runtime.getPlatformInfo is the cheapest such call. So, every
// `intervalMs`, while `wanted()` says the node is in use (it has links, or some dApp is approved), the page
// makes that call; when nothing needs the node the page is left to idle out like any event page, and the
// next page Port or browser start wakes it (and the node) again. See docs/extension.md.

export const KEEPALIVE_MS = 10_000; // well under the 30 s idle timeout

export class KeepAlive {
  /**
   * @param wanted  () => boolean — whether the node is in use now (synchronous, makes no API call itself)
   * @param ping    async () => void — an API call that resets the idle timer
   */
  constructor({ wanted, ping, intervalMs = KEEPALIVE_MS, timers = globalThis }) {
    this.wanted = wanted;
    this.ping = ping;
    this.timers = timers;
    this.pings = 0;
    this.timer = timers.setInterval(() => this.tick(), intervalMs);
  }

  tick() {
    let want = false;
    try {
      want = this.wanted();
    } catch {
      want = false;
    }
    if (!want) return false;
    this.pings += 1;
    Promise.resolve()
      .then(() => this.ping())
      .catch(() => {});
    return true;
  }

  stop() {
    this.timers.clearInterval(this.timer);
  }
}
