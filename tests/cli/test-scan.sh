#!/bin/bash
# test-scan.sh — `quantbench scan`, `search` and `prune` end to end on stories260K: the ranked
# table and its CSV/JSON files, a plan saved and replayed by `quantize --plan`, a searched model
# exported and evaluated, the estimate from an importance matrix, the reuse of the base's pass
# (the same table with a full cache, none and no reuse; --cache-mb), and each kind of bad input
# with a one-line error and exit status 1.
. "$(dirname "$0")/lib.sh"
S=$QB_MODELS/stories260K
M=$S/stories260K.bin
T=$S/ppl-sample.txt
# plan_matches PLAN GGUF: PLAN holds a rule for each of stories260K's 36 matrices ("NAME = FORMAT
# ..."), and `quantbench info GGUF` lists each of those tensors stored in that FORMAT; prints
# what differs.
plan_matches() {
    "$QB_BIN" info "$2" >"$TMP/info" 2>&1 || { echo "info $2 failed: $(head -2 "$TMP/info")"; return 1; }
    awk 'NR == FNR { if ($0 !~ /^#/ && $2 == "=") want[$1] = toupper($3); next }
         ($1 in want) && $NF ~ /^[0-9]+$/ { got[$1] = $(NF - 2) }
         END {
             for (t in want) { n++; if (got[t] != want[t]) { print t ": plan " want[t] ", file " got[t]; bad = 1 } }
             if (n != 36) { print "the plan has " n " rules, wanted 36"; bad = 1 }
             exit bad
         }' "$1" "$TMP/info"
}
need_fixture "scan, search, prune" "$M" "$T" "$S/stories260K-f32.gguf" || { finish; exit; }

run scan "$M" "$T" --format int2-channel --tokens 512 --ctx 64 --csv "$TMP/s.csv" --json "$TMP/s.json"
if [ "$rc" -eq 0 ] && [ "$(wc -l < "$TMP/s.csv")" -eq 37 ] && grep -q '"rows": \[' "$TMP/s.json" &&
   printf '%s\n' "$out" | grep -qE '^ +1  token_embd.weight'; then ok "scan writes a ranked table, CSV and JSON"
else not_ok "scan writes a ranked table, CSV and JSON" "exit $rc" "$(printf '%s' "$err" | head -3)"; fi
run scan "$M" "$T" --format q8_0 --per layer --blocks-only --tokens 256 --ctx 64
if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -qE 'blk\.4 +q8_0\+fallback'; then ok "scan per layer"
else not_ok "scan per layer" "exit $rc" "$(printf '%s' "$out$err" | tail -3)"; fi

run scan "$M" "$T" --format q8_0 --layers 1-2 --tokens 256 --ctx 64
if [ "$rc" -eq 0 ] && [ "$(printf '%s\n' "$out" | grep -cE '^ +[0-9]+  blk\.[12]\.')" -eq 14 ] &&
   ! printf '%s\n' "$out" | grep -qE '^ +[0-9]+  (token_embd|blk\.[034]\.)'; then ok "scan --layers: only those blocks"
else not_ok "scan --layers: only those blocks" "exit $rc" "$(printf '%s' "$out$err" | tail -3)"; fi

# the reuse of the base's pass: the same table with the cache, without it (--cache-mb 0: a note,
# every variant recomputed) and with no reuse at all; the cost line and column
run scan "$M" "$T" --format q4_0 --tokens 256 --ctx 64 --csv "$TMP/r1.csv"
rc1=$rc; cost1=$(printf '%s\n' "$out" | sed -n 's/^cost       \([0-9.]*\) of a full forward pass per unit.*/\1/p')
run scan "$M" "$T" --format q4_0 --tokens 256 --ctx 64 --csv "$TMP/r0.csv" --cache-mb 0
rc0=$rc; note0=$(printf '%s\n' "$out" | grep -c '^note       reuse cache bound 0.0 MiB < ')
run scan "$M" "$T" --format q4_0 --tokens 256 --ctx 64 --csv "$TMP/rn.csv" --no-reuse
costn=$(printf '%s\n' "$out" | sed -n 's/^cost       \([0-9.]*\) of a full forward pass per unit.*/\1/p')
if [ "$rc1$rc0$rc" = 000 ] && [ "$note0" -eq 1 ] && [ "$costn" = 1.000 ] &&
   awk -v c="$cost1" 'BEGIN { exit !(c > 0.3 && c < 0.9) }' &&
   cmp -s <(cut -d, -f1-18 "$TMP/r1.csv") <(cut -d, -f1-18 "$TMP/r0.csv") &&
   cmp -s <(cut -d, -f1-18 "$TMP/r1.csv") <(cut -d, -f1-18 "$TMP/rn.csv") &&
   head -1 "$TMP/r1.csv" | grep -q ',dppl,cost,est_err,est_rel$'; then ok "scan: reuse, --cache-mb 0 and --no-reuse give the same table (cost $cost1 vs $costn)"
else not_ok "scan: reuse, --cache-mb 0 and --no-reuse give the same table" "exit $rc1 $rc0 $rc, cost $cost1 / $costn, note $note0" "$(diff <(cut -d, -f1-18 "$TMP/r1.csv") <(cut -d, -f1-18 "$TMP/r0.csv") | head -3)"; fi

