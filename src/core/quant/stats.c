/* stats.c — what the plots and metrics are made of: quantize a tensor to a format, dequantize
 * it, and measure the error (MSE, RMSE, max / mean |error|, SQNR, cosine), three histograms
 * (original, dequantized, error) and the original → dequantized mapping points.
 *
 * Parallel over rows with OpenMP. Sums are kept per row (in double) and added in row order
 * afterwards, histogram counts per thread and merged, mapping candidates per thread and merged
 * by a total order: the results do not depend on the thread count or on which thread took
 * which rows (rows are handed out dynamically, so a thread the OS delays does not hold up the
 * others on a busy machine). Nothing inside a parallel
 * region touches ctx or anything shared that is not a per-thread or per-row slot. */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define DEFAULT_BINS 64
#define MAX_BINS (1 << 20)
#define MAX_MAP_POINTS (1 << 20)

/* min / max ignoring a NaN in b (fminf / fmaxf are libm calls in hot loops) */
static inline float min_f(float a, float b) { return b < a ? b : a; }
static inline float max_f(float a, float b) { return b > a ? b : a; }

/* Running sums of one row (or chunk): Σx², Σe², Σx·x̂, Σx̂², Σ|e|, max |e|, and the ranges. */
typedef struct {
    double sxx, see, sxy, syy, sae, maxe;
    float xlo, xhi, ylo, yhi, elo, ehi;
} acc;

static void acc_init(acc *a)
{
    memset(a, 0, sizeof *a);
    a->xlo = a->ylo = a->elo = INFINITY;
    a->xhi = a->yhi = a->ehi = -INFINITY;
}

