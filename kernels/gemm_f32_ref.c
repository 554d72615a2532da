/* gemm_f32_ref.c — scalar reference of the f32 matrix product the training pass builds on
 * (kernels.h gemm_f32): every element of C sums its k products in order, one rounding per
 * multiply and one per add; the vector versions (gemm_f32_avx2.c, gemm_f32_avx512.c) keep the
 * order and fuse the pair. */
#include "kernels.h"

void qb_gemm_f32_ref(int m, int n, int k, const float *a, size_t ars, size_t acs, const float *b, size_t ldb, float *c,
                     size_t ldc, bool accumulate)
{
    for (int r = 0; r < m; r++) {
        const float *ar = a + (size_t)r * ars;
        float *cr = c + (size_t)r * ldc;
        for (int j = 0; j < n; j++) {
            float s = accumulate ? cr[j] : 0.0f;
            for (int p = 0; p < k; p++) s += ar[(size_t)p * acs] * b[(size_t)p * ldb + j];
            cr[j] = s;
        }
    }
}
