#!/bin/sh
# bench-outlier.sh — figures for activation and KV-cache quantization on qb-docs-26m (part of
# `make bench`): KLD / PPL against the F16 model on eval-docs.txt (llama-perplexity protocol)
# for W8A8 (dynamic and static int8 activations), SmoothQuant W8A8 (α 0.5, with and without
# the wo / w_down folds; calibrated on calib-docs.txt), LLM.int8() at thresholds 4 / 6 / 8 with
# the outlier fraction per layer, int8 / int4 KV caches with their memory; then prompt and
# generation tokens/s of each against F16 and Q8_0 (one layer's matmul in thread CPU time, then
# the whole model in wall-clock time).
#
# Then the same 8-bit rows on stories260K (per channel; its README's sample text both
# calibrates and is evaluated, ctx 64), so both shared models have them.
#
# Environment: BUILD, QB_MODELS, QB_DATA, QB_BENCH_DIR, BENCH_THREADS (2),
#   OUTLIER_CHUNKS (16 chunks of 256), OUTLIER_CALIB_WINDOWS (16 windows of 256)
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
QB="$BUILD/quantbench"
MODELS=${QB_MODELS:-../shared/models}
DATA=${QB_DATA:-../shared/data}
DIR=${QB_BENCH_DIR:-$HOME/.cache/quantbench-bench}
T=${BENCH_THREADS:-2}
CH=${OUTLIER_CHUNKS:-16}
CW=${OUTLIER_CALIB_WINDOWS:-16}
M="$MODELS/qb-docs-26m/qb-docs-26m-f16.gguf"
EVAL="$DATA/eval-docs.txt"
CAL="$DATA/calib-docs.txt"
[ -f "$M" ] || { echo "bench-outlier: $M not found: skipped"; exit 0; }
mkdir -p "$DIR" || exit 2
CALIB="--calib $CAL --calib-windows $CW"
CTX=""

row() { # label, options...
    label=$1
    shift
    out=$("$QB" kld "$M" "$M" "$EVAL" --chunks "$CH" -t "$T" $CTX "$@" 2>/dev/null) || { echo "| $label | failed |"; return; }
    ppl=$(echo "$out" | awk '/^PPL\(other\)/ { print $3 }')
    kld=$(echo "$out" | awk '/^KLD mean/ { print $4 }')
    top=$(echo "$out" | awk '/^top-1/ { print $4 }')
    printf '| %-34s | %9s | %9s | %8s |\n' "$label" "$ppl" "$kld" "$top"
    echo "$out" | awk '/^LLM.int8|^  *[0-9]/' | sed 's/^/    /'
}

echo "== qb-docs-26m: activation / KV-cache quantization vs F16 ($CH chunks of 256, $T threads)"
base=$("$QB" ppl "$M" "$EVAL" --chunks "$CH" -t "$T" 2>/dev/null | awk '/^PPL/ { print $3 }')
echo "F16 PPL $base"
printf '| %-34s | %9s | %9s | %8s |\n' "setting" "PPL" "KLD" "top-1 %"
echo "|------------------------------------|-----------|-----------|----------|"
row "W8A8 dynamic (per-token)" --act int8
row "W8A8 static (per-tensor)" --act int8-static $CALIB
row "SmoothQuant a=0.5 W8A8" --smooth 0.5 $CALIB
row "SmoothQuant a=0.5 +wo/down W8A8" --smooth 0.5 --smooth-out $CALIB
row "SmoothQuant a=0.8 +wo/down W8A8" --smooth 0.8 --smooth-out $CALIB
row "SmoothQuant a=0.5 static" --smooth 0.5 --act int8-static $CALIB
row "SmoothQuant a=0.5 +wo/down static" --smooth 0.5 --smooth-out --act int8-static $CALIB
row "LLM.int8 threshold 4" --int8-outlier 4
row "LLM.int8 threshold 6" --int8-outlier 6
row "LLM.int8 threshold 8" --int8-outlier 8
row "KV cache int8" --kv int8
row "KV cache int4" --kv int4
"$QB" ppl "$M" "$EVAL" --chunks 1 --kv int8 2>&1 | grep '^KV cache'
"$QB" ppl "$M" "$EVAL" --chunks 1 --kv int4 2>&1 | grep '^KV cache'

echo "== one layer's matmul per mode, one thread, best of 11 in thread CPU time"
LIBS=$(pkg-config --libs cairo jansson libpcre2-8 lua5.4 ncursesw readline)
# shellcheck disable=SC2086
if ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Isrc -Ikernels tests/bench/bench_w8a8.c "$BUILD/libqb.a" $LIBS \
    -lm -lpthread -o "$BUILD/bench_w8a8"; then
    "$BUILD/bench_w8a8" 11
fi

echo "== whole model (pp128 / tg32, $T threads; wall clock, noisy on a shared machine)"
Q8="$DIR/qb-docs-26m-q8_0.gguf"
[ -f "$Q8" ] || "$QB" quantize "$M" "$Q8" Q8_0 >/dev/null 2>&1
bench() { # label, model, options...
    label=$1
    model=$2
    shift 2
    "$QB" bench "$model" -p 128 -n 32 -r 3 -t "$T" --csv "$@" 2>/dev/null | awk -F, -v l="$label" '{ printf "| %-28s | %6s | %10s ± %s |\n", l, $2, $4, $5 }'
}
bench "F16" "$M"
[ -f "$Q8" ] && bench "Q8_0" "$Q8"
bench "W8A8 dynamic" "$M" --act int8
bench "LLM.int8 threshold 6" "$M" --int8-outlier 6
bench "LLM.int8 threshold inf" "$M" --int8-outlier inf
bench "F16 + KV int8" "$M" --kv int8
bench "F16 + KV int4" "$M" --kv int4

S="$MODELS/stories260K/stories260K.bin"
if [ -f "$S" ]; then
    M=$S
    EVAL="$MODELS/stories260K/ppl-sample.txt"
    CTX="--ctx 64"
    CALIB="--calib $EVAL --calib-ctx 64"
    echo "== stories260K: 8-bit activation settings vs F32 (ctx 64, the first $CH chunks; calibrated on the evaluated text)"
    base=$("$QB" ppl "$M" "$EVAL" --ctx 64 --chunks "$CH" -t "$T" 2>/dev/null | awk '/^PPL/ { print $3 }')
    echo "F32 PPL $base"
    printf '| %-34s | %9s | %9s | %8s |\n' "setting" "PPL" "KLD" "top-1 %"
    echo "|------------------------------------|-----------|-----------|----------|"
    row "W8A8 dynamic (per-token)" --act int8
    row "W8A8 static (per-tensor)" --act int8-static $CALIB
    row "SmoothQuant a=0.5 W8A8" --smooth 0.5 $CALIB
    row "SmoothQuant a=0.5 +wo/down W8A8" --smooth 0.5 --smooth-out $CALIB
    row "LLM.int8 threshold 6" --int8-outlier 6
    bench "F32" "$M"
    bench "W8A8 dynamic" "$M" --act int8
    bench "LLM.int8 threshold 6" "$M" --int8-outlier 6
else
    echo "stories260K missing: its rows skipped"
fi
