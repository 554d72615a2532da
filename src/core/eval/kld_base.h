/* kld_base.h — KL-divergence base files as llama.cpp's llama-perplexity writes and reads them
 * (`--kl-divergence-base FILE`, c392e50 examples/perplexity/perplexity.cpp): the base model's
 * next-token log-probabilities over a text, kept so that any number of quantized models can be
 * compared with it later without opening the base model again. A file made by either tool
 * serves the other.
 *
 * Layout (host order, little-endian on every machine llama.cpp and we run on):
 *     char    magic[8]          "_logits_"
 *     int32   n_ctx             chunk length
 *     int32   n_vocab
 *     int32   n_chunk
 *     int32   tokens[n_chunk * n_ctx]   the text as tokenized (BOS first when the vocabulary
 *                                        adds one), not the per-chunk BOS substitutes
 *     then per chunk, per scored position (the second half of the chunk: positions
 *     n_ctx/2 … n_ctx-2, each predicting the next token; n_ctx - 1 - n_ctx/2 of them) a row
 *     of nv = 2*((n_vocab+1)/2) + 4 uint16:
 *         float32 scale, float32 min_log_prob   (the first four uint16)
 *         uint16  q[n_vocab]                    log p(i) ≈ scale * q[i] + min_log_prob
 *         uint16  0                             (when n_vocab is odd: rows stay 4-byte aligned)
 * The encoding keeps log-probabilities within 16 nats of the row's largest: with max and min
 * the row's largest and smallest logits, min raised to max - 16, scale = (max - min) / 65535,
 * q[i] = round((logit[i] - min) / scale) for logit[i] > min, else 0 (everything ≤ min reads
 * as min_log_prob = log p of min). llama-perplexity skips tokens with log p ≤ -16 when it
 * sums the KL divergence.
 *
 * The comparison (qb_eval_kld_base) computes what llama-perplexity --kl-divergence prints, in
 * its arithmetic (float where it uses float), so the figures agree to its printed digits when
 * both tools compute the same logits. */
#ifndef QB_KLD_BASE_H
#define QB_KLD_BASE_H

#include "eval.h"
#include "../util/mapfile.h"

#define QB_KLD_BASE_MAGIC "_logits_"
#define QB_KLD_BASE_HEADER 20 /* magic + n_ctx + n_vocab + n_chunk */

typedef struct {
    char *path;             /* the file's name, for messages; owned */
    int n_ctx, n_vocab, n_chunk;
    int rows;               /* scored positions per chunk: n_ctx - 1 - n_ctx/2 */
    int nv;                 /* uint16 per row: 2*((n_vocab+1)/2) + 4 */
    const int32_t *tokens;  /* (n_chunk * n_ctx) borrowed from the bytes below */
    const uint16_t *logp;   /* (n_chunk, rows, nv) the encoded rows; borrowed likewise */
    const uint8_t *bytes;   /* the whole file */
    size_t size;
    qb_mapfile map;         /* the mapping when opened from a file */
    void *copy;             /* an aligned copy of unaligned memory given to _memory; owned */
} qb_kld_base;

/* Open a base file: maps it and checks every field (magic, n_ctx ≥ 4, n_vocab ≥ 1,
 * n_chunk ≥ 1, size exactly as the header says, tokens in [0, n_vocab), each row's scale
 * finite and ≥ 0 and min_log_prob finite). On failure *out is NULL and the one-line error
 * names the file and the problem. Close with qb_kld_base_close. */
qb_status qb_kld_base_open(qb_ctx *ctx, const char *path, qb_kld_base **out);
/* The same over bytes in memory (borrowed until close unless they had to be copied for
 * alignment); name is for messages (the fuzzer's entry). */
qb_status qb_kld_base_open_memory(qb_ctx *ctx, const char *name, const void *data, size_t size, qb_kld_base **out);
void qb_kld_base_close(qb_kld_base *b);

/* Row r (0 … rows-1, position n_ctx/2 + r) of chunk c: nv uint16, the first four holding the
 * two floats (read them with memcpy). Borrowed from b. */
const uint16_t *qb_kld_base_row(const qb_kld_base *b, int c, int r);

/* Write b to path exactly as it was read (a read and a write give the file back byte for
 * byte), through a temp file and a rename. */
