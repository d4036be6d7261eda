#!/usr/bin/env bash
# chordial-needs: netns
# chordial-timeout: 1500
#
# chordial-server with real processes and real WebRTC (webrtc-rs), inside a private network namespace:
# ring_of_servers, bad_input, crash_and_restart, route_between_clients, signal_limits, link_hoarding, under_attack
# (server/tests/*.rs).
#
# The namespace has only `lo` (nothing can leave the machine) and its own PID namespace: when this suite
# ends, for any reason, every server and client process it started ends with it.
#
#   tests/suites/10-server-processes.sh                   # all seven
#   tests/suites/10-server-processes.sh ring_of_servers   # some of them
set -uo pipefail
# shellcheck source=../../scripts/lib/suite.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/suite.sh"

tests=("$@")
[ "${#tests[@]}" -eq 0 ] && tests=(ring_of_servers bad_input crash_and_restart route_between_clients signal_limits link_hoarding under_attack)
args=(-p chordial-server --features netns-tests)
for t in "${tests[@]}"; do args+=(--test "$t"); done

# Built outside the namespace (nothing to download inside it).
cargo test "${args[@]}" --no-run || suite_fail "the server's process tests did not build"
# --test-threads=1: the tests start many processes each; on two cores they run one at a time.
suite_run --netns-pid --expect "${#tests[@]}" \
    cargo test --offline --no-fail-fast "${args[@]}" -- --test-threads=1
