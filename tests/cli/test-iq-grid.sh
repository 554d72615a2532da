#!/bin/bash
# test-iq-grid.sh — the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M) against llama.cpp
# c392e50 (built beside us in ../peer/llama.cpp): an importance matrix made by llama-imatrix on
# calib-docs.txt (8 chunks of 256), GGUFs of qb-docs-26m written by llama-quantize with it, and
# our forward pass on those files giving llama-perplexity's perplexity on eval-docs.txt (5
# chunks of 256) within 1% (test-export-formats.sh's tolerance on a few chunks; measured
# 0.0-0.5% here, 0.1-0.3% on 10 chunks: llama.cpp keeps the KV cache in f16, we in f32). Files: llama-quantize's default mixes IQ2_XXS,
# IQ2_XS, IQ1_S, IQ1_M, and `--pure` IQ2_M (every matrix IQ2_S; token_embd and output Q8_0).
# For the four mixes also, through build/tests/test-iq-model: our mix picks llama-quantize's type
# for every tensor, and our quantizer with the matrix's importance writes its bytes for every
# IQ tensor (and token_embd); and `quantbench quantize … FTYPE --imatrix` writes every tensor
# as llama-quantize --imatrix does (name, shape, type, SHA-256 of the data: the files' metadata
# differ by our recipe keys, as in test-quantize-imatrix.sh).
# Skipped (visibly) when the llama.cpp binaries are absent.
. "$(dirname "$0")/lib.sh"
M=$QB_MODELS/qb-docs-26m/qb-docs-26m-f16.gguf
CALIB=$QB_DATA/calib-docs.txt
EVAL=$QB_DATA/eval-docs.txt
LLAMA=${QB_LLAMA_BIN:-../peer/llama.cpp/build/bin}
need_fixture "grid i-quants" "$M" "$CALIB" "$EVAL" || { finish; exit; }
for b in llama-imatrix llama-quantize llama-perplexity; do
    if [ ! -x "$LLAMA/$b" ]; then skip "grid i-quants against llama.cpp" "$LLAMA/$b not built"; finish; exit; fi
done
lq() { LD_LIBRARY_PATH=$LLAMA "$LLAMA/$1" "${@:2}"; }

lq llama-imatrix -m "$M" -f "$CALIB" -o "$TMP/im.dat" --chunks 8 -c 256 -t 2 >"$TMP/im.log" 2>&1
if [ -s "$TMP/im.dat" ]; then ok "llama-imatrix wrote an importance matrix"
else not_ok "llama-imatrix" "$(tail -3 "$TMP/im.log")"; finish; exit; fi

# ppl_agrees NAME FILE: our perplexity of FILE equals llama-perplexity's within 1%
ppl_agrees() {
    local name=$1 f=$2 lp qp
    lp=$(lq llama-perplexity -m "$f" -f "$EVAL" -c 256 --chunks 5 -t 2 2>&1 | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
    run ppl "$f" "$EVAL" --ctx 256 --chunks 5
    qp=$(printf '%s' "$out" | sed -n 's/.*PPL = \([0-9.]*\).*/\1/p' | head -1)
    if [ -n "$lp" ] && [ -n "$qp" ] && awk -v a="$lp" -v b="$qp" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d / a < 0.01) }'; then
        ok "$name: llama-quantize's file, PPL ours $qp, llama-perplexity $lp"
    else not_ok "$name: PPL of llama-quantize's file" "ours '$qp' (exit $rc: $err), llama-perplexity '$lp'"; fi
}

# model_bytes FTYPE: build/tests/test-iq-model's tensor-by-tensor comparison with llama-quantize's file
model_bytes() {
    local ft=$1 log
    if log=$(QB_IQ_F16=$M QB_IQ_IMATRIX="$TMP/im.dat" QB_IQ_LLAMA="$TMP/l-$ft.gguf" QB_IQ_FTYPE=$ft \
             "${BUILD:-build}/tests/test-iq-model" 2>&1) && printf '%s' "$log" | grep -q "byte-identical"; then
        ok "$ft: $(printf '%s' "$log" | grep -o '[0-9]* tensors of.*identical')"
    else not_ok "$ft: our mix and bytes against llama-quantize's file" "$(printf '%s' "$log" | grep -m3 -E 'ERROR|differs|mix|not set')"; fi
}

# tensors FILE: one line per tensor (name, shape, type, bytes, sha256), sorted (the files'
# metadata differ by our quantbench.* recipe keys)
tensors() { "$QB_BIN" info --sha256 "$1" | grep -E '^(blk|token_embd|output)[^ ]* +[0-9]' | sort; }

for ft in IQ2_XXS IQ2_XS IQ1_S IQ1_M; do
    if lq llama-quantize --imatrix "$TMP/im.dat" "$M" "$TMP/l-$ft.gguf" "$ft" 2 >"$TMP/lq.log" 2>&1; then
        ppl_agrees "$ft" "$TMP/l-$ft.gguf"
        model_bytes "$ft"
        run quantize "$M" "$TMP/q-$ft.gguf" "$ft" --imatrix "$TMP/im.dat" -t 2
        d=$(diff <(tensors "$TMP/q-$ft.gguf") <(tensors "$TMP/l-$ft.gguf"))
        if [ "$rc" -eq 0 ] && [ -z "$d" ] && [ "$(tensors "$TMP/q-$ft.gguf" | wc -l)" -gt 0 ]; then
            ok "quantize $ft --imatrix: every tensor as llama-quantize --imatrix writes it"
        else not_ok "quantize $ft --imatrix against llama-quantize" "exit $rc: $err" "$(printf '%s\n' "$d" | head -4)"; fi
    else not_ok "llama-quantize $ft" "$(tail -2 "$TMP/lq.log")"; fi
done
if lq llama-quantize --pure --token-embedding-type q8_0 --output-tensor-type q8_0 --imatrix "$TMP/im.dat" "$M" \
    "$TMP/l-pure-IQ2_M.gguf" IQ2_M 2 >"$TMP/lq.log" 2>&1; then
    ppl_agrees "IQ2_S tensors (--pure IQ2_M)" "$TMP/l-pure-IQ2_M.gguf"
else not_ok "llama-quantize --pure IQ2_M" "$(tail -2 "$TMP/lq.log")"; fi
finish
