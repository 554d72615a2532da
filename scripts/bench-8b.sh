#!/bin/sh
# bench-8b.sh — real size, on this machine (issue 13; `BENCH_8B=1 make bench`, or run alone):
# quantbench against llama.cpp on a synthetic model with Llama-3.1-8B's shapes (32 layers,
# 4096 wide, FFN 14336, 32/8 heads, vocab 128256, rope_freqs.weight with the llama3 factors;
# random weights, F16, 16.1 GB, generated once into the bench cache by synth_model) and on a
# Qwen3-30B-A3B-shaped mixture of experts cut to BENCH_8B_MOE_LAYERS layers (128 experts of
# 768, 8 used; 5 layers: 7.5 GB F16), written twice: as arch qwen3moe (quantbench only:
# llama.cpp c392e50 does not know it) and as Mixtral-style "llama" experts (both tools).
# Every figure is printed with the command that produced it:
#   open      `quantbench info` and a 2-token `quantbench generate` of the F16 file and of each
#             quantized file: wall time and resident memory (VmHWM, and the largest RssAnon /
#             RssFile seen: the F16 file is mapped, so its pages show as RssFile, not copies);
#   quantize  `quantbench quantize F16 OUT TYPE` for BENCH_8B_FORMATS, and `llama-quantize` on
#             the same file with the same threads for BENCH_8B_LLAMA_QUANTIZE (time, memory, size);
#   speed     pp/tg tokens/s of our quantized files with `quantbench bench` and `llama-bench`,
#             interleaved (ours pp, theirs pp, ours tg, theirs tg) BENCH_ROUNDS times, medians (and each tool's best round),
#             ratios; generation's GB/s against the measured read bandwidth (synth_model --membw);
#   ppl       `quantbench ppl` of the F16 file on eval-docs.txt, BENCH_8B_PPL_CHUNKS chunks of
#             256; then ours and `llama-perplexity` on our Q8_0 file (they should agree to 0.5%);
#   scan      `quantbench scan --layers L` (one block's matrices at q4_k against the F16 model);
#   fisher    `quantbench scan --estimate fisher` of the F16 model on calib-docs.txt: every
#             matrix's estimated KLD in q4_k, q3_k and int3-g128 from one streamed Fisher pass
#             (BENCH_8B_FISHER_TOKENS tokens): wall time, resident memory;
#   tui       scripts/bench-tui.sh on the F16 file's output.weight (128256×4096: 525M values);
#   moe       the MoE files: open, quantize Q4_K_M (ours on both, llama-quantize on the llama
#             one), pp/tg of our Q4_K_M files with both tools.
# Each step fails soft: a missing tool, a failed command or too little disk is a note and the
# next step runs. Quantized files this run makes are deleted at the end (BENCH_8B_KEEP=1 keeps
# them); the generated F16 models stay in the cache for the next run.
#
# Environment:
#   BUILD, QB_DATA (../shared/data), QB_BENCH_DIR (~/.cache/quantbench-bench), LLAMA_CPP_BIN
#   BENCH_THREADS (2) -t for every tool; BENCH_ROUNDS (3) interleaved speed rounds
#   BENCH_8B_STEPS ("open quantize speed ppl scan fisher tui moe"): which steps, in this order
#   BENCH_8B_FORMATS ("Q4_0 Q4_K_M Q8_0"); BENCH_8B_LLAMA_QUANTIZE ("Q4_K_M"; empty: none)
#   BENCH_8B_P / BENCH_8B_N / BENCH_8B_REPS (128 / 64 / 2): -p, -n, -r of each speed run
#   BENCH_8B_PPL_CHUNKS (4); BENCH_8B_SCAN_LAYER (0), BENCH_8B_SCAN_PER (tensor),
#   BENCH_8B_SCAN_TOKENS (512); BENCH_8B_FISHER_TOKENS (512); BENCH_8B_TUI_KEYS (2), BENCH_8B_TUI_WAIT (600 s)
#   BENCH_8B_MOE_LAYERS (5); BENCH_8B_TIMEOUT (3600 s for one command; 0 = none)
#   BENCH_8B_SYNTH_ARGS / BENCH_8B_MOE_SYNTH_ARGS: extra synth_model options after the preset,
#     to try the script on a scaled-down shape (e.g. "--layers 2 --vocab 32000"); the files
#     then get another name, so they never pass for the real-size ones
#   BENCH_8B_KEEP (0): 1 keeps the quantized files
#   BENCH_8B_NO_MMAP (0): 1 runs our speed rows with --no-mmap (weights read into private
#     memory; llama.cpp c392e50 repacks Q4_0 into private memory by itself)
# Exit status: 0 when no quantbench command failed, 1 when one did, 2 on a setup problem.
set -u
cd "$(dirname "$0")/.." || exit 2

