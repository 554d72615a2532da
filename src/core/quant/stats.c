/* stats.c — what the plots and metrics are made of: quantize a tensor to a format, dequantize
 * it, and measure the error (MSE, RMSE, max / mean |error|, SQNR, cosine), three histograms
 * (original, dequantized, error) and the original → dequantized mapping points; with an
 * importance, the same statistics and error histogram of the importance-scaled values (stats.h).
 *
 * Two passes over the rows after quantizing: per-row sums and ranges, then (once the ranges
 * give the histograms' grid) histograms and mapping. Neither keeps a dequantized copy of the
 * tensor: each thread dequantizes a group of rows into a small buffer of its own when a pass
 * reaches them (twice in all: cheap next to writing and reading back 4 bytes per value), and
 * the hot loops are kernels (kernels.h: dequant_*, err_rows, hist_slots, mul_f32). The second
 * pass is stats_hist.c. The weighted view scales a group's original and dequantized rows by
 * their columns' scales (mul_f32) into a second pair of thread buffers and runs the same error
 * kernel on them: uniform weights (scales exactly 1) reproduce the plain numbers bit for bit.
 *
 * Parallel over rows with OpenMP. Sums are kept per row (in double, each row summed in element
 * order) and added in row order afterwards, histogram counts per thread and merged, mapping
 * candidates per thread and merged by a total order: the results do not depend on the thread
 * count or on which thread took which rows (rows are handed out dynamically, so a thread the
 * OS delays does not hold up the others on a busy machine). Nothing inside a parallel region
 * touches ctx or anything shared that is not a per-thread or per-row slot. */
#include "stats_pass.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define DEFAULT_BINS 64
#define MAX_BINS (1 << 20)
#define MAX_MAP_POINTS (1 << 20)

/* min / max ignoring a NaN in b (fminf / fmaxf are libm calls in hot loops) */
static inline float min_f(float a, float b) { return b < a ? b : a; }
static inline float max_f(float a, float b) { return b > a ? b : a; }

/* Running sums of one row (or chunk) and their totals: the kernels' qb_err_acc. */
typedef qb_err_acc acc;

static void acc_merge(acc *a, const acc *b)
{
    a->sxx += b->sxx;
    a->see += b->see;
    a->sxy += b->sxy;
    a->syy += b->syy;
    a->sae += b->sae;
    if (b->maxe > a->maxe) a->maxe = b->maxe;
    a->xlo = min_f(a->xlo, b->xlo), a->xhi = max_f(a->xhi, b->xhi);
    a->ylo = min_f(a->ylo, b->ylo), a->yhi = max_f(a->yhi, b->yhi);
    a->elo = min_f(a->elo, b->elo), a->ehi = max_f(a->ehi, b->ehi);
}

static void acc_finish(const acc *a, int64_t n, qb_error_stats *out)
{
    memset(out, 0, sizeof *out);
    out->n = n;
    const double dn = n > 0 ? (double)n : 1.0;
    out->mse = a->see / dn;
    out->rmse = sqrt(out->mse);
    out->max_abs_err = a->maxe;
    out->mean_abs_err = a->sae / dn;
    out->sqnr_db = a->see > 0 ? 10.0 * log10(a->sxx / a->see) : INFINITY;
    out->rel_err = a->see > 0 ? a->see / a->sxx : 0.0; /* x all zero: +inf */
    if (a->sxx > 0 && a->syy > 0) out->cosine = a->sxy / sqrt(a->sxx * a->syy);
    else out->cosine = a->sxx == 0 && a->syy == 0 ? 1.0 : 0.0;
    out->bytes_src = (size_t)n * sizeof(float);
}

static int thread_count(const qb_ctx *ctx)
{
#ifdef _OPENMP
    return ctx && ctx->n_threads > 0 ? ctx->n_threads : omp_get_max_threads();
#else
    (void)ctx;
    return 1;
#endif
}

