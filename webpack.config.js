// Bundles the extension: one entry per context (background, offscreen, content, inpage, approval, popup) into
// dist/chrome/, plus the manifest, the HTML pages and the node-wasm package (dist/node-wasm/, built by
// scripts/build-wasm.sh) when it exists. Build-time defaults come from the environment:
//   CHORDIAL_BOOTSTRAP=url[,url…]   CHORDIAL_ICE=stun:…[,turn:user:pass@host:port…] (or JSON)   CHORDIAL_NETWORK=chordial-dev
// Run through `npm run build` (scripts/build-extension.mjs), which also zips the result.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import webpack from 'webpack';
import CopyPlugin from 'copy-webpack-plugin';
import { defaultsFromEnv } from './extension/background/settings.js';

const root = path.dirname(fileURLToPath(import.meta.url));

export default function config(env = process.env) {
  const defaults = defaultsFromEnv(env);
  return {
    mode: 'production',
    context: root,
    target: 'web',
    devtool: false, // no eval: extension pages' CSP forbids it
    entry: {
      background: './extension/background/index.js',
      offscreen: './extension/offscreen/index.js',
      content: './extension/content/index.js',
      inpage: './extension/inpage/index.js',
      approval: './extension/approval/index.js',
      'popup/popup': './extension/popup/index.js',
    },
    output: {
      path: path.join(root, 'dist/chrome'),
      filename: '[name].js',
      clean: true,
      publicPath: '',
    },
    optimization: {
      minimize: false, // readable bundles for review; the store accepts them
      splitChunks: false, // content scripts and the service worker cannot load chunks
      runtimeChunk: false,
    },
    performance: { hints: false },
    plugins: [
      new webpack.DefinePlugin({ __CHORDIAL_DEFAULTS__: JSON.stringify(defaults) }),
      new CopyPlugin({
        patterns: [
          { from: 'manifest.json' },
          { from: 'extension/offscreen/offscreen.html' },
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
