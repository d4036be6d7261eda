// The store of approved dApp origins, in chrome.storage.local under one key:
//   {"chordial.approvedOrigins": {"https://app.example": {approvedAt: 1732500000000, wallet: "0x…"}}}
// Writes are serialised so that concurrent approvals and revocations never lose one another.

export const APPROVED_KEY = 'chordial.approvedOrigins';

export class PermissionStore {
  /** @param {chrome.storage.StorageArea} area  chrome.storage.local (or a fake with get/set) */
  constructor(area, now = () => Date.now()) {
    this.area = area;
    this.now = now;
    this.writes = Promise.resolve();
  }

  async all() {
    const got = await this.area.get(APPROVED_KEY);
    const map = got?.[APPROVED_KEY];
    return map && typeof map === 'object' ? map : {};
  }

  async isApproved(origin) {
    return Object.hasOwn(await this.all(), origin);
  }

  async list() {
    const map = await this.all();
    return Object.entries(map)
      .map(([origin, v]) => ({ origin, approvedAt: v.approvedAt, wallet: v.wallet ?? null }))
      .sort((a, b) => a.approvedAt - b.approvedAt || a.origin.localeCompare(b.origin));
  }

  approve(origin, { wallet = null } = {}) {
    return this.update((map) => {
      map[origin] = { approvedAt: map[origin]?.approvedAt ?? this.now(), wallet };
      return true;
    });
  }

  /** Resolves true when the origin was approved and no longer is. */
  revoke(origin) {
    return this.update((map) => {
      if (!Object.hasOwn(map, origin)) return false;
      delete map[origin];
      return true;
    });
  }

  update(change) {
    const run = this.writes.then(async () => {
      const map = { ...(await this.all()) };
      const out = change(map);
      await this.area.set({ [APPROVED_KEY]: map });
      return out;
    });
    // A failed write must not wedge every later one.
    this.writes = run.catch(() => {});
    return run;
  }
}

/**
 * The origin of a page Port, from what the browser says about its sender — never from a payload. Only top
 * frames of http(s) pages in a tab qualify; anything else gives null (the port is refused).
 */
export function originOfSender(sender) {
  if (!sender || !sender.tab || (sender.frameId !== undefined && sender.frameId !== 0)) return null;
  let origin = typeof sender.origin === 'string' ? sender.origin : null;
  if (!origin && typeof sender.url === 'string') {
    try {
      origin = new URL(sender.url).origin;
    } catch {
      return null;
    }
  }
  if (!origin || !/^https?:\/\/[^/]+$/.test(origin)) return null;
  return origin;
}
