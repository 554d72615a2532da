#!/bin/sh
# bench-formats.sh — per-format figures (part of `make bench`):
#   1. packed dot-product throughput per format and ISA (tests/bench/bench_qdot.c): GB/s of
#      weights for generation, GMAC/s of the prompt-processing tiles; ggml types and the
#      non-ggml formats (INT-N, NF4, FP8, MXFP4); the grid i-quants' generation kernels against
#      ggml-cpu's own vec_dot (bench_iq.c);
#   2. quantize + statistics time per format (bench_quant.c);
#   3. for the ggml formats, on qb-docs-26m and the TinyLlama-shaped model: quantization time
#      against llama-quantize, pp/tg tokens/s against llama-bench on the file we wrote (same
#      file, same thread count), and llama-perplexity on our file against our perplexity;
#   4. the grid i-quants on the whole model: llama-imatrix's importance matrix (calib-docs.txt),
#      llama-quantize --imatrix's file per type (its default mix; IQ2_S as --pure IQ2_M with
#      Q8_0 token_embd / output), generation tg32 ours / llama-bench on that same file
#      (qb-docs-26m; TinyLlama too with BENCH_IQ_TINYLLAMA=1: llama-quantize takes ~15 min
#      per type there on 2 threads);
#   5. pp/tg of the non-ggml formats (bench_fmt_model.c: layer matrices quantized in memory,
#      with Q8_0 / Q4_0 quantized the same way as points of comparison; llama.cpp has no
#      counterpart).
# The machine may be shared: ours/theirs runs are interleaved (ours pp, theirs pp, ours tg,
# theirs tg, BENCH_ROUNDS times) and each figure is the median of the rounds; the load
# average is printed before and after. Without LLAMA_CPP_BIN only our side is printed.
#
# Environment: BUILD, QB_MODELS, QB_DATA, QB_BENCH_DIR, LLAMA_CPP_BIN, BENCH_THREADS (2),
#   BENCH_ROUNDS (3), BENCH_FORMATS (docs26m: every ggml weight type),
#   BENCH_FORMATS_TINY (TinyLlama: "Q8_0 Q4_0 Q4_K Q6_K"), BENCH_FORMATS_TINYLLAMA (1 = also
#   the 1.1B model), BENCH_FMT_FORMATS (non-ggml list for part 4), BENCH_PPL (1 = perplexity
#   on docs26m), BENCH_QDOT_REPS (5), BENCH_IQ_FORMATS (part 4: "IQ2_XXS IQ2_XS IQ2_S IQ1_S IQ1_M"),
#   BENCH_IQ_TINYLLAMA (0)
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
QB="$BUILD/quantbench"
MODELS=${QB_MODELS:-../shared/models}
DATA=${QB_DATA:-../shared/data}
DIR=${QB_BENCH_DIR:-$HOME/.cache/quantbench-bench}
T=${BENCH_THREADS:-2}
FORMATS=${BENCH_FORMATS:-"Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS IQ3_S IQ3_XXS TQ2_0 TQ1_0"}
FORMATS_TINY=${BENCH_FORMATS_TINY:-"Q8_0 Q4_0 Q4_K Q6_K"}
FMT_FORMATS=${BENCH_FMT_FORMATS:-"q8_0 q4_0 int8-channel int4-g128 int4-g32-asym int3-g128 nf4 nf4-dq fp8-e4m3 fp8-e5m2-channel mxfp4"}
ROUNDS=${BENCH_ROUNDS:-3}
LB=${LLAMA_CPP_BIN:-}
[ -n "$LB" ] && [ ! -x "$LB/llama-bench" ] && { echo "bench-formats: no llama-bench in $LB: comparison skipped"; LB=""; }
mkdir -p "$DIR" || exit 2
LIBS="$(pkg-config --libs cairo jansson libpcre2-8 lua5.4 ncursesw readline) -lunistring"
rc=0

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "== packed dot products, one thread (GB/s of weights; nc=1 generation, nc=4 prompt tile)"
# shellcheck disable=SC2086
if ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Isrc -Ikernels tests/bench/bench_qdot.c "$BUILD/libqb.a" $LIBS \
    -lm -lpthread -o "$BUILD/bench_qdot"; then
    "$BUILD/bench_qdot" "${BENCH_QDOT_REPS:-5}" || rc=1
fi

