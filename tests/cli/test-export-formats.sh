#!/bin/bash
# test-export-formats.sh — formats without a ggml type export to GGUF files llama.cpp runs:
# `quantize … FORMAT --method rtn` repacks integer grids into ggml blocks (int4-g128 → Q4_0,
# int5-g64-asym → Q5_1; every grid: tests/unit/test-export-repack.c) and writes NF4 and NVFP4 as F16,
# says so on stdout, records the conversions in the metadata, and the file reopens in
# quantbench and (when built) in llama-perplexity with the same perplexity (within 1%).
. "$(dirname "$0")/lib.sh"
M=$QB_MODELS/qb-docs-26m/qb-docs-26m-f16.gguf
S=$QB_MODELS/stories260K
EVAL=$QB_DATA/eval-docs.txt
LLAMA_PPL=../peer/llama.cpp/build/bin/llama-perplexity
need_fixture "export formats" "$M" "$EVAL" || { finish; exit; }

check_format() { # FORMAT GGML_TYPE
    local f=$1 want=$2
    run quantize "$M" "$TMP/$f.gguf" "$f" --method rtn
    if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "$f -> $want"; then ok "$f exported, conversion to $want reported"
    else not_ok "$f exported as $want" "exit $rc: $err" "$out"; return; fi
    run info "$TMP/$f.gguf"
    if printf '%s' "$out" | grep -q "blk.0.ffn_down.weight.*$want" && grep -q "quantbench.export.conversions" "$TMP/$f.gguf"; then
        ok "$f: reopened file has $want tensors and records the conversions"
    else not_ok "$f: reopened file" "$(printf '%s' "$out" | grep -m2 'ffn_down\|conversions')"; fi
    run ppl "$TMP/$f.gguf" "$EVAL" --ctx 256 --chunks 3
    local ppl
    ppl=$(printf '%s' "$out" | sed -n 's/.*PPL = \([0-9.]*\).*/\1/p' | head -1)
    if [ "$rc" -ne 0 ] || [ -z "$ppl" ]; then not_ok "$f: perplexity of the exported file" "$err"; return; fi
    if [ -x "$LLAMA_PPL" ]; then
        local lp
        lp=$("$LLAMA_PPL" -m "$TMP/$f.gguf" -f "$EVAL" -c 256 --chunks 3 -t 2 2>&1 | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
        if [ -n "$lp" ] && awk -v a="$lp" -v b="$ppl" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d / b < 0.01) }'; then
            ok "$f: llama-perplexity $lp, ours $ppl (within 1%)"
        else not_ok "$f: llama-perplexity agrees" "llama.cpp '$lp', ours $ppl"; fi
    else
        ok "$f: perplexity of the exported file: $ppl"
        skip "$f: llama-perplexity agrees" "llama-perplexity not built ($LLAMA_PPL)"
    fi
}

check_format int4-g128 Q4_0
check_format int5-g64-asym Q5_1
check_format nf4 F16
check_format nvfp4 F16

# rows that are not whole 32-blocks (stories260K's 172-wide ffn_down) fall back to F16
if need_fixture "stories260K int4-channel: 172-wide rows written as F16" "$S/stories260K.bin"; then
    run quantize "$S/stories260K.bin" "$TMP/s.gguf" int4-channel --method rtn
    if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "5 tensor(s) int4-channel -> F16 (dequantized)"; then
        ok "stories260K int4-channel: 172-wide rows written as F16"
    else not_ok "stories260K int4-channel fallback" "exit $rc: $err" "$out"; fi
fi
# an unwritable target: one-line error, nothing written
expect_fail "export to an unwritable path" "nonexistent" quantize "$M" "$TMP/nonexistent/x.gguf" int4-g128 --method rtn
finish
