#!/bin/bash
# test-api.sh — the qb Lua module against real runs on stories260K (tests/lua/check_api.lua
# prints the TAP lines), then qb.print_table's alignment through the sandboxed runner.
. "$(dirname "$0")/../cli/lib.sh"
need_fixture "qb module API" "$QB_MODELS/stories260K/stories260K.bin" || { finish; exit; }
"$QB_BIN" run --trusted --out "$TMP/api" tests/lua/check_api.lua 2>"$TMP/err"
rc=$?
if [ $rc -ne 0 ]; then echo "not ok - check_api.lua exited with status $rc"; tail -5 "$TMP/err" | sed "s/^/#   /"; fi
run run -e 'qb.print_table({{name="a", v=1.5}, {name="bbb", v=10}}, {"name", "v"})'
want=$'name  v\n----  ---\na     1.5\nbbb    10'
if [ "$rc" -eq 0 ] && [ "$out" = "$want" ]; then echo "ok - print_table aligns text left and numbers right"
else echo "not ok - print_table alignment"; printf '#   %s\n' "$out"; fi
run run examples/bits_sweep.lua help
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "tensor *blk.2.ffn_gate.weight" && [ -z "$err" ]; then echo "ok - recipe help lists the arguments and exits cleanly"
else echo "not ok - recipe help (exit $rc): $err"; fi
run run --out "$TMP/pl" -e 'qb.plot.line{x={1,2,3}, y={1,4,9}, title="squares", file="sq.pdf"}; qb.plot.line{x={1,2,3}, y={1,4,9}, file="sq.svg"}'
if [ "$rc" -eq 0 ] && [ "$(head -c 5 "$TMP/pl/sq.pdf" 2>/dev/null)" = "%PDF-" ] && grep -q "<svg" "$TMP/pl/sq.svg" 2>/dev/null; then
    echo "ok - qb.plot writes PDF and SVG by the file's extension"
else echo "not ok - qb.plot to .pdf/.svg (exit $rc): $err"; fi
# experts: calib:experts gives each expert's routed tokens and share (a Qwen3-MoE-shaped model
# from the bench's generator; the shares of a block sum to 1, the tokens to used x tokens)
if "$(dirname "$QB_BIN")/synth_model" --llama "$TMP/moe.gguf" --preset qwen3-30b-a3b --layers 2 --dim 128 --heads 4 \
    --kv-heads 2 --head-dim 32 --expert-ffn 64 --experts 8 --experts-used 2 --vocab 512 --ctx 128 --type f32 2>"$TMP/synth.err"; then
    QB_MOE=$TMP/moe.gguf QB_TEXT=$QB_DATA/calib-docs.txt run run --trusted -e '
        local m = qb.open(qb.getenv("QB_MOE"))
        local c = qb.calibrate(m, qb.getenv("QB_TEXT"), { samples = 2, ctx = 32 })
        local e = c:experts(1)
        local share, tok = 0, 0
        for _, x in ipairs(e) do share = share + x.share; tok = tok + x.tokens end
        print(#e, string.format("%.6f", share), tok, c:info().tokens, m:info().n_experts_used)'
    set -- $out
    if [ "$rc" -eq 0 ] && [ "${1:-}" = 8 ] && [ "${2:-}" = 1.000000 ] && [ -n "${5:-}" ] && [ "${3:-}" = "$(( ${4:-0} * ${5:-0} ))" ]; then
        echo "ok - calib:experts: 8 experts, shares sum to 1, tokens = used x calibrated ($out)"
    else echo "not ok - calib:experts on an MoE model"; printf '#   exit %s: %s %s\n' "$rc" "$out" "$err"; fi
else echo "not ok - the MoE model for calib:experts is written"; tail -2 "$TMP/synth.err" | sed "s/^/#   /"; fi
run run -e 'qb.exit(3)'
if [ "$rc" -eq 1 ] && printf '%s' "$err" | grep -q "exited with status 3"; then echo "ok - qb.exit(3) stops with a failure status"
else echo "not ok - qb.exit(3) (exit $rc): $err"; fi
[ $rc -ne 255 ]
