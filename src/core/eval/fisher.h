/* fisher.h — the sensitivity scan estimated from one calibration pass: the diagonal of the
 * Fisher information of the model's next-token distributions, gathered by the training pass's
 * forward and backward (train.h) over calibration chunks, and from it the second-order
 * estimate of the KL divergence a quantization adds,
 *
 *     ΔKLD ≈ ½ Σ_i F_i · (Q(W) − W)_i²      (F the KL's Hessian at ΔW = 0, diagonal only)
 *
 * per unit of a scan (a matrix or a block), per matrix × candidate for the search, with an
 * optional exact measurement of the units the estimate ranks highest.
 *
 * F_i is the mean over the scored positions of E_y[(∂ log p(y) / ∂θ_i)²]. Per chunk, one
 * backward of Σ_t log p_t(y_t), y_t drawn from the model's own distribution at each scored
 * position t (QB_FISHER_SAMPLED): the positions' scores have mean zero and are independent
 * given the text, so the square of the chunk's gradient is an unbiased estimate of the sum of
 * the positions' Fisher diagonals (no cross terms in expectation); summed over the chunks and
 * divided by the positions, the mean. Squaring the gradient of the chunk's *mean* loss would
 * undercount by the number of positions; with the text's own next tokens as labels
 * (QB_FISHER_DATA, the "empirical Fisher") the cross terms do not vanish. Cost: one forward
 * and one backward per chunk (≈ 3 forward passes over the calibration tokens).
 *
 * Memory: the pass in memory holds three f32 copies of the parameters (values, a chunk's
 * gradient, F), 12 bytes a parameter: ~100 GB for an 8B model. The streaming pass
 * (fisher_stream.c) gathers the same sums block by block, one block's three copies at a time,
 * and prices the formats it is given (a matrix's ½ Σ F·ΔW² per format) as each block's F is
 * complete, keeping those prices instead of F: the same estimates (the same arithmetic), with
 * every block's activations kept per chunk, or — when those would take more than a third of
 * the RAM — only its input and one forward more per chunk (each block recomputed). */
#ifndef QB_FISHER_H
#define QB_FISHER_H

#include "sensitivity.h"

typedef enum {
    QB_FISHER_SAMPLED = 0, /* labels drawn from the model's distribution (the true Fisher) */
    QB_FISHER_DATA,        /* the text's next tokens (the empirical Fisher) */
} qb_fisher_labels;

typedef enum {
    QB_FISHER_STREAM_AUTO = 0, /* stream when the three copies would take more than half the RAM */
    QB_FISHER_STREAM_ON,
    QB_FISHER_STREAM_OFF,
    QB_FISHER_STREAM_RECOMPUTE, /* stream, each block recomputed from its input: the least memory */
} qb_fisher_stream_mode;

typedef struct {
    int n_ctx;               /* chunk length (0 = 256), chunks cut as eval.h cuts them */
    int n_tokens;            /* calibration tokens to use (0 = the whole text), whole chunks */
    qb_fisher_labels labels;
    bool all_positions;      /* every position of a chunk but the last; default: the second
                                half, the positions the scan scores */
    int samples;             /* label draws per chunk, one backward each (0 = 1) */
    uint64_t seed;           /* of the label draws (0 = a fixed default) */
    qb_fisher_stream_mode stream;
    const qb_format *price;  /* streaming: the formats to price every matrix in (each matrix in
                                its fallback of each, as the scan and the search store it) */
    int n_price;
    /* progress (may be NULL): chunks done / total, on the calling thread */
    void (*progress)(void *ud, int done, int total);
    void *ud;
    const volatile int *cancel; /* non-zero stops after the current chunk; may be NULL */
} qb_fisher_opts;

typedef struct qb_fisher qb_fisher;

