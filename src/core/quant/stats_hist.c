/* stats_hist.c — the second pass of the analysis (stats.c): the three histograms (original,
 * dequantized, error), the weighted error's when the rows carry importance scales, and the
 * mapping's bucket minima, over all rows in parallel.
 *
 * Each thread dequantizes a group of rows when it reaches them, takes slots from the kernels
 * (hist_slots2: one joint original × dequantized slot and an error slot per value) and counts
 * them in tables of its own; mapping candidates come from map_filter (values below their
 * bucket's current minimum). Counts are added and candidates merged by a total order at the
 * end, so the results do not depend on the thread count. */
#include "stats_pass.h"

#include <math.h>
#include <string.h>

/* Lanes of per-thread counts: consecutive values go to different copies of the bins, so runs
 * of values in one bin do not wait on each other's increments. */
enum { HIST_LANES = 4 };
/* Largest joint (original, dequantized) table of 32-bit counts per thread (bins <= 512, the
 * most the workbench asks for): one increment counts a value in both histograms. A value's
 * dequantized image lies near it, so the pairs fall in a band around the diagonal and the
 * lines touched stay few whatever the table's size (the workbench's 100-odd bins had taken
 * the three separate counts, a third of the second pass). */
enum { JOINT_BYTES = 515 * 515 * 4 };

/* A thread's counts. Slots (kernels.h): 0 under, 1..bins, bins + 1 over, bins + 2
 * NaN; stride = bins + 3 per histogram. joint: orig × deq pairs in u32 (flushed into the
 * per-slot sums before they could overflow), else orig and deq per slot and lane. */
typedef struct {
    bool joint;
    size_t stride;
    uint32_t *pair;     /* joint: stride × stride */
    uint64_t pending;   /* joint: values counted in pair since the last flush */
    uint64_t *od;       /* [orig, deq][HIST_LANES][stride] (joint: lane 0 only) */
    uint64_t *err;      /* [HIST_LANES][stride] */
    uint64_t *werr;     /* [HIST_LANES][stride] the scaled error's (weighted only) */
    float *xs, *ys;     /* a batch's scaled values (weighted only) */
    uint32_t *s1, *s2;  /* slot batches */
    qb_map_pt *mine;    /* mapping candidates per bucket */
    float *bx;          /* mine[b].x, +inf while empty */
    int32_t *cand;      /* a batch's candidate indices */
} counts;

static void counts_free(counts *c)
{
    free(c->pair);
    free(c->od);
    free(c->err);
    free(c->werr);
    free(c->xs);
    free(c->ys);
    free(c->s1);
    free(c->s2);
    free(c->mine);
    free(c->bx);
    free(c->cand);
}

static bool counts_init(counts *c, int bins, int nmap, bool weighted)
{
    memset(c, 0, sizeof *c);
    c->stride = (size_t)bins + 3;
    c->joint = c->stride * c->stride * sizeof(uint32_t) <= JOINT_BYTES;
    c->pair = c->joint ? calloc(c->stride * c->stride, sizeof *c->pair) : NULL;
    c->od = calloc(2 * HIST_LANES * c->stride, sizeof *c->od);
    c->err = calloc(HIST_LANES * c->stride, sizeof *c->err);
    c->s1 = malloc(QB_SLOT_CHUNK * sizeof *c->s1);
    c->s2 = malloc(QB_SLOT_CHUNK * sizeof *c->s2);
    if (weighted) {
        c->werr = calloc(HIST_LANES * c->stride, sizeof *c->werr);
        c->xs = malloc(QB_SLOT_CHUNK * sizeof *c->xs);
        c->ys = malloc(QB_SLOT_CHUNK * sizeof *c->ys);
    }
    if (nmap > 1) {
        c->mine = malloc((size_t)nmap * sizeof *c->mine);
        c->bx = malloc((size_t)nmap * sizeof *c->bx);
        c->cand = malloc(QB_SLOT_CHUNK * sizeof *c->cand);
        for (int i = 0; c->mine && c->bx && i < nmap; i++) {
            c->mine[i].idx = -1;
            c->bx[i] = INFINITY;
        }
    }
    return (!c->joint || c->pair) && c->od && c->err && c->s1 && c->s2 && (!weighted || (c->werr && c->xs && c->ys)) &&
           (nmap <= 1 || (c->mine && c->bx && c->cand));
}

