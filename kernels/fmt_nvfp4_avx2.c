/* fmt_nvfp4_avx2.c — AVX2 tile of NVFP4 rows (fmt_nvfp4_ref.c) times f32 activations, a
 * qb_fmt_tile_fn (kernels.h): the AVX-512 version (fmt_nvfp4_avx512.c) with 8 weights per
 * register — a block's low nibbles are elements 0..7, its high nibbles 8..15 — looked up in
 * the 16 E2M1 values with two 8-entry permutes and a blend on the sign bit, times the block's
 * E4M3 scale · g (bit-identical to the reference's weights). AVX2 has 16 vector registers,
 * so a call works through its rows two at a time (2 rows × up to 4 tokens × 2 halves). */
#include "fmt_nvfp4.h"
#include "fmt.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

static const float e2m1_pos[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
static const float e2m1_neg[8] = {-0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

/* 8 values of 4-bit codes (int32 lanes): bit 3 picks the negative table. */
AI __m256 lookup(__m256i code, __m256 pos, __m256 neg)
{
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(pos, code), _mm256_permutevar8x32_ps(neg, code),
                            _mm256_castsi256_ps(_mm256_slli_epi32(code, 28)));
}

AI void tile_body(int n, const uint8_t *w, size_t wst, const float *x, size_t ldx, float *y, size_t ldy, const int NR,
                  const int NC)
{
    const __m256 pos = _mm256_loadu_ps(e2m1_pos), neg = _mm256_loadu_ps(e2m1_neg);
    float g[2];
    __m256 acc[2][4];
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        memcpy(&g[r], w + r * wst, 4);
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) acc[r][c] = _mm256_setzero_ps();
    }
    for (int b = 0; b < n / QB_NVFP4_BLOCK; b++) {
        __m256 lo[2], hi[2];
        #pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            const uint8_t *blk = w + r * wst + 4 + (size_t)b * 9;
            const __m256 d = _mm256_set1_ps(qb_nvfp4_scale(blk[0]) * g[r]);
            const __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 1)));
            const __m256i m = _mm256_set1_epi32(15);
            lo[r] = _mm256_mul_ps(lookup(_mm256_and_si256(q, m), pos, neg), d);
            hi[r] = _mm256_mul_ps(lookup(_mm256_srli_epi32(q, 4), pos, neg), d);
        }
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            const float *xc = x + c * ldx + (size_t)b * QB_NVFP4_BLOCK;
            const __m256 x0 = _mm256_loadu_ps(xc), x1 = _mm256_loadu_ps(xc + 8);
            #pragma GCC unroll 4
            for (int r = 0; r < NR; r++)
                acc[r][c] = _mm256_fmadd_ps(hi[r], x1, _mm256_fmadd_ps(lo[r], x0, acc[r][c]));
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            const __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc[r][c]), _mm256_extractf128_ps(acc[r][c], 1));
            const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
            y[c * ldy + r] = _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
        }
}

#define BODY(R, C) tile_body(n, wr, wst, x, ldx, yr, ldy, R, C)

void qb_fmt_tile_nvfp4_avx2(const struct qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const float *x,
                            size_t ldx, int nc, float *y, size_t ldy)
{
    (void)f;
    for (int r0 = 0; r0 < nr; r0 += 2) {
        const uint8_t *wr = (const uint8_t *)w + r0 * wst;
        float *yr = y + r0;
        switch ((nr - r0 >= 2 ? 4 : 0) + nc - 1) {
        case 0: BODY(1, 1); break;
        case 1: BODY(1, 2); break;
        case 2: BODY(1, 3); break;
        case 3: BODY(1, 4); break;
        case 4: BODY(2, 1); break;
        case 5: BODY(2, 2); break;
        case 6: BODY(2, 3); break;
        default: BODY(2, 4); break;
        }
    }
}
