#!/bin/bash
# test-mpi.sh — the MPI build (build/quantbench-mpi, Open MPI) under `mpirun -np 2` on stories260K:
# scan, search, prune, ppl, kld, tasks and methods write exactly what one process writes (files
# compared with cmp; only wall-time figures masked), the division is announced by rank 0 alone;
# the MPI build started without mpirun is one process; ranks that map different model files
# refuse to start; a rank failing alone, a rank killed and Ctrl-C end the whole job within
# seconds with a message, not a hang. Skipped (not failed) where Open MPI is not installed.
. "$(dirname "$0")/lib.sh"
S=$QB_MODELS/stories260K
M=$S/stories260K.bin
G=$S/stories260K-f32.gguf
T=$S/ppl-sample.txt
TD=tests/data/tasks
MPI_BIN=${QB_MPI_BIN:-$QB_BIN-mpi}
if ! command -v mpirun >/dev/null || [ ! -x "$MPI_BIN" ]; then
    skip "MPI build" "no mpirun or no $MPI_BIN (install libopenmpi-dev openmpi-bin, then make MPI=1)"
    finish
    exit
fi
need_fixture "MPI build" "$M" "$G" "$T" || { finish; exit; }
# Open MPI refuses root unless told; the job may have more ranks than cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Open MPI's own allocations at exit are not ours to report
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
MPIRUN=(mpirun --oversubscribe -np 2)
BIN=$(cd "$(dirname "$MPI_BIN")" && pwd)/$(basename "$MPI_BIN")
QB_BIN=$(cd "$(dirname "$QB_BIN")" && pwd)/$(basename "$QB_BIN")

# mask: the figures that are wall time (seconds, tokens/s), which no two runs share
mask() { sed -E 's/"seconds": [0-9.]+/"seconds": T/; s/, [0-9.]+ s$/, T s/'; }
# same NAME ARGS...: one process (-t 1) and two ranks (-t 1 each) print the same bytes; FILES
# (space-separated, relative to the run's folder, in $files) are the same bytes too
same() {
    local name=$1; shift
    local d1=$TMP/$name.1 d2=$TMP/$name.2 f why=""
    mkdir -p "$d1" "$d2"
    (cd "$d1" && "$QB_BIN" "$@" -t 1 >out 2>err); local rc1=$?
    (cd "$d2" && "${MPIRUN[@]}" "$BIN" "$@" -t 1 >out 2>err); local rc2=$?
    [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] || why="exit $rc1 / $rc2: $(tail -2 "$d2/err")"
    [ -z "$why" ] && ! cmp -s <(mask <"$d1/out") <(mask <"$d2/out") && why="stdout differs: $(diff <(mask <"$d1/out") <(mask <"$d2/out") | head -3)"
    for f in $files; do
        case $f in
        *.json) [ -z "$why" ] && ! cmp -s <(mask <"$d1/$f") <(mask <"$d2/$f") && why="$f differs" ;;
        *) [ -z "$why" ] && ! cmp -s "$d1/$f" "$d2/$f" && why="$f differs" ;;
        esac
    done
    [ -z "$why" ] && ! grep -qE "^[a-z -]+: 2 ranks: [0-9]+ \+ [0-9]+ $items$" "$d2/err" && why="no division line: $(head -2 "$d2/err")"
    if [ -z "$why" ]; then ok "2 ranks = 1 process: $name ($(grep -m1 ' ranks: ' "$d2/err" | sed 's/.*: 2 ranks: //'))"
    else not_ok "2 ranks = 1 process: $name" "$why"; fi
}
A=$(cd "$(dirname "$M")" && pwd)
M=$A/$(basename "$M") G=$A/$(basename "$G") T=$A/$(basename "$T") TD=$(cd "$TD" && pwd)

files="s.csv s.json" items=tensors same scan scan "$M" "$T" --format q4_0 --tokens 512 --ctx 64 --csv s.csv --json s.json
files="s.csv" items="units \(layers\)" same scan-per-layer scan "$M" "$T" --format q8_0 --per layer --tokens 256 --ctx 64 --csv s.csv
files="plan.txt mix.gguf" items=candidates same search search "$M" "$T" --bpw 8.5 --candidates q4_0,q8_0,f16 --tokens 256 \
    --ctx 64 --plan-out plan.txt --out mix.gguf --eval "$T" --eval-tokens 256
