#!/bin/sh
# bench-train.sh — training throughput, ours against PyTorch (issue 15): the same step (one
# sequence of T tokens, next-token cross-entropy, every weight's gradient, f32, CPU) by
# tests/bench/bench_train.c and scripts/bench-train.py, interleaved BENCH_ROUNDS times, the
# median of each printed with the ratio. PyTorch is not part of the project: the script uses
# the python given by PYTHON (default /usr/bin/python3, e.g. Debian's python3-torch, whose speed
# depends on the BLAS the system provides: install libopenblas0-pthread, the generic one is
# the reference BLAS) and says so when it has none.
#   sh scripts/bench-train.sh [HF_DIR] [T=256] [N=5]
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
M=${1:-${QB_MODELS:-../shared/models}/qb-docs-26m/hf}
T=${2:-256}
N=${3:-5}
PY=${PYTHON:-/usr/bin/python3}
ROUNDS=${BENCH_ROUNDS:-3}
TH=${BENCH_THREADS:-2}
LIBS="-lcairo -ljansson -lpcre2-8 -llua5.4 -lncursesw -ltinfo -lreadline -lunistring"
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Isrc -Ikernels tests/bench/bench_train.c "$BUILD/libqb.a" $LIBS -lm -lpthread \
    -o "$BUILD/bench_train" || exit 1
"$PY" -c 'import torch' 2>/dev/null || { echo "bench-train: skip: no PyTorch for $PY"; PY=; }
ours="" theirs=""
i=0
while [ "$i" -lt "$ROUNDS" ]; do
    ours="$ours $("$BUILD/bench_train" "$M" "$T" "$N" "$TH" | sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p')"
    [ -n "$PY" ] && theirs="$theirs $("$PY" scripts/bench-train.py "$M" "$T" "$N" "$TH" | sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p')"
    i=$((i + 1))
done
med() { echo "$@" | tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mo=$(med $ours)
echo "== training step, $T tokens, $TH threads, median of $ROUNDS rounds: quantbench $mo tokens/s ($ours )"
if [ -n "$PY" ]; then
    mt=$(med $theirs)
    echo "   PyTorch $("$PY" -c 'import torch; print(torch.__version__)') $mt tokens/s ($theirs ); ours / PyTorch $(awk -v a="$mo" -v b="$mt" 'BEGIN { printf "%.2f", a / b }')"
fi
