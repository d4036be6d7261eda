// What the popup shows, computed from the node's status (node-wasm `status()`, docs/api.md) without touching
// the DOM: the overall state and its reason, the ring picture's geometry, the link rows, the bootstrap
// servers' states, and the settings form's parsing. index.js renders it; tests/js/popup/ checks it.

export const ID_HEX_LEN = 40; // 160-bit node ids
const TOP_HEX = 13; // 52 bits: as many as a double holds exactly, far more than a picture needs

/** Where an id sits on the ring, as a fraction of the whole circle in [0, 1): id / 2^160. */
export function idFraction(idHex) {
  if (typeof idHex !== 'string' || !/^[0-9a-fA-F]{1,40}$/.test(idHex)) return 0;
  const top = idHex.padEnd(ID_HEX_LEN, '0').slice(0, TOP_HEX);
  return parseInt(top, 16) / 16 ** TOP_HEX;
}

/** The clockwise distance from id `a` to id `b`, as a fraction of the circle in [0, 1). */
export function arcFraction(a, b) {
  const d = idFraction(b) - idFraction(a);
  return d < 0 ? d + 1 : d;
}

/** A point on a circle of radius `r` around (cx, cy) at `fraction` of a turn, 0 at the top, clockwise. */
export function pointAt(fraction, r, cx = 0, cy = 0) {
  const a = fraction * 2 * Math.PI;
  return { x: cx + r * Math.sin(a), y: cy - r * Math.cos(a) };
}

/** `1a2b3c4d…` */
export function shortId(idHex, n = 8) {
  return typeof idHex === 'string' && idHex.length > n ? `${idHex.slice(0, n)}…` : String(idHex ?? '');
}

/** `0x1234…abcd` (the full address stays in titles and the copy button). */
export function shortAddress(a) {
  return typeof a === 'string' && a.length > 12 ? `${a.slice(0, 6)}…${a.slice(-4)}` : String(a ?? '');
}

const ROLE_ORDER = ['successor', 'predecessor', 'finger', 'direct', 'bootstrap', 'pairing'];
const ROLE_TEXT = {
  successor: 'successor',
  predecessor: 'predecessor',
  finger: 'finger',
  direct: 'direct',
  bootstrap: 'joining', // the first link, through which the node is still joining
  pairing: 'pairing',
};

/**
 * The labels of a link: the core's roles in a fixed order, the first successor numbered ("successor 2" is
 * the second in the list), "idle" for an open link the node keeps for nothing yet, "connecting" before it
 * opens.
 */
export function roleLabels(link, successors = []) {
  if (!link.open) return ['connecting'];
  const roles = [...new Set(link.roles ?? [])].sort((a, b) => rank(a) - rank(b));
  if (roles.length === 0) return ['idle'];
  return roles.map((r) => {
    if (r === 'successor') {
      const i = successors.indexOf(link.peer);
      return i > 0 ? `successor ${i + 1}` : 'successor';
    }
    return ROLE_TEXT[r] ?? r;
  });
}

const rank = (r) => {
  const i = ROLE_ORDER.indexOf(r);
  return i < 0 ? ROLE_ORDER.length : i;
};

