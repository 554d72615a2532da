/* scan_internal.h — what the exact scan (sensitivity.c) and its estimate (scan_estimate.c)
 * share: the units a scan is made of, the checks of its arguments, and the weighted
 * quantization error the estimates (importance matrix, Fisher) are made of, and the reuse
 * cache of qb_sensitivity_kld (not public API). */
#ifndef QB_SCAN_INTERNAL_H
#define QB_SCAN_INTERNAL_H

#include "sensitivity.h"

/* One unit of a scan: the tensors (indices into the model's table) quantized together, and
 * the row the scan fills for it. */
typedef struct {
    int *tensors;
    int n;
    qb_scan_row row;
} qb_scan_unit_set;

/* Block index of a tensor called "blk.<i>.…", else -1. */
int qb_scan_layer_of(const char *name);
/* The quantizable tensors of m grouped into units as o asks (per tensor or layer, blocks or
 * layer range only); *n_units set. Caller frees units[i].tensors and units. Errors: none to
 * scan (QB_ERR_ARG), out of memory. */
qb_status qb_scan_make_units(qb_ctx *ctx, const qb_model *m, const qb_scan_opts *o, qb_scan_unit_set **out,
                             int *n_units);
/* The format value itself and o's layer range against m (QB_ERR_ARG with the message). */
qb_status qb_scan_check_args(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, const qb_scan_opts *o);

/* Σ w·(D − W)² and Σ w·W² over tensor t (of a model, not a view), D the values of the packed
 * rows q (t's row count, format f), W t's source values; w per element, row r's weights at
 * w + r·ld (ld 0: one weight per input column, shared by all rows), NULL: all 1. */
qb_status qb_scan_weighted_error(qb_ctx *ctx, const qb_tensor *t, const qb_format *f, const void *q,
                                 const float *w, int64_t ld, double *err, double *ref);

/* Σ w·(Q(W) − W)² and Σ w·W² of tensor t quantized in f (weights as qb_scan_weighted_error),
 * and the bytes of the packed rows. */
qb_status qb_scan_tensor_error(qb_ctx *ctx, const qb_tensor *t, const qb_format *f, const float *w, int64_t ld,
                               const volatile int *cancel, double *err, double *ref, size_t *bytes);

/* An estimate's cost of tensor t stored in f (f already the fallback of the asked format):
 * *err = Σ w·ΔW², *ref = Σ w·W² for the estimate's weights w, *bytes the packed size.
 * QB_ERR_UNSUPPORTED, with the message set on ctx: the estimate has nothing for t (the unit is
 * then skipped, counted in n_skipped); other errors end the estimate. */
typedef qb_status (*qb_scan_cost_fn)(void *ud, qb_ctx *ctx, const qb_tensor *t, const qb_format *f,
                                     const volatile int *cancel, double *err, double *ref, size_t *bytes);
/* qb_scan_estimate with any cost: est_err = scale · Σ err per unit, est_rel = Σ err / Σ ref
 * (scan_estimate.c). */
qb_status qb_scan_estimate_with(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, qb_scan_cost_fn cost,
                                void *ud, double scale, const qb_scan_opts *o, qb_scan_result *out);

/* ---- the reuse cache of qb_sensitivity_kld (scan_cache.c) ---- */
#include "../infer/infer.h"

/* What the pass of the model the variants resume from keeps per chunk, and where each variant
 * resumes. Points are indices of a checkpoint table (infer.h: qb_checkpoint_index). */
typedef struct {
    qb_checkpoint *table; /* (QB_STAGE_COUNT * n_layers + 1) entries for the capture pass; owned */
    float **bufs;         /* the buffers the table points into; owned */
    int n_bufs;
    int *from;            /* per variant: the kept point it resumes from, or -1 (from the embedding) */
    int n_variants, n_layers, n_ctx, n_logits;
    double *prob;         /* (rows, vocab) the base's probabilities, or NULL; owned */
    bool trim;            /* variants' passes trim the last layer to the scored rows */
    size_t want, used, bound;
    int n_points, n_kept;
    char note[200];
} qb_scan_cache;

/* Plan and allocate the cache for variants resuming from src's pass (chunks of n_ctx, n_logits
 * logits, rows scored, vocab wide) under o's bound (qb_scan_opts.cache_mb, no_reuse): the
 * points the variants start at (their first tensor that differs from src's), kept greedily by
 * the work they save per byte while they fit, then the base's probabilities if they fit. A
 * buffer that cannot be allocated is left out like one over the bound. Errors: out of memory
 * for the plan itself. Free with qb_scan_cache_free (also after an error). */
qb_status qb_scan_cache_plan(qb_ctx *ctx, const qb_model *src, const qb_model *const *variants, int n_variants,
                             int n_ctx, int n_logits, int vocab, int rows, const qb_scan_opts *o, qb_scan_cache *out);
/* Where variant j resumes in run state s (trimming already set on s): true with the point and
 * its checkpoint (pointers into the cache, at the rows s reads there); false: a whole pass. */
bool qb_scan_cache_resume(const qb_scan_cache *c, int j, const qb_infer *s, int *layer, qb_stage *stage,
                          qb_checkpoint *cp);
void qb_scan_cache_stats(const qb_scan_cache *c, qb_scan_stats *out);
void qb_scan_cache_free(qb_scan_cache *c);

#endif
