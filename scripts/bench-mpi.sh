#!/bin/sh
# bench-mpi.sh — the MPI build against threads on one machine: the sensitivity scan of
# qb-docs-26m (the 42 block matrices at q4_k) run as 1 process × 2 threads and as 2 MPI ranks ×
# 1 thread (mpirun), the two CSV tables compared byte for byte and the wall-time ratio printed;
# then the projection of an 8B and a 70B scan on 1, 8 and 64 nodes (README "MPI": how).
#
# Environment:
#   BUILD        build folder holding quantbench and quantbench-mpi (default build; make MPI=1)
#   QB_MODELS    shared models (default ../shared/models); QB_DATA shared text (../shared/data)
#   QB_BENCH_DIR where the tables go (default ~/.cache/quantbench-bench)
#   SCAN_TOKENS  evaluation tokens (default 4096: 16 chunks of 256)
#   PASS_8B      CPU-seconds of one full forward pass of Llama-3.1-8B over 512 tokens (F16) on
#                one core of this machine (default 71.8: README's Benchmarks, "scan of block 16",
#                161.2 s on 2 threads for 7 variants at 0.641 of a full pass each with the
#                base's: 161.2 × 2 / (7 × 0.641))
#   NODE_CORES   cores per node in the projection (default 32)
# Exit status: 0 when the tables agree, 1 when they differ or a run failed, 2 on a setup problem.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
MODELS=${QB_MODELS:-../shared/models}
DATA=${QB_DATA:-../shared/data}
DIR=${QB_BENCH_DIR:-$HOME/.cache/quantbench-bench}
TOK=${SCAN_TOKENS:-4096}
MODEL="$MODELS/qb-docs-26m/qb-docs-26m-f16.gguf"
TEXT="$DATA/eval-docs.txt"
[ -f "$MODEL" ] || { echo "bench-mpi: $MODEL missing, skipped"; exit 2; }
[ -x "$BUILD/quantbench-mpi" ] && command -v mpirun >/dev/null ||
    { echo "bench-mpi: needs mpirun and $BUILD/quantbench-mpi (apt-get install libopenmpi-dev openmpi-bin; make MPI=1)"; exit 2; }
mkdir -p "$DIR" || exit 2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
now() { date +%s.%N; }
args="scan $MODEL $TEXT --format q4_k --tokens $TOK --blocks-only"
t0=$(now)
"$BUILD/quantbench" $args -t 2 --csv "$DIR/mpi-1x2.csv" >"$DIR/mpi-1x2.txt" 2>"$DIR/mpi-1x2.err" || { echo "bench-mpi: 1 process failed"; exit 1; }
t1=$(now)
mpirun --oversubscribe -np 2 "$BUILD/quantbench-mpi" $args -t 1 --csv "$DIR/mpi-2x1.csv" >"$DIR/mpi-2x1.txt" 2>"$DIR/mpi-2x1.err" ||
    { echo "bench-mpi: 2 ranks failed: $(tail -2 "$DIR/mpi-2x1.err")"; exit 1; }
t2=$(now)
one=$(echo "$t1 - $t0" | bc) two=$(echo "$t2 - $t1" | bc)
echo "bench-mpi: qb-docs-26m scan, 42 tensors at q4_k, $TOK tokens; $(grep ' ranks: ' "$DIR/mpi-2x1.err")"
printf 'bench-mpi: 1 process x 2 threads %.1f s, 2 ranks x 1 thread %.1f s (mpirun start included): ratio %.3f\n' \
    "$one" "$two" "$(echo "$two / $one" | bc -l)"
same=0
if cmp -s "$DIR/mpi-1x2.csv" "$DIR/mpi-2x1.csv" && cmp -s "$DIR/mpi-1x2.txt" "$DIR/mpi-2x1.txt"; then
    echo "bench-mpi: the CSV tables and the printed tables are the same bytes"
else echo "bench-mpi: the tables DIFFER ($DIR/mpi-1x2.csv, $DIR/mpi-2x1.csv)"; same=1; fi

# The projection. A per-tensor scan evaluates, for each chunk of 256 tokens, the base once (all
# of a rank's cores) and one variant per matrix (single-threaded passes, one per core). A
# variant whose first quantized matrix is in layer l starts from the base's residual there
# (prefix reuse), so it costs the layers l..L-1 and the head: (L - l + h) / (L + h) of a full
# pass, h = the head's size in layers. Units go to ranks round-robin in layer order; a rank's
# wall time is its base passes plus its variants spread over its cores (never less than its
# dearest single variant), and the job's is the slowest rank's. Costs scale with the matrices'
# multiply-adds (the parameter counts), from PASS_8B.
awk -v pass8="${PASS_8B:-71.8}" -v cores="${NODE_CORES:-32}" 'BEGIN {
    # name, layers, parameters per layer (attention + FFN matrices), head parameters
    m[1] = "8B";  L[1] = 32; lp[1] = 4096 * (4096 * 2 + 1024 * 2) + 3 * 4096 * 14336; hp[1] = 4096 * 128256
    m[2] = "70B"; L[2] = 80; lp[2] = 8192 * (8192 * 2 + 1024 * 2) + 3 * 8192 * 28672; hp[2] = 8192 * 128256
    full8 = L[1] * lp[1] + hp[1]
    split("1 8 64", nodes, " ")
    tokens = 16384; chunks = tokens / 256
    printf "bench-mpi: projected per-tensor scan at q4_k, %d tokens (%d chunks of 256), nodes of %d cores:\n", tokens, chunks, cores
    for (k = 1; k <= 2; k++) {
        full = pass8 * (L[k] * lp[k] + hp[k]) / full8 / 2    # one chunk of 256 tokens, CPU-s
        h = hp[k] / lp[k]
        n = 0  # units in layer order: token_embd (a full pass), 7 per layer, output (the head)
        cost[n++] = full
        for (l = 0; l < L[k]; l++) for (t = 0; t < 7; t++) cost[n++] = full * (L[k] - l + h) / (L[k] + h)
        cost[n++] = full * h / (L[k] + h)
        line = sprintf("  %-4s %3d units:", m[k], n)
        for (i = 1; i <= 3; i++) {
            N = nodes[i]; worst = 0
            for (r = 0; r < N; r++) {
                sum = 0; top = 0
                for (u = r; u < n; u += N) { sum += cost[u]; if (cost[u] > top) top = cost[u] }
                w = sum / cores > top ? sum / cores : top
                if (w > worst) worst = w
            }
            wall = chunks * (full / cores + worst)
            line = line sprintf("  %d node%s %s", N, N > 1 ? "s" : "", wall >= 3600 ? sprintf("%.1f h", wall / 3600) : sprintf("%.0f min", wall / 60))
        }
        print line
    }
}'
exit $same