qb_status qb_kld_base_write(qb_ctx *ctx, const qb_kld_base *b, const char *path);

/* Encode one row of n_vocab logits into row (nv uint16, layout above) as llama-perplexity
 * does, bit for bit given the same logits; returns the NLL of token tok (its arithmetic).
 * Non-finite logits give a non-finite scale or min_log_prob, which the caller checks. */
double qb_kld_base_encode_row(const float *logits, int n_vocab, uint16_t *row, int tok);

/* Check that b fits model m (n_vocab equals m's vocabulary size) and, when text_tokens is not
 * NULL, that the text (tokenized as qb_eval_load_text does; text_name for messages) begins
 * with b's n_chunk * n_ctx tokens: a base file from another text, tokenizer or model is a
 * one-line error naming the file and the first mismatch. */
qb_status qb_kld_base_check(qb_ctx *ctx, const qb_kld_base *b, const qb_model *m, const int32_t *text_tokens,
                            int n_text, const char *text_name);

/* Run base model m over tokens with llama-perplexity's chunking (o->n_ctx, o->n_chunks as in
 * qb_eval_perplexity; o->run applies to m) and write the base file to path (a temp file and
 * a rename: on any failure or cancel the path is untouched). *out gets m's perplexity from
 * the same NLLs llama-perplexity prints in that mode. */
qb_status qb_kld_base_save(qb_ctx *ctx, const qb_model *m, const int32_t *tokens, int n_tokens,
                           const qb_eval_opts *o, const char *path, qb_ppl_result *out);

/* The quantiles reported, highest first: llama-perplexity prints all of them for Δp and
 * max, 99.9%, 99%, median, 10%, 5%, 1%, min for the KL divergence (the `kld` flag). */
#define QB_KLD_NQ 13
typedef struct {
    const char *label; /* "max", "99.9%", …, "median", …, "min" */
    const char *key;   /* "max", "p99_9", …, "median", …, "min" (Lua field names) */
    float fraction;    /* 1 = max, 0 = min; median: the middle value (mean of the two middle) */
    bool kld;          /* llama-perplexity prints it for the KL divergence */
} qb_kld_quantile;
extern const qb_kld_quantile qb_kld_quantiles[QB_KLD_NQ];

/* What llama-perplexity --kl-divergence prints (its "±" values in the _err fields; 0 where it
 * prints 0 for fewer than 11 positions). Fractions, not percent, for cor, Δp and same_top. */
typedef struct {
    int n_ctx, n_chunks, n_vocab;
    long n_scored;                 /* positions compared */
    double seconds;
    double ppl, ppl_err;           /* PPL(Q): the model's perplexity */
    double ppl_base, ppl_base_err; /* PPL(base), from the file's log-probabilities */
    double cor;                    /* Cor(ln(PPL(Q)), ln(PPL(base))) */
    double ln_ratio, ln_ratio_err; /* Mean ln(PPL(Q)/PPL(base)) */
    double ratio, ratio_err;       /* Mean PPL(Q)/PPL(base) */
    double diff, diff_err;         /* Mean PPL(Q)-PPL(base) */
    double kld, kld_err;           /* Mean KLD = KL(base ‖ Q) per position */
    double dp, dp_err;             /* Mean Δp = p_Q(next) - p_base(next) */
    double dp_rms, dp_rms_err;     /* RMS Δp */
    double same_top, same_top_err; /* Same top p: the most likely token agrees */
    double kld_q[QB_KLD_NQ];       /* quantiles of the per-position KLD (qb_kld_quantiles order) */
    double dp_q[QB_KLD_NQ];        /* quantiles of Δp */
} qb_kld_stats;

/* Compare model m with base file b: each chunk's tokens from the file (first replaced by BOS
 * when m adds one), m run over it, every scored position's log-probabilities compared with the
 * file's row as llama-perplexity does. o->n_ctx must be 0 or b's n_ctx; o->n_chunks 0 (all
 * of b's chunks) or at most b's; o->run applies to m. Checks b against m (vocabulary) first. */
qb_status qb_eval_kld_base(qb_ctx *ctx, const qb_kld_base *b, const qb_model *m, const qb_eval_opts *o,
                           qb_kld_stats *out);

#endif
