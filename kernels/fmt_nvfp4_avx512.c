/* fmt_nvfp4_avx512.c — AVX-512 tile of NVFP4 rows (fmt_nvfp4_ref.c) times f32 activations, a
 * qb_fmt_tile_fn (kernels.h): each 16-element block is decoded into one register — its 8 code
 * bytes split into low nibbles (elements 0..7) and high nibbles (8..15), widened to 16 int32
 * lanes, looked up in the 16 E2M1 values with one permute, times the block's E4M3 scale · g
 * (the same f32 product the reference forms, so every weight is bit-identical to it) — and
 * meets up to 4 activation rows with fma; up to 4 weight rows per call share each activation
 * load. Only the float summation order differs from dequantize-then-dot. */
#include "fmt_nvfp4.h"
#include "fmt.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* E2M1 value of each 4-bit code (bit 3 sign). */
static const float e2m1_table[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                     -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

/* Block b of a row (after its 4-byte g) decoded: 16 weights. */
AI __m512 decode_block(const uint8_t *row, float g, int b, __m512 table)
{
    const uint8_t *blk = row + 4 + (size_t)b * 9;
    const float d = qb_nvfp4_scale(blk[0]) * g;
    const __m128i qs = _mm_loadl_epi64((const __m128i *)(blk + 1));
    const __m128i m = _mm_set1_epi8(15);
    const __m128i codes = _mm_unpacklo_epi64(_mm_and_si128(qs, m), _mm_and_si128(_mm_srli_epi16(qs, 4), m));
    const __m512 v = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(codes), table);
    return _mm512_mul_ps(v, _mm512_set1_ps(d));
}

AI void tile_body(int n, const uint8_t *w, size_t wst, const float *x, size_t ldx, float *y, size_t ldy, const int NR,
                  const int NC)
{
    const __m512 table = _mm512_loadu_ps(e2m1_table);
    float g[4];
    __m512 acc[4][4];
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        memcpy(&g[r], w + r * wst, 4);
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) acc[r][c] = _mm512_setzero_ps();
    }
    for (int b = 0; b < n / QB_NVFP4_BLOCK; b++) {
        __m512 xv[4];
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) xv[c] = _mm512_loadu_ps(x + c * ldx + (size_t)b * QB_NVFP4_BLOCK);
        #pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            const __m512 wv = decode_block(w + r * wst, g[r], b, table);
            #pragma GCC unroll 4
            for (int c = 0; c < NC; c++) acc[r][c] = _mm512_fmadd_ps(wv, xv[c], acc[r][c]);
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) y[c * ldy + r] = _mm512_reduce_add_ps(acc[r][c]);
}

#define BODY(R, C) tile_body(n, w, wst, x, ldx, y, ldy, R, C)

void qb_fmt_tile_nvfp4_avx512(const struct qb_fmt_params *f, int n, const void *w, size_t wst, int nr,
                              const float *x, size_t ldx, int nc, float *y, size_t ldy)
{
    (void)f;
    switch ((nr - 1) * 4 + nc - 1) {
    case 0: BODY(1, 1); break;
    case 1: BODY(1, 2); break;
    case 2: BODY(1, 3); break;
    case 3: BODY(1, 4); break;
    case 4: BODY(2, 1); break;
    case 5: BODY(2, 2); break;
    case 6: BODY(2, 3); break;
    case 7: BODY(2, 4); break;
    case 8: BODY(3, 1); break;
    case 9: BODY(3, 2); break;
    case 10: BODY(3, 3); break;
    case 11: BODY(3, 4); break;
    case 12: BODY(4, 1); break;
    case 13: BODY(4, 2); break;
    case 14: BODY(4, 3); break;
    default: BODY(4, 4); break;
    }
}
