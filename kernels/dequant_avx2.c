/* dequant_avx2.c — AVX2 dequantization of rows of the ggml block types: dequant_avx512.c's
 * decoders with 8 elements per register. Bit-identical to the reference (dequant_ref.c,
 * dequant_kquants_ref.c) for the reasons given there; other types go to the reference. */
#include "kernels.h"
#include "blocks.h"
#include "tq_iq3.h"

#include "qb_types.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

AI float f16(uint16_t h) { return _cvtsh_ss(h); }
AI __m256 i32_to_ps(__m256i v) { return _mm256_cvtepi32_ps(v); }
AI __m128i ld8(const void *p) { return _mm_loadl_epi64((const __m128i *)p); }
/* 8 bytes → 8 int32 lanes: low nibbles, high nibbles, unsigned, signed */
AI __m256i lo4(__m128i q) { return _mm256_cvtepu8_epi32(_mm_and_si128(q, _mm_set1_epi8(15))); }
AI __m256i hi4(__m128i q) { return _mm256_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(15))); }
AI __m256i u8(__m128i q) { return _mm256_cvtepu8_epi32(q); }
/* Bit (j + base) of w in lane j, as 0 / 16. */
AI __m256i bit4(uint32_t w, int base)
{
    const __m256i idx = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(base));
    const __m256i b = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)w), idx), _mm256_set1_epi32(1));
    return _mm256_slli_epi32(b, 4);
}
/* 16-entry f32 lookup by 4-bit codes: two 8-entry permutes, chosen by bit 3. */
AI __m256 lut16(__m256i c, __m256 t0, __m256 t1)
{
    const __m256 a = _mm256_permutevar8x32_ps(t0, c), b = _mm256_permutevar8x32_ps(t1, c);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(c, 28)));
}

static void dq_q4_0(const qb_block_q4_0 *x, float *y, int64_t nb)
{
    const __m256i off = _mm256_set1_epi32(8);
    for (int64_t b = 0; b < nb; b++, x++, y += 32) {
        const __m256 d = _mm256_set1_ps(f16(x->d));
        for (int h = 0; h < 2; h++) {
            const __m128i q = ld8(x->qs + 8 * h);
            _mm256_storeu_ps(y + 8 * h, _mm256_mul_ps(i32_to_ps(_mm256_sub_epi32(lo4(q), off)), d));
            _mm256_storeu_ps(y + 16 + 8 * h, _mm256_mul_ps(i32_to_ps(_mm256_sub_epi32(hi4(q), off)), d));
        }
    }
}

static void dq_q4_1(const qb_block_q4_1 *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++, y += 32) {
        const __m256 d = _mm256_set1_ps(f16(x->d)), m = _mm256_set1_ps(f16(x->m));
        for (int h = 0; h < 2; h++) {
            const __m128i q = ld8(x->qs + 8 * h);
            _mm256_storeu_ps(y + 8 * h, _mm256_fmadd_ps(i32_to_ps(lo4(q)), d, m));
            _mm256_storeu_ps(y + 16 + 8 * h, _mm256_fmadd_ps(i32_to_ps(hi4(q)), d, m));
        }
    }
}

static void dq_q5_0(const qb_block_q5_0 *x, float *y, int64_t nb)
{
    const __m256i off = _mm256_set1_epi32(16);
    for (int64_t b = 0; b < nb; b++, x++, y += 32) {
        const __m256 d = _mm256_set1_ps(f16(x->d));
        uint32_t qh;
        memcpy(&qh, x->qh, 4);
        for (int h = 0; h < 2; h++) {
            const __m128i q = ld8(x->qs + 8 * h);
            const __m256i lo = _mm256_sub_epi32(_mm256_or_si256(lo4(q), bit4(qh, 8 * h)), off);
            const __m256i hi = _mm256_sub_epi32(_mm256_or_si256(hi4(q), bit4(qh, 16 + 8 * h)), off);
            _mm256_storeu_ps(y + 8 * h, _mm256_mul_ps(i32_to_ps(lo), d));
            _mm256_storeu_ps(y + 16 + 8 * h, _mm256_mul_ps(i32_to_ps(hi), d));
        }
    }
}

static void dq_q5_1(const qb_block_q5_1 *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++, y += 32) {
        const __m256 d = _mm256_set1_ps(f16(x->d)), m = _mm256_set1_ps(f16(x->m));
        uint32_t qh;
        memcpy(&qh, x->qh, 4);
        for (int h = 0; h < 2; h++) {
            const __m128i q = ld8(x->qs + 8 * h);
            const __m256i lo = _mm256_or_si256(lo4(q), bit4(qh, 8 * h));
            const __m256i hi = _mm256_or_si256(hi4(q), bit4(qh, 16 + 8 * h));
            _mm256_storeu_ps(y + 8 * h, _mm256_fmadd_ps(i32_to_ps(lo), d, m));
            _mm256_storeu_ps(y + 16 + 8 * h, _mm256_fmadd_ps(i32_to_ps(hi), d, m));
        }
    }
}