run search "$M" "$T" --bpw 8.5 --candidates q4_0,q8_0,f16 --tokens 256 --ctx 64 --plan-out "$TMP/plan.txt" --out "$TMP/mix.gguf"
if [ "$rc" -eq 0 ] && why=$(plan_matches "$TMP/plan.txt" "$TMP/mix.gguf"); then ok "search saves a plan and exports the mix it names"
else not_ok "search saves a plan and exports the mix it names" "exit $rc" "$(printf '%s' "$err" | head -3)" "$why"; fi
run quantize "$S/stories260K-f32.gguf" "$TMP/replay.gguf" F16 --plan "$TMP/plan.txt"
if [ "$rc" -eq 0 ] && why=$(plan_matches "$TMP/plan.txt" "$TMP/replay.gguf"); then ok "quantize --plan replays the searched plan tensor by tensor"
else not_ok "quantize --plan replays the searched plan tensor by tensor" "exit $rc" "$(printf '%s' "$err" | head -3)" "$why"; fi
run ppl "$TMP/mix.gguf" "$T" --ctx 64
if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -q '^PPL = '; then ok "the exported mix runs"
else not_ok "the exported mix runs" "exit $rc" "$err"; fi
run prune "$M" "$T" 2:4 --formats keep,q8_0 --tokens 256 --ctx 64
if [ "$rc" -eq 0 ] && [ "$(printf '%s\n' "$out" | grep -cE '^(none|2:4) ')" -eq 4 ]; then ok "prune table"
else not_ok "prune table" "exit $rc" "$(printf '%s' "$err" | head -3)"; fi

# the estimate from an importance matrix: alone (no text, no forward pass), and beside the
# exact scan with Spearman's rho of each estimate against the measured KLD
run imatrix "$M" "$T" -o "$TMP/s.imatrix" --ctx 64 --chunks 3
run scan "$M" --imatrix "$TMP/s.imatrix" --format q4_0 --csv "$TMP/e.csv"
if [ "$rc" -eq 0 ] && [ "$(wc -l < "$TMP/e.csv")" -eq 36 ] && head -1 "$TMP/e.csv" | grep -q ',est_err,est_rel$' &&
   printf '%s\n' "$out" | grep -q 'skipped    1 unit(s): token_embd.weight: no entry in the importance matrix' &&
   printf '%s\n' "$out" | grep -qE '^ +1  blk\.[0-9]\.[a-z_]+\.weight +q4_0 '; then ok "scan --imatrix without a text: the estimate"
else not_ok "scan --imatrix without a text: the estimate" "exit $rc" "$(printf '%s' "$out$err" | tail -3)"; fi
run scan "$M" "$T" --imatrix "$TMP/s.imatrix" --format q4_0 --tokens 256 --ctx 64 --csv "$TMP/x.csv"
rho=$(printf '%s\n' "$out" | sed -n 's/^estimate   35 of 36 units.*est err \(-\{0,1\}[0-9.]*\), est rel.*/\1/p')
if [ "$rc" -eq 0 ] && [ -n "$rho" ] && awk -v r="$rho" 'BEGIN { exit !(r >= -1 && r <= 1) }' &&
   [ "$(grep -c ',[0-9.e+-]*,[0-9.e+-]*$' "$TMP/x.csv")" -ge 35 ]; then ok "scan --imatrix beside the exact scan: rho $rho"
else not_ok "scan --imatrix beside the exact scan" "exit $rc" "$(printf '%s' "$out$err" | tail -3)"; fi
expect_fail "scan: --imatrix not an imatrix" "$T" scan "$M" --imatrix "$T"

: > "$TMP/empty.txt"
expect_fail "scan: unknown format" "scan: --format: unknown format 'q9_z'" scan "$M" "$T" --format q9_z
expect_fail "scan: bad --per" "--per takes 'layer' or 'tensor'" scan "$M" "$T" --per row
expect_fail "scan: empty text" "empty.txt: the evaluation text is empty" scan "$M" "$TMP/empty.txt"
expect_fail "scan: format no tensor fits" "cannot store any tensor" scan "$M" "$T" --format int4-g128 --ctx 64
expect_fail "scan: bad --layers" "--layers takes N or FIRST-LAST" scan "$M" "$T" --layers 3-1
expect_fail "scan: --layers beyond the model" "layers 4-9" scan "$M" "$T" --layers 4-9 --ctx 64
expect_fail "scan: missing arguments" "usage: quantbench scan" scan "$M"
expect_fail "scan: negative --cache-mb" "--cache-mb expects an integer in .0, 16777216., got '-5'" scan "$M" "$T" --cache-mb -5
expect_fail "scan: --cache-mb not a number" "--cache-mb expects an integer in .0, 16777216., got '1g'" scan "$M" "$T" --cache-mb 1g
expect_fail "scan: --cache-mb too large" "got '99999999'" scan "$M" "$T" --cache-mb 99999999
expect_fail "scan: --cache-mb without a value" "--cache-mb expects an integer" scan "$M" "$T" --cache-mb
expect_fail "scan: unwritable CSV" "nowhere/s.csv" scan "$M" "$T" --tokens 256 --ctx 64 --csv "$TMP/nowhere/s.csv"
expect_fail "search: no budget" "usage: quantbench search" search "$M" "$T"
expect_fail "search: unknown candidate" "candidate 'q7_k'" search "$M" "$T" --bpw 5 --candidates q4_k,q7_k
expect_fail "search: budget below the cheapest mix" "below the cheapest mix" search "$M" "$T" --bpw 2 --candidates int4-channel,int8-channel --ctx 64
expect_fail "search: unknown --bpw-of" "unknown quantization type 'Q9_M'" search "$M" "$T" --bpw-of Q9_M
expect_fail "prune: bad spec" "pruning spec '3x'" prune "$M" "$T" 3x
expect_fail "prune: N:M out of range" "N:M sparsity 4:2" prune "$M" "$T" 4:2
finish
