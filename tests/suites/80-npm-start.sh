#!/usr/bin/env bash
# chordial-needs: browsers netns
# chordial-timeout: 600
#
# `npm start` itself, headless (no $DISPLAY), to completion: it must build, run the narrated walkthrough
# (two wallets approve, sign once, discover each other, chat; one goes offline and gets its stored message on
# return) inside a private network namespace, save its screenshots, stop everything it started, and say where
# to look next. Screenshots go to $CHORDIAL_LOG_DIR/start/demo-output/ (CHORDIAL_DEMO_OUTPUT). Prints
# "N passed, N failed" over the checks below.
set -uo pipefail
# shellcheck source=../../scripts/lib/suite.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/suite.sh"

out_dir="$CHORDIAL_LOG_DIR/start"
export CHORDIAL_DEMO_OUTPUT="$out_dir/demo-output"
rm -rf "$out_dir"
mkdir -p "$CHORDIAL_DEMO_OUTPUT"
log="$out_dir/npm-start.log"
stamp="$out_dir/.started"
touch "$stamp"

echo "$SUITE: npm start (DISPLAY unset), output in ${log#"$CHORDIAL_ROOT"/}"
t0=$SECONDS
env -u DISPLAY -u WAYLAND_DISPLAY npm start --silent 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
took=$((SECONDS - t0))
echo "$SUITE: npm start exited $rc after ${took}s"
# npm start builds the extension itself, with its own default bootstrap server: not the build that
# suite_build made for the other suites.
[ -z "${CHORDIAL_BUILT:-}" ] || rm -f "$CHORDIAL_BUILT/extension"

has() { grep -qF -- "$1" "$log"; }
suite_check "npm start exits 0" test "$rc" -eq 0
# shellcheck disable=SC2016 # $0 and $i are bash -c's own
suite_check "it narrates all ten steps" bash -c 'for i in $(seq 1 10); do grep -q "^\[$i/10\] " "$0" || exit 1; done' "$log"
if [ "$(id -u)" -eq 0 ]; then
    suite_check "as root it runs in a private network namespace (lo only)" has "Network: a private namespace with only loopback"
fi
suite_check "a message to the offline wallet is stored" grep -qE '\(offline\): ".*" — stored$' "$log"
suite_check "the stored message arrives on return, without a new signature" has "his wallet was not asked for anything"
stopped_all() {
    local line
    # On success "Done in N s. Stopped what it started: …", after a failure "Stopped what it started: …".
    line=$(grep -E "^(Done in .* )?Stopped what it started: " "$log") || return 1
    ! grep -q "could not stop" "$log" || return 1
    for what in "Alice's browser" "Bob's browser" "the demo dApp server" "the chordial-server"; do
        grep -qF "$what" <<<"$line" || return 1
    done
}
suite_check "it stops everything it started" stopped_all
# shellcheck disable=SC2016 # $0 is bash -c's own
suite_check "it says where to look next (dist/chrome, the server URL)" \
    bash -c 'grep -q "Load unpacked → .*dist/chrome" "$0" && grep -q -- "--listen 127.0.0.1:7700" "$0"' "$log"

png_ok() { # FILE: a real PNG of some substance, written by this run
    [ -f "$1" ] && [ "$1" -nt "$stamp" ] && [ "$(stat -c %s "$1")" -gt 10000 ] &&
        [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]
}
for shot in 01-demo-before-connecting 02-approval-window 03-alice-chat 04-bob-chat 05-alice-stored 06-bob-back; do
    suite_check "screenshot $shot.png" png_ok "$CHORDIAL_DEMO_OUTPUT/$shot.png"
done
suite_check "screenshot 07-popup.png" png_ok "$CHORDIAL_DEMO_OUTPUT/07-popup.png"
# Nothing it started is still running: its server's data dir and its browser profiles are named for it.
suite_check "no process of the walkthrough is left" \
    bash -c '! pgrep -af "chordial-demo-server-|chordial-alice-|chordial-bob-" | grep -v pgrep'

suite_report