BUILD=${BUILD:-build}
QB="$BUILD/quantbench"
SYNTH="$BUILD/synth_model"
DATA=${QB_DATA:-../shared/data}
TEXT="$DATA/eval-docs.txt"
DIR=${QB_BENCH_DIR:-$HOME/.cache/quantbench-bench}
T=${BENCH_THREADS:-2}
ROUNDS=${BENCH_ROUNDS:-3}
P=${BENCH_8B_P:-128}
N=${BENCH_8B_N:-64}
REPS=${BENCH_8B_REPS:-2}
STEPS=${BENCH_8B_STEPS:-"open quantize speed ppl scan fisher tui moe"}
FORMATS=${BENCH_8B_FORMATS:-"Q4_0 Q4_K_M Q8_0"}
LQ_FORMATS=${BENCH_8B_LLAMA_QUANTIZE-"Q4_K_M"}
PPL_CHUNKS=${BENCH_8B_PPL_CHUNKS:-4}
SCAN_LAYER=${BENCH_8B_SCAN_LAYER:-0}
SCAN_PER=${BENCH_8B_SCAN_PER:-tensor}
SCAN_TOKENS=${BENCH_8B_SCAN_TOKENS:-512}
FISHER_TOKENS=${BENCH_8B_FISHER_TOKENS:-512}
TUI_KEYS=${BENCH_8B_TUI_KEYS:-2}
TUI_WAIT=${BENCH_8B_TUI_WAIT:-600}
MOE_LAYERS=${BENCH_8B_MOE_LAYERS:-5}
TMO=${BENCH_8B_TIMEOUT:-3600}
SYNTH_ARGS=${BENCH_8B_SYNTH_ARGS:-}
MOE_ARGS=${BENCH_8B_MOE_SYNTH_ARGS:-}
KEEP=${BENCH_8B_KEEP:-0}
NO_MMAP=""
[ "${BENCH_8B_NO_MMAP:-0}" = 1 ] && NO_MMAP=--no-mmap
LB=${LLAMA_CPP_BIN:-}

say() { printf 'bench-8b: %s\n' "$*"; }
note() { say "note: $*"; }
die() { say "$*" >&2; exit 2; }
show() { printf '  $ %s\n' "$*"; }
has_step() { case " $STEPS " in *" $1 "*) return 0 ;; esac; return 1; }

for v in "BENCH_THREADS=$T" "BENCH_ROUNDS=$ROUNDS" "BENCH_8B_P=$P" "BENCH_8B_N=$N" "BENCH_8B_REPS=$REPS" \
    "BENCH_8B_PPL_CHUNKS=$PPL_CHUNKS" "BENCH_8B_SCAN_LAYER=$SCAN_LAYER" "BENCH_8B_SCAN_TOKENS=$SCAN_TOKENS" \
    "BENCH_8B_FISHER_TOKENS=$FISHER_TOKENS" \
    "BENCH_8B_TUI_KEYS=$TUI_KEYS" "BENCH_8B_TUI_WAIT=$TUI_WAIT" "BENCH_8B_MOE_LAYERS=$MOE_LAYERS" \
    "BENCH_8B_TIMEOUT=$TMO"; do
    case ${v#*=} in '' | *[!0-9]*) die "${v%%=*} must be a non-negative integer, not '${v#*=}'" ;; esac
done
if [ "$T" -lt 1 ] || [ "$ROUNDS" -lt 1 ] || [ "$REPS" -lt 1 ] || [ "$MOE_LAYERS" -lt 1 ]; then
    die "BENCH_THREADS, BENCH_ROUNDS, BENCH_8B_REPS and BENCH_8B_MOE_LAYERS must be at least 1"
fi
for s in $STEPS; do
    case $s in open | quantize | speed | ppl | scan | fisher | tui | moe) ;; *) die "unknown step '$s' in BENCH_8B_STEPS" ;; esac
