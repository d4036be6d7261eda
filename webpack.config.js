// Bundles the extension from one set of sources for two browsers, one entry per context:
//
//   dist/chrome/   background (service worker), offscreen (hosts the node), content, inpage, approval, popup;
//                  manifest.json as it is
//   dist/firefox/  background (an event page that hosts the node itself: extension/firefox/), content,
//                  inpage, approval, popup; the manifest derived by scripts/lib/manifest.mjs
//
// plus the HTML pages and the node-wasm package (dist/node-wasm/, built by scripts/build-wasm.sh) when it
// exists. Build-time defaults come from the environment:
//   CHORDIAL_BOOTSTRAP=url[,url…]   CHORDIAL_ICE=stun:…[,turn:user:pass@host:port…] (or JSON)   CHORDIAL_NETWORK=chordial-dev
// Run through `npm run build` (scripts/build-extension.mjs), which also zips the results.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import webpack from 'webpack';
import CopyPlugin from 'copy-webpack-plugin';
import { defaultsFromEnv } from './extension/background/settings.js';
import { firefoxManifest } from './scripts/lib/manifest.mjs';

const root = path.dirname(fileURLToPath(import.meta.url));

export const BROWSERS = ['chrome', 'firefox'];

const ENTRIES = {
  chrome: {
    background: './extension/background/index.js',
    offscreen: './extension/offscreen/index.js',
  },
  firefox: {
    background: './extension/firefox/index.js',
  },
};

/** The webpack configuration of one browser's build (default: Chrome). */
export default function config(env = process.env, browser = 'chrome') {
  if (!BROWSERS.includes(browser)) throw new Error(`unknown browser ${browser}`);
  const defaults = defaultsFromEnv(env);
  const manifest =
    browser === 'chrome'
      ? { from: 'manifest.json' }
      : {
          from: 'manifest.json',
          transform: (content) => `${JSON.stringify(firefoxManifest(JSON.parse(String(content))), null, 2)}\n`,
        };
  return {
    name: browser,
    mode: 'production',
    context: root,
    target: 'web',
    devtool: false, // no eval: extension pages' CSP forbids it
    entry: {
      ...ENTRIES[browser],
      content: './extension/content/index.js',
      inpage: './extension/inpage/index.js',
      approval: './extension/approval/index.js',
      'popup/popup': './extension/popup/index.js',
    },
    output: {
      path: path.join(root, 'dist', browser),
      filename: '[name].js',
      clean: true,
      publicPath: '',
    },
    optimization: {
      minimize: false, // readable bundles for review; the stores accept them
      splitChunks: false, // content scripts and the service worker cannot load chunks
      runtimeChunk: false,
    },
    performance: { hints: false },
    plugins: [
      new webpack.DefinePlugin({ __CHORDIAL_DEFAULTS__: JSON.stringify(defaults) }),
      new CopyPlugin({
        patterns: [
          manifest,
          ...(browser === 'chrome' ? [{ from: 'extension/offscreen/offscreen.html' }] : []),
          { from: 'extension/approval/approval.html' },
          { from: 'extension/approval/approval.css' },
          { from: 'extension/popup/popup.html', to: 'popup/' },
          { from: 'extension/popup/popup.css', to: 'popup/' },
          { from: 'dist/node-wasm', to: 'node-wasm', noErrorOnMissing: true },
        ],
      }),
    ],
  };
}

/** Both builds, for webpack's multi-compiler. */
export function configs(env = process.env) {
  return BROWSERS.map((b) => config(env, b));
}
