#!/bin/sh
# bench-scan.sh — `make bench`: the sensitivity scan of qb-docs-26m (every linear tensor of the
# blocks, 42, quantized alone to one format, KLD and dPPL against the F16 model) at 16K
# evaluation tokens, twice in the same run: with every variant a whole forward pass
# (--no-reuse: one full pass per tensor) and with the reuse of the base's pass (variants
# resumed at their first changed point, the last layer trimmed to the scored rows); wall time,
# CPU time and load average of each, the mean cost per tensor as a fraction of a full forward
# pass (work counted in multiply-adds, see README "Sensitivity and mixed precision"), and
# whether the two tables agree. SCAN_BEFORE=path/to/quantbench adds a third run of another
# build (e.g. the previous release) in the same run. The ranked table goes to ${QB_BENCH_DIR}.
#
# Environment:
#   BUILD           build folder holding quantbench (default build)
#   QB_MODELS       shared models (default ../shared/models); QB_DATA shared text (../shared/data)
#   QB_BENCH_DIR    where the tables go (default ~/.cache/quantbench-bench)
#   SCAN_FORMAT     the setting (default q4_k); SCAN_TOKENS (16384); SCAN_THREADS (2)
#   SCAN_PER        tensor or layer (default tensor)
#   SCAN_BEFORE     another quantbench binary to time first (optional)
#   SCAN_PLAIN=0    skip the --no-reuse run
# Exit status: 0 on success, 1 when a scan failed or the tables differ, 2 on a setup problem.
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

# one_scan LABEL BINARY SUFFIX [OPTIONS...]: time one scan; its table in $OUT$SUFFIX.{txt,csv}
one_scan() {
    label=$1 bin=$2 sfx=$3
    shift 3
    load0=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(date +%s.%N)
    /usr/bin/time -f '%U %S' -o "$OUT$sfx.time" "$bin" scan "$MODEL" "$TEXT" --format "$FMT" --per "$PER" \
        --tokens "$TOK" -t "$T" --blocks-only --csv "$OUT$sfx.csv" "$@" > "$OUT$sfx.txt" 2>/dev/null ||
        { echo "bench-scan: $label scan failed"; return 1; }
    t1=$(date +%s.%N)
    load1=$(cut -d' ' -f1 /proc/loadavg)
    secs=$(echo "$t1 - $t0" | bc)
    cpu=$(awk '{ printf "%.0f", $1 + $2 }' "$OUT$sfx.time")
    cost=$(sed -n 's/^cost       \([0-9.]*\) of a full forward pass per unit (mean; \([0-9.]*\) with.*/\1 per tensor, \2 with the base/p' "$OUT$sfx.txt")
    echo "bench-scan: $label: ${secs} s wall, ${cpu} s CPU, load ${load0} -> ${load1}${cost:+, cost $cost}"
}

echo "bench-scan: qb-docs-26m, blocks' matrices one at a time ($PER) at $FMT, $TOK tokens, $T threads, $(nproc) cores"
if [ -n "${SCAN_BEFORE:-}" ]; then
    one_scan "before ($SCAN_BEFORE)" "$SCAN_BEFORE" -before || exit 1
fi
if [ "${SCAN_PLAIN:-1}" != 0 ]; then
    one_scan "a full pass per tensor (--no-reuse)" "$BUILD/quantbench" -plain --no-reuse || exit 1
fi
one_scan "reuse (default)" "$BUILD/quantbench" "" --json "$OUT.json" || exit 1
rows=$(($(wc -l < "$OUT.csv") - 1))
# same_table SUFFIX: the run's table equals the reuse run's in columns rank .. dppl (every printed digit)
same_table() {
    if [ "$(cut -d, -f1-18 "$OUT.csv" | md5sum)" = "$(cut -d, -f1-18 "$OUT$1.csv" | md5sum)" ]; then
        echo "bench-scan: the tables of '$1' and reuse agree ($rows rows, every printed digit)"
    else
        echo "bench-scan: the tables of '$1' and reuse DIFFER"; exit 1
    fi
}
[ "${SCAN_PLAIN:-1}" != 0 ] && same_table -plain
[ -n "${SCAN_BEFORE:-}" ] && same_table -before
echo "bench-scan: most sensitive:"; sed -n '6,10p' "$OUT.txt"
echo "bench-scan: table in $OUT.csv / $OUT.json"
