#!/usr/bin/env bash
# The crypto a node does per message, in wasm (node-wasm/benches/crypto.rs): criterion from
# wasm-bindgen-test, run by wasm-bindgen-test-runner in Node's V8 (Chromium's engine), no network.
# Prints criterion's times: the session's seal + open beside today's one-shot seal + open, the handshake,
# and ChaCha20-Poly1305 against AES-256-GCM.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The runner keeps criterion's baseline in <crate>/target unless told: keep it in the workspace's target/.
mkdir -p target/bench
export WASM_BINDGEN_BENCH_RESULT="$ROOT/target/bench/wasm-crypto-baseline.json"
cargo bench --target wasm32-unknown-unknown -p chordial-node-wasm --bench crypto "$@" 2>&1 \
  | sed 's/\x1b\[[0-9;]*m//g' | grep -E '^wasm_|time:|result'