void qb_error_stats_compute(const float *x, const float *xq, int64_t n, qb_error_stats *out)
{
    enum { CHUNK = 16384 };
    const int64_t nc = n > 0 ? (n + CHUNK - 1) / CHUNK : 0;
    const qb_kernel_table *k = qb_kernels();
    acc total;
    qb_err_acc_init(&total);
    acc *part = nc > 1 ? malloc((size_t)nc * sizeof *part) : NULL;
    if (part) {
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < nc; c++) {
            qb_err_acc_init(&part[c]);
            const int64_t i0 = c * CHUNK, len = i0 + CHUNK < n ? CHUNK : n - i0;
            k->err_rows((int)len, x + i0, 0, xq + i0, 0, 1, &part[c]);
        }
        for (int64_t c = 0; c < nc; c++) acc_merge(&total, &part[c]);
        free(part);
    } else { /* one chunk, or no memory for the split */
        for (int64_t i0 = 0; i0 < n; i0 += CHUNK) /* continued chunk by chunk: one running sum */
            k->err_rows((int)(n - i0 < CHUNK ? n - i0 : CHUNK), x + i0, 0, xq + i0, 0, 1, &total);
    }
    acc_finish(&total, n > 0 ? n : 0, out);
}

/* ---- histograms ----------------------------------------------------------------------- */

static bool range_ok(double lo, double hi)
{
    return isfinite(lo) && isfinite(hi) && lo < hi;
}

qb_status qb_histogram_init(qb_ctx *ctx, qb_histogram *h, int bins, double lo, double hi)
{
    memset(h, 0, sizeof *h);
    if (bins < 1 || bins > MAX_BINS)
        return qb_fail(ctx, QB_ERR_ARG, "histogram: %d bins (expected 1..%d)", bins, MAX_BINS);
    if (!range_ok(lo, hi)) return qb_fail(ctx, QB_ERR_ARG, "histogram: empty or non-finite range [%g, %g]", lo, hi);
    h->counts = calloc((size_t)bins, sizeof *h->counts);
    if (!h->counts) return qb_fail(ctx, QB_ERR_NOMEM, "histogram: out of memory for %d bins", bins);
    h->bins = bins;
    h->lo = lo;
    h->hi = hi;
    return QB_OK;
}

void qb_histogram_add(qb_histogram *h, const float *v, int64_t n)
{
    if (!h->counts || n <= 0) return;
    const qb_kernel_table *k = qb_kernels();
    const qb_bin_grid g = {h->lo, h->hi, (double)h->bins / (h->hi - h->lo), h->bins};
    uint32_t slot[QB_SLOT_CHUNK];
    for (int64_t i0 = 0; i0 < n; i0 += QB_SLOT_CHUNK) {
        const int len = (int)(n - i0 < QB_SLOT_CHUNK ? n - i0 : QB_SLOT_CHUNK);
        k->hist_slots(len, v + i0, NULL, &g, slot);
        for (int i = 0; i < len; i++) {
            const uint32_t s = slot[i];
            if (s == 0) h->under++;
            else if (s <= (uint32_t)g.bins) h->counts[s - 1]++;
            else if (s == (uint32_t)g.bins + 1) h->over++;
        }
    }
}

void qb_histogram_free(qb_histogram *h)
{
    free(h->counts);
    memset(h, 0, sizeof *h);
}

/* ---- analysis ------------------------------------------------------------------------- */

void qb_analysis_free(qb_analysis *a)
{
    if (!a) return;
    qb_histogram_free(&a->hist_orig);
    qb_histogram_free(&a->hist_deq);
    qb_histogram_free(&a->hist_err);
    qb_histogram_free(&a->hist_werr);
    free(a->map_x);
    free(a->map_y);
    memset(a, 0, sizeof *a);
}

/* Pad a degenerate automatic range (all values equal) so it is a real interval. */
static void widen(double *lo, double *hi)
{
    if (!(*lo < *hi)) {
        double c = isfinite(*lo) ? *lo : 0.0, w = fabs(c) > 0 ? fabs(c) * 0.5 : 0.5;
        *lo = c - w;
        *hi = c + w;
    }
}

/* Rows quantized by the first pass itself (formats whose rows quantize on their own), into
 * q, row r with importance w + (r / rpm)·n when w is set: each group of rows is quantized
 * while its originals are in cache, and the originals are read once instead of twice. */
