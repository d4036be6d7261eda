// Service worker entry (Chrome): the node lives in the offscreen document, created on demand by the
// OffscreenManager; everything else is the shared wiring of app.js.

import { OffscreenManager, OFFSCREEN_PATH } from './offscreen.js';
import { startBackground } from './app.js';

/* global __CHORDIAL_DEFAULTS__ */
const offscreen = new OffscreenManager(chrome, { path: OFFSCREEN_PATH });

startBackground({
  api: chrome,
  node: offscreen,
  nodeUrl: chrome.runtime.getURL(OFFSCREEN_PATH),
  defaults: __CHORDIAL_DEFAULTS__,
});
