#!/usr/bin/env bash
# chordial-needs: browsers netns
# chordial-timeout: 900
#
# Browser scenarios with the built web package (dist/node-wasm, release + wasm-opt) in real Chromium
# instances driven by playwright-core, each page with a test wallet (viem key in Node): see
# tests/browser/scenarios.mjs. The build runs outside; the scenarios run inside a private network namespace
# made here (only `lo`), so nothing leaves the machine. With the server crate in the tree (or
# CHORDIAL_SERVER_BIN set) the server scenarios run too. Prints "N passed, N failed".
set -uo pipefail

ROOT="${CHORDIAL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
cd "$ROOT" || exit 1

if ! bash scripts/build-wasm.sh; then
    echo "browser-scenarios: wasm build failed"
    echo "0 passed, 1 failed"
    exit 1
fi
# The server scenarios (browsers_meet_through_a_server, browser_and_native_agree) run when the tree has the
# server crate: build the server and the native test client here (outside the namespace).
if [ -f server/Cargo.toml ] && [ -z "${CHORDIAL_SERVER_BIN:-}" ]; then
    if ! cargo build --release -q -p chordial-server --bin chordial-server --example native_client; then
        echo "browser-scenarios: chordial-server did not build"
        echo "0 passed, 1 failed"
        exit 1
    fi
fi
unshare -n sh -c 'ip link set lo up && exec node tests/browser/scenarios.mjs'