done
[ -x "$QB" ] || die "$QB not found: run make first"
mkdir -p "$DIR" || die "cannot create $DIR"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qb-bench-8b.XXXXXX") || die "cannot create a temporary folder"
MADE="" # quantized files this run wrote: deleted at exit unless BENCH_8B_KEEP=1
# shellcheck disable=SC2317
cleanup() {
    if [ "$KEEP" != 1 ]; then
        for f in $MADE; do rm -f "$f"; done
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
QB_FAILED=0
: >"$TMP/summary"
sum() { printf '%s\n' "$*" >>"$TMP/summary"; }

# --- the helper program (a Makefile target: rebuilt when older than its sources or libqb.a) ---
make --no-print-directory -s BUILD="$BUILD" "$SYNTH" >/dev/null || die "cannot build $SYNTH"

if [ -z "$LB" ]; then
    note "LLAMA_CPP_BIN is not set: llama.cpp's side is skipped (set it to the folder holding llama-bench)"
elif ! [ -x "$LB/llama-bench" ]; then
    note "no llama-bench in LLAMA_CPP_BIN=$LB: llama.cpp's side is skipped"
    LB=""
fi
has_llama() { [ -n "$LB" ] && [ -x "$LB/$1" ]; }

# --- small helpers ---
free_bytes() { df -Pk "$1" | awk 'NR == 2 { printf "%.0f", $4 * 1024 }'; }
fsize() { stat -c %s "$1" 2>/dev/null || wc -c <"$1"; }
gb() { awk -v b="$1" 'BEGIN { printf "%.2f GB", b / 1e9 }'; }
mib() { awk -v k="${1:-}" 'BEGIN { if (k == "") print "?"; else printf "%.0f", k / 1024 }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && a != "-" && b != "" && b != "-" && b > 0) printf "%.2f", a / b; else print "-" }'; }
best() { sort -g | awk 'END { if (NR == 0) print "-"; else printf "%.2f\n", $1 }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) printf "%.2f\n", v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
load_now() { awk '{ print $1 }' /proc/loadavg 2>/dev/null || echo "?"; }
limited() { if [ "$TMO" -gt 0 ] && command -v timeout >/dev/null 2>&1; then timeout "$TMO" "$@"; else "$@"; fi; }

# measured CMD...: run CMD under synth_model --measure (its output in $TMP/out and $TMP/err) and
# set M_wall_s M_exit M_hwm_kib M_anon_kib M_file_kib (and M_rss_kib); returns CMD's status.
measured() {
    show "$@"
    M_wall_s="" M_exit=1 M_hwm_kib="" M_anon_kib="" M_file_kib=""
    rm -f "$TMP/m"
    "$SYNTH" --measure "$TMP/m" --timeout "$TMO" -- "$@" >"$TMP/out" 2>"$TMP/err"
    [ -s "$TMP/m" ] && eval "$(awk '$1 ~ /^[a-z_]+$/ && $2 ~ /^[0-9.]+$/ { printf "M_%s=%s\n", $1, $2 }' "$TMP/m")"
    [ "$M_exit" = 124 ] && note "stopped after ${TMO}s (BENCH_8B_TIMEOUT)"
    return "$M_exit"
}
# qb_failed WHAT: note a failed quantbench command (the last lines of its stderr) and remember it
qb_failed() {
    tail -n 3 "$TMP/err" | sed 's/^/    /'
    note "quantbench failed: $1"
    QB_FAILED=1
}
mem_line() { printf 'peak %s MiB (anon %s, file %s)' "$(mib "$M_hwm_kib")" "$(mib "$M_anon_kib")" "$(mib "$M_file_kib")"; }

# enough_disk BYTES WHAT: true when BYTES (+10%) fit in $DIR, else a note
enough_disk() {
    fb=$(free_bytes "$DIR")
    [ "$fb" -ge $(($1 + $1 / 10)) ] && return 0
    note "not enough disk in $DIR for $2 ($(gb "$1") needed, $(gb "$fb") free): skipped"
    return 1
}
# est_bytes F16_BYTES TYPE: a generous estimate of a quantized file's size
est_bytes() {
    awk -v b="$1" -v t="$2" 'BEGIN { bpw = 8.5
        if (t ~ /^Q4_0|^Q4_1|^IQ4/) bpw = 5.0; else if (t ~ /^Q4_K|^Q5/) bpw = 5.7
        else if (t ~ /^Q2|^Q3/) bpw = 4.5; else if (t ~ /^Q6/) bpw = 6.6; else if (t ~ /^F16|^BF16/) bpw = 16
        printf "%.0f", b * bpw / 16 }'
}

# the tag of scaled-down shapes: "--layers 2 --vocab 32000" -> "-layers_2_vocab_32000"
tag_of() { [ -n "$1" ] && printf -- '-%s' "$(printf '%s' "$1" | sed 's/--//g; s/^ *//; s/ *$//; s/  */_/g; s/[^A-Za-z0-9._=-]/_/g')"; }

# make_model FILE SYNTH_ARGS...: generate FILE once (synth_model checks the disk itself)
make_model() {
    f=$1
    shift
    [ -s "$f" ] && return 0
    say "generating $f (once; reused from the cache afterwards)"
    show "$SYNTH" --llama "$f" "$@"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2068
    "$SYNTH" --llama "$f" "$@" || { note "synth_model failed: $(basename "$f") not made, the steps using it are skipped"; return 1; }
    say "made $(basename "$f"): $(gb "$(fsize "$f")") in $(secs "$t0" "$(date +%s.%N)") s"
}

# --- open: info and a tiny generation, time and memory ---
open_header() {
    printf '  %-34s %9s | %7s %9s | %8s %28s\n' file size "info s" "peak MiB" "gen2 s" "gen2 peak MiB (anon, file)"
}
open_row() { # LABEL FILE
    row_info="- -"
    if measured "$QB" info "$2"; then row_info="$M_wall_s $(mib "$M_hwm_kib")"
    else qb_failed "info $2"; fi
    row_gen="- -"
    if measured "$QB" generate "$2" -p "The" -n 2 -t "$T"; then
        row_gen="$M_wall_s $(mib "$M_hwm_kib") ($(mib "$M_anon_kib"), $(mib "$M_file_kib"))"
    else qb_failed "generate $2"; fi
    # shellcheck disable=SC2086
    set -- "$1" "$(gb "$(fsize "$2")")" $row_info $row_gen
    printf '  %-34s %9s | %7s %9s | %8s %28s\n' "$1" "$2" "$3" "$4" "$5" "$6 $7 $8"
    sum "open $1: $2; info $3 s, peak $4 MiB; generate 2 tokens $5 s, peak $6 MiB $7 $8"
}

# --- quantize: ours (and llama-quantize) on the same F16 file ---
# quantize_ours LABEL F16 TYPE OUT: sets Q_OK
quantize_ours() {
    Q_OK=0
    enough_disk "$(est_bytes "$(fsize "$2")" "$3")" "$4" || return 0
    MADE="$MADE $4"
    if measured "$QB" quantize "$2" "$4" "$3" -t "$T"; then
        Q_OK=1
        printf '    quantbench      %-7s %8s s  %s  -> %s\n' "$3" "$M_wall_s" "$(mem_line)" "$(gb "$(fsize "$4")")"
        sum "quantize $1 $3: quantbench $M_wall_s s, $(mem_line), $(gb "$(fsize "$4")")"
        Q_OURS_S=$M_wall_s
    else
        qb_failed "quantize $2 $3"
        Q_OURS_S=""
    fi
}
quantize_llama() { # LABEL F16 TYPE OUT
    has_llama llama-quantize || { note "no llama-quantize: no comparison for $3"; return 0; }
    enough_disk "$(est_bytes "$(fsize "$2")" "$3")" "$4" || return 0
    MADE="$MADE $4"
    if measured "$LB/llama-quantize" "$2" "$4" "$3" "$T"; then
        r=$(ratio "$M_wall_s" "${Q_OURS_S:-}")
        printf '    llama-quantize  %-7s %8s s  %s  -> %s   (llama-quantize / ours: %s)\n' "$3" "$M_wall_s" \
            "$(mem_line)" "$(gb "$(fsize "$4")")" "$r"
        sum "quantize $1 $3: llama-quantize $M_wall_s s, $(mem_line), $(gb "$(fsize "$4")"); time ratio llama/ours $r"
    else
        tail -n 3 "$TMP/err" | sed 's/^/    /'
        note "llama-quantize failed on $2 $3"
    fi
    [ "$KEEP" = 1 ] || rm -f "$4"
}

# --- speed: interleaved rounds, medians ---
ours_tps() { limited "$QB" bench "$1" -p "$2" -n "$3" -t "$T" -r "$REPS" --csv $NO_MMAP 2>/dev/null | awk -F, 'NR == 1 { print $4 }'; }
llama_tps() {
    limited "$LB/llama-bench" -m "$1" -p "$2" -n "$3" -t "$T" -r "$REPS" -o csv 2>/dev/null | awk -F, '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == "avg_ts") c = i; next }
        c { split(substr($0, 2, length($0) - 2), a, "\",\""); print a[c]; exit }'
}
speed_header() {
    printf '  %-28s | %9s %9s %6s | %9s %9s %6s | %14s\n' "file" "pp ours" "pp llama" ratio "tg ours" "tg llama" ratio \
        "tg GB/s ours"
}
# speed_row LABEL FILE [llama]: ours (and llama-bench unless the third argument is "no-llama")
speed_row() {
    with_ll=1
    has_llama llama-bench || with_ll=0
    [ "${3:-}" = no-llama ] && with_ll=0
    : >"$TMP/pp"; : >"$TMP/tg"; : >"$TMP/lpp"; : >"$TMP/ltg"
    i=0
    while [ "$i" -lt "$ROUNDS" ]; do
        [ "$P" -gt 0 ] && ours_tps "$2" "$P" 0 >>"$TMP/pp"
        [ "$P" -gt 0 ] && [ "$with_ll" = 1 ] && llama_tps "$2" "$P" 0 >>"$TMP/lpp"
        [ "$N" -gt 0 ] && ours_tps "$2" 0 "$N" >>"$TMP/tg"
        [ "$N" -gt 0 ] && [ "$with_ll" = 1 ] && llama_tps "$2" 0 "$N" >>"$TMP/ltg"
        i=$((i + 1))
    done
    pp=$(median <"$TMP/pp") tg=$(median <"$TMP/tg") lpp=$(median <"$TMP/lpp") ltg=$(median <"$TMP/ltg")
    [ "$pp$tg" = "--" ] && { note "quantbench bench gave no figure on $2"; QB_FAILED=1; }
    rpp=$(ratio "$pp" "$lpp") rtg=$(ratio "$tg" "$ltg")
    bpt=$("$SYNTH" --weight-bytes "$2" 2>/dev/null | awk '{ print $2 }')
    gbs=$(awk -v b="${bpt:-}" -v t="$tg" -v bw="${BW:-}" 'BEGIN {
        if (b == "" || t == "-") { print "-"; exit }
        g = b * t / 1e9; if (bw != "") printf "%.1f (%.0f%%)", g, 100 * g / bw; else printf "%.1f", g }')
    printf '  %-28s | %9s %9s %6s | %9s %9s %6s | %14s\n' "$1" "$pp" "$lpp" "$rpp" "$tg" "$ltg" "$rtg" "$gbs"
    sum "speed $1: pp$P $pp / $lpp t/s ($rpp), tg$N $tg / $ltg t/s ($rtg), generation $gbs GB/s"
    # the best round of each: on a shared machine, stretches of slowdown land on either tool
    # (both threads slow together, no imbalance); the bests compare the two when it is quiet
    bpp=$(best <"$TMP/pp") btg=$(best <"$TMP/tg") blpp=$(best <"$TMP/lpp") bltg=$(best <"$TMP/ltg")
    printf '  %-28s | %9s %9s %6s | %9s %9s %6s |\n' "  best round" "$bpp" "$blpp" "$(ratio "$bpp" "$blpp")" "$btg" "$bltg" \
        "$(ratio "$btg" "$bltg")"
    sum "speed $1, best rounds: pp$P $bpp / $blpp t/s ($(ratio "$bpp" "$blpp")), tg$N $btg / $bltg t/s ($(ratio "$btg" "$bltg"))"
}
speed_commands() {
    show "$QB" bench FILE -p "$P" -n 0 -t "$T" -r "$REPS" --csv $NO_MMAP "   (tg: -p 0 -n $N)"
    has_llama llama-bench && show "$LB/llama-bench" -m FILE -p "$P" -n 0 -t "$T" -r "$REPS" -o csv "   (tg: -p 0 -n $N)"
    say "interleaved: ours pp, theirs pp, ours tg, theirs tg; $ROUNDS rounds, medians (and the best round of each); ratio = ours / llama.cpp"
}

# ============================================================================================
LOAD0=$(load_now)
CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
say "machine: ${CPU:-unknown CPU}, $(nproc 2>/dev/null || echo ?) cores, $(awk '/^MemTotal/ { printf "%.1f GB", $2 * 1024 / 1e9 }' /proc/meminfo) memory; $(gb "$(free_bytes "$DIR")") free in $DIR"
say "settings: -t $T, $ROUNDS rounds of -r $REPS, -p $P -n $N; steps: $STEPS; load average $LOAD0"
case $LOAD0 in 0.[0-4]* | \?) ;; *) note "load average $LOAD0: other processes are running, timings will be noisy" ;; esac

