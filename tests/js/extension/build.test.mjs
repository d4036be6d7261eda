// The build's pieces that are not webpack: the zip writer and the extension id of the manifest key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { zip, crc32 } from '../../../scripts/lib/zip.mjs';
import { extensionIdOfKey } from '../../../scripts/build-extension.mjs';

const root = path.resolve(import.meta.dirname, '../../..');

test('the manifest key pins the extension id recorded in docs/extension.md', () => {
  const manifest = JSON.parse(readFileSync(path.join(root, 'manifest.json'), 'utf8'));
  const id = extensionIdOfKey(manifest.key);
  assert.match(id, /^[a-p]{32}$/);
  assert.equal(id, 'cpjhnfdhpecgdahfeeffndaiofbjijlf');
  assert.match(readFileSync(path.join(root, 'docs/extension.md'), 'utf8'), new RegExp(id));
});

test('manifest: minimal permissions, wasm CSP, inpage in the main world at document_start', () => {
  const m = JSON.parse(readFileSync(path.join(root, 'manifest.json'), 'utf8'));
  assert.equal(m.manifest_version, 3);
  assert.deepEqual(m.permissions, ['offscreen', 'storage']);
  assert.equal(m.host_permissions, undefined);
  assert.match(m.content_security_policy.extension_pages, /'wasm-unsafe-eval'/);
  const inpage = m.content_scripts.find((c) => c.js.includes('inpage.js'));
  assert.equal(inpage.world, 'MAIN');
  assert.equal(inpage.run_at, 'document_start');
  assert.deepEqual(inpage.matches, ['http://*/*', 'https://*/*']);
});

test('crc32 matches the standard check value', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('zip archives are read back whole by a zip reader (unzip)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chordial-zip-'));
  const files = [
    { name: 'a.txt', data: Buffer.from('hello') },
    { name: 'dir/b.bin', data: Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251)) },
    { name: 'empty', data: Buffer.alloc(0) },
  ];
  const archive = path.join(dir, 'x.zip');
  writeFileSync(archive, zip(files));
  execFileSync('unzip', ['-q', '-t', archive]);
  execFileSync('unzip', ['-q', archive, '-d', path.join(dir, 'out')]);
  for (const f of files) assert.deepEqual(readFileSync(path.join(dir, 'out', f.name)), f.data);
});

test('build-time defaults: CHORDIAL_BOOTSTRAP / CHORDIAL_ICE reach the bundle; none by default', async () => {
  const { default: config } = await import('../../../webpack.config.js');
  const defaultsOf = (env) => {
    const define = config(env).plugins.find((p) => p.definitions?.__CHORDIAL_DEFAULTS__);
    return JSON.parse(define.definitions.__CHORDIAL_DEFAULTS__);
  };
  assert.deepEqual(defaultsOf({}), { network: 'chordial-dev', bootstrap: [], iceServers: [] });
  assert.deepEqual(
    defaultsOf({
      CHORDIAL_BOOTSTRAP: 'http://127.0.0.1:7700',
      CHORDIAL_ICE: 'turn:u:p@127.0.0.1:3478',
      CHORDIAL_NETWORK: 'n',
    }),
    {
      network: 'n',
      bootstrap: ['http://127.0.0.1:7700'],
      iceServers: [{ urls: 'turn:127.0.0.1:3478', username: 'u', credential: 'p' }],
    },
  );
  const entries = Object.keys(config({}).entry).sort();
  assert.deepEqual(entries, ['approval', 'background', 'content', 'inpage', 'offscreen', 'popup/popup']);
  // The popup page the manifest names is the one the build copies beside its bundle.
  const manifest = JSON.parse(readFileSync(path.join(import.meta.dirname, '../../../manifest.json'), 'utf8'));
  assert.equal(manifest.action.default_popup, 'popup/popup.html');
  const copies = config({})
    .plugins.flatMap((p) => p.patterns ?? [])
    .filter((x) => x.from.startsWith('extension/popup/'));
  assert.deepEqual(
    copies.map((x) => `${x.from} → ${x.to}`),
    ['extension/popup/popup.html → popup/', 'extension/popup/popup.css → popup/'],
  );
});
