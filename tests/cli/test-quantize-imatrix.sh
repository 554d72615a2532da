#!/bin/bash
# test-quantize-imatrix.sh — `quantbench quantize MODEL OUT TYPE --imatrix FILE` against
# `llama-quantize --imatrix` (llama.cpp c392e50, built beside the project in ../peer/llama.cpp):
# on qb-docs-26m F16, every tensor of every file type whose tensors we can write has the same
# type and bytes (compared per tensor: name, shape, type, size, SHA-256 of the data; the files'
# metadata differ by our quantbench.* recipe keys), with an imatrix made by llama-imatrix (its
# .dat, and the same converted to a GGUF imatrix by us) and one made by `quantbench imatrix`.
# Then llama-quantize's rules: entries missing (token_embd, output) noted and quantized without;
# the recipe records the file and a replay asks for it; bad input (an entry of the wrong size,
# a value that is not finite, files that are not imatrices, Q2_K_S without importance) refused
# with one line naming the file, and no output written.
. "$(dirname "$0")/lib.sh"
D=$QB_MODELS/qb-docs-26m/qb-docs-26m-f16.gguf
S=$QB_MODELS/stories260K/stories260K-f32.gguf
need_fixture "quantize --imatrix" "$D" "$S" "$QB_DATA/calib-docs.txt" || { finish; exit; }
LLAMA=../peer/llama.cpp/build/bin
head -c 6000 "$QB_DATA/calib-docs.txt" >"$TMP/text.txt"

# tensors FILE: one line per tensor (name, shape, type, bytes, sha256), sorted
tensors() { "$QB_BIN" info --sha256 "$1" | grep -E '^(blk|token_embd|output)[^ ]* +[0-9]' | sort; }

# same_tensors NAME OURS THEIRS
same_tensors() {
    local d; d=$(diff <(tensors "$2") <(tensors "$3"))
    if [ -z "$d" ] && [ "$(tensors "$2" | wc -l)" -gt 0 ]; then ok "$1"
    else not_ok "$1" "$(printf '%s\n' "$d" | head -4)"; fi
}

# our imatrix (fast: 2 chunks of 128 tokens)
run imatrix "$D" "$TMP/text.txt" -o "$TMP/ours.dat" --ctx 128 --chunks 2 -t 2
if [ "$rc" -eq 0 ]; then ok "imatrix for the test"; else not_ok "imatrix for the test" "exit $rc: $err"; fi

# quantize_ok NAME OUT TYPE IMATRIX: our quantize succeeds
quantize_ok() {
    run quantize "$D" "$2" "$3" --imatrix "$4" -t 2
    if [ "$rc" -eq 0 ]; then ok "$1"; else not_ok "$1" "exit $rc: $err"; fi
}

quantize_ok "quantize Q4_K_M --imatrix ours.dat" "$TMP/a.gguf" Q4_K_M "$TMP/ours.dat"
if printf '%s' "$out" | grep -q "importance $TMP/ours.dat: 42 tensors weighted, 2 without an entry"; then
    ok "42 tensors weighted, token_embd and output without an entry (llama-imatrix never collects them)"
else not_ok "weighted / missing counts" "$out"; fi
if printf '%s\n' "$err" | grep -q "no importance for token_embd.weight: quantized without" &&
   printf '%s\n' "$err" | grep -q "no importance for output.weight: quantized without"; then
    ok "missing entries noted, as llama-quantize logs them"
else not_ok "missing entries noted" "$err"; fi
run quantize "$D" "$TMP/plain.gguf" Q4_K_M -t 2
if [ -n "$(diff <(tensors "$TMP/a.gguf") <(tensors "$TMP/plain.gguf") | grep 'blk.0.attn_q')" ]; then
    ok "the importance changes the bytes (blk.0.attn_q differs from plain Q4_K_M)"
else not_ok "imatrix changed nothing"; fi
run info "$TMP/a.gguf"
if printf '%s' "$out" | grep -qE "importance matrix $TMP/ours.dat: [0-9]+ bytes, sha256 [0-9a-f]{64}"; then
    ok "the recipe records the importance matrix"
else not_ok "recipe records the imatrix" "$(printf '%s\n' "$out" | grep quantbench)"; fi

