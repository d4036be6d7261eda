#!/usr/bin/env bash
# chordial-needs: browsers netns
# chordial-timeout: 900
#
# Browser scenarios with the built web package (dist/node-wasm, release + wasm-opt) in real Chromium
# instances driven by playwright-core, each page with a test wallet (viem key in Node): see
# tests/browser/scenarios.mjs. The build runs outside; the scenarios run inside a private network namespace
# made here (only `lo`), so nothing leaves the machine; the server scenarios use a release chordial-server
# and the native test client (server/examples/native_client.rs). Prints "N passed, N failed".
set -uo pipefail
# shellcheck source=../../scripts/lib/suite.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/suite.sh"

# dist/node-wasm is part of the extension build (the one the extension suites use after this one).
suite_build extension server native-client
suite_run --netns node tests/browser/scenarios.mjs
