/* stats.h — what the plots and metrics are made of: error statistics of a tensor quantized to
 * a format (MSE, RMSE, max error, SQNR, cosine, bits per weight, bytes), histograms of the
 * original values, the dequantized values and the error, and the mapping (the staircase) as
 * original → dequantized points. All computed in core, in parallel over rows. */
#ifndef QB_STATS_H
#define QB_STATS_H

#include "format.h"

typedef struct {
    double mse, rmse;
    double max_abs_err;
    double mean_abs_err;
    double sqnr_db;     /* 10 log10(Σx² / Σ(x − x̂)²); +inf when exact */
    double rel_err;     /* Σ(x − x̂)² / Σx² (0 when exact, +inf when x is all zero and x̂ not) */
    double cosine;      /* cosine similarity of x and x̂ (1 when both are all zero, 0 when
                           only one is) */
    double bpw;         /* bits per weight of the format at this row length */
    size_t bytes_src;   /* the tensor at its source precision (as given: f32 = 4 bytes/weight) */
    size_t bytes_quant; /* rows * row_bytes */
    int64_t n;          /* elements */
} qb_error_stats;

typedef struct {
    int bins;
    double lo, hi;      /* range covered; values outside are counted in under / over; bin i
                           holds [lo + i·w, lo + (i+1)·w), the last bin includes hi; NaNs are
                           not counted anywhere */
    uint64_t *counts;   /* bins entries; owned, free with qb_histogram_free */
    uint64_t under, over;
} qb_histogram;

typedef struct {
    int bins;           /* histogram bins (0 = 64) */
    bool auto_range;    /* values range from the data (orig/deq share one range; error its own;
                           a degenerate range c..c becomes c ± |c|/2, or ±0.5 at 0) */
    double lo, hi;      /* value range when !auto_range */
    double err_lo, err_hi; /* error range when !auto_range */
    int map_points;     /* max points of the mapping (0 = none); spread evenly over the sorted
                           originals' value range so the staircase shows every step: the
                           smallest original in each of map_points − 1 equal-width intervals
                           between the smallest and largest original, plus the largest; each
                           point a real (original, dequantized) pair, empty intervals skipped,
                           so n_map <= map_points and map_x is strictly ascending. Tails get
                           points as dense as the middle: a step shows unless all its
                           originals share intervals with smaller originals of another step. */
    /* Importance (llama.cpp's imatrix: per input column j the mean square activation E[x_j²],
     * as qb_importance_lookup gives it): imp_mats × n weights w_j (finite, >= 0), or NULL for
     * none. Rows split into imp_mats equal consecutive blocks, block b (a 3-D expert tensor's
     * expert b) weighted by w + b·n; imp_mats 0 counts as 1 and must divide the rows. With
     * weights the analysis also fills wstats and hist_werr (qb_analysis). */
    const float *importance;
    int64_t imp_mats;
    /* qb_quant_analyze with importance: quantize with it too (qb_quantize_matrix_w, each
     * matrix with its own weights: llama-quantize --imatrix's bytes for the ggml types it
     * weights), as an apply with an imatrix does; false: quantize as without. */
    bool quantize_weighted;
    const volatile int *cancel;
    struct qb_analysis_scratch *scratch; /* NULL: buffers allocated and freed per call */
} qb_analysis_opts;

/* Working buffers of qb_quant_analyze (the quantized tensor, per-row sums) kept between
 * calls, so repeated analyses of large tensors reuse warm memory instead of faulting in fresh
 * pages each time. It also remembers which originals the mapping picked (they depend on the
 * originals alone: the smallest of each interval of their range), so the next analysis of
 * the same source at another format only looks up those values' dequantized images instead
 * of filtering every value again: the source is known by its address, shape, range and the
 * number of points, so a scratch must only be reused with a source whose values have not
 * changed since (or after qb_analysis_scratch_free). Caller-owned; one call at a time per
 * scratch; grows as needed; free with qb_analysis_scratch_free (idempotent, zeroes it). */
