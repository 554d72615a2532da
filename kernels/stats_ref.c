/* stats_ref.c — the analysis kernels' spec (kernels.h: err_rows, hist_slots): a row's running
 * error sums in double, element by element, and the histogram slot of each value. Vector
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

void qb_hist_slots_ref(int n, const float *a, const float *b, const qb_bin_grid *g, uint32_t *slot)
{
    const int bins = g->bins;
    for (int i = 0; i < n; i++) {
        const double v = b ? a[i] - b[i] : a[i];
        if (v < g->lo) {
            slot[i] = 0;
        } else if (v > g->hi) {
            slot[i] = (uint32_t)bins + 1;
        } else if (v != v) {
            slot[i] = (uint32_t)bins + 2;
        } else {
            const double t = (v - g->lo) * g->k;
            slot[i] = 1 + (uint32_t)(t < bins ? (int)t : bins - 1);
        }
    }
}
