# shellcheck shell=bash
# The one reader of test results, for scripts/test.sh and the suites (scripts/lib/suite.sh). Source it; it
# defines one function and runs nothing.
#
# chordial_count_tests FILE [MODE]
#   Prints "PASSED FAILED FROM" for the test output in FILE (colour codes and CRs are ignored):
#   - MODE suite: if FILE has lines holding only "N passed, N failed" (what a suite prints), their sums,
#     FROM = own;
#   - otherwise (and always for MODE step, the default): the sums of cargo's
#     "test result: ok|FAILED. X passed; Y failed; …" lines (unit, integration, doc and wasm-bindgen tests)
#     and node's "# pass X" / "# fail Y" (TAP) or "ℹ pass X" / "ℹ fail Y" (spec) lines, FROM = tests;
#     FROM = none when there are no such lines either (then PASSED and FAILED are 0).
chordial_count_tests() {
    local file="$1" mode="${2:-step}"
    sed 's/\x1b\[[0-9;]*[A-Za-z]//g; s/\r$//' "$file" | awk -v mode="$mode" '
        /^[[:space:]]*[0-9]+ passed, [0-9]+ failed[[:space:]]*$/ { op += $1; of += $3; own = 1; next }
        /test result: (ok|FAILED)\. [0-9]+ passed; [0-9]+ failed;/ {
            for (i = 2; i <= NF; i++) {
                if ($i ~ /^passed;/) p += $(i - 1)
                if ($i ~ /^failed;/) f += $(i - 1)
            }
            found = 1
        }
        /^(# |ℹ )pass [0-9]+$/ { p += $3; found = 1 }
        /^(# |ℹ )fail [0-9]+$/ { f += $3; found = 1 }
        END {
            if (mode == "suite" && own) print op + 0, of + 0, "own"
            else print p + 0, f + 0, (found ? "tests" : "none")
        }'
}
