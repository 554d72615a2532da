/* attn_avx512.c — AVX-512 attention of one query head over an f32 key/value cache (spec:
 * attn_ref.c). Scores: four keys at a time, the query held in registers (head_dim up to 256;
 * longer heads loop over memory), each key's 16-lane partial sums folded by one shuffle tree
 * for the four. Softmax: libm's expf per score, summed in position order, as the reference.
 * Values: the output row (up to 128 floats per pass) stays in registers while the value rows
 * stream past. Only the float summation order (and fused multiply-adds) differs from the
 * reference. */
#include "kernels.h"

#include <immintrin.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))

AI __mmask16 tail_mask(int left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

/* Sums of the 16 lanes of a, b, c, d in lanes 0..3 of the result. */
AI __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d)
{
    const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
    /* ab: [a0+a2, a1+a3, b0+b2, b1+b3] (128-bit lanes), cd likewise */
    const __m512 s = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
    /* s: 128-bit lanes [a, b, c, d] partial (4 floats each) */
    const __m512 t = _mm512_add_ps(s, _mm512_permute_ps(s, 0x4E));
    const __m512 u = _mm512_add_ps(t, _mm512_permute_ps(t, 0xB1));
    /* lane 4m of u: total of the m-th input */
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), u));
}

void qb_attn_f32_avx512(int hd, int len, const float *q, const float *k, size_t kst, const float *v, size_t vst,
                        float scale, float *att, float *out)
{
    const int nq = (hd + 15) / 16;
    float mx = -INFINITY;
    if (nq <= 16) {
        __m512 qv[16];
        for (int c = 0; c < nq; c++) qv[c] = _mm512_maskz_loadu_ps(tail_mask(hd - 16 * c), q + 16 * c);
        int j = 0;
        for (; j + 4 <= len; j += 4) {
            const float *k0 = k + (size_t)j * kst;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0; c < nq; c++) {
                const __mmask16 m = tail_mask(hd - 16 * c);
                a0 = _mm512_fmadd_ps(qv[c], _mm512_maskz_loadu_ps(m, k0 + 16 * c), a0);
                a1 = _mm512_fmadd_ps(qv[c], _mm512_maskz_loadu_ps(m, k0 + kst + 16 * c), a1);
                a2 = _mm512_fmadd_ps(qv[c], _mm512_maskz_loadu_ps(m, k0 + 2 * kst + 16 * c), a2);
                a3 = _mm512_fmadd_ps(qv[c], _mm512_maskz_loadu_ps(m, k0 + 3 * kst + 16 * c), a3);
            }
            const __m128 s = _mm_mul_ps(hsum4(a0, a1, a2, a3), _mm_set1_ps(scale));
            _mm_storeu_ps(att + j, s);
        }
        for (; j < len; j++) {
            const float *kj = k + (size_t)j * kst;
            __m512 a = _mm512_setzero_ps();
            for (int c = 0; c < nq; c++) a = _mm512_fmadd_ps(qv[c], _mm512_maskz_loadu_ps(tail_mask(hd - 16 * c), kj + 16 * c), a);
            att[j] = _mm512_reduce_add_ps(a) * scale;
        }
    } else {
        for (int j = 0; j < len; j++) {
            const float *kj = k + (size_t)j * kst;
            __m512 a = _mm512_setzero_ps();
            for (int c = 0; c < nq; c++) {
                const __mmask16 m = tail_mask(hd - 16 * c);
                a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + 16 * c), _mm512_maskz_loadu_ps(m, kj + 16 * c), a);
            }
            att[j] = _mm512_reduce_add_ps(a) * scale;
        }
    }
    for (int j = 0; j < len; j++)
        if (att[j] > mx) mx = att[j];
    float sum = 0;
    for (int j = 0; j < len; j++) {
        att[j] = expf(att[j] - mx);
        sum += att[j];
    }
    const float inv = 1.0f / sum;
    for (int c0 = 0; c0 < nq; c0 += 8) { /* 128 output floats per pass over the values */
        const int cn = nq - c0 < 8 ? nq - c0 : 8;
        __m512 o[8];
        for (int c = 0; c < 8; c++) o[c] = _mm512_setzero_ps();
        for (int j = 0; j < len; j++) {
            const __m512 a = _mm512_set1_ps(att[j] * inv);
            const float *vr = v + (size_t)j * vst + 16 * c0;
            #pragma GCC unroll 8
            for (int c = 0; c < 8; c++)
                if (c < cn) o[c] = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(tail_mask(hd - 16 * (c0 + c)), vr + 16 * c), o[c]);
        }
        for (int c = 0; c < cn; c++) _mm512_mask_storeu_ps(out + 16 * (c0 + c), tail_mask(hd - 16 * (c0 + c)), o[c]);
    }
}
