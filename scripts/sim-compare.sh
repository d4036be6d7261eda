#!/usr/bin/env bash
# The oracle for restructurings and the speed benchmark of the simulator, in one sitting:
# builds chordial-sim at BASE (a git worktree under target/) and at the working tree, runs the same bench
# with both one after the other, and prints
#   - whether the two JSON reports are identical but for wall-clock fields and the crypto provider's name
#     (a restructuring must not change a single decision), with the diff if not;
#   - both runs' wall time and simulated node-seconds per wall second, and their ratio.
#
#   scripts/sim-compare.sh [--base REV] [--base-args "…"] [--new-args "…"] -- BENCH_ARGS…
#   scripts/sim-compare.sh --base 652b8ca --new-args "--crypto fast" -- --sizes 1024 --seed 1
#
# BENCH_ARGS go to both runs; --base-args / --new-args to one of them (e.g. a flag the base does not know).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

base=HEAD
base_args=""
new_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base=$2; shift 2 ;;
    --base-args) base_args=$2; shift 2 ;;
    --new-args) new_args=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "sim-compare: unknown option $1 (bench arguments go after --)" >&2; exit 2 ;;
  esac
done
command -v jq >/dev/null || { echo "sim-compare: installing jq (apt-get install -y jq)"; apt-get install -y -q jq >/dev/null; }

rev=$(git rev-parse --short "$base")
out="target/sim-compare/$rev"
mkdir -p "$out"
if [ ! -x "$out/chordial-sim" ]; then
  tree="$out/tree"
  rm -rf "$tree"
  git worktree prune
  git worktree add --detach "$tree" "$rev" >/dev/null
  echo "sim-compare: building chordial-sim at $rev"
  (cd "$tree" && CARGO_TARGET_DIR="$PWD/../target" cargo build -q --release -p chordial-sim)
  cp "$out/target/release/chordial-sim" "$out/chordial-sim"
  git worktree remove --force "$tree"
fi
echo "sim-compare: building chordial-sim of the working tree"
cargo build -q --release -p chordial-sim
cp target/release/chordial-sim target/sim-compare/new-chordial-sim

# shellcheck disable=SC2086 # the extra argument strings are meant to split into words
"$out/chordial-sim" bench "$@" $base_args --json "$out/base.json" >"$out/base.log" 2>&1
# shellcheck disable=SC2086
target/sim-compare/new-chordial-sim bench "$@" $new_args --json "$out/new.json" >"$out/new.log" 2>&1

decisions() { jq -S 'map(del(.wall_s, .sim_node_seconds_per_wall_second, .crypto))' "$1"; }
if diff <(decisions "$out/base.json") <(decisions "$out/new.json") >"$out/diff.txt"; then
  echo "decisions: identical (JSON equal but for wall_s, sim_node_seconds_per_wall_second, crypto)"
else
  echo "decisions: DIFFERENT ($(wc -l <"$out/diff.txt") diff lines in $out/diff.txt)"
  head -40 "$out/diff.txt"
fi
jq -r --slurpfile new "$out/new.json" '
  to_entries[] | .value as $b | $new[0][.key] as $n |
  "N=\($b.n): wall \($b.wall_s | floor) s -> \($n.wall_s | floor) s; node-s per wall s \($b.sim_node_seconds_per_wall_second | floor) -> \($n.sim_node_seconds_per_wall_second | floor) (\(($n.sim_node_seconds_per_wall_second / $b.sim_node_seconds_per_wall_second) * 100 | floor / 100)x)"
' "$out/base.json"