/* Add the joint table into the per-slot sums (lane 0) and clear it. */
static void flush_pairs(counts *c)
{
    const size_t st = c->stride;
    uint64_t *o = c->od, *d = c->od + HIST_LANES * st;
    for (size_t a = 0; a < st; a++)
        for (size_t b = 0; b < st; b++) {
            const uint32_t v = c->pair[a * st + b];
            o[a] += v;
            d[b] += v;
        }
    memset(c->pair, 0, st * st * sizeof *c->pair);
    c->pending = 0;
}

/* Count len slots into HIST_LANES copies of a histogram's slots, stride apart. */
static inline void count_lanes(uint64_t *c, size_t stride, const uint32_t *slot, int len)
{
    uint64_t *c0 = c, *c1 = c + stride, *c2 = c + 2 * stride, *c3 = c + 3 * stride;
    int i = 0;
    for (; i + 4 <= len; i += 4) {
        c0[slot[i]]++;
        c1[slot[i + 1]]++;
        c2[slot[i + 2]]++;
        c3[slot[i + 3]]++;
    }
    for (; i < len; i++) c0[slot[i]]++;
}

/* The three histograms of len values x against y. */
static void count_values(const qb_kernel_table *k, counts *c, const float *x, const float *y, int len,
                         const qb_bin_grid *gv, const qb_bin_grid *ge)
{
    const size_t st = c->stride;
    if (c->joint) {
        if (c->pending + (uint64_t)len > UINT32_MAX) flush_pairs(c);
        c->pending += (uint64_t)len;
        k->hist_slots2(len, x, y, gv, ge, c->s1, c->s2);
        uint32_t *pair = c->pair;
        for (int i = 0; i < len; i++) pair[c->s1[i]]++;
    } else {
        k->hist_slots(len, x, NULL, gv, c->s1);
        count_lanes(c->od, st, c->s1, len);
        k->hist_slots(len, y, NULL, gv, c->s1);
        k->hist_slots(len, x, y, ge, c->s2);
        count_lanes(c->od + HIST_LANES * st, st, c->s1, len);
    }
    count_lanes(c->err, st, c->s2, len);
}

/* Mapping candidates among len originals x (flat index of x[0]: idx0; dequantized y): the
 * kernel passes the values below their bucket's current minimum. An equal value never wins
 * here: a thread visits flat indices in increasing order (rows ascending in a group, groups in
 * a chunk, and chunks by the monotonic schedule), so the minimum it holds has the lower index;
 * threads' candidates meet in map_better's total order. */
static void map_values(const qb_kernel_table *k, counts *c, const float *x, const float *y, int len, int64_t idx0,
                       const qb_bin_grid *gm)
{
    const int nc = k->map_filter(len, x, gm, c->bx, c->cand);
    for (int j = 0; j < nc; j++) {
        const int i = c->cand[j];
        uint32_t s;
        k->hist_slots(1, x + i, NULL, gm, &s);
        const qb_map_pt p = {x[i], y[i], idx0 + i};
        if (qb_map_better(&p, &c->mine[s - 1])) {
            c->mine[s - 1] = p;
            c->bx[s - 1] = p.x;
        }
    }
}