echo "== grid i-quants (IQ2_XXS .. IQ1_M), generation kernel against ggml-cpu's vec_dot, one thread"
# shellcheck disable=SC2086
if ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Isrc -Ikernels tests/bench/bench_iq.c "$BUILD/libqb.a" $LIBS \
    -lm -lpthread -ldl -o "$BUILD/bench_iq"; then
    LD_LIBRARY_PATH=${LB:-../peer/llama.cpp/build/bin} QB_GGML_CPU_LIB=${LB:-../peer/llama.cpp/build/bin}/libggml-cpu.so \
        "$BUILD/bench_iq" "${BENCH_QDOT_REPS:-5}" || rc=1
fi

echo "== quantize + full statistics of a 1536x512 tensor, $T threads (ms, limit 100)"
# shellcheck disable=SC2086
if ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Isrc -Ikernels tests/bench/bench_quant.c "$BUILD/libqb.a" $LIBS \
    -lm -lpthread -o "$BUILD/bench_quant"; then
    "$BUILD/bench_quant" --threads "$T" || rc=1
fi

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) printf "%.2f\n", v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && b > 0) printf "%.2f", a / b; else print "-" }'; }
ours_tps() { "$QB" bench "$1" "$2" "$3" "$4" 0 -t "$T" -r 2 --csv | awk -F, 'NR == 1 {print $4}'; }
llama_tps() { "$LB/llama-bench" -m "$1" "$2" "$3" "$4" 0 -t "$T" -r 2 -o csv 2>/dev/null | tail -1 | awk -F'"' '{print $(NF-3)}'; }

one_model() { # LABEL F16_GGUF FORMATS
    label=$1 src=$2 formats=$3
    echo "== $label: quantize (--pure), speed (median of $ROUNDS interleaved rounds), perplexity, $T threads; load: $(uptime | sed 's/.*load average: //')"
    printf '%-8s %9s %9s %6s | %9s %9s %6s | %9s %9s %6s | %9s %9s\n' type "ours(s)" "llama(s)" ratio \
        "pp ours" "pp llama" ratio "tg ours" "tg llama" ratio "ppl ours" "ppl llama"
    for f in $formats; do
        out="$DIR/$label-$f.gguf"
        t0=$(now)
        "$QB" quantize "$src" "$out" "$f" --pure -t "$T" >/dev/null 2>"$DIR/err.txt" || { cat "$DIR/err.txt"; rc=1; continue; }
        ours=$(secs "$t0" "$(now)")
        theirs=- qratio=-
        if [ -n "$LB" ]; then
            t0=$(now)
            "$LB/llama-quantize" --pure "$src" "$DIR/$label-$f-llama.gguf" "$f" "$T" >/dev/null 2>&1 &&
                theirs=$(secs "$t0" "$(now)") && qratio=$(ratio "$theirs" "$ours")
            rm -f "$DIR/$label-$f-llama.gguf"
        fi
        : >"$DIR/pp.txt"; : >"$DIR/tg.txt"; : >"$DIR/lpp.txt"; : >"$DIR/ltg.txt"
        i=0
        while [ "$i" -lt "$ROUNDS" ]; do
            ours_tps "$out" -p 128 -n >>"$DIR/pp.txt"
            [ -n "$LB" ] && llama_tps "$out" -p 128 -n >>"$DIR/lpp.txt"
            ours_tps "$out" -n 64 -p >>"$DIR/tg.txt"
            [ -n "$LB" ] && llama_tps "$out" -n 64 -p >>"$DIR/ltg.txt"
            i=$((i + 1))
        done
        pp=$(median <"$DIR/pp.txt") tg=$(median <"$DIR/tg.txt") lpp=$(median <"$DIR/lpp.txt") ltg=$(median <"$DIR/ltg.txt")
        rpp=$(ratio "$pp" "$lpp") rtg=$(ratio "$tg" "$ltg")
        ppl=- lppl=-
        if [ "$label" = docs26m ] && [ "${BENCH_PPL:-1}" = 1 ]; then
            ppl=$("$QB" ppl "$out" "$DATA/eval-docs.txt" --ctx 256 --chunks 40 -t "$T" 2>/dev/null | awk '/^PPL/ {print $3}')
            [ -n "$LB" ] && lppl=$("$LB/llama-perplexity" -m "$out" -f "$DATA/eval-docs.txt" -c 256 -b 256 --chunks 40 \
                -t "$T" 2>&1 | awk '/Final estimate/ {print $5}')
        fi
        printf '%-8s %9s %9s %6s | %9s %9s %6s | %9s %9s %6s | %9s %9s\n' "$f" "$ours" "$theirs" "$qratio" \
            "$pp" "$lpp" "$rpp" "$tg" "$ltg" "$rtg" "$ppl" "$lppl"
        rm -f "$out"
    done
    echo "(ratios: pp/tg ours / llama.cpp, quantization llama-quantize time / ours: above 1 means we are faster)"
}

