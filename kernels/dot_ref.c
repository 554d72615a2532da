/* dot_ref.c — scalar reference dot products, GEMM tile and row conversions: the spec the
 * AVX2 / AVX-512 versions are tested against. */
#include "kernels.h"
#include "qb_types.h"

float qb_dot_f32_ref(int n, const float *w, const float *x)
{
    float s = 0;
    for (int i = 0; i < n; i++) s += w[i] * x[i];
    return s;
}

float qb_dot_f16_ref(int n, const uint16_t *w, const float *x)
{
    float s = 0;
    for (int i = 0; i < n; i++) s += qb_f16_to_f32(w[i]) * x[i];
    return s;
}

float qb_dot_bf16_ref(int n, const uint16_t *w, const float *x)
{
    float s = 0;
    for (int i = 0; i < n; i++) s += qb_bf16_to_f32(w[i]) * x[i];
    return s;
}

void qb_tile_f32_ref(int n, const float *w, size_t ldw, int nr, const float *x, size_t ldx, int nc, float *y,
                     size_t ldy)
{
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) y[(size_t)c * ldy + r] = qb_dot_f32_ref(n, w + (size_t)r * ldw, x + (size_t)c * ldx);
}

void qb_tile_f16_ref(int n, const uint16_t *w, size_t ldw, int nr, const float *x, size_t ldx, int nc, float *y,
                     size_t ldy)
{
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) y[(size_t)c * ldy + r] = qb_dot_f16_ref(n, w + (size_t)r * ldw, x + (size_t)c * ldx);
}

void qb_f16_to_f32_row_ref(int n, const uint16_t *src, float *dst)
{
    for (int i = 0; i < n; i++) dst[i] = qb_f16_to_f32(src[i]);
}

void qb_bf16_to_f32_row_ref(int n, const uint16_t *src, float *dst)
{
    for (int i = 0; i < n; i++) dst[i] = qb_bf16_to_f32(src[i]);
}
