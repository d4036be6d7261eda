// The popup: the node at a glance (state, identity, ring, links, servers), approved sites, pairing with
// another browser, settings. Everything goes through the service worker (runtime messages of
// shared/protocol.js, accepted only from this extension's pages).
//
// Live updates by polling, once a second while the popup is visible: RTT and traffic change with no event
// to announce them, a poll needs no subscription that a service-worker restart would break, and it costs
// two small runtime messages per second only while someone looks. What model.js computes is rendered here.

import { Target, BackgroundMsg } from '../shared/protocol.js';
import {
  overallState,
  ringLayout,
  ownedShare,
  linkRows,
  serverRows,
  shortId,
  shortAddress,
  formatDuration,
  formatCountdown,
  parseBootstrap,
  iceFromRows,
  rowsFromIce,
} from './model.js';
import { renderRing } from './ring.js';

export const POLL_MS = 1000;

const $ = (id) => document.getElementById(id);

/** One request to the service worker; rejects with {code, message, data} as the router answers. */
async function ask(type, extra = {}) {
  const reply = await chrome.runtime.sendMessage({ target: Target.BACKGROUND, type, ...extra });
  if (!reply) throw { message: 'the extension did not answer' };
  if (!reply.ok) throw reply.error ?? { message: 'unknown error' };
  return reply.result;
}

function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'title' || k === 'role') e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function say(el, text, kind = 'info') {
  el.textContent = text;
  el.dataset.kind = kind;
}

const errorText = (e) => e?.message ?? String(e);

/** Pairing needs a running node, which needs a wallet session: say so rather than "not running". */
function pairErrorText(e) {
  const reason = e?.data?.reason;
  if (reason === 'NOT_RUNNING' || reason === 'NO_DELEGATION') {
    return 'The node is not running yet: connect from a dApp first (your wallet signs once), then pair.';
  }
  return errorText(e);
}

// ---- tabs ------------------------------------------------------------------------------------------------

const tabs = [...document.querySelectorAll('[role="tab"]')];

function selectTab(tab, focus = false) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute('aria-controls')).hidden = !on;
  }
  if (focus) tab.focus();
  if (tab.id === 'tab-settings') loadSettings();
}

for (const t of tabs) {
  t.addEventListener('click', () => selectTab(t));
  t.addEventListener('keydown', (e) => {
    const i = tabs.indexOf(t);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    selectTab(tabs[(next + tabs.length) % tabs.length], true);
  });
}

// ---- copying ---------------------------------------------------------------------------------------------

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // The async clipboard needs focus and a gesture; a selection copy works in more places.
    const t = h('textarea', { value: text });
    document.body.append(t);
    t.select();
    document.execCommand('copy');
    t.remove();
  }
  const before = button.textContent;
  button.textContent = 'Copied';
  setTimeout(() => (button.textContent = before), 1500);
}

$('copy-wallet').addEventListener('click', (e) => copy(e.currentTarget.dataset.copy ?? '', e.currentTarget));
$('copy-node').addEventListener('click', (e) => copy(e.currentTarget.dataset.copy ?? '', e.currentTarget));
$('copy-offer').addEventListener('click', (e) => copy($('offer-code').value, e.currentTarget));
$('copy-answer').addEventListener('click', (e) => copy($('answer-code').value, e.currentTarget));

// ---- status ----------------------------------------------------------------------------------------------

