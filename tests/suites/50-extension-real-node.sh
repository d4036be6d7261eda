#!/usr/bin/env bash
# Issue 7's browser scenarios with the real node: two_wallets_chat, offline_delivery, unapproved_and_spoofed,
# wallet_refuses, service_worker_restarts (tests/browser/extension-real.test.mjs), with dist/chrome (built
# with node-wasm) and a release chordial-server. Screenshots of the demo dApp and of the approval window go to
# $CHORDIAL_LOG_DIR/extension/; 'measure:' lines report requestAccess → first message delivered and the
# chordial_status round trip.
# chordial-needs: browsers netns
# chordial-timeout: 1500
set -uo pipefail
# shellcheck source=../../scripts/lib/suite.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/suite.sh"

suite_build server extension
suite_artifacts extension
suite_node_tests tests/browser/extension-real.test.mjs
