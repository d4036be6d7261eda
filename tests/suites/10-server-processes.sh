#!/usr/bin/env bash
# chordial-needs: netns
# chordial-timeout: 1500
#
# chordial-server with real processes and real WebRTC (webrtc-rs), inside a private network namespace:
# ring_of_servers, bad_input, crash_and_restart, route_between_clients (server/tests/*.rs).
#
# The namespace has only `lo` (nothing can leave the machine) and its own PID namespace: when this suite
# ends, for any reason, every server and client process it started ends with it.
#
#   tests/suites/10-server-processes.sh                   # all four
#   tests/suites/10-server-processes.sh ring_of_servers   # some of them
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT" || exit 1

tests=("$@")
[ "${#tests[@]}" -eq 0 ] && tests=(ring_of_servers bad_input crash_and_restart route_between_clients)
args=()
for t in "${tests[@]}"; do args+=(--test "$t"); done

# Build outside the namespace (nothing to download inside it).
if ! cargo test -p chordial-server --features netns-tests "${args[@]}" --no-run; then
    echo "server: build failed"
    echo "0 passed, 1 failed"
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then ns=(unshare --net --pid --fork --mount-proc)
else ns=(unshare --user --map-root-user --net --pid --fork --mount-proc); fi

log="${CHORDIAL_LOG_DIR:-$ROOT/target/test-logs}/server-suite.out"
mkdir -p "$(dirname "$log")"
# --test-threads=1: the tests start many processes each; on two cores they run one at a time.
"${ns[@]}" sh -c 'ip link set lo up && exec cargo test --offline --no-fail-fast -p chordial-server --features netns-tests "$@" -- --test-threads=1' \
    sh "${args[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

read -r pass fail < <(sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$log" | awk '
    /test result: (ok|FAILED)\. [0-9]+ passed; [0-9]+ failed;/ {
        for (i = 1; i <= NF; i++) { if ($i ~ /^passed;/) p += $(i-1); if ($i ~ /^failed;/) f += $(i-1) }
    }
    END { print p + 0, f + 0 }')
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
if [ "$rc" -eq 0 ] && [ "$pass" -lt "${#tests[@]}" ]; then
    echo "server: expected ${#tests[@]} tests to run, saw $pass"
    fail=$((fail + 1)); rc=1
fi
echo "$pass passed, $fail failed"
exit "$rc"
