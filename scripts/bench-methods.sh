#!/bin/sh
# bench-methods.sh — the method comparison table (part of `make bench`): RTN, GPTQ and AWQ at
# the same formats, measured in memory by `quantbench methods` against the unquantized model
# on held-out text: bits per weight, perplexity, KLD, top-1 agreement, quantization time and
# single-token decode speed.
#   qb-docs-26m: calibrate on calib-docs.txt (32 windows of 256 tokens, as the GPTQ fixture), evaluate on
#     eval-docs.txt (llama-perplexity protocol, ctx 256, 40 chunks); 4-bit and 3-bit group 128
#     (integer groups, asymmetric) and the ggml block formats Q4_0 and Q4_K.
#   stories260K: rows of 64 and 172 only, so per channel; its README's sample text, first 60%
#     calibrates, the rest is evaluated (ctx 64).
# GPTQ runs with act-order (packed formats keep groups of consecutive columns: their scales
# are chosen from the original weights, "static groups"). AWQ runs as the authors' code does:
# α searched on 20 points, then the clipping search per quantization group (all matrices but
# wq / wk); BENCH_METHODS=rtn,gptq,awq,awq-noclip adds AWQ's scale search alone.
# Learned rounding (SignRound block by block, learned.h) against RTN and GPTQ: qb-docs-26m at
# Q3_K and Q2_K (llama.cpp's k-quants; each method also with the calibration's importance, -w:
# GPTQ's group scales, learned rounding's starting quantization), then int2-g64 and
# int3-g128-asym; 20 steps of 4 windows per block, 40 evaluation chunks; several minutes per
# learned row on 2 cores (BENCH_LEARNED=0 skips it).
# Environment: BUILD, QB_MODELS, QB_DATA, BENCH_THREADS (2), BENCH_METHODS_FORMATS (qb-docs list),
#   BENCH_METHODS (rtn,gptq,awq), BENCH_METHODS_CHUNKS (160 evaluation chunks of 256 tokens on qb-docs-26m),
#   BENCH_LEARNED (1), BENCH_LEARNED_KQUANTS (q3_k,q2_k), BENCH_LEARNED_INTS (int2-g64,int3-g128-asym),
#   BENCH_LEARNED_ITERS (20).
# 40 chunks (10K tokens) resolve KLD differences but not PPL differences of ~0.1: at int4-g128
# AWQ was 0.11 PPL above RTN on 40 chunks (KLD 0.062 vs 0.068) and 0.15 below it on 160
# (KLD 0.059 vs 0.066); use BENCH_METHODS_CHUNKS=160 (or 0: the whole text) for PPL orderings.
set -u
cd "$(dirname "$0")/.." || exit 2
QB="${BUILD:-build}/quantbench"
MODELS=${QB_MODELS:-../shared/models}
DATA=${QB_DATA:-../shared/data}
T=${BENCH_THREADS:-2}
METHODS=${BENCH_METHODS:-rtn,gptq,awq}
rc=0
echo "== methods: stories260K (per channel)"
if [ -f "$MODELS/stories260K/stories260K.bin" ]; then
    "$QB" methods "$MODELS/stories260K/stories260K.bin" -t "$T" --calib "$MODELS/stories260K/ppl-sample.txt" \
        --eval "$MODELS/stories260K/ppl-sample.txt" --ctx 64 --gen 256 --act-order --methods "$METHODS" \
        --formats int4-channel,int3-channel || rc=1
else
    echo "stories260K missing: skipped"
fi
echo "== methods: qb-docs-26m (group 128, ggml blocks)"
if [ -d "$MODELS/qb-docs-26m/hf" ]; then
    "$QB" methods "$MODELS/qb-docs-26m/hf" -t "$T" --calib "$DATA/calib-docs.txt" --eval "$DATA/eval-docs.txt" \
        --samples 32 --ctx 256 --chunks "${BENCH_METHODS_CHUNKS:-160}" --gen 16 --act-order --methods "$METHODS" \
        --formats "${BENCH_METHODS_FORMATS:-int4-g128-asym,int3-g128-asym,q4_0,q4_k}" || rc=1
else
    echo "qb-docs-26m missing: skipped"
fi
if [ "${BENCH_LEARNED:-1}" != 0 ]; then
    echo "== methods: learned rounding, qb-docs-26m (ggml k-quants, 2-bit groups)"
    if [ -d "$MODELS/qb-docs-26m/hf" ]; then
        for set in "${BENCH_LEARNED_KQUANTS:-q3_k,q2_k}:rtn,gptq,learned,gptq-w,learned-w" \
                   "${BENCH_LEARNED_INTS:-int2-g64,int3-g128-asym}:rtn,gptq,learned"; do
            "$QB" methods "$MODELS/qb-docs-26m/hf" -t "$T" --calib "$DATA/calib-docs.txt" --eval "$DATA/eval-docs.txt" \
                --samples 32 --ctx 256 --chunks 40 --gen 16 --act-order --methods "${set#*:}" \
                --iters "${BENCH_LEARNED_ITERS:-20}" --batch 4 --formats "${set%%:*}" || rc=1
        done
    else
        echo "qb-docs-26m missing: skipped"
    fi
fi
exit $rc
