#!/bin/bash
# test-quantize-method.sh — `quantbench quantize … --method rtn|gptq|awq|learned --calib FILE`:
# a GPTQ / AWQ GGUF of stories260K that quantbench and (when built) llama.cpp both run, no
# worse than RTN of the same type; learned rounding to int4-channel (stories260K) and to Q3_K
# (qb-docs-26m, llama.cpp's PPL within 0.5% of ours); every kind of bad input rejected with
# one line.
. "$(dirname "$0")/lib.sh"
S=$QB_MODELS/stories260K
LLAMA_PPL=../peer/llama.cpp/build/bin/llama-perplexity
need_fixture "quantize --method" "$S/stories260K.bin" || { finish; exit; }

for me in rtn gptq awq; do
    run quantize "$S/stories260K.bin" "$TMP/$me.gguf" q4_0 --method $me --calib "$S/ppl-sample.txt" --ctx 64 --act-order
    if [ "$rc" -eq 0 ] && [ -s "$TMP/$me.gguf" ]; then ok "quantize --method $me q4_0"; else not_ok "quantize --method $me q4_0" "exit $rc: $err"; fi
    run ppl "$TMP/$me.gguf" "$S/ppl-sample.txt" --ctx 64
    ppl=$(printf '%s' "$out" | sed -n 's/.*PPL = \([0-9.]*\).*/\1/p' | head -1)
    eval "ppl_$me=$ppl"
    if [ "$rc" -eq 0 ] && [ -n "$ppl" ]; then ok "$me GGUF runs in quantbench (PPL $ppl)"; else not_ok "$me GGUF runs" "$err"; fi
    if [ -x "$LLAMA_PPL" ]; then
        lp=$("$LLAMA_PPL" -m "$TMP/$me.gguf" -f "$S/ppl-sample.txt" -c 64 2>&1 | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
        if [ -n "$lp" ] && awk -v a="$lp" -v b="$ppl" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d / b < 0.01) }'; then
            ok "$me GGUF runs in llama.cpp with the same PPL ($lp vs $ppl)"
        else
            not_ok "$me GGUF in llama.cpp" "llama.cpp PPL '$lp', ours $ppl"
        fi
    fi
done
for me in gptq awq; do
    if awk -v a="$(eval echo \$ppl_$me)" -v b="$ppl_rtn" 'BEGIN { exit !(a < b) }'; then ok "$me PPL below RTN's"
    else not_ok "$me PPL below RTN's" "$me $(eval echo \$ppl_$me), rtn $ppl_rtn"; fi
done

# importance-weighted rounding: the calibration's own mean squares (--weighted) or an imatrix
# given to the plan (--imatrix) change GPTQ's and AWQ's bytes, and the files still run
run imatrix "$S/stories260K.bin" "$S/ppl-sample.txt" -o "$TMP/im.dat" --ctx 64 --chunks 4
[ "$rc" -eq 0 ] || not_ok "imatrix for the weighted methods" "exit $rc: $err"
for me in gptq awq; do
    for how in "--weighted" "--imatrix $TMP/im.dat"; do
        # shellcheck disable=SC2086
        run quantize "$S/stories260K.bin" "$TMP/$me-w.gguf" q4_0 --method $me --calib "$S/ppl-sample.txt" --ctx 64 --act-order $how
        if [ "$rc" -ne 0 ]; then not_ok "quantize --method $me $how" "exit $rc: $err"; continue; fi
        if cmp -s <("$QB_BIN" info "$TMP/$me-w.gguf" --sha256 | grep '^blk') <("$QB_BIN" info "$TMP/$me.gguf" --sha256 | grep '^blk'); then
            not_ok "--method $me ${how%% *}: weighted bytes differ from unweighted" "identical tensors"
        else
            run ppl "$TMP/$me-w.gguf" "$S/ppl-sample.txt" --ctx 64
            wppl=$(printf '%s' "$out" | sed -n 's/.*PPL = \([0-9.]*\).*/\1/p' | head -1)
            if [ "$rc" -eq 0 ] && awk -v a="$wppl" -v b="$ppl_rtn" 'BEGIN { exit !(a > 0 && a < b * 1.02) }'; then
                ok "--method $me ${how%% *}: other bytes, runs, PPL $wppl (rtn $ppl_rtn)"
            else not_ok "--method $me ${how%% *} runs" "exit $rc, PPL '$wppl' (rtn $ppl_rtn): $err"; fi
        fi
    done
done
# learned rounding (block by block, integer formats): a short run, then its model's PPL
run quantize "$S/stories260K.bin" "$TMP/learned.gguf" int4-channel --method learned --calib "$S/ppl-sample.txt" --ctx 64 --iters 15
if [ "$rc" -eq 0 ]; then
    run ppl "$TMP/learned.gguf" "$S/ppl-sample.txt" --ctx 64
    lppl=$(printf '%s' "$out" | sed -n 's/.*PPL = \([0-9.]*\).*/\1/p' | head -1)
    if [ "$rc" -eq 0 ] && [ -n "$lppl" ]; then ok "quantize --method learned int4-channel runs (PPL $lppl)"; else not_ok "learned GGUF runs" "$err"; fi
