#!/usr/bin/env bash
# The extension in real Chromium, its own flows (approval window, one signature, origin scoping, spoofing,
# service-worker restarts), with node-wasm replaced by a test double: tests/browser/extension-flows.test.mjs.
# Runs inside a private network namespace made here.
# chordial-needs: browsers netns
# chordial-timeout: 600
set -uo pipefail
cd "${CHORDIAL_ROOT:-$(dirname "$0")/../..}" || exit 1
SUITE=extension-flows
. tests/suites/node-tests.sh

echo "extension-flows: npm run build (node-wasm not needed here)"
CHORDIAL_SKIP_WASM=1 node scripts/build-extension.mjs || fail_setup "the extension did not build"
export CHORDIAL_ARTIFACTS="${CHORDIAL_LOG_DIR:-target/test-logs}/extension"
run_node_tests --netns tests/browser/extension-flows.test.mjs
