#!/usr/bin/env bash
# Issue 7's browser scenarios with the real node: two_wallets_chat, offline_delivery, unapproved_and_spoofed,
# wallet_refuses, service_worker_restarts (tests/browser/extension-real.test.mjs). Needs node-wasm
# (scripts/build-wasm.sh) and chordial-server; without them the scenarios FAIL. Screenshots of the demo dApp and
# of the approval window go to $CHORDIAL_LOG_DIR/extension/; 'measure:' lines report requestAccess → first
# message delivered and the chordial_status round trip.
# chordial-needs: browsers netns
# chordial-timeout: 1500
set -uo pipefail
cd "${CHORDIAL_ROOT:-$(dirname "$0")/../..}" || exit 1
SUITE=extension
. tests/suites/node-tests.sh


[ -f node-wasm/Cargo.toml ] || fail_setup "no node-wasm crate"
[ -f server/Cargo.toml ] || fail_setup "no server crate"
echo "extension: cargo build --release -p chordial-server"
cargo build --release -q -p chordial-server || fail_setup "chordial-server did not build"
echo "extension: npm run build (node-wasm + extension)"
node scripts/build-extension.mjs || fail_setup "the extension did not build"
[ -f dist/chrome/node-wasm/chordial_node_wasm.js ] || fail_setup "dist/chrome has no node-wasm"

export CHORDIAL_ARTIFACTS="${CHORDIAL_LOG_DIR:-target/test-logs}/extension"
run_node_tests --netns tests/browser/extension-real.test.mjs
