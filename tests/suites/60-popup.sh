#!/usr/bin/env bash
# The popup in Chromium with the real node (tests/browser/popup.test.mjs): popup_shows_the_ring (a
# chordial-server and two browsers: links with roles, ring markers, approved sites, Revoke → 4100),
# manual_pairing (two browsers, no server, offer and answer codes carried between their popups, messages both
# ways), popup_settings_restart_the_node. Builds chordial-server and the extension with node-wasm first
# (outside the namespace); runs inside a private network namespace (only `lo`). Screenshots (360×600) go to
# $CHORDIAL_LOG_DIR/popup/ (target/test-logs/popup/).
# chordial-needs: browsers netns
# chordial-timeout: 1200
set -uo pipefail
# shellcheck source=../../scripts/lib/suite.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/suite.sh"

suite_build server
# CHORDIAL_EXTENSION_DIR: test that build instead of dist/chrome.
[ -n "${CHORDIAL_EXTENSION_DIR:-}" ] || suite_build extension
suite_artifacts popup
suite_node_tests tests/browser/popup.test.mjs
