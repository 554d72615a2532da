/* eval.h — quality measurements following llama.cpp's llama-perplexity protocol, so figures
 * compare with its own: the text is tokenized once with BOS, cut into n_ctx-token chunks,
 * each chunk's first token replaced by BOS, and only the second half of each chunk scored.
 * Perplexity with its standard error; KL divergence of one model's next-token distribution
 * from another's on the same chunks. */
#ifndef QB_EVAL_H
#define QB_EVAL_H

#include "../model/model.h"
#include "../infer/runcfg.h"

typedef struct {
    int n_ctx;      /* chunk length (default 256 when 0) */
    int n_chunks;   /* 0 = as many as the text holds */
    /* progress: called from the calling thread after each chunk (may be NULL) */
    void (*progress)(void *ud, int done, int total);
    void *ud;
    const volatile int *cancel; /* set non-zero to stop after the current chunk; may be NULL */
    qb_run_config *run;      /* how the measured model runs (perplexity's model, KLD's other
                                models): activation settings, KV type (runcfg.h); NULL =
                                float activations, f32 KV cache */
    qb_run_config *run_base; /* the same for KLD's base model */
    /* in a job of several MPI ranks (util/dist.h; may be NULL): called once the n chunks are
     * divided; rank r evaluates qb_dist_share(n, r) of them and its progress counts those. ud as
     * progress's. Every rank calls perplexity / KLD with the same arguments and gets the whole
     * result, the bytes one process computes with the same thread count. */
    void (*divided)(void *ud, int n);
} qb_eval_opts;

typedef struct {
    double ppl, ppl_err;  /* exp(mean NLL) and its standard error */
    double nll_mean;
    int n_chunks, n_ctx;
    long n_scored;        /* tokens scored */
    double seconds;       /* wall time of the evaluation */
} qb_ppl_result;

typedef struct {
    qb_ppl_result base, other;
    double dppl;          /* other.ppl - base.ppl */
    double kld_mean, kld_err, kld_median, kld_p99, kld_max, kld_min;
    double top1_pct;      /* % of positions whose argmax agrees */
    double cost;          /* the work of other's evaluation as a fraction of one plain forward
                             pass over the same chunks (qb_sensitivity_kld, which reuses the
                             base's activations; 0 where not measured) */
} qb_kld_result;

/* Tokenize a text file with m's tokenizer (with BOS when the model adds one): the same as
 * qb_model_tokenize_file (model.h), which the layers below eval (calibration) call.
 * *tokens is malloc'd; caller frees. Errors name the file (empty text, unreadable...). */
qb_status qb_eval_load_text(qb_ctx *ctx, const qb_model *m, const char *path, int32_t **tokens, int *n_tokens);

qb_status qb_eval_perplexity(qb_ctx *ctx, const qb_model *m, const int32_t *tokens, int n_tokens,
                             const qb_eval_opts *opts, qb_ppl_result *out);

/* base and other must share a vocabulary (same size). */
qb_status qb_eval_kld(qb_ctx *ctx, const qb_model *base, const qb_model *other, const int32_t *tokens, int n_tokens,
                      const qb_eval_opts *opts, qb_kld_result *out);
/* The same for n_others models against one base, which runs once per chunk: out[j] for
 * others[j] (a scan of many settings costs one base pass). */
qb_status qb_eval_kld_many(qb_ctx *ctx, const qb_model *base, const qb_model *const *others, int n_others,
                           const int32_t *tokens, int n_tokens, const qb_eval_opts *opts, qb_kld_result *out);

#endif
