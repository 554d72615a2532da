/* sensitivity.h — which tensors (or layers) of a model can take fewer bits: quantize only one
 * unit with a chosen format, keep everything else as loaded, and measure the KL divergence of
 * the next-token distributions from the unquantized model's and the change in perplexity, on an
 * evaluation text, with the protocol of eval.h (chunks of n_ctx, BOS first, second half scored).
 *
 * The variants are model views (model.h): they share the base's weights and differ in the
 * unit's tensors. The base runs once per chunk; its log-softmax is computed once and reused by
 * every variant; the variants of a chunk run in parallel, one per OpenMP thread. */
#ifndef QB_SENSITIVITY_H
#define QB_SENSITIVITY_H

#include "eval.h"

typedef enum {
    QB_SCAN_TENSOR = 0, /* one row per weight matrix */
    QB_SCAN_LAYER,      /* one row per block (all its matrices); token_embd / output alone */
} qb_scan_unit;

typedef struct {
    qb_scan_unit per;
    int n_ctx;          /* chunk length (0 = 256) */
    int n_tokens;       /* evaluation tokens to use (0 = the whole text), whole chunks */
    bool blocks_only;   /* only the matrices of the blocks (leave token_embd and output out) */
    bool layers_only;   /* only the blocks layer_first..layer_last (token_embd and output out) */
    int layer_first, layer_last;
    /* progress (may be NULL): called on the calling thread as variants finish, with done /
     * total counted in variant-chunks */
    void (*progress)(void *ud, int done, int total);
    void *ud;
    const volatile int *cancel; /* non-zero stops after the chunk being evaluated; may be NULL */
    /* in a job of several MPI ranks (util/dist.h; may be NULL): called once the n variants are
     * divided, before any is evaluated; rank r evaluates qb_dist_share(n, r) of them. ud as
     * progress's. Each rank's progress counts its own share. */
    void (*divided)(void *ud, int n);
    /* the reuse cache (qb_sensitivity_kld): a bound in MiB on what is kept of the base's pass per
     * chunk (checkpoints of its activations, its probabilities); 0 = the default (a quarter of
     * the physical memory, at most 1024 MiB), QB_SCAN_NO_CACHE = keep nothing (every variant
     * recomputed from the embedding). A bound too small for the whole cache keeps what saves
     * the most work per byte and recomputes the rest (a note in qb_scan_stats). */
    int cache_mb;
    bool no_reuse;      /* plain evaluation: every variant a whole forward pass (for comparison) */
    /* the model whose pass the variants resume from (NULL = the base): e.g. the search's current
     * mix, whose swaps differ from it in a matrix or two; may be one of the variants */
    const qb_model *prefix;
    struct qb_scan_stats *stats; /* filled by qb_sensitivity_kld when not NULL */
} qb_scan_opts;

#define QB_SCAN_NO_CACHE (-1)

/* What an evaluation of variants cost and kept (qb_sensitivity_kld). Work is counted in
 * multiply-adds actually done (matrix products and attention, infer.h's qb_infer_work); one
 * "full pass" is the base's forward pass over a chunk, all layers on all positions and the head
 * on the scored half, which is what evaluating a variant on its own costs. */
typedef struct qb_scan_stats {
    double cost_mean;     /* mean over the variants of their work / a full pass (qb_kld_result.cost) */
    double cost_all;      /* all work, the base's (and prefix's) passes included, / n_variants full passes */
    double work_full;     /* multiply-adds of one full pass of one chunk */
    size_t cache_want;    /* bytes the whole reuse cache takes */
    size_t cache_used;    /* bytes kept under the bound */
    size_t cache_bound;   /* the bound applied */
    int n_points, n_kept; /* resume points the variants need, and kept */
    char note[200];       /* one line when the bound cut the cache (recomputation instead), else "" */
} qb_scan_stats;

typedef struct {
    char name[96];      /* tensor name, or "blk.<i>" / the tensor name for layer units */
    char format[32];    /* the setting as applied (after llama-quantize's fallback for rows
                           that do not fit the blocks, e.g. q4_k -> q5_0 for 64-wide rows) */
    int layer;          /* block index, -1 for token_embd / output */
    int n_tensors;
    int64_t params;
    size_t bytes;       /* the unit's matrices in the setting */
    size_t bytes_base;  /* the unit's matrices as loaded */
    double bpw;         /* bytes * 8 / params */
    qb_kld_result kld;  /* kld_mean, kld_p99, top1_pct, dppl, other.ppl … */
    /* the estimate (qb_scan_estimate; 0 in an exact scan): the output error the unit's
     * quantization makes, Σ over its matrices, rows r and input columns c of w_c·ΔW[r,c]²,
     * w_c the importance of column c (mean x_c² over the calibration tokens), and that error
     * relative to the output's own Σ w_c·W[r,c]²; from a Fisher diagonal (fisher.h) est_err
     * is ½ Σ F·ΔW², an estimate of kld_mean itself */
    double est_err;
    double est_rel;
    bool has_est;
    bool refined;       /* an estimate's row measured exactly too (fisher.h: qb_scan_refine) */
} qb_scan_row;