function renderStatus(status, error) {
  const now = Date.now();
  const s = overallState(status, error, now);
  const pill = $('state');
  pill.textContent = s.title;
  pill.className = `pill ${s.state}`;
  pill.dataset.state = s.state;
  $('reason').textContent = s.reason;

  const wallet = status?.wallet ?? null;
  // Before the first approval there is no session: a welcome that says how to start, not empty tables.
  const fresh = Boolean(status) && !wallet && !error && (status.links ?? []).length === 0;
  $('welcome').hidden = !fresh;
  $('node-view').hidden = fresh;
  $('wallet').textContent = wallet ?? 'not signed in';
  $('wallet').title = wallet ?? '';
  $('copy-wallet').hidden = !wallet;
  $('copy-wallet').dataset.copy = wallet ?? '';
  $('copy-wallet').setAttribute('aria-label', 'Copy wallet address');
  const exp = status?.sessionExpires ?? null;
  $('session').textContent = exp
    ? exp > now
      ? `expires in ${formatDuration(exp - now)} (${new Date(exp).toLocaleDateString(undefined, { day: 'numeric', month: 'short', year: 'numeric' })})`
      : 'expired'
    : 'none';
  const nodeId = status?.nodeId ?? null;
  $('node-id').textContent = nodeId ? shortId(nodeId, 16) : '–';
  $('node-id').title = nodeId ?? '';
  $('copy-node').hidden = !nodeId;
  $('copy-node').dataset.copy = nodeId ?? '';
  $('copy-node').setAttribute('aria-label', 'Copy node id');

  const layout = ringLayout(status);
  renderRing($('ring'), layout);
  const linked = layout.nodes.filter((n) => n.linked).length;
  const share = ownedShare(status);
  $('ring-caption').textContent = !nodeId
    ? ''
    : layout.nodes.length === 0
      ? 'Only this node so far.'
      : `${linked} of ${layout.nodes.length} known node${layout.nodes.length === 1 ? '' : 's'} linked` +
        (share === null ? '.' : `; this node holds ${(share * 100).toFixed(share < 0.1 ? 1 : 0)} % of the ids.`);

  const rows = linkRows(status);
  $('links-count').textContent = rows.length ? `(${rows.filter((r) => r.open).length} open)` : '';
  $('links-empty').hidden = rows.length > 0;
  $('links').replaceChildren(
    ...rows.map((r) =>
      h(
        'li',
        {
          'data-peer': r.peer ?? '',
          'data-roles': r.roles.join(' '),
          'data-open': String(r.open),
          class: r.open ? 'link' : 'link pending',
        },
        h(
          'div',
          { class: 'line1' },
          h('span', { class: `dot ${r.open ? (r.roles[0] ?? 'linked') : 'known'}`, 'aria-hidden': 'true' }),
          h(
            'span',
            { class: 'name', title: r.peer ?? 'peer not known yet' },
            r.server ? `server ${hostOf(r.server)}` : r.peer ? `node ${shortId(r.peer)}` : 'unknown peer',
          ),
          h('span', { class: 'badges' }, ...r.labels.map((l) => h('span', { class: 'badge' }, l))),
        ),
        h(
          'div',
          {
            class: 'line2',
            'aria-label': `round trip ${r.rtt}, received ${r.bytesIn}, sent ${r.bytesOut}`,
            title:
              r.exactIn === null
                ? null
                : `received ${r.exactIn.toLocaleString('en')} bytes, sent ${r.exactOut.toLocaleString('en')} bytes`,
            'data-bytes-in': r.exactIn === null ? null : String(r.exactIn),
            'data-bytes-out': r.exactOut === null ? null : String(r.exactOut),
          },
          `RTT ${r.rtt} · ↓ ${r.bytesIn} · ↑ ${r.bytesOut}`,
        ),
      ),
    ),
  );

  const servers = serverRows(status);
  $('servers-empty').hidden = servers.length > 0;
  $('servers').replaceChildren(
    ...servers.map((s) =>
      h(
        'li',
        { 'data-url': s.url, 'data-state': s.state, class: 'server' },
        h(
          'div',
          { class: 'line1' },
          h('span', { class: 'name mono', title: s.nodeId ? `node ${s.nodeId}` : '' }, s.url),
          h('span', { class: `badge state-${s.state.replace(' ', '-')}` }, s.state),
        ),
        s.detail ? h('div', { class: 'line2' }, s.detail) : null,
      ),
    ),
  );
}

function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

// ---- sites -----------------------------------------------------------------------------------------------

let sitesShown = null; // JSON of the list on screen: re-rendered only when it changes (keeps keyboard focus)

