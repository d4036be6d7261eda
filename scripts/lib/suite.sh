# shellcheck shell=bash
# What every suite in tests/suites/ does, in one place (docs/development.md, "Adding a suite"). A suite sources
# it first:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/suite.sh"
#
# which puts cargo on PATH, moves to the repository root, sets CHORDIAL_ROOT and CHORDIAL_LOG_DIR (test.sh
# sets them; a suite run by hand gets the same defaults) and SUITE (the file name without .sh, for messages),
# and defines:
#
#   suite_build WHAT...          build what the tests use, outside any namespace; each WHAT once per npm test
#   suite_run [opts] CMD...      run the tests, count them, print "N passed, N failed"; returns CMD's status
#   suite_node_tests FILE...     suite_run of `node --test` on FILEs in a private network namespace
#   suite_netns [--pid] CMD...   run CMD in a private network namespace (what suite_run --netns uses)
#   suite_check NAME CMD...      one check of the suite's own; suite_report prints their count and returns
#   suite_fail MESSAGE           stop before any test ran (a build failed...), counted as one failed test
#   suite_artifacts DIR          export CHORDIAL_ARTIFACTS=$CHORDIAL_LOG_DIR/DIR (screenshots...), created

# shellcheck source=test-results.sh
source "$(dirname "${BASH_SOURCE[0]}")/test-results.sh"
# shellcheck source=../setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/../setup.sh"
chordial_ensure_cargo_path

CHORDIAL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CHORDIAL_LOG_DIR="${CHORDIAL_LOG_DIR:-$CHORDIAL_ROOT/target/test-logs}"
export CHORDIAL_ROOT CHORDIAL_LOG_DIR
cd "$CHORDIAL_ROOT" || exit 1
SUITE="$(basename "$0" .sh)"

# suite_fail MESSAGE — reports a failure that happened before any test ran the way a suite reports its tests
# (one failed), and ends the suite.
suite_fail() {
    echo "$SUITE: $*"
    echo "0 passed, 1 failed"
    exit 1
}

# suite_build WHAT... — builds, outside any namespace (cargo and npm may need the network to fetch crates):
#   extension       node-wasm (release, wasm-opt), dist/node-wasm, dist/chrome, dist/firefox: `npm run build`
#                   with its defaults (no bootstrap server, no ICE servers)
#   server          target/release/chordial-server; not when CHORDIAL_SERVER_BIN names a binary
#   native-client   target/release/examples/native_client; not when CHORDIAL_NATIVE_CLIENT_BIN names one
# Under npm test each is built once: test.sh points CHORDIAL_BUILT at an empty directory per run, the first
# suite that builds a thing leaves a mark there, and later suites use what it built. A suite that rebuilds
# one of these differently (the npm start suite) removes its mark. Run by hand, a suite always builds.
# A failed build ends the suite (suite_fail).
suite_build() {
    local what cmd
    for what in "$@"; do
        case "$what" in
            extension) cmd=(node scripts/build-extension.mjs) ;;
            server)
                if [ -n "${CHORDIAL_SERVER_BIN:-}" ]; then
                    echo "$SUITE: server: not built, CHORDIAL_SERVER_BIN=$CHORDIAL_SERVER_BIN"
                    continue
                fi
                cmd=(cargo build --release -q -p chordial-server) ;;
            native-client)
                if [ -n "${CHORDIAL_NATIVE_CLIENT_BIN:-}" ]; then
                    echo "$SUITE: native-client: not built, CHORDIAL_NATIVE_CLIENT_BIN=$CHORDIAL_NATIVE_CLIENT_BIN"
                    continue
                fi
                cmd=(cargo build --release -q -p chordial-server --example native_client) ;;
            *) suite_fail "suite_build: unknown build '$what' (known: extension server native-client)" ;;
        esac
        if [ -n "${CHORDIAL_BUILT:-}" ] && [ -f "$CHORDIAL_BUILT/$what" ]; then
            echo "$SUITE: $what: built earlier in this run (${cmd[*]})"
            continue
        fi
        echo "$SUITE: $what: ${cmd[*]}"
        "${cmd[@]}" || suite_fail "$what did not build (${cmd[*]})"
        if [ -n "${CHORDIAL_BUILT:-}" ]; then
            mkdir -p "$CHORDIAL_BUILT" && : >"$CHORDIAL_BUILT/$what"
        fi
    done
}

