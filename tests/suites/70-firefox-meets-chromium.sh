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
SUITE=firefox
. tests/suites/node-tests.sh


[ -x "${CHORDIAL_FIREFOX:-/usr/bin/firefox-esr}" ] || fail_setup "no firefox-esr (bash scripts/setup.sh --browsers)"
echo "firefox: npm run build (node-wasm + dist/chrome + dist/firefox)"
node scripts/build-extension.mjs || fail_setup "the extension did not build"
echo "firefox: cargo build --release -p chordial-server"
cargo build --release -q -p chordial-server || fail_setup "chordial-server did not build"

export CHORDIAL_ARTIFACTS="${CHORDIAL_LOG_DIR:-target/test-logs}/firefox"
run_node_tests tests/browser/firefox.test.mjs