typedef struct {
    uint8_t *q;
    const float *w;
    int64_t rpm;
} row_quant;

/* Pass 1: the sums and ranges of every row into racc, and with s->scale those of the scaled
 * rows into wracc; with rq, each group's rows quantized first (*failed set when the type has
 * no quantizer). False when out of memory, cancelled or a row failed to quantize. */
static bool row_sums(const float *x, const qb_row_source *s, int64_t rows, int nt, const volatile int *cancel, acc *racc,
                     acc *wracc, const row_quant *rq, bool *failed)
{
    const qb_kernel_table *k = qb_kernels();
    const int64_t n = s->n, ng = (rows + QB_STATS_GROUP - 1) / QB_STATS_GROUP;
    bool ok = true;
#pragma omp parallel num_threads(nt)
    {
        bool mine = true;
        float *buf = qb_row_buffer(s, rows, &mine);
        const int64_t gr = rows < QB_STATS_GROUP ? rows : QB_STATS_GROUP;
        float *wbuf = s->scale ? malloc((size_t)(2 * gr * n) * sizeof *wbuf) : NULL; /* scaled x, then x̂ */
        if (s->scale && !wbuf) mine = false;
#pragma omp for schedule(dynamic, 4)
        for (int64_t g = 0; g < ng; g++) {
            if (!mine || (cancel && *cancel)) continue;
            const int64_t r0 = g * QB_STATS_GROUP;
            const int nr = (int)(rows - r0 < QB_STATS_GROUP ? rows - r0 : QB_STATS_GROUP);
            qb_prefetch(x + (r0 + nr) * n, (size_t)(QB_STATS_GROUP * n) * sizeof *x); /* the next group */
            if (rq)
                for (int i = 0; i < nr; i++) {
                    const int64_t r = r0 + i;
                    if (!qb_quantize_row_local(s->f, x + r * n, rq->q + (size_t)r * s->rb, n,
                                               rq->w ? rq->w + (r / rq->rpm) * n : NULL)) {
#pragma omp atomic write
                        *failed = true;
                    }
                }
            const float *y = qb_rows_of(s, r0, nr, buf);
            for (int i = 0; i < nr; i++) qb_err_acc_init(&racc[r0 + i]);
            k->err_rows((int)n, x + r0 * n, (size_t)n, y, (size_t)n, nr, &racc[r0]);
            if (s->scale) {
                float *xs = wbuf, *ys = wbuf + (size_t)(nr * n);
                for (int i = 0; i < nr; i++) {
                    const float *sc = qb_row_scale(s, r0 + i);
                    k->mul_f32((int)n, x + (r0 + i) * n, sc, xs + i * n);
                    k->mul_f32((int)n, y + i * n, sc, ys + i * n);
                    qb_err_acc_init(&wracc[r0 + i]);
                }
                k->err_rows((int)n, xs, (size_t)n, ys, (size_t)n, nr, &wracc[r0]);
            }
        }
        free(buf);
        free(wbuf);
        if (!mine) {
#pragma omp atomic write
            ok = false;
        }
    }
    return ok && !*failed && !(cancel && *cancel);
}

/* The mapping from the bucket minima: points ascending in x, duplicates of the last point
 * (the largest original, a bucket minimum too) dropped. */
static qb_status build_map(qb_ctx *ctx, qb_analysis *a, qb_map_pt *best, int nmap, qb_map_pt last)
{
    a->map_x = malloc((size_t)nmap * sizeof *a->map_x);
    a->map_y = malloc((size_t)nmap * sizeof *a->map_y);
    if (!a->map_x || !a->map_y) return qb_fail(ctx, QB_ERR_NOMEM, "analysis: out of memory for the mapping");
    int k = 0;
    for (int i = 0; i < nmap - 1; i++) {
        if (best[i].idx < 0) continue;
        a->map_x[k] = best[i].x;
        a->map_y[k++] = best[i].y;
    }
    if (last.idx >= 0 && (k == 0 || last.x > a->map_x[k - 1])) {
        a->map_x[k] = last.x;
        a->map_y[k++] = last.y;
    }
    a->n_map = k;
    return QB_OK;
}

