#!/usr/bin/env bash
# The extension in real Chromium, its own flows (approval window, one signature, origin scoping, spoofing,
# service-worker restarts), with node-wasm replaced by a test double: tests/browser/extension-flows.test.mjs.
# Runs inside a private network namespace made here.
# chordial-needs: browsers netns
# chordial-timeout: 600
set -uo pipefail
cd "${CHORDIAL_ROOT:-$(dirname "$0")/../..}" || exit 1

echo "extension-flows: npm run build (node-wasm not needed here)"
if ! CHORDIAL_SKIP_WASM=1 node scripts/build-extension.mjs; then
    echo "0 passed, 1 failed"
    exit 1
fi
export CHORDIAL_ARTIFACTS="${CHORDIAL_LOG_DIR:-target/test-logs}/extension"
log=$(mktemp)
unshare -n sh -c 'ip link set lo up && CHORDIAL_NETNS=1 exec node --test --test-concurrency=1 tests/browser/extension-flows.test.mjs' \
    2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -1)
fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -1)
rm -f "$log"
[ -n "$pass" ] || pass=0
[ -n "$fail" ] || fail=0
[ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
echo "$pass passed, $fail failed"
[ "$rc" -eq 0 ]
