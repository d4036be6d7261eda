// Chromium with the extension loaded unpacked, through playwright-core, with the flags of
// shared/browser-testing.md (no mDNS host candidates, loopback candidates allowed, nothing phoning home).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHORDIAL_CHROMIUM || '/usr/bin/chromium';
export const EXTENSION_ID = 'cpjhnfdhpecgdahfeeffndaiofbjijlf';

export function freshProfile(label = 'profile') {
  return mkdtempSync(path.join(tmpdir(), `chordial-${label}-`));
}

/** Launches a persistent context (a browser profile) with the extension at `extDir`. */
export async function launchWithExtension(extDir, { userDataDir = freshProfile(), extraArgs = [] } = {}) {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: ['--disable-extensions', '--disable-component-extensions-with-background-pages'],
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      `--disable-extensions-except=${extDir}`,
      `--load-extension=${extDir}`,
      ...extraArgs,
    ],
  });
  const sw = context.serviceWorkers()[0] ?? (await context.waitForEvent('serviceworker', { timeout: 15_000 }));
  const extensionId = new URL(sw.url()).host;
  return { context, userDataDir, extensionId, serviceWorker: () => currentWorker(context) };
}

/** The extension's service worker now (it may have been restarted). */
export async function currentWorker(context) {
  const live = context.serviceWorkers().filter((w) => w.url().startsWith(`chrome-extension://${EXTENSION_ID}/`));
  return live.at(-1) ?? context.waitForEvent('serviceworker', { timeout: 15_000 });
}

/** Stops the extension's service worker through the DevTools protocol (what Chrome does when it idles). */
export async function stopServiceWorker(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('ServiceWorker.enable');
  const stopped = new Promise((resolve) => {
    cdp.on('ServiceWorker.workerVersionUpdated', ({ versions }) => {
      for (const v of versions) {
        if (v.scriptURL.startsWith(`chrome-extension://${EXTENSION_ID}/`) && v.runningStatus === 'stopped') resolve();
      }
    });
  });
  await cdp.send('ServiceWorker.stopAllWorkers');
  await withDeadline(stopped, 10_000, 'the service worker did not stop');
  await cdp.detach();
}

/** Resolves with `promise`, or rejects after `ms` with `what`. */
export function withDeadline(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`deadline (${ms} ms): ${what}`)), ms);
    }),
  ]);
}

/** Waits for the approval window of this profile and returns its page. */
export async function approvalPage(context, { timeout = 15_000 } = {}) {
  const isApproval = (p) => !p.isClosed() && p.url().startsWith(`chrome-extension://${EXTENSION_ID}/approval.html`);
  const existing = context.pages().find(isApproval);
  const page = existing ?? (await context.waitForEvent('page', { predicate: isApproval, timeout }));
  await page.waitForSelector('body[data-ready="true"]', { timeout });
  return page;
}