typedef struct {
    qb_scan_row *rows;  /* n_rows, ranked: highest mean KLD first; owned */
    int n_rows;
    qb_ppl_result base; /* the base model on the same chunks */
    char format[32];    /* the setting asked for */
    int n_skipped;      /* units the format cannot store (rows that fit no block, no fallback) */
    char skipped_why[192]; /* the first such unit and why */
    double seconds;
    qb_scan_stats stats; /* cost and cache of the evaluation */
} qb_scan_result;

/* Scan: for each unit of m (per opts->per), a view with only that unit's matrices in fmt,
 * compared with m on tokens. Errors: a format no unit can store, no quantizable tensor, a
 * layer range outside the model (QB_ERR_ARG), a text too short for one chunk pair (eval.h),
 * QB_ERR_CANCELLED. m is not modified. The result
 * is the caller's: free with qb_scan_result_free. */
qb_status qb_sensitivity_scan(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, const int32_t *tokens,
                              int n_tokens, const qb_scan_opts *opts, qb_scan_result *out);
void qb_scan_result_free(qb_scan_result *r);

/* The estimate of a scan from an importance matrix instead of evaluation passes: for each
 * unit of m (per opts: per, blocks_only, layers), its matrices quantized in fmt (after
 * llama-quantize's fallback, as the scan does) and the importance-weighted output error
 * est_err / est_rel of the row (see qb_scan_row), ranked by est_err (largest first). im comes
 * from qb_imatrix_load + qb_imatrix_match on m. A unit with a matrix im has no entry for
 * (token_embd, output without --process-output) is left out and counted in n_skipped with the
 * first such name; kld, base and n_ctx stay 0. Costs one quantization of each matrix, no
 * forward pass. Errors as qb_sensitivity_scan's (arguments, a format that stores nothing),
 * QB_ERR_CANCELLED. The result is the caller's (qb_scan_result_free). */
struct qb_imatrix;
qb_status qb_scan_estimate(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, const struct qb_imatrix *im,
                           const qb_scan_opts *opts, qb_scan_result *out);

/* Put est's figures into the rows of exact (a scan of the same model, format and units) with
 * the same name, and say how well each estimate ranks the measured mean KLD: Spearman's rho
 * of est_err and of est_rel against kld_mean over the *n_joined rows found in both (rho NAN
 * when fewer than 2). */
void qb_scan_join_estimate(qb_scan_result *exact, const qb_scan_result *est, int *n_joined, double *rho_err,
                           double *rho_rel);

/* Spearman's rank correlation of x and y (n pairs): Pearson's correlation of their ranks,
 * ties given the mean of the ranks they span. NAN when n < 2 or either side is constant. */
double qb_spearman(const double *x, const double *y, int n);

/* The engine under the scan and the mixed-precision search: KLD / ΔPPL of n_variants models
 * (views of base, or any models with base's vocabulary) against base, the base's pass and
 * log-softmax shared, the variants of each chunk evaluated in parallel (single-threaded
 * forward passes, one per thread). A view resumes the base's (or opts->prefix's) pass of the
 * chunk at the first point where it reads a tensor that differs (infer.h's checkpoints: a
 * layer's input, its attention output, its FFN input or ffn_down's input), and the last layer
 * runs only the scored rows past their keys and values; the numbers are those of evaluating
 * each variant on its own (bit-identical: the same arithmetic on the same values). out[j] for
 * variants[j] (its cost too); base_out (may be NULL) gets the base's perplexity. Cancel,
 * progress, the cache bound and stats as in qb_scan_opts. In a job of several MPI ranks
 * (util/dist.h) every rank calls it with the same arguments: each evaluates its share of the
 * variants and every rank returns all of out[] (the same bytes one process computes with the
 * same thread count), or the first failing rank's error. */
qb_status qb_sensitivity_kld(qb_ctx *ctx, const qb_model *base, const qb_model *const *variants, int n_variants,
                             const int32_t *tokens, int n_tokens, const qb_scan_opts *opts, qb_kld_result *out,
                             qb_ppl_result *base_out);

/* Save the ranked table as CSV (header line, one row per unit) or JSON (an object with the
 * model, format, base perplexity and a "rows" array), atomically. */
qb_status qb_scan_save_csv(qb_ctx *ctx, const qb_scan_result *r, const char *path);
qb_status qb_scan_save_json(qb_ctx *ctx, const qb_scan_result *r, const char *model_path, const char *path);

#endif
