/* awq.c — AWQ's scale search and clipping search (see awq.h), with the output error of a
 * candidate measured through XᵀX in f32 with the vector dot kernel. */
#include "awq.h"
#include "hess.h"
#include "../quant/format_traits.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Σ_rows dᵀ·H·d with d = w − deq(Q(w·s))/s per row (d written into q). hf: f32 H. */
static double sq_error_rows(const float *hf, int64_t n, const float *orig, float *q, const float *inv_s, int64_t rows)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) q[r * n + i] = orig[r * n + i] - q[r * n + i] * inv_s[i];
    return qb_hess_quad_rows(hf, q, rows, n);
}

/* values of rows × n matrix w after w·diag(s) → format → dequantized, into out */
static qb_status round_trip(qb_ctx *ctx, const qb_format *f, const float *w, int64_t rows, int64_t n, const float *s,
                            float *scaled, uint8_t *packed, float *out, const volatile int *cancel)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) scaled[r * n + i] = w[r * n + i] * s[i];
    qb_status st = qb_quantize_matrix(ctx, f, scaled, rows, n, packed, cancel);
    if (st != QB_OK) return st;
    size_t rb = qb_format_row_bytes(f, n);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) qb_dequantize_row(f, packed + rb * r, out + r * n, n);
    return QB_OK;
}

qb_status qb_awq_search(qb_ctx *ctx, qb_awq_mat *mats, int n_mats, int64_t n, const float *sx, const double *xtx,
                        const qb_awq_params *prm, float *s, float *alpha_out, const volatile int *cancel)
{
    qb_awq_params p = prm ? *prm : (qb_awq_params){.alpha = -1.0f};
    if (p.n_grid == 0) p.n_grid = 20;
    if (p.n_grid < 2 || p.n_grid > 1000) return qb_fail(ctx, QB_ERR_ARG, "awq: grid of %d points (2..1000)", p.n_grid);
    if (p.alpha > 1.0f || !(p.alpha == p.alpha))
        return qb_fail(ctx, QB_ERR_ARG, "awq: alpha %g out of range [0, 1]", (double)p.alpha);
    for (int k = 0; k < n_mats; k++) {
        qb_status st = qb_format_check(ctx, mats[k].fmt, n);
        if (st != QB_OK) return st;
    }
    if (p.alpha >= 0.0f) p.n_grid = 1;
    int64_t max_rows = 0;
    size_t max_rb = 0;
    for (int k = 0; k < n_mats; k++) {
        if (mats[k].rows > max_rows) max_rows = mats[k].rows;
        size_t rb = qb_format_row_bytes(mats[k].fmt, n) * (size_t)mats[k].rows;
        if (rb > max_rb) max_rb = rb;
    }
    float *hf = p.n_grid > 1 ? qb_hess_to_f32(xtx, n) : NULL;
    float *scaled = malloc((size_t)(max_rows * n) * sizeof *scaled), *q = malloc((size_t)(max_rows * n) * sizeof *q);
    float *cand = malloc((size_t)n * sizeof *cand), *inv = malloc((size_t)n * sizeof *inv);
    uint8_t *packed = malloc(max_rb ? max_rb : 1);
    qb_status st = QB_OK;
    if ((p.n_grid > 1 && !hf) || !scaled || !q || !cand || !inv || !packed) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "awq: out of memory");
        goto done;
    }
    double best = INFINITY;
    float best_alpha = 0.0f;
    for (int g = 0; g < p.n_grid && st == QB_OK; g++) {
        float a = p.n_grid == 1 ? p.alpha : (float)g / (float)(p.n_grid - 1);
        float mx = 0.0f, mn = INFINITY;
        for (int64_t i = 0; i < n; i++) {
            cand[i] = a == 0.0f ? 1.0f : powf(fmaxf(sx[i], 1e-4f), a);
            mx = fmaxf(mx, cand[i]);
            mn = fminf(mn, cand[i]);
        }
        float norm = sqrtf(mx * mn);
        for (int64_t i = 0; i < n; i++) {
            cand[i] = a == 0.0f ? 1.0f : cand[i] / norm;
            inv[i] = 1.0f / cand[i];
        }
        if (p.n_grid == 1) {
            memcpy(s, cand, (size_t)n * sizeof *s);
            best_alpha = a;
            break;
        }
        double err = 0;
        for (int k = 0; k < n_mats && st == QB_OK; k++) {
            st = round_trip(ctx, mats[k].fmt, mats[k].w, mats[k].rows, n, cand, scaled, packed, q, cancel);
            if (st == QB_OK) err += sq_error_rows(hf, n, mats[k].w, q, inv, mats[k].rows);
        }
        if (st == QB_OK && err < best) {
            best = err;
            best_alpha = a;
            memcpy(s, cand, (size_t)n * sizeof *s);
        }
    }
    if (alpha_out) *alpha_out = best_alpha;
