// Driving window.chordial in a page like a dApp would, and the approval window like a user would.
import { approvalPage, withDeadline } from './browser.mjs';

/** Installs event recorders in the page (idempotent): window.__chordial.{message,presence,statusChanged,disconnect}. */
export async function recordEvents(page) {
  await page.waitForFunction(() => Boolean(window.chordial), null, { timeout: 10_000 });
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

/** Calls window.chordial.request in the page; resolves {result} or {error: {code, message, data}}. */
export function call(page, method, params) {
  return page.evaluate(
    async ([m, p]) => {
      const fix = (v) => (v && v.__bytes ? new Uint8Array(v.__bytes) : v);
      const args =
        p && typeof p === 'object' && !Array.isArray(p)
          ? Object.fromEntries(Object.entries(p).map(([k, v]) => [k, fix(v)]))
          : p;
      try {
        return { result: await window.chordial.request({ method: m, params: args }) };
      } catch (e) {
        return { error: { code: e.code, message: e.message, data: e.data } };
      }
    },
    [method, params],
  );
}

/**
 * chordial_requestAccess with the user answering the approval window (`decision`: 'approve' | 'reject' |
 * 'close' | 'none' when the origin is expected to be approved already). Returns {outcome, approval}.
 */
export async function requestAccess(context, page, { decision = 'approve', screenshot = null } = {}) {
  const outcome = call(page, 'chordial_requestAccess');
  outcome.catch(() => {}); // awaited below; do not let a failure before that go unhandled
  let approval = null;
  if (decision !== 'none') {
    const win = await approvalPage(context);
    approval = {
      origin: await win.textContent('#origin'),
      wallet: await win.textContent('#wallet'),
    };
    if (screenshot) await win.screenshot({ path: screenshot });
    const closed = win.isClosed() ? Promise.resolve() : win.waitForEvent('close', { timeout: 15_000 });
    // The window closes itself on a decision, which can race the end of the click: that is expected.
    const click = (sel) =>
      win.click(sel, { noWaitAfter: true }).catch((e) => {
        if (!/closed/i.test(e.message)) throw e;
      });
    if (decision === 'approve') await click('#approve');
    else if (decision === 'reject') await click('#reject');
    else if (decision === 'close') await win.close();
    await closed; // the window closes itself after a decision; the next request gets a new one
  }
  return { outcome: await withDeadline(outcome, 30_000, 'chordial_requestAccess did not settle'), approval };
}

/** Waits until the page recorded `n` events of `kind` satisfying `pred` (a function source evaluated in-page). */
export async function waitForEvents(page, kind, n = 1, timeout = 20_000) {
  await page.waitForFunction(([k, count]) => (window.__chordial?.[k]?.length ?? 0) >= count, [kind, n], { timeout });
  return page.evaluate((k) => window.__chordial[k], kind);
}

/** The offscreen node's detailed status, asked from the (current) service worker. */
export async function nodeStatus(worker) {
  return worker.evaluate(async () => {
    const r = await chrome.runtime.sendMessage({ target: 'offscreen', op: 'detailedStatus', args: {} });
    if (!r?.ok) throw new Error(JSON.stringify(r?.error));
    return r.result;
  });
}