else not_ok "quantize --method learned int4-channel" "exit $rc: $err"; fi
# learned rounding on a k-quant (qb-docs-26m: rows of whole 256-blocks): a GGUF of Q3_K blocks
# that llama.cpp runs with the PPL quantbench computes for it
Q=$QB_MODELS/qb-docs-26m/hf
if need_fixture "learned q3_k on qb-docs-26m" "$Q/config.json" "$QB_DATA/calib-docs.txt" "$QB_DATA/eval-docs.txt"; then
    run quantize "$Q" "$TMP/learned-q3k.gguf" q3_k --method learned --calib "$QB_DATA/calib-docs.txt" --samples 2 --ctx 64 --iters 3 --batch 1
    if [ "$rc" -eq 0 ] && "$QB_BIN" info "$TMP/learned-q3k.gguf" | grep -q 'blk.3.ffn_down.weight.*q3_k'; then
        ok "quantize --method learned q3_k writes Q3_K blocks"
        run ppl "$TMP/learned-q3k.gguf" "$QB_DATA/eval-docs.txt" --ctx 256 --chunks 3
        kppl=$(printf '%s' "$out" | sed -n 's/.*PPL = \([0-9.]*\).*/\1/p' | head -1)
        if [ "$rc" -eq 0 ] && [ -n "$kppl" ]; then ok "learned q3_k GGUF runs in quantbench (PPL $kppl)"; else not_ok "learned q3_k GGUF runs" "$err"; fi
        if [ -x "$LLAMA_PPL" ]; then
            lp=$("$LLAMA_PPL" -m "$TMP/learned-q3k.gguf" -f "$QB_DATA/eval-docs.txt" -c 256 --chunks 3 -t 2 2>&1 | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
            if [ -n "$lp" ] && awk -v a="$lp" -v b="$kppl" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d / b < 0.005) }'; then
                ok "learned q3_k GGUF runs in llama.cpp with the same PPL ($lp vs $kppl)"
            else
                not_ok "learned q3_k GGUF in llama.cpp" "llama.cpp PPL '$lp', ours $kppl"
            fi
        else
            skip "learned q3_k GGUF in llama.cpp" "llama-perplexity not built ($LLAMA_PPL)"
        fi
    else not_ok "quantize --method learned q3_k" "exit $rc: $err"; fi
fi
# the comparison table runs learned rounding with its own step count (plain and weighted)
run methods "$S/stories260K.bin" --calib "$S/ppl-sample.txt" --eval "$S/ppl-sample.txt" --ctx 64 --gen 4 \
    --formats int4-channel --methods rtn,learned,learned-w --iters 3 --batch 2 --lr 0.05
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q '^| int4-channel | learned |' && printf '%s' "$out" | grep -q '^| int4-channel | learned-w |'; then
    ok "methods --methods learned,learned-w --iters --batch --lr: rows"
else not_ok "methods with learned rows" "exit $rc: $err" "$out"; fi
expect_fail "methods --lr out of range" "--lr needs a step size" methods "$S/stories260K.bin" --calib "$S/ppl-sample.txt" --eval "$S/ppl-sample.txt" --lr 2
expect_fail "learned to a ggml type" "method learned, tensor .*q4_0 is not learned" quantize "$S/stories260K.bin" "$TMP/x.gguf" q4_0 --method learned --calib "$S/ppl-sample.txt" --ctx 64
expect_fail "--iters without --method" "need --method" quantize "$S/stories260K.bin" "$TMP/x.gguf" q4_0 --iters 5
expect_fail "--weighted without --method" "need --method" quantize "$S/stories260K.bin" "$TMP/x.gguf" q4_0 --weighted

expect_fail "gptq without --calib" "--method gptq needs --calib" quantize "$S/stories260K.bin" "$TMP/x.gguf" q4_0 --method gptq
expect_fail "unknown method" "unknown method 'sparse'" quantize "$S/stories260K.bin" "$TMP/x.gguf" q4_0 --method sparse
expect_fail "gptq to a format without a grid" "method gptq.*nf4.*not supported" quantize "$S/stories260K.bin" "$TMP/x.gguf" nf4 --method gptq --calib "$S/ppl-sample.txt" --ctx 64
printf 'Once upon a time.' > "$TMP/short.txt"
expect_fail "calibration text shorter than one window" "short.txt: .*shorter than one 64-token window" quantize "$S/stories260K.bin" "$TMP/x.gguf" q4_0 --method awq --calib "$TMP/short.txt" --ctx 64
expect_fail "missing calibration file" "nonexistent.txt" quantize "$S/stories260K.bin" "$TMP/x.gguf" q4_0 --method awq --calib "$TMP/nonexistent.txt"
expect_fail "alpha out of range" "--alpha" quantize "$S/stories260K.bin" "$TMP/x.gguf" q4_0 --method awq --calib "$S/ppl-sample.txt" --alpha 1.5
expect_fail "--calib without --method" "need --method" quantize "$S/stories260K.bin" "$TMP/x.gguf" q4_0 --calib "$S/ppl-sample.txt"
[ ! -e "$TMP/x.gguf" ] && ok "no output left by failed runs" || not_ok "no output left by failed runs"
finish
