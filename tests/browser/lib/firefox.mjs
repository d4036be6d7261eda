// Firefox (firefox-esr) with the extension (dist/firefox) installed as a temporary add-on, driven by
// puppeteer-core over WebDriver BiDi — stock Firefox speaks BiDi; playwright-core's `firefox` would need
// Playwright's own patched build. Prefs of shared/browser-testing.md: no mDNS-obfuscated host candidates,
// and a fixed moz-extension UUID so that the extension's pages have known URLs.
//
// BiDi refuses to navigate a tab to moz-extension://, and puppeteer's `page.url()` stays `about:blank` for
// the extension's own windows (the approval window), so those are found by asking each page its location.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { withDeadline } from './browser.mjs';

export const FIREFOX = process.env.CHORDIAL_FIREFOX || '/usr/bin/firefox-esr';
export const GECKO_ID = 'chordial@chordial.org';
export const FIREFOX_UUID = '6a1d3f0e-4c2b-4f5e-9a7d-0c1b2a3d4e5f';
export const FIREFOX_EXTENSION_ORIGIN = `moz-extension://${FIREFOX_UUID}`;

/** Starts Firefox with a fresh profile and installs the extension at `extDir`. */
export async function launchFirefox(extDir, { prefs = {} } = {}) {
  const profile = mkdtempSync(path.join(tmpdir(), 'chordial-firefox-'));
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    userDataDir: profile,
    extraPrefsFirefox: {
      'media.peerconnection.ice.obfuscate_host_addresses': false,
      'extensions.webextensions.uuids': JSON.stringify({ [GECKO_ID]: FIREFOX_UUID }),
      // Console output of pages and of the extension on stderr, for the test log.
      'devtools.console.stdout.content': true,
      'devtools.console.stdout.chrome': true,
      ...prefs,
    },
  });
  const id = await browser.installExtension(extDir);
  if (id !== GECKO_ID) throw new Error(`installed add-on id ${id}, expected ${GECKO_ID}`);
  return {
    browser,
    profile,
    async close() {
      await browser.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The location of a page as the page itself reports it (null if it cannot answer). */
async function locationOf(page) {
  try {
    return await withDeadline(
      page.evaluate(() => location.href),
      2_000,
      'location',
    );
  } catch {
    return null;
  }
}

/** Waits for an open page of the extension whose path starts with `pathPrefix` (e.g. 'approval.html'). */
export async function findExtensionPage(browser, pathPrefix, { timeout = 15_000 } = {}) {
  const want = `${FIREFOX_EXTENSION_ORIGIN}/${pathPrefix}`;
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    for (const page of await browser.pages()) {
      if ((await locationOf(page))?.startsWith(want)) return page;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`deadline (${timeout} ms): no extension page ${pathPrefix}`);
}

/** The approval window, ready to be answered. */
export async function firefoxApprovalPage(browser, { timeout = 15_000 } = {}) {
  const page = await findExtensionPage(browser, 'approval.html', { timeout });
  await page.waitForSelector('body[data-ready="true"]', { timeout });
  return page;
}

/** A runtime message to the background from an extension page (as the popup sends them). */
export async function askBackground(extensionPage, type, extra = {}) {
  const reply = await extensionPage.evaluate(
    (t, x) => chrome.runtime.sendMessage({ target: 'background', type: t, ...x }),
    type,
    extra,
  );
  if (!reply?.ok) throw new Error(`${type}: ${JSON.stringify(reply?.error)}`);
  return reply.result;
}

/** Clicks a button of an extension window that closes itself on the click (the approval window). */
export async function clickAndClose(page, selector) {
  await page.click(selector).catch((e) => {
    if (!/clos|detach|destroy|target/i.test(e.message)) throw e;
  });
}
