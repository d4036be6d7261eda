#!/usr/bin/env bash
# Chordial test runner (`npm test`): setup, then every test step; keeps going after a failure, then prints a
# summary table and, as the very last line, "N passed, N failed" (individual tests). Exits 1 if any step failed.
#
#   npm test                         # everything
#   npm test -- clippy test          # only these steps (names: see --list); setup still runs
#   npm test -- 60-popup             # one suite from tests/suites/ (its file name without .sh)
#   npm test -- --no-setup fmt       # skip setup
#   npm test -- --list               # list the steps that would run
#
# Steps, in order:
#   setup       scripts/setup.sh (+ --browsers / --netns when a selected suite asks for them)
#   fmt         cargo fmt --all --check
#   clippy      cargo clippy --workspace --all-targets -- -D warnings
#   test        cargo test --workspace --no-fail-fast
#   wasm        cargo check --target wasm32-unknown-unknown -p chordial-core -p chordial-node-wasm
#   js          node --test <test files under tests/js/>
#   jsfmt       npm run -s lint (prettier --check of the extension's JavaScript)
#   <suite>     each executable tests/suites/*.sh, in sorted order   (see docs/development.md)
#
# Each step's output is streamed and also written to target/test-logs/NN-<step>.log.
# Environment: CHORDIAL_STEP_TIMEOUT (seconds; default 0 = none, 1800 when CI is set) for the cargo/js steps;
#              CHORDIAL_SUITE_TIMEOUT (default 1200) for suites, overridable per suite by a header line.

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
# shellcheck source=setup.sh
source "$ROOT/scripts/setup.sh"
# shellcheck source=lib/test-results.sh
source "$ROOT/scripts/lib/test-results.sh"
chordial_ensure_cargo_path

LOG_DIR="${CHORDIAL_LOG_DIR:-$ROOT/target/test-logs}"
# In CI a hung step must not eat the whole 90-minute budget: 30 minutes per step unless told otherwise.
if [ -n "${CI:-}" ]; then STEP_TIMEOUT="${CHORDIAL_STEP_TIMEOUT:-1800}"; else STEP_TIMEOUT="${CHORDIAL_STEP_TIMEOUT:-0}"; fi
SUITE_TIMEOUT="${CHORDIAL_SUITE_TIMEOUT:-1200}"

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

# ---- arguments ---------------------------------------------------------------------------------------------
run_setup=1 list_only=0
selected=()
for arg in "$@"; do
    case "$arg" in
        --no-setup) run_setup=0 ;;
        --list) list_only=1 ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "test: unknown flag $arg (see --help)" >&2; exit 2 ;;
        *) selected+=("${arg%.sh}") ;;
    esac
done

# ---- the plan ----------------------------------------------------------------------------------------------
# Suites: executable tests/suites/*.sh, sorted bytewise. Non-executable files there are helpers, not suites.
suites=()
while IFS= read -r f; do
    [ -x "$f" ] && suites+=("$f")
done < <(LC_ALL=C find tests/suites -maxdepth 1 -type f -name '*.sh' | LC_ALL=C sort)

# The crates that must build for the browser.
wasm_pkgs=(-p chordial-core -p chordial-node-wasm)

# JS unit tests: the file names node --test itself recognises, under tests/js/.
js_files=()
while IFS= read -r f; do js_files+=("$f"); done < <(
    LC_ALL=C find tests/js -path '*/node_modules' -prune -o -type f \
        \( -name '*.test.js' -o -name '*.test.mjs' -o -name '*.test.cjs' \
        -o -name '*-test.js' -o -name '*-test.mjs' -o -name '*_test.js' -o -name '*_test.mjs' \
        -o -name 'test-*.js' -o -name 'test-*.mjs' -o -name 'test.js' -o -name 'test.mjs' \) \
        -print | LC_ALL=C sort)

suite_name() { local b; b=$(basename "$1"); printf '%s' "${b%.sh}"; }

# Whether a step runs: everything when no names were given, else only the named ones.
# "suites" selects all suites; a suite can also be named with or without its .sh.
is_selected() {
    local name="$1" kind="$2" s
    [ "${#selected[@]}" -eq 0 ] && return 0
    for s in "${selected[@]}"; do
        [ "$s" = "$name" ] && return 0
        [ "$kind" = suite ] && [ "$s" = suites ] && return 0
        [ "$kind" = suite ] && [ "$s" = "tests/suites/$name" ] && return 0
    done
    return 1
}

# Validate the names given on the command line.
if [ "${#selected[@]}" -gt 0 ]; then
    known=" fmt clippy test wasm js jsfmt suites "
    for s in "${suites[@]}"; do known+="$(suite_name "$s") tests/suites/$(suite_name "$s") "; done
    for s in "${selected[@]}"; do
        case "$known" in
            *" $s "*) ;;
            *) echo "test: unknown step '$s'; steps: fmt clippy test wasm js jsfmt suites$(
                for x in "${suites[@]}"; do printf ' %s' "$(suite_name "$x")"; done)" >&2
               exit 2 ;;
        esac
    done