/* Contract (stats_pass.h). */
bool qb_stats_hist_map(const float *x, const qb_row_source *s, int64_t rows, int nt, const volatile int *cancel,
                       qb_analysis *a, int nmap, double mlo, double mhi, qb_map_pt *best)
{
    const qb_kernel_table *k = qb_kernels();
    const int64_t n = s->n, ng = (rows + QB_STATS_GROUP - 1) / QB_STATS_GROUP;
    const int bins = a->hist_orig.bins;
    const qb_bin_grid gv = {a->hist_orig.lo, a->hist_orig.hi, (double)bins / (a->hist_orig.hi - a->hist_orig.lo), bins};
    const qb_bin_grid ge = {a->hist_err.lo, a->hist_err.hi, (double)bins / (a->hist_err.hi - a->hist_err.lo), bins};
    const qb_histogram *hw = &a->hist_werr;
    const qb_bin_grid gw = {hw->lo, hw->hi, s->scale ? (double)bins / (hw->hi - hw->lo) : 0.0, bins};
    const qb_bin_grid gm = {mlo, mhi, nmap > 1 ? (double)(nmap - 1) / (mhi - mlo) : 0.0, nmap > 1 ? nmap - 1 : 1};
    bool ok = true;
#pragma omp parallel num_threads(nt)
    {
        bool have = true;
        float *buf = qb_row_buffer(s, rows, &have);
        counts c;
        if (!counts_init(&c, bins, nmap, s->scale != NULL)) have = false;
#pragma omp for schedule(monotonic : dynamic, 4)
        for (int64_t g = 0; g < ng; g++) {
            if (!have || (cancel && *cancel)) continue;
            const int64_t r0 = g * QB_STATS_GROUP;
            const int nr = (int)(rows - r0 < QB_STATS_GROUP ? rows - r0 : QB_STATS_GROUP);
            const float *y = qb_rows_of(s, r0, nr, buf);
            for (int r = 0; r < nr; r++)
                for (int64_t i0 = 0; i0 < n; i0 += QB_SLOT_CHUNK) {
                    const int len = (int)(n - i0 < QB_SLOT_CHUNK ? n - i0 : QB_SLOT_CHUNK);
                    const float *xr = x + (r0 + r) * n + i0, *yr = y + r * n + i0;
                    qb_prefetch(xr + len, QB_SLOT_CHUNK * sizeof *xr); /* the next batch: rows are contiguous */
                    count_values(k, &c, xr, yr, len, &gv, &ge);
                    if (s->scale) { /* the scaled error: x̃ − x̂̃ */
                        const float *sc = qb_row_scale(s, r0 + r) + i0;
                        k->mul_f32(len, xr, sc, c.xs);
                        k->mul_f32(len, yr, sc, c.ys);
                        k->hist_slots(len, c.xs, c.ys, &gw, c.s2);
                        count_lanes(c.werr, c.stride, c.s2, len);
                    }
                    if (nmap > 1) map_values(k, &c, xr, yr, len, (r0 + r) * n + i0, &gm);
                }
        }
        if (have && c.joint) flush_pairs(&c);
#pragma omp critical(qb_stats_merge)
        {
            if (!have) {
                ok = false;
            } else {
                qb_histogram *h[4] = {&a->hist_orig, &a->hist_deq, &a->hist_err, &a->hist_werr};
                const uint64_t *src[4] = {c.od, c.od + HIST_LANES * c.stride, c.err, c.werr};
                for (int t = 0; t < (s->scale ? 4 : 3); t++)
                    for (int l = 0; l < HIST_LANES; l++) {
                        /* slot 0: under, 1..bins: the bins, bins + 1: over */
                        const uint64_t *cl = src[t] + (size_t)l * c.stride;
                        h[t]->under += cl[0];
                        for (int i = 0; i < bins; i++) h[t]->counts[i] += cl[1 + i];
                        h[t]->over += cl[bins + 1];
                    }
                for (int i = 0; i < nmap - 1; i++)
                    if (c.mine[i].idx >= 0 && qb_map_better(&c.mine[i], &best[i])) best[i] = c.mine[i];
            }
        }
        free(buf);
        counts_free(&c);
    }
    return ok && !(cancel && *cancel);
}
