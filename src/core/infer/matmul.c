/* matmul.c — the forward pass's matrix multiply. One token: a dot product per weight row.
 * Several tokens: blocks of 4 weight rows are converted to f32 once and multiplied against
 * all tokens with the kernels' register tile, so each weight byte is read once per call. */
#include "matmul.h"
#include "kernels.h"

#include <stdlib.h>

static const void *row_ptr(const qb_tensor *w, int64_t r)
{
    return (const char *)w->data + (size_t)r * qb_type_row_bytes(w->type, w->ne[0]);
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
    default: qb_dequant_row_ref(w->type, p, out, n); break;
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

void qb_matmul(const qb_tensor *w, const float *x, int T, float *y)
{
    const qb_kernel_table *k = qb_kernels();
    if (T == 1) {
        matvec(k, w, x, y);
        return;
    }
    int n = (int)w->ne[0];
    int64_t rows = w->ne[1];
    int64_t nblk = (rows + 3) / 4;
#pragma omp parallel
    {
        float *buf = w->type == QB_TYPE_F32 ? NULL : malloc((size_t)4 * n * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t b = 0; b < nblk; b++) {
            int64_t r0 = b * 4;
            int nr = rows - r0 < 4 ? (int)(rows - r0) : 4;
            const float *wf;
            if (w->type == QB_TYPE_F32) {
                wf = (const float *)w->data + r0 * n;
            } else {
                for (int r = 0; r < nr; r++) qb_tensor_get_row(w, r0 + r, buf + (size_t)r * n);
                wf = buf;
            }
            k->tile_f32(n, wf, (size_t)n, nr, x, (size_t)n, T, y + r0, (size_t)rows);
        }
        free(buf);
    }
}
