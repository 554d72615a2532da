/* dequant_avx512.c — AVX-512 dequantization of rows of the ggml block types (the scalar spec
 * is dequant_ref.c / dequant_kquants_ref.c): 16 elements per register, codes widened from
 * bytes, the same f32 operations as the reference on every element. As dequant_ref.c
 * explains, each element is rounded at most once (products of an f16 scale, a small integer
 * scale and a small code are exact), so using fma for "factor · q − min" cannot change a
 * value: the output is bit-identical to the reference, which the tests check. F16 / BF16 rows
 * are converted in lanes too (F16C, NaN halves as the reference widens them). Types without
 * a vector version here go to the reference. */
#include "kernels.h"
#include "blocks.h"
#include "tq_iq3.h"

#include "qb_types.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

AI float f16(uint16_t h) { return _cvtsh_ss(h); }
AI __m512 i32_to_ps(__m512i v) { return _mm512_cvtepi32_ps(v); }
/* 16 bytes → 16 int32 lanes: low nibbles, high nibbles, unsigned bytes, signed bytes */
AI __m512i lo4(__m128i q) { return _mm512_cvtepu8_epi32(_mm_and_si128(q, _mm_set1_epi8(15))); }
AI __m512i hi4(__m128i q) { return _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(15))); }
AI __m128i ld16(const void *p) { return _mm_loadu_si128((const __m128i *)p); }
/* Bit (j + base) of w in lane j, as 0 / 16 (the fifth bit of a Q5 code). */
AI __m512i bit4(uint32_t w, int base)
{
    const __m512i idx = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(base));
    const __m512i b = _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32((int)w), idx), _mm512_set1_epi32(1));
    return _mm512_slli_epi32(b, 4);
}

static void dq_q4_0(const qb_block_q4_0 *x, float *y, int64_t nb)
{
    const __m512i off = _mm512_set1_epi32(8);
    for (int64_t b = 0; b < nb; b++, x++, y += 32) {
        const __m512 d = _mm512_set1_ps(f16(x->d));
        const __m128i q = ld16(x->qs);
        _mm512_storeu_ps(y, _mm512_mul_ps(i32_to_ps(_mm512_sub_epi32(lo4(q), off)), d));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(i32_to_ps(_mm512_sub_epi32(hi4(q), off)), d));
    }
}

static void dq_q4_1(const qb_block_q4_1 *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++, y += 32) {
        const __m512 d = _mm512_set1_ps(f16(x->d)), m = _mm512_set1_ps(f16(x->m));
        const __m128i q = ld16(x->qs);
        _mm512_storeu_ps(y, _mm512_fmadd_ps(i32_to_ps(lo4(q)), d, m));
        _mm512_storeu_ps(y + 16, _mm512_fmadd_ps(i32_to_ps(hi4(q)), d, m));
    }
}

static void dq_q5_0(const qb_block_q5_0 *x, float *y, int64_t nb)
{
    const __m512i off = _mm512_set1_epi32(16);
    for (int64_t b = 0; b < nb; b++, x++, y += 32) {
        const __m512 d = _mm512_set1_ps(f16(x->d));
        uint32_t qh;
        memcpy(&qh, x->qh, 4);
        const __m128i q = ld16(x->qs);
        const __m512i lo = _mm512_sub_epi32(_mm512_or_si512(lo4(q), bit4(qh, 0)), off);
        const __m512i hi = _mm512_sub_epi32(_mm512_or_si512(hi4(q), bit4(qh, 16)), off);
        _mm512_storeu_ps(y, _mm512_mul_ps(i32_to_ps(lo), d));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(i32_to_ps(hi), d));
    }
}

static void dq_q5_1(const qb_block_q5_1 *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++, y += 32) {
        const __m512 d = _mm512_set1_ps(f16(x->d)), m = _mm512_set1_ps(f16(x->m));
        uint32_t qh;
        memcpy(&qh, x->qh, 4);
        const __m128i q = ld16(x->qs);
        _mm512_storeu_ps(y, _mm512_fmadd_ps(i32_to_ps(_mm512_or_si512(lo4(q), bit4(qh, 0))), d, m));
        _mm512_storeu_ps(y + 16, _mm512_fmadd_ps(i32_to_ps(_mm512_or_si512(hi4(q), bit4(qh, 16))), d, m));
    }
}

static void dq_q8_0(const qb_block_q8_0 *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++, y += 32) {
        const __m512 d = _mm512_set1_ps(f16(x->d));
        _mm512_storeu_ps(y, _mm512_mul_ps(i32_to_ps(_mm512_cvtepi8_epi32(ld16(x->qs))), d));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(i32_to_ps(_mm512_cvtepi8_epi32(ld16(x->qs + 16))), d));
    }
}