function renderSites(list) {
  const key = JSON.stringify(list);
  $('sites-count').textContent = list.length ? `(${list.length})` : '';
  if (key === sitesShown) return;
  sitesShown = key;
  $('sites-empty').hidden = list.length > 0;
  $('sites').replaceChildren(
    ...list.map((s) =>
      h(
        'li',
        { 'data-origin': s.origin, class: 'site' },
        h(
          'div',
          { class: 'site-text' },
          h('div', { class: 'name mono' }, s.origin),
          h(
            'div',
            { class: 'line2' },
            `approved ${new Date(s.approvedAt).toLocaleDateString(undefined, { day: 'numeric', month: 'short' })}` +
              (s.wallet ? ` · ${shortAddress(s.wallet)}` : ''),
          ),
        ),
        h('button', {
          type: 'button',
          class: 'small danger revoke',
          textContent: 'Revoke',
          'aria-label': `Revoke access for ${s.origin}`,
          onclick: (e) => revoke(s.origin, e.currentTarget),
        }),
      ),
    ),
  );
}

async function revoke(origin, button) {
  button.disabled = true;
  try {
    await ask(BackgroundMsg.POPUP_REVOKE, { origin });
    sitesShown = null;
    renderSites(await ask(BackgroundMsg.POPUP_LIST_APPROVED));
    $('tab-sites').focus();
  } catch (e) {
    button.disabled = false;
    button.title = errorText(e);
  }
}

// ---- pairing ---------------------------------------------------------------------------------------------

const pairing = { offer: null, answer: null };

function showOffer(offer) {
  pairing.offer = offer;
  $('offer-out').hidden = !offer;
  $('offer-code').value = offer?.code ?? '';
  tickPairing();
}

function showAnswer(answer) {
  pairing.answer = answer;
  $('answer-out').hidden = !answer;
  $('answer-code').value = answer?.code ?? '';
  tickPairing();
}

function tickPairing() {
  const now = Date.now();
  for (const [which, el] of [
    ['offer', $('offer-expiry')],
    ['answer', $('answer-expiry')],
  ]) {
    const c = pairing[which];
    if (!c) continue;
    el.textContent = c.expires > now ? `expires in ${formatCountdown(c.expires - now)}` : 'expired — start again';
  }
}

$('pair-offer').addEventListener('click', async (e) => {
  const b = e.currentTarget;
  b.disabled = true;
  say($('pair-offer-msg'), 'Making the offer…');
  try {
    showOffer(await ask(BackgroundMsg.POPUP_PAIR_OFFER));
    $('answer-in').value = '';
    say($('pair-offer-msg'), 'Copy the offer code to the other browser, then paste its answer.');
    $('offer-code').focus();
    $('offer-code').select();
  } catch (err) {
    say($('pair-offer-msg'), pairErrorText(err), 'error');
  } finally {
    b.disabled = false;
  }
});

$('pair-complete').addEventListener('click', async (e) => {
  const b = e.currentTarget;
  const code = $('answer-in').value;
  if (!code.trim()) {
    say($('pair-offer-msg'), 'Paste the answer code from the other browser first.', 'error');
    $('answer-in').focus();
    return;
  }
  b.disabled = true;
  say($('pair-offer-msg'), 'Connecting…');
  try {
    const linked = await ask(BackgroundMsg.POPUP_PAIR_COMPLETE, { code });
    showOffer(null);
    $('answer-in').value = '';
    say($('pair-offer-msg'), `Linked with node ${shortId(linked.peer ?? '')}. It now joins the ring.`, 'ok');
  } catch (err) {
    // The pasted text stays in the field and the offer keeps waiting: fix the paste and try again.
    say($('pair-offer-msg'), pairErrorText(err), 'error');
  } finally {
    b.disabled = false;
  }
});

$('pair-answer').addEventListener('click', async (e) => {
  const b = e.currentTarget;
  const code = $('offer-in').value;
  if (!code.trim()) {
    say($('pair-answer-msg'), "Paste the other browser's offer code first.", 'error');
    $('offer-in').focus();
    return;
  }
  b.disabled = true;
  say($('pair-answer-msg'), 'Making the answer…');
  try {
    showAnswer(await ask(BackgroundMsg.POPUP_PAIR_ANSWER, { code }));
    say($('pair-answer-msg'), 'Send the answer code back. The link opens when the other browser pastes it.', 'ok');
    $('answer-code').focus();
    $('answer-code').select();
  } catch (err) {
    say($('pair-answer-msg'), pairErrorText(err), 'error');
  } finally {
    b.disabled = false;
  }
});

