#!/bin/sh
# bench-estimate.sh — `make bench`: the Fisher estimate of the sensitivity scan against the exact
# scan (issue 16). For each model and format: the Fisher pass's wall time (one forward and one
# backward per calibration chunk), Spearman's rho of the estimated KLD against the exact scan's
# mean KLD, the exact scan's wall time; then the plan `search` makes from the estimate against
# the one it makes from exact measurement at the same budget, both evaluated on held-out text.
#
#   qb-docs-26m  calibration calib-docs.txt, exact scan on eval-docs.txt (64 chunks of 256 both);
#                q4_k, q3_k, int3-g128, all 44 matrices (token_embd and output included);
#                search on calib-docs.txt (4096 tokens) at llama-quantize's Q4_K_M and Q3_K_M
#                budgets, evaluated on eval-docs.txt.
#   stories260K  its only text, ppl-sample.txt, cut in two at a sentence: the first half
#                calibrates, the second is scanned (chunks of 64); q4_k, q3_k (its 64-wide rows
#                fall back to q5_0 / iq4_nl as llama-quantize does) and int3-g64 (int3-g128 needs
#                rows of 128).
#
# Environment:
#   BUILD (build), QB_MODELS (../shared/models), QB_DATA (../shared/data),
#   QB_BENCH_DIR (~/.cache/quantbench-bench): where the tables and logs go
#   EST_THREADS (2); EST_TOKENS (16384): calibration and scan tokens of qb-docs-26m
#   EST_FORMATS ("q4_k q3_k int3-g128"); EST_SEARCH (1): 0 skips the searches
# Exit status: 0 on success, 1 when a command failed, 2 on a setup problem.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
MODELS=${QB_MODELS:-../shared/models}
DATA=${QB_DATA:-../shared/data}
DIR=${QB_BENCH_DIR:-$HOME/.cache/quantbench-bench}
T=${EST_THREADS:-2}
TOK=${EST_TOKENS:-16384}
FORMATS=${EST_FORMATS:-"q4_k q3_k int3-g128"}
SEARCH=${EST_SEARCH:-1}
QB="$BUILD/quantbench"
DOCS="$MODELS/qb-docs-26m/qb-docs-26m-f16.gguf"
ST="$MODELS/stories260K"
[ -x "$QB" ] || { echo "bench-estimate: $QB missing (make first)"; exit 2; }
[ -f "$DOCS" ] || { echo "bench-estimate: $DOCS missing, skipped"; exit 2; }
mkdir -p "$DIR" || exit 2
fail=0
list=$(echo "$FORMATS" | tr ' ' ',')

# summary LOG NAME: the Fisher pass, then per format rho and the exact scan's time
summary() {
    sed -n 's/^fisher     .*: \([0-9]* chunks of [0-9]*\), .*; \([0-9.]*\) s$/bench-estimate: '"$2"' Fisher pass, \1: \2 s wall/p' "$1"
    sed -n 's/^estimate   \([0-9]*\) units in \([0-9.]*\) s.*/bench-estimate: '"$2"'   estimate of \1 units from it: \2 s/p' "$1" | head -1
    sed -n 's/^spearman   \([^:]*\): \([0-9]*\) units, rho(est KLD, KLD mean) \([0-9.-]*\),.*exact scan \([0-9.]*\) s$/bench-estimate: '"$2"'   \1: Spearman rho \3 over \2 units (exact scan: \4 s)/p' "$1"
}

echo "bench-estimate: qb-docs-26m, formats $FORMATS, $TOK calibration and $TOK scan tokens, $T threads"
LOG="$DIR/estimate-docs26m.txt"
"$QB" scan "$DOCS" "$DATA/eval-docs.txt" --estimate fisher --calib "$DATA/calib-docs.txt" --calib-tokens "$TOK" \
    --tokens "$TOK" --format "$list" -t "$T" --csv "$DIR/estimate-docs26m.csv" > "$LOG" 2>&1 || {
    echo "bench-estimate: scan failed: $(tail -1 "$LOG")"; fail=1; }
summary "$LOG" qb-docs-26m

if [ -f "$ST/stories260K.bin" ]; then
    awk 'BEGIN { RS = "\0" } { h = int(length($0) / 2); k = index(substr($0, h), ". ") + h; 
         printf "%s", substr($0, 1, k) > "'"$DIR"'/stories-a.txt"; printf "%s", substr($0, k + 1) > "'"$DIR"'/stories-b.txt" }' \
        "$ST/ppl-sample.txt"
    LOG="$DIR/estimate-stories260k.txt"
    "$QB" scan "$ST/stories260K.bin" "$DIR/stories-b.txt" --tokenizer "$ST/tok512.bin" --estimate fisher \
        --calib "$DIR/stories-a.txt" --ctx 64 --format q4_k,q3_k,int3-g64 -t "$T" --csv "$DIR/estimate-stories260k.csv" \
        > "$LOG" 2>&1 || { echo "bench-estimate: stories260K scan failed: $(tail -1 "$LOG")"; fail=1; }
    summary "$LOG" stories260K
fi

[ "$SEARCH" = 1 ] || exit $fail
# search: the plan from the estimate (nothing measured), the estimate plus two measured swap
# rounds, and the exact search; each evaluated on eval-docs.txt (64 chunks of 256)
for b in "Q4_K_M q3_k,q4_k,q5_k,q6_k" "Q3_K_M q2_k,q3_k,q4_k,q5_k,q6_k"; do
    set -- $b
    for how in fisher fisher-r2 exact; do
        case $how in fisher) opt="--estimate fisher" ;; fisher-r2) opt="--estimate fisher --rounds 2" ;; *) opt="" ;; esac
        LOG="$DIR/estimate-search-$1-$how.txt"
        t0=$(date +%s.%N)
        # shellcheck disable=SC2086
        "$QB" search "$DOCS" "$DATA/calib-docs.txt" --bpw-of "$1" --candidates "$2" --tokens 4096 \
            --eval "$DATA/eval-docs.txt" -t "$T" $opt > "$LOG" 2>&1 || { echo "bench-estimate: search failed: $(tail -1 "$LOG")"; fail=1; continue; }
        secs=$(echo "$(date +%s.%N) - $t0" | bc)
        kld=$(awk '$1 == "search" && NF == 7 { print $2 " bpw, KLD " $4 ", PPL " $7 }' "$LOG")
        ref=$(awk -v r="$1" '$1 == r && NF == 7 { print $4 }' "$LOG")
        echo "bench-estimate: search at $1's budget ($2), $how: $kld on eval-docs.txt (llama.cpp's $1: KLD $ref); ${secs} s wall"
    done
done
exit $fail