/* The IQ4_NL code book as 16 floats, for a one-register lookup. */
AI __m512 iq4nl_table(void)
{
    return i32_to_ps(_mm512_cvtepi8_epi32(ld16(qb_iq4nl_values)));
}

static void dq_iq4_nl(const qb_block_iq4_nl *x, float *y, int64_t nb)
{
    const __m512 kv = iq4nl_table();
    for (int64_t b = 0; b < nb; b++, x++, y += 32) {
        const __m512 d = _mm512_set1_ps(f16(x->d));
        const __m128i q = ld16(x->qs);
        _mm512_storeu_ps(y, _mm512_mul_ps(d, _mm512_permutexvar_ps(lo4(q), kv)));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(d, _mm512_permutexvar_ps(hi4(q), kv)));
    }
}

/* Scale and min (6 bits each) of sub-block s of a Q4_K / Q5_K block (blocks.h). */
static inline void k4_scale_min(const uint8_t p[12], int s, int *sc, int *mn)
{
    if (s < 4) {
        *sc = p[s] & 63;
        *mn = p[s + 4] & 63;
    } else {
        *sc = (p[s + 4] & 15) | (p[s - 4] >> 6) << 4;
        *mn = (p[s + 4] >> 4) | (p[s] >> 6) << 4;
    }
}

static void dq_q4_K(const qb_block_q4_K *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = f16(x->d), dmin = f16(x->dmin);
        for (int c = 0; c < 4; c++, y += 64) { /* 64 elements: sub-blocks 2c (low), 2c+1 (high) */
            int sc0, mn0, sc1, mn1;
            k4_scale_min(x->scales, 2 * c, &sc0, &mn0);
            k4_scale_min(x->scales, 2 * c + 1, &sc1, &mn1);
            const __m512 d0 = _mm512_set1_ps(d * (float)sc0), m0 = _mm512_set1_ps(dmin * (float)mn0);
            const __m512 d1 = _mm512_set1_ps(d * (float)sc1), m1 = _mm512_set1_ps(dmin * (float)mn1);
            const __m128i qa = ld16(x->qs + 32 * c), qb = ld16(x->qs + 32 * c + 16);
            _mm512_storeu_ps(y, _mm512_fmsub_ps(d0, i32_to_ps(lo4(qa)), m0));
            _mm512_storeu_ps(y + 16, _mm512_fmsub_ps(d0, i32_to_ps(lo4(qb)), m0));
            _mm512_storeu_ps(y + 32, _mm512_fmsub_ps(d1, i32_to_ps(hi4(qa)), m1));
            _mm512_storeu_ps(y + 48, _mm512_fmsub_ps(d1, i32_to_ps(hi4(qb)), m1));
        }
    }
}

static void dq_q5_K(const qb_block_q5_K *x, float *y, int64_t nb)
{
    const __m512i one = _mm512_set1_epi32(1);
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = f16(x->d), dmin = f16(x->dmin);
        const __m512i qh0 = _mm512_cvtepu8_epi32(ld16(x->qh)), qh1 = _mm512_cvtepu8_epi32(ld16(x->qh + 16));
        for (int c = 0; c < 4; c++, y += 64) {
            int sc0, mn0, sc1, mn1;
            k4_scale_min(x->scales, 2 * c, &sc0, &mn0);
            k4_scale_min(x->scales, 2 * c + 1, &sc1, &mn1);
            const __m512 d0 = _mm512_set1_ps(d * (float)sc0), m0 = _mm512_set1_ps(dmin * (float)mn0);
            const __m512 d1 = _mm512_set1_ps(d * (float)sc1), m1 = _mm512_set1_ps(dmin * (float)mn1);
            const __m128i qa = ld16(x->qs + 32 * c), qb = ld16(x->qs + 32 * c + 16);
            /* bit 4 of sub-block s, element l: (qh[l] >> s) & 1 */
            const __m128i s0 = _mm_cvtsi32_si128(2 * c), s1 = _mm_cvtsi32_si128(2 * c + 1);
            const __m512i h0a = _mm512_slli_epi32(_mm512_and_si512(_mm512_srl_epi32(qh0, s0), one), 4);
            const __m512i h0b = _mm512_slli_epi32(_mm512_and_si512(_mm512_srl_epi32(qh1, s0), one), 4);
            const __m512i h1a = _mm512_slli_epi32(_mm512_and_si512(_mm512_srl_epi32(qh0, s1), one), 4);
            const __m512i h1b = _mm512_slli_epi32(_mm512_and_si512(_mm512_srl_epi32(qh1, s1), one), 4);
            _mm512_storeu_ps(y, _mm512_fmsub_ps(d0, i32_to_ps(_mm512_or_si512(lo4(qa), h0a)), m0));
            _mm512_storeu_ps(y + 16, _mm512_fmsub_ps(d0, i32_to_ps(_mm512_or_si512(lo4(qb), h0b)), m0));
            _mm512_storeu_ps(y + 32, _mm512_fmsub_ps(d1, i32_to_ps(_mm512_or_si512(hi4(qa), h1a)), m1));
            _mm512_storeu_ps(y + 48, _mm512_fmsub_ps(d1, i32_to_ps(_mm512_or_si512(hi4(qb), h1b)), m1));
        }
    }
}

