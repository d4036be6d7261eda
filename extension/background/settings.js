// Node settings (bootstrap servers, ICE servers incl. TURN credentials) in chrome.storage.local, with the
// defaults baked into the build (CHORDIAL_BOOTSTRAP / CHORDIAL_ICE / CHORDIAL_NETWORK, see webpack.config.js).

import { invalidParams } from '../shared/errors.js';

export const SETTINGS_KEY = 'chordial.settings';

export class SettingsStore {
  constructor(area, defaults) {
    this.area = area;
    this.defaults = normalizeSettings(defaults);
  }

  async get() {
    const got = await this.area.get(SETTINGS_KEY);
    const stored = got?.[SETTINGS_KEY];
    return stored ? { ...this.defaults, ...normalizeSettings({ ...this.defaults, ...stored }) } : this.defaults;
  }

  /** Validates and stores; returns what was stored. */
  async set(settings) {
    const next = normalizeSettings({ ...(await this.get()), ...settings });
    await this.area.set({ [SETTINGS_KEY]: { bootstrap: next.bootstrap, iceServers: next.iceServers } });
    return next;
  }
}

/** Checks the shape of settings; throws -32602 naming the bad field. */
export function normalizeSettings(s) {
  const network = s?.network ?? 'chordial-dev';
  if (typeof network !== 'string' || !/^[A-Za-z0-9._~-]{1,64}$/.test(network)) {
    throw invalidParams('settings: network must be 1-64 URI characters');
  }
  const bootstrap = s?.bootstrap ?? [];
  if (!Array.isArray(bootstrap) || !bootstrap.every(isHttpUrl)) {
    throw invalidParams('settings: bootstrap must be a list of http(s) URLs');
  }
  const iceServers = s?.iceServers ?? [];
  if (!Array.isArray(iceServers) || !iceServers.every(isIceServer)) {
    throw invalidParams('settings: iceServers must be a list of {urls, username?, credential?}');
  }
  return { network, bootstrap: [...bootstrap], iceServers: iceServers.map((x) => ({ ...x })) };
}

function isHttpUrl(u) {
  if (typeof u !== 'string') return false;
  try {
    const p = new URL(u);
    return p.protocol === 'http:' || p.protocol === 'https:';
  } catch {
    return false;
  }
}

function isIceServer(s) {
  if (!s || typeof s !== 'object') return false;
  const urls = Array.isArray(s.urls) ? s.urls : [s.urls];
  if (urls.length === 0 || !urls.every((u) => typeof u === 'string' && /^(stun|stuns|turn|turns):/.test(u))) {
    return false;
  }
  if (s.username !== undefined && typeof s.username !== 'string') return false;
  if (s.credential !== undefined && typeof s.credential !== 'string') return false;
  return true;
}

/**
 * Parses the build-time environment into defaults:
 *   CHORDIAL_BOOTSTRAP=url[,url…]
 *   CHORDIAL_ICE=stun:host:port[,turn:user:pass@host:port…]   or a JSON list of RTCIceServer
 */
export function defaultsFromEnv(env) {
  const bootstrap = (env.CHORDIAL_BOOTSTRAP ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const iceRaw = (env.CHORDIAL_ICE ?? '').trim();
  let iceServers = [];
  if (iceRaw.startsWith('[')) {
    iceServers = JSON.parse(iceRaw);
  } else if (iceRaw) {
    iceServers = iceRaw
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)
      .map((entry) => {
        // turn:user:pass@host:port → {urls: 'turn:host:port', username, credential}
        const m = /^(turns?):([^:@]+):([^@]+)@(.+)$/.exec(entry);
        return m ? { urls: `${m[1]}:${m[4]}`, username: m[2], credential: m[3] } : { urls: entry };
      });
  }
  return normalizeSettings({ network: env.CHORDIAL_NETWORK || 'chordial-dev', bootstrap, iceServers });
}
