#!/bin/bash
# test-generate.sh — one prompt pipeline for every front end: `quantbench generate` and Lua's
# m:generate give the same continuation for the same prompt, sampling and seed (llama2.c
# stories260K, sampled), both equal llama2.c's greedy reference and transformers' greedy ids
# (qb-docs-26m), and both follow the tokenizer's BOS policy (a Hugging Face copy whose
# tokenizer_config.json says add_bos_token=false feeds the prompt without BOS in both).
. "$(dirname "$0")/lib.sh"
S=$QB_MODELS/stories260K
D=$QB_MODELS/qb-docs-26m
lua_gen() { # lua_gen MODEL PROMPT OPTS: prints "n_prompt=N ids=..." then the continuation
    run run -e "local m <close> = qb.open('$1'); local ids = {}
local o = {$3}; o.on_token = function(_, id) ids[#ids + 1] = id end
local t, st = m:generate('$2', o)
print('n_prompt=' .. st.n_prompt .. ' ids=' .. table.concat(ids, ','))
print(t)"
}
if [ ! -f "$S/stories260K.bin" ]; then
    echo "ok 1 - generate: CLI and Lua # SKIP $S missing"
else
    run generate "$S/stories260K.bin" -p "Once upon a time" -n 96
    if [ "$rc" -eq 0 ] && [ "$out"$'\n' = "$(cat "$S/reference-greedy.txt")"$'\n' ]; then
        ok "CLI greedy continuation equals llama2.c run.c's reference-greedy.txt"
    else not_ok "CLI greedy vs reference-greedy.txt (exit $rc)" "$out" "$err"; fi
    run generate "$S/stories260K.bin" -p "Once upon a time" -n 64 --temp 0.9 --top-p 0.9 --seed 7 --no-echo
    cli=$out cli_err=$err
    lua_gen "$S/stories260K.bin" "Once upon a time" "n = 64, temp = 0.9, top_p = 0.9, seed = 7"
    lua=$(printf '%s\n' "$out" | tail -n +2)
    if [ "$rc" -eq 0 ] && [ -n "$cli" ] && [ "$cli" = "$lua" ] && printf '%s' "$cli_err" | grep -q "prompt: 5 tokens" &&
        printf '%s' "$out" | head -1 | grep -q "^n_prompt=5 "; then
        ok "CLI and Lua sample the same continuation (temp 0.9, top-p 0.9, seed 7; BOS + 4 prompt tokens each)"
    else not_ok "CLI and Lua sampled continuations differ (exit $rc)" "cli: $cli" "lua: $out" "$cli_err $err"; fi
fi
if [ ! -f "$D/qb-docs-26m-f16.gguf" ] || [ ! -d "$D/hf" ]; then
    echo "ok $((n + 1)) - generate: qb-docs-26m # SKIP $D missing"
else
    # the first case of transformers' greedy.json: its prompt ids start with BOS (0)
    want_ids=$(awk '/"greedy_ids"/ {on = 1; next} on && /\]/ {exit} on {gsub(/[ ,]/, ""); printf "%s%s", sep, $0; sep = ","}' "$D/fixtures/greedy.json")
    want_text=$(grep -m1 '"greedy_text"' "$D/fixtures/greedy.json" | sed 's/^ *"greedy_text": "//; s/"$//')
    want_text=$(printf '%b' "$want_text")
    n_ids=$(printf '%s\n' "$want_ids" | awk -F, '{print NF}')
    run generate "$D/qb-docs-26m-f16.gguf" -p "The function returns" -n "$n_ids" --no-echo
    cli=$out cli_err=$err
    lua_gen "$D/qb-docs-26m-f16.gguf" "The function returns" "n = $n_ids"
    if [ "$rc" -eq 0 ] && [ "$cli" = "$want_text" ] && printf '%s' "$cli_err" | grep -q "prompt: 4 tokens" &&
        [ "$(printf '%s\n' "$out" | head -1)" = "n_prompt=4 ids=$want_ids" ] && [ "$(printf '%s\n' "$out" | tail -n +2)" = "$want_text" ]; then
        ok "qb-docs-26m GGUF: CLI text and Lua ids equal transformers' greedy.json (BOS + 3 prompt tokens)"
    else not_ok "qb-docs-26m greedy vs transformers (exit $rc)" "cli: $cli" "lua: $(printf '%s' "$out" | head -3)" "want ids: $want_ids" "$cli_err $err"; fi
    # the same model as a Hugging Face folder whose tokenizer says: no BOS
    mkdir -p "$TMP/nobos"
    for f in "$D"/hf/*; do ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$TMP/nobos/"; done
    rm "$TMP/nobos/tokenizer_config.json"
    sed 's/"add_bos_token": true/"add_bos_token": false/' "$D/hf/tokenizer_config.json" > "$TMP/nobos/tokenizer_config.json"
    run generate "$TMP/nobos" -p "The function returns" -n 8 --no-echo
    cli=$out cli_err=$err
    lua_gen "$TMP/nobos" "The function returns" "n = 8"
    if [ "$rc" -eq 0 ] && printf '%s' "$cli_err" | grep -q "prompt: 3 tokens" && [ -n "$cli" ] &&
        printf '%s\n' "$out" | head -1 | grep -q "^n_prompt=3 " && [ "$(printf '%s\n' "$out" | tail -n +2)" = "$cli" ]; then
        ok "add_bos_token=false: CLI and Lua both feed the 3 prompt tokens without BOS and continue alike"
    else not_ok "add_bos_token=false policy (exit $rc)" "cli: $cli_err" "lua: $(printf '%s' "$out" | head -2) $err"; fi
    # --no-mmap (weights read into private memory): the same greedy text, and Lua's no_mmap too
    run generate "$D/qb-docs-26m-f16.gguf" -p "The function returns" -n "$n_ids" --no-echo --no-mmap
    cli=$out
    run run -e "local m <close> = qb.open('$D/qb-docs-26m-f16.gguf', {no_mmap = true}); print((m:generate('The function returns', {n = $n_ids})))"
    if [ "$rc" -eq 0 ] && [ "$cli" = "$want_text" ] && [ "$out" = "$want_text" ]; then
        ok "--no-mmap / {no_mmap = true}: the same greedy text as transformers"
    else not_ok "--no-mmap greedy text (exit $rc)" "cli: $cli" "lua: $out" "$err"; fi
    run bench "$D/qb-docs-26m-f16.gguf" -p 8 -n 4 -r 1 --csv --no-mmap
    if [ "$rc" -eq 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" -ge 2 ]; then ok "bench --no-mmap runs"
    else not_ok "bench --no-mmap (exit $rc)" "$out" "$err"; fi
fi
finish
