// Driver: serves the test page, launches Chromium with each variant of the bench extension, runs the paths.
// Run inside a private network namespace (see run.sh).
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchWithExtension } from '../../lib/browser.mjs';

const ROOT = path.dirname(new URL(import.meta.url).pathname);
// Build output and results go under the checkout's target/, never beside the sources.
const OUT = path.join(ROOT, '../../../../target/investigations/extension-binary-paths');
mkdirSync(OUT, { recursive: true });
const PORT = 8123;
const SITE = `http://some.site:${PORT}/index.html`;
const MIB = +(process.env.MIB || 64);

const VARIANTS = {
  'json-relay': { cfg: { offscreenNoOnConnect: true } },
  json: {},
  'sc-relay': { message_serialization: 'structured_clone', cfg: { offscreenNoOnConnect: true } },
  sc: { message_serialization: 'structured_clone' },
  // no content script, no host permission for some.site: the page embeds the web-accessible frame itself
  nohost: { content_scripts: [{ matches: ['http://other.site/*'], js: ['common.js', 'cs.js'] }] },
  'sc-noswlistener': { message_serialization: 'structured_clone', cfg: { noOnConnect: true } },
  'sc+host': { message_serialization: 'structured_clone', host_permissions: ['http://some.site/*'] },
};
const web = ['p3-bc', 'p3-sw', 'p3-shw', 'p3-views'].map((p) => [p, 'ab', MIB]);
const pageWeb = ['p3page-bc', 'p3page-sw', 'p3page-shw', 'p3page-views'].map((p) => [p, 'ab', MIB]);
const TESTS = {
  'json-relay': [
    ['p1', 'b64', MIB],
    ['p1', 'arr', 16],
  ],
  'sc-relay': [['p1', 'sc', MIB]],
  nohost: [...pageWeb],
  json: [['p2', 'b64', MIB], ['p2', 'arr', 16], ['p2', 'sc', 1], ...web, ['p3-rt', 'b64', MIB], ['p4', 'b64', MIB]],
  sc: [['p2', 'sc', MIB], ['p2', 'b64', MIB], ...web, ['p3-rt', 'sc', MIB], ['p4', 'sc', MIB]],
  'sc-noswlistener': [['p2', 'sc', MIB]],
  'sc+host': [...web, ...pageWeb, ['p2', 'sc', MIB]],
};
const only = process.argv[2] ? process.argv[2].split(',') : Object.keys(VARIANTS);
const onlyPaths = process.argv[3] ? process.argv[3].split(',') : null;

const TYPES = { '.html': 'text/html', '.js': 'text/javascript' };
const server = http.createServer((req, res) => {
  const p = new URL(req.url, 'http://x').pathname;
  const file = p === '/common.js' ? path.join(ROOT, 'ext/common.js') : path.join(ROOT, 'site', path.normalize(p));
  try {
    const body = readFileSync(file);
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
      'cache-control': 'no-store',
    });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => server.listen(PORT, '127.0.0.1', r));

