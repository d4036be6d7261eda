#!/usr/bin/env bash
# The popup in Chromium with the real node (tests/browser/popup.test.mjs): popup_shows_the_ring (a
# chordial-server and two browsers: links with roles, ring markers, approved sites, Revoke → 4100),
# manual_pairing (two browsers, no server, offer and answer codes carried between their popups, messages both
# ways), popup_settings_restart_the_node. Builds chordial-server and the extension with node-wasm first
# (outside the namespace); runs inside a private network namespace (only `lo`). Screenshots (360×600) go to
# $CHORDIAL_LOG_DIR/popup/ (target/test-logs/popup/).
# chordial-needs: browsers netns
# chordial-timeout: 1200
set -uo pipefail
cd "${CHORDIAL_ROOT:-$(dirname "$0")/../..}" || exit 1
SUITE=popup
. tests/suites/node-tests.sh


[ -f node-wasm/Cargo.toml ] || fail_setup "no node-wasm crate"
[ -f server/Cargo.toml ] || fail_setup "no server crate"
if [ -z "${CHORDIAL_SERVER_BIN:-}" ]; then
    echo "popup: cargo build --release -p chordial-server"
    cargo build --release -q -p chordial-server || fail_setup "chordial-server did not build"
fi
if [ -z "${CHORDIAL_EXTENSION_DIR:-}" ]; then
    echo "popup: npm run build (node-wasm + extension)"
    node scripts/build-extension.mjs || fail_setup "the extension did not build"
fi
[ -f "${CHORDIAL_EXTENSION_DIR:-dist/chrome}/node-wasm/chordial_node_wasm.js" ] || fail_setup "the extension has no node-wasm"

export CHORDIAL_ARTIFACTS="${CHORDIAL_LOG_DIR:-target/test-logs}/popup"
mkdir -p "$CHORDIAL_ARTIFACTS"
run_node_tests --netns tests/browser/popup.test.mjs
