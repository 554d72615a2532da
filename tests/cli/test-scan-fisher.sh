#!/bin/bash
# test-scan-fisher.sh — the Fisher estimate end to end on stories260K: `scan --estimate fisher`
# alone (ranked table and CSV, no evaluation text), beside the exact scan for two formats with
# the top units refined (Spearman's rho printed, one CSV per format), `search --estimate
# fisher` (a plan from the estimate, nothing measured), the streaming pass (`--stream recompute`
# / `on`: the same table as in memory, the same plan), and bad input with a one-line error: a calibration
# text too short, a model the training pass refuses (experts), options misused.
. "$(dirname "$0")/lib.sh"
S=$QB_MODELS/stories260K
M=$S/stories260K.bin
T=$S/ppl-sample.txt
need_fixture "scan --estimate fisher" "$M" "$T" || { finish; exit; }

run scan "$M" --estimate fisher --calib "$T" --ctx 64 --format q4_0 --csv "$TMP/f.csv"
if [ "$rc" -eq 0 ] && [ "$(wc -l < "$TMP/f.csv")" -eq 37 ] && printf '%s\n' "$out" | grep -q '^fisher .*labels sampled' &&
   printf '%s\n' "$out" | grep -qE '^ +1  token_embd.weight +q4_0 '; then ok "scan --estimate fisher without a text: the estimate"
else not_ok "scan --estimate fisher without a text" "exit $rc" "$(printf '%s' "$out$err" | tail -3)"; fi

run scan "$M" "$T" --estimate fisher --calib "$T" --ctx 64 --tokens 512 --format q4_0,int3-g32 --refine 3 --csv "$TMP/x.csv"
rho=$(printf '%s\n' "$out" | sed -n 's/^spearman   q4_0: 36 units, rho(est KLD, KLD mean) \([0-9.-]*\),.*refined ranking.*/\1/p')
if [ "$rc" -eq 0 ] && [ -n "$rho" ] && awk -v r="$rho" 'BEGIN { exit !(r > 0.5 && r <= 1) }' &&
   [ "$(printf '%s\n' "$out" | grep -c '^spearman')" -eq 2 ] && [ -s "$TMP/x-q4_0.csv" ] && [ -s "$TMP/x-int3-g32.csv" ]; then
    ok "scan --estimate fisher beside the exact scan, two formats, refined: rho $rho"
else not_ok "scan --estimate fisher beside the exact scan" "exit $rc" "$(printf '%s' "$out$err" | tail -3)"; fi

run search "$M" "$T" --bpw 8 --candidates q4_0,q8_0,f16 --ctx 64 --estimate fisher --plan-out "$TMP/f.plan"
if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -q 'estimated from the Fisher diagonal .*(not measured)' &&
   [ "$(grep -c ' = ' "$TMP/f.plan")" -eq 36 ]; then ok "search --estimate fisher: a plan from the estimate"
else not_ok "search --estimate fisher" "exit $rc" "$(printf '%s' "$out$err" | tail -3)"; fi

run scan "$M" --estimate fisher --calib "$T" --ctx 64 --format q4_0,q8_0 --stream recompute --csv "$TMP/s.csv"
col=$(head -1 "$TMP/f.csv" | tr ',' '\n' | grep -n '^est_err$' | cut -d: -f1)
if [ "$rc" -eq 0 ] && [ -n "$col" ] && printf '%s\n' "$out" | grep -q '^fisher .*2 forward + 1 backward per chunk .*streamed block by block' &&
   [ -s "$TMP/s-q4_0.csv" ] && [ -s "$TMP/s-q8_0.csv" ] &&
   cmp -s <(cut -d, -f1-4 "$TMP/f.csv") <(cut -d, -f1-4 "$TMP/s-q4_0.csv") &&
   paste -d, "$TMP/f.csv" "$TMP/s-q4_0.csv" | awk -F, -v n="$col" \
       -v w="$(head -1 "$TMP/f.csv" | tr ',' '\n' | wc -l)" 'NR > 1 { a = $n; b = $(n + w); d = a - b; if (d < 0) d = -d;
       if (a <= 0 || d > 1e-5 * a) bad++ } END { exit bad > 0 || NR < 37 }'; then
    ok "scan --estimate fisher --stream recompute: the in-memory estimate, block by block"
else not_ok "scan --estimate fisher --stream recompute" "exit $rc" "$(printf '%s' "$out$err" | tail -3)"; fi

run search "$M" "$T" --bpw 8 --candidates q4_0,q8_0,f16 --ctx 64 --estimate fisher --stream on --plan-out "$TMP/s.plan"
if [ "$rc" -eq 0 ] && cmp -s "$TMP/f.plan" "$TMP/s.plan"; then ok "search --estimate fisher --stream on: the same plan"
else not_ok "search --estimate fisher --stream on" "exit $rc" "$(printf '%s' "$out$err" | tail -3; diff "$TMP/f.plan" "$TMP/s.plan" | head -3)"; fi

printf 'Once upon a time\n' > "$TMP/short.txt"
expect_fail "scan --estimate fisher: calibration text too short" "Fisher pass with 64-token chunks needs at least 128" \
    scan "$M" --estimate fisher --calib "$TMP/short.txt" --ctx 64
expect_fail "scan --estimate fisher: a model with experts" "experts yet \(the Fisher estimate runs the training pass\)" \
    scan tests/fixtures/arch/mixtral --estimate fisher --calib "$T" --ctx 16
expect_fail "scan --estimate fisher: no --calib" "needs --calib CALIB.txt" scan "$M" --estimate fisher
expect_fail "scan: unknown --estimate" "--estimate takes 'fisher'" scan "$M" --estimate hessian --calib "$T"
expect_fail "scan: --refine without --estimate" "go with --estimate fisher" scan "$M" "$T" --refine 3
expect_fail "scan: --estimate fisher with --imatrix" "one estimate at a time" scan "$M" --estimate fisher --calib "$T" --imatrix "$T"
expect_fail "scan: bad --labels" "--labels takes 'sampled' or 'data'" scan "$M" --estimate fisher --calib "$T" --labels gold
expect_fail "scan: bad --stream" "--stream takes 'auto', 'on', 'off' or 'recompute'" scan "$M" --estimate fisher --calib "$T" --stream yes
expect_fail "scan: --stream without --estimate" "go with --estimate fisher" scan "$M" "$T" --stream on
expect_fail "search: --refine is scan's" "--calib and --refine are scan's" search "$M" "$T" --bpw 8 --estimate fisher --refine 2
finish