/* A buffer of at least need bytes in *p (capacity *cap), grown (contents dropped) when too
 * small; NULL when out of memory (then *p is freed and *cap 0). */
static void *scratch_get(void **p, size_t *cap, size_t need)
{
    if (*p && *cap >= need) return *p;
    free(*p);
    *p = NULL;
#ifdef MADV_HUGEPAGE
    /* Large buffers on 2 MiB boundaries, marked for transparent huge pages: a fresh buffer
     * then faults in once per 2 MiB instead of once per 4 KiB (a third of a fresh analysis's
     * time went to page faults on a virtual machine). Freed with free() like the others. */
    enum { HUGE = 2 << 20 };
    if (need >= HUGE) {
        const size_t size = (need + HUGE - 1) / HUGE * HUGE;
        if (posix_memalign(p, HUGE, size) == 0) {
            madvise(*p, size, MADV_HUGEPAGE); /* only advice: failure leaves small pages */
            need = size;
        } else {
            *p = NULL;
        }
    }
#endif
    if (!*p) *p = malloc(need ? need : 1);
    *cap = *p ? need : 0;
    return *p;
}

/* opts with defaults filled in (NULL: 64 bins, auto range, no mapping), or an error. */
static qb_status check_opts(qb_ctx *ctx, const qb_analysis_opts *opts, qb_analysis_opts *o)
{
    *o = (qb_analysis_opts){.bins = DEFAULT_BINS, .auto_range = true};
    if (opts) *o = *opts;
    if (o->bins == 0) o->bins = DEFAULT_BINS;
    if (o->bins < 0 || o->bins > MAX_BINS)
        return qb_fail(ctx, QB_ERR_ARG, "analysis: %d histogram bins (expected 1..%d)", o->bins, MAX_BINS);
    if (o->map_points < 0 || o->map_points > MAX_MAP_POINTS)
        return qb_fail(ctx, QB_ERR_ARG, "analysis: %d mapping points (expected 0..%d)", o->map_points, MAX_MAP_POINTS);
    if (!o->auto_range && (!range_ok(o->lo, o->hi) || !range_ok(o->err_lo, o->err_hi)))
        return qb_fail(ctx, QB_ERR_ARG, "analysis: empty or non-finite histogram range [%g, %g] / error [%g, %g]",
                       o->lo, o->hi, o->err_lo, o->err_hi);
    return QB_OK;
}

/* The largest original (first index among equals) and its dequantized value: the first row
 * whose maximum it is holds it (an all-NaN row's −inf does not count). buf: n floats. */
static qb_map_pt find_last(const float *x, const qb_row_source *s, int64_t rows, const acc *racc, float xmax, float *buf)
{
    const int64_t n = s->n;
    for (int64_t r = 0; r < rows; r++) {
        if (!(racc[r].xhi == xmax)) continue;
        const float *xr = x + r * n;
        for (int64_t i = 0; i < n; i++)
            if (xr[i] == xmax) {
                const float *y = qb_rows_of(s, r, 1, buf);
                return (qb_map_pt){xr[i], y[i], r * n + i};
            }
    }
    return (qb_map_pt){0, 0, -1};
}

/* The importance scales of opts (stats.h: s_j = sqrt(w_j / w̄) per matrix, 1 for a matrix of
 * zero weights) into *scale (malloc'd, mats × n) and the rows each matrix covers; *scale NULL
 * without importance. Errors: QB_ERR_ARG for matrices that do not divide the rows or a weight
 * that is negative or not finite, QB_ERR_NOMEM. */