TAG=$(tag_of "$SYNTH_ARGS")
F16="$DIR/llama3.1-8b-synth-v1$TAG-f16.gguf"
[ -n "$TAG" ] && note "scaled-down shape ($SYNTH_ARGS): NOT the real-size model"
HAVE_F16=0
if has_step open || has_step quantize || has_step ppl || has_step scan || has_step fisher || has_step tui; then
    # shellcheck disable=SC2086
    if make_model "$F16" --preset llama3.1-8b $SYNTH_ARGS; then HAVE_F16=1; fi
fi
L=llama3.1-8b$TAG
F16_BYTES=$( [ "$HAVE_F16" = 1 ] && fsize "$F16" || echo 0)

BW=""
if has_step speed && [ "$HAVE_F16" = 1 ]; then
    say "== read bandwidth: the bound of generation"
    show "$SYNTH" --membw --mib 1024 --threads "$T" --reps 3
    BW=$("$SYNTH" --membw --mib 1024 --threads "$T" --reps 3 2>/dev/null) || BW=""
    say "read bandwidth, $T threads: ${BW:-?} GB/s"
    sum "memory bandwidth ($T threads, 1 GiB, best of 3): ${BW:-?} GB/s"
fi

if has_step open && [ "$HAVE_F16" = 1 ]; then
    say "== open: F16 $(gb "$F16_BYTES"), mapped (its pages count as file-backed, a copy would be anon)"
    open_header
    open_row "$L F16" "$F16"
