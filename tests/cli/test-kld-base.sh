#!/bin/bash
# test-kld-base.sh — KL-divergence base files (`kld --save-base`, `kld --base`) against
# llama-perplexity --kl-divergence-base (llama.cpp c392e50, built beside the project in
# ../peer/llama.cpp) on stories260K, both ways: llama-perplexity reading our base file gives
# the statistics it gives on its own, and ours on its file equal its own. Also the file's
# size and header, Lua, and every kind of bad input (one line naming the file).
#
# Models compared with the F32 base: a pruned F32 model (30% magnitude pruning, written by
# Lua's export: F32 matrices, which both tools multiply in float, so their logits agree to
# float rounding), a Q8_0 one made by `quantize` (ffn_down kept F32: its rows of 172 fit no
# block) and the llama2.c checkpoint quantized to Q4_0 (ffn_down falls back to F16, whose
# matmul llama.cpp runs with F16-rounded activations). llama.cpp runs with an F32 KV cache.
#
# Tolerances, from what differs:
# - the same base file, the pruned F32 model: only the two forward passes' float rounding;
#   every statistic within 3 units of its last printed digit ("exact");
# - two base files (ours, llama-perplexity's) of the same F32 model: the logits differ by float
#   rounding, which moves a few log-probabilities across a step of the 16-bit encoding
#   (δ = 16/65535 = 2.4e-4 nats): means within 3 units + 1e-5 relative (of PPL(base) for the
#   PPL difference and its uncertainty), a quantile of the
#   per-position KLD within δ, of Δp within δ (0.025 in %), same top p within one position
#   ("encoding");
# - the quantized models read by each tool: their forward passes differ (activation
#   rounding: on this 64-wide model our own AVX-512 and scalar kernels differ by as much, PPL
#   3.6347 vs 3.6353 on Q8_0), so only PPL(Q) (0.2%), PPL(base) (exact), the mean KLD (4%)
#   and same top p (4 positions) are compared ("model").
. "$(dirname "$0")/lib.sh"
S=$QB_MODELS/stories260K
F32=$S/stories260K-f32.gguf
T=$S/ppl-sample.txt
need_fixture "kld base files" "$F32" "$T" "$S/stories260K.bin" || { finish; exit; }
LLAMA=../peer/llama.cpp/build/bin
N=252 # 4 chunks x 63 scored positions

# the statistics of llama-perplexity --kl-divergence or quantbench kld --base as "key value
# decimals" (labels without spaces; quantiles as kld_<label> and dp_<label>)
norm() {
    awk '
    function num(s) { gsub(/%/, "", s); gsub(/^ +| +$/, "", s); return s }
    function dec(s) { return match(s, /\.[0-9]+/) ? RLENGTH - 1 : 0 }
    function out(k, s) { s = num(s); if (s ~ /^-?[0-9]+(\.[0-9]+)?$/) print k, s, dec(s) }
    /^(max|median|min|[0-9.]+%) +-?[0-9]/ {
        l = $1 == "max" ? "Maximum" : $1 == "median" ? "Median" : $1 == "min" ? "Minimum" : $1
        out("kld_" l, $2); out("dp_" l, $3); next
    }
    /^[^:]+: *[-0-9]/ {
        i = index($0, ":"); label = substr($0, 1, i - 1); rest = substr($0, i + 1)
        gsub(/ /, "", label)
        if (label ~ /KLD$/ && label != "MeanKLD") label = "kld_" substr(label, 1, length(label) - 3)
        else if (label ~ /Δp$/ && label != "MeanΔp" && label != "RMSΔp") label = "dp_" substr(label, 1, length(label) - length("Δp"))
        n = split(rest, v, "±")
        out(label, v[1]); if (n > 1) out(label "_err", v[2])
    }' "$1" | sort -u -k1,1
}