static qb_status importance_scales(qb_ctx *ctx, const qb_analysis_opts *o, int64_t rows, int64_t n, float **scale,
                                   int64_t *rows_per_mat)
{
    *scale = NULL;
    *rows_per_mat = rows;
    if (!o->importance) return QB_OK;
    const int64_t mats = o->imp_mats > 0 ? o->imp_mats : 1;
    if (o->imp_mats < 0 || rows % mats)
        return qb_fail(ctx, QB_ERR_ARG, "analysis: %lld rows do not split into %lld importance matrices", (long long)rows,
                       (long long)o->imp_mats);
    float *sc = malloc((size_t)(mats * n) * sizeof *sc);
    if (!sc) return qb_fail(ctx, QB_ERR_NOMEM, "analysis: out of memory for the importance");
    for (int64_t m = 0; m < mats; m++) {
        const float *w = o->importance + m * n;
        double sum = 0; /* in order, in double: n equal weights sum exactly, so w̄ = w and s = 1 */
        for (int64_t j = 0; j < n; j++) {
            if (!isfinite(w[j]) || w[j] < 0) {
                free(sc);
                return qb_fail(ctx, QB_ERR_ARG, "analysis: importance of column %lld (matrix %lld) is %g (finite, >= 0 expected)",
                               (long long)j, (long long)m, (double)w[j]);
            }
            sum += w[j];
        }
        const double mean = sum / (double)n;
        for (int64_t j = 0; j < n; j++) sc[m * n + j] = sum > 0 ? (float)sqrt(w[j] / mean) : 1.0f;
    }
    *scale = sc;
    *rows_per_mat = rows / mats;
    return QB_OK;
}

/* Whether sc remembers the mapping's originals of this source, shape, range and point count. */
static bool map_known(const qb_analysis_scratch *sc, const float *src, int64_t rows, int64_t n, int points, double lo,
                      double hi)
{
    return sc && sc->map.map_idx && sc->map.src == src && sc->map.rows == rows && sc->map.n == n &&
           sc->map.points == points && sc->map.lo == lo && sc->map.hi == hi;
}

/* Keep the flat indices of the points − 1 interval minima in sc (nothing when sc is NULL or
 * out of memory: the next analysis filters again). */
static void map_remember(qb_analysis_scratch *sc, const float *src, int64_t rows, int64_t n, int points, double lo,
                         double hi, const qb_map_pt *best)
{
    if (!sc) return;
    free(sc->map.map_idx);
    sc->map.map_idx = malloc((size_t)(points - 1) * sizeof *sc->map.map_idx);
    if (!sc->map.map_idx) return;
    for (int i = 0; i < points - 1; i++) sc->map.map_idx[i] = best[i].idx;
    sc->map.src = src;
    sc->map.rows = rows;
    sc->map.n = n;
    sc->map.points = points;
    sc->map.lo = lo;
    sc->map.hi = hi;
}

/* The interval minima sc remembers, each with its dequantized value from s (buf: n floats,
 * unless s has the dequantized matrix): what the filtering pass would give, without it. */
static void map_recall(const qb_analysis_scratch *sc, const float *src, const qb_row_source *s, int points,
                       qb_map_pt *best, float *buf)
{
    const int64_t n = s->n;
    for (int i = 0; i < points - 1; i++) {
        const int64_t idx = sc->map.map_idx[i];
        if (idx < 0) continue;
        const float *y = qb_rows_of(s, idx / n, 1, buf);
        best[i] = (qb_map_pt){src[idx], y[idx % n], idx};
    }
}

/* Everything but the quantization: statistics, histograms and mapping of the rows of s
 * against src; with s->scale, the weighted view too (wracc: rows more sums). */