static void dq_q8_0(const qb_block_q8_0 *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++, y += 32) {
        const __m256 d = _mm256_set1_ps(f16(x->d));
        for (int j = 0; j < 4; j++)
            _mm256_storeu_ps(y + 8 * j, _mm256_mul_ps(i32_to_ps(_mm256_cvtepi8_epi32(ld8(x->qs + 8 * j))), d));
    }
}

/* The IQ4_NL code book as two 8-float halves. */
static void iq4nl_tables(__m256 *t0, __m256 *t1)
{
    float t[16];
    for (int i = 0; i < 16; i++) t[i] = (float)qb_iq4nl_values[i];
    *t0 = _mm256_loadu_ps(t);
    *t1 = _mm256_loadu_ps(t + 8);
}

/* 32 elements in IQ4_NL nibble order from qs (16 bytes) times dl. */
AI void iq4_32(const uint8_t *qs, __m256 dl, __m256 t0, __m256 t1, float *y)
{
    for (int h = 0; h < 2; h++) {
        const __m128i q = ld8(qs + 8 * h);
        _mm256_storeu_ps(y + 8 * h, _mm256_mul_ps(dl, lut16(lo4(q), t0, t1)));
        _mm256_storeu_ps(y + 16 + 8 * h, _mm256_mul_ps(dl, lut16(hi4(q), t0, t1)));
    }
}

static void dq_iq4_nl(const qb_block_iq4_nl *x, float *y, int64_t nb)
{
    __m256 t0, t1;
    iq4nl_tables(&t0, &t1);
    for (int64_t b = 0; b < nb; b++, x++, y += 32) iq4_32(x->qs, _mm256_set1_ps(f16(x->d)), t0, t1, y);
}

static void dq_iq4_xs(const qb_block_iq4_xs *x, float *y, int64_t nb)
{
    __m256 t0, t1;
    iq4nl_tables(&t0, &t1);
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = f16(x->d);
        for (int s = 0; s < 8; s++, y += 32) {
            const int ls = ((x->scales_l[s / 2] >> (4 * (s % 2))) & 15) | ((x->scales_h >> (2 * s)) & 3) << 4;
            iq4_32(x->qs + 16 * s, _mm256_set1_ps(d * (float)(ls - 32)), t0, t1, y);
        }
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

/* Q4_K (qh NULL) and Q5_K: 64 elements per pass, sub-blocks 2c (low nibbles) and 2c+1. */
static void dq_k45(const uint8_t *scales, const uint8_t *qs, const uint8_t *qh, float d, float dmin, float *y)
{
    const __m256i one = _mm256_set1_epi32(1);
    for (int c = 0; c < 4; c++, y += 64) {
        int sc[2], mn[2];
        k4_scale_min(scales, 2 * c, &sc[0], &mn[0]);
        k4_scale_min(scales, 2 * c + 1, &sc[1], &mn[1]);
        for (int h = 0; h < 2; h++) { /* h = 1: the high nibbles, sub-block 2c + 1 */
            const __m256 dl = _mm256_set1_ps(d * (float)sc[h]), ml = _mm256_set1_ps(dmin * (float)mn[h]);
            const __m128i sh = _mm_cvtsi32_si128(2 * c + h);
            for (int j = 0; j < 4; j++) {
                const __m128i q = ld8(qs + 32 * c + 8 * j);
                __m256i v = h ? hi4(q) : lo4(q);
                if (qh)
                    v = _mm256_or_si256(v, _mm256_slli_epi32(_mm256_and_si256(_mm256_srl_epi32(u8(ld8(qh + 8 * j)), sh), one), 4));
                _mm256_storeu_ps(y + 32 * h + 8 * j, _mm256_fmsub_ps(dl, i32_to_ps(v), ml));
            }
        }
    }
}

static void dq_q4_K(const qb_block_q4_K *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++, y += QB_QK_K) dq_k45(x->scales, x->qs, NULL, f16(x->d), f16(x->dmin), y);
}

static void dq_q5_K(const qb_block_q5_K *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++, y += QB_QK_K) dq_k45(x->scales, x->qs, x->qh, f16(x->d), f16(x->dmin), y);
}