# compare NAME OURS THEIRS MODE: every statistic THEIRS (llama-perplexity's output) prints is
# in OURS and within MODE's tolerance (see the top); the ok line gives the largest deviation
# as a share of its tolerance
compare() {
    local name=$1 mode=$4 res
    norm "$2" >"$TMP/a.n"
    norm "$3" >"$TMP/b.n"
    if [ "$(wc -l <"$TMP/b.n")" -lt 40 ]; then
        not_ok "$name" "llama-perplexity printed $(wc -l <"$TMP/b.n") statistics, wanted 40: $(tail -3 "$3")"
        return
    fi
    local pplb; pplb=$(awk '$1 == "MeanPPL(base)" { print $2 }' "$TMP/b.n")
    res=$(join -a 2 "$TMP/a.n" "$TMP/b.n" | awk -v mode="$mode" -v N=$N -v pplb="$pplb" '
    function abs(x) { return x < 0 ? -x : x }
    NF < 5 { missing = missing " " $1; next }
    {
        k = $1; a = $2; b = $4; d = $3 > $5 ? $3 : $5; u = 10 ^ -d
        tol = 3 * u
        if (mode == "encoding") {
            tol += 1e-5 * (k ~ /PPL/ && abs(b) < pplb ? pplb : abs(b))
            if (k ~ /^kld_/) tol += 16 / 65535
            if (k ~ /^dp_/) tol += 100 * 16 / 65535
            if (k == "Sametopp") tol += 100 / N
        } else if (mode == "model") {
            if (k == "MeanPPL(Q)") tol = 2e-3 * abs(b)
            else if (k == "MeanKLD") tol = 0.04 * abs(b)
            else if (k == "Sametopp") tol = 4 * 100 / N
            else if (k != "MeanPPL(base)") next
        }
        r = abs(a - b) / tol
        if (r > worst) { worst = r; wk = k " " a " vs " b }
        if (r > 1) bad = bad " " k "=" a "/" b
        n++
    }
    END {
        if (missing != "") print "missing:" missing
        else if (bad != "") print "outside the tolerance:" bad
        else printf "OK %d statistics, worst %s (%.0f%% of the tolerance)\n", n, wk == "" ? "none" : wk, 100 * worst
    }')
    case $res in
    OK*) ok "$name: ${res#OK }" ;;
    *) not_ok "$name" "$res" ;;
    esac
}

# ---- models and our base file -------------------------------------------------------------
printf '* = q8_0\n*ffn_down* = f32\n' >"$TMP/q8.plan"
run quantize "$F32" "$TMP/q8.gguf" F32 --plan "$TMP/q8.plan"
[ "$rc" -eq 0 ] || not_ok "quantize the Q8_0 model" "exit $rc: $err"
run quantize "$S/stories260K.bin" "$TMP/q4.gguf" Q4_0
[ "$rc" -eq 0 ] || not_ok "quantize the Q4_0 model" "exit $rc: $err"
run run --out "$TMP" -e "local m = qb.open('$F32'); m:prune('0.3'); m:export_gguf('pruned.gguf')"
[ "$rc" -eq 0 ] || not_ok "the pruned F32 model" "exit $rc: $err"

run kld --save-base "$TMP/ours.kld" "$F32" "$T" --ctx 128 --chunks 4 -t 2
size=$(stat -c %s "$TMP/ours.kld" 2>/dev/null)
# 20-byte header, 4 x 128 tokens, 4 x 63 rows of 2 x (512 + 4) bytes
if [ "$rc" -eq 0 ] && [ "$size" = $((20 + 4 * 128 * 4 + N * 516 * 2)) ] && [ "$(head -c 8 "$TMP/ours.kld")" = _logits_ ] &&
    printf '%s' "$out" | grep -q "^PPL = 3.6245 "; then
    ok "kld --save-base: $size bytes, the header and rows llama-perplexity's layout asks for; PPL 3.6245"
else not_ok "kld --save-base" "exit $rc, $size bytes: $err $out"; fi

