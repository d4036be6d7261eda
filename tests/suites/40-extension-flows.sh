#!/usr/bin/env bash
# The extension in real Chromium, its own flows (approval window, one signature, origin scoping, spoofing,
# service-worker restarts), with node-wasm replaced by a test double: tests/browser/extension-flows.test.mjs
# copies dist/chrome and puts tests/browser/fake-node-wasm/ in as its node. Runs inside a private network
# namespace made here.
# chordial-needs: browsers netns
# chordial-timeout: 600
set -uo pipefail
# shellcheck source=../../scripts/lib/suite.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/suite.sh"

suite_build extension
suite_artifacts extension
suite_node_tests tests/browser/extension-flows.test.mjs
