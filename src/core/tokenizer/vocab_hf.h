/* vocab_hf.h — private to vocab_hf.c and vocab_hf_pre.c: what a tokenizer.json's "normalizer"
 * and "pre_tokenizer" sections amount to, read before the vocabulary is built. */
#ifndef QB_VOCAB_HF_H
#define QB_VOCAB_HF_H

#include "tok_internal.h"

#include <jansson.h>

#define HF_MAX_RX 8

typedef struct {
    /* normalizer */
    bool nfc;                 /* "NFC" */
    bool prepend;             /* Prepend("▁") */
    bool replace_spaces;      /* Replace(" ", "▁") */
    /* pre_tokenizer */
    const char *rx[HF_MAX_RX]; /* Split regexes in order: borrowed from the JSON or from owned[] */
    int n;
    char *owned[HF_MAX_RX];   /* escaped literal patterns */
    int n_space_isolated;     /* of those, Isolated Splits on the literal " " */
    int n_space_other;        /* Splits on " " of another behaviour (not in rx) */
    const char *space_behavior; /* the behaviour of the first of those */
    const char *bad_split;    /* the first Split that is neither Isolated nor on " ", or NULL */
    bool bad_split_inverted;
    bool byte_level;          /* ByteLevel */
    bool prefix_space;        /* its add_prefix_space */
    int meta;                 /* Metaspace: TOK_META_* */
    bool meta_split;          /* its split */
} hf_pipeline;

/* Read root's normalizer and pre_tokenizer into p (zeroed first). Errors name path and the
 * field: QB_ERR_FORMAT for malformed sections, QB_ERR_UNSUPPORTED for types we do not run.
 * Free with hf_pipeline_free, also after a failure. */
qb_status hf_pipeline_parse(qb_ctx *ctx, const char *path, const json_t *root, hf_pipeline *p);
void hf_pipeline_free(hf_pipeline *p);
/* Which tokenizer p describes: QB_TOK_BPE (byte-level) or QB_TOK_SPM (spaces as "▁"); fails
 * as QB_ERR_UNSUPPORTED for a mix of the two or neither. */
qb_status hf_pipeline_kind(qb_ctx *ctx, const char *path, const hf_pipeline *p, qb_tok_kind *kind);
/* A pre-tokenizer name for the description and GGUF export ("gpt-2", "llama-bpe", "qwen2",
 * "none", "custom regex"). */
const char *hf_pipeline_label(const hf_pipeline *p);

#endif