run kld --base "$TMP/ours.kld" "$F32" "$T"
kld=$(printf '%s\n' "$out" | awk -F'[:±]' '/^Mean KLD/ { print $2 + 0 }')
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "^Same top p *: *100.000%" &&
    awk -v k="$kld" 'BEGIN { exit !(k < 1e-5 && k > -1e-5) }'; then
    ok "the base model against its own file: same top 100%, mean KLD $kld (the 16-bit encoding's error only)"
else not_ok "the base model against its own file" "exit $rc: $err" "$out"; fi

run kld --base "$TMP/ours.kld" "$TMP/pruned.gguf" "$T" --chunks 2
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "^scored     126 positions: 2 chunks x 63"; then ok "kld --base --chunks 2: the file's first two chunks"
else not_ok "kld --base --chunks 2" "exit $rc: $err" "$out"; fi

# Lua: the same file, the same statistics
run run --out "$TMP" -e "
local s = qb.open('$F32')
local p = qb.kld_base_save(s, '$T', 'lua.kld', {ctx = 128, chunks = 4})
local m = qb.open('$TMP/pruned.gguf')
local r = m:kld('$TMP/ours.kld', '$T')
print(string.format('%.4f %.6f %.6f %.3f %d', p.ppl, r.kld, r.kld_max, r.top1, r.tokens))"
run_lua_out=$out
run kld --base "$TMP/ours.kld" "$TMP/pruned.gguf" "$T"
want=$(printf '%s\n' "$out" | awk '/^Mean KLD/ { k = $4 } /^Same top p/ { t = $5 } /^max / { m = $2 }
    END { gsub(/%/, "", t); printf "3.6245 %.6f %.6f %.3f 252", k, m, t }')
if cmp -s "$TMP/lua.kld" "$TMP/ours.kld" && [ "$run_lua_out" = "$want" ]; then
    ok "Lua: qb.kld_base_save writes the same file, m:kld(file, text) gives the command's figures ($want)"
else not_ok "Lua kld_base_save / m:kld(file)" "lua: '$run_lua_out' want: '$want'" "$(cmp "$TMP/lua.kld" "$TMP/ours.kld" 2>&1)"; fi

# ---- bad input: one line naming the file ------------------------------------------------------
printf 'not a base file at all, just text\n' >"$TMP/text.kld"
expect_fail "a file without the magic" "text.kld: not a KL-divergence base file" kld --base "$TMP/text.kld" "$F32" "$T"
head -c 100000 "$TMP/ours.kld" >"$TMP/trunc.kld"
expect_fail "a truncated file" "trunc.kld: truncated in chunk 2's log-probabilities" kld --base "$TMP/trunc.kld" "$F32" "$T"
{ cat "$TMP/ours.kld"; printf 'xx'; } >"$TMP/long.kld"
expect_fail "bytes after the last chunk" "long.kld: 2 bytes after the end of the last chunk" kld --base "$TMP/long.kld" "$F32" "$T"
expect_fail "a missing file" "nothere.kld: cannot open" kld --base "$TMP/nothere.kld" "$F32" "$T"
tail -c +2000 "$T" >"$TMP/other.txt"
expect_fail "another text" "ours.kld: token 1 \(chunk 1, position 1\) is [0-9]+ in the file but [0-9]+ in .*other.txt" \
    kld --base "$TMP/ours.kld" "$F32" "$TMP/other.txt"
head -n 5 "$T" >"$TMP/short.txt" # whole paragraphs: the same tokens, fewer
expect_fail "a text shorter than the file's" "ours.kld: holds 512 tokens of text \(4 chunks of 128\), .*short.txt has only" \
    kld --base "$TMP/ours.kld" "$F32" "$TMP/short.txt"
expect_fail "another context" "ours.kld: made with a context of 128 tokens, not the 64 asked for" \
    kld --base "$TMP/ours.kld" "$F32" "$T" --ctx 64
expect_fail "more chunks than the file holds" "ours.kld: holds 4 chunks, 5 asked for" kld --base "$TMP/ours.kld" "$F32" "$T" --chunks 5
D=$QB_MODELS/qb-docs-26m/qb-docs-26m-f16.gguf
if [ -f "$D" ]; then
    expect_fail "another vocabulary" "ours.kld: made with a vocabulary of 512 tokens, .*qb-docs-26m-f16.gguf has 8192" \
        kld --base "$TMP/ours.kld" "$D" "$T"
else skip "another vocabulary" "$D missing"; fi
expect_fail "--base with --save-base" "--base and --save-base exclude each other" kld --base a --save-base b "$F32" "$T"
expect_fail "kld --base with three models" "usage: quantbench kld --base FILE MODEL TEXTFILE" kld --base "$TMP/ours.kld" "$F32" "$F32" "$T"
expect_fail "saving into a missing folder" "nodir/x.kld" kld --save-base "$TMP/nodir/x.kld" "$F32" "$T" --ctx 128 --chunks 1
cp "$TMP/ours.kld" "$TMP/keep.kld"
expect_fail "a save that fails (context too long for the text) keeps the old file" "needs at least" \
    kld --save-base "$TMP/keep.kld" "$F32" "$T" --ctx 1024
if cmp -s "$TMP/keep.kld" "$TMP/ours.kld" && [ -z "$(ls "$TMP" | grep 'keep.kld.tmp')" ]; then ok "the old file is untouched, no temp file left"
else not_ok "the old file is untouched"; fi

# ---- against llama-perplexity ---------------------------------------------------------------
if [ ! -x "$LLAMA/llama-perplexity" ]; then
    skip "comparison with llama-perplexity" "$LLAMA/llama-perplexity not built"
    finish
    exit
fi
lp() { # lp OUT ARGS...: llama-perplexity's output (its statistics) in OUT
    local o=$1; shift
    LD_LIBRARY_PATH=$LLAMA "$LLAMA/llama-perplexity" -t 2 -ctk f32 -ctv f32 "$@" >"$o" 2>&1 ||
        echo "# llama-perplexity failed: $(tail -2 "$o")"
}
lp "$TMP/lsave.log" -m "$F32" -f "$T" -c 128 --chunks 4 --kl-divergence-base "$TMP/theirs.kld"
if cmp -s -n $((20 + 4 * 128 * 4)) "$TMP/ours.kld" "$TMP/theirs.kld"; then
    diff=$(cmp -l "$TMP/ours.kld" "$TMP/theirs.kld" | wc -l)
    ok "our base file and llama-perplexity's: the same header and tokens; $diff of $size bytes of the rows differ (the logits' float rounding)"
else not_ok "the same header and tokens as llama-perplexity's base file" "$(cmp "$TMP/ours.kld" "$TMP/theirs.kld")"; fi

for m in pruned q8 q4; do
    lp "$TMP/l-$m-theirs.log" -m "$TMP/$m.gguf" -c 128 --kl-divergence-base "$TMP/theirs.kld" --kl-divergence
    lp "$TMP/l-$m-ours.log" -m "$TMP/$m.gguf" -c 128 --kl-divergence-base "$TMP/ours.kld" --kl-divergence
    compare "$m: llama-perplexity on our base file = on its own" "$TMP/l-$m-ours.log" "$TMP/l-$m-theirs.log" encoding
    "$QB_BIN" kld --base "$TMP/theirs.kld" "$TMP/$m.gguf" "$T" -t 2 >"$TMP/q-$m-theirs.out" 2>"$TMP/err"
    "$QB_BIN" kld --base "$TMP/ours.kld" "$TMP/$m.gguf" "$T" -t 2 >"$TMP/q-$m-ours.out" 2>"$TMP/err"
    if [ $m = pruned ]; then
        compare "$m: ours on llama-perplexity's base file = llama-perplexity's" "$TMP/q-$m-theirs.out" "$TMP/l-$m-theirs.log" exact
        compare "$m: ours on our file = llama-perplexity on its file" "$TMP/q-$m-ours.out" "$TMP/l-$m-theirs.log" encoding
    else
        compare "$m: ours on llama-perplexity's base file vs llama-perplexity's" "$TMP/q-$m-theirs.out" "$TMP/l-$m-theirs.log" model
    fi
done
finish