/** `512 B`, `1.5 KB`, `12 MB` (powers of 1024). */
export function formatBytes(n) {
  if (!Number.isFinite(n) || n < 0) return '–';
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** `3 ms`, `<1 ms`, `1.2 s`, `–` when not measured yet. */
export function formatRtt(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1) return '<1 ms';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A rough duration: `4:59` under an hour is not needed here; `29 days`, `5 hours`, `3 minutes`, `40 s`. */
export function formatDuration(ms) {
  if (!Number.isFinite(ms)) return '–';
  const s = Math.max(0, Math.round(ms / 1000));
  const plural = (n, w) => `${n} ${w}${n === 1 ? '' : 's'}`;
  if (s >= 2 * 86400) return plural(Math.floor(s / 86400), 'day');
  if (s >= 2 * 3600) return plural(Math.floor(s / 3600), 'hour');
  if (s >= 120) return plural(Math.floor(s / 60), 'minute');
  return `${s} s`;
}

/** `4:05` — a countdown for codes that expire within minutes. */
export function formatCountdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Node ids of the bootstrap servers, for marking them in the picture and the list. */
function serverIds(status) {
  return new Map((status?.bootstrap?.servers ?? []).filter((s) => s.nodeId).map((s) => [s.nodeId, s.url]));
}

/**
 * The overall state: {state: 'online' | 'connecting' | 'offline', title, reason}. `error` is what asking for
 * the status failed with (the node could not be reached at all), `now` is Unix ms.
 */
export function overallState(status, error, now = Date.now()) {
  if (error || !status) {
    const why = error?.data?.reason === 'UNAVAILABLE' || /no node-wasm/.test(error?.message ?? '');
    return {
      state: 'offline',
      title: 'Offline',
      reason: why
        ? 'This build of the extension has no node (it was built without node-wasm).'
        : `The node cannot be reached: ${error?.message ?? 'no answer'}.`,
    };
  }
  if (!status.wallet || !status.sessionExpires) {
    return {
      state: 'offline',
      title: 'Not signed in',
      reason: 'No wallet session yet.',
    };
  }
  if (status.sessionExpires <= now) {
    return {
      state: 'offline',
      title: 'Session expired',
      reason: 'The wallet session expired: connect from a dApp again to sign a new one.',
    };
  }
  if (status.state === 'stopping')
    return { state: 'connecting', title: 'Restarting', reason: 'The node is restarting.' };
  if (status.state !== 'running') return { state: 'offline', title: 'Stopped', reason: 'The node is not running.' };
  const open = (status.links ?? []).filter((l) => l.open);
  if (status.joined) {
    const n = open.length;
    return {
      state: 'online',
      title: 'Online',
      reason: `In the ring with ${n} link${n === 1 ? '' : 's'}.`,
    };
  }
  const boot = status.bootstrap ?? { state: 'idle', servers: [] };
  // Links still being set up do not count: a pairing offer waits minutes for its answer.
  if (boot.state === 'connecting' || open.length > 0) {
    const what =
      boot.state === 'connecting' ? `Contacting ${boot.servers.map((s) => s.url).join(', ')}.` : 'Joining the ring.';
    return { state: 'connecting', title: 'Connecting', reason: what };
  }
  if (boot.state === 'failed') {
    return {
      state: 'offline',
      title: 'Offline',
      reason: `No bootstrap server could be reached (${boot.lastError ?? 'unknown error'}). The node keeps trying; you can also pair with another browser.`,
    };
  }
  return {
    state: 'offline',
    title: 'Alone',
    reason:
      'No bootstrap server is set and no other node is linked: add a server in Settings, or pair with another browser.',
  };
}

/**
 * The ring picture's contents: this node, every node it knows (successors, predecessor, fingers, link peers)
 * placed by id, with roles, whether it is linked, and whether it is a bootstrap server; plus the arc this
 * node owns (from its predecessor to itself).
 */
export function ringLayout(status) {
  const me = status?.nodeId ?? null;
  const servers = serverIds(status);
  const nodes = new Map(); // id → {id, roles: Set, linked, server, rttMs}
  const touch = (id) => {
    if (!id || id === me) return null;
    if (!nodes.has(id))
      nodes.set(id, { id, roles: new Set(), linked: false, server: servers.get(id) ?? null, rttMs: null });
    return nodes.get(id);
  };
  for (const id of status?.successors ?? []) touch(id)?.roles.add('successor');
  if (status?.predecessor) touch(status.predecessor)?.roles.add('predecessor');
  for (const f of status?.fingers ?? []) touch(f.nodeId)?.roles.add('finger');
  for (const l of status?.links ?? []) {
    const n = touch(l.peer);
    if (!n) continue;
    for (const r of l.roles ?? []) n.roles.add(r);
    if (l.open) {
      n.linked = true;
      n.rttMs = l.rttMs ?? n.rttMs;
    }
  }
  const list = [...nodes.values()]
    .map((n) => ({
      ...n,
      roles: [...n.roles].sort((a, b) => rank(a) - rank(b)),
      fraction: idFraction(n.id),
    }))
    .sort((a, b) => a.fraction - b.fraction);
  const owned = me && status?.predecessor ? { from: idFraction(status.predecessor), to: idFraction(me) } : null;
  return { self: me ? { id: me, fraction: idFraction(me) } : null, nodes: list, owned };
}

/** The part of the id space this node owns, as a fraction (null when it has no predecessor). */
export function ownedShare(status) {
  if (!status?.nodeId || !status.predecessor) return null;
  const f = arcFraction(status.predecessor, status.nodeId);
  return f === 0 ? 1 : f;
}

/** The link rows: open links first, by role, then the ones still connecting. */
export function linkRows(status) {
  const servers = serverIds(status);
  const succ = status?.successors ?? [];
  return (status?.links ?? [])
    .map((l) => ({
      link: l.link,
      peer: l.peer,
      open: l.open,
      roles: [...(l.roles ?? [])],
      labels: roleLabels(l, succ),
      server: (l.peer && servers.get(l.peer)) || null,
      rtt: formatRtt(l.rttMs),
      bytesIn: formatBytes(l.bytesIn),
      bytesOut: formatBytes(l.bytesOut),
      // The exact counters, for the tooltip: the rounded figures above move only every few hundred bytes.
      exactIn: Number.isFinite(l.bytesIn) ? l.bytesIn : null,
      exactOut: Number.isFinite(l.bytesOut) ? l.bytesOut : null,
    }))
    .sort((a, b) => Number(b.open) - Number(a.open) || rank(a.roles[0]) - rank(b.roles[0]) || a.link - b.link);
}

/** Each bootstrap server with {url, nodeId, state: 'linked' | 'connecting' | 'failed' | 'not linked', detail}. */
export function serverRows(status) {
  const boot = status?.bootstrap ?? { state: 'idle', servers: [], lastError: null };
  const open = new Set((status?.links ?? []).filter((l) => l.open && l.peer).map((l) => l.peer));
  return (boot.servers ?? []).map((s) => {
    if (s.nodeId && open.has(s.nodeId)) return { url: s.url, nodeId: s.nodeId, state: 'linked', detail: null };
    if (status?.state !== 'running') return { url: s.url, nodeId: s.nodeId, state: 'not linked', detail: null };
    if (boot.state === 'connecting') return { url: s.url, nodeId: s.nodeId, state: 'connecting', detail: null };
    const mine =
      boot.lastError && boot.lastError.startsWith(`${s.url}:`) ? boot.lastError.slice(s.url.length + 1).trim() : null;
    if (boot.state === 'failed' || mine)
      return { url: s.url, nodeId: s.nodeId, state: 'failed', detail: mine ?? boot.lastError };
    return { url: s.url, nodeId: s.nodeId, state: 'not linked', detail: null };
  });
}

// ---- settings form ---------------------------------------------------------------------------------------

/** The bootstrap textarea: one URL per line (blank lines and surrounding spaces ignored). */
export function parseBootstrap(text) {
  return String(text ?? '')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
}

/**
 * The ICE rows ({urls, username, credential} as typed) → RTCIceServer list. `urls` may hold several URLs
 * separated by spaces or commas; empty rows are dropped; username and credential only when given.
 */
export function iceFromRows(rows) {
  const out = [];
  for (const r of rows ?? []) {
    const urls = String(r.urls ?? '')
      .split(/[\s,]+/)
      .filter(Boolean);
    if (urls.length === 0) continue;
    const server = { urls: urls.length === 1 ? urls[0] : urls };
    if (String(r.username ?? '').trim()) server.username = String(r.username).trim();
    if (String(r.credential ?? '') !== '') server.credential = String(r.credential);
    out.push(server);
  }
  return out;
}

/** RTCIceServer list → rows for the form. */
export function rowsFromIce(list) {
  return (list ?? []).map((s) => ({
    urls: Array.isArray(s.urls) ? s.urls.join(' ') : String(s.urls ?? ''),
    username: s.username ?? '',
    credential: s.credential ?? '',
  }));
}
