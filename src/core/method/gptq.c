/* gptq.c — GPTQ from the paper (see gptq.h): the inverse-Hessian factor shared by all rows,
 * then each row quantized column by column with its error spread over the remaining
 * columns, in lazy blocks, onto the target format's grid (grid.h). Rows are independent, so
 * the outer loop runs them in parallel. */
#include "gptq.h"
#include "grid.h"
#include "hess.h"
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

/* entry (i, j), j <= i, of the lower Cholesky factor from row i's earlier entries and row j
 * (left-looking: a[i][j] = (a[i][j] − Σ_{k<j} a[i][k]·a[j][k]) / a[j][j]); false when the
 * diagonal is not positive */
static bool chol_entry(double *a, int64_t n, int64_t i, int64_t j)
{
    double *ai = a + i * n;
    const double *aj = a + j * n;
    double s = ai[j] - ddot(ai, aj, j);
    if (i == j) {
        if (!(s > 0.0)) return false;
        ai[j] = sqrt(s);
    } else {
        ai[j] = s / aj[j];
    }
    return true;
}

/* In-place lower Cholesky factor of the n × n SPD matrix a (row-major, the lower triangle
 * is read and written). Returns false when a is not positive definite. Panels of CHOL_B
 * columns: the panel's own rows serially, then every row below it in parallel (one
 * parallel region per panel, not per column; each entry is the same sum either way). */
enum { CHOL_B = 32 };
static bool cholesky(double *a, int64_t n)
{
    for (int64_t k0 = 0; k0 < n; k0 += CHOL_B) {
        const int64_t k1 = k0 + CHOL_B < n ? k0 + CHOL_B : n;
        for (int64_t i = k0; i < k1; i++)
            for (int64_t j = k0; j <= i; j++)
                if (!chol_entry(a, n, i, j)) return false;
#pragma omp parallel for schedule(static) if ((n - k1) * k1 > 65536)
        for (int64_t i = k1; i < n; i++)
            for (int64_t j = k0; j < k1; j++) (void)chol_entry(a, n, i, j);
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
    const float *imp; /* (n) columns' importance for the group scales, column order; NULL: none */
    int64_t n;
    int block;
    group_mode mode;
} pass;

/* wp[j] -= e · up[j] over [lo, hi) */
static void axpy(float *restrict wp, const float *restrict up, float e, int64_t lo, int64_t hi)
{
#pragma omp simd
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
        for (int64_t grp = 0; grp < n / G; grp++)
            qb_grid_start(P->g, row, grp, q + grp * G, P->imp ? P->imp + grp * G : NULL);
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
                if (P->mode == GROUPS_RUNNING && c % G == 0)
                    qb_grid_start(P->g, row, c / G, wp + p, P->imp ? P->imp + c : NULL);
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

struct qb_gptq_factor {
    int64_t n;
    bool act_order;
    float *diag;   /* (n) diag(XᵀX) as given (no dampening), column order: the weighted scales' importance */
    float *u;      /* (n, n) upper factor of H⁻¹ in processing order */
    int64_t *perm; /* processing position → column */
    uint8_t *dead; /* columns never seen (zero diagonal): weights zeroed */
};

void qb_gptq_factor_free(qb_gptq_factor *fc)
{
    if (!fc) return;
    free(fc->diag);
    free(fc->u);
    free(fc->perm);
    free(fc->dead);
    free(fc);
}

qb_status qb_gptq_factor_new(qb_ctx *ctx, const double *xtx, int64_t n, float damp, bool act_order,
                             qb_gptq_factor **out)
{
    *out = NULL;
    if (damp == 0.0f) damp = 0.01f;
    if (damp < 0.0f) damp = 0.0f;
    if (n <= 0 || !xtx) return qb_fail(ctx, QB_ERR_ARG, "gptq: bad Hessian (%lld columns)", (long long)n);
    qb_gptq_factor *fc = calloc(1, sizeof *fc);
    double *h = malloc((size_t)(n * n) * sizeof *h), *diag = malloc((size_t)n * sizeof *diag);
    if (fc) {
        fc->n = n;
        fc->act_order = act_order;
        fc->u = malloc((size_t)(n * n) * sizeof *fc->u);
        fc->perm = malloc((size_t)n * sizeof *fc->perm);
        fc->dead = calloc((size_t)n, 1);
        fc->diag = malloc((size_t)n * sizeof *fc->diag);
    }
    qb_status st = QB_OK;
    if (!fc || !h || !diag || !fc->u || !fc->perm || !fc->dead || !fc->diag) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "gptq: out of memory for a %lld-column Hessian", (long long)n);
        goto done;
    }
    int64_t *perm = fc->perm;
    uint8_t *dead = fc->dead;
    double mean = 0;
    for (int64_t i = 0; i < n; i++) {
        diag[i] = xtx[i * n + i];
        fc->diag[i] = (float)diag[i];
        perm[i] = i;
        if (diag[i] == 0.0) dead[i] = 1;
        mean += dead[i] ? 1.0 : diag[i];
    }
    mean /= (double)n;
    if (act_order) qsort_r(perm, (size_t)n, sizeof *perm, cmp_desc, diag);
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
    for (int64_t i = 0; i < n; i++) h[i * n + i] += (double)damp * mean;
    qb_ctx_apply_threads(ctx);
    if (!inverse_upper_factor(h, n, fc->u))
        st = qb_fail(ctx, QB_ERR_ARG, "gptq: the Hessian is not positive definite (damp %g too small?)", (double)damp);
done:
    free(h);
    free(diag);
    if (st != QB_OK) qb_gptq_factor_free(fc);
    else *out = fc;
    return st;
}

