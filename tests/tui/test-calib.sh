#!/bin/bash
# test-calib.sh — calibration methods in the workbench (tmux, qb-docs-26m): GPTQ chosen before
# any calibration shows the hint; :calib of a missing file is an error and the session goes on;
# Ctrl-C cancels a calibration and a later one completes; GPTQ 4-bit group 128 on
# blk.2.ffn_down shows the layer's output error below RTN's; AWQ shows its own; learned
# rounding draws its loss curve live, reaches its last step and ends below RTN; a tensor
# without a calibration point says so; apply GPTQ to the tensor, export, then undo restores
# the previous format in the browser; AWQ on top (the folded model's perplexity stays close to
# the base's) and undo (a rebuild); :act smoothquant / int8 / off (the plan comes back, the
# perplexity too).
. "$(dirname "$0")/lib.sh"
BIN=$(cd "$(dirname "$QB_BIN")" && pwd)/$(basename "$QB_BIN")
export XDG_STATE_HOME=$TMP/state
MODEL=$(cd "$QB_MODELS" 2>/dev/null && pwd)/qb-docs-26m/qb-docs-26m-f16.gguf
CALIB=$(cd "$QB_DATA" 2>/dev/null && pwd)/calib-docs.txt
need_fixture "calibration in the workbench" "$MODEL" "$CALIB" || { finish; exit; }

# the demo: GPTQ shows the hint, :calib says why it cannot run, other methods still work
start 120 40 "$BIN"
wait_for "gauss_outliers" 10
keys ":method gptq" Enter
check "demo: GPTQ shows the calibration hint" "GPTQ needs calibration data: :calib FILE" 10
keys ":calib $CALIB" Enter
check "demo: :calib says the demo has no forward pass" "no forward pass" 10
keys ":method nf4" Enter
check "demo: NF4 still analysed" "SQNR" 10
keys "?"
check "help longer than 120x40 says it scrolls" "more below: j / PgDn" 5
keys NPage NPage NPage
check "help scrolled to its end" "anything else runs as Lua" 5
check "help at its end says so" "end (k / PgUp: back)" 5
keys x
keys ":q" Enter
check "demo quits" "QB-EXITED-0" 10

# ppl_close NAME: one chunk of perplexity; the plan within 10% of the base (a broken fold or
# restore gives far more)
ppl_close() {
    keys ":ppl 1" Enter
    local line="" deadline=$((SECONDS + 90)) # the status line's result (the metrics panel has older ones)
    while [ $SECONDS -lt $deadline ] && [ -z "$line" ]; do
        sleep 0.2; line=$(screen | grep -o 'PPL base [0-9.]*  plan [0-9.]*' | head -1)
    done
    local b p; b=$(echo "$line" | awk '{print $3}'); p=$(echo "$line" | awk '{print $5}')
    if awk -v b="$b" -v p="$p" 'BEGIN { exit !(b > 0 && p > 0 && p < 1.1 * b) }'; then ok "$1: perplexity $p vs base $b"
    else not_ok "$1: perplexity close to the base" "$line"; fi
    keys ":qb.status('ppl checked')" Enter
    wait_for "ppl checked" 10
}

# mark NAME: the status line replaced by a marker, so that a check for a job's result cannot
# match the message of an earlier job; idle: wait until no job shows in the title bar.
mark() {
    keys ":qb.status('mark $1')" Enter
    wait_for "mark $1" 10 || true
}
idle() {
    local deadline=$((SECONDS + ${1:-60}))
    while [ $SECONDS -lt $deadline ] && screen | grep -q 'job: '; do sleep 0.2; done
}

start 140 44 "$BIN" "$MODEL"
check "model opens" "Qb Docs 26m" 20
keys ":select blk.2.ffn_down" Enter
check "tensor selected" "blk.2.ffn_down.weight  512" 10
keys M M M
check "M cycles back to GPTQ" "GPTQ" 10
check "GPTQ without calibration: the hint" "GPTQ needs calibration data: :calib FILE" 10

keys ":calib $TMP/missing.txt" Enter
check ":calib of a missing file: an error" "calib: cannot read" 10
keys ":bits 4" Enter
check "the session goes on" "4 bit" 10

keys ":calib $CALIB 64 256" Enter
check "a calibration job starts" "job: calib" 10
keys C-c
check "Ctrl-C cancels the calibration" "calib cancelled" 30
if screen | grep -qF "GPTQ needs calibration data"; then ok "still no calibration after the cancel"
else not_ok "still no calibration after the cancel" "$(screen | head -12)"; fi

keys ":calib $CALIB 8 128" Enter
check "a later calibration completes" "calibrated: calib-docs.txt, 8 windows x 128 tokens" 120
keys ":group 128" Enter
check "GPTQ 4 bit group 128" "group 128" 10
check "GPTQ analysis: the output error line" "output err" 60
wait_for "RTN     " 30
g=$(screen | grep -o 'GPTQ    [0-9.e+-]*' | head -1 | awk '{print $2}')
r=$(screen | grep -o 'RTN     [0-9.e+-]*' | head -1 | awk '{print $2}')
if [ -n "$g" ] && [ -n "$r" ] && awk -v g="$g" -v r="$r" 'BEGIN { exit !(g > 0 && g < r) }'; then
    ok "GPTQ's output error below RTN's ($g < $r)"
else not_ok "GPTQ's output error below RTN's" "GPTQ '$g' RTN '$r'" "$(screen | head -30)"; fi
check "the plots are drawn" "values" 10

