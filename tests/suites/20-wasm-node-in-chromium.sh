#!/usr/bin/env bash
# chordial-needs: browsers netns
# chordial-timeout: 900
#
# The wasm node in headless Chromium: wasm-bindgen-test (node-wasm/tests/browser.rs and the shell's own
# browser tests) with chromedriver, configured by node-wasm/webdriver.json (mDNS candidates off, loopback
# candidates on, fake media permission). Everything runs inside a private network namespace made here:
# only `lo` exists in it, so nothing can leave the machine. Builds happen outside the namespace first
# (cargo may need the registry); the run inside is --offline.
set -uo pipefail
# shellcheck source=../../scripts/lib/suite.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/suite.sh"

cargo test --target wasm32-unknown-unknown -p chordial-node-wasm --no-run || suite_fail "build failed"
# chromedriver, Chromium and the test server all run in the namespace and end with it.
suite_run --netns env CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_TIMEOUT=180 \
    cargo test --offline --target wasm32-unknown-unknown -p chordial-node-wasm
