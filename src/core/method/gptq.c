/* gptq.c — GPTQ from the paper (see gptq.h): the inverse-Hessian factor shared by all rows,
 * then each row quantized column by column with its error spread over the remaining
 * columns, in lazy blocks, onto the target format's grid (grid.h). Rows are independent, so
 * the outer loop runs them in parallel. */
#include "gptq.h"
#include "grid.h"
#include "fmt.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Σ a[k]·b[k] for k < n in double, four partial sums (the loop-carried add is the bottleneck) */
static double ddot(const double *restrict a, const double *restrict b, int64_t n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += a[k] * b[k];
        s1 += a[k + 1] * b[k + 1];
        s2 += a[k + 2] * b[k + 2];
        s3 += a[k + 3] * b[k + 3];
    }
    for (; k < n; k++) s0 += a[k] * b[k];
    return (s0 + s1) + (s2 + s3);
}

/* In-place lower Cholesky factor of the n × n SPD matrix a (row-major, the lower triangle
 * is read and written). Returns false when a is not positive definite. */
static bool cholesky(double *a, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        double *aj = a + j * n;
        double s = aj[j] - ddot(aj, aj, j);
        if (!(s > 0.0)) return false;
        double d = sqrt(s);
        aj[j] = d;
#pragma omp parallel for schedule(static)
        for (int64_t i = j + 1; i < n; i++) {
            double *ai = a + i * n;
            ai[j] = (ai[j] - ddot(ai, aj, j)) / d;
        }
    }
    return true;
}

/* u (n × n, f32): the upper Cholesky factor of (h)⁻¹, h SPD (destroyed). With J the
 * reversal, J·h·J = M·Mᵀ gives h⁻¹ = (J·M⁻¹·J)ᵀ·(J·M⁻¹·J), and J·M⁻¹·J is upper. */
static bool inverse_upper_factor(double *h, int64_t n, float *u)
{
    /* reverse in place: h[i][j] <-> h[n-1-i][n-1-j] */
    for (int64_t i = 0; i < n * n / 2; i++) {
        double t = h[i];
        h[i] = h[n * n - 1 - i];
        h[n * n - 1 - i] = t;
    }
    if (!cholesky(h, n)) return false;
    memset(u, 0, (size_t)(n * n) * sizeof *u);
    /* columns of M⁻¹ by forward substitution, independent of each other */
    bool ok = true;
#pragma omp parallel
    {
        double *x = malloc((size_t)n * sizeof *x);
        if (!x) ok = false;
#pragma omp for schedule(dynamic, 8)
        for (int64_t j = 0; j < n; j++) {
            if (!x) continue;
            x[j] = 1.0 / h[j * n + j];
            for (int64_t i = j + 1; i < n; i++) {
                const double *mi = h + i * n;
                x[i] = -ddot(mi + j, x + j, i - j) / mi[i];
            }
            /* U[a][b] = X[n-1-a][n-1-b] with X[i][j] = x[i] */
            for (int64_t i = j; i < n; i++) u[(n - 1 - i) * n + (n - 1 - j)] = (float)x[i];
        }
        free(x);
    }
    return ok;
}

typedef enum { GROUPS_RUNNING, GROUPS_STATIC, GROUPS_PERMUTED } group_mode;

typedef struct {
    const qb_grid *g;
    const qb_format *f;
    const float *u;  /* (n, n) upper factor of H⁻¹, processing order */
    const int64_t *perm;
    const uint8_t *dead;
    int64_t n;
    int block;
    group_mode mode;
} pass;

/* wp[j] -= e · up[j] over [lo, hi) */
static void axpy(float *restrict wp, const float *restrict up, float e, int64_t lo, int64_t hi)
{
    for (int64_t j = lo; j < hi; j++) wp[j] -= e * up[j];
}

