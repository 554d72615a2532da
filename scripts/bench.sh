#!/bin/sh
# bench.sh — `make bench`: prompt-processing (pp) and generation (tg) tokens/s of quantbench
# against llama.cpp's llama-bench on the same models, same -p/-n/-t/-r, back to back in one
# run, printed as a table with the ratio ours/theirs, plus the memory-bandwidth bound of
# generation on the TinyLlama-shaped model. Results go to ${QB_BENCH_DIR}/results-DATE.csv.
# What each number means: tests/bench/README.md.
#
# Environment:
#   BUILD            build folder holding quantbench and libqb.a (default build)
#   LLAMA_CPP_BIN    folder holding llama-bench; unset or wrong: the comparison is skipped
#   QB_MODELS        shared models (default ../shared/models)
#   QB_BENCH_DIR     cache for generated models and results (default ~/.cache/quantbench-bench)
#   BENCH_P BENCH_N BENCH_THREADS BENCH_REPS   -p -n -t -r for both tools (128 64 2 5)
#   BENCH_TIMEOUT    seconds one tool may take for one test of one model (600; 0 = none)
#   BENCH_MODELS     which models, space-separated, from: docs26m-f16 docs26m-f32
#                    tinyllama-f16 tinyllama-f32 (default: all but tinyllama-f32)
#   BENCH_TINYLLAMA_F32=1   add tinyllama-f32 (a 4.4 GB file) to the default list
#
# Exit status: 0 when no quantbench run failed (llama.cpp missing or failing, and runs stopped
# by BENCH_TIMEOUT, are notes shown in the table), 1 when quantbench failed on some model,
# 2 on a setup problem.
set -u
cd "$(dirname "$0")/.." || exit 2

BUILD=${BUILD:-build}
QB="$BUILD/quantbench"
SYNTH="$BUILD/synth_model"
MODELS=${QB_MODELS:-../shared/models}
DIR=${QB_BENCH_DIR:-$HOME/.cache/quantbench-bench}
P=${BENCH_P:-128}
N=${BENCH_N:-64}
T=${BENCH_THREADS:-2}
R=${BENCH_REPS:-5}
TIMEOUT=${BENCH_TIMEOUT:-600}
LLAMA_BIN=${LLAMA_CPP_BIN:-}
DEFAULT_MODELS="docs26m-f16 docs26m-f32 tinyllama-f16"
[ "${BENCH_TINYLLAMA_F32:-0}" = 1 ] && DEFAULT_MODELS="$DEFAULT_MODELS tinyllama-f32"
WANT=${BENCH_MODELS:-$DEFAULT_MODELS}

say() { printf 'bench: %s\n' "$*"; }
die() { say "$*" >&2; exit 2; }

