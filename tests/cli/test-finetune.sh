#!/bin/bash
# test-finetune.sh — `quantbench finetune` on stories260K: quantization-aware fine-tuning with
# distillation lowers the KLD from the teacher that round-to-nearest left (measured by --eval,
# and again by `quantbench kld` on the written GGUF, which llama.cpp's llama-perplexity runs with
# our perplexity when it is built beside the project); --stop-after + --resume writes the same
# bytes as one uninterrupted run, and so does --recompute on; Ctrl-C stops cleanly (exit 130, the checkpoint written, no
# output file) and the run resumes from it; --heal of a quantized GGUF trains only its norms (the
# matrices' bytes unchanged); bad input refused with one line.
. "$(dirname "$0")/lib.sh"
S=$QB_MODELS/stories260K
M=$S/stories260K.bin
T=$S/ppl-sample.txt
BIN=../peer/llama.cpp/build/bin
need_fixture "quantbench finetune" "$M" "$T" || { finish; exit; }
common=(--text "$T" --seq 64 --batch 2 --lr 1e-3 -t 2)

run finetune "$M" q4_0 "${common[@]}" --lr 3e-4 --steps 12 --out "$TMP/qat.gguf" --eval "$T" --ctx 64 --chunks 8
kb=$(printf '%s\n' "$out" | sed -n 's/.*before: PPL [0-9.]*, KLD \([0-9.]*\).*/\1/p')
ka=$(printf '%s\n' "$out" | sed -n 's/.*after:  PPL [0-9.]*, KLD \([0-9.]*\).*/\1/p')
steps=$(printf '%s\n' "$err" | grep -c '^step [0-9]*/12 ')
if [ "$rc" -eq 0 ] && [ -s "$TMP/qat.gguf" ] && [ "$steps" -eq 12 ] && awk -v a="$ka" -v b="$kb" 'BEGIN { exit !(a < 0.8 * b) }'; then
    ok "finetune q4_0: 12 step lines, KLD from the teacher $kb -> $ka, GGUF written"
else not_ok "finetune q4_0" "exit $rc, steps $steps, KLD '$kb' -> '$ka'" "$(printf '%s' "$err" | tail -3)"; fi

run kld "$M" "$TMP/qat.gguf" "$T" --ctx 64 --chunks 8
k2=$(printf '%s\n' "$out" | sed -n 's/^Mean *KLD: *\([0-9.]*\).*/\1/p' | head -1)
[ -n "$k2" ] || k2=$(printf '%s\n' "$out" | grep -i 'kld' | grep -oE '[0-9]+\.[0-9]+' | head -1)
if [ "$rc" -eq 0 ] && awk -v a="$k2" -v b="$ka" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-4 + 1e-3 * b) }'; then
    ok "the written GGUF reopens with the KLD --eval measured ($k2)"
else not_ok "the written GGUF's KLD" "exit $rc, '$k2' vs $ka" "$(printf '%s' "$out" | head -12)"; fi
if [ -x "$BIN/llama-perplexity" ]; then
    run ppl "$TMP/qat.gguf" "$T" --ctx 64 --chunks 8
    ppl=$(printf '%s' "$out" | sed -n 's/.*PPL = \([0-9.]*\).*/\1/p' | head -1)
    lp=$(LD_LIBRARY_PATH=$BIN "$BIN/llama-perplexity" -m "$TMP/qat.gguf" -f "$T" -c 64 -b 64 --chunks 8 -t 2 2>&1 |
        sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
    if [ -n "$lp" ] && [ -n "$ppl" ] && awk -v a="$lp" -v b="$ppl" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d / b < 0.005) }'; then
        ok "llama-perplexity runs the fine-tuned GGUF: $lp, ours $ppl (within 0.5%)"
    else not_ok "llama-perplexity on the fine-tuned GGUF" "llama.cpp '$lp', ours '$ppl'"; fi
else
    skip "llama-perplexity on the fine-tuned GGUF" "llama-perplexity not built ($BIN)"
fi

