// The Firefox manifest, derived from the Chrome one (manifest.json) so that both builds share one source:
//
//   - background: Firefox MV3 has no background service worker and no offscreen documents; the node is
//     hosted in the background page itself → `background.scripts` (an event page, kept alive while the node
//     is in use: extension/firefox/keepalive.js). No `offscreen` permission.
//   - browser_specific_settings.gecko: a fixed add-on id (storage and the moz-extension UUID mapping hang on
//     it), the first version with `world: "MAIN"` content scripts (128), and no data collection.
//   - `key` and `minimum_chrome_version` are Chrome's own: dropped (Firefox warns about unknown keys).
//   - Everything else — content scripts, CSP with 'wasm-unsafe-eval', name, version — stays as it is.

export const GECKO_ID = 'chordial@chordial.org';
export const GECKO_MIN_VERSION = '128.0';

export function firefoxManifest(chrome) {
  const { key, minimum_chrome_version, background, permissions = [], ...rest } = chrome;
  void key;
  void minimum_chrome_version;
  void background;
  return {
    ...rest,
    permissions: permissions.filter((p) => p !== 'offscreen'),
    background: { scripts: ['background.js'] },
    browser_specific_settings: {
      gecko: {
        id: GECKO_ID,
        strict_min_version: GECKO_MIN_VERSION,
        data_collection_permissions: { required: ['none'] },
      },
    },
  };
}
