#!/bin/bash
# run-tests.sh — run every test suite (cmocka unit tests, CLI tests, Lua tests, tmux TUI tests),
# then print the totals as one closing line "N passed, N failed".
# BUILD selects the build folder (build, build-san or build-tsan).
# --only NAME... runs just those unit tests (build/tests/NAME) and no script suites.
BUILD=${BUILD:-build}
only=()
if [ "${1:-}" = --only ]; then shift; only=("$@"); fi
export QB_MODELS=${QB_MODELS:-../shared/models}
export QB_DATA=${QB_DATA:-../shared/data}
export QB_BIN=${QB_BIN:-$BUILD/quantbench}
pass=0; fail=0; failed=()
units=("$BUILD"/tests/test-*)
scripts=(tests/cli/*.sh tests/lua/*.sh tests/tui/*.sh)
if [ ${#only[@]} -gt 0 ]; then units=("${only[@]/#/$BUILD/tests/}"); scripts=(); fi
for t in "${units[@]}"; do
    case $t in *.d) continue ;; esac
    [ -x "$t" ] || continue
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    # cmocka's summary lines; stdout and stderr may share a line, so match anywhere
    p=$(printf '%s\n' "$out" | grep -oE '\[  PASSED  \] [0-9]+ test' | awk '{s+=$4} END {print s+0}')
    f=$(printf '%s\n' "$out" | grep -oE '\[  FAILED  \] [0-9]+ test' | awk '{s+=$4} END {print s+0}')
    pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then fail=$((fail + 1)); failed+=("$t (exit $rc)"); fi
    [ "$f" != 0 ] && failed+=("$t")
done
for t in "${scripts[@]}"; do
    [ -f "$t" ] || continue
    out=$(bash "$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | grep -c '^ok ')
    f=$(printf '%s\n' "$out" | grep -c '^not ok ')
    pass=$((pass + p)); fail=$((fail + f))
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then fail=$((fail + 1)); fi
    [ $rc -ne 0 ] && failed+=("$t")
done
echo
for f in "${failed[@]}"; do echo "FAILED: $f"; done
echo "[==========] all suites: $((pass + fail)) test(s) run."
echo "[  PASSED  ] $pass test(s)."
[ $fail -gt 0 ] && echo "[  FAILED  ] $fail test(s)."
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
