#!/bin/bash
# run-tests.sh — run every test suite (cmocka unit tests, CLI tests, Lua tests, tmux TUI tests),
# then print the totals, closing with exactly one line "N passed, N failed, N skipped".
# BUILD selects the build folder (build, build-san or build-tsan).
# --only NAME... runs just those unit tests (build/tests/NAME) and no script suites.
#
# Counting: a cmocka binary's "[  PASSED  ] N", "[  FAILED  ] N" and "[  SKIPPED ] N" summary
# lines; a script's TAP lines: "ok ... # SKIP reason" is a skip, other "ok" lines pass, "not ok"
# lines fail. A suite that exits non-zero without a failed line counts one failure. Whether a
# skip is acceptable is decided where its cause is known: a test whose only missing need is
# ../shared (models, data) fails instead of skipping when CI=true (tests/cli/lib.sh skip_fixture,
# tests/unit/testutil.h qbt_need); a missing llama.cpp peer stays a skip.
BUILD=${BUILD:-build}
only=()
if [ "${1:-}" = --only ]; then shift; only=("$@"); fi
export QB_MODELS=${QB_MODELS:-../shared/models}
export QB_DATA=${QB_DATA:-../shared/data}
export QB_BIN=${QB_BIN:-$BUILD/quantbench}
pass=0; fail=0; skipped=0; failed=()
# the unit tests of this tree: one binary per tests/unit/test-*.c (not whatever an older tree
# left in the build folder)
units=()
for src in tests/unit/test-*.c; do units+=("$BUILD/tests/$(basename "$src" .c)"); done
scripts=(tests/cli/*.sh tests/lua/*.sh tests/tui/*.sh)
if [ ${#only[@]} -gt 0 ]; then units=("${only[@]/#/$BUILD/tests/}"); scripts=(); fi
# sum N over the cmocka summary lines "[  WHAT ] N test(s)"; stdout and stderr may share a line,
# so match anywhere
cmocka_count() { grep -oE "\[  $1 *\] [0-9]+ test" | awk '{s+=$(NF-1)} END {print s+0}'; }
for t in "${units[@]}"; do
    case $t in *.d) continue ;; esac
    [ -x "$t" ] || { fail=$((fail + 1)); failed+=("$t (not built)"); continue; }
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | cmocka_count 'PASSED')
    f=$(printf '%s\n' "$out" | cmocka_count 'FAILED')
    s=$(printf '%s\n' "$out" | cmocka_count 'SKIPPED')
    pass=$((pass + p)); fail=$((fail + f)); skipped=$((skipped + s))
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then fail=$((fail + 1)); failed+=("$t (exit $rc)"); fi
    [ "$f" != 0 ] && failed+=("$t")
done
for t in "${scripts[@]}"; do
    [ -f "$t" ] || continue
    out=$(bash "$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    s=$(printf '%s\n' "$out" | grep -cE '^ok( [0-9]+)? .*# SKIP')
    p=$(( $(printf '%s\n' "$out" | grep -c '^ok ') - s ))
    f=$(printf '%s\n' "$out" | grep -c '^not ok ')
    pass=$((pass + p)); fail=$((fail + f)); skipped=$((skipped + s))
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then fail=$((fail + 1)); fi
    [ $rc -ne 0 ] && failed+=("$t")
done
echo
for f in "${failed[@]}"; do echo "FAILED: $f"; done
echo "[==========] all suites: $((pass + fail + skipped)) test(s) run."
echo "[  PASSED  ] $pass test(s)."
[ $skipped -gt 0 ] && echo "[  SKIPPED ] $skipped test(s)."
[ $fail -gt 0 ] && echo "[  FAILED  ] $fail test(s)."
echo "$pass passed, $fail failed, $skipped skipped"
[ $fail -eq 0 ]