for v in "BENCH_P=$P" "BENCH_N=$N" "BENCH_THREADS=$T" "BENCH_REPS=$R" "BENCH_TIMEOUT=$TIMEOUT"; do
    case ${v#*=} in '' | *[!0-9]*) die "${v%%=*} must be a non-negative integer, not '${v#*=}'" ;; esac
done
if [ "$T" -lt 1 ] || [ "$R" -lt 1 ]; then die "BENCH_THREADS and BENCH_REPS must be at least 1"; fi
[ "$P" -ge 1 ] || [ "$N" -ge 1 ] || die "one of BENCH_P and BENCH_N must be at least 1"
[ -x "$QB" ] || die "$QB not found: run make first"
mkdir -p "$DIR" || die "cannot create $DIR"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qb-bench.XXXXXX") || die "cannot create a temporary folder"
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# --- the helper program (a Makefile target: rebuilt when older than its sources or libqb.a) ---
make --no-print-directory -s BUILD="$BUILD" "$SYNTH" >/dev/null || die "cannot build $SYNTH"

# --- llama.cpp, if we have it ---
LLAMA_BENCH=""
if [ -z "$LLAMA_BIN" ]; then
    say "note: LLAMA_CPP_BIN is not set: llama.cpp comparison skipped (set it to the folder holding llama-bench)"
elif ! [ -x "$LLAMA_BIN/llama-bench" ]; then
    say "note: no executable llama-bench in LLAMA_CPP_BIN=$LLAMA_BIN: llama.cpp comparison skipped"
else
    LLAMA_BENCH="$LLAMA_BIN/llama-bench"
fi

# --- models: shared, or generated once into $DIR ---
# Leftovers of an interrupted write (the writer renames only a finished file).
find "$DIR" -maxdepth 1 -name '*.gguf.tmp-*' -mmin +60 -exec rm -f {} + 2>/dev/null

free_bytes() { df -Pk "$1" | awk 'NR == 2 { printf "%.0f", $4 * 1024 }'; }

# make_model FILE BYTES_NEEDED SYNTH_ARGS... : run synth_model unless FILE exists.
make_model() {
    f=$1 need=$2
    shift 2
    [ -s "$f" ] && return 0
    if [ "$(free_bytes "$DIR")" -lt $((need + need / 10)) ]; then
        say "note: not enough free disk in $DIR for $(basename "$f") ($need bytes): skipped"
        return 1
    fi
    say "generating $f (once; reused from the cache afterwards)"
    "$SYNTH" "$@" || { say "note: synth_model failed: $(basename "$f") skipped"; return 1; }
}

DOCS_F16="$MODELS/qb-docs-26m/qb-docs-26m-f16.gguf"
# model_file NAME: set F to the file for one entry of BENCH_MODELS (made if needed), or fail.
model_file() {
    case $1 in
    docs26m-f16 | docs26m-f32)
        [ -s "$DOCS_F16" ] || { say "note: $DOCS_F16 not found (QB_MODELS?): $1 skipped"; return 1; }
        F=$DOCS_F16
        [ "$1" = docs26m-f16 ] && return 0
        F="$DIR/qb-docs-26m-f32.gguf"
        make_model "$F" 110000000 --to-f32 "$DOCS_F16" "$F" ;;
    tinyllama-f16 | tinyllama-f32)
        ty=${1#tinyllama-}
        F="$DIR/tinyllama-synth-v1-$ty.gguf"
        need=2210000000
        [ "$ty" = f32 ] && need=4410000000
        make_model "$F" "$need" --llama "$F" --type "$ty" ;;
    *)
        say "note: unknown model '$1' in BENCH_MODELS (docs26m-f16 docs26m-f32 tinyllama-f16 tinyllama-f32)"
        return 1 ;;
    esac
}

label_of() {
    case $1 in
    docs26m-f16) echo "qb-docs-26m F16" ;;
    docs26m-f32) echo "qb-docs-26m F32" ;;
    tinyllama-f16) echo "TinyLlama-1.1B-shape F16" ;;
    tinyllama-f32) echo "TinyLlama-1.1B-shape F32" ;;
    esac
}

# llama-bench's CSV (quoted fields) -> "test,mean,sd" lines (pp<P> / tg<N>, like ours).
parse_llama_csv() {
    awk '
    function split_csv(s, out,   n, f, i, c, q) {
        n = 0; f = ""; q = 0
        for (i = 1; i <= length(s); i++) {
            c = substr(s, i, 1)
            if (q) {
                if (c == "\"") { if (substr(s, i + 1, 1) == "\"") { f = f c; i++ } else q = 0 }
                else f = f c
            } else if (c == "\"") q = 1
            else if (c == ",") { out[++n] = f; f = "" }
            else f = f c
        }
        out[++n] = f
        return n
    }
    !hdr { n = split_csv($0, h); for (i = 1; i <= n; i++) col[h[i]] = i; hdr = 1
           if (!col["n_prompt"] || !col["n_gen"] || !col["avg_ts"]) exit 3
           next }
    { split_csv($0, a); p = a[col["n_prompt"]] + 0; g = a[col["n_gen"]] + 0
      t = (g == 0) ? "pp" p : (p == 0) ? "tg" g : "pp" p "+tg" g
      printf "%s,%.2f,%.2f\n", t, a[col["avg_ts"]], (col["stddev_ts"] ? a[col["stddev_ts"]] : 0) }'
}

QB_FAILED=0
: >"$TMP/raw"   # label,test,tool,mean,sd
: >"$TMP/bytes" # label,bytes_per_token

# limited CMD...: run CMD with the per-run time limit (when coreutils timeout exists).
limited() {
    if [ "$TIMEOUT" -gt 0 ] && command -v timeout >/dev/null 2>&1; then timeout "$TIMEOUT" "$@"; else "$@"; fi
}

