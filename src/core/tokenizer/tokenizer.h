/* tokenizer.h — text ⇄ token ids for Llama-family models.
 *
 * Two kinds:
 *  - QB_TOK_SPM: SentencePiece-style BPE with byte fallback (<0xNN> tokens), "▁" for spaces and
 *    a dummy-prefix space or not (llama2.c tokenizer.bin, GGUF vocab "llama": pieces merge by
 *    score; tokenizer.json BPE with byte_fallback, as transformers converts Llama 2, Mistral,
 *    Phi-3, Mixtral and Gemma: pairs merge by rank).
 *  - QB_TOK_BPE: byte-level BPE with ranked merges after a regex pre-tokenizer (GPT-2, Llama-3
 *    "llama-bpe", Qwen2 "qwen2"), from GGUF vocab "gpt2" or a Hugging Face tokenizer.json
 *    (with an NFC normalizer or none).
 *
 * Added tokens (user-defined and control tokens) are matched in the text before the model sees
 * it, as transformers and llama.cpp do; see qb_tokenize.
 *
 * A tokenizer is immutable after construction and may be used from several threads. */
#ifndef QB_TOKENIZER_H
#define QB_TOKENIZER_H

#include "../qb.h"


typedef enum { QB_TOK_SPM = 0, QB_TOK_BPE = 1 } qb_tok_kind;

typedef struct qb_tokenizer qb_tokenizer;

/* llama2.c tokenizer.bin (u32 max_len, then per id: f32 score, i32 len, bytes). vocab_size
 * is the model's (the file holds exactly that many entries). Caller frees with qb_tokenizer_free.
 * Encodes as llama2.c run.c does; bos = 1, eos = 2, add_bos true. A missing, truncated or short
 * file fails with a message naming it; *out is NULL on failure (as for every loader). */
qb_status qb_tokenizer_from_llama2c(qb_ctx *ctx, const char *path, int vocab_size, qb_tokenizer **out);
/* From a GGUF's tokenizer.ggml.* metadata (model "llama" or "gpt2"; pre-tokenizer from
 * tokenizer.ggml.pre). g is a qb_gguf*; the tokenizer copies what it needs, so g may be closed
 * right after. Encodes as llama.cpp (c392e50) does: "llama" with tokenizer.ggml.add_space_prefix
 * (default true) and user-defined tokens (token type 4) matched in the text; "gpt-2",
 * "llama-bpe", "qwen2" (and the names llama.cpp maps to them, e.g. "deepseek-r1-qwen") are known
 * pre-tokenizers with llama.cpp's regex and defaults (ignore_merges, add_bos); another name
 * falls back to GPT-2's regex and says so in the description. Merges naming tokens that do not
 * exist are skipped. Errors: no or malformed tokens, scores or token types of the wrong length,
 * unknown tokenizer.ggml.model, gpt2 without merges. */
qb_status qb_tokenizer_from_gguf(qb_ctx *ctx, const void *g, qb_tokenizer **out);
/* From a Hugging Face tokenizer.json, model type BPE, in one of two shapes:
 *  - byte-level (QB_TOK_BPE): a ByteLevel pre-tokenizer, alone or after Split regexes; the
 *    normalizer null or "NFC" (Qwen2);
 *  - SentencePiece-style (QB_TOK_SPM): "byte_fallback", and spaces written "▁" by the
 *    normalizer Sequence[Prepend("▁"), Replace(" ", "▁")] (Llama 2 / Mistral / Phi-3 as
 *    transformers converts them), Replace(" ", "▁") alone (Gemma: no dummy prefix; its no-op
 *    Split(" ") pre-tokenizer is accepted), or a Metaspace pre-tokenizer (prepend_scheme
 *    first / always / never, split or not). Pairs merge in rank order, characters not in the
 *    vocabulary fall back to <0xNN> tokens, as tokenizers' BPE does.
 * added_tokens are matched in the text with their lstrip / rstrip / single_word / normalized
 * flags. tokenizer_config.json in the same directory, if present, supplies add_bos_token and
 * the bos/eos tokens. Without it, BOS and add_bos come from the post_processor's template,
 * else from the usual token names. Merges may be "a b" strings or [a, b] pairs; those naming
 * unknown tokens are skipped. Invalid JSON fails with the line and column; a malformed field
 * as QB_ERR_FORMAT naming it; other model types, normalizers and pre-tokenizers fail as
 * QB_ERR_UNSUPPORTED. */
