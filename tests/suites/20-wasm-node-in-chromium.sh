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

ROOT="${CHORDIAL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
cd "$ROOT" || exit 1
# shellcheck source=../../scripts/setup.sh
source "$ROOT/scripts/setup.sh"
chordial_ensure_cargo_path

if ! cargo test --target wasm32-unknown-unknown -p chordial-node-wasm --no-run; then
    echo "wasm-browser: build failed"
    echo "0 passed, 1 failed"
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# unshare -n: a new, empty network namespace; it (and chromedriver, Chromium, the test server in it) ends
# with this command.
unshare -n sh -c 'ip link set lo up && exec env CHROMEDRIVER=/usr/bin/chromedriver \
    WASM_BINDGEN_TEST_TIMEOUT=180 cargo test --offline --target wasm32-unknown-unknown \
    -p chordial-node-wasm' 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

read -r pass fail < <(sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$log" | awk '
    /test result: (ok|FAILED)\. [0-9]+ passed; [0-9]+ failed;/ {
        for (i = 1; i <= NF; i++) { if ($i ~ /^passed;/) p += $(i - 1); if ($i ~ /^failed;/) f += $(i - 1) }
    }
    END { print p + 0, f + 0 }')
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
echo "$pass passed, $fail failed"
[ "$rc" -eq 0 ]
