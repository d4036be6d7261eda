#!/usr/bin/env bash
# Chordial demo (`npm start`): installs what is missing (scripts/setup.sh --browsers --netns), builds everything
# (node-wasm, the extension for Chrome and Firefox with the local server as its default bootstrap, a release
# chordial-server), then runs the demo (scripts/walkthrough.mjs):
#   - with a display ($DISPLAY set): a chordial-server on 127.0.0.1:7700, the demo dApp on 127.0.0.1:8080 and
#     Chromium with the extension on the demo page, until you close the browser;
#   - without one: a narrated headless walkthrough — two wallets approve, sign once, discover each other,
#     chat, one goes offline and gets its stored message on return — with screenshots in demo-output/.
#     As root it runs inside a private network namespace (loopback only): nothing leaves the machine.
# It stops everything it started and says where to look next.
#
#   npm start                     # setup + build + demo
#   npm start -- --no-setup       # skip setup
#   npm start -- --headless       # the walkthrough even with a display
#
# Environment: CHORDIAL_DEMO_OUTPUT (default demo-output/) for the screenshots.

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
# shellcheck source=setup.sh
source "$ROOT/scripts/setup.sh"
chordial_ensure_cargo_path

run_setup=1 headless=0
for arg in "$@"; do
    case "$arg" in
        --no-setup) run_setup=0 ;;
        --headless) headless=1 ;;
        -h|--help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "start: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "${DISPLAY:-}" ] || headless=1

say() { printf 'start: %s\n' "$*"; }
t0=$SECONDS

if [ "$run_setup" -eq 1 ]; then
    chordial_setup --browsers --netns || { echo "start: setup failed (see above)" >&2; exit 1; }
fi

# The extension's default bootstrap server is the local one npm start runs with a display (and the one the
# "next steps" tell you to start), so that dist/chrome loaded by hand finds it.
say "building the extension (node-wasm, dist/chrome, dist/firefox) with bootstrap http://127.0.0.1:7700"
CHORDIAL_BOOTSTRAP="http://127.0.0.1:7700" node scripts/build-extension.mjs ||
    { echo "start: the extension did not build" >&2; exit 1; }
say "building chordial-server (cargo build --release -p chordial-server)"
cargo build --release -q -p chordial-server || { echo "start: chordial-server did not build" >&2; exit 1; }
say "built in $((SECONDS - t0)) s"

if [ "$headless" -eq 0 ]; then
    say "a display is set ($DISPLAY): opening Chromium with the extension on the demo page"
    exec node scripts/walkthrough.mjs --display
fi

say "no display: running the headless walkthrough"
if [ "$(id -u)" -eq 0 ]; then
    # A private network namespace with only loopback: the browsers, the server and the demo talk over
    # 127.0.0.1 and nothing can reach any other host.
    exec unshare -n sh -c 'ip link set lo up && exec node scripts/walkthrough.mjs'
fi
if unshare -r -n true 2>/dev/null; then
    exec unshare -r -n sh -c 'ip link set lo up && exec node scripts/walkthrough.mjs'
fi
say "no private network namespace available (not root, no user namespaces): running on 127.0.0.1 only"
exec node scripts/walkthrough.mjs