static void dq_q6_K(const qb_block_q6_K *x, float *y, int64_t nb)
{
    const __m256i m15 = _mm256_set1_epi32(15), m3 = _mm256_set1_epi32(3), off = _mm256_set1_epi32(32);
    for (int64_t b = 0; b < nb; b++, x++, y += QB_QK_K) {
        const float d = f16(x->d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x->ql + 64 * h, *qh = x->qh + 32 * h;
            for (int j = 0; j < 4; j++) { /* l in 8j .. 8j + 7 of each quarter */
                const __m256i l0 = u8(ld8(ql + 8 * j)), l1 = u8(ld8(ql + 32 + 8 * j)), hh = u8(ld8(qh + 8 * j));
                const __m256i lo[4] = {_mm256_and_si256(l0, m15), _mm256_and_si256(l1, m15), _mm256_srli_epi32(l0, 4),
                                       _mm256_srli_epi32(l1, 4)};
                for (int k = 0; k < 4; k++) {
                    const __m256i hb = _mm256_and_si256(_mm256_srl_epi32(hh, _mm_cvtsi32_si128(2 * k)), m3);
                    const __m256i v = _mm256_sub_epi32(_mm256_or_si256(lo[k], _mm256_slli_epi32(hb, 4)), off);
                    const int e0 = 128 * h + 32 * k + 8 * j;
                    const __m256 ds = _mm256_set1_ps(d * (float)x->scales[e0 / 16]);
                    _mm256_storeu_ps(y + e0, _mm256_mul_ps(ds, i32_to_ps(v)));
                }
            }
        }
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
    const __m256i m3 = _mm256_set1_epi32(3), four = _mm256_set1_epi32(4);
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = f16(x->d);
        int sc[16];
        q3_K_scales(x->scales, sc);
        for (int e0 = 0; e0 < QB_QK_K; e0 += 8, y += 8) {
            const int h = e0 / 128, k = (e0 % 128) / 32;
            const __m256i q = u8(ld8(x->qs + 32 * h + e0 % 32));
            const __m256i lo = _mm256_and_si256(_mm256_srl_epi32(q, _mm_cvtsi32_si128(2 * k)), m3);
            const __m256i hm = _mm256_and_si256(u8(ld8(x->hmask + e0 % 32)), _mm256_set1_epi32(1 << (e0 / 32)));
            const __m256i clear = _mm256_cmpeq_epi32(hm, _mm256_setzero_si256()); /* subtract 4 */
            const __m256i v = _mm256_sub_epi32(lo, _mm256_and_si256(clear, four));
            const __m256 dl = _mm256_set1_ps(d * (float)(sc[e0 / 16] - 32));
            _mm256_storeu_ps(y, _mm256_mul_ps(dl, i32_to_ps(v)));
        }
    }
}

static void dq_q2_K(const qb_block_q2_K *x, float *y, int64_t nb)
{
    const __m256i m3 = _mm256_set1_epi32(3);
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = f16(x->d), dmin = f16(x->dmin);
        for (int e0 = 0; e0 < QB_QK_K; e0 += 8, y += 8) {
            const int s = e0 / 16, h = e0 / 128, shift = 2 * ((e0 % 128) / 32);
            const __m256i q = u8(ld8(x->qs + 32 * h + e0 % 32));
            const __m256i v = _mm256_and_si256(_mm256_srl_epi32(q, _mm_cvtsi32_si128(shift)), m3);
            const __m256 dl = _mm256_set1_ps(d * (float)(x->scales[s] & 15));
            const __m256 ml = _mm256_set1_ps(dmin * (float)(x->scales[s] >> 4));
            _mm256_storeu_ps(y, _mm256_fmsub_ps(dl, i32_to_ps(v), ml));
        }
    }
}

/* F16: the F16C conversion, except NaN halves, which the reference widens without quieting. */
static void dq_f16(const uint16_t *h, float *y, int64_t n)
{
    const __m256i e = _mm256_set1_epi32(0x7c00), mm = _mm256_set1_epi32(0x3ff);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i hv = _mm_loadu_si128((const __m128i *)(h + i));
        const __m256i w = _mm256_cvtepu16_epi32(hv);
        const __m256i nan = _mm256_andnot_si256(_mm256_cmpeq_epi32(_mm256_and_si256(w, mm), _mm256_setzero_si256()),
                                                _mm256_cmpeq_epi32(_mm256_and_si256(w, e), e));
        const __m256i bits = _mm256_or_si256(_mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0x8000)), 16),
                                                             _mm256_set1_epi32(0x7f800000)),
                                             _mm256_slli_epi32(_mm256_and_si256(w, mm), 13));
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(_mm256_cvtph_ps(hv), _mm256_castsi256_ps(bits), _mm256_castsi256_ps(nan)));
    }
    if (i < n) qb_dequant_row_ref(QB_TYPE_F16, h + i, y + i, n - i);
}

/* BF16: the upper half of an f32. */
static void dq_bf16(const uint16_t *h, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i))), 16)));
    if (i < n) qb_dequant_row_ref(QB_TYPE_BF16, h + i, y + i, n - i);
}

bool qb_dequant_iq_avx2(int type, const void *src, float *dst, int64_t nb); /* dequant_iq_avx2.c */

/* Contract: qb_dequant_row_ref's (kernels.h), the same bits. */
bool qb_dequant_row_avx2(int type, const void *src, float *dst, int64_t n)
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
    case QB_TYPE_TQ1_0: case QB_TYPE_TQ2_0: case QB_TYPE_IQ3_XXS: case QB_TYPE_IQ3_S: /* tq_iq3_avx2.c */
        return qb_dequant_tq_iq3_avx2(type, src, dst, nb);
    case QB_TYPE_F16: dq_f16(src, dst, n); return true;
    case QB_TYPE_BF16: dq_bf16(src, dst, n); return true;
    default:
        return qb_dequant_iq_avx2(type, src, dst, nb) || qb_dequant_row_ref(type, src, dst, n);
    }
}