files="" items=settings same prune prune "$M" "$T" 2:4 --formats keep,q8_0 --tokens 256 --ctx 64
files="" items=chunks same ppl ppl "$M" "$T" --ctx 64
files="" items=chunks same kld kld "$G" "$S/stories260K-q4_0.gguf" "$T" --ctx 64
files="r.json" items=tasks same tasks-winogrande tasks "$G" --winogrande "$TD/winogrande.csv" --tasks 100 --per-task --json r.json
files="" items=tasks same tasks-hellaswag tasks "$G" --hellaswag "$TD/hellaswag.txt" --tasks 20 --per-task
files="" items=tasks same tasks-mc tasks "$G" --multiple-choice "$TD/multiple-choice.bin" --tasks 10 --per-task
# methods: its quantization seconds and decode tokens/s columns are wall time
mask_methods() { awk -F'|' 'BEGIN { OFS = "|" } /^\| / && NF > 9 { $8 = " T "; $9 = " T " } { print }' | sed -E 's/\([0-9.]+ s,/(T s,/'; }
d1=$TMP/methods.1 d2=$TMP/methods.2; mkdir -p "$d1" "$d2"
margs=(methods "$M" --calib "$T" --eval "$T" --ctx 64 --gen 4 --formats q8_0,q4_0 --methods rtn,gptq -t 1)
"$QB_BIN" "${margs[@]}" >"$d1/out" 2>"$d1/err"; rc1=$?
"${MPIRUN[@]}" "$BIN" "${margs[@]}" >"$d2/out" 2>"$d2/err"; rc2=$?
if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && cmp -s <(mask_methods <"$d1/out") <(mask_methods <"$d2/out") &&
   [ "$(grep -c '^| q[48]_0 ' "$d2/out")" -eq 4 ] && grep -q '^methods: 2 ranks: 2 + 2 cells$' "$d2/err"; then
    ok "2 ranks = 1 process: methods (2 + 2 cells)"
else not_ok "2 ranks = 1 process: methods" "exit $rc1 / $rc2" "$(diff <(mask_methods <"$d1/out") <(mask_methods <"$d2/out") | head -3)" "$(tail -2 "$d2/err")"; fi

# the MPI build without mpirun: one process, the default build's bytes, no division line
"$QB_BIN" ppl "$M" "$T" --ctx 64 >"$TMP/p1" 2>/dev/null
"$BIN" ppl "$M" "$T" --ctx 64 >"$TMP/p2" 2>"$TMP/p2.err"; rc=$?
if [ $rc -eq 0 ] && cmp -s "$TMP/p1" "$TMP/p2" && ! grep -q ranks "$TMP/p2.err"; then ok "the MPI build without mpirun is one process"
else not_ok "the MPI build without mpirun is one process" "exit $rc" "$(head -2 "$TMP/p2.err")"; fi

# per-rank folders: the same relative path names a different file on each rank
mkdir -p "$TMP/r0" "$TMP/r1"
cat >"$TMP/inrank.sh" <<EOF
#!/bin/sh
cd "$TMP/r\${OMPI_COMM_WORLD_RANK:-0}" && exec "$BIN" "\$@"
EOF
chmod +x "$TMP/inrank.sh"
# mpi_fail NAME PATTERN ARGS...: the job fails (not 0) within 60 s and stderr's first line from
# quantbench matches PATTERN; exactly one such line (rank 0 speaks for the job)
mpi_fail() {
    local name=$1 pat=$2; shift 2
    local t0=$SECONDS
    timeout 60 "${MPIRUN[@]}" "$@" >"$TMP/f.out" 2>"$TMP/f.err"; local rc=$?
    local lines; lines=$(grep -c '^quantbench: ' "$TMP/f.err")
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$lines" -eq 1 ] && grep '^quantbench: ' "$TMP/f.err" | grep -qE -- "$pat"; then
        ok "$name ($((SECONDS - t0)) s)"
    else not_ok "$name" "exit $rc, $lines quantbench line(s), wanted /$pat/" "$(grep -v '^--' "$TMP/f.err" | head -3)"; fi
}
cp "$M" "$TMP/r0/model.bin"; cp "$M" "$TMP/r1/model.bin"; cp "$S/tok512.bin" "$TMP/r0/tokenizer.bin"; cp "$S/tok512.bin" "$TMP/r1/tokenizer.bin"
python3 - "$TMP/r1/model.bin" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:   # one weight byte changed: the same size, another hash
    f.seek(600000); b = f.read(1); f.seek(600000); f.write(bytes([b[0] ^ 1]))
