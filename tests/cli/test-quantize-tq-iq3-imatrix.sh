#!/bin/bash
# test-quantize-tq-iq3-imatrix.sh — `quantbench quantize MODEL OUT IQ3_S|IQ3_XS|IQ3_XXS|IQ2_S|IQ2_M --imatrix FILE`
# against `llama-quantize --imatrix` (llama.cpp c392e50, ../peer/llama.cpp/build/bin) on
# qb-docs-26m F16 with an imatrix made by llama-imatrix (2 chunks of 128 tokens): every tensor
# has the same type and bytes (per tensor: name, shape, type, size, SHA-256; the files' metadata
# differ by our quantbench.* recipe keys), the importance changed the IQ3 tensors, and the mixes
# holding IQ2_S are refused without one, as llama-quantize refuses them.
# llama.cpp absent: skipped, saying so.
. "$(dirname "$0")/lib.sh"
D=$QB_MODELS/qb-docs-26m/qb-docs-26m-f16.gguf
need_fixture "quantize IQ3 --imatrix" "$D" "$QB_DATA/calib-docs.txt" || { finish; exit; }
LLAMA=../peer/llama.cpp/build/bin
if [ ! -x "$LLAMA/llama-imatrix" ] || [ ! -x "$LLAMA/llama-quantize" ]; then
    skip "IQ3_S / IQ3_XS --imatrix against llama-quantize" "llama-imatrix / llama-quantize not built in $LLAMA"
    finish; exit
fi
head -c 6000 "$QB_DATA/calib-docs.txt" >"$TMP/text.txt"
LD_LIBRARY_PATH=$LLAMA "$LLAMA/llama-imatrix" -m "$D" -f "$TMP/text.txt" -o "$TMP/im.dat" -c 128 --chunks 2 -t 2 \
    >"$TMP/imatrix.log" 2>&1 || { not_ok "llama-imatrix" "$(tail -2 "$TMP/imatrix.log")"; finish; exit; }

tensors() { "$QB_BIN" info --sha256 "$1" | grep -E '^(blk|token_embd|output)[^ ]* +[0-9]' | sort; }

for type in IQ3_S IQ3_XS IQ3_XXS IQ2_S IQ2_M; do
    run quantize "$D" "$TMP/ours-$type.gguf" "$type" --imatrix "$TMP/im.dat" -t 2
    if [ "$rc" -ne 0 ]; then not_ok "quantize $type --imatrix" "exit $rc: $err"; continue; fi
    LD_LIBRARY_PATH=$LLAMA "$LLAMA/llama-quantize" --imatrix "$TMP/im.dat" "$D" "$TMP/llama-$type.gguf" "$type" 2 \
        >"$TMP/q.log" 2>&1 || { not_ok "llama-quantize $type --imatrix" "$(tail -2 "$TMP/q.log")"; continue; }
    d=$(diff <(tensors "$TMP/ours-$type.gguf") <(tensors "$TMP/llama-$type.gguf"))
    if [ -z "$d" ] && [ "$(tensors "$TMP/ours-$type.gguf" | wc -l)" -eq 57 ]; then
        ok "$type --imatrix: every tensor as llama-quantize --imatrix wrote it"
    else not_ok "$type --imatrix against llama-quantize" "$(printf '%s\n' "$d" | head -4)"; fi
    run quantize "$D" "$TMP/plain-$type.gguf" "$type" -t 2
    case $type in IQ3_XXS | IQ2_S | IQ2_M) # IQ2_S tensors in the mix: llama-quantize refuses them without importance
        if [ "$rc" -eq 1 ] && printf '%s' "$err" | grep -qE "IQ2_X?S needs an importance matrix" && [ ! -e "$TMP/plain-$type.gguf" ]; then
            ok "$type without --imatrix: refused as llama-quantize refuses it ($(printf '%s' "$err" | cut -c1-60))"
        else not_ok "$type without --imatrix: refused" "exit $rc: $err"; fi
        continue ;;
    esac
    if [ -n "$(diff <(tensors "$TMP/ours-$type.gguf") <(tensors "$TMP/plain-$type.gguf") | grep 'blk.1.ffn_up.*IQ3')" ]; then
        ok "$type: the importance changes the IQ3 bytes (blk.1.ffn_up differs from the plain file)"
    else not_ok "$type: imatrix changed nothing"; fi
done
finish
