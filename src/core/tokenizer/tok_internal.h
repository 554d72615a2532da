/* tok_internal.h — private to src/core/tokenizer/: the tokenizer struct, the vocabulary
 * builder the loaders share, the symbol-merge engine both encoders run, and the regex
 * pre-tokenizer. Nothing here is part of the public API. */
#ifndef QB_TOK_INTERNAL_H
#define QB_TOK_INTERNAL_H

#include "tokenizer.h"

/* Token types, numbered as GGUF's tokenizer.ggml.token_type. */
enum {
    TOK_NORMAL = 1,
    TOK_UNKNOWN = 2,
    TOK_CONTROL = 3,
    TOK_USER = 4,    /* user-defined: decodes to its raw text */
    TOK_UNUSED = 5,
    TOK_BYTE = 6,    /* SPM byte fallback <0xNN> */
};

/* Bound on token ids and vocabulary sizes we accept from files. */
#define TOK_MAX_VOCAB (1 << 24)

/* Open-addressing hash map from byte strings (token texts in the tokenizer's pool) to ids. */
typedef struct {
    int32_t *slot;  /* (cap) token id or -1 */
    size_t mask;    /* cap - 1, cap a power of two */
} tok_strmap;

/* Open-addressing hash map from an ordered id pair to a merge (rank, result id). */
typedef struct {
    uint64_t *key;   /* (cap) (a << 32 | b) + 1, 0 = empty */
    int32_t *rank;   /* (cap) */
    int32_t *res;    /* (cap) id of the merged token */
    size_t mask;
    size_t n;
} tok_pairmap;

typedef struct tok_pretok tok_pretok;

struct qb_tokenizer {
    qb_tok_kind kind;
    int n_vocab;
    /* token texts as stored in the vocabulary, NUL-terminated in one pool */
    char *pool;          /* (pool_len) */
    size_t pool_len, pool_cap;
    uint32_t *off;       /* (n_vocab) offset of token i's text in pool */
    uint32_t *len;       /* (n_vocab) its length in bytes */
    uint8_t *type;       /* (n_vocab) TOK_* */
    float *score;        /* (n_vocab) SPM merge scores; NULL for BPE */
    /* what each token decodes to (built by tok_finish) */
    char *piece;         /* pool of decoded bytes */
    uint32_t *poff;      /* (n_vocab) */
    uint32_t *plen;      /* (n_vocab) */
    tok_strmap map;      /* text -> id (a later duplicate wins) */
    int max_len;         /* longest token text in bytes */
    int32_t bos, eos, unk;
    bool add_bos;
    char desc[256];
    /* SPM */
    bool llama2c;             /* llama2.c conventions: ' ' for space, pre-merge byte fallback */
    bool add_space_prefix;    /* dummy-prefix space when the text is non-empty */
    int32_t byte_id[256];     /* id of the <0xNN> token, -1 if none */
    /* BPE */
    tok_pairmap merges;
    int n_merges;             /* merges kept (both parts and the result are tokens) */
    bool ignore_merges;       /* a pre-token that is a whole token is emitted as it is */
    bool prefix_space;        /* prepend ' ' to text that does not start with one */
    tok_pretok *pre;
    char pre_name[32];        /* tokenizer.ggml.pre to write when exporting ("llama-bpe", "gpt-2") */
    int32_t bytesym_id[256];  /* id of the byte-level symbol of byte b, -1 if none */
};

/* ---- vocabulary builder (vocab.c) ---- */

/* Allocate an empty tokenizer of n_vocab tokens (all texts empty, type NORMAL, scores 0 when
 * with_scores). Free with qb_tokenizer_free. */
qb_status tok_alloc(qb_ctx *ctx, qb_tok_kind kind, int n_vocab, bool with_scores, qb_tokenizer **out);
/* Set token id's text (copied). Each id is set at most once. */
qb_status tok_set_text(qb_ctx *ctx, qb_tokenizer *t, int id, const char *s, size_t n);
/* Build the lookup map, the decoded pieces and the byte tables; call after all texts and
 * types are set. */
qb_status tok_finish(qb_ctx *ctx, qb_tokenizer *t);
/* Id of the token whose text is s[0..n), or -1. */
int32_t tok_lookup(const qb_tokenizer *t, const char *s, size_t n);
/* Record a merge of tokens a and b into res with the given rank (first one wins). */
qb_status tok_add_merge(qb_ctx *ctx, qb_tokenizer *t, int32_t a, int32_t b, int32_t res, int32_t rank);
/* Reserve the merge map for about n merges. */
qb_status tok_reserve_merges(qb_ctx *ctx, qb_tokenizer *t, size_t n);
/* Look up the merge of a and b: true and *rank, *res when there is one. */
bool tok_find_merge(const qb_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *res);
/* Add a merge given as the texts of its two parts; a merge naming unknown tokens, or whose
 * result is not a token, is skipped (*kept = false). */
