#!/bin/sh
# Measures ways to move binary data between a web page and the extension's offscreen document in Chromium
# (docs/extension.md, "Binary data across the extension's contexts"). Not part of npm test.
#   sh tests/browser/investigations/extension-binary-paths/run.sh [variants] [paths]   e.g. run.sh json,sc p1,p2
#   MIB=16 for a shorter run. Results: target/investigations/extension-binary-paths/results-*.json
cd "$(dirname "$0")" && exec unshare -n sh -c 'ip link set lo up && exec node run.mjs "$@"' sh "$@"