# stopped and resumed: the same bytes as one run
run finetune "$M" q4_0 "${common[@]}" --steps 6 --out "$TMP/whole.gguf"
run finetune "$M" q4_0 "${common[@]}" --steps 6 --out "$TMP/resumed.gguf" --checkpoint "$TMP/ck" --stop-after 3
r1=$rc
st=$( [ -e "$TMP/resumed.gguf" ] && echo written || echo absent )
run finetune "$M" q4_0 "${common[@]}" --steps 6 --out "$TMP/resumed.gguf" --checkpoint "$TMP/ck" --resume "$TMP/ck"
if [ "$r1" -eq 2 ] && [ "$st" = absent ] && [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "resumed from .* at step 3" &&
    cmp -s "$TMP/whole.gguf" "$TMP/resumed.gguf"; then
    ok "--stop-after 3, --resume: byte-identical to the uninterrupted run"
else not_ok "stop and resume" "first exit $r1 (output $st), resume exit $rc" "$(printf '%s' "$err" | tail -2)"; fi
# activation recomputation: the same bytes, and the header says so
run finetune "$M" q4_0 "${common[@]}" --steps 6 --out "$TMP/recomputed.gguf" --recompute on
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "recomputed block by block" && cmp -s "$TMP/whole.gguf" "$TMP/recomputed.gguf"; then
    ok "--recompute on: byte-identical to the run that keeps every activation"
else not_ok "--recompute on" "exit $rc" "$(printf '%s' "$out" | head -4)"; fi
# windows cut at a new offset each epoch (18 windows of 64: 6 steps of 8 cross two epochs): a
# resumed run still writes the same bytes, and its checkpoint is not another run's
sw=(q4_0 --text "$T" --seq 64 --batch 8 --lr 1e-3 -t 2 --steps 6 --shift-windows)
run finetune "$M" "${sw[@]}" --out "$TMP/sw.gguf"
run finetune "$M" "${sw[@]}" --out "$TMP/sw2.gguf" --checkpoint "$TMP/swck" --stop-after 3
run finetune "$M" "${sw[@]}" --out "$TMP/sw2.gguf" --checkpoint "$TMP/swck" --resume "$TMP/swck"
if [ "$rc" -eq 0 ] && cmp -s "$TMP/sw.gguf" "$TMP/sw2.gguf" && ! cmp -s "$TMP/sw.gguf" "$TMP/whole.gguf"; then
    ok "--shift-windows: other windows than the fixed cut, resumed byte for byte"
else not_ok "--shift-windows resume" "exit $rc" "$(printf '%s' "$err" | tail -2)"; fi
expect_fail "a --shift-windows checkpoint resumed without it" "params.shift_windows is not in this run" finetune "$M" q4_0 --text "$T" --seq 64 --batch 8 --lr 1e-3 -t 2 --steps 6 --out "$TMP/x.gguf" --resume "$TMP/swck"
expect_fail "--recompute with a bad value" "--recompute takes auto, on or off, not 'maybe'" finetune "$M" q4_0 --text "$T" --out "$TMP/x.gguf" --recompute maybe

# Ctrl-C: a clean stop with the checkpoint, then the run resumes from it
rm -f "$TMP/ck2"
"$QB_BIN" finetune "$M" q4_0 --text "$T" --seq 64 --batch 2 -t 1 --steps 100000 --out "$TMP/int.gguf" \
    --checkpoint "$TMP/ck2" >"$TMP/iout" 2>"$TMP/ierr" &
pid=$!
for _ in $(seq 1 100); do grep -q '^step 2/' "$TMP/ierr" && break; sleep 0.1; done
kill -INT "$pid"
wait "$pid"
irc=$?
if [ "$irc" -eq 130 ] && [ -s "$TMP/ck2" ] && [ ! -e "$TMP/int.gguf" ] && grep -q "stopped at step [0-9]* of 100000; checkpoint" "$TMP/ierr"; then
    ok "Ctrl-C: exit 130, checkpoint written, no output file"
else not_ok "Ctrl-C" "exit $irc" "$(tail -2 "$TMP/ierr")"; fi
at=$(sed -n 's/.*stopped at step \([0-9]*\) of.*/\1/p' "$TMP/ierr")
run finetune "$M" q4_0 --text "$T" --seq 64 --batch 2 -t 1 --steps 100000 --out "$TMP/int.gguf" --checkpoint "$TMP/ck2" \
    --resume "$TMP/ck2" --stop-after 1
if [ "$rc" -eq 2 ] && printf '%s' "$err" | grep -q "^step $((at + 1))/100000 "; then ok "the interrupted run resumes at step $((at + 1))"
else not_ok "resume after Ctrl-C" "exit $rc, stopped at '$at'" "$(printf '%s' "$err" | tail -2)"; fi
ls "$TMP"/ck2.tmp* >/dev/null 2>&1 && not_ok "no temp file left beside the checkpoint" || ok "no temp file left beside the checkpoint"

# healing a quantized GGUF: norms train, matrices stay
printf '*attn* = q4_0\n*ffn_gate* = q4_0\n*ffn_up* = q4_0\n' >"$TMP/q4.plan" # ffn_down's rows (172) have no Q4_0
run quantize "$S/stories260K-f32.gguf" "$TMP/q.gguf" --plan "$TMP/q4.plan"
run finetune "$TMP/q.gguf" --heal --teacher "$S/stories260K-f32.gguf" "${common[@]}" --steps 15 --lr 3e-3 --out "$TMP/healed.gguf" \
    --eval "$T" --ctx 64 --chunks 8
kb=$(printf '%s\n' "$out" | sed -n 's/.*before: PPL [0-9.]*, KLD \([0-9.]*\).*/\1/p')
ka=$(printf '%s\n' "$out" | sed -n 's/.*after:  PPL [0-9.]*, KLD \([0-9.]*\).*/\1/p')
if [ "$rc" -eq 0 ] && awk -v a="$ka" -v b="$kb" 'BEGIN { exit !(a < b) }'; then ok "--heal: KLD $kb -> $ka"
else not_ok "--heal" "exit $rc, KLD '$kb' -> '$ka'" "$(printf '%s' "$err" | tail -2)"; fi
run info "$TMP/healed.gguf"
i1=$(printf '%s\n' "$out" | grep 'blk.2.attn_q.weight')
run info "$TMP/q.gguf"
i0=$(printf '%s\n' "$out" | grep 'blk.2.attn_q.weight')
if [ -n "$i1" ] && [ "$i1" = "$i0" ] && printf '%s' "$i1" | grep -qi 'q4_0'; then ok "--heal keeps the matrices as they were (Q4_0)"
else not_ok "--heal keeps the matrices" "'$i0' vs '$i1'"; fi

# bad input
printf '# a plan\nnothing.* = q4_0\n' >"$TMP/none.plan"
printf '* = q4_0 gptq\n' >"$TMP/gptq.plan"
head -c 40 "$T" >"$TMP/short.txt"
head -c 5000 "$TMP/ck" >"$TMP/torn"
expect_fail "a plan rule that matches nothing" "none.plan: plan rule 1 'nothing.\*' matches no tensor" finetune "$M" --plan "$TMP/none.plan" --text "$T" --out "$TMP/x.gguf"
expect_fail "a plan with another method" "gptq.plan: rule 1 .* names method gptq" finetune "$M" --plan "$TMP/gptq.plan" --text "$T" --out "$TMP/x.gguf"
expect_fail "a type that quantizes nothing" "quantizes nothing" finetune "$M" f32 --text "$T" --out "$TMP/x.gguf"
expect_fail "too little text" "shorter than one 64-token window" finetune "$M" q4_0 --text "$TMP/short.txt" --seq 64 --out "$TMP/x.gguf"
expect_fail "a teacher of another vocabulary" "teacher's vocabulary has 8192 tokens" finetune "$M" q4_0 --teacher "$QB_MODELS/qb-docs-26m/qb-docs-26m-f16.gguf" --text "$T" --out "$TMP/x.gguf"
expect_fail "a teacher whose tokenizer differs (same size)" "qwen2: the teacher's tokenizer differs from the student's .* at token" finetune tests/fixtures/arch/llama31 q8_0 --teacher tests/fixtures/arch/qwen2 --text "$T" --seq 32 --out "$TMP/x.gguf"
run finetune "$S/stories260K-f32.gguf" q4_0 --teacher "$M" "${common[@]}" --steps 1 --out "$TMP/g.gguf"
if [ "$rc" -eq 0 ]; then ok "a GGUF student with the llama2.c teacher: the same tokens in both vocabularies' spellings"
else not_ok "GGUF student, llama2.c teacher" "exit $rc: $err"; fi
expect_fail "--heal without a teacher" "needs --teacher" finetune "$TMP/q.gguf" --heal --text "$T" --out "$TMP/x.gguf"
expect_fail "a torn checkpoint" "torn: truncated checkpoint" finetune "$M" q4_0 "${common[@]}" --steps 6 --resume "$TMP/torn" --out "$TMP/x.gguf"
expect_fail "another run's checkpoint" "a checkpoint of another run \(params.lr: 0.001 in the checkpoint, 0.002 in this run\)" finetune "$M" q4_0 --text "$T" --seq 64 --batch 2 --lr 2e-3 --steps 6 --resume "$TMP/ck" --out "$TMP/x.gguf"
expect_fail "a checkpoint of another model's shapes" "a checkpoint of another run" finetune "$M" int4-channel "${common[@]}" --steps 6 --resume "$TMP/ck" --out "$TMP/x.gguf"
expect_fail "two plans at once" "exactly one of TYPE, --plan FILE or --heal" finetune "$M" q4_0 --heal --teacher "$M" --text "$T" --out "$TMP/x.gguf"
[ ! -e "$TMP/x.gguf" ] && ok "no output file from any refused run" || not_ok "no output file from any refused run"
finish