fi

if has_step quantize && [ "$HAVE_F16" = 1 ]; then
    say "== quantize $L F16, $T threads"
    for f in $FORMATS; do
        quantize_ours "$L" "$F16" "$f" "$DIR/$L-ours-$f.gguf"
        case " $LQ_FORMATS " in *" $f "*) [ "$Q_OK" = 1 ] && quantize_llama "$L" "$F16" "$f" "$DIR/$L-llama-$f.gguf" ;; esac
    done
    if has_step open; then
        say "== open: our quantized files"
        open_header
        for f in $FORMATS; do [ -s "$DIR/$L-ours-$f.gguf" ] && open_row "$L $f" "$DIR/$L-ours-$f.gguf"; done
    fi
fi

if has_step speed; then
    say "== speed: our quantized files, quantbench bench and llama-bench, load $(load_now)"
    speed_commands
    speed_header
    for f in $FORMATS; do
        if [ -s "$DIR/$L-ours-$f.gguf" ]; then speed_row "$L $f" "$DIR/$L-ours-$f.gguf"
        else note "no $L $f file (the quantize step makes it): skipped"; fi
    done
    say "(GB/s: weight bytes read per generated token × tg t/s; % of the read bandwidth above)"
fi

if has_step ppl && [ "$HAVE_F16" = 1 ]; then
    say "== perplexity, $PPL_CHUNKS chunks of 256 of $TEXT"
    if [ ! -s "$TEXT" ]; then note "$TEXT missing (QB_DATA?): skipped"
    else
        if measured "$QB" ppl "$F16" "$TEXT" --chunks "$PPL_CHUNKS" -t "$T"; then
            v=$(awk '/^PPL/ { print $3 }' "$TMP/out")
            say "quantbench ppl F16: PPL $v in $M_wall_s s, $(mem_line)"
            sum "ppl $L F16 ($PPL_CHUNKS chunks): quantbench $M_wall_s s, PPL $v"
        else qb_failed "ppl $F16"; fi
        Q8="$DIR/$L-ours-Q8_0.gguf"
        if [ -s "$Q8" ]; then
            ours=""
            theirs=""
            if measured "$QB" ppl "$Q8" "$TEXT" --chunks "$PPL_CHUNKS" -t "$T"; then
                ours=$(awk '/^PPL/ { print $3 }' "$TMP/out")
                say "quantbench ppl Q8_0: PPL $ours in $M_wall_s s"
                ours_s=$M_wall_s
            else qb_failed "ppl $Q8"; fi
            if has_llama llama-perplexity; then
                if measured "$LB/llama-perplexity" -m "$Q8" -f "$TEXT" -c 256 -b 256 --chunks "$PPL_CHUNKS" -t "$T"; then
                    theirs=$(cat "$TMP/out" "$TMP/err" | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' | head -1)
                    tk=$(cat "$TMP/out" "$TMP/err" | sed -n 's/.*tokenization took \([0-9.]*\) ms.*/\1/p' | head -1)
                    say "llama-perplexity Q8_0: PPL ${theirs:-?} in $M_wall_s s (of which tokenizing the text ${tk:-?} ms)"
                else note "llama-perplexity failed on $Q8"; fi
            else note "no llama-perplexity: no agreement check"; fi
            if [ -n "$ours" ] && [ -n "$theirs" ]; then
                d=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.3f", 100 * (a - b) / b }')
                ok=$(awk -v d="$d" 'BEGIN { print (d < 0 ? -d : d) <= 0.5 ? "agree (within 0.5%)" : "DIFFER by more than 0.5%" }')
                say "Q8_0 perplexity: quantbench $ours, llama.cpp $theirs: $d% — $ok"
                sum "ppl $L Q8_0 ($PPL_CHUNKS chunks): quantbench $ours (${ours_s:-?} s), llama-perplexity $theirs (${M_wall_s:-?} s): $d%, $ok"
            fi
        else note "no $L Q8_0 file (the quantize step with Q8_0 in BENCH_8B_FORMATS makes it): no agreement check"; fi
    fi
fi

if has_step scan && [ "$HAVE_F16" = 1 ]; then
    say "== sensitivity scan of block $SCAN_LAYER (q4_k against F16, $SCAN_TOKENS tokens)"
    if [ ! -s "$TEXT" ]; then note "$TEXT missing (QB_DATA?): skipped"
    elif measured "$QB" scan "$F16" "$TEXT" --layers "$SCAN_LAYER" --per "$SCAN_PER" --tokens "$SCAN_TOKENS" \
        --format q4_k -t "$T"; then
        sed -n '1,4p' "$TMP/out" | sed 's/^/    /'
        awk '$1 ~ /^[0-9]+$/' "$TMP/out" | sed 's/^/    /'
        say "scan of block $SCAN_LAYER: $(awk '$1 ~ /^[0-9]+$/' "$TMP/out" | wc -l) units in $M_wall_s s, $(mem_line)"
        sum "scan $L block $SCAN_LAYER per $SCAN_PER, $SCAN_TOKENS tokens: $M_wall_s s, peak $(mib "$M_hwm_kib") MiB"
    else qb_failed "scan $F16"; fi
fi

if has_step fisher && [ "$HAVE_F16" = 1 ]; then
    CALIB="$DATA/calib-docs.txt"
    say "== Fisher estimate of every matrix (q4_k, q3_k, int3-g128; $FISHER_TOKENS tokens of calib-docs.txt, streamed)"
    if [ ! -s "$CALIB" ]; then note "$CALIB missing (QB_DATA?): skipped"
    elif measured "$QB" scan "$F16" --estimate fisher --calib "$CALIB" --calib-tokens "$FISHER_TOKENS" \
        --format q4_k,q3_k,int3-g128 -t "$T"; then
        grep -E '^(fisher|estimate) ' "$TMP/out" | sed 's/^/    /'
        units=$(grep -m1 '^estimate ' "$TMP/out" | awk '{ print $2 }')
        say "Fisher estimate: ${units:-?} units × 3 formats in $M_wall_s s, $(mem_line)"
        sum "fisher $L, $FISHER_TOKENS tokens, ${units:-?} units × 3 formats: $M_wall_s s, peak $(mib "$M_hwm_kib") MiB"
    else qb_failed "scan --estimate fisher $F16"; fi
fi

if has_step tui && [ "$HAVE_F16" = 1 ]; then
    say "== workbench on output.weight of the F16 file (first screen and full analysis per key)"
    if ! command -v bash >/dev/null 2>&1 || ! command -v tmux >/dev/null 2>&1; then note "bash or tmux missing: skipped"
    else
        show BENCH_TUI_MODEL="$F16" BENCH_TUI_TENSOR=output.weight BENCH_TUI_KEYS="$TUI_KEYS" \
            BENCH_TUI_WAIT="$TUI_WAIT" bash scripts/bench-tui.sh
        if BUILD=$BUILD BENCH_TUI_MODEL="$F16" BENCH_TUI_TENSOR=output.weight BENCH_TUI_KEYS="$TUI_KEYS" \
            BENCH_TUI_WAIT="$TUI_WAIT" bash scripts/bench-tui.sh >"$TMP/tui" 2>&1; then
            sed 's/^/    /' "$TMP/tui"
            sed -n '2,$p' "$TMP/tui" | sed "s/^/tui $L: /" >>"$TMP/summary"
        else
            sed 's/^/    /' "$TMP/tui"
            note "the workbench run failed (above)"
            QB_FAILED=1
        fi
    fi
fi

if has_step moe; then
    # the 8B's quantized files are no longer needed: make room for the MoE files first
    if [ "$KEEP" != 1 ]; then for f in $FORMATS; do rm -f "$DIR/$L-ours-$f.gguf"; done; fi
    MTAG=$(tag_of "$MOE_ARGS")
    MQ="$DIR/qwen3moe-30b-a3b-${MOE_LAYERS}L-synth-v1$MTAG-f16.gguf"
    ML="$DIR/llama-moe-30b-a3b-${MOE_LAYERS}L-synth-v1$MTAG-f16.gguf"
    say "== mixture of experts: Qwen3-30B-A3B's shapes, $MOE_LAYERS layers${MTAG:+ ($MOE_ARGS)}"
    # shellcheck disable=SC2086
    make_model "$MQ" --preset qwen3-30b-a3b --layers "$MOE_LAYERS" $MOE_ARGS && HAVE_MQ=1 || HAVE_MQ=0
    # shellcheck disable=SC2086
    make_model "$ML" --preset qwen3-30b-a3b --arch llama --layers "$MOE_LAYERS" $MOE_ARGS && HAVE_ML=1 || HAVE_ML=0
    LQ=qwen3moe-${MOE_LAYERS}L$MTAG
    LL=llama-moe-${MOE_LAYERS}L$MTAG
    if has_step open; then
        open_header
        [ "$HAVE_MQ" = 1 ] && open_row "$LQ F16" "$MQ"
        [ "$HAVE_ML" = 1 ] && open_row "$LL F16" "$ML"
    fi
    say "quantize Q4_K_M, $T threads"
    [ "$HAVE_MQ" = 1 ] && quantize_ours "$LQ" "$MQ" Q4_K_M "$DIR/$LQ-ours-Q4_K_M.gguf"
    if [ "$HAVE_ML" = 1 ]; then
        quantize_ours "$LL" "$ML" Q4_K_M "$DIR/$LL-ours-Q4_K_M.gguf"
        [ "$Q_OK" = 1 ] && quantize_llama "$LL" "$ML" Q4_K_M "$DIR/$LL-llama-Q4_K_M.gguf"
    fi
    say "speed of our Q4_K_M files (llama.cpp c392e50 runs only the llama one), load $(load_now)"
    speed_commands
    speed_header
    [ -s "$DIR/$LQ-ours-Q4_K_M.gguf" ] && speed_row "$LQ Q4_K_M" "$DIR/$LQ-ours-Q4_K_M.gguf" no-llama
    [ -s "$DIR/$LL-ours-Q4_K_M.gguf" ] && speed_row "$LL Q4_K_M" "$DIR/$LL-ours-Q4_K_M.gguf"
fi

echo
say "== summary (load average at start $LOAD0, at end $(load_now); $(nproc 2>/dev/null || echo ?) cores)"
sed 's/^/  /' "$TMP/summary"
[ "$KEEP" = 1 ] && [ -n "$MADE" ] && say "kept:$MADE"
[ "$QB_FAILED" = 0 ] || { say "ERROR: at least one quantbench command failed (notes above)"; exit 1; }
exit 0
