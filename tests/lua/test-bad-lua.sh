#!/bin/bash
# test-bad-lua.sh — bad recipes get a clear error and no crash: syntax errors and runtime errors
# with file:line and a traceback, wrong argument types naming the argument or option, a loop
# that never ends (stopped by --max-seconds, or by Ctrl-C), writing outside the output folder,
# the memory cap, loading binary chunks, sandboxed libraries, bad runner options.
. "$(dirname "$0")/../cli/lib.sh"
S=$QB_MODELS/stories260K

# expect_lua NAME PATTERN ARGS...: exit 1, stderr's first line matches PATTERN, no crash
expect_lua() {
    local name=$1 pat=$2; shift 2
    run run "$@"
    local first; first=$(printf '%s\n' "$err" | head -1)
    if [ "$rc" -eq 1 ] && printf '%s' "$first" | grep -qE -- "$pat"; then ok "$name"
    else not_ok "$name" "exit $rc, wanted 1 and /$pat/" "stderr: $(printf '%s' "$err" | head -4)"; fi
}
w() { printf '%s\n' "$2" > "$TMP/$1"; }

w syntax.lua 'local x = = 1'
expect_lua "syntax error names file and line" "syntax.lua:1: unexpected symbol" "$TMP/syntax.lua"
w runtime.lua $'local t = nil\n\nprint(t.x)'
expect_lua "runtime error names file and line" "runtime.lua:3: attempt to index a nil value \\(local 't'\\)" "$TMP/runtime.lua"
run run "$TMP/runtime.lua"
if printf '%s' "$err" | grep -q "stack traceback" && printf '%s' "$err" | grep -q "in main chunk"; then ok "runtime error comes with a traceback"
else not_ok "runtime error comes with a traceback" "$err"; fi
w raise.lua $'local function f() error("my own failure") end\nf()'
expect_lua "error() from the recipe keeps its position" "raise.lua:1: my own failure" "$TMP/raise.lua"
expect_lua "missing recipe file" "nothere.lua: cannot open" "$TMP/nothere.lua"
expect_lua "unknown runner option" "unknown option '--bogus'" --bogus x.lua
expect_lua "bad --max-seconds value" "max-seconds" --max-seconds abc x.lua

# wrong argument types name the argument or the option
w args1.lua 'qb.open(42, "x")'
expect_lua "qb.open with a bad option table" "args1.lua:1: bad argument #2 to 'open' \\(table expected, got string\\)" "$TMP/args1.lua"
w args2.lua "local m = qb.open('$S/stories260K.bin'); m:perplexity('x y z', {ctx='big'})"
expect_lua "wrong option type names the option" "args2.lua:1: bad option 'ctx' to 'perplexity' \\(integer expected, got string\\)" "$TMP/args2.lua"
w args3.lua "local m = qb.open('$S/stories260K.bin'); local t = m:tensor('blk.0.ffn_up.weight'); t.stats(m, 'q8_0')"
expect_lua "method called on the wrong object" "args3.lua:1: bad argument #1 to 'stats' \\(qb.tensor expected, got qb.model\\)" "$TMP/args3.lua"
w args4.lua "local m = qb.open('$S/stories260K.bin'); m:tensor('blk.0.ffn_up.weight'):quantize('int9')"
expect_lua "bad format names the problem" "args4.lua:1: .*bits 9 out of range" "$TMP/args4.lua"
w args5.lua "qb.plan{ {match='*', format='q4_k'}, {format='q8_0'} }"
expect_lua "plan rule without a pattern" "args5.lua:1: bad plan rule #2" "$TMP/args5.lua"
w args6.lua "qb.open('$TMP/none.gguf')"
expect_lua "core error (missing model) with the recipe's position" "args6.lua:1: .*none.gguf" "$TMP/args6.lua"
w args7.lua "local m = qb.open('$S/stories260K.bin'); m:close(); m:info()"
expect_lua "using a closed model" "args7.lua:1: .*'info'.*\\(the model is closed\\)" "$TMP/args7.lua"

