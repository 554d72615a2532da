#!/bin/bash
# test-stats.sh — `quantbench stats MODEL FORMAT [--imatrix FILE]` on qb-docs-26m: one line per
# weight matrix with MSE / SQNR / max error; with an importance matrix (made by `quantbench
# imatrix`) the importance-weighted columns beside them, "-" for a tensor without an entry;
# quantized with the importance (as llama-quantize --imatrix) the weighted MSE summed over the
# blocks' tensors is lower than quantized without (--plain-quant), whose plain numbers are those
# of the run without --imatrix; bad input refused with one line.
. "$(dirname "$0")/lib.sh"
D=$QB_MODELS/qb-docs-26m/qb-docs-26m-f16.gguf
S=$QB_MODELS/stories260K/stories260K-f32.gguf
need_fixture "quantbench stats" "$D" "$S" "$QB_DATA/calib-docs.txt" || { finish; exit; }
head -c 6000 "$QB_DATA/calib-docs.txt" >"$TMP/text.txt"
run imatrix "$D" "$TMP/text.txt" -o "$TMP/docs.dat" --ctx 128 --chunks 2 -t 2
[ "$rc" -eq 0 ] || { not_ok "imatrix for the test" "$err"; finish; exit; }

run stats "$D" q4_k -t 2
plain=$out
lines=$(printf '%s\n' "$out" | grep -cE '^(blk|token_embd|output)')
if [ "$rc" -eq 0 ] && [ "$lines" -eq 44 ] && ! printf '%s' "$out" | grep -q wMSE; then ok "stats q4_k: 44 weight matrices, no weighted columns"
else not_ok "stats q4_k" "exit $rc, $lines lines" "$err"; fi

run stats "$D" q4_k --imatrix "$TMP/docs.dat" -t 2
weighted=$out
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "wMSE" && printf '%s' "$out" | grep -q "42 of 44 tensors weighted"; then
    ok "stats --imatrix: weighted columns, 42 of 44 tensors weighted"
else not_ok "stats --imatrix" "exit $rc" "$(printf '%s' "$out" | tail -2)" "$err"; fi
row=$(printf '%s\n' "$out" | grep '^token_embd.weight')
if [ "$(echo "$row" | awk '{print $8, $9, $10}')" = "- - -" ]; then ok "token_embd (no entry): weighted columns '-'"
else not_ok "token_embd without an entry" "$row"; fi
row=$(printf '%s\n' "$out" | grep '^blk.1.attn_q.weight')
if echo "$row" | awk '{ exit !($8 > 0 && $8 != $5) }'; then ok "blk.1.attn_q: a weighted MSE of its own ($(echo "$row" | awk '{print $8}'))"
else not_ok "blk.1.attn_q weighted" "$row"; fi

run stats "$D" q4_k --imatrix "$TMP/docs.dat" --plain-quant -t 2
pq=$out
if [ "$(printf '%s\n' "$pq" | awk '/^blk/ {print $1, $5, $6}')" = "$(printf '%s\n' "$plain" | awk '/^blk/ {print $1, $5, $6}')" ]; then
    ok "--plain-quant: the plain numbers of the run without --imatrix"
else not_ok "--plain-quant plain numbers" "$(diff <(printf '%s\n' "$pq" | awk '/^blk/ {print $1, $5}') <(printf '%s\n' "$plain" | awk '/^blk/ {print $1, $5}') | head -4)"; fi
sw=$(printf '%s\n' "$weighted" | awk '/^blk/ { s += $8 } END { printf "%.6e", s }')
sp=$(printf '%s\n' "$pq" | awk '/^blk/ { s += $8 } END { printf "%.6e", s }')
if awk -v a="$sw" -v b="$sp" 'BEGIN { exit !(a < b) }'; then ok "quantized with the importance: weighted MSE summed over the blocks lower ($sw < $sp)"
else not_ok "weighted quantization lowers the weighted MSE" "$sw vs $sp"; fi

run stats "$D" int4-g128 --tensor 'blk.0.attn_*' --imatrix "$TMP/docs.dat" -t 2
if [ "$rc" -eq 0 ] && [ "$(printf '%s\n' "$out" | grep -c '^blk.0.attn_')" -eq 4 ]; then ok "--tensor GLOB: blk.0.attn_* (4), int formats too"
else not_ok "--tensor GLOB" "exit $rc" "$out" "$err"; fi

expect_fail "an imatrix file that is missing" "missing.dat" stats "$D" q4_k --imatrix "$TMP/missing.dat"
run imatrix "$S" "$TMP/text.txt" -o "$TMP/small.dat" --ctx 64 --chunks 2 -t 2
expect_fail "another model's imatrix" "small.dat: entry 'blk.0.attn_q.weight' has 64 values" stats "$D" q4_k --imatrix "$TMP/small.dat"
expect_fail "an unknown format" "stats: .*q9_z" stats "$D" q9_z
expect_fail "a glob matching nothing" "no weight matrix .* matches 'nope\*'" stats "$D" q4_k --tensor 'nope*'
expect_fail "missing arguments" "usage: quantbench stats" stats "$D"
finish
