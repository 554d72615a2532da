#!/bin/sh
# bench-formats.sh — per-format figures (part of `make bench`): packed dot-product throughput
# per format and ISA; quantize + statistics time per format; and for Q8_0, Q4_0, Q4_K and Q6_K
# on qb-docs-26m and the TinyLlama-shaped model: quantization time against llama-quantize,
# pp/tg tokens/s against llama-bench on the file we wrote, and llama-perplexity on our file
# against our own perplexity. Every llama.cpp figure is measured in the same run, same file,
# same thread count; without LLAMA_CPP_BIN only our side is printed.
#
# Environment: BUILD, QB_MODELS, QB_DATA, QB_BENCH_DIR, LLAMA_CPP_BIN, BENCH_THREADS (2),
#   BENCH_FORMATS ("Q8_0 Q4_0 Q4_K Q6_K"), BENCH_FORMATS_TINYLLAMA (1 = also the 1.1B model)
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
QB="$BUILD/quantbench"
MODELS=${QB_MODELS:-../shared/models}
DATA=${QB_DATA:-../shared/data}
DIR=${QB_BENCH_DIR:-$HOME/.cache/quantbench-bench}
T=${BENCH_THREADS:-2}
FORMATS=${BENCH_FORMATS:-"Q8_0 Q4_0 Q4_K Q6_K"}
LB=${LLAMA_CPP_BIN:-}
[ -n "$LB" ] && [ ! -x "$LB/llama-bench" ] && { echo "bench-formats: no llama-bench in $LB: comparison skipped"; LB=""; }
mkdir -p "$DIR" || exit 2
LIBS=$(pkg-config --libs jansson libpcre2-8 lua5.4 ncursesw readline)
rc=0

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "== packed dot products, one thread (GB/s of weights; nc=1 generation, nc=4 prompt tile)"
# shellcheck disable=SC2086
if ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Isrc -Ikernels tests/bench/bench_qdot.c "$BUILD/libqb.a" $LIBS \
    -lm -lpthread -o "$BUILD/bench_qdot"; then
    "$BUILD/bench_qdot" 5 || rc=1
fi

echo "== quantize + full statistics of a 1536x512 tensor, $T threads (ms, limit 100)"
# shellcheck disable=SC2086
if ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Isrc -Ikernels tests/bench/bench_quant.c "$BUILD/libqb.a" $LIBS \
    -lm -lpthread -o "$BUILD/bench_quant"; then
    "$BUILD/bench_quant" --threads "$T" || rc=1
fi

one_model() { # LABEL F16_GGUF
    label=$1 src=$2
    echo "== $label: quantize (--pure), speed, perplexity agreement, $T threads"
    printf '%-8s %12s %12s %7s | %10s %10s %6s | %10s %10s %6s | %9s %9s\n' type "ours(s)" "llama(s)" ratio \
        "pp ours" "pp llama" ratio "tg ours" "tg llama" ratio "ppl ours" "ppl llama"
    for f in $FORMATS; do
        out="$DIR/$label-$f.gguf"
        t0=$(now)
        "$QB" quantize "$src" "$out" "$f" --pure -t "$T" >/dev/null 2>"$DIR/err.txt" || { cat "$DIR/err.txt"; rc=1; continue; }
        ours=$(secs "$t0" "$(now)")
        theirs=- qratio=-
        if [ -n "$LB" ]; then
            t0=$(now)
            "$LB/llama-quantize" --pure "$src" "$DIR/$label-$f-llama.gguf" "$f" "$T" >/dev/null 2>&1 &&
                theirs=$(secs "$t0" "$(now)") && qratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", b / a }')
            rm -f "$DIR/$label-$f-llama.gguf"
        fi
        pp=$("$QB" bench "$out" -p 128 -n 0 -t "$T" -r 3 --csv | awk -F, '{print $4}')
        tg=$("$QB" bench "$out" -p 0 -n 64 -t "$T" -r 3 --csv | awk -F, '{print $4}')
        lpp=- ltg=- rpp=- rtg=- lppl=-
        if [ -n "$LB" ]; then
            lpp=$("$LB/llama-bench" -m "$out" -p 128 -n 0 -t "$T" -r 3 -o csv 2>/dev/null | tail -1 | awk -F'"' '{print $(NF-3)}')
            ltg=$("$LB/llama-bench" -m "$out" -p 0 -n 64 -t "$T" -r 3 -o csv 2>/dev/null | tail -1 | awk -F'"' '{print $(NF-3)}')
            rpp=$(awk -v a="$pp" -v b="$lpp" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
            rtg=$(awk -v a="$tg" -v b="$ltg" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        fi
        ppl=-
        if [ "$label" = docs26m ]; then
            ppl=$("$QB" ppl "$out" "$DATA/eval-docs.txt" --ctx 256 --chunks 40 -t "$T" 2>/dev/null | awk '/^PPL/ {print $3}')
            [ -n "$LB" ] && lppl=$("$LB/llama-perplexity" -m "$out" -f "$DATA/eval-docs.txt" -c 256 -b 256 --chunks 40 \
                -t "$T" 2>&1 | awk '/Final estimate/ {print $5}')
        fi
        printf '%-8s %12s %12s %7s | %10.1f %10s %6s | %10.1f %10s %6s | %9s %9s\n' "$f" "$ours" "$theirs" "$qratio" \
            "$pp" "$lpp" "$rpp" "$tg" "$ltg" "$rtg" "$ppl" "$lppl"
    done
    echo "(quantization ratio = llama-quantize time / ours: above 1 means we are faster)"
}

one_model docs26m "$MODELS/qb-docs-26m/qb-docs-26m-f16.gguf"
tiny="$DIR/tinyllama-synth-v1-f16.gguf"
if [ "${BENCH_FORMATS_TINYLLAMA:-1}" = 1 ] && [ -f "$tiny" ]; then
    one_model tinyllama "$tiny"
fi
rm -f "$DIR"/docs26m-*.gguf "$DIR"/tinyllama-Q*.gguf "$DIR/err.txt"
exit $rc
