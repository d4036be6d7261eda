#!/usr/bin/env bash
# The browser benchmark (npm run bench:browser): builds the web package, then runs tests/browser/bench.mjs
# in one headless Chromium inside a private network namespace (only `lo`). Prints a table and writes
# target/bench/browser.json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/build-wasm.sh
unshare -n sh -c 'ip link set lo up && exec node tests/browser/bench.mjs'
