#!/bin/bash
# test-workbench.sh — the workbench at work (tmux): on the demo, changing the bits changes the
# metrics and the plots; on qb-docs-26m: search a tensor, apply the choice to every ffn_down
# (browser and plan follow, undo restores), a short side-by-side generation, a perplexity job
# cancelled with Ctrl-C, resize to 40×12 and back, Lua on the command line (a good call and
# an error; a long loop on the script thread leaves keys working and Ctrl-C stops it), the
# sensitivity view per tensor and per layer, and a truncated model file that must leave the
# current model open.
. "$(dirname "$0")/lib.sh"
BIN=$(cd "$(dirname "$QB_BIN")" && pwd)/$(basename "$QB_BIN")
export XDG_STATE_HOME=$TMP/state
MODEL=$(cd "$QB_MODELS" 2>/dev/null && pwd)/qb-docs-26m/qb-docs-26m-f16.gguf

# --- demo: bits change the metrics and the plots ---
start 120 40 "$BIN"
check "demo opens at 4 bits" "4 bit"
wait_for "SQNR" && sleep 0.3
before_sqnr=$(screen | grep -o 'SQNR *[0-9.]* dB')
before_plot=$(screen | sed -n '4,30p' | cut -c36-90)
keys b
check "b: fewer bits" "3 bit"
deadline=$((SECONDS + 10)); after_sqnr=$before_sqnr
while [ $SECONDS -lt $deadline ] && [ "$after_sqnr" = "$before_sqnr" ]; do sleep 0.1; after_sqnr=$(screen | grep -o 'SQNR *[0-9.]* dB'); done
after_plot=$(screen | sed -n '4,30p' | cut -c36-90)
if [ -n "$before_sqnr" ] && [ "$after_sqnr" != "$before_sqnr" ]; then ok "metrics follow the bits ($before_sqnr -> $after_sqnr)"
else not_ok "metrics follow the bits" "before '$before_sqnr' after '$after_sqnr'"; fi
if [ "$before_plot" != "$after_plot" ]; then ok "plots follow the bits"; else not_ok "plots follow the bits"; fi
keys m
check "m: next method" "RTN asym"
# Lua runs on its own thread: a long loop leaves the screen live, Ctrl-C stops it
keys ':for i = 1, 1e13 do end' Enter
check "a long script shows as running" "script: running" 10
keys b
check "keys work while the script runs" "2 bit" 10
if screen | grep -qF "script: running"; then ok "the script still runs after the key"
else not_ok "the script still runs after the key" "$(screen | head -3)"; fi
keys C-c
check "Ctrl-C cancels the script with a message" "cancelled" 10
deadline=$((SECONDS + 10))
while [ $SECONDS -lt $deadline ] && screen | grep -qF "script: running"; do sleep 0.1; done
if screen | grep -qF "script: running"; then not_ok "the script has stopped" "$(screen | head -3)"; else ok "the script has stopped"; fi
keys ':qb.status("after " .. qb.selected())' Enter
check "the next line runs (session calls go through the UI thread)" "after gauss" 10
# the mouse (X10 reports, as xterm sends them): a click on a browser row selects it, the wheel
# moves on
chr() { printf "\\$(printf %03o "$1")"; }
mouse() { keys -l $'\033[M'"$(chr $((32 + $1)))$(chr $((33 + $2)))$(chr $((33 + $3)))"; } # BUTTON X Y
mouse 0 5 4
check "a click on a browser row selects the tensor" "uniform.weight  512" 10
mouse 65 5 4
check "the wheel moves down the list" "heavy_tailed.weight  512" 10
mouse 64 5 4
check "the wheel moves up the list" "gauss_outliers.weight  512" 10
# a recipe file on the script thread
printf 'qb.select("uniform")\nqb.status("recipe ran on " .. qb.selected())\n' > "$TMP/recipe.lua"
keys ":run $TMP/recipe.lua" Enter
check ":run runs a recipe file (session calls included)" "recipe ran on uniform.weight" 10
keys ":run $TMP/missing.lua" Enter
check ":run of a missing file: an error in the status line" "Lua: " 10
keys P
check "presentation mode" "presentation"
keys ' '
check "presentation steps the bits" "bit"
keys q
check "quit from the demo" "QB-EXITED-0"

need_fixture "the workbench on a real model" "$MODEL" || { finish; exit; }

# --- a real model, opened from inside ---
start 140 44 "$BIN"
wait_for "gauss_outliers"
keys ":open $MODEL" Enter
check ":open loads qb-docs-26m" "Qb Docs 26m" 20
keys / blk.3.ffn_down Enter
check "/ search selects the tensor" "blk.3.ffn_down.weight  512" 10
keys a k
check "apply to every ffn_down" "applied:" 30
ffn=$(screen | grep -c 'ffn_down *int4-channel')
if [ "$ffn" -ge 1 ]; then ok "browser shows ffn_down at int4-channel"; else not_ok "browser shows ffn_down at int4-channel" "$(screen | head -25)"; fi
keys ":w $TMP/plan.txt" Enter
check "plan saved" "plan saved"
if grep -q 'blk\.\*\.ffn_down\.weight = int4-channel' "$TMP/plan.txt"; then ok "plan file has the ffn_down rule"
else not_ok "plan file has the ffn_down rule" "$(cat "$TMP/plan.txt")"; fi
keys u
check "undo: no rules left" "rules     0" 10
check "undo applied" "applied:" 30
keys U
check "redo: the rule is back" "rules     1" 10
check "redo applied" "applied:" 30