const all = [];
for (const v of only) {
  const extDir = path.join(OUT, 'build', 'ext-' + v);
  rmSync(extDir, { recursive: true, force: true });
  mkdirSync(extDir, { recursive: true });
  cpSync(path.join(ROOT, 'ext'), extDir, { recursive: true });
  const { cfg = {}, ...keys } = VARIANTS[v];
  const manifest = { ...JSON.parse(readFileSync(path.join(ROOT, 'ext/manifest.base.json'))), ...keys };
  writeFileSync(path.join(extDir, 'config.js'), `self.CFG = ${JSON.stringify(cfg)};\n`);
  writeFileSync(path.join(extDir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  rmSync(path.join(extDir, 'manifest.base.json'));

  const launched = await launchWithExtension(extDir, {
    userDataDir: mkdtempSync(path.join(tmpdir(), 'chan-bench-')),
    extraArgs: ['--host-resolver-rules=MAP some.site 127.0.0.1, MAP other.site 127.0.0.1'],
  });
  const { context, userDataDir: profile, extensionId: extId } = launched;
  try {
    // launchWithExtension waited for it; its `serviceWorker()` knows only the Chordial extension id.
    const sw = context.serviceWorkers()[0];
    const policy = process.env.DIRECT_POLICY || 'drop';
    const info = await sw.evaluate(
      async (policy) => ({
        directPolicy: (self.directPolicy = policy),
        ua: navigator.userAgent,
        manifestKey: chrome.runtime.getManifest().message_serialization ?? null,
        offscreen: (await self.ensureOffscreen()).map((c) => c.documentUrl),
      }),
      policy,
    );
    console.log(`\n=== variant ${v}  ${JSON.stringify(info)}`);
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') console.log('  [page console]', m.text());
    });
    page.on('crash', () => console.log('  [page crashed]'));
    context.on('close', () => console.log('  [context closed]'));
    page.on('pageerror', (e) => console.log('  [page error]', e.message));
    await page.goto(SITE);
    await page.waitForFunction(() => !!window.bench);
    for (const [p, mode, mib] of TESTS[v]) {
      if (onlyPaths && !onlyPaths.includes(p)) continue;
      const r = await page.evaluate((a) => window.bench.test(a), { path: p, mode, extId, mib, down: true });
      r.variant = v;
      all.push(r);
      const fmt = (x) =>
        !x
          ? '-'
          : x.error
            ? 'ERR ' + x.error
            : x.MBps !== undefined
              ? `${x.MBps} MB/s (${x.ms} ms, n=${x.n}, bad=${x.bad}${x.firstErr ? ' ' + x.firstErr : ''})`
              : `med ${x.median} ms p90 ${x.p90} min ${x.min}`;
      console.log(
        `- ${v.padEnd(7)} ${p.padEnd(8)} ${mode.padEnd(4)} ${String(mib).padStart(3)} MiB | ${r.error ? 'FAILED: ' + r.error : `up ${fmt(r.up)} | rtt256k ${fmt(r.rtt256k)} | down ${fmt(r.down)}`}`,
      );
      for (const d of r.diags || []) console.log('    diag', JSON.stringify(d));
    }
    if (v === 'nohost') {
      // control: is BroadcastChannel partitioned between a top-level other.site page and an other.site frame in some.site?
      const top = await context.newPage();
      await top.goto(`http://other.site:${PORT}/bcprobe.html`);
      const probe = await page.evaluate(async (u) => {
        const f = document.createElement('iframe');
        f.src = u;
        await new Promise((r) => {
          f.onload = r;
          document.body.appendChild(f);
        });
        f.contentWindow.postMessage('x', '*');
        return true;
      }, `http://other.site:${PORT}/bcprobe.html`);
      const frame = page.frames().find((f) => f.url().includes('other.site'));
      await frame.evaluate(() => window.send('from-frame-in-some.site'));
      await top.evaluate(() => window.send('from-top-level'));
      const top2 = await context.newPage(); // positive control: a second top-level other.site page
      await top2.goto(`http://other.site:${PORT}/bcprobe.html`);
      await top2.evaluate(() => window.send('from-second-top-level'));
      await new Promise((r) => setTimeout(r, 500));
      const control = {
        topGot: await top.evaluate(() => window.got),
        frameGot: await frame.evaluate(() => window.got),
      };
      await top2.close();
      console.log(
        '  control (web origins, other.site top-level vs other.site iframe in some.site):',
        JSON.stringify(control),
        probe,
      );
      all.push({ variant: v, control });
      await top.close();
    }
    const stats = await context
      .serviceWorkers()
      .at(-1)
      .evaluate(() => self.stats);
    console.log('  sw stats', JSON.stringify(stats));
    all.push({ variant: v, swStats: stats, info });
  } catch (e) {
    console.log('variant', v, 'failed:', e);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
server.close();
const out = path.join(OUT, `results-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify(all, null, 2));
console.log('\nresults →', out);
