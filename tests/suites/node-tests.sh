# Helper for the suites that run `node --test` files (not a suite: it is not executable). Source it after
# setting SUITE (the name used in messages).

# Reports a setup failure the way a suite reports results, and stops the suite.
fail_setup() {
    echo "$SUITE: $*"
    echo "0 passed, 1 failed"
    exit 1
}

# run_node_tests [--netns] FILE...
# Runs node's test runner on FILEs — with --netns inside a fresh network namespace that has only loopback
# (CHORDIAL_NETNS=1 tells the tests they are in it), otherwise as is (such tests make their own namespace) —
# prints "N passed, N failed" from its TAP summary and returns its status.
run_node_tests() {
    local netns=0 log rc pass fail
    if [ "${1:-}" = --netns ]; then
        netns=1
        shift
    fi
    log=$(mktemp)
    if [ "$netns" = 1 ]; then
        unshare -n sh -c 'ip link set lo up && CHORDIAL_NETNS=1 exec node --test --test-reporter=tap --test-concurrency=1 "$@"' \
            sh "$@" 2>&1 | tee "$log"
    else
        node --test-reporter=tap "$@" 2>&1 | tee "$log"
    fi
    rc=${PIPESTATUS[0]}
    pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -1)
    fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -1)
    rm -f "$log"
    [ -n "$pass" ] || pass=0
    [ -n "$fail" ] || fail=0
    [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
    echo "$pass passed, $fail failed"
    return "$rc"
}
