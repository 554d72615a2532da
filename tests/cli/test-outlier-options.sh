#!/bin/bash
# test-outlier-options.sh — bad activation / KV-cache options through the command line (one-line
# error, exit status 1), and that the good ones run: W8A8, SmoothQuant, LLM.int8, KV int8.
cd "$(dirname "$0")/../.." || exit 2
. tests/cli/lib.sh
S="$QB_MODELS/stories260K"
need_fixture "outlier options" "$S/stories260K.bin" || { finish; exit; }
TXT="$S/ppl-sample.txt"

expect_fail "SmoothQuant alpha out of range" "--smooth expects a number in \[0, 1\]" ppl "$S/stories260K.bin" "$TXT" --smooth 1.5
expect_fail "negative LLM.int8 threshold" "--int8-outlier expects a number" ppl "$S/stories260K.bin" "$TXT" --int8-outlier -1
expect_fail "unknown KV cache type" "unknown KV cache type 'int3'" ppl "$S/stories260K.bin" "$TXT" --kv int3
expect_fail "unknown activation type" "unknown activation type 'fp4'" generate "$S/stories260K.bin" --act fp4
expect_fail "SmoothQuant without calibration" "SmoothQuant needs a calibration text" bench "$S/stories260K.bin" --smooth 0.5
expect_fail "LLM.int8 with static scales" "not with static scales" ppl "$S/stories260K.bin" "$TXT" --int8-outlier 6 --act int8-static --calib "$TXT"
expect_fail "calibration text too short" "shorter than one [0-9]+-token window" ppl "$S/stories260K.bin" "$TXT" --smooth 0.5 --calib "$TXT" --calib-ctx 100000
expect_fail "missing value" "--kv needs a value" kld "$S/stories260K.bin" "$S/stories260K.bin" "$TXT" --kv

run ppl "$S/stories260K.bin" "$TXT" --ctx 64 --chunks 2 --smooth 0.5 --calib "$TXT" --calib-ctx 64 --kv int8
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "PPL = " && printf '%s' "$err" | grep -q "SmoothQuant alpha 0.50"; then
    ok "ppl with SmoothQuant W8A8 and an int8 KV cache"
else
    not_ok "ppl with SmoothQuant W8A8 and an int8 KV cache" "exit $rc" "$(printf '%s' "$err" | tail -3)"
fi
run kld "$S/stories260K.bin" "$S/stories260K.bin" "$TXT" --ctx 64 --chunks 2 --int8-outlier 6
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "LLM.int8 outlier feature fraction"; then
    ok "kld with LLM.int8 reports outlier fractions"
else
    not_ok "kld with LLM.int8 reports outlier fractions" "exit $rc" "$(printf '%s' "$err" | tail -3)"
fi
finish
