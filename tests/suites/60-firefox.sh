#!/usr/bin/env bash
# chordial-needs: browsers netns
# chordial-timeout: 600
#
# Issue 8's Firefox scenarios (tests/browser/firefox.test.mjs): dist/firefox in firefox-esr (puppeteer-core
# over WebDriver BiDi) meets dist/chrome in Chromium through a chordial-server on the demo dApp, then idles
# for 60 s and must keep its node. Builds once (node-wasm, both extensions, the server), then runs inside a
# private network namespace with a veth pair of the test's own (made by the test file itself, which checks
# that it has exactly lo, v0 and v1). Prints "N passed, N failed".
set -uo pipefail
cd "${CHORDIAL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}" || exit 1

fail_setup() { echo "firefox: $*"; echo "0 passed, 1 failed"; exit 1; }

[ -x "${CHORDIAL_FIREFOX:-/usr/bin/firefox-esr}" ] || fail_setup "no firefox-esr (bash scripts/setup.sh --browsers)"
echo "firefox: npm run build (node-wasm + dist/chrome + dist/firefox)"
node scripts/build-extension.mjs || fail_setup "the extension did not build"
echo "firefox: cargo build --release -p chordial-server"
cargo build --release -q -p chordial-server || fail_setup "chordial-server did not build"

export CHORDIAL_ARTIFACTS="${CHORDIAL_LOG_DIR:-target/test-logs}/firefox"
log=$(mktemp)
node --test-reporter=tap tests/browser/firefox.test.mjs 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -1)
fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -1)
rm -f "$log"
[ -n "$pass" ] || pass=0
[ -n "$fail" ] || fail=0
[ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
echo "$pass passed, $fail failed"
[ "$rc" -eq 0 ]