# short generation: both sides stream and report tokens/s
keys ":gen The function returns" Enter
check "generation runs both models" "generation finished" 60
n_tps=$(screen | grep -c ' t/s')
if [ "$n_tps" -ge 2 ]; then ok "tokens/s for base and plan"; else not_ok "tokens/s for base and plan" "$(screen | tail -6)"; fi
if screen | grep -q '^ base .*a pointer'; then ok "base continues the prompt"; else not_ok "base continues the prompt" "$(screen | tail -6)"; fi

# perplexity job, cancelled
keys ":ppl 40" Enter
check "perplexity job starts" "job: ppl" 10
keys C-c
check "Ctrl-C cancels the job" "ppl cancelled" 30
if screen | grep -q "Quit quantbench"; then not_ok "one Ctrl-C with a job does not ask to quit"; else ok "one Ctrl-C with a job does not ask to quit"; fi

# resize
$T resize-window -x 40 -y 12
check "40x12: enlarge the window" "enlarge the window"
$T resize-window -x 140 -y 44
check "back to 140x44: layout restored" "TENSORS"

# Lua
keys ':qb.select("blk.2.attn_q"); qb.set{method="rtn-asym", bits=3, group=64}' Enter
check "Lua selects and sets" "int3-g64-asym" 10
check "Lua selection shown" "blk.2.attn_q.weight"
keys ':qb.set{bits=42}' Enter
check "Lua error in the status line" "Lua: " 10
check "Lua error names the problem" "bits 42 out of range"
keys ':1 + 41' Enter
check "a Lua expression prints its value" " 42" 10
keys ':for i = 1,' Enter
check "Lua syntax error in the status line" "Lua: cmdline:1:" 10

# heat marks from a scan, the sensitivity view, jump to a tensor
keys ':qb.heat({["blk.1.attn_v.weight"] = 0.5, ["blk.4.ffn_up.weight"] = 0.25, ["blk.4.ffn_down.weight"] = 0.35}, "KLD")' Enter
sleep 0.3
keys S
check "sensitivity view lists the scanned tensors" "sensitivity (KLD)" 10
check "most sensitive first" "blk.1.attn_v.weight" 5
keys Enter
check "Enter jumps to the tensor" "blk.1.attn_v.weight  128" 10
# grouped by layer: the sum puts blk.4 (0.6) above blk.1 (0.5), the maximum the other way
first_of() { screen | grep -n -e "$1" -e "$2" | head -1 | grep -q -e "$1"; }
keys S l
check "l groups the view by layer (sum)" "per layer, sum" 10
if first_of "blk.4 (layer)" "blk.1 (layer)"; then ok "layer sum: blk.4 first"; else not_ok "layer sum: blk.4 first" "$(screen | head -12)"; fi
keys l
check "l again: per layer, max" "per layer, max" 10
if first_of "blk.1 (layer)" "blk.4 (layer)"; then ok "layer max: blk.1 first"; else not_ok "layer max: blk.1 first" "$(screen | head -12)"; fi
keys h
check "h steps back to the sum" "per layer, sum" 10
keys Enter
check "Enter on a layer jumps to its most sensitive tensor" "blk.4.ffn_down.weight  512" 10

# export: a target that cannot be written is refused and leaves nothing; int formats export
# (repacked into ggml blocks); Q8_0 everywhere writes a GGUF that quantbench opens again
keys ":export $TMP/nodir/bad.gguf" Enter
check "export to an unwritable path refused" "export: " 30
if [ -e "$TMP/nodir/bad.gguf" ]; then not_ok "refused export leaves no file"; else ok "refused export leaves no file"; fi
keys ":export $TMP/ints.gguf" Enter
check "export of int formats finished" "export finished" 60
if "$BIN" info "$TMP/ints.gguf" >/dev/null 2>&1; then ok "int formats exported as a GGUF that opens"
else not_ok "int formats exported as a GGUF that opens"; fi
keys ":set q8_0" Enter ":apply model" Enter
check "Q8_0 applied to the whole model" "rules     2" 30
wait_for "applied:" 60
keys ":export $TMP/out.gguf" Enter
check "export finished" "export finished" 60
if "$BIN" info "$TMP/out.gguf" 2>/dev/null | grep -q "Q8_0"; then ok "exported GGUF opens, tensors in Q8_0"
else not_ok "exported GGUF opens, tensors in Q8_0"; fi

# truncated model file
head -c 200000 "$MODEL" > "$TMP/trunc.gguf"
keys ":open $TMP/trunc.gguf" Enter
check "truncated file: error" "trunc.gguf" 10
if screen | grep -q "Qb Docs 26m" && screen | grep -q "kept"; then ok "truncated file: current model kept"
else not_ok "truncated file: current model kept" "$(screen | tail -3)"; fi
keys q
check "quit" "QB-EXITED-0"
finish