# runaway recipes
w loop.lua 'while true do end'
start=$(date +%s)
expect_lua "endless loop stopped by --max-seconds" "loop.lua:1: time limit of 1 s exceeded" --max-seconds 1 "$TMP/loop.lua"
[ $(( $(date +%s) - start )) -le 5 ] && ok "the time limit acts within seconds" || not_ok "the time limit acts within seconds"
"$QB_BIN" run "$TMP/loop.lua" >"$TMP/out" 2>"$TMP/err" &
pid=$!
sleep 1
kill -INT $pid
wait $pid; rc=$?
if [ $rc -eq 130 ] && grep -q "loop.lua:1: cancelled" "$TMP/err"; then ok "Ctrl-C stops an endless loop with 'cancelled' (exit 130)"
else not_ok "Ctrl-C stops an endless loop" "exit $rc" "$(head -2 "$TMP/err")"; fi
w pcall.lua 'while true do pcall(function() while true do end end) end'
expect_lua "the time limit cannot be swallowed for ever by pcall" "time limit" --max-seconds 1 "$TMP/pcall.lua"
w mem.lua $'local t = {}\nfor i = 1, 1e9 do t[i] = string.rep("x", 1000) .. i end'
expect_lua "memory cap stops a greedy recipe" "not enough memory" --mem-limit 64 "$TMP/mem.lua"
w memstr.lua 'local s = string.rep("x", 200 * 1024 * 1024)'
expect_lua "one huge string is refused by the cap" "not enough memory" --mem-limit 64 "$TMP/memstr.lua"

# the sandbox
mkdir -p "$TMP/out1" "$TMP/outside"
w esc1.lua 'qb.write_csv("../outside/x.csv", {{a=1}})'
expect_lua "writing with .. is refused" "esc1.lua:1: \\.\\./outside/x.csv: paths may not leave the output folder" --out "$TMP/out1" "$TMP/esc1.lua"
w esc2.lua "qb.write_json('$TMP/outside/x.json', {a=1})"
expect_lua "writing to an absolute path is refused" "esc2.lua:1: .*absolute paths are not allowed" --out "$TMP/out1" "$TMP/esc2.lua"
ln -s "$TMP/outside" "$TMP/out1/link"
w esc3.lua 'qb.write_csv("link/x.csv", {{a=1}})'
expect_lua "writing through a symlink that leads out is refused" "esc3.lua:1: link/x.csv: cannot write there \\(it leads outside" --out "$TMP/out1" "$TMP/esc3.lua"
w esc4.lua 'qb.plot.line{x={1,2}, y={1,2}, file="../p.png"}'
expect_lua "plots cannot leave the output folder either" "paths may not leave" --out "$TMP/out1" "$TMP/esc4.lua"
w esc5.lua 'qb.write_csv("x.csv", {{a=1}})'
expect_lua "--no-out forbids file output" "file output is not allowed" --no-out "$TMP/esc5.lua"
if [ -z "$(ls -A "$TMP/outside")" ]; then ok "nothing was written outside the output folder"; else not_ok "files leaked outside" "$(ls "$TMP/outside")"; fi
w sb1.lua 'io.open("/etc/passwd")'
expect_lua "io is not in the sandbox" "sb1.lua:1: attempt to index a nil value \\(global 'io'\\)" "$TMP/sb1.lua"
w sb2.lua 'os.execute("true")'
expect_lua "os is not in the sandbox" "attempt to index a nil value \\(global 'os'\\)" "$TMP/sb2.lua"
w sb3.lua 'dofile("/etc/passwd")'
expect_lua "dofile is not in the sandbox" "attempt to call a nil value \\(global 'dofile'\\)" "$TMP/sb3.lua"
w sb4.lua 'assert(load("\27Lua binary", "x", "b"))'
expect_lua "binary chunks are refused" "only text chunks" "$TMP/sb4.lua"
w sb5.lua 'require("socket")'
expect_lua "require finds only Lua files in the recipe and qb folders" "module 'socket' not found" "$TMP/sb5.lua"
w sb6.lua 'print(qb.getenv("HOME"))'
expect_lua "only QB_* environment variables are visible" "only QB_\\* variables" "$TMP/sb6.lua"
w trusted.lua 'local f = io.open(arg[1], "w"); f:write("hi"); f:close()'
run run --trusted "$TMP/trusted.lua" "$TMP/outside/t.txt"
[ "$rc" -eq 0 ] && [ -f "$TMP/outside/t.txt" ] && ok "--trusted opens io" || not_ok "--trusted opens io" "exit $rc $err"
w okwrite.lua 'qb.write_csv("sub/dir/x.csv", {{a=1, b="x,y"}}); qb.write_json("y.json", {list={1,2,3}, name="q\"s"})'
run run --out "$TMP/out1" "$TMP/okwrite.lua"
if [ "$rc" -eq 0 ] && [ "$(cat "$TMP/out1/sub/dir/x.csv")" = $'a,b\n1,"x,y"' ] && [ "$(cat "$TMP/out1/y.json")" = '{"list":[1,2,3],"name":"q\"s"}' ]; then
    ok "writing inside the output folder works (subfolders created, CSV quoting, JSON escaping)"
else not_ok "writing inside the output folder" "exit $rc $err" "$(cat "$TMP/out1/sub/dir/x.csv" "$TMP/out1/y.json" 2>&1)"; fi
finish
