/* glu_avx512.c — AVX-512 feed-forward gate of the training pass (spec: glu_ref.c): 16
 * elements at a time, the tail masked; exp as Cephes' expf (argument reduction by ln 2 in two
 * parts, degree-5 polynomial, scalef), within a few ulps of libm's; σ(x) = 1 / (1 + e^−x) by
 * division; GELU-tanh through 1 + tanh(y) = 2·σ(2y), which has no cancellation where tanh
 * nears −1. */
#include "kernels.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

#define GELU_K 0.7978845608f
#define GELU_C 0.044715f

AI __mmask16 tail_mask(size_t left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

/* e^x, x clamped to [−87.34, 88.38] (the range of normal results) */
AI __m512 exp16(__m512 x)
{
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f)), _mm512_set1_ps(-87.3365447505531f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, n);
}

/* σ(x) */
AI __m512 sigmoid16(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

/* act(x) into *a and act'(x) into *da (da may be NULL) */
AI void act16(bool gelu, __m512 x, __m512 *a, __m512 *da)
{
    if (gelu) {
        const __m512 x2 = _mm512_mul_ps(x, x);
        const __m512 y = _mm512_mul_ps(_mm512_set1_ps(GELU_K), _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(GELU_C), x2), x, x));
        const __m512 s = sigmoid16(_mm512_add_ps(y, y)); /* 0.5·(1 + tanh y) */
        *a = _mm512_mul_ps(x, s);
        if (da) { /* s + 2x·s(1 − s)·K(1 + 3C·x²) */
            const __m512 dy = _mm512_mul_ps(_mm512_set1_ps(GELU_K), _mm512_fmadd_ps(_mm512_set1_ps(3.0f * GELU_C), x2, _mm512_set1_ps(1.0f)));
            const __m512 t = _mm512_mul_ps(_mm512_mul_ps(_mm512_add_ps(x, x), s), _mm512_sub_ps(_mm512_set1_ps(1.0f), s));
            *da = _mm512_fmadd_ps(t, dy, s);
        }
    } else {
        const __m512 s = sigmoid16(x);
        *a = _mm512_mul_ps(x, s);
        if (da) *da = _mm512_mul_ps(s, _mm512_fmadd_ps(x, _mm512_sub_ps(_mm512_set1_ps(1.0f), s), _mm512_set1_ps(1.0f)));
    }
}

void qb_glu_avx512(bool gelu, size_t n, const float *g, const float *u, float *h)
{
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        __m512 a;
        act16(gelu, _mm512_maskz_loadu_ps(m, g + i), &a, NULL);
        _mm512_mask_storeu_ps(h + i, m, _mm512_mul_ps(a, _mm512_maskz_loadu_ps(m, u + i)));
    }
}

void qb_glu_bw_avx512(bool gelu, size_t n, const float *g, const float *u, const float *dh, float *dg, float *du)
{
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        __m512 a, da;
        act16(gelu, _mm512_maskz_loadu_ps(m, g + i), &a, &da);
        const __m512 d = _mm512_maskz_loadu_ps(m, dh + i);
        if (dg) {
            const __m512 t = _mm512_mul_ps(_mm512_mul_ps(d, _mm512_maskz_loadu_ps(m, u + i)), da);
            _mm512_mask_storeu_ps(dg + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dg + i), t));
        }
        if (du) _mm512_mask_storeu_ps(du + i, m, _mm512_fmadd_ps(d, a, _mm512_maskz_loadu_ps(m, du + i)));
    }
}
