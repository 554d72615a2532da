#!/bin/bash
# test-recipes.sh — every shipped recipe runs on stories260K with fast settings and its results
# pass shape and sanity checks (tests/lua/check_recipes.lua prints the TAP lines); the bits sweep
# and the teaching demo also run through the sandboxed runner as a user would run them.
. "$(dirname "$0")/../cli/lib.sh"
need_fixture "recipes" "$QB_MODELS/stories260K/stories260K.bin" "$QB_MODELS/stories260K/ppl-sample.txt" || { finish; exit; }
"$QB_BIN" run --trusted --out "$TMP/checks" tests/lua/check_recipes.lua examples 2>"$TMP/err"
rc=$?
if [ $rc -ne 0 ]; then echo "not ok - check_recipes.lua exited with status $rc"; tail -5 "$TMP/err" | sed "s/^/#   /"; fi
# the sandboxed runner, as a user runs it
run run --out "$TMP/user" examples/teaching_demo.lua bits=4 images=1
if [ "$rc" -eq 0 ] && [ -f "$TMP/user/demo_4bit_mapping.png" ] && printf '%s' "$out" | grep -q "sqnr_tensor"; then
    echo "ok - teaching_demo through the sandboxed runner writes its images and table"
else
    echo "not ok - teaching_demo through the sandboxed runner (exit $rc): $(printf '%s' "$err" | head -3)"
fi
run run --out "$TMP/user" examples/bits_sweep.lua fast=1 plots=1 prefix=s
if [ "$rc" -eq 0 ] && [ -s "$TMP/user/s.csv" ] && [ -s "$TMP/user/s.json" ] && [ -s "$TMP/user/s_ppl.png" ] && [ -s "$TMP/user/s_sqnr.svg" ]; then
    echo "ok - bits_sweep through the sandboxed runner writes CSV, JSON, PNG and SVG"
else
    echo "not ok - bits_sweep through the sandboxed runner (exit $rc): $(printf '%s' "$err" | head -3)"
fi
run run --out "$TMP/user" examples/bits_sweep.lua fats=1
if [ "$rc" -eq 1 ] && printf '%s' "$err" | grep -q "unknown argument 'fats'"; then
    echo "ok - a mistyped recipe argument is refused, naming it"
else
    echo "not ok - mistyped recipe argument (exit $rc): $(printf '%s' "$err" | head -3)"
fi
# the mixed-precision GGUF runs in llama.cpp with the perplexity our engine gave it
LP=../peer/llama.cpp/build/bin/llama-perplexity
if [ ! -x "$LP" ]; then
    skip "mixed.gguf in llama-perplexity" "llama-perplexity not built ($LP)"
elif [ ! -f "$TMP/checks/mixed.gguf" ] || [ ! -f "$TMP/checks/mixed.csv" ]; then
    echo "not ok - mixed.gguf in llama-perplexity: check_recipes.lua wrote no mixed.gguf / mixed.csv"
else
    ours=$(awk -F, '$1=="mixed"{print $3}' "$TMP/checks/mixed.csv")
    theirs=$(LD_LIBRARY_PATH=$(dirname "$LP") "$LP" -m "$TMP/checks/mixed.gguf" -f "$QB_MODELS/stories260K/ppl-sample.txt" -c 128 -b 128 -t 2 2>&1 | grep -oE 'Final estimate: PPL = [0-9.]+' | grep -oE '[0-9.]+$')
    if [ -n "$theirs" ] && awk -v a="$ours" -v b="$theirs" 'BEGIN{d=a-b; if(d<0)d=-d; exit !(d/b < 0.005)}'; then
        echo "ok - mixed.gguf in llama-perplexity: $theirs, ours $ours (within 0.5%)"
    else
        echo "not ok - mixed.gguf in llama-perplexity: '$theirs' vs ours '$ours'"
    fi
fi
[ $rc -ne 255 ]