static void dq_q6_K(const qb_block_q6_K *x, float *y, int64_t nb)
{
    const __m512i m15 = _mm512_set1_epi32(15), m3 = _mm512_set1_epi32(3), off = _mm512_set1_epi32(32);
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = f16(x->d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x->ql + 64 * h, *qh = x->qh + 32 * h;
            for (int half = 0; half < 2; half++) { /* l in 16·half .. 16·half + 15 of each quarter */
                const __m512i l0 = _mm512_cvtepu8_epi32(ld16(ql + 16 * half));
                const __m512i l1 = _mm512_cvtepu8_epi32(ld16(ql + 32 + 16 * half));
                const __m512i hh = _mm512_cvtepu8_epi32(ld16(qh + 16 * half));
                const __m512i lo[4] = {_mm512_and_si512(l0, m15), _mm512_and_si512(l1, m15),
                                       _mm512_srli_epi32(l0, 4), _mm512_srli_epi32(l1, 4)};
                for (int k = 0; k < 4; k++) { /* quarter k: elements 128h + 32k + 16·half + j */
                    const __m512i hb = _mm512_and_si512(_mm512_srli_epi32(hh, 2 * k), m3);
                    const __m512i v = _mm512_sub_epi32(_mm512_or_si512(lo[k], _mm512_slli_epi32(hb, 4)), off);
                    const int e0 = 128 * h + 32 * k + 16 * half;
                    const __m512 ds = _mm512_set1_ps(d * (float)x->scales[e0 / 16]);
                    _mm512_storeu_ps(y + e0, _mm512_mul_ps(ds, i32_to_ps(v)));
                }
            }
        }
        y += QB_QK_K;
    }
}

/* The sixteen 6-bit Q3_K scales (biased by 32) from their 12 bytes. */
static void q3_K_scales(const uint8_t p[12], int sc[16])
{
    for (int s = 0; s < 16; s++) {
        const int low = s < 8 ? (p[s] & 15) : (p[s - 8] >> 4);
        const int high = (p[8 + s % 4] >> (2 * (s / 4))) & 3;
        sc[s] = low | high << 4;
    }
}

static void dq_q3_K(const qb_block_q3_K *x, float *y, int64_t nb)
{
    const __m512i m3 = _mm512_set1_epi32(3), four = _mm512_set1_epi32(4);
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = f16(x->d);
        int sc[16];
        q3_K_scales(x->scales, sc);
        const __m512i hm0 = _mm512_cvtepu8_epi32(ld16(x->hmask)), hm1 = _mm512_cvtepu8_epi32(ld16(x->hmask + 16));
        for (int s = 0; s < 16; s++, y += 16) { /* sub-block s: elements 16s .. 16s + 15 */
            const int e0 = 16 * s, h = e0 / 128, k = (e0 % 128) / 32;
            const __m512i q = _mm512_cvtepu8_epi32(ld16(x->qs + 32 * h + e0 % 32));
            const __m512i lo = _mm512_and_si512(_mm512_srl_epi32(q, _mm_cvtsi32_si128(2 * k)), m3);
            const __m512i hm = (e0 % 32) ? hm1 : hm0;
            const __mmask16 set = _mm512_test_epi32_mask(hm, _mm512_set1_epi32(1 << (e0 / 32)));
            const __m512i v = _mm512_mask_sub_epi32(_mm512_sub_epi32(lo, four), set, lo, _mm512_setzero_si512());
            const __m512 dl = _mm512_set1_ps(d * (float)(sc[s] - 32));
            _mm512_storeu_ps(y, _mm512_mul_ps(dl, i32_to_ps(v)));
        }
    }
}

static void dq_q2_K(const qb_block_q2_K *x, float *y, int64_t nb)
{
    const __m512i m3 = _mm512_set1_epi32(3);
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = f16(x->d), dmin = f16(x->dmin);
        for (int s = 0; s < 16; s++, y += 16) {
            const int e0 = 16 * s, h = e0 / 128, shift = 2 * ((e0 % 128) / 32);
            const __m512i q = _mm512_cvtepu8_epi32(ld16(x->qs + 32 * h + e0 % 32));
            const __m512i v = _mm512_and_si512(_mm512_srl_epi32(q, _mm_cvtsi32_si128(shift)), m3);
            const __m512 dl = _mm512_set1_ps(d * (float)(x->scales[s] & 15));
            const __m512 ml = _mm512_set1_ps(dmin * (float)(x->scales[s] >> 4));
            _mm512_storeu_ps(y, _mm512_fmsub_ps(dl, i32_to_ps(v), ml));
        }
    }
}