qb_status qb_tokenizer_from_hf(qb_ctx *ctx, const char *tokenizer_json_path, qb_tokenizer **out);
void qb_tokenizer_free(qb_tokenizer *t); /* NULL is fine */

qb_tok_kind qb_tokenizer_kind(const qb_tokenizer *t);
/* Human-readable description, e.g. "SentencePiece-style (32000 tokens)" or
 * "byte-level BPE, pre-tokenizer llama-bpe (8192 tokens, 7934 merges)". Borrowed. */
const char *qb_tokenizer_describe(const qb_tokenizer *t);
int qb_tokenizer_vocab_size(const qb_tokenizer *t);
int32_t qb_tokenizer_bos(const qb_tokenizer *t); /* -1 if none */
int32_t qb_tokenizer_eos(const qb_tokenizer *t); /* -1 if none */
bool qb_tokenizer_add_bos(const qb_tokenizer *t); /* does the model expect BOS prepended */
/* Token id's text exactly as the vocabulary stores it (SPM: '▁' for space, or ' ' for a
 * llama2.c tokenizer.bin; BPE: byte-level symbols such as "Ġ"). This is not the decoded text:
 * use qb_token_to_bytes for that. NUL-terminated, *len (if non-NULL) its byte length.
 * Borrowed until qb_tokenizer_free; NULL (and *len 0) for an id out of range. */
const char *qb_tokenizer_token_text(const qb_tokenizer *t, int32_t id, size_t *len);
/* Id of the token whose stored text is exactly text[0..len), or -1. */
int32_t qb_tokenizer_find(const qb_tokenizer *t, const char *text, size_t len);

/* Encode len bytes of UTF-8 text. add_bos prepends BOS. Special (control) tokens written in
 * the text are NOT parsed (treated as plain text, as llama.cpp's default); user-defined added
 * tokens are (as both llama.cpp and transformers do). *ids is malloc'd (caller frees; non-NULL
 * on success even when *n_ids is 0), *n_ids its length. Invalid UTF-8 is encoded too (byte
 * fallback / byte-level). Fails (QB_ERR_ARG) when add_bos is asked of a vocabulary without BOS.
 * Thread-safe: one tokenizer may encode from several threads at once, each with its own ctx. */
qb_status qb_tokenize(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, bool add_bos,
                      int32_t **ids, int *n_ids);
/* As qb_tokenize, but special tokens written in the text (e.g. "<|im_start|>", "<s>") become
 * their ids, as transformers' default encode and llama.cpp's parse_special do. */
qb_status qb_tokenize_special(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, bool add_bos,
                              int32_t **ids, int *n_ids);

/* The bytes token id stands for when it follows prev (prev = -1 at the start): byte tokens
 * become their byte, "▁" / byte-level symbols become real bytes, the SPM dummy-prefix space is
 * dropped after BOS (when the tokenizer adds one), control tokens (BOS/EOS), <unk> and unused ids give "", user-defined
 * tokens their text. Writes at most cap bytes into buf (which may be NULL when cap is 0) and
 * returns the full length; 0 for an id out of range. */
size_t qb_token_to_bytes(const qb_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap);

/* Write the tokenizer as GGUF tokenizer.ggml.* metadata into writer (a qb_gguf_writer *),
 * as llama.cpp's converters do: "llama" for SentencePiece-style, "gpt2" with merges and
 * pre-tokenizer name for byte-level BPE. */
qb_status qb_tokenizer_export_gguf(qb_ctx *ctx, const qb_tokenizer *t, void *writer);

/* Decode a whole id sequence into a malloc'd NUL-terminated string (caller frees), each token
 * through qb_token_to_bytes with its predecessor (a decoded 0 byte ends the C string early:
 * use qb_token_to_bytes for binary-exact output). NULL only when out of memory. */
char *qb_detokenize(const qb_tokenizer *t, const int32_t *ids, int n);

#endif
