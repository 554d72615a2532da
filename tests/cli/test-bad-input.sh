#!/bin/bash
# test-bad-input.sh — every kind of bad input to the command line gives a clear one-line
# error naming the file and the problem, exit status 1, no crash and (under make sanitize)
# no leak: truncated and malformed model files, unsupported architectures, missing shards,
# corrupt JSON, mismatched tokenizers, empty texts, bad options.
. "$(dirname "$0")/lib.sh"
S=$QB_MODELS/stories260K
D=$(cd "$QB_MODELS/qb-docs-26m" && pwd)

# truncated GGUF, cut at several offsets (header, metadata, tensor directory, data)
for cut in 3 20 100 5000 40000 700000 1185000; do
    head -c $cut "$S/stories260K-f32.gguf" > "$TMP/cut.gguf"
    expect_fail "truncated GGUF at $cut bytes" "cut.gguf: .*(truncated|too short|past the end)" info "$TMP/cut.gguf"
done
printf 'NOPE0000000000000000000000000000' > "$TMP/magic.gguf"
expect_fail "GGUF with wrong magic" "magic.gguf: not a GGUF file" info "$TMP/magic.gguf"
expect_fail "GGUF of an unsupported architecture" "architecture 'qb-zoo' is not supported" info "$D/qb-docs-26m-zoo.gguf"
expect_fail "vocab-only GGUF (no tensors)" "ggml-vocab-gpt-2.gguf: .*(missing|architecture)" info "$QB_MODELS/tokenizer-vectors/ggml-vocab-gpt-2.gguf"

# llama2.c checkpoints: truncated, absurd header, trailing garbage
for cut in 10 28 5000 600000 1056000; do
    head -c $cut "$S/stories260K.bin" > "$TMP/cut.bin"
    cp "$S/tok512.bin" "$TMP/tokenizer.bin"
    expect_fail "truncated llama2.c checkpoint at $cut bytes" "cut.bin: .*(too short|truncated)" info "$TMP/cut.bin"
done
head -c 4096 /dev/urandom > "$TMP/random.bin"
expect_fail "random bytes as a llama2.c checkpoint" "random.bin: .*(not a llama2.c checkpoint|too short|truncated|trailing)" info "$TMP/random.bin"
cat "$S/stories260K.bin" > "$TMP/trail.bin"; printf 'xxxx' >> "$TMP/trail.bin"
expect_fail "llama2.c checkpoint with trailing bytes" "trail.bin: .*trailing" info "$TMP/trail.bin"
cp "$S/stories260K.bin" "$TMP/lonely/" 2>/dev/null || { mkdir -p "$TMP/lonely"; cp "$S/stories260K.bin" "$TMP/lonely/"; }
expect_fail "llama2.c checkpoint without a tokenizer" "no tokenizer.bin beside the checkpoint" info "$TMP/lonely/stories260K.bin"
expect_fail "tokenizer that does not match the vocabulary" "tokenizer.bin: holds more than the model.s 512 tokens" info "$S/stories260K.bin" --tokenizer "$QB_MODELS/llama2-tokenizer/tokenizer.bin"
head -c 100 "$S/tok512.bin" > "$TMP/tok-cut.bin"
expect_fail "truncated tokenizer.bin" "tok-cut.bin" info "$S/stories260K.bin" --tokenizer "$TMP/tok-cut.bin"

# Hugging Face directories: missing shard, corrupt config.json, unsupported architecture
mkdir -p "$TMP/hf1" "$TMP/hf2" "$TMP/hf3"
for f in "$D"/hf/*; do ln -s "$f" "$TMP/hf1/"; ln -s "$f" "$TMP/hf2/"; ln -s "$f" "$TMP/hf3/"; done
rm "$TMP/hf1/model-00003-of-00004.safetensors"
expect_fail "missing safetensors shard" "model-00003-of-00004.safetensors" info "$TMP/hf1"
rm "$TMP/hf2/config.json"; head -c 200 "$D/hf/config.json" > "$TMP/hf2/config.json"
expect_fail "corrupt config.json" "config.json" info "$TMP/hf2"
rm "$TMP/hf3/config.json"; sed 's/LlamaForCausalLM/GPT2LMHeadModel/' "$D/hf/config.json" > "$TMP/hf3/config.json"
expect_fail "unsupported architecture in config.json" "GPT2LMHeadModel" info "$TMP/hf3"
mkdir -p "$TMP/empty"
expect_fail "directory without a model" "empty" info "$TMP/empty"
expect_fail "nonexistent model path" "/no/such/model.gguf: cannot open" info /no/such/model.gguf

# evaluation texts that are too short
: > "$TMP/empty.txt"
expect_fail "empty evaluation text" "empty.txt: the evaluation text is empty" ppl "$S/stories260K.bin" "$TMP/empty.txt"
printf 'Once' > "$TMP/one.txt"
expect_fail "one-token evaluation text" "needs at least" ppl "$S/stories260K.bin" "$TMP/one.txt" --ctx 64
expect_fail "missing evaluation text" "nothere.txt: cannot open" ppl "$S/stories260K.bin" "$TMP/nothere.txt"
expect_fail "KLD between different vocabularies" "different vocabularies" kld "$S/stories260K.bin" "$D/qb-docs-26m-f16.gguf" "$S/ppl-sample.txt"

# bad options
expect_fail "unknown option" "unknown option '--frobnicate'" generate "$S/stories260K.bin" --frobnicate
expect_fail "non-numeric -n" "-n expects an integer" generate "$S/stories260K.bin" -n lots
expect_fail "top-p out of range" "--top-p expects a number" generate "$S/stories260K.bin" --top-p 7
expect_fail "ppl without a text" "usage" ppl "$S/stories260K.bin"
finish
