/* glu_avx2.c — AVX2 feed-forward gate of the training pass (spec: glu_ref.c): 8 elements at
 * a time, the tail masked; exp as Cephes' expf (argument reduction by ln 2 in two parts,
 * degree-5 polynomial, the power of two built in the exponent bits), within a few ulps of
 * libm's; σ(x) = 1 / (1 + e^−x) by division; GELU-tanh through 1 + tanh(y) = 2·σ(2y), which
 * has no cancellation where tanh nears −1. */
#include "kernels.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

#define GELU_K 0.7978845608f
#define GELU_C 0.044715f

/* Lanes i < left set (all for left >= 8), as a maskload mask. */
AI __m256i tail_mask8(size_t left)
{
    const int m = left >= 8 ? 8 : (int)left;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* e^x, x clamped to [−87.34, 88.02] (2^n stays a normal number: n in −126..127) */
AI __m256 exp8(__m256 x)
{
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.02f)), _mm256_set1_ps(-87.3365447505531f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

/* σ(x) */
AI __m256 sigmoid8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/* act(x) into *a and act'(x) into *da (da may be NULL) */
AI void act8(bool gelu, __m256 x, __m256 *a, __m256 *da)
{
    if (gelu) {
        const __m256 x2 = _mm256_mul_ps(x, x);
        const __m256 y = _mm256_mul_ps(_mm256_set1_ps(GELU_K), _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_C), x2), x, x));
        const __m256 s = sigmoid8(_mm256_add_ps(y, y)); /* 0.5·(1 + tanh y) */
        *a = _mm256_mul_ps(x, s);
        if (da) { /* s + 2x·s(1 − s)·K(1 + 3C·x²) */
            const __m256 dy = _mm256_mul_ps(_mm256_set1_ps(GELU_K), _mm256_fmadd_ps(_mm256_set1_ps(3.0f * GELU_C), x2, _mm256_set1_ps(1.0f)));
            const __m256 t = _mm256_mul_ps(_mm256_mul_ps(_mm256_add_ps(x, x), s), _mm256_sub_ps(_mm256_set1_ps(1.0f), s));
            *da = _mm256_fmadd_ps(t, dy, s);
        }
    } else {
        const __m256 s = sigmoid8(x);
        *a = _mm256_mul_ps(x, s);
        if (da) *da = _mm256_mul_ps(s, _mm256_fmadd_ps(x, _mm256_sub_ps(_mm256_set1_ps(1.0f), s), _mm256_set1_ps(1.0f)));
    }
}

void qb_glu_avx2(bool gelu, size_t n, const float *g, const float *u, float *h)
{
    for (size_t i = 0; i < n; i += 8) {
        const __m256i m = tail_mask8(n - i);
        __m256 a;
        act8(gelu, _mm256_maskload_ps(g + i, m), &a, NULL);
        _mm256_maskstore_ps(h + i, m, _mm256_mul_ps(a, _mm256_maskload_ps(u + i, m)));
    }
}

void qb_glu_bw_avx2(bool gelu, size_t n, const float *g, const float *u, const float *dh, float *dg, float *du)
{
    for (size_t i = 0; i < n; i += 8) {
        const __m256i m = tail_mask8(n - i);
        __m256 a, da;
        act8(gelu, _mm256_maskload_ps(g + i, m), &a, &da);
        const __m256 d = _mm256_maskload_ps(dh + i, m);
        if (dg) {
            const __m256 t = _mm256_mul_ps(_mm256_mul_ps(d, _mm256_maskload_ps(u + i, m)), da);
            _mm256_maskstore_ps(dg + i, m, _mm256_add_ps(_mm256_maskload_ps(dg + i, m), t));
        }
        if (du) _mm256_maskstore_ps(du + i, m, _mm256_fmadd_ps(d, a, _mm256_maskload_ps(du + i, m)));
    }
}
