/* fakequant.c — learnable INT quantization and its straight-through gradients (fakequant.h). */
#include "fakequant.h"
#include "grid.h"
#include "fmt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One group's grid: scale d, zero point z, the range (xmin, xmax) it was made for (after the
 * format's own adjustments) and what that range came from. */
typedef struct {
    float d, z, xmin, xmax;
    float mn, mx;   /* the group's minimum and maximum weight */
    bool clip_lo;   /* xmin = β·mn (so β has a gradient) */
    bool clip_hi;   /* xmax = α·mx */
} group_grid;

static int64_t group_len(const qb_format *f, int64_t n)
{
    if (f->kind != QB_FMT_INT) return 0;
    const int64_t g = f->group > 0 ? f->group : f->group == QB_GROUP_CHANNEL ? n : 0;
    return g > 0 && n % g == 0 ? g : 0;
}

int64_t qb_fq_groups(const qb_format *f, int64_t rows, int64_t n)
{
    const int64_t g = group_len(f, n);
    return g ? rows * (n / g) : 0;
}

static void make_grid(const qb_format *f, const float *w, int64_t g, float alpha, float beta, group_grid *G)
{
    float mn = INFINITY, mx = -INFINITY;
    for (int64_t i = 0; i < g; i++) {
        if (w[i] < mn) mn = w[i];
        if (w[i] > mx) mx = w[i];
    }
    if (mn > mx) mn = mx = 0.0f;
    const float lo = mn * beta, hi = mx * alpha;
    uint8_t hdr[16];
    qb_int_grid(f->bits, f->group > 0 ? f->group : 0, f->asym, lo, hi, &G->d, &G->z, hdr);
    G->mn = mn;
    G->mx = mx;
    G->xmin = fminf(lo, 0.0f);
    G->xmax = fmaxf(hi, 0.0f);
    G->clip_lo = lo < 0.0f;
    G->clip_hi = hi > 0.0f;
    if (G->xmin == 0.0f && G->xmax == 0.0f) G->clip_lo = G->clip_hi = false; /* the format's ±1 fallback */
}

static float code(const group_grid *G, float w, float v, float maxq)
{
    float t = G->d != 0.0f ? rintf(w / G->d + v) + G->z : G->z;
    if (!(t >= 0.0f)) t = 0.0f;
    return t > maxq ? maxq : t;
}

void qb_fq_forward(const qb_format *f, const float *w, int64_t rows, int64_t n, const float *v, const float *alpha,
                   const float *beta, float *wq)
{
    const int64_t g = group_len(f, n), ng = qb_fq_groups(f, rows, n);
    const float maxq = (float)((1 << f->bits) - 1);
#pragma omp parallel for schedule(static) if (rows * n > 65536)
    for (int64_t k = 0; k < ng; k++) {
        group_grid G;
        const float *wk = w + k * g;
        make_grid(f, wk, g, alpha[k], beta[k], &G);
        for (int64_t i = 0; i < g; i++) wq[k * g + i] = G.d * (code(&G, wk[i], v ? v[k * g + i] : 0.0f, maxq) - G.z);
    }
}

void qb_fq_backward(const qb_format *f, const float *w, int64_t rows, int64_t n, const float *v, const float *alpha,
                    const float *beta, const float *dwq, float *dv, float *dalpha, float *dbeta)
{
    const int64_t g = group_len(f, n), ng = qb_fq_groups(f, rows, n);
    const float maxq = (float)((1 << f->bits) - 1);
#pragma omp parallel for schedule(static) if (rows * n > 65536)
    for (int64_t k = 0; k < ng; k++) {
        group_grid G;
        const float *wk = w + k * g;
        make_grid(f, wk, g, alpha[k], beta[k], &G);
        if (G.d == 0.0f) continue;
        /* wq = d (c − z), c = clamp(rint(w/d + v) + z): with rint as the identity,
         * ∂wq/∂v = d·in, ∂wq/∂d = (c − z) − in·w/d, ∂wq/∂z = d (in − 1) */
        double gd = 0, gz = 0;
        for (int64_t i = 0; i < g; i++) {
            const float gw = dwq[k * g + i], vi = v ? v[k * g + i] : 0.0f;
            const float u = rintf(wk[i] / G.d + vi) + G.z;
            const bool in = u >= 0.0f && u <= maxq;
            const float c = in ? u : u < 0.0f ? 0.0f : maxq;
            if (dv && in) dv[k * g + i] += gw * G.d;
            gd += (double)gw * ((c - G.z) - (in ? wk[i] / G.d : 0.0f));
            gz += (double)gw * G.d * (in ? 0.0 : -1.0);
        }
        double dxmin, dxmax;
        if (f->asym) {
            /* d = (xmax − xmin)/maxq, z = −xmin/d (rint as the identity) */
            const double dd = gd + gz * (double)G.xmin / ((double)G.d * G.d);
            dxmax = dd / maxq;
            dxmin = -dd / maxq - gz / G.d;
        } else {
            /* z fixed; d = 2A/maxq (A = max(−xmin, xmax)), or xmax/maxq when nothing is negative */
            const bool two = G.xmin < 0.0f;
            const double dA = gd * (two ? 2.0 : 1.0) / maxq;
            const bool hi_side = G.xmax >= -G.xmin;
            dxmax = hi_side ? dA : 0.0;
            dxmin = hi_side ? 0.0 : -dA;
        }
        if (dalpha && G.clip_hi) dalpha[k] += (float)(dxmax * G.mx);
        if (dbeta && G.clip_lo) dbeta[k] += (float)(dxmin * G.mn);
    }
}

qb_status qb_fq_pack(qb_ctx *ctx, const qb_format *f, const float *w, int64_t rows, int64_t n, const float *v,
                     const float *alpha, const float *beta, void *dst)
{
    const int64_t g = group_len(f, n);
    if (!g) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "learned rounding: format needs integer groups or per channel");
    qb_grid grid;
    qb_status st = qb_grid_init(ctx, &grid, f, n);
    if (st != QB_OK) return st;
    const size_t rb = qb_format_row_bytes(f, n);
    const float maxq = (float)((1 << f->bits) - 1);
    float *clipped = malloc((size_t)g * sizeof *clipped);
    if (!clipped) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *row = (uint8_t *)dst + (size_t)r * rb;
        for (int64_t j = 0; j < n / g; j++) {
            const int64_t k = r * (n / g) + j;
            const float *wk = w + k * g;
            group_grid G;
            make_grid(f, wk, g, alpha[k], beta[k], &G);
            /* the group's header: the format's grid for the clipped range (min and max of the
             * clipped values are β·mn and α·mx), then every code set to the learned one */
            for (int64_t i = 0; i < g; i++) clipped[i] = fminf(fmaxf(wk[i], G.mn * beta[k]), G.mx * alpha[k]);
            qb_grid_start(&grid, row, j, clipped, NULL);
            for (int64_t i = 0; i < g; i++)
                (void)qb_grid_round(&grid, row, j * g + i, G.d * (code(&G, wk[i], v ? v[k * g + i] : 0.0f, maxq) - G.z));
        }
    }
    free(clipped);
    return QB_OK;
}