/* one row: w (storage order) → packed row (may be NULL in permuted mode) and values q */
static void quantize_row(const pass *P, const float *w, uint8_t *row, float *q, float *wp, float *err)
{
    const int64_t n = P->n;
    const int G = P->g->group;
    const float *u = P->u;
    for (int64_t p = 0; p < n; p++) wp[p] = P->dead[P->perm[p]] ? 0.0f : w[P->perm[p]];
    if (P->mode == GROUPS_STATIC) {
        for (int64_t c = 0; c < n; c++) q[c] = P->dead[c] ? 0.0f : w[c];
        for (int64_t grp = 0; grp < n / G; grp++) qb_grid_start(P->g, row, grp, q + grp * G);
    }
    float scale = 1.0f, zero = 0.0f;
    const int maxq = P->f->kind == QB_FMT_INT ? (1 << P->f->bits) - 1 : 0;
    for (int64_t b0 = 0; b0 < n; b0 += P->block) {
        int64_t b1 = b0 + P->block < n ? b0 + P->block : n;
        for (int64_t p = b0; p < b1; p++) {
            int64_t c = P->perm[p];
            float v;
            if (P->mode == GROUPS_PERMUTED) {
                if (p % G == 0) {
                    float mn = wp[p], mx = wp[p];
                    for (int64_t k = p; k < p + G; k++) {
                        mn = fminf(mn, wp[k]);
                        mx = fmaxf(mx, wp[k]);
                    }
                    qb_int_params(P->f->bits, P->f->asym, mn, mx, &scale, &zero);
                }
                float t = rintf(wp[p] / scale) + zero;
                t = fminf(fmaxf(t, 0.0f), (float)maxq);
                v = scale * (t - zero);
            } else {
                if (P->mode == GROUPS_RUNNING && c % G == 0) qb_grid_start(P->g, row, c / G, wp + p);
                v = qb_grid_round(P->g, row, c, wp[p]);
            }
            q[c] = v;
            const float *up = u + p * n;
            float e = (wp[p] - v) / up[p];
            axpy(wp, up, e, p + 1, b1);
            err[p - b0] = e;
        }
        for (int64_t p = b0; p < b1; p++) {
            const float *up = u + p * n;
            axpy(wp, up, err[p - b0], b1, n);
        }
    }
}

static int cmp_desc(const void *a, const void *b, void *ud)
{
    const double *d = ud;
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (d[i] > d[j]) return -1;
    if (d[i] < d[j]) return 1;
    return (i > j) - (i < j); /* stable: ties keep column order */
}