/* The Fisher diagonal of every parameter of m from the calibration text tokens (with BOS, as
 * qb_eval_load_text gives them). *out is the caller's (qb_fisher_free); it borrows m, which
 * must outlive it. Memory in memory: three f32 copies of the parameters (values, a chunk's
 * gradient, the diagonal), plus the training pass's activations for n_ctx tokens; streamed:
 * three copies of the largest block or of the classifier, and every block's input for the
 * chunks. Errors: a model the training pass refuses (experts, fused matrices:
 * QB_ERR_UNSUPPORTED naming the model), a text shorter than two chunks (QB_ERR_ARG), a
 * streaming pass with no format to price (QB_ERR_ARG), QB_ERR_NOMEM, QB_ERR_CANCELLED. */
qb_status qb_fisher_compute(qb_ctx *ctx, const qb_model *m, const int32_t *tokens, int n_tokens,
                            const qb_fisher_opts *opts, qb_fisher **out);
void qb_fisher_free(qb_fisher *f);

/* F of tensor t of the fisher's model (one value per element, t's shape, row-major), or NULL
 * for a tensor it has none for and for every tensor of a streamed pass (which keeps prices,
 * not F); borrowed until qb_fisher_free. A tied classifier is the
 * embeddings (one array, both uses' gradients). */
const float *qb_fisher_of(const qb_fisher *f, const qb_tensor *t);
/* How it was gathered: scored positions, chunks, chunk length, seconds of wall time. */
void qb_fisher_info(const qb_fisher *f, long *n_positions, int *n_chunks, int *n_ctx, double *seconds);
/* Whether the pass streamed (its estimates then cover the formats it priced only). */
bool qb_fisher_streamed(const qb_fisher *f);
/* The forward passes it ran per chunk: 1, or 2 when it streamed and recomputed each block from
 * its input (the blocks' activations for every chunk would have taken more than a third of the
 * RAM). */
int qb_fisher_forwards(const qb_fisher *f);

/* ½ Σ F ⊙ (D − W)² of tensor t (of the fisher's model), D the values of the packed rows q in
 * format fmt, W t's source values: the estimated KLD of that quantization of t alone. A
 * streamed pass gives the price of t in fmt (q, the same quantization, is not read); a format
 * it did not price is QB_ERR_ARG. */
qb_status qb_fisher_tensor_cost(qb_ctx *ctx, const qb_fisher *f, const qb_tensor *t, const qb_format *fmt,
                                const void *q, double *cost);

/* The scan estimated from f: per unit of m (opts: per, blocks_only, layers), its matrices
 * quantized in fmt after llama-quantize's fallback, exactly as qb_sensitivity_scan does,
 * est_err = ½ Σ F ⊙ ΔW² over them (an estimate of the unit's mean KLD in nats, the scale of
 * kld_mean) and est_rel = est_err / (½ Σ F ⊙ W²); ranked by est_err, largest first. No
 * forward pass. Errors as qb_scan_estimate's. The result is the caller's (qb_scan_result_free). */
qb_status qb_scan_estimate_fisher(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, const qb_fisher *f,
                                  const qb_scan_opts *opts, qb_scan_result *out);

/* The refinement: the top_k units of est (a qb_scan_estimate_fisher result of m, fmt and the
 * same opts) measured exactly (qb_sensitivity_kld on tokens, opts' n_ctx and n_tokens); those
 * rows get kld and refined = true, and est is ranked again by each row's kld_mean where
 * measured, else its est_err times the measured-to-estimated ratio of the measured units
 * (geometric mean), so both sit on one scale. Costs top_k + 1 forward passes over the tokens.
 * Errors as qb_sensitivity_kld's. */
qb_status qb_scan_refine(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, qb_scan_result *est, int top_k,
                         const int32_t *tokens, int n_tokens, const qb_scan_opts *opts);

/* Spearman's rho between the order of ranked's rows (first = most sensitive; a refined
 * estimate's order) and exact's measured kld_mean, over the *n_joined units in both (by name);
 * NAN when fewer than 2. */
double qb_scan_rank_rho(const qb_scan_result *exact, const qb_scan_result *ranked, int *n_joined);

#endif