// ---- settings --------------------------------------------------------------------------------------------

let settingsLoaded = false;

function iceRow(row = { urls: '', username: '', credential: '' }) {
  const n = () => [...$('ice-rows').children].indexOf(li) + 1;
  const li = h(
    'div',
    { class: 'ice-row' },
    h('input', {
      type: 'text',
      class: 'ice-urls mono',
      value: row.urls,
      placeholder: 'turn:turn.example.org:3478',
      spellcheck: false,
      'aria-label': 'ICE server URL',
    }),
    h('input', {
      type: 'text',
      class: 'ice-username',
      value: row.username,
      placeholder: 'username',
      autocomplete: 'off',
      'aria-label': 'TURN username',
    }),
    h('input', {
      type: 'password',
      class: 'ice-credential',
      value: row.credential,
      placeholder: 'password',
      autocomplete: 'off',
      'aria-label': 'TURN password',
    }),
    h('button', {
      type: 'button',
      class: 'small remove',
      textContent: '✕',
      title: 'Remove',
      'aria-label': 'Remove this ICE server',
      onclick: () => {
        const at = n();
        li.remove();
        const rows = $('ice-rows').children;
        (rows[Math.min(at - 1, rows.length - 1)]?.querySelector('input') ?? $('ice-add')).focus();
      },
    }),
  );
  return li;
}

function fillSettings(s) {
  $('bootstrap').value = (s.bootstrap ?? []).join('\n');
  $('ice-rows').replaceChildren(...rowsFromIce(s.iceServers).map(iceRow));
}

async function loadSettings() {
  if (settingsLoaded) return;
  settingsLoaded = true;
  try {
    fillSettings(await ask(BackgroundMsg.POPUP_GET_SETTINGS));
  } catch (e) {
    settingsLoaded = false;
    say($('settings-msg'), errorText(e), 'error');
  }
}

$('ice-add').addEventListener('click', () => {
  const row = iceRow();
  $('ice-rows').append(row);
  row.querySelector('input').focus();
});

// A message about the last save no longer applies once the form changes.
$('settings-form').addEventListener('input', () => say($('settings-msg'), ''));

$('settings-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const rows = [...$('ice-rows').children].map((r) => ({
    urls: r.querySelector('.ice-urls').value,
    username: r.querySelector('.ice-username').value,
    credential: r.querySelector('.ice-credential').value,
  }));
  const settings = { bootstrap: parseBootstrap($('bootstrap').value), iceServers: iceFromRows(rows) };
  $('settings-save').disabled = true;
  say($('settings-msg'), 'Saving…');
  try {
    fillSettings(await ask(BackgroundMsg.POPUP_SET_SETTINGS, { settings }));
    say($('settings-msg'), 'Saved. The node restarted with these settings.', 'ok');
  } catch (err) {
    say($('settings-msg'), errorText(err), 'error');
  } finally {
    $('settings-save').disabled = false;
  }
});

// ---- the loop --------------------------------------------------------------------------------------------

let refreshing = false;

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const [st, sites] = await Promise.allSettled([
      ask(BackgroundMsg.POPUP_STATUS),
      ask(BackgroundMsg.POPUP_LIST_APPROVED),
    ]);
    renderStatus(st.status === 'fulfilled' ? st.value : null, st.status === 'rejected' ? st.reason : null);
    if (sites.status === 'fulfilled') renderSites(sites.value);
    tickPairing();
    document.body.dataset.ready = 'true';
  } finally {
    refreshing = false;
  }
}

ask(BackgroundMsg.POPUP_PAIR_STATE)
  .then((p) => {
    if (p?.offer) showOffer(p.offer);
    if (p?.answer) showAnswer(p.answer);
  })
  .catch(() => {});
refresh();
setInterval(() => {
  if (!document.hidden) refresh();
}, POLL_MS);