# test_name P N: the name both tools give a run with -p P -n N (one of them 0).
test_name() { if [ "$1" -gt 0 ]; then echo "pp$1"; else echo "tg$2"; fi; }

# run_qb LABEL FILE P N: one quantbench run (one test). A failure makes the script fail; a
# timeout (BENCH_TIMEOUT) is shown in the table but does not.
run_qb() {
    limited "$QB" bench "$2" -p "$3" -n "$4" -t "$T" -r "$R" --csv >"$TMP/qb.out" 2>"$TMP/qb.err"
    rc=$?
    if [ "$rc" -eq 124 ]; then
        say "note: quantbench took over ${TIMEOUT}s on $(test_name "$3" "$4") of $2: stopped (busy machine? BENCH_TIMEOUT)"
        echo "$1,$(test_name "$3" "$4"),qb,timeout," >>"$TMP/raw"
        return
    elif [ "$rc" -ne 0 ]; then
        cat "$TMP/qb.err" >&2
        say "ERROR: quantbench bench failed (status $rc) on $2"
        QB_FAILED=1
        return
    fi
    while IFS=, read -r _m test _t mean sd; do
        printf '   quantbench  %-6s %10s ± %s t/s\n' "$test" "$mean" "$sd"
        echo "$1,$test,qb,$mean,$sd" >>"$TMP/raw"
    done <"$TMP/qb.out"
}

# run_ll LABEL FILE P N: one llama-bench run (one test); failures and timeouts are notes.
run_ll() {
    [ -n "$LLAMA_BENCH" ] || return 0
    limited "$LLAMA_BENCH" -m "$2" -p "$3" -n "$4" -t "$T" -r "$R" -o csv >"$TMP/ll.csv" 2>"$TMP/ll.err"
    rc=$?
    if [ "$rc" -eq 124 ]; then
        say "note: llama-bench took over ${TIMEOUT}s on $(test_name "$3" "$4") of $2: stopped (busy machine? BENCH_TIMEOUT)"
        echo "$1,$(test_name "$3" "$4"),ll,timeout," >>"$TMP/raw"
        return 0
    elif [ "$rc" -ne 0 ] || ! parse_llama_csv <"$TMP/ll.csv" >"$TMP/ll.out"; then
        tail -n 5 "$TMP/ll.err" >&2
        say "note: llama-bench failed (status $rc) on $2: no comparison for this test"
        return 0
    fi
    while IFS=, read -r test mean sd; do
        printf '   llama.cpp   %-6s %10.2f ± %.2f t/s\n' "$test" "$mean" "$sd"
        echo "$1,$test,ll,$mean,$sd" >>"$TMP/raw"
    done <"$TMP/ll.out"
}

# bench_one NAME FILE: for each test (pp, then tg), quantbench then llama-bench, back to back.
bench_one() {
    label=$(label_of "$1") f=$2
    say "== $label  ($f)"
    if [ "$P" -gt 0 ]; then
        run_qb "$label" "$f" "$P" 0
        run_ll "$label" "$f" "$P" 0
    fi
    if [ "$N" -gt 0 ]; then
        run_qb "$label" "$f" 0 "$N"
        run_ll "$label" "$f" 0 "$N"
    fi
    wb=$("$SYNTH" --weight-bytes "$f" 2>/dev/null) && echo "$label,${wb#* }" >>"$TMP/bytes"
}

load_now() { awk '{ print $1 }' /proc/loadavg 2>/dev/null || echo "?"; }
LOAD0=$(load_now)
case $LOAD0 in
0.[0-4]* | \?) ;;
*) say "note: load average $LOAD0 before starting: other processes are running, numbers will be noisy" ;;
esac
say "settings: -p $P -n $N -t $T -r $R; cache $DIR"
for m in $WANT; do
    model_file "$m" || continue
    bench_one "$m" "$F"
done

BW=""
if [ "$N" -ge 1 ] && grep -q '^TinyLlama' "$TMP/bytes"; then
    say "measuring read bandwidth (1 GiB, $T threads, best of 3)"
    BW=$("$SYNTH" --membw --mib 1024 --threads "$T" --reps 3 2>/dev/null) || BW=""
