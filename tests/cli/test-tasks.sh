#!/bin/bash
# test-tasks.sh — `quantbench tasks` against llama-perplexity --hellaswag / --winogrande /
# --multiple-choice (llama.cpp c392e50, built beside the project in ../peer/llama.cpp) on the same
# GGUF files and the same task files (tests/data/tasks, made by scripts/make-task-files.py).
#
# Compared: every per-task line llama-perplexity prints (task number and running accuracy;
# Winogrande also the chosen and the right answer), so the tasks, their order (HellaSwag's is
# always random, and --tasks N draws from std::mt19937 as llama-perplexity does) and every
# decision are the same; then its final line (Winogrande score, multiple-choice result and
# random chance, each with its standard error; HellaSwag: its last running accuracy) against
# ours, to the printed digits.
#
# "exact": float models (stories260K F32, qb-docs-26m F16), whose forward passes agree to float
# rounding: every line and the final scores must be equal.
# "model": quantized models (qb-docs-26m Q4_K_M, stories260K Q8_0). Their activations are
# quantized to 8 bits in both tools; the inputs of that rounding differ by float rounding, an
# int8 step flips here and there and the per-task scores differ by up to ~0.2 nats (measured:
# median 0.02), so a near tie may go the other way. Every task decided differently must be one
# whose margin (ours: the chosen score less the best other) is under 0.25 nats, and at most 5% of
# the tasks; the ok line says how many differed and both scores.
# llama-perplexity runs with an F32 KV cache (-ctk f32 -ctv f32), as ours; one thread each.
# Also: --json, the last Winogrande line llama-perplexity does not read, and bad input.
. "$(dirname "$0")/lib.sh"
S=$QB_MODELS/stories260K
D=$QB_MODELS/qb-docs-26m
TD=tests/data/tasks
HS=$TD/hellaswag.txt WG=$TD/winogrande.csv MC=$TD/multiple-choice.bin
LLAMA=../peer/llama.cpp/build/bin