done:
    free(hf);
    free(scaled);
    free(q);
    free(cand);
    free(inv);
    free(packed);
    return st;
}

/* Elements per independently quantized group of a row of n in format f (its row of the
 * format table): quantizing one group never looks at another's values, so each group's
 * clipping is chosen on its own. 0: nothing to search (a float type, a per-tensor scale). */
static int64_t clip_group(const qb_format *f, int64_t n)
{
    const qb_format_traits *tr = qb_format_traits_of(f);
    int64_t g = tr && tr->clip_group ? tr->clip_group(f, n) : 0;
    return g > 0 && g <= n && n % g == 0 ? g : g > 0 ? n : 0;
}

qb_status qb_awq_clip(qb_ctx *ctx, qb_awq_mat *mat, int64_t n, const float *s, const double *xtx,
                      const volatile int *cancel)
{
    const qb_format *f = mat->fmt;
    qb_status st = qb_format_check(ctx, f, n);
    if (st != QB_OK) return st;
    const int64_t G = clip_group(f, n);
    if (G == 0) return QB_OK; /* one scale for the tensor, or not a rounding grid */
    const int64_t ng = n / G;
    float *hf = qb_hess_to_f32(xtx, n);
    if (!hf) return qb_fail(ctx, QB_ERR_NOMEM, "awq: out of memory");
    const qb_kernel_table *k = qb_kernels();
    size_t rb = qb_format_row_bytes(f, n);
    int cancelled = 0, nomem = 0;
#pragma omp parallel reduction(| : cancelled, nomem)
    {
        float *c = malloc((size_t)n * sizeof *c), *q = malloc((size_t)n * sizeof *q), *best = malloc((size_t)n * sizeof *best);
        float *d = malloc((size_t)n * sizeof *d), *amax = malloc((size_t)ng * sizeof *amax);
        double *best_err = malloc((size_t)ng * sizeof *best_err);
        uint8_t *row = malloc(rb);
        qb_ctx lctx;
        qb_ctx_init(&lctx);
        lctx.n_threads = 1;
        if (!c || !q || !best || !d || !amax || !best_err || !row) nomem = 1;
#pragma omp for schedule(dynamic, 4)
        for (int64_t r = 0; r < mat->rows; r++) {
            if (nomem || cancelled || (cancel && *cancel)) {
                cancelled = cancel && *cancel;
                continue;
            }
            float *w = mat->w + r * n;
            for (int64_t gi = 0; gi < ng; gi++) {
                float a = 0.0f;
                for (int64_t i = gi * G; i < (gi + 1) * G; i++) a = fmaxf(a, fabsf(w[i]));
                amax[gi] = a;
                best_err[gi] = INFINITY;
            }
            /* the authors' grid: the group's absolute maximum shrunk by 0, 5, ..., 45% */
            for (int kk = 0; kk < QB_AWQ_CLIP_STEPS; kk++) {
                float ratio = 1.0f - (float)kk / 20.0f;
                for (int64_t i = 0; i < n; i++) {
                    float lim = ratio * amax[i / G];
                    c[i] = fminf(fmaxf(w[i], -lim), lim);
                }
                if (qb_quantize_matrix(&lctx, f, c, 1, n, row, NULL) != QB_OK) break;
                qb_dequantize_row(f, row, q, n);
                for (int64_t i = 0; i < n; i++) d[i] = (w[i] - q[i]) / s[i];
                /* each group's own output error: its block of XᵀX */
                for (int64_t gi = 0; gi < ng; gi++) {
                    double e = 0;
                    const int64_t g0 = gi * G;
                    for (int64_t i = g0; i < g0 + G; i++)
                        if (d[i] != 0.0f) e += (double)d[i] * k->dot_f32((int)G, hf + i * n + g0, d + g0);
                    if (e < best_err[gi]) {
                        best_err[gi] = e;
                        memcpy(best + g0, c + g0, (size_t)G * sizeof *c);
                    }
                }
            }
            memcpy(w, best, (size_t)n * sizeof *w);
        }
        free(c);
        free(q);
        free(best);
        free(d);
        free(amax);
        free(best_err);
        free(row);
    }
    free(hf);
    if (nomem) return qb_fail(ctx, QB_ERR_NOMEM, "awq: out of memory");
    if (cancelled) return qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");
    return QB_OK;
}
