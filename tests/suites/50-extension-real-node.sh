#!/usr/bin/env bash
# Issue 7's browser scenarios with the real node: two_wallets_chat, offline_delivery, unapproved_and_spoofed,
# wallet_refuses, service_worker_restarts (tests/browser/extension-real.test.mjs). Needs node-wasm
# (scripts/build-wasm.sh) and chordial-server; without them the scenarios FAIL. Screenshots of the demo dApp and
# of the approval window go to $CHORDIAL_LOG_DIR/extension/; 'measure:' lines report requestAccess → first
# message delivered and the chordial_status round trip.
# chordial-needs: browsers netns
# chordial-timeout: 1500
set -uo pipefail
# shellcheck source=../../scripts/lib/suite.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/suite.sh"

[ -f node-wasm/Cargo.toml ] || suite_fail "no node-wasm crate"
[ -f server/Cargo.toml ] || suite_fail "no server crate"
suite_build server extension
[ -f dist/chrome/node-wasm/chordial_node_wasm.js ] || suite_fail "dist/chrome has no node-wasm"

suite_artifacts extension
suite_node_tests tests/browser/extension-real.test.mjs
