#!/bin/bash
# test-teacher-text.sh — scripts/teacher-text.sh, the teacher's samples QAT distils from when the
# calibration text is short: the samples are `quantbench generate`'s (BOS alone, temperature 1,
# seeds 1…N, a blank line after each), the same bytes with one job or two, after TEXT when given;
# bad arguments and a model that cannot open fail with a message and leave no OUT.
. "$(dirname "$0")/lib.sh"
M=$QB_MODELS/qb-docs-26m/hf
C=$QB_DATA/calib-docs.txt
need_fixture "teacher-text.sh" "$M" "$C" || { finish; exit; }
export BUILD; BUILD=$(dirname "$QB_BIN")

for s in 1 2 3; do
    "$QB_BIN" generate "$M" -p "" -n 32 --temp 1 --seed $s --no-echo --threads 1 2>/dev/null; printf '\n\n'
done >"$TMP/want"
if LEN=32 JOBS=2 scripts/teacher-text.sh "$M" 3 "$TMP/two" >/dev/null 2>"$TMP/e" && cmp -s "$TMP/want" "$TMP/two" &&
   [ "$(wc -c <"$TMP/want")" -gt 60 ]; then ok "teacher-text.sh: three samples over two jobs are generate's, in seed order"
else not_ok "teacher-text.sh: three samples over two jobs" "$(tail -2 "$TMP/e")"; fi

if LEN=32 JOBS=1 scripts/teacher-text.sh "$M" 3 "$TMP/one" "$C" >/dev/null 2>"$TMP/e" &&
   cmp -s <(cat "$C" "$TMP/want") "$TMP/one"; then ok "teacher-text.sh: after TEXT, one job, the same samples"
else not_ok "teacher-text.sh: after TEXT, one job" "$(tail -2 "$TMP/e")"; fi

if ! scripts/teacher-text.sh "$M" x "$TMP/bad" 2>"$TMP/e" && grep -q "are counts" "$TMP/e" && [ ! -e "$TMP/bad" ]; then
    ok "teacher-text.sh: a count that is not a number is refused"
else not_ok "teacher-text.sh: a bad count" "$(tail -2 "$TMP/e")"; fi

if ! LEN=8 scripts/teacher-text.sh "$TMP/nothing" 2 "$TMP/bad" 2>"$TMP/e" && grep -q "seed 1: " "$TMP/e" && [ ! -e "$TMP/bad" ]; then
    ok "teacher-text.sh: a model that does not open fails with its message, no output"
else not_ok "teacher-text.sh: a model that does not open" "$(tail -2 "$TMP/e")"; fi
finish