# ---- bad input (no llama.cpp needed) -------------------------------------------------------
M=$S/stories260K-f32.gguf
if need_fixture "tasks: bad input" "$M"; then
    printf 'ctx\n1\na\nb\nc\n' >"$TMP/short.txt"
    expect_fail "hellaswag: 5 lines" "short.txt: task 1 \(line 1\): incomplete, 5 of its 6 lines" tasks "$M" --hellaswag "$TMP/short.txt"
    printf 'ctx\n7\na\nb\nc\nd\n' >"$TMP/gold.txt"
    expect_fail "hellaswag: gold 7" "gold.txt: task 1 \(line 2\): the gold ending index '7'" tasks "$M" --hellaswag "$TMP/gold.txt"
    printf '0,a _ b,x,y,1\n1,no blank,x,y,2\nlast\n' >"$TMP/blank.csv"
    expect_fail "winogrande: no blank" "blank.csv: line 2 \(task 2\): no '_'" tasks "$M" --winogrande "$TMP/blank.csv"
    printf '0,a _ b,x,y\nlast\n' >"$TMP/fields.csv"
    expect_fail "winogrande: 4 fields" "fields.csv: line 1 \(task 1\): 3 of the 4 commas" tasks "$M" --winogrande "$TMP/fields.csv"
    printf '0,a _ b,x,y,0\nlast\n' >"$TMP/answer.csv"
    expect_fail "winogrande: answer 0" "answer.csv: line 1 \(task 1\): the answer '0' is not 1 or 2" tasks "$M" --winogrande "$TMP/answer.csv"
    printf '0,a _ b,x,y,1\n' >"$TMP/one.csv"
    expect_fail "winogrande: only a last line" "one.csv: no tasks \(llama-perplexity reads a line only when" tasks "$M" --winogrande "$TMP/one.csv"
    head -c 1000 "$MC" >"$TMP/cut.bin"
    expect_fail "multiple choice: truncated" "cut.bin: task [0-9]+ \(byte [0-9]+\): " tasks "$M" --multiple-choice "$TMP/cut.bin"
    cp "$MC" "$TMP/offset.bin" && printf '\x01' | dd of="$TMP/offset.bin" bs=1 seek=8 conv=notrunc 2>/dev/null
    expect_fail "multiple choice: a wrong offset" "offset.bin: task 2: its offset says byte" tasks "$M" --multiple-choice "$TMP/offset.bin"
    { cat "$MC"; printf 'xx'; } >"$TMP/tail.bin"
    expect_fail "multiple choice: trailing bytes" "tail.bin: 2 bytes follow the last task" tasks "$M" --multiple-choice "$TMP/tail.bin"
    printf '\0\0\0\0' >"$TMP/zero.bin"
    expect_fail "multiple choice: no tasks" "zero.bin: no tasks" tasks "$M" --multiple-choice "$TMP/zero.bin"
    expect_fail "missing file" "nonexistent.txt" tasks "$M" --hellaswag "$TMP/nonexistent.txt"
    expect_fail "two kinds" "give one of" tasks "$M" --hellaswag "$HS" --winogrande "$WG"
    expect_fail "no kind" "usage: quantbench tasks" tasks "$M"
    expect_fail "--tasks -1" "--tasks expects an integer" tasks "$M" --hellaswag "$HS" --tasks -1
    expect_fail "context too small" "task 1 \(line [0-9]+\) needs [0-9]+ tokens .* more than the 16-token context" \
        tasks "$M" --hellaswag "$HS" --ctx 16 -t 1
    printf 'Lily ran.\n0\nShe fell.\nShe fell.\nShe fell.\nShe fell.\n' >"$TMP/same.txt"
    expect_fail "identical endings" "same.txt: task 1 \(line 1\): choice 1 adds no token" tasks "$M" --hellaswag "$TMP/same.txt" -t 1

    # --json to a file (written whole) and to stdout
    run tasks "$M" --multiple-choice "$MC" --tasks 10 --json "$TMP/r.json" -t 1
    if [ "$rc" = 0 ] && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['tasks']==10 and d['tasks_in_file']==120 and d['kind']=='multiple-choice' and 0<=d['correct']<=10" "$TMP/r.json" 2>/dev/null &&
        ! ls "$TMP"/r.json.tmp-* >/dev/null 2>&1; then ok "--json FILE"
    else not_ok "--json FILE" "exit $rc" "$(cat "$TMP/r.json" 2>&1 | head -3)"; fi
    run tasks "$M" --winogrande "$WG" --tasks 5 --json - -t 1
    if [ "$rc" = 0 ] && printf '%s' "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); assert d['tasks']==5 and d['tasks_in_file']==159" 2>/dev/null
    then ok "--json -"; else not_ok "--json -" "exit $rc" "$out"; fi
    # --plan: applied in memory, the same score as the GGUF `quantize --plan` writes
    printf '*attn*.weight = q8_0\n' >"$TMP/p.plan"
    run tasks "$M" --winogrande "$WG" --tasks 100 --plan "$TMP/p.plan" -t 1
    a=$(printf '%s' "$out" | grep '^acc = ')
    "$QB_BIN" quantize "$M" "$TMP/p.gguf" --plan "$TMP/p.plan" >/dev/null 2>&1
    run tasks "$TMP/p.gguf" --winogrande "$WG" --tasks 100 -t 1
    b=$(printf '%s' "$out" | grep '^acc = ')
    if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "--plan: as the exported plan ($a)"; else not_ok "--plan" "in memory '$a', exported '$b'"; fi
    expect_fail "--plan: a missing plan" "nonexistent.plan" tasks "$M" --winogrande "$WG" --plan "$TMP/nonexistent.plan"
    # methods: a task-accuracy column; the unquantized row's is what `tasks` gives
    run tasks "$M" --winogrande "$WG" --tasks 100 -t 1
    want=$(printf '%s' "$out" | sed -n 's/^acc = \([0-9.]*\) +\/- \([0-9.]*\)/\1 \2/p' | awk '{ printf "%.2f ± %.2f", $1, $2 }')
    run methods "$M" --calib "$S/ppl-sample.txt" --eval "$S/ppl-sample.txt" --formats q8_0 --methods rtn --ctx 64 \
        --winogrande "$WG" --tasks 100 -t 1
    if [ "$rc" = 0 ] && printf '%s' "$out" | grep -q '| acc % |$' && printf '%s' "$out" | grep -q "^| unquantized .*| $want |$" &&
        printf '%s' "$out" | grep -qE '^\| q8_0 \| rtn .*\| [0-9.]+ ± [0-9.]+ \|$'; then ok "methods --winogrande: the acc column ($want unquantized)"
    else not_ok "methods --winogrande" "exit $rc, want '$want'" "$out" "$err"; fi
