/* tokenizer.h — text ⇄ token ids for Llama-family models.
 *
 * Two kinds:
 *  - QB_TOK_SPM: SentencePiece-style BPE over scored pieces with byte fallback (<0xNN> tokens),
 *    a dummy-prefix space and "▁" for spaces (llama2.c tokenizer.bin, GGUF vocab "llama").
 *  - QB_TOK_BPE: byte-level BPE with ranked merges after a regex pre-tokenizer (GPT-2 style
 *    or Llama-3 "llama-bpe"), from GGUF vocab "gpt2" or a Hugging Face tokenizer.json.
 *
 * A tokenizer is immutable after construction and may be used from several threads. */
#ifndef QB_TOKENIZER_H
#define QB_TOKENIZER_H

#include "../qb.h"


typedef enum { QB_TOK_SPM = 0, QB_TOK_BPE = 1 } qb_tok_kind;

typedef struct qb_tokenizer qb_tokenizer;

/* llama2.c tokenizer.bin (u32 max_len, then per id: f32 score, i32 len, bytes). vocab_size
 * is the model's (the file holds exactly that many entries). Caller frees with qb_tokenizer_free. */
qb_status qb_tokenizer_from_llama2c(qb_ctx *ctx, const char *path, int vocab_size, qb_tokenizer **out);
/* From a GGUF's tokenizer.ggml.* metadata (model "llama" or "gpt2"; pre-tokenizer from
 * tokenizer.ggml.pre). g is a qb_gguf*. */
qb_status qb_tokenizer_from_gguf(qb_ctx *ctx, const void *g, qb_tokenizer **out);
/* From a Hugging Face tokenizer.json (model type BPE, byte-level); tokenizer_config.json in
 * the same directory, if present, supplies add_bos_token and the bos/eos tokens. */
qb_status qb_tokenizer_from_hf(qb_ctx *ctx, const char *tokenizer_json_path, qb_tokenizer **out);
void qb_tokenizer_free(qb_tokenizer *t);

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

/* Encode len bytes of UTF-8 text. add_bos prepends BOS. Special tokens in the text are NOT
 * parsed (treated as plain text). *ids is malloc'd (caller frees), *n_ids its length. */
qb_status qb_tokenize(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, bool add_bos,
                      int32_t **ids, int *n_ids);

/* The bytes token id stands for when it follows prev (prev = -1 at the start): byte tokens
 * become their byte, "▁" / byte-level symbols become real bytes, the SPM dummy-prefix space is
 * dropped after BOS, control tokens (BOS/EOS) give "". Writes at most cap bytes into buf and
 * returns the full length. */
size_t qb_token_to_bytes(const qb_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap);

/* Decode a whole id sequence into a malloc'd NUL-terminated string (caller frees). */
char *qb_detokenize(const qb_tokenizer *t, const int32_t *ids, int n);

#endif
