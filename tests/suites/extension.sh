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

fail_setup() { echo "extension: $*"; echo "0 passed, 1 failed"; exit 1; }

[ -f node-wasm/Cargo.toml ] || fail_setup "no node-wasm crate"
[ -f server/Cargo.toml ] || fail_setup "no server crate"
echo "extension: cargo build --release -p chordial-server"
cargo build --release -q -p chordial-server || fail_setup "chordial-server did not build"
echo "extension: npm run build (node-wasm + extension)"
node scripts/build-extension.mjs || fail_setup "the extension did not build"
[ -f dist/chrome/node-wasm/chordial_node_wasm.js ] || fail_setup "dist/chrome has no node-wasm"

export CHORDIAL_ARTIFACTS="${CHORDIAL_LOG_DIR:-target/test-logs}/extension"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
unshare -n sh -c 'ip link set lo up && CHORDIAL_NETNS=1 exec node --test --test-concurrency=1 tests/browser/extension-real.test.mjs' \
    2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -1)
fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -1)
[ -n "$pass" ] || pass=0
[ -n "$fail" ] || fail=0
[ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
echo "$pass passed, $fail failed"
[ "$rc" -eq 0 ]
