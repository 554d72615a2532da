/* gemm_f32_avx512.c — AVX-512 f32 matrix product (spec: gemm_f32_ref.c): C is cut into
 * tiles of 6 rows × 64 columns held in 24 zmm registers while k runs past, each step one
 * broadcast of A's element per row and four loads of B's row (the last one masked at the edge
 * of n); k goes in chunks of 256 so the B panel a chunk reads stays in cache while the tiles
 * of the panel's rows take it in turn. Every element sums its products in order of p with
 * fused multiply-adds: the reference's order. */
#include "kernels.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

enum { MR = 6, NV = 4, KC = 256 };

AI __mmask16 tail_mask(int left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

/* The tile of mr rows × nv vectors of C (the last vector masked by last), over k steps of A
 * and B; mr and nv are constants where it is inlined, so the arrays are registers. */
AI void tile(const int mr, const int nv, __mmask16 last, int k, const float *a, size_t ars, size_t acs,
             const float *b, size_t ldb, float *c, size_t ldc, bool accumulate)
{
    __m512 acc[MR][NV];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            acc[r][v] = _mm512_setzero_ps();
            if (accumulate && r < mr && v < nv)
                acc[r][v] = _mm512_maskz_loadu_ps(v == nv - 1 ? last : (__mmask16)0xFFFF, c + (size_t)r * ldc + 16 * v);
        }
    for (int p = 0; p < k; p++) {
        const float *bp = b + (size_t)p * ldb, *ap = a + (size_t)p * acs;
        __m512 bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            bv[v] = v < nv ? _mm512_maskz_loadu_ps(v == nv - 1 ? last : (__mmask16)0xFFFF, bp + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            if (r >= mr) continue;
            const __m512 ar = _mm512_set1_ps(ap[(size_t)r * ars]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                if (v < nv) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            if (r < mr && v < nv)
                _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16 * v, v == nv - 1 ? last : (__mmask16)0xFFFF, acc[r][v]);
}

#define TILE_CASE(R, V)                                                                                           \
    case (R) * 8 + (V): tile(R, V, last, k, a, ars, acs, b, ldb, c, ldc, accumulate); break;
#define TILE_CASES(R) TILE_CASE(R, 1) TILE_CASE(R, 2) TILE_CASE(R, 3) TILE_CASE(R, 4)

/* One tile of mr (1..6) rows × nv (1..4) vectors. */
static void tile_any(int mr, int nv, __mmask16 last, int k, const float *a, size_t ars, size_t acs, const float *b,
                     size_t ldb, float *c, size_t ldc, bool accumulate)
{
    switch (mr * 8 + nv) {
        TILE_CASES(1) TILE_CASES(2) TILE_CASES(3) TILE_CASES(4) TILE_CASES(5) TILE_CASES(6)
    default: break;
    }
}

void qb_gemm_f32_avx512(int m, int n, int k, const float *a, size_t ars, size_t acs, const float *b, size_t ldb,
                        float *c, size_t ldc, bool accumulate)
{
    int p0 = 0;
    do { /* at least once: k = 0 still writes C = 0 unless accumulating */
        const int kc = k - p0 < KC ? k - p0 : KC;
        const bool acc = accumulate || p0 > 0;
        for (int j0 = 0; j0 < n; j0 += 16 * NV) {
            const int nc = n - j0 < 16 * NV ? n - j0 : 16 * NV, nv = (nc + 15) / 16;
            const __mmask16 last = tail_mask(nc - 16 * (nv - 1));
            for (int i0 = 0; i0 < m; i0 += MR)
                tile_any(m - i0 < MR ? m - i0 : MR, nv, last, kc, a + (size_t)i0 * ars + (size_t)p0 * acs, ars, acs,
                         b + (size_t)p0 * ldb + j0, ldb, c + (size_t)i0 * ldc + j0, ldc, acc);
        }
        p0 += kc;
    } while (p0 < k);
}
