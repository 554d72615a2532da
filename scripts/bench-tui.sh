#!/bin/bash
# bench-tui.sh — keypress-to-screen latency of the workbench: quantbench runs in a detached
# tmux terminal (160×48) with QB_TUI_TRACE, on one tensor (default qb-docs-26m's largest,
# output.weight, 8192×512); the script presses the keys that change bits (b/B) and granularity
# (g) for RTN (int formats) and for llama.cpp block formats (K-quants, legacy, IQ4), one key at
# a time, each after the previous one's analysis reached the screen in full. The trace gives,
# per key, the time from reading the key to the doupdate that shows its analysis (quantize +
# dequantize + statistics + histograms of the tensor's values, then drawing), in two stages:
# the first screen (a preview on a sample of rows) and the full analysis. Prints p50/p95/max per
# class (target < 100 ms on the 4.2M-value tensor), the time from start to the first screen,
# and the workbench's peak resident memory. The script polls the trace and the screen every
# 0.2 s: the times come from the trace, and a tighter poll took CPU from the analyses it times.
#
# Settings seen before come from the workbench's analysis cache (instant); QB_TUI_NO_CACHE=1
# measures every key's computation instead.
# Environment: BUILD (default build), QB_MODELS (default ../shared/models),
#   BENCH_TUI_MODEL (a model file; default qb-docs-26m's F16 GGUF), BENCH_TUI_TENSOR (default
#   output.weight), BENCH_TUI_KEYS (presses per class and key, default 8), BENCH_TUI_WAIT
#   (seconds one screen may take before the run is abandoned, default 30), QB_TUI_NO_CACHE,
#   BENCH_TUI_IMATRIX (an importance matrix loaded with :imatrix first: every analysis then
#   quantizes with the tensor's importance and computes the importance-weighted view too; it
#   needs an entry for the tensor, e.g. `quantbench imatrix --process-output` for output.weight).
set -u
cd "$(dirname "$0")/.." || exit 2
BIN=$(pwd)/${BUILD:-build}/quantbench
MODEL=${BENCH_TUI_MODEL:-$(cd "${QB_MODELS:-../shared/models}" 2>/dev/null && pwd)/qb-docs-26m/qb-docs-26m-f16.gguf}
case $MODEL in /*) ;; *) MODEL=$(pwd)/$MODEL ;; esac
TENSOR=${BENCH_TUI_TENSOR:-output.weight}
N=${BENCH_TUI_KEYS:-8}
WAIT=${BENCH_TUI_WAIT:-30}
[ -x "$BIN" ] || { echo "bench-tui: $BIN missing (make first)"; exit 2; }
[ -f "$MODEL" ] || { echo "bench-tui: skip: $MODEL missing"; exit 0; }
command -v tmux >/dev/null || { echo "bench-tui: skip: tmux missing"; exit 0; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qbbench-tui.XXXXXX")
T="tmux -L qbbench-tui-$$"
trap '$T kill-server 2>/dev/null; rm -rf "$TMP"' EXIT
export TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8 XDG_STATE_HOME=$TMP/state
TRACE=$TMP/trace
T0=$(date +%s.%N)
$T -f /dev/null new-session -d -x 160 -y 48 "QB_TUI_TRACE=$TRACE $BIN '$MODEL'; sleep 5"

lines() { [ -f "$TRACE" ] && wc -l < "$TRACE" || echo 0; }
# analyses asked for (analysis=1, stage=first) and shown in full (stage=full), as "ASKED SHOWN"
progress() { [ -f "$TRACE" ] && awk '/analysis=1 stage=first/ { a++ } /stage=full/ { f++ } END { print a + 0, f + 0 }' "$TRACE" || echo "0 0"; }
wait_screen() { # REGEX: poll the screen for up to $WAIT s
    local deadline=$((SECONDS + WAIT))
    while [ $SECONDS -lt $deadline ]; do $T capture-pane -p | grep -qE -- "$1" && return 0; sleep 0.1; done
    echo "bench-tui: never saw '$1' within ${WAIT}s (BENCH_TUI_WAIT)"; exit 1
}
# wait until every analysis the trace logged as asked for is shown in full
wait_full() {
    local deadline=$((SECONDS + WAIT)) p
    while [ $SECONDS -lt $deadline ]; do
        p=$(progress)
        [ "${p% *}" -le "${p#* }" ] && return 0
        sleep 0.2
    done
    echo "bench-tui: an analysis took over ${WAIT}s (BENCH_TUI_WAIT)"; exit 1
}
# press KEY and wait until the trace logged it and its analysis is on the screen in full
press() {
    local before deadline=$((SECONDS + WAIT))
    before=$(lines)
    $T send-keys -- "$1"
    while [ "$(lines)" -le "$before" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    wait_full
    sleep 0.1
}
command_line() { # run a : command, then wait for the analysis it asks for
    $T send-keys ":$1" Enter
    sleep 0.3
    press z; press z # a key that redraws without analysis: flushes pending trace lines
    wait_full
}

wait_screen "TENSORS"
OPEN_S=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
if [ -n "${BENCH_TUI_IMATRIX:-}" ]; then
    IMX=$(cd "$(dirname "$BENCH_TUI_IMATRIX")" && pwd)/$(basename "$BENCH_TUI_IMATRIX")
    $T send-keys ":imatrix $IMX" Enter
    wait_screen "imatrix $(basename "$IMX")"
fi
PANE_PID=$($T list-panes -F '#{pane_pid}' | head -1)
command_line "select $TENSOR"
TENSOR_RE="$(printf '%s' "$TENSOR" | sed 's/[.]/[.]/g')  [0-9]+×[0-9]+"
wait_screen "$TENSOR_RE"
SHAPE=$($T capture-pane -p | grep -oE "$TENSOR_RE" | head -1 | sed 's/.*  //')
for method in rtn rtn-asym; do
    command_line "method $method"
    command_line "group channel"
    for i in $(seq "$N"); do press b; done
    for i in $(seq "$N"); do press B; done
    for i in $(seq "$N"); do press g; done
done
for method in kquant legacy; do
    command_line "method $method"
    for i in $(seq "$N"); do press b; done
    for i in $(seq "$N"); do press B; done
done
command_line "method iq4" # one width: g switches IQ4_NL (blocks of 32) and IQ4_XS (256)
for i in $(seq "$N"); do press g; done
# the workbench's peak memory (the pane runs sh -c, whose child is quantbench)
QB_PID=$(ps -o pid= --ppid "$PANE_PID" 2>/dev/null | head -1 | tr -d ' ')
HWM=$(awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$QB_PID/status" 2>/dev/null)
$T send-keys q
sleep 0.5

# key=b fmt=int3-channel tensor=output.weight analysis=1 stage=first ms=12.20
#   stage=first: the first screen showing the key's effect (a preview analysed on a sample
#   of rows); stage=full: the screen with the analysis of all 4.2M values
awk '
{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
f["analysis"] == 1 && f["tensor"] == tensor && (f["key"] == "b" || f["key"] == "B" || f["key"] == "g") {
    cls = (f["fmt"] ~ /^int/) ? "RTN (int formats)" : "block formats (q*_k, q*_0/1, iq4)";
    c = cls ", " f["stage"];
    v[c, ++n[c]] = f["ms"] + 0;
}
END {
    for (c in n) {
        m = n[c];
        for (i = 1; i <= m; i++) a[i] = v[c, i];
        for (i = 2; i <= m; i++) { x = a[i]; j = i - 1; while (j > 0 && a[j] > x) { a[j + 1] = a[j]; j--; } a[j + 1] = x; }
        p50 = a[int(0.50 * (m - 1)) + 1]; p95 = a[int(0.95 * (m - 1) + 0.5) + 1];
        printf "%-44s %5d %8.1f %8.1f %8.1f\n", c, m, p50, p95, a[m];
    }
}' tensor="$TENSOR" "$TRACE" | sort > "$TMP/table"
printf "%-44s %5s %8s %8s %8s\n" "keypress -> screen, $TENSOR $SHAPE" keys "p50 ms" "p95 ms" "max ms"
cat "$TMP/table"
echo "(model $(basename "$MODEL"); start to first screen ${OPEN_S} s; workbench peak memory ${HWM:-?} MiB)"
[ -n "${BENCH_TUI_IMATRIX:-}" ] && echo "(imatrix $BENCH_TUI_IMATRIX: analyses quantize with importance and compute the weighted view)"
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores)"
