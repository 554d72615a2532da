#!/bin/bash
# teacher-text.sh — text sampled from a model, to distil from when the calibration text is too
# short (LLM-QAT's data-free distillation: the student learns the teacher's distribution on the
# teacher's own samples). N sequences of up to LEN tokens, each from BOS alone, temperature 1,
# no top-k / top-p, seeds FIRST … FIRST+N−1 (`quantbench generate MODEL -p "" -n LEN --temp 1
# --seed S --no-echo`), each followed by a blank line, written in seed order after TEXT (when
# given) to OUT: the same bytes whatever JOBS.
# Usage: scripts/teacher-text.sh MODEL N OUT [TEXT]
# Environment: BUILD (build), LEN (256), FIRST (1), JOBS (the processor count; each sample runs
#   on one thread).
set -u
cd "$(dirname "$0")/.." || exit 2
[ $# -ge 3 ] || { echo "usage: scripts/teacher-text.sh MODEL N OUT [TEXT]" >&2; exit 2; }
MODEL=$1 N=$2 OUT=$3 TEXT=${4:-}
QB="${BUILD:-build}/quantbench"
LEN=${LEN:-256} FIRST=${FIRST:-1} JOBS=${JOBS:-$(nproc)}
case "$N$LEN$FIRST$JOBS" in *[!0-9]*) echo "teacher-text.sh: N, LEN, FIRST and JOBS are counts" >&2; exit 2 ;; esac
[ -n "$TEXT" ] && [ ! -r "$TEXT" ] && { echo "teacher-text.sh: $TEXT: cannot read" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qb-teacher.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT
# job j samples seeds FIRST + j·per … (a contiguous range), into its own file
per=$(((N + JOBS - 1) / JOBS))
for ((j = 0; j < JOBS; j++)); do
    (
        s=$((FIRST + j * per)) e=$((FIRST + (j + 1) * per - 1))
        [ $e -ge $((FIRST + N)) ] && e=$((FIRST + N - 1))
        for ((k = s; k <= e; k++)); do
            "$QB" generate "$MODEL" -p "" -n "$LEN" --temp 1 --seed "$k" --no-echo --threads 1 2>"$TMP/err.$j" ||
                { echo "teacher-text.sh: seed $k: $(tail -1 "$TMP/err.$j")" >&2; exit 1; }
            printf '\n\n'
        done >"$TMP/part.$j"
    ) &
done
fail=0
for ((j = 0; j < JOBS; j++)); do wait -n || fail=1; done
[ $fail -eq 0 ] || exit 1
{ [ -n "$TEXT" ] && cat "$TEXT"; for ((j = 0; j < JOBS; j++)); do cat "$TMP/part.$j"; done; } >"$OUT.tmp" &&
    mv "$OUT.tmp" "$OUT" || exit 1
echo "teacher-text.sh: $OUT: ${TEXT:+$TEXT and }$N samples of up to $LEN tokens from $MODEL ($(wc -c <"$OUT") bytes)"
