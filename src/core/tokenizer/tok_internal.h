/* tok_internal.h — private to src/core/tokenizer/: the tokenizer struct, the vocabulary
 * builder the loaders share, the added tokens matched in the text, the normalizer, the
 * symbol-merge engine both encoders run, and the regex pre-tokenizer. Nothing here is part of
 * the public API.
 *
 * Encoding runs the pipeline of Hugging Face tokenizers (and llama.cpp, which is the same
 * pipeline with fewer steps), in encode.c:
 *   text -> added tokens matched in the raw text -> each stretch between them normalized
 *   (NFC, "▁" prepended, ' ' -> "▁") -> added tokens matched in the normalized text ->
 *   Metaspace -> the model (spm.c: SentencePiece-style; bpe.c: byte-level BPE with its regex
 *   pre-tokenizer). */
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

/* How an added token is matched (Hugging Face's AddedToken flags). */
enum {
    TOK_ADDED_LSTRIP = 1,      /* swallows the whitespace before it */
    TOK_ADDED_RSTRIP = 2,      /* swallows the whitespace after it */
    TOK_ADDED_SINGLE_WORD = 4, /* only where no word character touches it */
    TOK_ADDED_NORMALIZED = 8,  /* matched in the normalized text, by its normalized form */
};

/* One added token: a token matched in the text before the model sees it. */
typedef struct {
    int32_t id;
    uint32_t off, len; /* the text matched, in tok_addedset.pool */
    uint8_t flags;     /* TOK_ADDED_* */
} tok_added;

/* The added tokens, sorted by first byte and then longest first, so the longest match at a
 * position is the first one found. */
typedef struct {
    tok_added *v;       /* (n) */
    int n, cap;
    char *pool;         /* (pool_len) match texts */
    size_t pool_len, pool_cap;
    int first[257];     /* v[first[b] .. first[b + 1]) start with byte b */
    bool any_normalized;
} tok_addedset;

/* Metaspace pre-tokenizer (' ' -> "▁", and a "▁" in front): when to prepend. */
enum { TOK_META_NONE = 0, TOK_META_NEVER, TOK_META_ALWAYS, TOK_META_FIRST };

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
    tok_addedset added;       /* matched in the text first (added.c) */
    /* normalizer (normalize.c), applied to each stretch of text between added tokens */
    bool nfc;                 /* Unicode NFC (tokenizer.json normalizer "NFC") */
    bool norm_prepend;        /* "▁" in front of non-empty text (Prepend; llama.cpp's space prefix) */
    bool norm_spaces;         /* ' ' -> "▁" (Replace; llama.cpp's whitespace escape) */
    /* Metaspace pre-tokenizer */
    int meta;                 /* TOK_META_*: ' ' -> "▁" and when to prepend "▁" */
    bool meta_split;          /* split before every "▁" */
    /* SPM */
    bool llama2c;             /* llama2.c conventions: ' ' for space, pre-merge byte fallback */
    bool add_space_prefix;    /* a dummy-prefix space is added (so decoding drops it after BOS) */
    bool spm_ranked;          /* tokenizer.json BPE: merges by rank, byte fallback before merging */
    bool byte_fallback;       /* (ranked) a character not in the vocabulary becomes <0xNN> tokens */
    bool fuse_unk;            /* (ranked) consecutive unknown characters give one <unk> */
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
/* The byte a "<0xNN>" text (hex digits of either case) stands for, or -1. */
int tok_byte_value(const char *s, size_t n);
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

/* The pair fn of ranked merges (byte-level BPE, tokenizer.json SentencePiece-style): a and b
 * merge when the vocabulary has a merge for exactly them; lower rank first. */
bool tok_pair_by_rank(const qb_tokenizer *t, const tok_sym *a, const tok_sym *b, char *scratch, double *prio,
                      int32_t *id);

qb_status tok_merger_init(qb_ctx *ctx, tok_merger *m, const qb_tokenizer *t);
void tok_merger_free(tok_merger *m);
/* Append a symbol to the word being built. */
qb_status tok_merger_add(qb_ctx *ctx, tok_merger *m, const char *text, uint32_t n, int32_t id);
/* Merge the current word's symbols until no pair merges. The result is the list starting
 * at sym[0] following next. */
qb_status tok_merger_run(qb_ctx *ctx, tok_merger *m, const qb_tokenizer *t, tok_pair_fn fn);

/* ---- encoding (encode.c: the pipeline; spm.c, bpe.c: the models) ---- */

/* Encode text into out (appending), added tokens, normalizer, pre-tokenizer and model in turn.
 * parse_special: control tokens written in the text are matched too (user-defined ones
 * always are). */
qb_status tok_encode(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, bool parse_special,
                     tok_ids *out);
/* The models, given one normalized, pre-tokenized piece of text. */
qb_status tok_spm_encode(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, tok_ids *out);
qb_status tok_bpe_encode(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, tok_ids *out);

/* ---- added tokens (added.c) ---- */

/* Add token id to the set, matched by text[0..n) (the normalized form when flags has
 * TOK_ADDED_NORMALIZED). Empty texts are ignored. */
qb_status tok_added_add(qb_ctx *ctx, qb_tokenizer *t, int32_t id, const char *text, size_t n, uint8_t flags);
/* Add every user-defined, control and unknown token by its text (GGUF's rule). */
qb_status tok_added_from_types(qb_ctx *ctx, qb_tokenizer *t);
/* Sort and index the set; call once all tokens are added. */
qb_status tok_added_finish(qb_ctx *ctx, qb_tokenizer *t);
/* The first added token in s[from..n) of the pass (normalized or raw entries), leftmost and
 * then longest; control and unknown tokens only when parse_special. On a match: true, the
 * span to cut [*ms, *me) (with the whitespace lstrip/rstrip swallow, never before from) and
 * the token's *id. */
bool tok_added_next(const qb_tokenizer *t, const char *s, size_t n, size_t from, bool normalized,
                    bool parse_special, size_t *ms, size_t *me, int32_t *id);

/* ---- normalizer and Unicode classes (normalize.c, libunistring) ---- */

/* s[0..n) normalized as t says (NFC, then "▁" prepended, then ' ' -> "▁"). *out is s itself
 * when nothing changes, else *buf (malloc'd, the caller frees *buf either way; NULL when
 * unused); *out_n its length. Invalid UTF-8 is left as it is (NFC applies to the valid runs). */
qb_status tok_normalize(qb_ctx *ctx, const qb_tokenizer *t, const char *s, size_t n, char **buf, const char **out,
                        size_t *out_n);
/* Unicode White_Space (regex \s). */
bool tok_cp_is_space(uint32_t cp);
/* A word character as regex \w means it: alphabetic, mark, decimal digit, connector
 * punctuation, join control. */
bool tok_cp_is_word(uint32_t cp);

/* ---- regex pre-tokenizer (pretok.c) ---- */

/* Regex of a named pre-tokenizer ("gpt-2", "llama-bpe", "qwen2"), as llama.cpp runs it, or
 * NULL. Static storage. */
const char *tok_pretok_regex(const char *name);
/* The name of the pre-tokenizer whose regex this is (llama.cpp's form or tokenizer.json's), or
 * NULL. */
const char *tok_pretok_name(const char *regex);
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