qb_status tok_add_merge_text(qb_ctx *ctx, qb_tokenizer *t, const char *a, size_t na, const char *b,
                             size_t nb, int32_t rank, bool *kept);

/* ---- byte-level alphabet (bpe.c) ---- */

/* Codepoint GPT-2's bytes_to_unicode assigns to byte b. */
uint32_t tok_byte_to_cp(uint8_t b);
/* Byte for a byte-level codepoint, or -1 if cp is not in the alphabet. */
int tok_cp_to_byte(uint32_t cp);
/* Write cp as UTF-8 into out (at least 4 bytes); returns the number of bytes. */
int tok_utf8_put(uint32_t cp, char *out);
/* Decode one UTF-8 sequence at s (n > 0 bytes available): its codepoint and length, or
 * -1 / length 1 for a malformed sequence. */
int32_t tok_utf8_get(const char *s, size_t n, int *len);

/* ---- growing id array ---- */
typedef struct {
    int32_t *v;
    int n, cap;
} tok_ids;
qb_status tok_ids_push(qb_ctx *ctx, tok_ids *ids, int32_t id);

/* ---- symbol merging (merge.c) ---- */

/* One symbol of the word being merged: a token (id) or, before merging, a piece of text
 * that may not be a token (id -1). Symbols form a linked list; merging absorbs the right
 * symbol into the left one. */
typedef struct {
    const char *text;  /* its bytes (into the input or the token pool) */
    uint32_t n;        /* byte length; 0 once absorbed */
    int32_t id;        /* token id or -1 */
    int prev, next;    /* neighbours, -1 at the ends */
    uint32_t ver;      /* bumped on every change, to spot stale queue entries */
} tok_sym;

typedef struct {
    double prio;       /* higher merges first; ties go to the leftmost pair */
    int left, right;
    uint32_t vl, vr;   /* versions of left/right when queued */
    int32_t id;        /* token the pair merges into */
} tok_pair;

/* Can a and b merge? If so set *prio (higher first) and *id (the merged token). */
typedef bool (*tok_pair_fn)(const qb_tokenizer *t, const tok_sym *a, const tok_sym *b, char *scratch,
                            double *prio, int32_t *id);

/* Scratch buffers reused across the words of one encode call. */
typedef struct {
    tok_sym *sym;
    int n, cap;
    tok_pair *heap;
    int hn, hcap;
    char *scratch;     /* >= 2 * max_len + 1 bytes, for pair fns that concatenate texts */
} tok_merger;

qb_status tok_merger_init(qb_ctx *ctx, tok_merger *m, const qb_tokenizer *t);
void tok_merger_free(tok_merger *m);
/* Append a symbol to the word being built. */
qb_status tok_merger_add(qb_ctx *ctx, tok_merger *m, const char *text, uint32_t n, int32_t id);
/* Merge the current word's symbols until no pair merges. The result is the list starting
 * at sym[0] following next. */
qb_status tok_merger_run(qb_ctx *ctx, tok_merger *m, const qb_tokenizer *t, tok_pair_fn fn);

/* ---- encoders ---- */
qb_status tok_spm_encode(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, tok_ids *out);
qb_status tok_bpe_encode(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, tok_ids *out);

/* ---- regex pre-tokenizer (pretok.c) ---- */

/* Regex of a named pre-tokenizer ("gpt-2", "llama-bpe"), or NULL. Static storage. */
const char *tok_pretok_regex(const char *name);
/* Compile n regexes (UTF-8, Unicode properties) that split text in sequence: the pieces of
 * each are split again by the next. what names the source for messages. */
qb_status tok_pretok_new(qb_ctx *ctx, const char *const *regex, int n, const char *what, tok_pretok **out);
void tok_pretok_free(tok_pretok *p);
/* Called for each piece, in order; a non-OK status stops the split and is returned. */
typedef qb_status (*tok_piece_fn)(qb_ctx *ctx, void *ud, const char *s, size_t n);
/* Split text into pieces: every match, and every stretch between matches, is one piece. */
qb_status tok_pretok_split(qb_ctx *ctx, const tok_pretok *p, const char *text, size_t len,
                           tok_piece_fn fn, void *ud);

#endif
