// Driving the demo dApp (demo/) like a person, with calls that playwright-core pages (Chromium) and
// puppeteer-core pages (Firefox) share: evaluate, click, screenshot. Waiting is polling the page with a
// deadline, never a fixed sleep. Used by the Firefox suite and by `npm start`'s walkthrough.

/** Polls `fn(arg)` in the page until it returns something truthy; returns that. */
export async function until(page, fn, arg, { timeout = 30_000, every = 200, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await page.evaluate(fn, arg);
      if (last) return last;
    } catch (e) {
      last = `error: ${e.message}`;
    }
    if (Date.now() > end) throw new Error(`deadline (${timeout} ms): ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Records every window.chordial event of the page in window.__chordial (idempotent). */
export async function recordEvents(page) {
  await until(page, () => Boolean(window.chordial), null, { timeout: 10_000, what: 'window.chordial' });
  await page.evaluate(() => {
    if (window.__chordial) return;
    const rec = (window.__chordial = { message: [], presence: [], statusChanged: [], disconnect: [] });
    for (const ev of Object.keys(rec)) {
      window.chordial.on(ev, (e) => {
        const copy =
          ev === 'message' ? { ...e, data: typeof e.data === 'string' ? e.data : { bytes: [...e.data] } } : e;
        rec[ev].push(ev === 'disconnect' ? { code: e.code, message: e.message } : copy);
      });
    }
  });
}

/** Waits until the page recorded at least `n` events of `kind`; returns them all. */
export function waitForEvents(page, kind, n = 1, timeout = 30_000) {
  return until(
    page,
    ([k, count]) => (window.__chordial?.[k]?.length >= count ? window.__chordial[k] : null),
    [kind, n],
    {
      timeout,
      what: `${n} ${kind} event(s)`,
    },
  );
}

/** window.chordial.request in the page; resolves {result} or {error: {code, message, data}}. */
export function call(page, method, params) {
  return page.evaluate(
    async ([m, p]) => {
      try {
        return { result: await window.chordial.request({ method: m, params: p }) };
      } catch (e) {
        return { error: { code: e.code, message: e.message, data: e.data } };
      }
    },
    [method, params ?? null],
  );
}

/** Sets an input's value the way typing does (an `input` event follows). */
export async function fill(page, selector, value) {
  await page.evaluate(
    ([sel, v]) => {
      const el = document.querySelector(sel);
      el.value = v;
      el.dispatchEvent(new Event('input', { bubbles: true }));
    },
    [selector, value],
  );
}

/**
 * Clicks Connect and lets `answer()` deal with the approval window (and the first time the wallet signs);
 * resolves with the wallet address the demo shows.
 */
export async function connect(page, answer) {
  // The demo marks its body ready once every control has its handler and it knows its status.
  await until(page, () => document.body.dataset.ready === 'true', null, { what: 'the demo is ready' });
  await page.click('#connect');
  await answer();
  return until(
    page,
    () =>
      /^0x[0-9a-fA-F]{40}$/.test(document.getElementById('me').textContent) &&
      document.getElementById('me').textContent,
    null,
    {
      timeout: 60_000,
      what: 'the demo shows the wallet address',
    },
  );
}

/** Waits until chordial_status says online. */
export function waitOnline(page, timeout = 60_000) {
  return until(page, async () => (await window.chordial.request({ method: 'chordial_status' })).online === true, null, {
    timeout,
    every: 250,
    what: 'chordial_status online',
  });
}

/** Joins a topic through the demo's form. */
export async function joinTopic(page, topic) {
  await fill(page, '#topic', topic);
  await page.click('#join');
  await until(page, (t) => document.getElementById('status').textContent.includes(t), topic, {
    what: `joined ${topic}`,
  });
}

/** Waits until `address` is in the demo's "on this topic" list. */
export function waitForPeer(page, address, timeout = 60_000) {
  return until(page, (a) => Boolean(document.querySelector(`#peers li[data-address="${a}"]`)), address, {
    timeout,
    what: `${address} on the topic`,
  });
}

/**
 * Sends `text` to `to` through the demo's form (clicking the peer when listed) and waits for the mark:
 * resolves 'delivered', 'stored' or 'failed: …'.
 */
export async function sendText(page, to, text, timeout = 60_000) {
  const listed = await page.evaluate((a) => Boolean(document.querySelector(`#peers li[data-address="${a}"]`)), to);
  if (listed) await page.click(`#peers li[data-address="${to}"]`);
  else await fill(page, '#to', to);
  const before = await page.evaluate(() => document.querySelectorAll('#messages li.out').length);
  await fill(page, '#text', text);
  await page.click('#send');
  return until(
    page,
    (n) => {
      const li = document.querySelectorAll('#messages li.out')[n];
      const mark = li?.querySelector('.mark');
      if (!mark) return null;
      if (mark.classList.contains('delivered')) return 'delivered';
      if (mark.classList.contains('stored')) return 'stored';
      if (mark.classList.contains('failed')) return `failed: ${mark.textContent}`;
      return null;
    },
    before,
    { timeout, what: `the mark of "${text}"` },
  );
}

/** The messages the demo shows as received: [{from, text}]. */
export function shownMessages(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('#messages li.in')].map((li) => ({
      from: li.querySelector('.from').textContent,
      text: li.querySelector('.text').textContent,
    })),
  );
}
