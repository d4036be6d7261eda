#!/usr/bin/env bash
# chordial-needs: browsers netns
# chordial-timeout: 600
#
# Issue 8's Firefox scenarios (tests/browser/firefox.test.mjs): dist/firefox in firefox-esr (puppeteer-core
# over WebDriver BiDi) meets dist/chrome in Chromium through a chordial-server on the demo dApp, then idles
# for 60 s and must keep its node. Uses the one extension build (node-wasm, both extensions) and the server,
# then runs inside a private network namespace with a veth pair of the test's own (made by the test file
# itself, which checks that it has exactly lo, v0 and v1). Prints "N passed, N failed".
set -uo pipefail
# shellcheck source=../../scripts/lib/suite.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/suite.sh"

[ -x "${CHORDIAL_FIREFOX:-/usr/bin/firefox-esr}" ] || suite_fail "no firefox-esr (bash scripts/setup.sh --browsers)"
suite_build extension server
suite_artifacts firefox
# Not suite_node_tests: Firefox needs a veth pair besides lo, so the test file makes its own namespace
# (tests/browser/lib/netns.mjs, enterNetns({veth: true})).
suite_run node --test-reporter=tap tests/browser/firefox.test.mjs