# suite_netns [--pid] CMD... — runs CMD inside a new network namespace whose only interface is `lo` (brought
# up), so nothing CMD starts — browsers, servers, their mDNS and STUN — can reach any other host
# (shared/browser-testing.md); the namespace ends with CMD. CHORDIAL_NETNS=1 tells the tests they are in it.
# --pid: a PID namespace too, so every process CMD starts ends with it. Without root, a user namespace maps
# the caller to root first.
suite_netns() {
    local flags=(--net)
    if [ "${1:-}" = --pid ]; then
        flags+=(--pid --fork --mount-proc)
        shift
    fi
    [ "$(id -u)" -eq 0 ] || flags=(--user --map-root-user "${flags[@]}")
    unshare "${flags[@]}" sh -c 'ip link set lo up && exec env CHORDIAL_NETNS=1 "$@"' sh "$@"
}

# suite_run [--netns | --netns-pid] [--expect N] CMD... — runs CMD (through suite_netns with --netns, with
# suite_netns --pid with --netns-pid), its output shown as it comes, and counts its tests with the one reader
# (chordial_count_tests). If CMD printed "N passed, N failed" lines itself, those stand; otherwise it prints
# one from CMD's cargo or node results. Either way a failed CMD counts at least one failed test, and with
# --expect N fewer than N passed tests is a failure too (a test filter that matched nothing, say).
# Returns CMD's status (1 for a shortfall against --expect).
suite_run() {
    local ns=() expect=0 out rc pass fail from
    while [ "$#" -gt 0 ]; do
        case "$1" in
            --netns) ns=(suite_netns) ;;
            --netns-pid) ns=(suite_netns --pid) ;;
            --expect) expect="$2"; shift ;;
            *) break ;;
        esac
        shift
    done
    out=$(mktemp)
    "${ns[@]}" "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    read -r pass fail from < <(chordial_count_tests "$out" suite)
    rm -f "$out"
    local more_fail=0
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then more_fail=1; fi
    if [ "$rc" -eq 0 ] && [ "$pass" -lt "$expect" ]; then
        echo "$SUITE: expected $expect tests to pass, saw $pass"
        more_fail=1 rc=1
    fi
    if [ "$from" = own ]; then
        [ "$more_fail" -eq 0 ] || echo "0 passed, $more_fail failed"
    else
        echo "$pass passed, $((fail + more_fail)) failed"
    fi
    return "$rc"
}

# suite_node_tests FILE... — node's test runner on FILEs (TAP, one file at a time) inside suite_netns: the
# test files check that they are there (tests/browser/lib/netns.mjs) and do not make a namespace of their own.
suite_node_tests() {
    suite_run --netns node --test --test-reporter=tap --test-concurrency=1 "$@"
}

# suite_check NAME CMD... — one check of the suite's own: "ok   NAME" or "FAIL NAME", counted for suite_report.
suite_passed=0 suite_failed=0
suite_check() {
    local name="$1"
    shift
    if "$@"; then
        echo "ok   $name"
        suite_passed=$((suite_passed + 1))
    else
        echo "FAIL $name"
        suite_failed=$((suite_failed + 1))
    fi
}

# suite_report — prints "N passed, N failed" over the suite_check calls; returns 1 if any failed.
suite_report() {
    echo "$suite_passed passed, $suite_failed failed"
    [ "$suite_failed" -eq 0 ]
}

# suite_artifacts DIR — where the tests put screenshots and the like: $CHORDIAL_LOG_DIR/DIR, exported as
# CHORDIAL_ARTIFACTS and created.
suite_artifacts() {
    export CHORDIAL_ARTIFACTS="$CHORDIAL_LOG_DIR/$1"
    mkdir -p "$CHORDIAL_ARTIFACTS"
}
