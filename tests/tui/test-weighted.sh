#!/bin/bash
# test-weighted.sh — the importance-weighted error view in the workbench (tmux, qb-docs-26m):
# w without an imatrix says in the status line how to load one; after :imatrix FILE (a matrix
# made by `quantbench imatrix`) the analysis quantizes with the importance as an apply does, and
# w switches the metrics panel and the error plot to the weighted numbers (labelled
# "importance-weighted", another MSE, the plain one beside it, kept across choices) and back; a
# tensor the imatrix has no entry for (token_embd) says it stays plain; :imatrix off turns the
# view off.
. "$(dirname "$0")/lib.sh"
BIN=$(cd "$(dirname "$QB_BIN")" && pwd)/$(basename "$QB_BIN")
export XDG_STATE_HOME=$TMP/state
MODEL=$(cd "$QB_MODELS" 2>/dev/null && pwd)/qb-docs-26m/qb-docs-26m-f16.gguf
CALIB=$(cd "$QB_DATA" 2>/dev/null && pwd)/calib-docs.txt
need_fixture "importance-weighted view" "$MODEL" "$CALIB" || { finish; exit; }
head -c 6000 "$CALIB" >"$TMP/text.txt"
"$BIN" imatrix "$MODEL" "$TMP/text.txt" -o "$TMP/docs.dat" --ctx 128 --chunks 2 -t 2 >/dev/null 2>&1
[ -s "$TMP/docs.dat" ] || { not_ok "the imatrix" "quantbench imatrix failed"; finish; exit; }

# the number after LABEL in the metrics panel, once the analysis is complete (not dimmed: no
# "…" after the choice line and no preview)
metric() { screen | grep -o "$1 *[-0-9.e+]*" | head -1 | awk '{print $NF}'; }
settled() {
    local deadline=$((SECONDS + 30))
    while [ $SECONDS -lt $deadline ]; do
        if ! screen | grep -q "preview\|analysing\|) …"; then sleep 0.3; return 0; fi
        sleep 0.2
    done
}

start 150 44 "$BIN" "$MODEL"
check "model opens" "Qb Docs 26m" 20
keys w
check "w without an imatrix: the status line says how to load one" "no importance matrix loaded; :imatrix FILE loads one" 10
keys ":imatrix $TMP/docs.dat" Enter
check ":imatrix loads" "imatrix docs.dat, 42 entries: applies of ggml types are now weighted" 10
keys ":set q4_k" Enter
check "q4_k chosen" "q4_k" 10
keys "/blk.1.ffn_down" Enter
check "blk.1.ffn_down selected" "blk.1.ffn_down.weight  512" 10
settled
check "plain metrics" "this tensor at the choice" 10
plain=$(metric "MSE ")
keys w
check "w: the metrics panel says importance-weighted" "importance-weighted (w)" 10
check "w: the error plot says importance-weighted" "error, importance-weighted" 10
check "w: the status line explains the scaling" "importance-weighted view: errors scaled" 5
weighted=$(metric "MSE ")
besides=$(metric "plain MSE")
if [ -n "$plain" ] && [ -n "$weighted" ] && [ "$plain" != "$weighted" ]; then ok "the weighted MSE differs ($weighted, plain $plain)"
else not_ok "the weighted MSE differs" "plain '$plain', weighted '$weighted'"; fi
if [ "$besides" = "$plain" ]; then ok "the plain MSE is shown beside it"; else not_ok "the plain MSE beside it" "'$besides' vs '$plain'"; fi
keys ":set q5_k" Enter
check "another choice keeps the weighted view" "format q5_k" 10
settled
check "  still importance-weighted" "importance-weighted (w)" 10
keys ":set q4_k" Enter
check "q4_k again" "format q4_k" 10
settled
again=$(metric "MSE ")
if [ "$again" = "$weighted" ]; then ok "back at q4_k: the same weighted MSE (cached analysis)"; else not_ok "back at q4_k" "'$again' vs '$weighted'"; fi
keys "/token_embd" Enter
check "token_embd: no entry, plain numbers" "(no importance: plain)" 15
keys "/blk.1.ffn_down" Enter
settled
keys w
check "w again: plain" "plain error view (w: importance-weighted)" 10
check "  the panel title is the plain one" "this tensor at the choice" 10
back=$(metric "MSE ")
if [ "$back" = "$plain" ]; then ok "the plain MSE again"; else not_ok "the plain MSE again" "'$back' vs '$plain'"; fi
keys w
check "w on" "importance-weighted (w)" 10
keys ":imatrix off" Enter
check ":imatrix off" "imatrix off" 10
settled
check "  the view goes back to plain" "this tensor at the choice" 10
keys w
check "w after :imatrix off: how to load one" "no importance matrix loaded; :imatrix FILE loads one" 10
keys ":q" Enter
check "quits" "QB-EXITED-0" 10
finish
