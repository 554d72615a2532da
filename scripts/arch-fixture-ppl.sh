#!/bin/sh
# arch-fixture-ppl.sh — llama.cpp's figures for each architecture fixture that has a llama.cpp
# GGUF (tests/fixtures/arch/<name>/<name>.gguf, made by convert_hf_to_gguf.py, or its first part
# <name>-00001-of-0000N.gguf where llama-gguf-split split it), for
# tests/unit/test-arch.c: llama-perplexity's PPL in <name>/llama-perplexity.json, and
# llama-tokenize's ids of each tokenizer test string of reference.json (no BOS, no special-token
# parsing, as llama.cpp's test-tokenizer-0) in <name>/llama-tokenize.json. Run once by a
# maintainer after make-arch-fixtures.py, with llama.cpp c392e50 built beside the project:
#   LLAMA_CPP_BIN=../peer/llama.cpp/build/bin sh scripts/arch-fixture-ppl.sh [NAME...]
# (names: only those fixtures; default every one).
# A conversion over 1.9 MB is first split with llama-gguf-split (--split-max-size 1M).
# Protocol: ../shared/data/eval-docs.txt, 128-token windows, 8 chunks, batch 128, 2 threads.
set -eu
cd "$(dirname "$0")/.."
BIN=${LLAMA_CPP_BIN:-../peer/llama.cpp/build/bin}
TEXT=${QB_DATA:-../shared/data}/eval-docs.txt
CTX=128
CHUNKS=8
for t in llama-perplexity llama-tokenize; do
    [ -x "$BIN/$t" ] || { echo "arch-fixture-ppl: no $BIN/$t" >&2; exit 2; }
done
commit=$(git -C "$BIN/../.." rev-parse --short HEAD 2>/dev/null || echo unknown)
for d in tests/fixtures/arch/*/; do
    name=$(basename "$d")
    if [ $# -gt 0 ]; then case " $* " in *" $name "*) ;; *) continue ;; esac; fi
    # a conversion over 1.9 MB is split by llama-gguf-split (files in the project stay under 2 MB)
    if [ -f "$d$name.gguf" ] && [ "$(stat -c %s "$d$name.gguf")" -gt 1900000 ]; then
        LD_LIBRARY_PATH="$BIN" "$BIN/llama-gguf-split" --split --split-max-size 1M "$d$name.gguf" "$d$name" >/dev/null
        rm "$d$name.gguf"
    fi
    g=$(ls "$d$name.gguf" "$d$name"-00001-of-*.gguf 2>/dev/null | head -n 1)
    [ -n "$g" ] || continue
    out=$(LD_LIBRARY_PATH="$BIN" "$BIN/llama-perplexity" -m "$g" -f "$TEXT" -c $CTX -b $CTX --chunks $CHUNKS -t 2 2>&1)
    ppl=$(printf '%s\n' "$out" | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
    [ -n "$ppl" ] || { printf '%s\n' "$out" | tail -5 >&2; echo "arch-fixture-ppl: $name failed" >&2; exit 1; }
    tmp="$d.llama-perplexity.json.tmp"
    printf '{"ppl": %s, "ctx": %d, "chunks": %d, "text": "eval-docs.txt", "llama.cpp": "%s"}\n' \
        "$ppl" $CTX $CHUNKS "$commit" > "$tmp"
    mv "$tmp" "${d}llama-perplexity.json"
    echo "$name: llama-perplexity PPL $ppl"
    # the test strings one file each, llama-tokenize on each, gathered into one JSON array
    sdir=$(mktemp -d)
    python3 -c 'import json, sys
for i, t in enumerate(json.load(open(sys.argv[1]))["tokenizer_tests"]):
    open("%s/%03d.txt" % (sys.argv[2], i), "w", encoding="utf-8", newline="").write(t["text"])' \
        "${d}reference.json" "$sdir"
    for f in "$sdir"/*.txt; do
        LD_LIBRARY_PATH="$BIN" "$BIN/llama-tokenize" -m "$g" -f "$f" --ids --no-bos --no-escape --no-parse-special \
            --log-disable 2>/dev/null | tail -n 1 > "${f%.txt}.ids" ||
            { echo "arch-fixture-ppl: llama-tokenize failed on $name $f" >&2; exit 1; }
    done
    python3 -c 'import json, sys, glob
ids = [json.loads(open(f).read()) for f in sorted(glob.glob(sys.argv[1] + "/*.ids"))]
json.dump({"llama.cpp": sys.argv[3], "ids": ids}, open(sys.argv[2], "w"))' "$sdir" "$d.llama-tokenize.json.tmp" "$commit"
    mv "$d.llama-tokenize.json.tmp" "${d}llama-tokenize.json"
    rm -r "$sdir"
    echo "$name: llama-tokenize ids of the test strings"
done
