#!/bin/bash
# test-file-modes.sh — files quantbench writes for the user get the mode cp would give them:
# 0666 less the umask for a new file (a GGUF from quantize, a CSV from scan), an existing
# target's own mode when it is replaced (temp file + rename must not leave mkstemp's 0600).
. "$(dirname "$0")/lib.sh"
S=$QB_MODELS/stories260K
need_fixture "file modes" "$S/stories260K.bin" "$S/ppl-sample.txt" || { finish; exit; }

# mode_after UMASK FILE ARGS...: run quantbench ARGS under UMASK; sets $mode to FILE's octal mode
mode_after() {
    local u=$1 f=$2; shift 2
    rm -f "$f"
    (umask "$u"; "$QB_BIN" "$@" >"$TMP/out" 2>"$TMP/err")
    rc=$?
    mode=$(stat -c %a "$f" 2>/dev/null)
}
for u in 022 077 002; do
    want=$(printf '%o' $((0666 & ~0$u)))
    mode_after $u "$TMP/q.gguf" quantize "$S/stories260K.bin" "$TMP/q.gguf" F16
    if [ "$rc" -eq 0 ] && [ "$mode" = "$want" ]; then ok "quantize under umask $u: GGUF mode $mode"
    else not_ok "quantize under umask $u: GGUF mode" "exit $rc, mode '$mode', wanted $want" "$(head -3 "$TMP/err")"; fi
done
mode_after 077 "$TMP/s.csv" scan "$S/stories260K.bin" "$S/ppl-sample.txt" --format q8_0 --tokens 256 --ctx 64 --csv "$TMP/s.csv"
if [ "$rc" -eq 0 ] && [ "$mode" = 600 ]; then ok "scan --csv under umask 077: mode 600"
else not_ok "scan --csv under umask 077" "exit $rc, mode '$mode', wanted 600" "$(head -3 "$TMP/err")"; fi
mode_after 022 "$TMP/s.csv" scan "$S/stories260K.bin" "$S/ppl-sample.txt" --format q8_0 --tokens 256 --ctx 64 --csv "$TMP/s.csv"
if [ "$rc" -eq 0 ] && [ "$mode" = 644 ]; then ok "scan --csv under umask 022: mode 644"
else not_ok "scan --csv under umask 022" "exit $rc, mode '$mode', wanted 644" "$(head -3 "$TMP/err")"; fi
# replacing an existing file keeps its mode, as cp does
: > "$TMP/keep.gguf"; chmod 640 "$TMP/keep.gguf"
(umask 022; "$QB_BIN" quantize "$S/stories260K.bin" "$TMP/keep.gguf" F16 >/dev/null 2>"$TMP/err")
rc=$?; mode=$(stat -c %a "$TMP/keep.gguf")
if [ "$rc" -eq 0 ] && [ "$mode" = 640 ] && [ -s "$TMP/keep.gguf" ]; then ok "quantize over an existing 0640 file keeps 640"
else not_ok "quantize over an existing file keeps its mode" "exit $rc, mode '$mode', wanted 640" "$(head -3 "$TMP/err")"; fi
finish
