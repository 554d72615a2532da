#!/bin/bash
# test-moe.sh — a mixture-of-experts model in the workbench (tmux): a Qwen3-MoE-shaped model (2
# blocks, 8 experts, 2 used per token; written by the bench's generator) opens with its router
# and every expert as a tensor of its own; an expert is analysed; a calibration shows each
# expert's share of the routed tokens and the shares of a block sum to 100%; q4_k applied to
# the whole model leaves the router at its precision; one expert set apart at q8_0 stays so;
# a perplexity job runs on the packed experts; the export is re-read with the expert tensors
# merged back into llama.cpp's 3-D ones at the types chosen.
. "$(dirname "$0")/lib.sh"
BIN=$(cd "$(dirname "$QB_BIN")" && pwd)/$(basename "$QB_BIN")
SYNTH=$(dirname "$BIN")/synth_model
export XDG_STATE_HOME=$TMP/state
CALIB=$(cd "$QB_DATA" 2>/dev/null && pwd)/calib-docs.txt
need_fixture "experts in the workbench" "$CALIB" || { finish; exit; }
MODEL=$TMP/moe.gguf
if ! "$SYNTH" --llama "$MODEL" --preset qwen3-30b-a3b --layers 2 --dim 256 --heads 4 --kv-heads 2 --head-dim 64 \
    --expert-ffn 256 --experts 8 --experts-used 2 --vocab 512 --ctx 256 --type f32 2>"$TMP/synth.err"; then
    not_ok "the MoE model is written" "$(tail -3 "$TMP/synth.err")"
    finish
    exit
fi

start 140 44 "$BIN" "$MODEL"
check "the MoE model opens: the router and the experts by name" "router" 20
check "experts labelled by kind and number" "down e7" 5
keys ":select blk.1.ffn_down_exps.5.weight" Enter
check "an expert is a tensor of its own" "blk.1.ffn_down_exps.5.weight" 10
check "the expert is analysed" "SQNR" 20
if screen | grep -qF "expert    "; then not_ok "no usage line without a calibration" "$(screen | grep -F 'expert    ')"
else ok "no usage line without a calibration"; fi

keys ":calib $CALIB 4 64" Enter
check "a calibration of the MoE model completes" "calibrated: calib-docs.txt, 4 windows x 64 tokens" 120
check "the metrics show the expert's share of the routed tokens" "expert    5/8:" 10
# the shares of block 1's eight experts, as the panel shows them, sum to 100%
total=0
for e in 0 1 2 3 4 5 6 7; do
    keys ":select blk.1.ffn_down_exps.$e.weight" Enter
    wait_for "expert    $e/8:" 10 || true
    pct=$(screen | grep -o "expert    $e/8: [0-9]* tok ([0-9.]*%)" | grep -o '[0-9.]*%' | tr -d %)
    total=$(awk -v t="$total" -v p="${pct:-0}" 'BEGIN { print t + p }')
done
if awk -v t="$total" 'BEGIN { exit !(t > 99.5 && t < 100.5) }'; then ok "the eight shares of a block sum to 100% ($total)"
else not_ok "the eight shares of a block sum to 100%" "sum $total"; fi

keys ":set q4_k" Enter
check "q4_k chosen" "q4_k" 10
keys ":apply model" Enter
check "q4_k applied to the model" "applied:" 60
keys ":select blk.0.ffn_gate_inp" Enter
check "the router selected" "blk.0.ffn_gate_inp.weight" 10
router_row=$(screen | grep -E "^.  +router +" | head -1 | cut -c1-40)
if [ -n "$router_row" ] && ! printf '%s' "$router_row" | grep -q "q4_k"; then ok "the router keeps its precision"
else not_ok "the router keeps its precision" "$router_row"; fi
keys ":select blk.0.ffn_up_exps.2.weight" Enter
check "an expert selected" "blk.0.ffn_up_exps.2.weight" 10
keys ":set q8_0" Enter
keys a t
check "one expert set apart at q8_0" "applied:" 30

keys ":ppl 1" Enter
check "perplexity on the packed experts" "PPL base" 120
keys ":export $TMP/mixed.gguf" Enter
check "experts of one tensor at two types: the export says why" "experts at Q4_K and Q8_0 (expert 2)" 60
if [ -e "$TMP/mixed.gguf" ]; then not_ok "nothing written by the refused export"; else ok "nothing written by the refused export"; fi
keys ":undo" Enter
check "undo: the expert back at q4_k" "blk.0.ffn_up_exps.2.weight" 10
keys ":export $TMP/out.gguf" Enter
check "export of the MoE plan" "export finished" 60
# GGUF names the merged tensors in its header: one 3-D tensor per kind and block, no expert slices
if [ -s "$TMP/out.gguf" ] && [ "$(grep -c -a "blk.0.ffn_up_exps.weight" "$TMP/out.gguf")" -ge 1 ] &&
    ! grep -q -a "ffn_up_exps.2.weight" "$TMP/out.gguf"; then ok "the export merges the experts into llama.cpp's 3-D tensors"
else not_ok "the export merges the experts into llama.cpp's 3-D tensors"; fi
run info "$TMP/out.gguf"
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -qE 'blk\.0\.ffn_up_exps\.2\.weight .* Q4_K'; then
    ok "the export re-read: expert 2 back at Q4_K"
else not_ok "the export re-read" "exit $rc: $(printf '%s' "$out" | grep -E 'exps\.2' | head -2) $err"; fi
keys ":q" Enter
check "quits" "QB-EXITED-0" 10
finish