keys m
check "m: AWQ" "AWQ" 10
check "AWQ analysis: its output error" "AWQ     " 60
keys m
check "m: learned rounding" "Learned" 10
check "learned rounding draws its loss curve live" "training loss: learned rounding, step" 60
check "the curve reaches the last step" "step 101/101" 120
check "learned rounding's output error" "Learned " 30
wait_for "RTN     " 30
l=$(screen | grep -o 'Learned [0-9][0-9.e+-]*' | head -1 | awk '{print $2}')
r=$(screen | grep -o 'RTN     [0-9.e+-]*' | head -1 | awk '{print $2}')
if [ -n "$l" ] && [ -n "$r" ] && awk -v l="$l" -v r="$r" 'BEGIN { exit !(l > 0 && l < r) }'; then
    ok "learned rounding's output error below RTN's ($l < $r)"
else not_ok "learned rounding's output error below RTN's" "Learned '$l' RTN '$r'" "$(screen | head -30)"; fi
keys M
check "back to AWQ (cached)" "AWQ     " 10
keys M
check "back to GPTQ (cached)" "GPTQ    " 10

keys ":select token_embd" Enter
check "a tensor without a calibration point says so" "has no calibration point" 10
keys ":select blk.2.ffn_down" Enter
check "back on ffn_down" "GPTQ    " 30

mark apply
keys a t
check "apply GPTQ to the tensor" "applied:" 60
idle
n_applied=$(screen | grep -c 'ffn_down *int4-g128')
if [ "$n_applied" -ge 1 ]; then ok "browser shows ffn_down at int4-g128-asym"
else not_ok "browser shows ffn_down at int4-g128-asym" "$(screen | head -30)"; fi
keys ":export $TMP/gptq.gguf" Enter
check "export after the GPTQ apply" "export finished" 60
mark undo
keys u
check "undo: no rules left" "rules     0" 10
check "undo applied" "applied:" 60
idle
n_after=$(screen | grep -c 'ffn_down *int4-g128')
if [ "$n_after" -eq 0 ]; then ok "undo: the browser shows the previous format"
else not_ok "undo: the browser shows the previous format" "$(screen | head -30)"; fi
mark redo
keys U
check "redo: the rule is back" "rules     1" 10
check "redo applies GPTQ again" "applied:" 60
idle
n_redo=$(screen | grep -c 'ffn_down *int4-g128')
if [ "$n_redo" -ge 1 ]; then ok "redo: back at int4-g128-asym"; else not_ok "redo: back at int4-g128-asym" "$(screen | head -30)"; fi
# GPTQ on the whole model, cancelled: the model stays exactly as it was
before=$(screen | grep -c 'int4-g128')
keys a m
check "GPTQ apply to the model runs as a job" "job: apply" 10
keys C-c
check "Ctrl-C cancels the apply" "apply cancelled" 60
if [ "$(screen | grep -c 'int4-g128')" -eq "$before" ] && [ "$(screen | grep -c 'attn_q *f16')" -ge 2 ]; then
    ok "cancelled GPTQ apply: the browser shows the model unchanged"
else not_ok "cancelled GPTQ apply: the browser shows the model unchanged" "$(screen | head -30)"; fi
idle
mark undo2
keys u
check "undo drops the cancelled rule" "rules     1" 10
check "the undo's replay finishes" "applied:" 60
idle
# Lua's qb.calib reaches the same command
keys ':qb.calib("'"$TMP"'/missing.txt")' Enter
check "qb.calib of a missing file: the error" "cannot read" 10
# AWQ on top (its folds reach the neighbours: ffn_up holds the 1/s rows), then undo back to GPTQ
keys m
check "m: AWQ again" "AWQ     " 30
mark awq
keys a t
check "apply AWQ to the tensor" "rules     2" 10
check "AWQ applied" "applied:" 60
idle
if screen | grep -q 'ffn_up *f32'; then ok "AWQ folded 1/s into ffn_up (f32 now)"
else not_ok "AWQ folded 1/s into ffn_up (f32 now)" "$(screen | head -30)"; fi
ppl_close "AWQ-folded model"
mark undo3
keys u
check "undo the AWQ apply" "rules     1" 10
check "undo rebuilt the model" "applied:" 60
idle
if [ "$(screen | grep -c 'ffn_up *f32')" -eq 0 ] && screen | grep -q 'ffn_down *int4-g128'; then ok "undo: ffn_up original, ffn_down GPTQ again"
else not_ok "undo: ffn_up original, ffn_down GPTQ again" "$(screen | head -30)"; fi
# activation methods: SmoothQuant on the session's calibration, LLM.int8, then off (plan back)
keys ":act smoothquant 0.5" Enter
check "act smoothquant runs as a job" "act: SmoothQuant W8A8, alpha 0.50 on every block matrix" 60
n_int8=$(screen | grep -c 'ffn_down *int8-ch')
if [ "$n_int8" -ge 2 ]; then ok "block matrices at int8 per channel"; else not_ok "block matrices at int8 per channel" "$(screen | head -30)"; fi
keys a t
check "plan changes refused while an act method is on" ":act off first" 10
keys ":act int8 6" Enter
check "act int8 (LLM.int8)" "act: LLM.int8, threshold 6 on every block matrix" 60
mark actoff
keys ":act off" Enter
check "act off re-applies the plan" "act off: re-applying the plan" 30
check "plan re-applied" "applied:" 60
idle
if [ "$(screen | grep -c 'ffn_down *int8-ch')" -eq 0 ] && screen | grep -q 'ffn_down *int4-g128'; then
    ok "act off: ffn_down back at the plan's GPTQ format"
else not_ok "act off: ffn_down back at the plan's GPTQ format" "$(screen | head -30)"; fi
ppl_close "after act off"
keys "?"
check "help lists :calib" "calib FILE [SAMPLES] [CTX]" 10
keys q
keys ":q" Enter
check "quit" "QB-EXITED-0" 10
finish