iq_model() { # LABEL F16_GGUF IMATRIX_CHUNKS IMATRIX_CTX
    label=$1 src=$2
    [ -n "$LB" ] || { echo "== $label: grid i-quants against llama-bench skipped: LLAMA_CPP_BIN not set (llama-imatrix / llama-quantize write the files)"; return 0; }
    echo "== $label: grid i-quants, llama-quantize --imatrix's files, tg32 ours / llama-bench (median of $ROUNDS interleaved rounds), $T threads; load: $(uptime | sed 's/.*load average: //')"
    im="$DIR/$label-iq-imatrix.dat"
    "$LB/llama-imatrix" -m "$src" -f "$DATA/calib-docs.txt" -o "$im" --chunks "$3" -c "$4" -t "$T" >"$DIR/err.txt" 2>&1 ||
        { echo "llama-imatrix failed: $(tail -1 "$DIR/err.txt")"; rc=1; return; }
    printf '%-8s %9s %9s %6s\n' type "tg ours" "tg llama" ratio
    for f in ${BENCH_IQ_FORMATS:-IQ2_XXS IQ2_XS IQ2_S IQ1_S IQ1_M}; do
        out="$DIR/$label-$f.gguf"
        case $f in
        IQ2_S) set -- --pure --token-embedding-type q8_0 --output-tensor-type q8_0 --imatrix "$im" "$src" "$out" IQ2_M ;;
        *) set -- --imatrix "$im" "$src" "$out" "$f" ;;
        esac
        "$LB/llama-quantize" "$@" "$T" >"$DIR/err.txt" 2>&1 || { echo "llama-quantize $f failed: $(tail -1 "$DIR/err.txt")"; rc=1; continue; }
        : >"$DIR/tg.txt"; : >"$DIR/ltg.txt"
        i=0
        while [ "$i" -lt "$ROUNDS" ]; do
            ours_tps "$out" -n 32 -p >>"$DIR/tg.txt"
            llama_tps "$out" -n 32 -p >>"$DIR/ltg.txt"
            i=$((i + 1))
        done
        tg=$(median <"$DIR/tg.txt") ltg=$(median <"$DIR/ltg.txt")
        printf '%-8s %9s %9s %6s\n' "$f" "$tg" "$ltg" "$(ratio "$tg" "$ltg")"
        rm -f "$out"
    done
    rm -f "$im"
    echo "(IQ2_S: every matrix IQ2_S, llama-quantize --pure IQ2_M; the others: llama-quantize's mix for the type)"
}

fmt_model() { # LABEL F16_GGUF
    echo "== $1: non-ggml formats, layer matrices quantized in memory (embeddings/output stay F16), $T threads; load: $(uptime | sed 's/.*load average: //')"
    # shellcheck disable=SC2086
    if ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Isrc -Ikernels tests/bench/bench_fmt_model.c "$BUILD/libqb.a" $LIBS \
        -lm -lpthread -o "$BUILD/bench_fmt_model"; then
        printf '%-18s %7s %9s %9s\n' format bpw "pp t/s" "tg t/s"
        # shellcheck disable=SC2086
        "$BUILD/bench_fmt_model" "$2" $FMT_FORMATS -t "$T" -r "$ROUNDS" | awk -F, '{ printf "%-18s %7s %9s %9s\n", $1, $2, $3, $4 }' || rc=1
    fi
}

echo "== load before: $(uptime)"
one_model docs26m "$MODELS/qb-docs-26m/qb-docs-26m-f16.gguf" "$FORMATS"
iq_model docs26m "$MODELS/qb-docs-26m/qb-docs-26m-f16.gguf" 8 256
fmt_model docs26m "$MODELS/qb-docs-26m/qb-docs-26m-f16.gguf"
tiny="$DIR/tinyllama-synth-v1-f16.gguf"
if [ "${BENCH_FORMATS_TINYLLAMA:-1}" = 1 ] && [ -f "$tiny" ]; then
    one_model tinyllama "$tiny" "$FORMATS_TINY"
    [ "${BENCH_IQ_TINYLLAMA:-0}" = 1 ] && iq_model tinyllama "$tiny" 2 128
    fmt_model tinyllama "$tiny"
fi
echo "== load after: $(uptime)"
rm -f "$DIR"/docs26m-*.gguf "$DIR"/tinyllama-Q*.gguf "$DIR"/tinyllama-IQ*.gguf "$DIR/err.txt" "$DIR"/pp.txt "$DIR"/tg.txt \
    "$DIR"/lpp.txt "$DIR"/ltg.txt
exit $rc
