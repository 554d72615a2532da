/* matmul.c — the forward pass's matrix multiply. One token: a dot product per weight row.
 * Several tokens: blocks of 4 weight rows are converted to f32 once and multiplied against
 * all tokens with the kernels' register tile, so each weight byte is read once per call.
 * Packed quantized weights (Q4_0, Q4_K, …) multiply 8-bit activations directly: the
 * activations are quantized once per call, then each weight row meets up to 4 tokens at a
 * time in the kernel, so no f32 copy of a quantized weight ever exists. */
#include "matmul.h"
#include "matmul_w8a8.h"
#include "kernels.h"

#include <stdlib.h>

static const void *row_ptr(const qb_tensor *w, int64_t r)
{
    return (const char *)w->data + (size_t)r * qb_format_row_bytes(&w->fmt, w->ne[0]);
}

void qb_tensor_get_row(const qb_tensor *w, int64_t r, float *out)
{
    const qb_kernel_table *k = qb_kernels();
    int n = (int)w->ne[0];
    const void *p = row_ptr(w, r);
    switch (w->type) {
    case QB_TYPE_F16: k->f16_to_f32(n, p, out); break;
    case QB_TYPE_BF16: k->bf16_to_f32(n, p, out); break;
    case QB_TYPE_F32: for (int i = 0; i < n; i++) out[i] = ((const float *)p)[i]; break;
    default: qb_dequantize_row(&w->fmt, p, out, n); break;
    }
}

static void matvec(const qb_kernel_table *k, const qb_tensor *w, const float *x, float *y)
{
    int n = (int)w->ne[0];
    int64_t rows = w->ne[1];
    switch (w->type) {
    case QB_TYPE_F16: {
        const uint16_t *d = w->data;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) y[r] = k->dot_f16(n, d + r * n, x);
        break;
    }
    case QB_TYPE_BF16: {
        const uint16_t *d = w->data;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) y[r] = k->dot_bf16(n, d + r * n, x);
        break;
    }
    default: {
        const float *d = w->data;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) y[r] = k->dot_f32(n, d + r * n, x);
        break;
    }
    }
}

bool qb_matmul_runs_packed(int type)
{
    if (type < 0 || type >= QB_TYPE_COUNT || type == QB_TYPE_CUSTOM) return false;
    int at = qb_act_type(type);
    const qb_kernel_table *k = qb_kernels();
    return at >= 0 && k->qdot[type] && k->quantize_act[at];
}

static void matmul_packed(const qb_kernel_table *k, const qb_tensor *w, const float *x, int T, float *y)
{
    int n = (int)w->ne[0];
    int64_t rows = w->ne[1];
    int at = qb_act_type(w->type);
    size_t arow = qb_type_row_bytes(at, n), wrow = qb_type_row_bytes(w->type, n);
    uint8_t *xq = malloc((size_t)T * arow);
    if (!xq) { /* out of memory: fall back to row-by-row dequantization, slow but correct */
        float *row = malloc((size_t)n * sizeof(float));
        for (int64_t r = 0; row && r < rows; r++) {
            qb_tensor_get_row(w, r, row);
            for (int t = 0; t < T; t++) y[(size_t)t * rows + r] = k->dot_f32(n, row, x + (size_t)t * n);
        }
        free(row);
        return;
    }
#pragma omp parallel for schedule(static) if (T > 1)
    for (int t = 0; t < T; t++) k->quantize_act[at](x + (size_t)t * n, xq + (size_t)t * arow, n);
    const uint8_t *wd = w->data;
    void (*qdot)(int, const void *, const void *, size_t, int, float *) = k->qdot[w->type];
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        float out[4];
        for (int t0 = 0; t0 < T; t0 += 4) {
            int nc = T - t0 < 4 ? T - t0 : 4;
            qdot(n, wd + (size_t)r * wrow, xq + (size_t)t0 * arow, arow, nc, out);
            for (int c = 0; c < nc; c++) y[(size_t)(t0 + c) * rows + r] = out[c];
        }
    }
    free(xq);
}

void qb_matmul(const qb_tensor *w, const float *x, int T, float *y)
{
    const qb_kernel_table *k = qb_kernels();
    bool is_float = w->type == QB_TYPE_F32 || w->type == QB_TYPE_F16 || w->type == QB_TYPE_BF16;
    if (w->act_mode && qb_matmul_w8a8(w, x, T, y)) return; /* W8A8: int8 activations too */
    if (!is_float && qb_matmul_runs_packed(w->type)) {
        matmul_packed(k, w, x, T, y);
        return;
    }
    /* formats without a packed kernel (NF4, FP8, int-N, …) take the row-dequantizing path below
     * even for one token: 4 rows at a time into a small f32 buffer, never the whole tensor */
    if (T == 1 && is_float) {
        matvec(k, w, x, y);
        return;
    }
    int n = (int)w->ne[0];
    int64_t rows = w->ne[1];
    int64_t nblk = (rows + 3) / 4;
    /* tokens in chunks whose activations fit in L2 (512 KiB): each weight row block then meets
     * a chunk from cache; weights are re-read once per chunk. F16 rows go straight into the
     * tile (converted in registers), other types through a 4-row f32 buffer. */
    int chunk = (int)((512 * 1024 / sizeof(float)) / (size_t)n) & ~3;
    if (chunk < 8) chunk = 8;
    if (chunk > T) chunk = T;
#pragma omp parallel
    {
        bool direct = w->type == QB_TYPE_F32 || w->type == QB_TYPE_F16;
        float *buf = direct ? NULL : malloc((size_t)4 * n * sizeof(float));
        for (int t0 = 0; t0 < T; t0 += chunk) {
            int tc = T - t0 < chunk ? T - t0 : chunk;
#pragma omp for schedule(static) nowait
            for (int64_t b = 0; b < nblk; b++) {
                int64_t r0 = b * 4;
                int nr = rows - r0 < 4 ? (int)(rows - r0) : 4;
                const float *wf;
                if (w->type == QB_TYPE_F16) {
                    k->tile_f16(n, (const uint16_t *)w->data + r0 * n, (size_t)n, nr, x + (size_t)t0 * n, (size_t)n,
                                tc, y + (size_t)t0 * rows + r0, (size_t)rows);
                    continue;
                }
                if (w->type == QB_TYPE_F32) {
                    wf = (const float *)w->data + r0 * n;
                } else {
                    for (int r = 0; r < nr; r++) qb_tensor_get_row(w, r0 + r, buf + (size_t)r * n);
                    wf = buf;
                }
                k->tile_f32(n, wf, (size_t)n, nr, x + (size_t)t0 * n, (size_t)n, tc, y + (size_t)t0 * rows + r0,
                            (size_t)rows);
            }
        }
        free(buf);
    }
}
