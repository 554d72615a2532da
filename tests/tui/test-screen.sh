#!/bin/bash
# test-screen.sh — the TUI in a real terminal (tmux): opens on the built-in demo and on a
# model, says "make the window larger" on tiny terminals, q quits, and the terminal is
# restored on quit and on SIGTERM; Ctrl-C does not kill it.
. "$(dirname "$0")/lib.sh"
BIN=$(cd "$(dirname "$QB_BIN")" && pwd)/$(basename "$QB_BIN")

start 120 40 "$BIN"
check "demo screen without a model" "built-in demo"
keys C-c
sleep 0.3
check "Ctrl-C does not kill the UI" "built-in demo" 2
keys q
check "q quits with status 0" "QB-EXITED-0"

start 120 40 "$BIN" "$QB_MODELS/stories260K/stories260K.bin"
check "model summary" "blk.0.attn_q.weight"
check "tokenizer line" "tokenizer:"
keys q
check "q quits after a model" "QB-EXITED-0"

start 40 8 "$BIN"
check "tiny terminal asks for a larger window" "make the window larger"
$T resize-window -x 120 -y 40 2>/dev/null
check "resize to a normal size redraws" "built-in demo"
keys q
check "quit after resize" "QB-EXITED-0"

start 120 40 "$BIN"
wait_for "built-in demo"
pkill -TERM -f "^$BIN\$"
check "SIGTERM restores the terminal and exits" "QB-EXITED-143"
if screen | grep -q "built-in demo"; then not_ok "no UI left on screen after SIGTERM" "$(screen | head)"; else ok "no UI left on screen after SIGTERM"; fi

start 120 40 "$BIN" /no/such/model.gguf
check "bad model path: clear error, no UI" "cannot open"
check "bad model path exits 1" "QB-EXITED-1"
finish
