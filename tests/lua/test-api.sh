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
run run -e 'qb.exit(3)'
if [ "$rc" -eq 1 ] && printf '%s' "$err" | grep -q "exited with status 3"; then echo "ok - qb.exit(3) stops with a failure status"
else echo "not ok - qb.exit(3) (exit $rc): $err"; fi
[ $rc -ne 255 ]