fi

# A suite asks setup for system packages with a header line such as:   # chordial-needs: browsers netns
# and may set its own time limit (seconds) with:                        # chordial-timeout: 1800
suite_header() { # file key
    sed -n "1,30s/^#[[:space:]]*chordial-$2:[[:space:]]*//p" "$1" | head -n1
}
setup_flags=()
for s in "${suites[@]}"; do
    is_selected "$(suite_name "$s")" suite || continue
    for need in $(suite_header "$s" needs); do
        case "$need" in
            browsers) setup_flags+=(--browsers) ;;
            netns) setup_flags+=(--netns) ;;
            *) echo "test: $s asks for unknown setup part '$need' (known: browsers netns)" >&2 ;;
        esac
    done
done
# Extra setup flags from the environment, e.g. CHORDIAL_SETUP_FLAGS=--browsers.
# shellcheck disable=SC2206
[ -n "${CHORDIAL_SETUP_FLAGS:-}" ] && setup_flags+=(${CHORDIAL_SETUP_FLAGS})
# Deduplicate.
if [ "${#setup_flags[@]}" -gt 0 ]; then
    mapfile -t setup_flags < <(printf '%s\n' "${setup_flags[@]}" | awk '!seen[$0]++')
fi

if [ "$list_only" -eq 1 ]; then
    show() { printf '%-26s %s\n' "$1" "$2"; }
    [ "$run_setup" -eq 1 ] && show setup "bash scripts/setup.sh ${setup_flags[*]}"
    is_selected fmt step && show fmt "cargo fmt --all --check"
    is_selected clippy step && show clippy "cargo clippy --workspace --all-targets -- -D warnings"
    is_selected test step && show test "cargo test --workspace --no-fail-fast"
    is_selected wasm step && show wasm "cargo check --target wasm32-unknown-unknown ${wasm_pkgs[*]}"
    is_selected js step && show js "node --test ${js_files[*]}"
    is_selected jsfmt step && show jsfmt "npm run -s lint"
    for s in "${suites[@]}"; do
        is_selected "$(suite_name "$s")" suite && show "$(suite_name "$s")" "$s"
    done
    exit 0
fi

