#!/bin/bash
# test-tasks.sh — task accuracy in the workbench (tmux): `:tasks FILE N` sets a task file, the next
# `:ppl` job scores it after PPL/KLD and the result line shows it beside them, as `quantbench
# tasks` computes it (the same core call; its agreement with llama-perplexity is
# tests/cli/test-tasks.sh); a bad task file fails the job with its one-line message; `:tasks
# off` stops it.
. "$(dirname "$0")/lib.sh"
BIN=$(cd "$(dirname "$QB_BIN")" && pwd)/$(basename "$QB_BIN")
export XDG_STATE_HOME=$TMP/state
MODELS=$(cd "$QB_MODELS" 2>/dev/null && pwd)
MODEL=$MODELS/stories260K/stories260K-f32.gguf
TEXT=$MODELS/stories260K/ppl-sample.txt
WG=$(pwd)/tests/data/tasks/winogrande.csv
need_fixture "tasks in the workbench" "$MODEL" "$TEXT" || { finish; exit; }
"$QB_BIN" tasks "$MODEL" --winogrande "$WG" --tasks 100 -t 1 >"$TMP/cli.out" 2>&1
want=$(sed -n 's/^acc = \([0-9.]*\) +\/- \([0-9.]*\)/\1 \2/p' "$TMP/cli.out" | awk '{ printf "winogrande %.2f ± %.2f (100 tasks)", $1, $2 }')
[ -n "$want" ] || { not_ok "quantbench tasks for the expected figure" "$(cat "$TMP/cli.out")"; finish; exit; }

# run in $TMP, so the bad file below has a short name that fits the status line
start 140 40 "cd '$TMP' && '$BIN' '$MODEL'"
check "the workbench opens" "blk.0" 20
keys ":tasks $WG 100" Enter
check ":tasks sets the file" "tasks: winogrande (drawn as llama-perplexity), scored after each :ppl" 10
keys ":ppl 1 $TEXT" Enter
check ":ppl shows the task accuracy beside PPL/KLD ($want)" "$want" 120
printf 'ctx\n9\na\nb\nc\nd\n' >"$TMP/bad.txt"
keys ":tasks bad.txt" Enter
check ":tasks with a HellaSwag file" "tasks: hellaswag (drawn as llama-perplexity), scored" 10
keys ":ppl 1" Enter
check "a malformed task file fails the job with its message" "bad.txt: task 1 (line 2): the gold ending index '9'" 120
keys ":tasks off" Enter
check ":tasks off" "tasks: off" 10
keys ":ppl 1" Enter
# the status line's result ("PPL base X  plan": the metrics panel writes "PPL base  X")
if wait_for "(1 chunks)" 120 && screen | grep -q "PPL base [0-9.]*  plan" &&
    ! screen | grep -q "winogrande [0-9]\|hellaswag [0-9]"; then ok ":ppl without tasks after :tasks off"
else not_ok ":ppl without tasks after :tasks off" "$(screen | tail -3)"; fi
keys ":q" Enter
check "quits" "QB-EXITED-0" 10
finish
