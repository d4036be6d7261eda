#!/usr/bin/env bash
# Chordial demo (`npm start`): installs what is missing (scripts/setup.sh, no browsers), then runs the demo.
# For now the demo is the core walkthrough example (core/examples/walkthrough.rs): a scripted tour of the
# protocol on in-memory nodes. It grows into the full extension demo later.
#
#   npm start                # setup + demo
#   npm start -- --no-setup  # demo only

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
# shellcheck source=setup.sh
source "$ROOT/scripts/setup.sh"
chordial_ensure_cargo_path

run_setup=1
for arg in "$@"; do
    case "$arg" in
        --no-setup) run_setup=0 ;;
        -h|--help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "start: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$run_setup" -eq 1 ]; then
    chordial_setup || { echo "start: setup failed (see above)" >&2; exit 1; }
fi

if [ ! -f core/examples/walkthrough.rs ]; then
    echo "start: the demo is not written yet (core/examples/walkthrough.rs does not exist)." >&2
    echo "start: meanwhile, 'npm test' runs every test." >&2
    exit 1
fi

echo "start: building and running the walkthrough (cargo run -p chordial-core --example walkthrough)"
exec cargo run -q -p chordial-core --example walkthrough