static qb_status measure(qb_ctx *ctx, const qb_format *f, const float *src, const qb_row_source *s, int64_t rows,
                         const qb_analysis_opts *op, int nt, acc *racc, acc *wracc, qb_map_pt *best, qb_analysis *out,
                         const row_quant *rq)
{
    const qb_analysis_opts o = *op;
    const int64_t n = s->n, count = rows * n;
    qb_status st;
    /* pass 1: per-row sums and ranges */
    bool failed = false;
    if (!row_sums(src, s, rows, nt, o.cancel, racc, s->scale ? wracc : NULL, rq, &failed)) {
        if (o.cancel && *o.cancel) return qb_fail(ctx, QB_ERR_CANCELLED, "analysis cancelled");
        if (failed) {
            char nm[48];
            qb_format_name(f, nm, sizeof nm);
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: no quantizer for this type", nm);
        }
        return qb_fail(ctx, QB_ERR_NOMEM, "analysis: out of memory for per-thread rows");
    }
    acc total;
    qb_err_acc_init(&total);
    for (int64_t r = 0; r < rows; r++) acc_merge(&total, &racc[r]);
    acc_finish(&total, count, &out->stats);
    out->stats.bpw = qb_format_bpw(f, n);
    out->stats.bytes_quant = (size_t)rows * qb_format_row_bytes(f, n);
    out->fmt = *f;
    acc wtotal;
    qb_err_acc_init(&wtotal);
    if (s->scale) {
        for (int64_t r = 0; r < rows; r++) acc_merge(&wtotal, &wracc[r]);
        acc_finish(&wtotal, count, &out->wstats);
        out->wstats.bpw = out->stats.bpw;
        out->wstats.bytes_quant = out->stats.bytes_quant;
        out->weighted = true;
    }

    /* pass 2: histograms and mapping */
    double lo = o.lo, hi = o.hi, elo = o.err_lo, ehi = o.err_hi;
    if (o.auto_range) {
        lo = fmin(total.xlo, total.ylo);
        hi = fmax(total.xhi, total.yhi);
        elo = total.elo;
        ehi = total.ehi;
        widen(&lo, &hi);
        widen(&elo, &ehi);
    }
    if ((st = qb_histogram_init(ctx, &out->hist_orig, o.bins, lo, hi)) ||
        (st = qb_histogram_init(ctx, &out->hist_deq, o.bins, lo, hi)) ||
        (st = qb_histogram_init(ctx, &out->hist_err, o.bins, elo, ehi)))
        return st;
    if (s->scale) {
        double wlo = o.err_lo, whi = o.err_hi;
        if (o.auto_range) {
            wlo = wtotal.elo;
            whi = wtotal.ehi;
            widen(&wlo, &whi);
        }
        if ((st = qb_histogram_init(ctx, &out->hist_werr, o.bins, wlo, whi))) return st;
    }
    const int nmap = o.map_points;
    for (int i = 0; i < nmap; i++) best[i].idx = -1;
    double mlo = total.xlo, mhi = total.xhi;
    const bool map_ok = nmap > 0 && mlo <= mhi; /* some original is a number */
    if (map_ok && !(mlo < mhi)) mhi = mlo + 1.0; /* constant tensor: one point */
    const int nbucket = map_ok && nmap > 1 ? nmap : 0;
    const bool known = nbucket && map_known(o.scratch, src, rows, n, nbucket, mlo, mhi);
    if (!qb_stats_hist_map(src, s, rows, nt, o.cancel, out, known ? 0 : nbucket, mlo, mhi, best)) {
        if (o.cancel && *o.cancel) return qb_fail(ctx, QB_ERR_CANCELLED, "analysis cancelled");
        return qb_fail(ctx, QB_ERR_NOMEM, "analysis: out of memory for per-thread histograms");
    }
    if (nmap > 0) {
        qb_map_pt last = {0, 0, -1};
        if (map_ok) {
            float *buf = s->deq ? NULL : malloc((size_t)n * sizeof *buf);
            if (!s->deq && !buf) return qb_fail(ctx, QB_ERR_NOMEM, "analysis: out of memory for a row");
            if (known) map_recall(o.scratch, src, s, nbucket, best, buf);
            else if (nbucket) map_remember(o.scratch, src, rows, n, nbucket, mlo, mhi, best);
            last = find_last(src, s, rows, racc, total.xhi, buf);
            free(buf);
        }
        if ((st = build_map(ctx, out, best, map_ok && nmap > 1 ? nmap : 1, last))) return st;
    }
    return QB_OK;
}