static void acc_add(acc *a, const float *x, const float *y, int64_t n)
{
    double sxx = 0, see = 0, sxy = 0, syy = 0, sae = 0, maxe = a->maxe;
    float xlo = a->xlo, xhi = a->xhi, ylo = a->ylo, yhi = a->yhi, elo = a->elo, ehi = a->ehi;
    for (int64_t i = 0; i < n; i++) {
        const double xv = x[i], yv = y[i], e = xv - yv;
        sxx += xv * xv;
        see += e * e;
        sxy += xv * yv;
        syy += yv * yv;
        sae += fabs(e);
        if (fabs(e) > maxe) maxe = fabs(e);
        const float ef = x[i] - y[i];
        xlo = min_f(xlo, x[i]);
        xhi = max_f(xhi, x[i]);
        ylo = min_f(ylo, y[i]);
        yhi = max_f(yhi, y[i]);
        elo = min_f(elo, ef);
        ehi = max_f(ehi, ef);
    }
    a->sxx += sxx;
    a->see += see;
    a->sxy += sxy;
    a->syy += syy;
    a->sae += sae;
    a->maxe = maxe;
    a->xlo = xlo, a->xhi = xhi, a->ylo = ylo, a->yhi = yhi, a->elo = elo, a->ehi = ehi;
}

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
    acc total;
    acc_init(&total);
    acc *part = nc > 1 ? malloc((size_t)nc * sizeof *part) : NULL;
    if (part) {
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < nc; c++) {
            acc_init(&part[c]);
            const int64_t i0 = c * CHUNK, len = i0 + CHUNK < n ? CHUNK : n - i0;
            acc_add(&part[c], x + i0, xq + i0, len);
        }
        for (int64_t c = 0; c < nc; c++) acc_merge(&total, &part[c]);
        free(part);
    } else {
        acc_add(&total, x, xq, n > 0 ? n : 0); /* one chunk, or no memory for the split */
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

/* The bin of x in [lo, hi] (k = bins / (hi − lo)); under/over/NaN as qb_histogram says:
 * -1 under, bins over, bins + 1 NaN. */
static inline int bin_of(double x, double lo, double hi, double k, int bins)
{
    if (x < lo) return -1;
    if (x > hi) return bins;
    if (x != x) return bins + 1;
    const int b = (int)((x - lo) * k);
    return b < bins ? b : bins - 1;
}

/* Add n values to counts (bins entries over [lo, hi]); NaNs are skipped. */
static void hist_count(uint64_t *counts, int bins, double lo, double hi, uint64_t *under, uint64_t *over,
                       const float *v, int64_t n)
{
    const double k = (double)bins / (hi - lo);
    uint64_t u = 0, o = 0; /* locals: *under may alias counts, which would keep them in memory */
    for (int64_t i = 0; i < n; i++) {
        const int b = bin_of(v[i], lo, hi, k, bins);
        if (b < 0) u++;
        else if (b == bins) o++;
        else if (b < bins) counts[b]++;
    }
    *under += u;
    *over += o;
}

/* Lanes of per-thread counts in hist_and_map: consecutive values go to different copies of
 * the bins, so runs of values in one bin do not wait on each other's increments. */
enum { HIST_LANES = 4 };

void qb_histogram_add(qb_histogram *h, const float *v, int64_t n)
{
    if (!h->counts || n <= 0) return;
    hist_count(h->counts, h->bins, h->lo, h->hi, &h->under, &h->over, v, n);
}

void qb_histogram_free(qb_histogram *h)
{
    free(h->counts);
    memset(h, 0, sizeof *h);
}

/* ---- analysis ------------------------------------------------------------------------- */

/* A mapping candidate: the smallest original in one value bucket, with its dequantized value
 * and flat index (ties between equal originals go to the lower index: deterministic). */
typedef struct {
    float x, y;
    int64_t idx;
} map_pt;

static bool map_better(const map_pt *a, const map_pt *b) /* a precedes b */
{
    return b->idx < 0 || a->x < b->x || (a->x == b->x && a->idx < b->idx);
}

void qb_analysis_free(qb_analysis *a)
{
    if (!a) return;
    qb_histogram_free(&a->hist_orig);
    qb_histogram_free(&a->hist_deq);
    qb_histogram_free(&a->hist_err);
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

/* Histograms and mapping candidates over all rows, in parallel. Returns false on a per-thread
 * allocation failure. */
static bool hist_and_map(const float *x, const float *y, int64_t rows, int64_t n, int nt, qb_analysis *a,
                         int nmap, double mlo, double mhi, map_pt *best)
{
    bool ok = true;
    const int bins = a->hist_orig.bins;
    const int stride = bins + 3; /* per lane: under, the bins, over, NaN (not counted) */
    const double mk = nmap > 1 ? (double)(nmap - 1) / (mhi - mlo) : 0.0;
    const double lo = a->hist_orig.lo, hi = a->hist_orig.hi, k = (double)bins / (hi - lo);
    const double elo = a->hist_err.lo, ehi = a->hist_err.hi, ek = (double)bins / (ehi - elo);
#pragma omp parallel num_threads(nt)
    {
        /* [hist][lane][stride]: orig, deq, err */
        uint64_t *c = calloc((size_t)stride * HIST_LANES * 3, sizeof *c);
        map_pt *mine = nmap > 0 ? malloc((size_t)nmap * sizeof *mine) : NULL;
        const bool have = c && (nmap == 0 || mine);
        if (mine)
            for (int i = 0; i < nmap; i++) mine[i].idx = -1;
        uint64_t *co = c, *cd = c ? c + (size_t)stride * HIST_LANES : NULL, *ce = c ? c + (size_t)stride * HIST_LANES * 2 : NULL;
#pragma omp for schedule(dynamic, 64)
        for (int64_t r = 0; r < rows; r++) {
            if (!have) continue;
            const float *xr = x + r * n, *yr = y + r * n;
            for (int64_t i = 0; i < n; i++) {
                const size_t lane = (size_t)(i & (HIST_LANES - 1)) * (size_t)stride;
                const float e = xr[i] - yr[i];
                co[lane + (size_t)(bin_of(xr[i], lo, hi, k, bins) + 1)]++;
                cd[lane + (size_t)(bin_of(yr[i], lo, hi, k, bins) + 1)]++;
                ce[lane + (size_t)(bin_of(e, elo, ehi, ek, bins) + 1)]++;
            }
            for (int64_t i = 0; nmap > 1 && i < n; i++) {
                const double v = xr[i];
                if (!(v >= mlo && v <= mhi)) continue;
                int b = (int)((v - mlo) * mk);
                if (b > nmap - 2) b = nmap - 2;
                map_pt p = {xr[i], yr[i], r * n + i};
                if (map_better(&p, &mine[b])) mine[b] = p;
            }
        }
#pragma omp critical(qb_stats_merge)
        {
            if (!have) {
                ok = false;
            } else {
                qb_histogram *h[3] = {&a->hist_orig, &a->hist_deq, &a->hist_err};
                for (int t = 0; t < 3; t++)
                    for (int l = 0; l < HIST_LANES; l++) {
                        /* slot 0: under (bin -1), 1..bins: the bins, bins + 1: over */
                        const uint64_t *src = c + ((size_t)t * HIST_LANES + (size_t)l) * (size_t)stride;
                        h[t]->under += src[0];
                        for (int i = 0; i < bins; i++) h[t]->counts[i] += src[1 + i];
                        h[t]->over += src[bins + 1];
                    }
                for (int i = 0; i < nmap; i++)
                    if (mine[i].idx >= 0 && map_better(&mine[i], &best[i])) best[i] = mine[i];
            }
        }
        free(c);
        free(mine);
    }
    return ok;
}

/* The mapping from the bucket minima: points ascending in x, duplicates of the last point
 * (the largest original, a bucket minimum too) dropped. */
static qb_status build_map(qb_ctx *ctx, qb_analysis *a, map_pt *best, int nmap, map_pt last)
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

/* The largest original (first index among equals) and its dequantized value. */
static map_pt find_last(const float *x, const float *y, int64_t count, float xmax)
{
    map_pt p = {0, 0, -1};
    for (int64_t i = 0; i < count; i++)
        if (x[i] == xmax) {
            p.x = x[i], p.y = y[i], p.idx = i;
            break;
        }
    return p;
}

/* A buffer of at least need bytes in *p (capacity *cap), grown (contents dropped) when too
 * small; NULL when out of memory (then *p is freed and *cap 0). */
static void *scratch_get(void **p, size_t *cap, size_t need)
{
    if (*p && *cap >= need) return *p;
    free(*p);
    *p = malloc(need ? need : 1);
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

static qb_status measure(qb_ctx *ctx, const qb_format *f, const float *src, const float *y, int64_t rows, int64_t n,
                         const qb_analysis_opts *op, int nt, acc *racc, map_pt *best, qb_analysis *out);

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

    const int nt = thread_count(ctx);
    const size_t rb = qb_format_row_bytes(f, n);
    const int64_t count = rows * n;
    qb_analysis_scratch local = {0}, *sc = o.scratch ? o.scratch : &local;
    uint8_t *q = scratch_get(&sc->q, &sc->q_cap, (size_t)rows * rb);
    float *y = scratch_get((void **)&sc->y, &sc->y_cap, (size_t)count * sizeof *y);
    acc *racc = scratch_get(&sc->rows, &sc->rows_cap, (size_t)rows * sizeof *racc);
    map_pt *best = o.map_points > 0 ? malloc((size_t)o.map_points * sizeof *best) : NULL;
    if (!q || !y || !racc || (o.map_points > 0 && !best)) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "analysis: out of memory for %lld x %lld values", (long long)rows, (long long)n);
        goto fail;
    }
    st = qb_quantize_matrix(ctx, f, src, rows, n, q, o.cancel);
    if (st) goto fail;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 64)
    for (int64_t r = 0; r < rows; r++) qb_dequantize_row(f, q + (size_t)r * rb, y + r * n, n);
    st = measure(ctx, f, src, y, rows, n, &o, nt, racc, best, out);
    if (st) goto fail;
    qb_analysis_scratch_free(&local);
    free(best);
    return QB_OK;