fi

# ---- against llama-perplexity ---------------------------------------------------------------
if [ ! -x "$LLAMA/llama-perplexity" ]; then
    skip "tasks vs llama-perplexity" "$LLAMA/llama-perplexity not built (llama.cpp c392e50 beside the project)"
    finish
    exit
fi

# per-task lines as "index running [chosen answer]" (llama-perplexity's columns)
lines() { grep -E '^[0-9]+	' "$1" | awk -v k="$2" '{ if (k == "winogrande") print $1, $2, $5, $6; else print $1, $2 }'; }
# the final scores as printed: "acc err [chance err]"
final_theirs() {
    case $2 in
    hellaswag) grep -E '^[0-9]+	' "$1" | tail -1 | awk '{ printf "%.4f\n", $2 }' ;;
    winogrande) sed -n 's/.*Final Winogrande score([0-9]* tasks): \([-0-9.]*\) +\/- \([-0-9.]*\).*/\1 \2/p' "$1" ;;
    *) { sed -n 's/.*Final result: \([-0-9.]*\) +\/- \([-0-9.]*\).*/\1 \2/p' "$1"
         sed -n 's/.*Random chance: \([-0-9.]*\) +\/- \([-0-9.]*\).*/\1 \2/p' "$1"; } | paste -sd' ' ;;
    esac
}
final_ours() {
    case $2 in
    hellaswag) sed -n 's/^acc_norm = \([-0-9.]*\) .*/\1/p' "$1" ;;
    winogrande) sed -n 's/^acc = \([-0-9.]*\) +\/- \([-0-9.]*\)/\1 \2/p' "$1" ;;
    *) { sed -n 's/^acc = \([-0-9.]*\) +\/- \([-0-9.]*\)/\1 \2/p' "$1"
         sed -n 's/^random chance = \([-0-9.]*\) +\/- \([-0-9.]*\)/\1 \2/p' "$1"; } | paste -sd' ' ;;
    esac
}
# per-task correctness from the running accuracy: "index 0|1"
correct_of() {
    awk '{ c = int($2 * $1 / 100 + 0.5); print $1, c - prev; prev = c }' "$1"
}

# compare MODE NAME MODEL KIND FILE N
compare() {
    local mode=$1 name=$2 model=$3 kind=$4 file=$5 ntask=$6 lf
    case $kind in
    hellaswag) lf=(-f "$file" --hellaswag --hellaswag-tasks "$ntask") ;;
    winogrande) lf=(-f "$file" --winogrande --winogrande-tasks "$ntask") ;;
    *) lf=(-bf "$file" --multiple-choice --multiple-choice-tasks "$ntask") ;;
    esac
    [ "$kind" = hellaswag ] && [ "$ntask" = 0 ] && lf=(-f "$file" --hellaswag)
    if ! "$LLAMA/llama-perplexity" -m "$model" "${lf[@]}" -t 1 -ctk f32 -ctv f32 >"$TMP/l.out" 2>"$TMP/l.err"; then
        not_ok "$name" "llama-perplexity failed: $(tail -2 "$TMP/l.err")"
        return
    fi
    run tasks "$model" --"$kind" "$file" --tasks "$ntask" --per-task -t 1
    if [ "$rc" != 0 ]; then not_ok "$name" "quantbench exit $rc: $err"; return; fi
    printf '%s\n' "$out" >"$TMP/q.out"
    cat "$TMP/l.out" "$TMP/l.err" >"$TMP/l.all"
    lines "$TMP/l.out" "$kind" >"$TMP/l.lines"
    lines "$TMP/q.out" "$kind" >"$TMP/q.lines"
    local ft fo nl
    ft=$(final_theirs "$TMP/l.all" "$kind") fo=$(final_ours "$TMP/q.out" "$kind") nl=$(wc -l <"$TMP/l.lines")
    if [ "$nl" -lt 1 ] || [ "$nl" != "$(wc -l <"$TMP/q.lines")" ]; then
        not_ok "$name" "task lines: llama-perplexity $nl, ours $(wc -l <"$TMP/q.lines")"
        return
    fi
    if [ "$mode" = exact ]; then
        if cmp -s "$TMP/l.lines" "$TMP/q.lines" && [ -n "$ft" ] && [ "$ft" = "$fo" ]; then
            ok "$name: $nl tasks, every line equal, score $fo"
        else
            not_ok "$name" "llama-perplexity: $ft, ours: $fo" "$(diff "$TMP/l.lines" "$TMP/q.lines" | head -4)"
        fi
        return
    fi
    # model: decisions may differ only on near ties
    correct_of "$TMP/l.lines" >"$TMP/l.c"
    correct_of "$TMP/q.lines" >"$TMP/q.c"
    local margins bad ndiff
    if [ "$kind" = winogrande ]; then margins=$(grep -E '^[0-9]+	' "$TMP/q.out" | awk '{ print $1, $7 }')
    else margins=$(grep -E '^[0-9]+	' "$TMP/q.out" | awk '{ print $1, $4 }'); fi
    printf '%s\n' "$margins" >"$TMP/q.m"
    read -r ndiff bad < <(paste -d' ' "$TMP/l.c" "$TMP/q.c" "$TMP/q.m" |
        awk '$2 != $4 { n++; if ($6 >= 0.25) b = b " task " $1 " (margin " $6 ")" } END { print n + 0, (b == "" ? "-" : b) }')
    if [ "$bad" = "-" ] && [ $((ndiff * 20)) -le "$nl" ] && [ -n "$ft" ] && [ -n "$fo" ]; then
        ok "$name: $nl tasks, $ndiff decided differently (near ties); llama-perplexity $ft, ours $fo"
    else
        not_ok "$name" "$ndiff tasks decided differently, not near ties:$bad; llama-perplexity $ft, ours $fo"
    fi
}

