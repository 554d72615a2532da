#!/bin/sh
# bench-scan.sh — `make bench`: wall time of the sensitivity scan of qb-docs-26m (every linear
# tensor of the blocks, 42, quantized alone to one format, KLD and dPPL against the F16 model)
# at 16K evaluation tokens, plus the ranked table as CSV/JSON in ${QB_BENCH_DIR}.
#
# Environment:
#   BUILD           build folder holding quantbench (default build)
#   QB_MODELS       shared models (default ../shared/models); QB_DATA shared text (../shared/data)
#   QB_BENCH_DIR    where the tables go (default ~/.cache/quantbench-bench)
#   SCAN_FORMAT     the setting (default q4_k); SCAN_TOKENS (16384); SCAN_THREADS (2)
#   SCAN_PER        tensor or layer (default tensor)
# Exit status: 0 on success, 1 when the scan failed, 2 on a setup problem (model missing).
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
MODELS=${QB_MODELS:-../shared/models}
DATA=${QB_DATA:-../shared/data}
DIR=${QB_BENCH_DIR:-$HOME/.cache/quantbench-bench}
FMT=${SCAN_FORMAT:-q4_k}
TOK=${SCAN_TOKENS:-16384}
T=${SCAN_THREADS:-2}
PER=${SCAN_PER:-tensor}
MODEL="$MODELS/qb-docs-26m/qb-docs-26m-f16.gguf"
TEXT="$DATA/eval-docs.txt"
[ -f "$MODEL" ] || { echo "bench-scan: $MODEL missing, skipped"; exit 2; }
[ -x "$BUILD/quantbench" ] || { echo "bench-scan: $BUILD/quantbench missing (make first)"; exit 2; }
mkdir -p "$DIR" || exit 2
OUT="$DIR/scan-docs26m-$FMT-$PER"
t0=$(date +%s.%N)
"$BUILD/quantbench" scan "$MODEL" "$TEXT" --format "$FMT" --per "$PER" --tokens "$TOK" -t "$T" --blocks-only \
    --csv "$OUT.csv" --json "$OUT.json" > "$OUT.txt" || { echo "bench-scan: scan failed"; exit 1; }
t1=$(date +%s.%N)
rows=$(($(wc -l < "$OUT.csv") - 1))
secs=$(echo "$t1 - $t0" | bc)
echo "bench-scan: qb-docs-26m, $rows units ($PER) at $FMT, $TOK tokens, $T threads: ${secs} s wall"
echo "bench-scan: most sensitive:"; sed -n '5,9p' "$OUT.txt"
echo "bench-scan: table in $OUT.csv / $OUT.json"