static void dq_iq4_xs(const qb_block_iq4_xs *x, float *y, int64_t nb)
{
    const __m512 kv = iq4nl_table();
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = f16(x->d);
        for (int s = 0; s < 8; s++, y += 32) {
            const int ls = ((x->scales_l[s / 2] >> (4 * (s % 2))) & 15) | ((x->scales_h >> (2 * s)) & 3) << 4;
            const __m512 dl = _mm512_set1_ps(d * (float)(ls - 32));
            const __m128i q = ld16(x->qs + 16 * s);
            _mm512_storeu_ps(y, _mm512_mul_ps(dl, _mm512_permutexvar_ps(lo4(q), kv)));
            _mm512_storeu_ps(y + 16, _mm512_mul_ps(dl, _mm512_permutexvar_ps(hi4(q), kv)));
        }
    }
}

/* F16: the F16C conversion, except NaN halves, which the reference widens without quieting
 * (sign, all-ones exponent, the payload shifted up). */
static void dq_f16(const uint16_t *h, float *y, int64_t n)
{
    const __m512i e = _mm512_set1_epi32(0x7c00), mm = _mm512_set1_epi32(0x3ff);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m256i hv = _mm256_maskz_loadu_epi16(m, h + i);
        const __m512i w = _mm512_cvtepu16_epi32(hv);
        const __mmask16 nan = _mm512_cmpeq_epi32_mask(_mm512_and_si512(w, e), e) & _mm512_test_epi32_mask(w, mm);
        const __m512i bits = _mm512_or_si512(_mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(w, _mm512_set1_epi32(0x8000)), 16),
                                                             _mm512_set1_epi32(0x7f800000)),
                                             _mm512_slli_epi32(_mm512_and_si512(w, mm), 13));
        const __m512 f = _mm512_mask_mov_ps(_mm512_cvtph_ps(hv), nan, _mm512_castsi512_ps(bits));
        _mm512_mask_storeu_ps(y + i, m, f);
    }
}

/* BF16: the upper half of an f32. */
static void dq_bf16(const uint16_t *h, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, h + i)), 16);
        _mm512_mask_storeu_ps(y + i, m, _mm512_castsi512_ps(w));
    }
}

bool qb_dequant_iq_avx512(int type, const void *src, float *dst, int64_t nb); /* dequant_iq_avx512.c */

/* Contract: qb_dequant_row_ref's (kernels.h), the same bits. */
bool qb_dequant_row_avx512(int type, const void *src, float *dst, int64_t n)
{
    const qb_type_info *ti = qb_type_get(type);
    if (!ti || n < 0 || n % ti->blck != 0) return qb_dequant_row_ref(type, src, dst, n);
    const int64_t nb = n / ti->blck;
    switch (type) {
    case QB_TYPE_Q4_0: dq_q4_0(src, dst, nb); return true;
    case QB_TYPE_Q4_1: dq_q4_1(src, dst, nb); return true;
    case QB_TYPE_Q5_0: dq_q5_0(src, dst, nb); return true;
    case QB_TYPE_Q5_1: dq_q5_1(src, dst, nb); return true;
    case QB_TYPE_Q8_0: dq_q8_0(src, dst, nb); return true;
    case QB_TYPE_IQ4_NL: dq_iq4_nl(src, dst, nb); return true;
    case QB_TYPE_Q2_K: dq_q2_K(src, dst, nb); return true;
    case QB_TYPE_Q3_K: dq_q3_K(src, dst, nb); return true;
    case QB_TYPE_Q4_K: dq_q4_K(src, dst, nb); return true;
    case QB_TYPE_Q5_K: dq_q5_K(src, dst, nb); return true;
    case QB_TYPE_Q6_K: dq_q6_K(src, dst, nb); return true;
    case QB_TYPE_IQ4_XS: dq_iq4_xs(src, dst, nb); return true;
    case QB_TYPE_TQ1_0: case QB_TYPE_TQ2_0: case QB_TYPE_IQ3_XXS: case QB_TYPE_IQ3_S: /* tq_iq3_avx512.c */
        return qb_dequant_tq_iq3_avx512(type, src, dst, nb);
    case QB_TYPE_F16: dq_f16(src, dst, n); return true;
    case QB_TYPE_BF16: dq_bf16(src, dst, n); return true;
    default:
        return qb_dequant_iq_avx512(type, src, dst, nb) || qb_dequant_row_ref(type, src, dst, n);
    }
}