typedef struct qb_analysis_scratch {
    void *q;
    void *rows;
    size_t q_cap, rows_cap; /* bytes */
    struct {                /* the mapping's originals of the last source (map_idx NULL: none) */
        const float *src;
        int64_t rows, n;
        int points;
        double lo, hi;
        int64_t *map_idx; /* points − 1 flat indices (−1: empty interval) */
    } map;
} qb_analysis_scratch;
void qb_analysis_scratch_free(qb_analysis_scratch *s);

/* The importance-weighted view (opts.importance given). Each column j of a matrix scales by
 * s_j = sqrt(w_j / w̄), w̄ the mean of that matrix's weights (a matrix whose weights are all
 * zero is taken unweighted, s = 1), and wstats are qb_error_stats of the scaled values
 * x̃ = s·x and x̂̃ = s·x̂ (f32 products), so that
 *     wstats.mse     = Σ_ij w_j (x̂_ij − x_ij)² / (rows · Σ_j w_j)     (per matrix, then summed)
 *     wstats.rel_err = Σ w_j e² / Σ w_j x²,   wstats.sqnr_db = −10 log10 of it,
 *     wstats.max_abs_err = max s_j |e_ij|,    wstats.cosine = the w-weighted cosine,
 * and hist_werr is the histogram of x̃ − x̂̃, the errors whose mean square is wstats.mse.
 * This weighted squared error is what llama.cpp's quantizers minimise when given an imatrix
 * (make_qx_quants, make_qkx3_quants, the i-quant searches weight each value's squared error by
 * its column's importance): a quantization made with the importance should score lower here
 * than one made without. Uniform weights give s = 1 exactly, so every number equals the plain
 * one bit for bit; a column of weight 0 adds no error. */
typedef struct {
    qb_format fmt;
    qb_error_stats stats;
    qb_histogram hist_orig, hist_deq, hist_err;
    int n_map;
    float *map_x, *map_y; /* n_map points, ascending map_x; owned */
    bool weighted;        /* wstats and hist_werr are filled (see above) */
    qb_error_stats wstats;
    qb_histogram hist_werr; /* bins as the others, range from the scaled errors (auto_range) or
                               err_lo .. err_hi */
} qb_analysis;

/* Quantize src (rows × n f32) to f, dequantize, and measure everything above. opts NULL: 64
 * bins, auto range, no mapping. The results do not depend on ctx's thread count. Caller frees
 * out with qb_analysis_free; on failure *out is zeroed (freeing it is harmless). Errors: those
 * of qb_format_check and qb_quantize_matrix (cancel included), bad options (QB_ERR_ARG),
 * QB_ERR_NOMEM. Memory: the quantized tensor, 64 bytes per row and a few dequantized rows per
 * thread (no f32 copy of the tensor). */
qb_status qb_quant_analyze(qb_ctx *ctx, const qb_format *f, const float *src, int64_t rows, int64_t n,
                           const qb_analysis_opts *opts, qb_analysis *out);
/* qb_quant_analyze for values already quantized by some method (GPTQ, AWQ): deq (rows × n)
 * holds what src's tensor stands for in format f (which gives bpw and bytes). Same options,
 * results and ownership; nothing is quantized here. */
qb_status qb_quant_analyze_given(qb_ctx *ctx, const qb_format *f, const float *src, const float *deq, int64_t rows,
                                 int64_t n, const qb_analysis_opts *opts, qb_analysis *out);
void qb_analysis_free(qb_analysis *a);

/* Error statistics of x̂ against x (n values), without quantizing: for callers that already
 * have both (methods like GPTQ). bytes_src = 4n; bpw and bytes_quant are left 0 (the caller
 * knows its format). OpenMP's default thread count; the result does not depend on it. */
void qb_error_stats_compute(const float *x, const float *xq, int64_t n, qb_error_stats *out);

/* A zeroed histogram of bins (1..2^20) bins over [lo, hi] (finite, lo < hi); *h is zeroed
 * on failure. Add counts values (serial; one histogram per thread). Free is idempotent. */
qb_status qb_histogram_init(qb_ctx *ctx, qb_histogram *h, int bins, double lo, double hi);
void qb_histogram_add(qb_histogram *h, const float *v, int64_t n);
void qb_histogram_free(qb_histogram *h);

#endif
