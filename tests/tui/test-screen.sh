#!/bin/bash
# test-screen.sh — the TUI in a real terminal (tmux): opens on the built-in demo and on a
# model, says "enlarge the window" on tiny terminals and recovers on resize, Ctrl-C does not
# kill it (a second one asks to quit), :plot writes PDF plots, q quits, and the terminal is restored on quit (stty
# modes as before) and on SIGTERM; a bad model path fails before the UI starts.
. "$(dirname "$0")/lib.sh"
BIN=$(cd "$(dirname "$QB_BIN")" && pwd)/$(basename "$QB_BIN")
export XDG_STATE_HOME=$TMP/state

start 120 40 "$BIN"
check "demo: browser, plots, metrics" "gauss_outliers"
check "demo: mapping plot" "mapping: original"
check "demo: metrics" "SQNR"
check "demo: generation says it needs a real model" "generation needs a real model"
keys C-c
check "Ctrl-C without a job asks whether to quit" "Quit quantbench?"
keys n
sleep 0.2
check "answering no keeps the UI" "staying" 2
# :plot writes the three plots of the selection through cairo, the extension picks the kind
keys ":plot $TMP/p.pdf" Enter
for _ in $(seq 50); do [ -s "$TMP/p-error.pdf" ] && break; sleep 0.1; done
if [ "$(head -c 5 "$TMP/p-values.pdf" 2>/dev/null)" = "%PDF-" ] && [ "$(head -c 5 "$TMP/p-mapping.pdf" 2>/dev/null)" = "%PDF-" ] &&
    tail -c 8 "$TMP/p-error.pdf" 2>/dev/null | grep -q "%%EOF"; then ok ":plot p.pdf writes three PDF plots"
else not_ok ":plot p.pdf writes three PDF plots" "$(ls -la "$TMP" | head)" "$(screen | tail -3)"; fi
keys q
check "q quits with status 0" "QB-EXITED-0"

start 120 40 "$BIN" "$QB_MODELS/stories260K/stories260K.bin"
check "model: tensors listed" "token_embd"
check "model: layer headers" "blk.0"
keys q
check "q quits after a model" "QB-EXITED-0"

start 40 8 "$BIN"
check "tiny terminal asks for a larger window" "enlarge the window"
$T resize-window -x 120 -y 40 2>/dev/null
check "resize to a normal size redraws" "gauss_outliers"
keys q
check "quit after resize" "QB-EXITED-0"

# the terminal modes after quitting are those before starting
start 120 40 "stty -g > $TMP/before; $BIN; stty -g > $TMP/after"
check "started under stty" "gauss_outliers"
keys q
check "quit" "QB-EXITED-0"
if [ -s "$TMP/before" ] && cmp -s "$TMP/before" "$TMP/after"; then ok "stty -g identical before and after"
else not_ok "stty -g identical before and after" "before: $(cat "$TMP/before")" "after:  $(cat "$TMP/after")"; fi

start 120 40 "$BIN"
wait_for "gauss_outliers"
pkill -TERM -f "^$BIN\$"
check "SIGTERM restores the terminal and exits" "QB-EXITED-143"
if screen | grep -q "gauss_outliers"; then not_ok "no UI left on screen after SIGTERM" "$(screen | head)"; else ok "no UI left on screen after SIGTERM"; fi

# a crash restores the terminal too
start 120 40 "stty -g > $TMP/before; $BIN; echo QB-STATUS-\$?; stty -g > $TMP/after"
wait_for "gauss_outliers"
pkill -SEGV -f "^$BIN\$"
check "SIGSEGV: the terminal is restored, the signal kept" "QB-STATUS-139"
if cmp -s "$TMP/before" "$TMP/after"; then ok "stty -g identical after SIGSEGV"; else not_ok "stty -g identical after SIGSEGV"; fi

start 120 40 "$BIN" /no/such/model.gguf
check "bad model path: clear error, no UI" "cannot open"
check "bad model path exits 1" "QB-EXITED-1"
finish
