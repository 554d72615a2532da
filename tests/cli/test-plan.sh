#!/bin/bash
# test-plan.sh — plans that carry methods through `quantbench quantize --plan`: a v2 plan mixing
# RTN, GPTQ and AWQ rules on stories260K, a warning for a rule that matches no tensor, the
# recipe `quantbench info` shows (plan with methods, calibration text size and sha256,
# version), a replay from the GGUF (`--plan OUT.gguf`) giving byte-identical tensors, a replay
# with another text warning with both digests, and bad plans refused with FILE:LINE.
. "$(dirname "$0")/lib.sh"
S=$QB_MODELS/stories260K
if [ ! -f "$S/stories260K.bin" ]; then echo "ok 1 - # SKIP stories260K missing"; exit 0; fi
TEXT=$S/ppl-sample.txt
hashes() { "$QB_BIN" info "$1" --sha256 | grep -E '[0-9a-f]{64}$' | awk '{print $1, $NF}'; }

cat > "$TMP/mixed.plan" <<'PLAN'
# quantbench plan v2
*attn_k* = q4_0 gptq damp=0.02
blk.1.* = int4-channel awq alpha=0.5
*fnn_down* = f16
PLAN
run quantize "$S/stories260K.bin" "$TMP/a.gguf" q8_0 --plan "$TMP/mixed.plan" --calib "$TEXT" --ctx 64
if [ "$rc" -eq 0 ] && [ -s "$TMP/a.gguf" ]; then ok "quantize with a v2 plan mixing RTN, GPTQ and AWQ"
else not_ok "quantize with a v2 plan mixing RTN, GPTQ and AWQ" "exit $rc: $err"; fi
if printf '%s\n' "$err" | grep -qxF "warning: plan rule 3 '*fnn_down*' matches no tensor"; then ok "a rule matching no tensor: warning naming it"
else not_ok "a rule matching no tensor: warning naming it" "stderr: $err"; fi

run info "$TMP/a.gguf"
want_sha=$(sha256sum "$TEXT" 2>/dev/null | cut -d' ' -f1)
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "^quantbench   version " &&
   printf '%s' "$out" | grep -qxF "*attn_k* = q4_0 gptq damp=0.02" &&
   printf '%s' "$out" | grep -qxF "blk.1.* = int4-channel awq alpha=0.5" &&
   printf '%s' "$out" | grep -qx "blk.2.attn_q.weight = q8_0" &&
   printf '%s' "$out" | grep -q "^quantbench   calibration .*ppl-sample.txt: $(wc -c < "$TEXT") bytes, sha256 ${want_sha:-[0-9a-f]*}, [0-9]* windows x 64 tokens"; then
    ok "info shows the recipe: rules with methods, the text's size and sha256, the version"
else not_ok "info shows the recipe" "$(printf '%s' "$out" | grep quantbench | head -5)"; fi

run quantize "$S/stories260K.bin" "$TMP/b.gguf" --plan "$TMP/a.gguf" --calib "$TEXT"
hashes "$TMP/a.gguf" > "$TMP/a.h"; hashes "$TMP/b.gguf" > "$TMP/b.h"
if [ "$rc" -eq 0 ] && [ "$(wc -l < "$TMP/a.h")" -eq 47 ] && cmp -s "$TMP/a.h" "$TMP/b.h"; then
    ok "replay from the GGUF's recipe: all 47 tensors byte-identical"
else not_ok "replay from the GGUF's recipe" "exit $rc: $err" "$(diff "$TMP/a.h" "$TMP/b.h" | head -4)"; fi
if ! grep -q 'blk.1.ffn_up.weight' "$TMP/a.h" || cmp -s "$TMP/a.h" <(hashes "$S/stories260K.bin"); then
    not_ok "the replayed tensors are quantized (differ from the original)"
else ok "the replayed tensors are quantized (differ from the original)"; fi

expect_fail "replay of a calibrated plan without --calib" "a.gguf: the plan uses (gptq|awq), which needs --calib FILE \(it was made with .*ppl-sample.txt" \
    quantize "$S/stories260K.bin" "$TMP/c.gguf" --plan "$TMP/a.gguf"
head -c 2000 "$TEXT" > "$TMP/other.txt"
run quantize "$S/stories260K.bin" "$TMP/d.gguf" --plan "$TMP/a.gguf" --calib "$TMP/other.txt"
other_sha=$(sha256sum "$TMP/other.txt" 2>/dev/null | cut -d' ' -f1)
if [ "$rc" -eq 0 ] && printf '%s' "$err" | grep -q "^warning: calibration text .*other.txt (2000 bytes, sha256 ${other_sha:-[0-9a-f]*}) is not the one .*a.gguf records (.*ppl-sample.txt, [0-9]* bytes, sha256 ${want_sha:-[0-9a-f]*})"; then
    ok "replay with another text: a warning naming both digests"
else not_ok "replay with another text: a warning" "exit $rc: $err"; fi

# GGUF in, RTN plan: the streaming path records TYPE and the plan; the replay gives the same file
printf '*attn_q* = q8_0\n*attn_k* = q4_0\n' > "$TMP/rtn.plan"
run quantize "$S/stories260K-f32.gguf" "$TMP/e.gguf" F16 --plan "$TMP/rtn.plan"
run quantize "$S/stories260K-f32.gguf" "$TMP/f.gguf" --plan "$TMP/e.gguf"
if [ "$rc" -eq 0 ] && [ -s "$TMP/e.gguf" ] && cmp -s <(hashes "$TMP/e.gguf") <(hashes "$TMP/f.gguf") &&
   "$QB_BIN" info "$TMP/f.gguf" | grep -qx "quantbench   type F16"; then
    ok "replay of a GGUF-to-GGUF quantization (type and plan recorded): identical tensors"
else not_ok "replay of a GGUF-to-GGUF quantization" "exit $rc: $err"; fi

printf '* = q4_0\n\n*ffn_down* = q8_0 gptq dmap=0.1\n' > "$TMP/bad.plan"
expect_fail "unknown method parameter: FILE:LINE" "bad.plan:3: gptq has no parameter 'dmap' \(block, damp, act_order, weighted\)" \
    quantize "$S/stories260K.bin" "$TMP/x.gguf" q4_0 --plan "$TMP/bad.plan"
printf '* = q4_0 sparse\n' > "$TMP/bad2.plan"
expect_fail "unknown method in a plan: FILE:LINE" "bad2.plan:1: unknown method 'sparse'" \
    quantize "$S/stories260K.bin" "$TMP/x.gguf" q4_0 --plan "$TMP/bad2.plan"
expect_fail "a GGUF without a recipe as --plan" "records no quantbench plan" \
    quantize "$S/stories260K.bin" "$TMP/x.gguf" q4_0 --plan "$S/stories260K-f32.gguf"
[ ! -e "$TMP/x.gguf" ] && [ ! -e "$TMP/c.gguf" ] && ok "no output left by failed runs" || not_ok "no output left by failed runs"
finish
