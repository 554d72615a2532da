#!/bin/bash
# test-train.sh — fine-tuning in the workbench (tmux, stories260K): after the plan is applied
# (int3 per channel on every matrix), :finetune FILE STEPS LR runs QAT with distillation as the
# long job: the status line counts steps with the loss, tokens/s and ETA, the plots panel draws
# the loss curve above the tensor's plots, the selected matrix's plots follow its latent weights
# and their quantization step by step ("as trained, step N"), and at the end the status says the loss fell and the
# model holds the result (the browser still shows int3-channel); Ctrl-C stops a long run with
# the model as it was; :finetune heal trains the norms; bad input is refused in the status line.
. "$(dirname "$0")/lib.sh"
BIN=$(cd "$(dirname "$QB_BIN")" && pwd)/$(basename "$QB_BIN")
export XDG_STATE_HOME=$TMP/state
MODEL=$(cd "$QB_MODELS" 2>/dev/null && pwd)/stories260K/stories260K.bin
TEXT=$(cd "$QB_MODELS" 2>/dev/null && pwd)/stories260K/ppl-sample.txt
need_fixture "fine-tuning in the workbench" "$MODEL" "$TEXT" || { finish; exit; }

start 150 44 "$BIN" "$MODEL"
check "model opens" "blk.0" 20
keys ":finetune" Enter
check ":finetune without a file says what it wants" "finetune: which text?" 10
keys ":finetune $TMP/nope.txt" Enter
check ":finetune of a missing file" "finetune: cannot read" 10
keys ":set int3-channel" Enter
check "int3-channel chosen" "int3-channel" 10
keys ":apply model" Enter
check "plan applied to the model" "applied: model" 30
keys ":finetune $TEXT 12 1e-3" Enter
check "the loss curve is drawn above the plots" "training loss: QAT + distillation on ppl-sample.txt" 10
check "the run ends, the model holds the result" "finetune: QAT + distillation on ppl-sample.txt, 12 steps, loss" 120
line=$(screen | grep -o "12 steps, loss [0-9.]* -> [0-9.]*" | head -1)
if echo "$line" | awk '{ exit !($4 > $6) }'; then ok "the loss fell ($line)"; else not_ok "the loss fell" "'$line'"; fi
check "the matrices keep their format" "int3-channel" 5

keys ":finetune $TEXT 100000" Enter
check "a long run counts steps in the status line" "/100000  loss " 60
if screen | grep -qE "finetune step [0-9]+/100000  loss [0-9.]+  [0-9]+ tok/s  ETA [0-9]+ s"; then ok "step, loss, tokens/s and ETA"
else not_ok "step, loss, tokens/s and ETA" "$(screen | tail -2)"; fi
keys ":select blk.1.ffn_down" Enter
check "the selected matrix's plots follow the training" "as trained, step" 30
s1=$(screen | grep -o 'as trained, step [0-9]*' | head -1 | awk '{print $4}')
wait_for "as trained, step $((s1 + 1))" 30
s2=$(screen | grep -o 'as trained, step [0-9]*' | head -1 | awk '{print $4}')
if [ -n "$s1" ] && [ -n "$s2" ] && [ "$s2" -gt "$s1" ]; then ok "its plots move on with the steps ($s1 -> $s2)"
else not_ok "its plots move on with the steps" "'$s1' -> '$s2'" "$(screen | head -8)"; fi
keys C-c
check "Ctrl-C stops it with the model as it was" ": the model is as it was" 60
keys ":finetune heal $TEXT 4" Enter
check ":finetune heal runs and ends" "finetune: healing on ppl-sample.txt, 4 steps, loss" 60
keys ":q" Enter
sleep 1
finish