fi

# --- table, bandwidth lines, CSV ---
STAMP=$(date +%Y-%m-%d_%H%M%S)
CSV="$DIR/results-$STAMP.csv"
CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null | tr ',' ' ')
LOAD="$LOAD0 $(load_now)"
awk -F, -v bw="$BW" -v csv="$CSV" -v stamp="$STAMP" -v cpu="${CPU:-unknown}" -v thr="$T" -v ll="${LLAMA_BENCH:+1}" \
    -v load="$LOAD" '
    FILENAME ~ /bytes$/ { bpt[$1] = $2; next }
    { k = $1 SUBSEP $2
      if (!(k in seen)) { seen[k] = 1; order[++n] = k; lab[k] = $1; tst[k] = $2 }
      mean[k, $3] = $4; sd[k, $3] = $5 }
    function fmt(m, s) { return m == "" ? "-" : m == "timeout" ? "timeout" : sprintf("%.2f ± %.2f", m, s) }
    # right-align s in w columns; awk counts bytes, and "±" is two
    function rpad(s, w,   c) { c = gsub(/±/, "±", s); return sprintf("%" (w + c) "s", s) }
    function pct(g) { return bw == "" ? " (bandwidth not measured)" : sprintf(" = %.0f%% of measured bandwidth %s GB/s", 100 * g / bw, bw) }
    END {
        print ""
        printf "| %-26s | %-6s | %20s | %20s | %6s |\n", "model", "test", "quantbench t/s", "llama.cpp t/s", "ratio"
        printf "| %-26s | %-6s | %20s | %20s | %6s |\n", "--------------------------", "------", "-------------------:", "-------------------:", "-----:"
        print "date,cpu,threads,model,test,quantbench_tps,quantbench_sd,llamacpp_tps,llamacpp_sd,ratio,bytes_per_token,quantbench_gbs,llamacpp_gbs,membw_gbs,loadavg_start_end" > csv
        for (i = 1; i <= n; i++) {
            k = order[i]; q = mean[k, "qb"]; l = mean[k, "ll"]
            qt = q; lt = l
            if (q == "timeout") q = ""
            if (l == "timeout") l = ""
            ratio = (q != "" && l != "" && l > 0) ? sprintf("%.2f", q / l) : ""
            printf "| %-26s | %-6s | %s | %s | %6s |\n", lab[k], tst[k], rpad(fmt(qt, sd[k, "qb"]), 20), rpad(fmt(lt, sd[k, "ll"]), 20), ratio == "" ? "-" : ratio
            b = (tst[k] ~ /^tg/ && lab[k] in bpt) ? bpt[lab[k]] : ""
            qg = (b != "" && q != "") ? sprintf("%.2f", b * q / 1e9) : ""
            lg = (b != "" && l != "") ? sprintf("%.2f", b * l / 1e9) : ""
            printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", stamp, cpu, thr, lab[k], tst[k], qt, sd[k, "qb"], lt, sd[k, "ll"], ratio, b, qg, lg, bw, load > csv
            if (b != "" && lab[k] ~ /^TinyLlama/) {
                out[++no] = sprintf("%s %s: %.3f GB of weights read per token", lab[k], tst[k], b / 1e9)
                if (qg != "") out[++no] = sprintf("  quantbench: generation reads %s GB/s%s", qg, pct(qg))
                if (lg != "") out[++no] = sprintf("  llama.cpp:  generation reads %s GB/s%s", lg, pct(lg))
            }
        }
        if (no) print ""
        for (j = 1; j <= no; j++) print out[j]
        if (!ll) print "\n(llama.cpp comparison skipped: set LLAMA_CPP_BIN to the folder holding llama-bench)"
        split(load, la, " ")
        printf "\nload average at start %s, at end %s%s\n", la[1], la[2], \
            (la[1] + 0 >= 0.5 || la[2] + 0 >= thr + 0.5) ? ": the machine was busy, treat these numbers as rough" : ""
    }' "$TMP/bytes" "$TMP/raw"

echo
say "results saved to $CSV"
cat "$CSV"
[ "$QB_FAILED" = 0 ] || { say "ERROR: quantbench failed on at least one model"; exit 1; }
exit 0
