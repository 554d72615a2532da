/* stats_ref.c — the analysis kernels' spec (kernels.h: err_rows, hist_slots, map_filter,
 * mul_f32): a row's running error sums in double, element by element, the histogram slot of
 * each value, and the element-wise product that scales rows by their columns' importance. Vector
 * versions (stats_avx2.c, stats_avx512.c) reproduce these numbers bit for bit. */
#include "kernels.h"

#include <math.h>

/* min / max ignoring a NaN in b (fminf / fmaxf are libm calls in hot loops) */
static inline float min_f(float a, float b) { return b < a ? b : a; }
static inline float max_f(float a, float b) { return b > a ? b : a; }

void qb_err_acc_init(qb_err_acc *a)
{
    *a = (qb_err_acc){0};
    a->xlo = a->ylo = a->elo = INFINITY;
    a->xhi = a->yhi = a->ehi = -INFINITY;
}

/* Contract (kernels.h): for each element, in order, with xv = x, yv = y in double and
 * e = xv − yv: sxx += xv·xv, see += e·e, sxy += xv·yv, syy += yv·yv, sae += |e|,
 * maxe = |e| when |e| > maxe; the f32 ranges take x, y and x − y (f32). */
void qb_err_rows_ref(int n, const float *x, size_t ldx, const float *y, size_t ldy, int nr, qb_err_acc *acc)
{
    for (int r = 0; r < nr; r++) {
        const float *xr = x + (size_t)r * ldx, *yr = y + (size_t)r * ldy;
        qb_err_acc a = acc[r];
        for (int i = 0; i < n; i++) {
            const double xv = xr[i], yv = yr[i], e = xv - yv;
            a.sxx += xv * xv;
            a.see += e * e;
            a.sxy += xv * yv;
            a.syy += yv * yv;
            a.sae += fabs(e);
            if (fabs(e) > a.maxe) a.maxe = fabs(e);
            const float ef = xr[i] - yr[i];
            a.xlo = min_f(a.xlo, xr[i]);
            a.xhi = max_f(a.xhi, xr[i]);
            a.ylo = min_f(a.ylo, yr[i]);
            a.yhi = max_f(a.yhi, yr[i]);
            a.elo = min_f(a.elo, ef);
            a.ehi = max_f(a.ehi, ef);
        }
        acc[r] = a;
    }
}

/* The slot of v on g (kernels.h, hist_slots). */
static uint32_t slot_of(double v, const qb_bin_grid *g)
{
    const int bins = g->bins;
    if (v < g->lo) return 0;
    if (v > g->hi) return (uint32_t)bins + 1;
    if (v != v) return (uint32_t)bins + 2;
    const double t = (v - g->lo) * g->k;
    return 1 + (uint32_t)(t < bins ? (int)t : bins - 1);
}

void qb_hist_slots_ref(int n, const float *a, const float *b, const qb_bin_grid *g, uint32_t *slot)
{
    for (int i = 0; i < n; i++) slot[i] = slot_of(b ? a[i] - b[i] : a[i], g);
}

void qb_hist_slots2_ref(int n, const float *x, const float *y, const qb_bin_grid *g, const qb_bin_grid *ge,
                        uint32_t *sxy, uint32_t *se)
{
    const uint32_t stride = (uint32_t)g->bins + 3;
    for (int i = 0; i < n; i++) {
        sxy[i] = slot_of(x[i], g) * stride + slot_of(y[i], g);
        se[i] = slot_of(x[i] - y[i], ge);
    }
}

int qb_map_filter_ref(int n, const float *x, const qb_bin_grid *g, const float *bx, int32_t *idx)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        const uint32_t s = slot_of(x[i], g);
        if (s >= 1 && s <= (uint32_t)g->bins && x[i] < bx[s - 1]) idx[k++] = i;
    }
    return k;
}

void qb_mul_f32_ref(int n, const float *a, const float *b, float *out)
{
    for (int i = 0; i < n; i++) out[i] = a[i] * b[i];
}