# replay: the recorded imatrix is needed, the same one gives the same tensors
expect_fail "replay without --imatrix names the recorded file" \
    "a.gguf was quantized with the importance matrix .*ours.dat \([0-9]+ bytes, sha256 [0-9a-f]{64}\): pass --imatrix FILE" \
    quantize "$D" "$TMP/r.gguf" --plan "$TMP/a.gguf"
run quantize "$D" "$TMP/r.gguf" --plan "$TMP/a.gguf" --imatrix "$TMP/ours.dat" -t 2
if [ "$rc" -eq 0 ]; then same_tensors "replay with the recorded imatrix: the same tensors" "$TMP/r.gguf" "$TMP/a.gguf"
else not_ok "replay" "exit $rc: $err"; fi

# the in-memory path (qb_plan_apply, as Lua and the workbench use it) writes the same tensors
run quantize "$D" "$TMP/m.gguf" Q4_K_M --method rtn --imatrix "$TMP/ours.dat" -t 2
if [ "$rc" -eq 0 ]; then same_tensors "in memory (--method rtn): the streaming path's tensors" "$TMP/m.gguf" "$TMP/a.gguf"
else not_ok "in-memory quantize --imatrix" "exit $rc: $err"; fi

# Lua: m:apply_ftype(type, {imatrix=}) and m:apply(plan, {imatrix=}) give the same tensors
cat >"$TMP/im.lua" <<EOF
local m = qb.open("$D")
local im = qb.load_imatrix("$TMP/ours.dat")
m:apply_ftype("Q4_K_M", {imatrix = im})
m:export_gguf("lua1.gguf")
m:reset()
m:apply(qb.plan{ {match = "*", format = "q4_k"} }, {imatrix = im, fallback = true})
m:export_gguf("lua2.gguf")
local ok, err = pcall(function() m:apply(qb.plan{ {match = "*", format = "q4_k"} }, {imatrix = "$TMP/ours.dat"}) end)
print(ok, err)
EOF
run run --out "$TMP" "$TMP/im.lua"
if [ "$rc" -eq 0 ]; then
    same_tensors "Lua m:apply_ftype('Q4_K_M', {imatrix=qb.load_imatrix(...)}): the CLI's tensors" "$TMP/lua1.gguf" "$TMP/a.gguf"
    lua_out=$out
    run quantize "$D" "$TMP/pure.gguf" Q4_K_M --pure --imatrix "$TMP/ours.dat" -t 2
    same_tensors "Lua m:apply(plan, {imatrix=}): quantize --pure's tensors" "$TMP/lua2.gguf" "$TMP/pure.gguf"
    if printf '%s' "$lua_out" | grep -q "bad option 'imatrix' to 'apply' (qb.imatrix expected, got string)"; then
        ok "Lua: imatrix= of the wrong type is an error naming the option"
    else not_ok "Lua imatrix= type error" "$lua_out"; fi
else not_ok "Lua with imatrix=" "exit $rc: $err"; fi

if [ ! -x "$LLAMA/llama-quantize" ] || [ ! -x "$LLAMA/llama-imatrix" ]; then
    skip "byte identity with llama-quantize --imatrix" "$LLAMA/llama-quantize or llama-imatrix not built"