fail:
    qb_analysis_scratch_free(&local);
    free(best);
    qb_analysis_free(out);
    return st;
}

/* Everything but the quantization: statistics, histograms and mapping of y against src. */
static qb_status measure(qb_ctx *ctx, const qb_format *f, const float *src, const float *y, int64_t rows, int64_t n,
                         const qb_analysis_opts *op, int nt, acc *racc, map_pt *best, qb_analysis *out)
{
    const qb_analysis_opts o = *op;
    const int64_t count = rows * n;
    qb_status st;
    /* pass 1: per-row sums and ranges */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 64)
    for (int64_t r = 0; r < rows; r++) {
        acc_init(&racc[r]);
        acc_add(&racc[r], src + r * n, y + r * n, n);
    }
    if (o.cancel && *o.cancel) {
        return qb_fail(ctx, QB_ERR_CANCELLED, "analysis cancelled");
    }
    acc total;
    acc_init(&total);
    for (int64_t r = 0; r < rows; r++) acc_merge(&total, &racc[r]);
    acc_finish(&total, count, &out->stats);
    out->stats.bpw = qb_format_bpw(f, n);
    out->stats.bytes_quant = (size_t)rows * qb_format_row_bytes(f, n);
    out->fmt = *f;

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
    const int nmap = o.map_points;
    for (int i = 0; i < nmap; i++) best[i].idx = -1;
    double mlo = total.xlo, mhi = total.xhi;
    const bool map_ok = nmap > 0 && mlo <= mhi; /* some original is a number */
    if (map_ok && !(mlo < mhi)) mhi = mlo + 1.0; /* constant tensor: one point */
    if (!hist_and_map(src, y, rows, n, nt, out, map_ok && nmap > 1 ? nmap : 0, mlo, mhi, best)) {
        return qb_fail(ctx, QB_ERR_NOMEM, "analysis: out of memory for per-thread histograms");
    }
    if (nmap > 0) {
        map_pt last = map_ok ? find_last(src, y, count, total.xhi) : (map_pt){0, 0, -1};
        if ((st = build_map(ctx, out, best, map_ok && nmap > 1 ? nmap : 1, last))) return st;
    }
    return QB_OK;
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
    acc *racc = malloc((size_t)rows * sizeof *racc);
    map_pt *best = o.map_points > 0 ? malloc((size_t)o.map_points * sizeof *best) : NULL;
    if (!racc || (o.map_points > 0 && !best))
        st = qb_fail(ctx, QB_ERR_NOMEM, "analysis: out of memory for %lld x %lld values", (long long)rows, (long long)n);
    else
        st = measure(ctx, f, src, deq, rows, n, &o, thread_count(ctx), racc, best, out);
    free(racc);
    free(best);
    if (st) qb_analysis_free(out);
    return st;
}

void qb_analysis_scratch_free(qb_analysis_scratch *s)
{
    if (!s) return;
    free(s->q);
    free(s->y);
    free(s->rows);
    memset(s, 0, sizeof *s);
}