qb_status qb_gptq_quantize(qb_ctx *ctx, const qb_format *f, const float *w, int64_t rows, int64_t n, const double *xtx,
                           const qb_gptq_params *prm, void *dst, float *deq, const volatile int *cancel)
{
    qb_gptq_params p = prm ? *prm : (qb_gptq_params){0};
    if (p.block <= 0) p.block = 128;
    if (p.damp == 0.0f) p.damp = 0.01f;
    if (p.damp < 0.0f) p.damp = 0.0f;
    if (rows < 0 || n <= 0 || !w || !xtx) return qb_fail(ctx, QB_ERR_ARG, "gptq: bad matrix (%lld x %lld)",
                                                         (long long)rows, (long long)n);
    qb_grid g;
    qb_status st = qb_grid_init(ctx, &g, f, n);
    if (st != QB_OK) return st;
    group_mode mode = GROUPS_RUNNING;
    if (p.act_order) mode = p.perm_groups ? GROUPS_PERMUTED : GROUPS_STATIC;
    if (mode == GROUPS_PERMUTED && (dst || f->kind != QB_FMT_INT))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                       "gptq: groups in act-order (permuted) order cannot be stored packed; integer formats only, "
                       "dequantized output");
    if (f->kind == QB_FMT_INT && f->group <= 0 && mode == GROUPS_PERMUTED) mode = GROUPS_STATIC; /* one group */
    if (g.group < n && g.group > p.block && g.group % p.block) p.block = g.group;

    double *h = malloc((size_t)(n * n) * sizeof *h);
    float *u = malloc((size_t)(n * n) * sizeof *u);
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    uint8_t *dead = calloc((size_t)n, 1);
    double *diag = malloc((size_t)n * sizeof *diag);
    if (!h || !u || !perm || !dead || !diag) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "gptq: out of memory for a %lld-column Hessian", (long long)n);
        goto done;
    }
    double mean = 0;
    for (int64_t i = 0; i < n; i++) {
        diag[i] = xtx[i * n + i];
        perm[i] = i;
        if (diag[i] == 0.0) dead[i] = 1;
        mean += dead[i] ? 1.0 : diag[i];
    }
    mean /= (double)n;
    if (p.act_order) qsort_r(perm, (size_t)n, sizeof *perm, cmp_desc, diag);
    for (int64_t i = 0; i < n; i++) {
        double *hi = h + i * n;
        const double *xi = xtx + perm[i] * n;
        for (int64_t j = 0; j < n; j++) hi[j] = xi[perm[j]];
        if (dead[perm[i]]) {
            for (int64_t j = 0; j < n; j++) hi[j] = 0.0;
            hi[i] = 1.0;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        if (dead[perm[i]])
            for (int64_t j = 0; j < n; j++) h[j * n + i] = j == i ? 1.0 : 0.0;
    }
    for (int64_t i = 0; i < n; i++) h[i * n + i] += (double)p.damp * mean;
    qb_ctx_apply_threads(ctx);
    if (!inverse_upper_factor(h, n, u)) {
        st = qb_fail(ctx, QB_ERR_ARG, "gptq: the Hessian is not positive definite (damp %g too small?)", (double)p.damp);
        goto done;
    }
    pass P = {.g = &g, .f = f, .u = u, .perm = perm, .dead = dead, .n = n, .block = p.block, .mode = mode};
    size_t rb = qb_format_row_bytes(f, n);
    int cancelled = 0, nomem = 0;
#pragma omp parallel reduction(| : cancelled, nomem)
    {
        float *wp = malloc((size_t)n * sizeof *wp), *err = malloc((size_t)p.block * sizeof *err);
        float *q = malloc((size_t)n * sizeof *q);
        uint8_t *row = malloc(rb ? rb : 1);
        if (!wp || !err || !q || !row) nomem = 1;
#pragma omp for schedule(dynamic, 4)
        for (int64_t r = 0; r < rows; r++) {
            if (nomem || cancelled || (cancel && *cancel)) {
                cancelled = cancel && *cancel;
                continue;
            }
            quantize_row(&P, w + r * n, row, q, wp, err);
            if (dst) memcpy((uint8_t *)dst + (size_t)r * rb, row, rb);
            if (deq) {
                if (mode == GROUPS_PERMUTED) memcpy(deq + r * n, q, (size_t)n * sizeof *q);
                else qb_dequantize_row(f, row, deq + r * n, n);
            }
        }
        free(wp);
        free(err);
        free(q);
        free(row);
    }
    if (nomem) st = qb_fail(ctx, QB_ERR_NOMEM, "gptq: out of memory");
    else if (cancelled) st = qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");
done:
    free(h);
    free(u);
    free(perm);
    free(dead);
    free(diag);
    return st;
}

double qb_gptq_output_error(const float *w, const float *q, int64_t rows, int64_t n, const double *xtx)
{
    /* f32 copy of H for the vector dot kernel; sums per row in double */
    float *hf = malloc((size_t)(n * n) * sizeof *hf);
    if (!hf) return NAN;
    for (int64_t i = 0; i < n * n; i++) hf[i] = (float)xtx[i];
    const qb_kernel_table *k = qb_kernels();
    double num = 0, den = 0;
#pragma omp parallel reduction(+ : num, den)
    {
        float *d = malloc((size_t)n * sizeof *d);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            if (!d) continue;
            const float *v = w + r * n;
            for (int64_t i = 0; i < n; i++) d[i] = v[i] - q[r * n + i];
            for (int64_t i = 0; i < n; i++) {
                num += (double)d[i] * k->dot_f32((int)n, hf + i * n, d);
                den += (double)v[i] * k->dot_f32((int)n, hf + i * n, v);
            }
        }
        free(d);
    }
    free(hf);
    return den > 0 ? num / den : 0.0;
}