else
    LD_LIBRARY_PATH=$LLAMA "$LLAMA/llama-imatrix" -m "$D" -f "$TMP/text.txt" -o "$TMP/theirs.dat" -c 128 --chunks 2 \
        -t 2 >"$TMP/imx.log" 2>&1
    if [ -s "$TMP/theirs.dat" ]; then ok "llama-imatrix writes its .dat"; else not_ok "llama-imatrix" "$(tail -3 "$TMP/imx.log")"; fi
    run imatrix --in "$TMP/theirs.dat" -o "$TMP/theirs.gguf"
    if [ "$rc" -eq 0 ]; then ok "its .dat as a GGUF imatrix"; else not_ok "convert to GGUF" "exit $rc: $err"; fi

    # llama_q TYPE IMATRIX OUT
    llama_q() { LD_LIBRARY_PATH=$LLAMA "$LLAMA/llama-quantize" --imatrix "$2" "$D" "$3" "$1" 2 >"$TMP/q.log" 2>&1; }
    for t in Q2_K Q2_K_S Q3_K_S Q3_K_M Q3_K_L Q4_0 Q4_1 Q5_0 Q5_1 Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS Q8_0; do
        if ! llama_q "$t" "$TMP/theirs.dat" "$TMP/ll.gguf"; then
            not_ok "llama-quantize $t --imatrix" "$(grep -iE 'error|fail' "$TMP/q.log" | head -2)"; continue
        fi
        run quantize "$D" "$TMP/q.gguf" "$t" --imatrix "$TMP/theirs.dat" -t 2
        if [ "$rc" -ne 0 ]; then not_ok "$t --imatrix theirs.dat" "exit $rc: $err"; continue; fi
        same_tensors "$t with llama-imatrix's .dat: every tensor as llama-quantize --imatrix writes it" "$TMP/q.gguf" "$TMP/ll.gguf"
        case $t in Q2_K|Q4_0|Q4_K_M|IQ4_NL) ;; *) continue ;; esac # the GGUF imatrix on a few (time)
        run quantize "$D" "$TMP/g.gguf" "$t" --imatrix "$TMP/theirs.gguf" -t 2
        if [ "$rc" -ne 0 ]; then not_ok "$t --imatrix theirs.gguf" "exit $rc: $err"; continue; fi
        same_tensors "$t with the same matrix as a GGUF imatrix: the same tensors" "$TMP/g.gguf" "$TMP/ll.gguf"
    done
    # an imatrix of ours, read by both
    for t in Q4_K_M; do
        llama_q "$t" "$TMP/ours.dat" "$TMP/ll.gguf" || { not_ok "llama-quantize $t --imatrix ours.dat" "$(tail -2 "$TMP/q.log")"; continue; }
        run quantize "$D" "$TMP/q.gguf" "$t" --imatrix "$TMP/ours.dat" -t 2
        if [ "$rc" -eq 0 ]; then same_tensors "$t with quantbench imatrix's .dat: as llama-quantize --imatrix writes it" "$TMP/q.gguf" "$TMP/ll.gguf"
        else not_ok "$t --imatrix ours.dat" "exit $rc: $err"; fi
    done
fi

# bad input: one line naming the file and the problem, no output file
bad() {
    local name=$1 pat=$2; shift 2
    rm -f "$TMP/bad.gguf"
    expect_fail "$name" "$pat" quantize "$D" "$TMP/bad.gguf" "$@"
    [ -e "$TMP/bad.gguf" ] && not_ok "$name: no output file" "bad.gguf was written"
}
run imatrix "$S" "$TMP/text.txt" -o "$TMP/s.dat" --ctx 64 --chunks 2
bad "an entry of the wrong size (an imatrix of another model)" \
    "s.dat: importance of blk\.0\.[a-z_]+\.weight has (64|172) values; the tensor needs (512|1536) \((512|1536) columns x 1 matrices\)" \
    Q4_K_M --imatrix "$TMP/s.dat"
cp "$TMP/ours.dat" "$TMP/inf.dat"
printf '\000\000\200\177' | dd of="$TMP/inf.dat" bs=1 seek=35 conv=notrunc 2>/dev/null # first value of blk.0.attn_q: +inf
bad "a value that is not finite" "inf.dat: .*(not finite|inf)" Q4_K_M --imatrix "$TMP/inf.dat"
bad "a model given as the imatrix" "qb-docs-26m-f16.gguf: a GGUF file of general.type 'model', not an imatrix" Q4_K_M --imatrix "$D"
bad "a text given as the imatrix" "text.txt: " Q4_K_M --imatrix "$TMP/text.txt"
bad "a missing imatrix file" "nonexistent.dat" Q4_K_M --imatrix "$TMP/nonexistent.dat"
bad "--imatrix without a file" "--imatrix needs an importance matrix file" Q4_K_M --imatrix
bad "Q2_K_S without an importance matrix (llama-quantize refuses it)" \
    "tensor blk\.0\.[a-z_]+\.weight: Q2_K_S needs an importance matrix for it \(--imatrix FILE\)" Q2_K_S
finish
