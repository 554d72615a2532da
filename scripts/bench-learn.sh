#!/bin/bash
# bench-learn.sh — the methods that learn against those that do not (part of `make bench`):
# qb-docs-26m at 4, 3 and 2 bits (int4-g128-asym, int3-g128-asym, int2-g64) and the k-quants
# Q3_K / Q2_K: RTN, GPTQ (act-order) and learned rounding (SignRound block by block) measured by
# `quantbench methods`, and quantization-aware fine-tuning with distillation by `quantbench
# finetune ... --eval`; all calibrated / trained on calib-docs.txt only and evaluated on 40
# chunks of 256 tokens of eval-docs.txt against the unquantized model. The summary gives each
# method's PPL and KLD and the share of the GPTQ → unquantized gap it closes:
#   (GPTQ − method) / (GPTQ − unquantized), in PPL and in KLD (the unquantized KLD is 0).
# Environment: BUILD, QB_MODELS, QB_DATA, BENCH_THREADS (2), BENCH_LEARN_OUT (a folder for the
#   logs and GGUFs; default a temporary one, removed), BENCH_LEARN_FORMATS, BENCH_LEARN_KQUANTS,
#   BENCH_LEARN_ITERS (100 learned-rounding steps of 4 windows per block),
#   BENCH_QAT ("int4-g128-asym:1e-4:100 int3-g128-asym:2e-4:100 int2-g64:5e-4:1000:shift:1600
#   q2_k:3e-4:300": format:lr:steps of 4 × 256 tokens[:shift for --shift-windows[:N]]; N: train
#   on calib-docs.txt followed by N samples of the unquantized model, scripts/teacher-text.sh),
#   BENCH_CHUNKS (40).
# On this 2-core machine the whole run takes about an hour when it has the machine to itself.
set -u
cd "$(dirname "$0")/.." || exit 2
QB="${BUILD:-build}/quantbench"
MODELS=${QB_MODELS:-../shared/models}
DATA=${QB_DATA:-../shared/data}
T=${BENCH_THREADS:-2}
CH=${BENCH_CHUNKS:-40}
M="$MODELS/qb-docs-26m/hf"
if [ ! -d "$M" ] || [ ! -f "$DATA/calib-docs.txt" ]; then
    echo "== learn: qb-docs-26m or calib-docs.txt missing: skipped"
    exit 0
fi
OUT=${BENCH_LEARN_OUT:-}
if [ -z "$OUT" ]; then
    OUT=$(mktemp -d "${TMPDIR:-/tmp}/qb-learn.XXXXXX")
    trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT"
rc=0
common=(--calib "$DATA/calib-docs.txt" --eval "$DATA/eval-docs.txt" --samples 32 --ctx 256 --chunks "$CH" --gen 16
        --act-order --methods rtn,gptq,learned --iters "${BENCH_LEARN_ITERS:-100}" --batch 4 -t "$T")
echo "== learn: RTN, GPTQ, learned rounding (qb-docs-26m)"
"$QB" methods "$M" "${common[@]}" --formats "${BENCH_LEARN_FORMATS:-int4-g128-asym,int3-g128-asym,int2-g64}" \
    | tee "$OUT/methods-int.md" || rc=1
"$QB" methods "$M" "${common[@]}" --formats "${BENCH_LEARN_KQUANTS:-q3_k,q2_k}" | tee "$OUT/methods-kq.md" || rc=1
echo "== learn: QAT with distillation (qb-docs-26m)"
for run in ${BENCH_QAT:-int4-g128-asym:1e-4:100 int3-g128-asym:2e-4:100 int2-g64:5e-4:1000:shift:1600 q2_k:3e-4:300}; do
    IFS=: read -r fmt lr steps shift samples <<<"$run"
    extra=()
    [ "$shift" = shift ] && extra=(--shift-windows)
    text="$DATA/calib-docs.txt"
    if [ -n "${samples:-}" ]; then
        text="$OUT/teacher-$samples.txt"
        [ -s "$text" ] || BUILD="${BUILD:-build}" scripts/teacher-text.sh "$M" "$samples" "$text" "$DATA/calib-docs.txt" ||
            { rc=1; continue; }
    fi
    "$QB" finetune "$M" "$fmt" --text "$text" --seq 256 --batch 4 --lr "$lr" --steps "$steps" -t "$T" "${extra[@]}" \
        --out "$OUT/qat-$fmt.gguf" --eval "$DATA/eval-docs.txt" --ctx 256 --chunks "$CH" >"$OUT/qat-$fmt.log" \
        2>"$OUT/qat-$fmt.err" || { rc=1; tail -2 "$OUT/qat-$fmt.err"; }
    grep -E "before:|after:" "$OUT/qat-$fmt.log" | sed "s/^/$fmt (lr $lr, $steps steps${samples:+, $samples teacher samples}) /"
done
# the summary: one row per format, PPL and KLD per method, and the gap each closes
awk -v out="$OUT" '
function row(f, m, p, k) { ppl[f, m] = p; kld[f, m] = k; if (!(f in seen)) { seen[f] = 1; order[++n] = f } }
FNR == 1 { qat = (FILENAME ~ /qat-/) }
!qat && /^\| unquantized/ { split($0, c, "|"); base = c[5] + 0 }
!qat && /^\| [a-z0-9_-]+ \| (rtn|gptq|learned)( \([a-z-]+\))? \|/ { split($0, c, "|"); gsub(/ /, "", c[2])
    split(c[3], w, " "); row(c[2], w[1], c[5] + 0, c[6] + 0) }
qat && /after:/ { f = FILENAME; sub(/.*qat-/, "", f); sub(/\.log$/, "", f)
    p = $0; sub(/.*PPL /, "", p); sub(/,.*/, "", p); k = $0; sub(/.*KLD /, "", k); sub(/,.*/, "", k)
    row(f, "qat", p + 0, k + 0) }
function gap(g, x, b) { return (g - b) > 0 ? sprintf("%.0f%%", 100 * (g - x) / (g - b)) : "—" }
function cell(f, m) { if (!((f, m) in ppl)) return "— | —"
    if (!((f, "gptq") in ppl)) return sprintf("%.2f / %.4f | —", ppl[f, m], kld[f, m])
    return sprintf("%.2f / %.4f | %s / %s", ppl[f, m], kld[f, m], gap(ppl[f, "gptq"], ppl[f, m], base),
                   gap(kld[f, "gptq"], kld[f, m], 0)) }
END {
    printf "\nunquantized PPL %.4f; each cell: PPL / KLD | share of the GPTQ gap closed in PPL / KLD\n", base
    print "| format | RTN | | GPTQ | | learned | | QAT + KD | |"
    print "|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= n; i++) { f = order[i]
        printf "| %s | %s | %s | %s | %s |\n", f, cell(f, "rtn"), cell(f, "gptq"), cell(f, "learned"), cell(f, "qat") }
}' "$OUT"/methods-int.md "$OUT"/methods-kq.md "$OUT"/qat-*.log
exit $rc