/* the format and mode checks shared by both entry points */
static qb_status check_args(qb_ctx *ctx, const qb_format *f, int64_t rows, int64_t n, const float *w, bool act_order,
                            const qb_gptq_params *p, const void *dst, qb_grid *g, group_mode *mode)
{
    if (rows < 0 || n <= 0 || !w) return qb_fail(ctx, QB_ERR_ARG, "gptq: bad matrix (%lld x %lld)", (long long)rows,
                                                 (long long)n);
    qb_status st = qb_grid_init(ctx, g, f, n);
    if (st != QB_OK) return st;
    *mode = GROUPS_RUNNING;
    if (act_order) *mode = p->perm_groups ? GROUPS_PERMUTED : GROUPS_STATIC;
    if (*mode == GROUPS_PERMUTED && (dst || f->kind != QB_FMT_INT))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                       "gptq: groups in act-order (permuted) order cannot be stored packed; integer formats only, "
                       "dequantized output");
    if (f->kind == QB_FMT_INT && f->group <= 0 && *mode == GROUPS_PERMUTED) *mode = GROUPS_STATIC; /* one group */
    return QB_OK;
}

static qb_status run_rows(qb_ctx *ctx, const qb_format *f, const float *w, int64_t rows, const qb_gptq_factor *fc,
                          const qb_grid *g, group_mode mode, const qb_gptq_params *p, void *dst, float *deq,
                          const volatile int *cancel)
{
    const int64_t n = fc->n;
    int block = p->block;
    if (block <= 0) block = 128;
    if (g->group < n && g->group > block && g->group % block) block = g->group;
    const float *imp = p->importance ? p->importance : p->weighted ? fc->diag : NULL;
    pass P = {.g = g, .f = f, .u = fc->u, .perm = fc->perm, .dead = fc->dead, .imp = imp, .n = n, .block = block,
              .mode = mode};
    size_t rb = qb_format_row_bytes(f, n);
    int cancelled = 0, nomem = 0;
    qb_ctx_apply_threads(ctx);
#pragma omp parallel reduction(| : cancelled, nomem)
    {
        float *wp = malloc((size_t)n * sizeof *wp), *err = malloc((size_t)block * sizeof *err);
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
    if (nomem) return qb_fail(ctx, QB_ERR_NOMEM, "gptq: out of memory");
    if (cancelled) return qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");
    return QB_OK;
}

qb_status qb_gptq_quantize_factored(qb_ctx *ctx, const qb_format *f, const float *w, int64_t rows,
                                    const qb_gptq_factor *fc, const qb_gptq_params *prm, void *dst, float *deq,
                                    const volatile int *cancel)
{
    qb_gptq_params p = prm ? *prm : (qb_gptq_params){0};
    if (!fc) return qb_fail(ctx, QB_ERR_ARG, "gptq: no Hessian factor");
    qb_grid g;
    group_mode mode;
    qb_status st = check_args(ctx, f, rows, fc->n, w, fc->act_order, &p, dst, &g, &mode);
    if (st != QB_OK) return st;
    if (cancel && *cancel) return qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");
    return run_rows(ctx, f, w, rows, fc, &g, mode, &p, dst, deq, cancel);
}

qb_status qb_gptq_quantize(qb_ctx *ctx, const qb_format *f, const float *w, int64_t rows, int64_t n, const double *xtx,
                           const qb_gptq_params *prm, void *dst, float *deq, const volatile int *cancel)
{
    qb_gptq_params p = prm ? *prm : (qb_gptq_params){0};
    if (!xtx) return qb_fail(ctx, QB_ERR_ARG, "gptq: no Hessian");
    qb_grid g;
    group_mode mode;
    qb_status st = check_args(ctx, f, rows, n, w, p.act_order, &p, dst, &g, &mode);
    if (st != QB_OK) return st;
    qb_gptq_factor *fc;
    st = qb_gptq_factor_new(ctx, xtx, n, p.damp, p.act_order, &fc);
    if (st != QB_OK) return st;
    st = run_rows(ctx, f, w, rows, fc, &g, mode, &p, dst, deq, cancel);
    qb_gptq_factor_free(fc);
    return st;
}

double qb_gptq_output_sq(const float *hf, const float *a, const float *b, int64_t rows, int64_t n)
{
    if (!b) return qb_hess_quad_rows(hf, a, rows, n);
    float *d = malloc((size_t)(rows * n) * sizeof *d);
    if (!d) return NAN;
    for (int64_t i = 0; i < rows * n; i++) d[i] = a[i] - b[i];
    double v = qb_hess_quad_rows(hf, d, rows, n);
    free(d);
    return v;
}

double qb_gptq_output_error(const float *w, const float *q, int64_t rows, int64_t n, const double *xtx)
{
    float *hf = qb_hess_to_f32(xtx, n);
    if (!hf) return NAN;
    double num = qb_gptq_output_sq(hf, w, q, rows, n), den = qb_gptq_output_sq(hf, w, NULL, rows, n);
    free(hf);
    return den > 0 ? num / den : num == num ? 0.0 : NAN;
}
