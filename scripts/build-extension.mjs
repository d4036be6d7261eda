#!/usr/bin/env node
// `npm run build`: node-wasm (when the crate exists) → webpack → dist/chrome/ and dist/firefox/ → one zip
// each (dist/chordial-chrome-<v>.zip, dist/chordial-firefox-<v>.zip).
//
//   npm run build                                  # defaults: no bootstrap server, no ICE servers
//   CHORDIAL_BOOTSTRAP=http://127.0.0.1:8080 npm run build
//   CHORDIAL_SKIP_WASM=1 npm run build             # reuse dist/node-wasm/ as it is
//
// Prints the Chrome extension id (fixed by the manifest's "key") and the Firefox add-on id.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import webpack from 'webpack';
import { configs, BROWSERS } from '../webpack.config.js';
import { zip } from './lib/zip.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const say = (m) => console.log(`build: ${m}`);

/** The Chrome extension id of a manifest "key": sha256 of the DER public key, first 16 bytes, 0-f → a-p. */
export function extensionIdOfKey(keyBase64) {
  const hex = createHash('sha256').update(Buffer.from(keyBase64, 'base64')).digest('hex').slice(0, 32);
  return [...hex].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join('');
}

function buildWasm() {
  if (process.env.CHORDIAL_SKIP_WASM === '1') return say('node-wasm: skipped (CHORDIAL_SKIP_WASM=1)');
  const script = path.join(root, 'scripts/build-wasm.sh');
  if (!existsSync(path.join(root, 'node-wasm/Cargo.toml')) || !existsSync(script)) {
    return say('node-wasm: no node-wasm crate here yet; the extension is built without a node');
  }
  say('node-wasm: bash scripts/build-wasm.sh');
  const r = spawnSync('bash', [script], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('scripts/build-wasm.sh failed');
}

function runWebpack() {
  return new Promise((resolve, reject) => {
    webpack(configs(process.env), (err, stats) => {
      if (err) return reject(err);
      const info = stats.toJson({ all: false, errors: true, warnings: true });
      for (const w of info.warnings) console.warn(`build: warning: ${w.message}`);
      if (stats.hasErrors()) return reject(new Error(info.errors.map((e) => e.message).join('\n')));
      resolve();
    });
  });
}

function filesUnder(dir, base = dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((n) => {
      const p = path.join(dir, n);
      return statSync(p).isDirectory() ? filesUnder(p, base) : [path.relative(base, p).split(path.sep).join('/')];
    });
}

async function main() {
  buildWasm();
  await runWebpack();
  for (const browser of BROWSERS) {
    const out = path.join(root, 'dist', browser);
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    const hasNode = existsSync(path.join(out, 'node-wasm/chordial_node_wasm.js'));
    say(
      `dist/${browser}/ (${filesUnder(out).length} files)${hasNode ? ', node-wasm included' : ', WITHOUT node-wasm'}`,
    );
    const zipPath = path.join(root, `dist/chordial-${browser}-${manifest.version}.zip`);
    writeFileSync(zipPath, zip(filesUnder(out).map((name) => ({ name, data: readFileSync(path.join(out, name)) }))));
    say(`${path.relative(root, zipPath)}`);
    if (browser === 'chrome') say(`chrome extension id ${extensionIdOfKey(manifest.key)}`);
    else say(`firefox add-on id ${manifest.browser_specific_settings.gecko.id}`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(`build: FAILED: ${e.message}`);
    process.exit(1);
  });
}
