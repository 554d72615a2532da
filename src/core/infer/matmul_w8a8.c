/* matmul_w8a8.c — int8 × int8 matrix multiply for W8A8 tensors (SmoothQuant, activation
 * quantization, LLM.int8()); see matmul_w8a8.h for the modes. Each call quantizes the T
 * activation rows once, then every block of 4 weight rows meets the tokens 4 at a time in
 * the gemm_i8 tile; y = w_scale · x_scale · int32 sum. For LLM.int8() the outlier columns
 * are zeroed before quantization (so they do not inflate the token scales) and added back
 * in float against the source weights. */
#include "matmul_w8a8.h"
#include "kernels.h"
#include "../quant/format.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool qb_w8a8_format_ok(const qb_format *f)
{
    return f->kind == QB_FMT_INT && f->bits == 8 && !f->asym && f->group <= 0;
}

float qb_w8a8_quantize_row(const float *x, int8_t *q, int n, float d)
{
    if (d <= 0) {
        float amax = 0;
        for (int i = 0; i < n; i++) {
            float a = fabsf(x[i]);
            amax = a > amax ? a : amax; /* not fmaxf: a libm call with the baseline flags */
        }
        d = amax / 127.0f;
    }
    float id = d > 0 ? 1.0f / d : 0.0f;
    /* clamp, then round half to even by adding and removing 1.5·2^23 (what rintf does, without
     * the library call the baseline x86-64 flags would make of it) */
    for (int i = 0; i < n; i++) {
        float v = x[i] * id;
        v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
        q[i] = (int8_t)(int)((v + 12582912.0f) - 12582912.0f); /* IEEE: not folded without -ffast-math */
    }
    return d;
}

/* One source weight element (F16, BF16, F32); other source types go through a row buffer. */
static float src_elem(const qb_tensor *w, int64_t r, int64_t j)
{
    size_t i = (size_t)r * (size_t)w->ne[0] + (size_t)j;
    switch (w->src_type) {
    case QB_TYPE_F16: return qb_f16_to_f32(((const uint16_t *)w->src_data)[i]);
    case QB_TYPE_BF16: return qb_bf16_to_f32(((const uint16_t *)w->src_data)[i]);
    default: return ((const float *)w->src_data)[i];
    }
}

/* y[t, r] += sum over outlier columns cols[0..nc) of x[t, col] * W_src[r, col]. */
static void add_outliers(const qb_tensor *w, const float *x, int T, float *y, const int *cols, int nc)
{
    const qb_kernel_table *k = qb_kernels();
    int n = (int)w->ne[0];
    int64_t rows = w->ne[1];
    bool direct = w->src_type == QB_TYPE_F16 || w->src_type == QB_TYPE_BF16 || w->src_type == QB_TYPE_F32;
    float *xo = malloc((size_t)T * nc * sizeof(float)); /* the outlier columns, token-major */
    if (!xo) return;
    for (int t = 0; t < T; t++)
        for (int c = 0; c < nc; c++) xo[(size_t)t * nc + c] = x[(size_t)t * n + cols[c]];
#pragma omp parallel
    {
        float *wo = malloc((size_t)nc * sizeof(float));
        float *row = direct ? NULL : malloc((size_t)n * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            if (!wo || (!direct && !row)) continue;
            if (direct) {
                for (int c = 0; c < nc; c++) wo[c] = src_elem(w, r, cols[c]);
            } else {
                qb_tensor_source_rows(w, r, 1, row);
                for (int c = 0; c < nc; c++) wo[c] = row[cols[c]];
            }
            for (int t = 0; t < T; t++) y[(size_t)t * rows + r] += k->dot_f32(nc, xo + (size_t)t * nc, wo);
        }
        free(wo);
        free(row);
    }
    free(xo);
}

/* Outlier columns of the batch: any token with |x| >= thr. Returns their count. */
static int find_outliers(const float *x, int T, int n, float thr, int *cols)
{
    unsigned char *hit = calloc((size_t)n, 1);
    if (!hit) return 0;
    for (int t = 0; t < T; t++) /* row by row: the columns' maxima in one pass over memory */
        for (int j = 0; j < n; j++) hit[j] |= fabsf(x[(size_t)t * n + j]) >= thr;
    int nc = 0;
    for (int j = 0; j < n; j++)
        if (hit[j]) cols[nc++] = j;
    free(hit);
    return nc;
}

bool qb_matmul_w8a8(const qb_tensor *w, const qb_act_setting *a, qb_act_counts *cnt, const float *x, int T, float *y)
{
    if (!a || a->mode == QB_ACT_FLOAT || !qb_w8a8_format_ok(&w->fmt)) return false;
    const qb_kernel_table *k = qb_kernels();
    int n = (int)w->ne[0];
    int64_t rows = w->ne[1];
    size_t wrow = qb_format_row_bytes(&w->fmt, n);
    int8_t *xq = malloc((size_t)T * n);
    float *xs = malloc((size_t)T * sizeof(float));
    int *cols = a->mode == QB_ACT_INT8_OUTLIER ? malloc((size_t)n * sizeof(int)) : NULL;
    float *xr = cols ? malloc((size_t)T * n * sizeof(float)) : NULL;
    if (!xq || !xs || (a->mode == QB_ACT_INT8_OUTLIER && (!cols || !xr))) {
        free(xq);
        free(xs);
        free(cols);
        free(xr);
        return false;
    }
    int nout = 0;
    const float *xin = x;
    if (cols) {
        nout = find_outliers(x, T, n, a->threshold, cols);
        if (cnt) {
            cnt->seen += n;
            cnt->outlier += nout;
        }
        memcpy(xr, x, (size_t)T * n * sizeof(float));
        for (int t = 0; t < T; t++)
            for (int c = 0; c < nout; c++) xr[(size_t)t * n + cols[c]] = 0.0f;
        xin = xr;
    }
    float d = a->mode == QB_ACT_INT8_STATIC ? a->scale : 0.0f;
#pragma omp parallel for schedule(static) if (T > 4)
    for (int t = 0; t < T; t++) xs[t] = qb_w8a8_quantize_row(xin + (size_t)t * n, xq + (size_t)t * n, n, d);
    const uint8_t *wd = w->data;
    int64_t nblk = (rows + 3) / 4;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < nblk; b++) {
        int64_t r0 = b * 4;
        int nr = rows - r0 < 4 ? (int)(rows - r0) : 4;
        /* rows: f32 scale then n codes (unaligned, so read the scale with memcpy) */
        float ws[4];
        uint8_t codes_off = sizeof(float);
        for (int r = 0; r < nr; r++) memcpy(&ws[r], wd + (size_t)(r0 + r) * wrow, sizeof(float));
        int32_t acc[16];
        for (int t0 = 0; t0 < T; t0 += 4) {
            int nc = T - t0 < 4 ? T - t0 : 4;
            k->gemm_i8(n, wd + (size_t)r0 * wrow + codes_off, wrow, nr, xq + (size_t)t0 * n, (size_t)n, nc, acc, 4);
            for (int c = 0; c < nc; c++)
                for (int r = 0; r < nr; r++)
                    y[(size_t)(t0 + c) * rows + r0 + r] = ws[r] * xs[t0 + c] * (float)acc[c * 4 + r];
        }
    }
    if (nout > 0) add_outliers(w, x, T, y, cols, nout);
    free(xq);
    free(xs);
    free(cols);
    free(xr);
    return true;
}
