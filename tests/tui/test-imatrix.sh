#!/bin/bash
# test-imatrix.sh — an importance matrix in the workbench (tmux, qb-docs-26m): :imatrix of a
# missing file and of another model's matrix are errors and the session goes on; :imatrix FILE
# loads one (the status line and the title bar say so); q4_k applied to the whole model and
# exported gives exactly the tensors `quantbench quantize --pure Q4_K --imatrix FILE` writes
# (llama-quantize --imatrix's bytes, tests/cli/test-quantize-imatrix.sh), and the export records
# the matrix; :imatrix off drops it and a new apply goes back to the plain bytes.
. "$(dirname "$0")/lib.sh"
BIN=$(cd "$(dirname "$QB_BIN")" && pwd)/$(basename "$QB_BIN")
export XDG_STATE_HOME=$TMP/state
MODEL=$(cd "$QB_MODELS" 2>/dev/null && pwd)/qb-docs-26m/qb-docs-26m-f16.gguf
SMALL=$(cd "$QB_MODELS" 2>/dev/null && pwd)/stories260K/stories260K-f32.gguf
CALIB=$(cd "$QB_DATA" 2>/dev/null && pwd)/calib-docs.txt
need_fixture "importance matrix in the workbench" "$MODEL" "$SMALL" "$CALIB" || { finish; exit; }
head -c 6000 "$CALIB" >"$TMP/text.txt"
"$BIN" imatrix "$MODEL" "$TMP/text.txt" -o "$TMP/docs.dat" --ctx 128 --chunks 2 -t 2 >/dev/null 2>&1
"$BIN" imatrix "$SMALL" "$TMP/text.txt" -o "$TMP/small.dat" --ctx 64 --chunks 2 -t 2 >/dev/null 2>&1
"$BIN" quantize "$MODEL" "$TMP/cli.gguf" Q4_K_M --pure --imatrix "$TMP/docs.dat" -t 2 >/dev/null 2>&1
"$BIN" quantize "$MODEL" "$TMP/plain.gguf" Q4_K_M --pure -t 2 >/dev/null 2>&1
[ -s "$TMP/cli.gguf" ] && [ -s "$TMP/plain.gguf" ] || { not_ok "the reference files" "quantize failed"; finish; exit; }

tensors() { "$BIN" info --sha256 "$1" | grep -E '^(blk|token_embd|output)[^ ]* +[0-9]' | sort; }
same_tensors() {
    local d; d=$(diff <(tensors "$2") <(tensors "$3"))
    if [ -z "$d" ] && [ "$(tensors "$2" | wc -l)" -gt 0 ]; then ok "$1"; else not_ok "$1" "$(printf '%s\n' "$d" | head -4)"; fi
}
idle() {
    local deadline=$((SECONDS + ${1:-60}))
    while [ $SECONDS -lt $deadline ] && screen | grep -q 'job: '; do sleep 0.2; done
}

start 150 44 "$BIN" "$MODEL"
check "model opens" "Qb Docs 26m" 20
keys ":imatrix $TMP/missing.dat" Enter
check ":imatrix of a missing file: an error naming it" "imatrix: $TMP/missing.dat" 10
keys ":imatrix $TMP/small.dat" Enter
check ":imatrix of another model's matrix: the entry that does not fit" "small.dat: entry 'blk.0.attn_q.weight' has 64 values" 10
keys ":imatrix $TMP/docs.dat" Enter
check ":imatrix loads (status line)" "imatrix docs.dat, 42 entries: applies of ggml types are now weighted" 10
check "the title bar says an imatrix is loaded" "imatrix docs.dat, 42 entries" 5

keys ":set q4_k" Enter
check "q4_k chosen" "q4_k" 10
keys ":apply model" Enter
check "q4_k applied to the model" "applied:" 90
idle 60
keys ":export $TMP/tui.gguf" Enter
check "export" "export finished" 90
same_tensors "apply + export with the imatrix: quantize --imatrix's tensors" "$TMP/tui.gguf" "$TMP/cli.gguf"
if "$BIN" info "$TMP/tui.gguf" | grep -q "importance matrix $TMP/docs.dat"; then ok "the export records the imatrix"
else not_ok "the export records the imatrix" "$("$BIN" info "$TMP/tui.gguf" | grep quantbench)"; fi

keys ":imatrix off" Enter
check ":imatrix off" "imatrix off: applies quantize without importance" 10
if screen | head -1 | grep -q "imatrix docs.dat"; then not_ok "the title bar no longer names it" "$(screen | head -1)"
else ok "the title bar no longer names it"; fi
keys ":apply model" Enter
check "applied again without it (the apply state redoes every tensor)" "applied:" 90
idle 60
keys ":export $TMP/tui-plain.gguf" Enter
check "export without" "export finished" 90
same_tensors "without the imatrix: the plain tensors again" "$TMP/tui-plain.gguf" "$TMP/plain.gguf"
keys ":q" Enter
check "quits" "QB-EXITED-0" 10
finish