qb_status qb_quant_analyze(qb_ctx *ctx, const qb_format *f, const float *src, int64_t rows, int64_t n,
                           const qb_analysis_opts *opts, qb_analysis *out)
{
    if (!out) return qb_fail(ctx, QB_ERR_ARG, "qb_quant_analyze: no output");
    memset(out, 0, sizeof *out);
    qb_status st = qb_format_check(ctx, f, n);
    if (st) return st;
    if (rows <= 0 || !src) return qb_fail(ctx, QB_ERR_ARG, "qb_quant_analyze: empty tensor (%lld rows)", (long long)rows);
    qb_analysis_opts o;
    if ((st = check_opts(ctx, opts, &o))) return st;

    float *scale;
    int64_t rpm;
    if ((st = importance_scales(ctx, &o, rows, n, &scale, &rpm))) return st;

    const int nt = thread_count(ctx);
    const size_t rb = qb_format_row_bytes(f, n);
    qb_analysis_scratch local = {0}, *sc = o.scratch ? o.scratch : &local;
    uint8_t *q = scratch_get(&sc->q, &sc->q_cap, (size_t)rows * rb);
    acc *racc = scratch_get(&sc->rows, &sc->rows_cap, (size_t)rows * (scale ? 2 : 1) * sizeof *racc);
    qb_map_pt *best = o.map_points > 0 ? malloc((size_t)o.map_points * sizeof *best) : NULL;
    if (!q || !racc || (o.map_points > 0 && !best)) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "analysis: out of memory for %lld x %lld values", (long long)rows, (long long)n);
        goto fail;
    }
    /* rows that quantize on their own are quantized by the first pass, group by group */
    const bool on_the_fly = qb_format_row_local(f);
    const row_quant rq = {q, scale && o.quantize_weighted ? o.importance : NULL, rpm};
    if (on_the_fly) {
        if (o.cancel && *o.cancel) st = qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");
    } else if (scale && o.quantize_weighted) { /* each matrix with its own weights */
        for (int64_t r0 = 0; r0 < rows && !st; r0 += rpm)
            st = qb_quantize_matrix_w(ctx, f, src + r0 * n, rpm, n, q + (size_t)r0 * rb, o.importance + (r0 / rpm) * n,
                                      o.cancel);
    } else {
        st = qb_quantize_matrix(ctx, f, src, rows, n, q, o.cancel);
    }
    if (st) goto fail;
    const qb_row_source s = {f, q, rb, NULL, n, scale, rpm};
    st = measure(ctx, f, src, &s, rows, &o, nt, racc, racc + rows, best, out, on_the_fly ? &rq : NULL);
    if (st) goto fail;
    qb_analysis_scratch_free(&local);
    free(best);
    free(scale);
    return QB_OK;

fail:
    qb_analysis_scratch_free(&local);
    free(best);
    free(scale);
    qb_analysis_free(out);
    return st;
}

qb_status qb_quant_analyze_given(qb_ctx *ctx, const qb_format *f, const float *src, const float *deq, int64_t rows,
                                 int64_t n, const qb_analysis_opts *opts, qb_analysis *out)
{
    if (!out) return qb_fail(ctx, QB_ERR_ARG, "qb_quant_analyze_given: no output");
    memset(out, 0, sizeof *out);
    qb_status st = qb_format_check(ctx, f, n);
    if (st) return st;
    if (rows <= 0 || !src || !deq)
        return qb_fail(ctx, QB_ERR_ARG, "qb_quant_analyze_given: empty tensor (%lld rows)", (long long)rows);
    qb_analysis_opts o;
    if ((st = check_opts(ctx, opts, &o))) return st;
    float *scale;
    int64_t rpm;
    if ((st = importance_scales(ctx, &o, rows, n, &scale, &rpm))) return st;
    acc *racc = malloc((size_t)rows * (scale ? 2 : 1) * sizeof *racc);
    qb_map_pt *best = o.map_points > 0 ? malloc((size_t)o.map_points * sizeof *best) : NULL;
    const qb_row_source s = {f, NULL, 0, deq, n, scale, rpm};
    if (!racc || (o.map_points > 0 && !best))
        st = qb_fail(ctx, QB_ERR_NOMEM, "analysis: out of memory for %lld x %lld values", (long long)rows, (long long)n);
    else
        st = measure(ctx, f, src, &s, rows, &o, thread_count(ctx), racc, racc + rows, best, out, NULL);
    free(racc);
    free(best);
    free(scale);
    if (st) qb_analysis_free(out);
    return st;
}

void qb_analysis_scratch_free(qb_analysis_scratch *s)
{
    if (!s) return;
    free(s->q);
    free(s->rows);
    free(s->map.map_idx);
    memset(s, 0, sizeof *s);
}
