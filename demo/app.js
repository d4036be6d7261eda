// A wallet-to-wallet chat that uses only window.chordial (see docs/dapp-api.md). No build step, no libraries.
const $ = (id) => document.getElementById(id);
const short = (a) => `${a.slice(0, 6)}…${a.slice(-4)}`;
const state = { me: null, topic: null, peers: new Set() };

function say(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
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

function renderPeers() {
  const ul = $('peers');
  ul.replaceChildren();
  if (state.peers.size === 0) {
    ul.innerHTML = '<li class="empty">nobody yet</li>';
    return;
  }
  for (const a of [...state.peers].sort()) {
    const li = document.createElement('li');
    li.textContent = a;
    li.dataset.address = a;
    li.tabIndex = 0;
    if (state.me && a.toLowerCase() === state.me.toLowerCase()) li.classList.add('me');
    li.addEventListener('click', () => ($('to').value = a));
    ul.append(li);
  }
}

function addMessage({ from, text, mine }) {
  const li = document.createElement('li');
  const who = document.createElement('div');
  who.className = 'from';
  who.textContent = mine ? `you → ${short(mine)}` : from;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  const mark = document.createElement('span');
  mark.className = 'mark';
  li.append(who, body, mark);
  li.classList.add(mine ? 'out' : 'in');
  $('messages').append(li);
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
  const status = await chordial.request({ method: 'chordial_status' });
  say(
    `Chordial ${status.version} — ${status.online ? 'online' : 'offline'}${status.approved ? '' : ' — not connected'}`,
  );

  chordial.on('statusChanged', (s) => say(`Chordial — ${s.online ? 'online' : 'offline'}`));
  chordial.on('disconnect', (e) => say(`Chordial disconnected: ${e.message}`, true));
  chordial.on('presence', (p) => {
    if (p.topic !== state.topic) return;
    if (p.present) state.peers.add(p.address);
    else state.peers.delete(p.address);
    renderPeers();
  });
  chordial.on('message', (m) => {
    const text = typeof m.data === 'string' ? m.data : `(${m.data.length} bytes)`;
    addMessage({ from: m.from, text });
  });

  const connected = (address) => {
    state.me = address;
    $('me').textContent = address;
    $('connect').disabled = true;
    $('connect').textContent = 'Connected';
    $('join').disabled = false;
    $('send').disabled = false;
  };
  if (status.approved && status.address) connected(status.address);

  $('connect').addEventListener('click', async () => {
    try {
      say('Waiting for your approval…');
      const { address } = await chordial.request({ method: 'chordial_requestAccess' });
      connected(address);
      say('Connected.');
    } catch (e) {
      say(e.code === 4001 ? 'You declined.' : `Could not connect: ${e.message}`, true);
    }
  });

  $('join-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const topic = $('topic').value.trim();
    try {
      if (state.topic && state.topic !== topic)
        await chordial.request({ method: 'chordial_withdraw', params: { topic: state.topic } });
      state.topic = topic;
      await chordial.request({ method: 'chordial_announce', params: { topic } });
      const list = await chordial.request({ method: 'chordial_discover', params: { topic } });
      state.peers = new Set(list.map((x) => x.address));
      renderPeers();
      say(`On “${topic}”.`);
    } catch (e) {
      say(`Could not join: ${e.message}`, true);
    }
  });

  $('send-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const to = $('to').value.trim();
    const text = $('text').value;
    const mark = addMessage({ text, mine: to });
    mark.textContent = 'sending…';
    $('text').value = '';
    try {
      const r = await chordial.request({ method: 'chordial_send', params: { to, data: text } });
      mark.textContent = r.result === 'delivered' ? '✓ delivered' : '✉ stored (offline)';
      mark.classList.add(r.result);
    } catch (e) {
      mark.textContent = `✗ ${e.message}`;
      mark.classList.add('failed');
    }
  });
}

main().catch((e) => say(`Error: ${e.message}`, true));
