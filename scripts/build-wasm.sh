#!/usr/bin/env bash
# Builds the wasm node into a web-target package:
#   cargo build --profile wasm-release --target wasm32-unknown-unknown -p chordial-node-wasm  (LTO, Cargo.toml)
#   wasm-bindgen --target web  →  dist/node-wasm/
#   wasm-opt -Oz (npm binaryen)  on the .wasm
# and copies the hand-written TypeScript types beside the generated ones.
#
#   bash scripts/build-wasm.sh [--dev]     # --dev: debug build, no wasm-opt (fast, for tests)
#   OUT=dir bash scripts/build-wasm.sh     # another output folder (default dist/node-wasm)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=setup.sh
source "$ROOT/scripts/setup.sh"
chordial_ensure_cargo_path

profile=release
[ "${1:-}" = "--dev" ] && profile=dev
OUT="${OUT:-$ROOT/dist/node-wasm}"
dir=wasm-release
cargo_flags=(--profile wasm-release)
if [ "$profile" = dev ]; then dir=debug; cargo_flags=(); fi

want=$(chordial_wasm_bindgen_version "$ROOT")
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')
if [ "$have" != "$want" ]; then
    echo "build-wasm: wasm-bindgen $want is needed (found '${have:-none}'); run: bash scripts/setup.sh" >&2
    exit 1
fi

cargo build "${cargo_flags[@]}" --target wasm32-unknown-unknown -p chordial-node-wasm
rm -rf "$OUT"
mkdir -p "$OUT"
wasm-bindgen --target web --out-dir "$OUT" "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/$dir/chordial_node_wasm.wasm"
cp node-wasm/chordial-node.d.ts "$OUT/chordial-node.d.ts"

wasm="$OUT/chordial_node_wasm_bg.wasm"
if [ "$profile" = release ]; then
    opt="$ROOT/node_modules/.bin/wasm-opt"
    if [ ! -x "$opt" ]; then
        echo "build-wasm: $opt missing (npm binaryen devDependency); run: bash scripts/setup.sh" >&2
        exit 1
    fi
    # The features rustc's wasm32 target enables by default; wasm-opt must accept (and keep) them.
    "$opt" -Oz --strip-debug --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
        --enable-mutable-globals --enable-reference-types --enable-multivalue "$wasm" -o "$wasm.opt"
    mv "$wasm.opt" "$wasm"
fi
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "build-wasm: $wasm  ${raw} bytes, ${gz} bytes gzip ($profile)"