# ---- running steps -----------------------------------------------------------------------------------------
mkdir -p "$LOG_DIR"
rm -f "$LOG_DIR"/*.log

# Colour for people, plain text for CI logs (parsing strips colour codes either way).
if [ -t 1 ] && [ -z "${CI:-}" ] && [ -z "${NO_COLOR:-}" ]; then
    export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-always}"
fi

export CHORDIAL_ROOT="$ROOT" CHORDIAL_LOG_DIR="$LOG_DIR"
# The suites build the extension and the server once per run and share them (suite_build in
# scripts/lib/suite.sh): the first one to build a thing leaves a mark here.
export CHORDIAL_BUILT="$LOG_DIR/.built"
rm -rf "$CHORDIAL_BUILT"

names=() statuses=() secs=() passed=() failed=()
step_no=0
interrupted=0
trap 'interrupted=1' INT TERM

# run_step KIND NAME TIMEOUT_SECONDS COMMAND...   (KIND: step|suite; TIMEOUT 0 = none)
run_step() {
    local kind="$1" name="$2" limit="$3"; shift 3
    [ "$interrupted" -eq 1 ] && return
    step_no=$((step_no + 1))
    local log
    log=$(printf '%s/%02d-%s.log' "$LOG_DIR" "$step_no" "$(tr -c 'A-Za-z0-9._-' '_' <<<"$name" | sed 's/_$//')")
    printf '\n==> [%s] %s\n' "$name" "$*"
    local t0 t1 rc pid tail_pid
    t0=$EPOCHREALTIME
    # The step writes its log; `tail` streams it. `timeout` (limit 0 = none) puts the step in a process group
    # of its own, so a time-out or Ctrl-C ends the step with everything it started (servers, browsers...).
    : >"$log"
    timeout --kill-after=30 "$limit" "$@" </dev/null >"$log" 2>&1 &
    pid=$!
    tail -n +1 -s 0.2 -f --pid="$pid" "$log" &
    tail_pid=$!
    wait "$pid"
    rc=$?
    if [ "$interrupted" -eq 1 ]; then
        kill -TERM "$pid" 2>/dev/null
        wait "$pid"
        rc=130
    fi
    wait "$tail_pid" 2>/dev/null
    t1=$EPOCHREALTIME
    local status=ok
    if [ "$rc" -ne 0 ]; then
        status=FAIL
        [ "$limit" -gt 0 ] && [ "$rc" -eq 124 ] && status=TIMEOUT
        [ "$rc" -eq 124 ] && [ "$limit" -gt 0 ] && echo "==> [$name] timed out after ${limit}s"
        [ "$interrupted" -eq 1 ] && status=INTERRUPTED
    fi
    # How many tests passed and failed (scripts/lib/test-results.sh): a suite's own "N passed, N failed"
    # lines, else cargo's and node's result lines.
    local cnt_pass cnt_fail cnt_from
    read -r cnt_pass cnt_fail cnt_from < <(chordial_count_tests "$log" "$kind")
    # A failed step must count at least one failure (fmt, clippy, check, a build error, a crash...).
    if [ "$status" != ok ] && [ "$cnt_fail" -eq 0 ]; then
        cnt_fail=1
    fi
    names+=("$name"); statuses+=("$status")
    secs+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')")
    if [ "$cnt_from" != none ]; then passed+=("$cnt_pass"); else passed+=("-"); fi
    if [ "$cnt_from" != none ] || [ "$status" != ok ]; then failed+=("$cnt_fail"); else failed+=("-"); fi
    printf '==> [%s] %s in %ss (log: %s)\n' "$name" "$status" "${secs[-1]}" "${log#"$ROOT"/}"
}

fail_step() { # NAME REASON — a step that cannot run counts as one failed test
    names+=("$1"); statuses+=("FAIL"); secs+=("-"); passed+=("-"); failed+=(1)
    printf '\n==> [%s] FAIL: %s\n' "$1" "$2"
}

total_t0=$EPOCHREALTIME

if [ "$run_setup" -eq 1 ]; then
    run_step step setup 0 bash scripts/setup.sh "${setup_flags[@]}"
fi
# rustfmt colours its diff even into a file unless told not to.
fmt_color=()
[ "${CARGO_TERM_COLOR:-}" = always ] || fmt_color=(-- --color never)
is_selected fmt step && run_step step fmt "$STEP_TIMEOUT" cargo fmt --all --check "${fmt_color[@]}"
is_selected clippy step &&
    run_step step clippy "$STEP_TIMEOUT" cargo clippy --workspace --all-targets -- -D warnings
is_selected test step && run_step step test "$STEP_TIMEOUT" cargo test --workspace --no-fail-fast
is_selected wasm step &&
    run_step step wasm "$STEP_TIMEOUT" cargo check --target wasm32-unknown-unknown "${wasm_pkgs[@]}"
if is_selected js step; then
    # With no files node --test would look for tests everywhere (tests/browser/ too).
    if [ "${#js_files[@]}" -gt 0 ]; then
        run_step step js "$STEP_TIMEOUT" node --test "${js_files[@]}"
    else
        fail_step js "no test files under tests/js/"
    fi
fi
is_selected jsfmt step && run_step step jsfmt "$STEP_TIMEOUT" npm run -s lint
for s in "${suites[@]}"; do
    name=$(suite_name "$s")
    is_selected "$name" suite || continue
    limit=$(suite_header "$s" timeout)
    [[ "$limit" =~ ^[0-9]+$ ]] || limit="$SUITE_TIMEOUT"
    run_step suite "$name" "$limit" "./$s"
done

# ---- summary -----------------------------------------------------------------------------------------------
total_secs=$(awk -v a="$total_t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
sum_pass=0 sum_fail=0 steps_failed=0
# The STEP column fits the longest suite name (24 characters at least).
w=24
for n in "${names[@]}"; do [ "${#n}" -gt "$w" ] && w=${#n}; done
rule=$(printf '%*s' "$w" '' | tr ' ' -)
printf '\n%-*s %-11s %8s %8s %8s\n' "$w" STEP STATUS SECONDS PASSED FAILED
printf '%-*s %-11s %8s %8s %8s\n' "$w" "$rule" '-----------' '--------' '--------' '--------'
for i in "${!names[@]}"; do
    printf '%-*s %-11s %8s %8s %8s\n' "$w" "${names[$i]}" "${statuses[$i]}" "${secs[$i]}" "${passed[$i]}" \
        "${failed[$i]}"
    [[ "${passed[$i]}" =~ ^[0-9]+$ ]] && sum_pass=$((sum_pass + passed[i]))
    [[ "${failed[$i]}" =~ ^[0-9]+$ ]] && sum_fail=$((sum_fail + failed[i]))
    case "${statuses[$i]}" in ok) ;; *) steps_failed=$((steps_failed + 1)) ;; esac
done
printf '%-*s %-11s %8s\n' "$w" total "$([ "$steps_failed" -eq 0 ] && echo ok || echo "$steps_failed FAILED")" \
    "$total_secs"
[ "$interrupted" -eq 1 ] && echo "interrupted: later steps did not run"
echo "logs: ${LOG_DIR#"$ROOT"/}/"
echo "$sum_pass passed, $sum_fail failed"

[ "$interrupted" -eq 1 ] && exit 130
[ "$steps_failed" -eq 0 ] || exit 1
exit 0