if need_fixture "tasks vs llama-perplexity (stories260K)" "$S/stories260K-f32.gguf" "$S/stories260K-q8_0.gguf"; then
    compare exact "stories260K F32 hellaswag (all, random order)" "$S/stories260K-f32.gguf" hellaswag "$HS" 0
    compare exact "stories260K F32 hellaswag --tasks 50" "$S/stories260K-f32.gguf" hellaswag "$HS" 50
    compare exact "stories260K F32 winogrande (all; the last line unread)" "$S/stories260K-f32.gguf" winogrande "$WG" 0
    compare exact "stories260K F32 winogrande --tasks 100" "$S/stories260K-f32.gguf" winogrande "$WG" 100
    compare exact "stories260K F32 multiple-choice (all)" "$S/stories260K-f32.gguf" multiple-choice "$MC" 0
    compare exact "stories260K F32 multiple-choice --tasks 100" "$S/stories260K-f32.gguf" multiple-choice "$MC" 100
    compare model "stories260K Q8_0 winogrande (all)" "$S/stories260K-q8_0.gguf" winogrande "$WG" 0
    compare model "stories260K Q8_0 multiple-choice (all)" "$S/stories260K-q8_0.gguf" multiple-choice "$MC" 0
fi
if need_fixture "tasks vs llama-perplexity (qb-docs-26m)" "$D/qb-docs-26m-f16.gguf" "$D/qb-docs-26m-q4_k_m.gguf"; then
    compare exact "qb-docs-26m F16 hellaswag --tasks 20" "$D/qb-docs-26m-f16.gguf" hellaswag "$HS" 20
    compare exact "qb-docs-26m F16 winogrande --tasks 100" "$D/qb-docs-26m-f16.gguf" winogrande "$WG" 100
    compare exact "qb-docs-26m F16 multiple-choice --tasks 100" "$D/qb-docs-26m-f16.gguf" multiple-choice "$MC" 100
    compare model "qb-docs-26m Q4_K_M hellaswag --tasks 20" "$D/qb-docs-26m-q4_k_m.gguf" hellaswag "$HS" 20
    compare model "qb-docs-26m Q4_K_M winogrande --tasks 100" "$D/qb-docs-26m-q4_k_m.gguf" winogrande "$WG" 100
    compare model "qb-docs-26m Q4_K_M multiple-choice --tasks 100" "$D/qb-docs-26m-q4_k_m.gguf" multiple-choice "$MC" 100
fi
finish
