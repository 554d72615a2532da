#!/bin/sh
# arch-fixture-ppl.sh — llama-perplexity's figure for each architecture fixture that has a
# llama.cpp GGUF (tests/fixtures/arch/<name>/<name>.gguf, made by convert_hf_to_gguf.py), written
# to tests/fixtures/arch/<name>/llama-perplexity.json for tests/unit/test-arch.c. Run once by a
# maintainer after make-arch-fixtures.py, with llama.cpp c392e50 built beside the project:
#   LLAMA_CPP_BIN=../peer/llama.cpp/build/bin sh scripts/arch-fixture-ppl.sh
# Protocol: ../shared/data/eval-docs.txt, 128-token windows, 8 chunks, batch 128, 2 threads.
set -eu
cd "$(dirname "$0")/.."
BIN=${LLAMA_CPP_BIN:-../peer/llama.cpp/build/bin}
TEXT=${QB_DATA:-../shared/data}/eval-docs.txt
CTX=128
CHUNKS=8
[ -x "$BIN/llama-perplexity" ] || { echo "arch-fixture-ppl: no $BIN/llama-perplexity" >&2; exit 2; }
commit=$(git -C "$BIN/../.." rev-parse --short HEAD 2>/dev/null || echo unknown)
for d in tests/fixtures/arch/*/; do
    name=$(basename "$d")
    g="$d$name.gguf"
    [ -f "$g" ] || continue
    out=$(LD_LIBRARY_PATH="$BIN" "$BIN/llama-perplexity" -m "$g" -f "$TEXT" -c $CTX -b $CTX --chunks $CHUNKS -t 2 2>&1)
    ppl=$(printf '%s\n' "$out" | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
    [ -n "$ppl" ] || { printf '%s\n' "$out" | tail -5 >&2; echo "arch-fixture-ppl: $name failed" >&2; exit 1; }
    tmp="$d.llama-perplexity.json.tmp"
    printf '{"ppl": %s, "ctx": %d, "chunks": %d, "text": "eval-docs.txt", "llama.cpp": "%s"}\n' \
        "$ppl" $CTX $CHUNKS "$commit" > "$tmp"
    mv "$tmp" "${d}llama-perplexity.json"
    echo "$name: llama-perplexity PPL $ppl"
done