EOF
mpi_fail "ranks that see a different model refuse to start (same size)" \
    "model.bin: rank 1 sees a different file than rank 0 \(1056540 bytes" "$TMP/inrank.sh" ppl model.bin "$T" --ctx 64
cp "$S/stories260K-q8_0.gguf" "$TMP/r0/m.gguf"; cp "$S/stories260K-q4_0.gguf" "$TMP/r1/m.gguf"
mpi_fail "ranks that see a different model refuse to start (another size)" \
    "m.gguf: rank 1 sees a different file than rank 0" "$TMP/inrank.sh" scan m.gguf "$T" --ctx 64
cp "$M" "$TMP/r1/model.bin"; cp "$T" "$TMP/r0/text.txt"
mpi_fail "a rank that fails alone stops the job with its message" \
    "^quantbench: rank 1: text.txt: cannot open" "$TMP/inrank.sh" ppl model.bin text.txt --ctx 64
mpi_fail "a command that does not divide its work is refused" "'info' does not divide its work" "$BIN" info "$M"
mpi_fail "an error every rank meets is said once" "nowhere.txt" "$BIN" scan "$M" "$TMP/nowhere.txt"

# a rank killed mid-run: mpirun ends the job and says which rank died
cat >"$TMP/die.sh" <<EOF
#!/bin/sh
if [ "\$OMPI_COMM_WORLD_RANK" = 1 ]; then (sleep 0.5; kill -9 \$\$) & fi
exec "$BIN" "\$@"
EOF
chmod +x "$TMP/die.sh"
t0=$SECONDS
timeout 60 "${MPIRUN[@]}" "$TMP/die.sh" scan "$M" "$T" --format q4_0 --ctx 16 --tokens 16384 -t 1 >/dev/null 2>"$TMP/k.err"; rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'rank 1 .*signal 9' "$TMP/k.err"; then ok "a killed rank ends the job with a message ($((SECONDS - t0)) s)"
else not_ok "a killed rank ends the job with a message" "exit $rc" "$(grep -v '^--' "$TMP/k.err" | head -3)"; fi

# Ctrl-C (SIGINT to mpirun, which the terminal signals; the ranks have process groups of their
# own): every rank stops within seconds
"${MPIRUN[@]}" "$BIN" scan "$M" "$T" --format q4_0 --ctx 16 --tokens 16384 -t 1 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 50); do [ "$(pgrep -c -P "$pid")" -ge 2 ] && break; sleep 0.1; done
ranks=$(pgrep -P "$pid" | tr '\n' ' ')
sleep 0.3
kill -INT "$pid"
t0=$SECONDS
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid" 2>/dev/null
# a rank is gone once its pid is free or a zombie waiting for its reaper
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
for _ in $(seq 100); do
    left=""
    for r in $ranks; do alive "$r" && left="$left $r"; done
    [ -z "$left" ] && break
    sleep 0.1
done
if ! kill -0 "$pid" 2>/dev/null && [ -z "$left" ] && [ -n "$ranks" ]; then ok "Ctrl-C stops every rank ($((SECONDS - t0)) s)"
else not_ok "Ctrl-C stops every rank" "mpirun $(kill -0 "$pid" 2>/dev/null && echo still running), ranks left:$left (of $ranks)"
    kill -9 "$pid" $left 2>/dev/null; fi
finish
