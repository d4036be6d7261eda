// A wallet-to-wallet chat that uses only window.chordial (docs/dapp-api.md). No build step, no libraries.
// It is the reference dApp: find the provider, register listeners before the first request (messages that
// waited for this page arrive as soon as it connects), ask for access, announce a topic, discover who is
// there, send, and show delivered / stored.
const $ = (id) => document.getElementById(id);
const short = (a) => `${a.slice(0, 6)}…${a.slice(-4)}`;
const same = (a, b) => Boolean(a && b) && a.toLowerCase() === b.toLowerCase();
const state = { me: null, topic: null, peers: new Set(), online: false, version: '' };

function say(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
  $('status').classList.toggle('online', !isError && state.online);
}

function showStatus() {
  if (!state.me) return say(`Chordial${state.version ? ` ${state.version}` : ''} found · not connected yet`);
  say(`● ${state.online ? 'online' : 'offline'} · ${short(state.me)}${state.topic ? ` · on “${state.topic}”` : ''}`);
}

/** window.chordial, or null when the extension does not announce itself within half a second. */
function findChordial() {
  if (window.chordial) return Promise.resolve(window.chordial);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), 500);
    window.addEventListener('chordial:announceProvider', (e) => {
      clearTimeout(timer);
      resolve(e.detail.provider);
    });
    window.dispatchEvent(new Event('chordial:requestProvider'));
  });
}

/** A colour per address, so that people tell senders apart at a glance. */
function hue(address) {
  return parseInt(address.slice(2, 8), 16) % 360;
}

function avatar(address) {
  const dot = document.createElement('span');
  dot.className = 'dot';
  dot.style.background = `hsl(${hue(address)} 65% 50%)`;
  dot.setAttribute('aria-hidden', 'true');
  return dot;
}

function renderPeers() {
  const ul = $('peers');
  ul.replaceChildren();
  $('peer-count').textContent = state.peers.size ? `(${state.peers.size})` : '';
  if (state.peers.size === 0) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = state.topic ? 'nobody yet' : 'nobody yet — join a topic to see who is here';
    ul.append(li);
    return;
  }
  for (const a of [...state.peers].sort()) {
    const li = document.createElement('li');
    li.dataset.address = a;
    li.tabIndex = 0;
    li.title = same(a, state.me) ? 'you' : 'message this wallet';
    li.append(avatar(a), document.createTextNode(a));
    if (same(a, state.me)) li.classList.add('me');
    const pick = () => {
      $('to').value = a;
      $('text').focus();
    };
    li.addEventListener('click', pick);
    li.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        pick();
      }
    });
    ul.append(li);
  }
}

function addMessage({ from, to, text, at = Date.now() }) {
  const mine = !from;
  const li = document.createElement('li');
  li.className = mine ? 'out' : 'in';
  const head = document.createElement('div');
  head.className = 'head';
  const who = document.createElement('span');
  who.className = 'from';
  who.textContent = mine ? `you → ${to}` : from;
  const time = document.createElement('time');
  time.dateTime = new Date(at).toISOString();
  time.textContent = new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  head.append(avatar(mine ? (state.me ?? to) : from), who, time);
  const body = document.createElement('div');
  body.className = 'text';
  body.textContent = text;
  const mark = document.createElement('span');
  mark.className = 'mark';
  li.append(head, body, mark);
  $('messages').append(li);
  $('no-messages').hidden = true;
  li.scrollIntoView({ block: 'nearest' });
  return mark;
}

async function main() {
  const chordial = await findChordial();
  if (!chordial) {
    say('Chordial extension not found.', true);
    $('missing').hidden = false;
    return;
  }
  $('app').hidden = false;

  // Listeners first: a message that waited for this page is handed over as soon as the page connects.
  chordial.on('message', (m) => {
    const text = typeof m.data === 'string' ? m.data : `(${m.data.length} bytes)`;
    addMessage({ from: m.from, text, at: m.sentAt ?? Date.now() });
  });
  chordial.on('presence', (p) => {
    if (p.topic !== state.topic) return;
    if (p.present) state.peers.add(p.address);
    else state.peers.delete(p.address);
    renderPeers();
  });
  chordial.on('statusChanged', (s) => {
    state.online = s.online;
    showStatus();
  });
  chordial.on('disconnect', (e) => say(`Chordial disconnected (${e.message}) — reload the page.`, true));

  const connected = (address) => {
    state.me = address;
    $('me').textContent = address;
    $('connect').disabled = true;
    $('connect').textContent = 'Connected';
    $('join').disabled = false;
    $('send').disabled = false;
    renderPeers();
    showStatus();
  };

  $('connect').addEventListener('click', async () => {
    try {
      say('Waiting for your approval in the Chordial window…');
      const { address } = await chordial.request({ method: 'chordial_requestAccess' });
      connected(address);
    } catch (e) {
      say(e.code === 4001 ? 'You declined — click Connect to try again.' : `Could not connect: ${e.message}`, true);
    }
  });

  $('join-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const topic = $('topic').value.trim();
    try {
      if (state.topic && state.topic !== topic) {
        await chordial.request({ method: 'chordial_withdraw', params: { topic: state.topic } });
      }
      state.topic = topic;
      await chordial.request({ method: 'chordial_announce', params: { topic } });
      const list = await chordial.request({ method: 'chordial_discover', params: { topic } });
      state.peers = new Set(list.map((x) => x.address));
      renderPeers();
      showStatus();
    } catch (e) {
      say(`Could not join: ${e.message}`, true);
    }
  });

  $('send-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const to = $('to').value.trim();
    const text = $('text').value;
    const mark = addMessage({ to, text });
    mark.textContent = 'sending…';
    $('text').value = '';
    try {
      const r = await chordial.request({ method: 'chordial_send', params: { to, data: text } });
      mark.textContent = r.result === 'delivered' ? '✓ delivered' : '✉ stored — they are offline';
      mark.classList.add(r.result);
    } catch (e) {
      mark.textContent = `✗ ${e.message}`;
      mark.classList.add('failed');
    }
  });

  // Every control works from here on; now ask where we stand.
  const status = await chordial.request({ method: 'chordial_status' });
  state.online = status.online;
  state.version = status.version;
  if (status.approved && status.address) connected(status.address);
  else showStatus();
  document.body.dataset.ready = 'true';
}

main().catch((e) => say(`Error: ${e.message}`, true));
