/* tq_iq3_avx512.c — AVX-512 (BW) dot products (against Q8_K activation rows) and row
 * dequantizers of TQ1_0, TQ2_0, IQ3_XXS and IQ3_S; the VNNI table runs these too. Specs as
 * for tq_iq3_avx2.c (qdot_tq_iq3_ref.c, dequant_tq_iq3_ref.c). Two sub-blocks (64 elements)
 * per register: the IQ3 sign bits of both become one 64-bit mask that negates the activations
 * (masked subtract from zero), and the two sub-block scales sit in the register's halves. */
#include "kernels.h"
#include "blocks.h"
#include "tq_iq3.h"
#include "tq_iq3_simd.h"

#include "qb_types.h"

#include <float.h>

#include <string.h>

#define AI TQI_AI

#define Q8K_BYTES 292
#define Q8K_D(y) rdf32(y)
#define Q8K_QS(y) ((const uint8_t *)(y) + 4)
#define Q8K_BSUMS(y) ((const uint8_t *)(y) + 260)

AI float f16(uint16_t h) { return _cvtsh_ss(h); }

AI __m512i cat(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
AI __m512i load64(const uint8_t *p) { return _mm512_loadu_si512((const void *)p); }

enum { T_TQ1, T_TQ2, T_XXS, T_S };
#define TBYTES(T) ((T) == T_TQ1 ? 54 : (T) == T_TQ2 ? 66 : (T) == T_XXS ? 98 : 110)

/* ---- dot products ------------------------------------------------------------------------- */

/* The block's ternary codes as four registers of 64 in element order (register i: elements
 * 64i .. 64i + 63). */
AI void ternary_codes(const uint8_t *x, __m512i v[4], const int T)
{
    if (T == T_TQ1) { /* the scaled bytes in pairs, then the leading trit of 64 at once */
        __m256i h[8];
        tq1_scaled(x, h);
        const __m512i three = _mm512_set1_epi16(3), odd = _mm512_set1_epi16((short)0xff00);
        _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {
            const __m512i q = cat(h[2 * i], h[2 * i + 1]);
            const __m512i ev = _mm512_mulhi_epu16(_mm512_slli_epi16(q, 8), three);
            const __m512i od = _mm512_mulhi_epu16(_mm512_and_si512(q, odd), three);
            v[i] = _mm512_or_si512(ev, _mm512_slli_epi16(od, 8));
        }
    } else { /* code l of qs byte 32h + m is element 128h + 32l + m: both halves shifted at once */
        const __m512i lo = _mm512_set_epi64(0x0002000200020002LL, 0x0002000200020002LL, 0x0002000200020002LL,
                                            0x0002000200020002LL, 0, 0, 0, 0);
        const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(4));
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
            const __m512i q = _mm512_broadcast_i64x4(tqi_load(x + 32 * h));
            v[2 * h] = _mm512_and_si512(_mm512_srlv_epi16(q, lo), _mm512_set1_epi8(3));
            v[2 * h + 1] = _mm512_and_si512(_mm512_srlv_epi16(q, hi), _mm512_set1_epi8(3));
        }
    }
}

AI void ternary_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int T)
{
    __m512 acc[4];
    #pragma GCC unroll 4
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    const __m512i ones = _mm512_set1_epi16(1);
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *x = w + (size_t)b * TBYTES(T);
        __m512i v[4];
        ternary_codes(x, v, T);
        const float d = f16(rd16(x + (T == T_TQ1 ? 52 : 64)));
        #pragma GCC unroll 4
        for (int c = 0; c < nc; c++) {
            const uint8_t *y = xq + c * st + (size_t)b * Q8K_BYTES, *yq = Q8K_QS(y);
            __m512i s16 = _mm512_setzero_si512(); /* |sum| <= 4 * 2 * 3 * 127 per lane */
            #pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                s16 = _mm512_add_epi16(s16, _mm512_maddubs_epi16(v[i], load64(yq + 64 * i)));
            /* sum (code - 1) y = sum code y - sum y, the last from the bsums */
            const __m256i bs = _mm256_madd_epi16(tqi_load(Q8K_BSUMS(y)), _mm256_set1_epi16(1));
            const __m512i s32 = _mm512_sub_epi32(_mm512_madd_epi16(s16, ones), _mm512_zextsi256_si512(bs));
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s32), _mm512_set1_ps(d * Q8K_D(y)), acc[c]);
        }
    }
    #pragma GCC unroll 4
    for (int c = 0; c < nc; c++) out[c] = _mm512_reduce_add_ps(acc[c]);
}

AI void iq3_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int T)
{
    __m512 acc[4];
    #pragma GCC unroll 4
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    const __m512i zero = _mm512_setzero_si512();
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *x = w + (size_t)b * TBYTES(T);
        __m512i isum[4];
        #pragma GCC unroll 4
        for (int c = 0; c < nc; c++) isum[c] = _mm512_setzero_si512();
        _Pragma("GCC unroll 8") for (int s = 0; s < 8; s += 2) {
            uint32_t b0, b1;
            int sc0, sc1;
            const __m256i m0 = IQ3_SUB(T == T_XXS, x, s, &b0, &sc0);
            const __m256i m1 = IQ3_SUB(T == T_XXS, x, s + 1, &b1, &sc1);
            const __m512i mag = cat(m0, m1);
            const __mmask64 neg = (__mmask64)b0 | (__mmask64)b1 << 32;
            const __m512i sc = cat(_mm256_set1_epi16((short)sc0), _mm256_set1_epi16((short)sc1));
            #pragma GCC unroll 4
            for (int c = 0; c < nc; c++) {
                const __m512i y = load64(Q8K_QS(xq + c * st + (size_t)b * Q8K_BYTES) + 32 * s);
                const __m512i ys = _mm512_mask_sub_epi8(y, neg, zero, y);
                isum[c] = _mm512_add_epi32(isum[c], _mm512_madd_epi16(_mm512_maddubs_epi16(mag, ys), sc));
            }
        }
        const float d = f16(rd16(x));
        #pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]),
                                     _mm512_set1_ps(d * Q8K_D(xq + c * st + (size_t)b * Q8K_BYTES)), acc[c]);
    }
    #pragma GCC unroll 4
    for (int c = 0; c < nc; c++) out[c] = (T == T_XXS ? 0.25f : 1.0f) * _mm512_reduce_add_ps(acc[c]);
}

#define BODY(n, w, x, st, NC, out, T) ((T) == T_TQ1 || (T) == T_TQ2 ? ternary_body : iq3_body)(n, w, x, st, NC, out, T)

#define ENTRY(fname, T)                                                                 \
    void fname(int n, const void *w, const void *xq, size_t st, int nc, float *out);    \
    void fname(int n, const void *w, const void *xq, size_t st, int nc, float *out)     \
    {                                                                                   \
        for (int c0 = 0; c0 < nc; c0 += 4) {                                            \
            const uint8_t *x = (const uint8_t *)xq + (size_t)c0 * st;                   \
            switch (nc - c0) {                                                          \
            case 1: BODY(n, w, x, st, 1, out + c0, T); break;                           \
            case 2: BODY(n, w, x, st, 2, out + c0, T); break;                           \
            case 3: BODY(n, w, x, st, 3, out + c0, T); break;                           \
            default: BODY(n, w, x, st, 4, out + c0, T); break;                          \
            }                                                                           \
        }                                                                               \
    }

ENTRY(qb_qdot_tq1_0_avx512, T_TQ1)
ENTRY(qb_qdot_tq2_0_avx512, T_TQ2)
ENTRY(qb_qdot_iq3_xxs_avx512, T_XXS)
ENTRY(qb_qdot_iq3_s_avx512, T_S)

/* ---- dequantization ------------------------------------------------------------------------- */

/* 64 ternary codes (element order) to (code - 1) * d. */
AI void put_ternary(float *y, __m512i codes, __m512 d)
{
    const __m512i v = _mm512_sub_epi8(codes, _mm512_set1_epi8(1));
    _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(v, 0))), d));
    _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(v, 1))), d));
    _mm512_storeu_ps(y + 32, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(v, 2))), d));
    _mm512_storeu_ps(y + 48, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(v, 3))), d));
}

/* 16 magnitudes (bytes) to db * magnitude, negated where the sign bit is set. */
AI void put_iq3_16(float *y, __m128i mag, __mmask16 neg, __m512 db)
{
    const __m512 v = _mm512_mul_ps(db, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(mag)));
    _mm512_storeu_ps(y, _mm512_mask_xor_ps(v, neg, v, _mm512_set1_ps(-0.0f)));
}

static void dq_ternary(const uint8_t *x, float *y, int64_t nb, const int T)
{
    for (int64_t b = 0; b < nb; b++, x += TBYTES(T), y += 256) {
        __m512i v[4];
        ternary_codes(x, v, T);
        const __m512 d = _mm512_set1_ps(f16(rd16(x + (T == T_TQ1 ? 52 : 64))));
        for (int i = 0; i < 4; i++) put_ternary(y + 64 * i, v[i], d);
    }
}

static void dq_iq3(const uint8_t *x, float *y, int64_t nb, const int T)
{
    for (int64_t b = 0; b < nb; b++, x += TBYTES(T), y += 256) {
        const float d = f16(rd16(x));
        for (int s = 0; s < 8; s++) {
            uint32_t bits;
            int scale;
            const __m256i mag = IQ3_SUB(T == T_XXS, x, s, &bits, &scale);
            /* the reference's db: d * (0.5 + ls) * 0.5 for IQ3_XXS, d * (1 + 2 ls) for IQ3_S */
            const __m512 db = _mm512_set1_ps(T == T_XXS ? d * (0.5f + (float)(scale >> 1)) * 0.5f : d * (float)scale);
            put_iq3_16(y + 32 * s, _mm256_castsi256_si128(mag), (__mmask16)bits, db);
            put_iq3_16(y + 32 * s + 16, _mm256_extracti128_si256(mag, 1), (__mmask16)(bits >> 16), db);
        }
    }
}

/* Contract (tq_iq3.h). */
bool qb_dequant_tq_iq3_avx512(int type, const void *src, float *dst, int64_t nb)
{
    switch (type) {
    case QB_TYPE_TQ1_0: dq_ternary(src, dst, nb, T_TQ1); return true;
    case QB_TYPE_TQ2_0: dq_ternary(src, dst, nb, T_TQ2); return true;
    case QB_TYPE_IQ3_XXS: dq_iq3(src, dst, nb, T_XXS); return true;
    case QB_TYPE_IQ3_S: dq_iq3(src, dst, nb, T_S); return true;
    default: return false;
    }
}

/* ---- the IQ3 quantizers' neighbour search: 16 code book points per register -------------- */

/* Contract (tq_iq3.h): lanes are points, each lane's sum in the reference's order. */
int qb_iq3_neighbour_avx512(const uint16_t *nb, const uint8_t *lvt, const float *xv, const float *w, float scale)
{
    const int n = nb[0], stride = (n + 15) & ~15;
    const __m512 vs = _mm512_set1_ps(scale), big = _mm512_set1_ps(FLT_MAX);
    const __m512i one = _mm512_set1_epi32(1);
    float best = FLT_MAX;
    int index = nb[1];
    for (int j0 = 0; j0 < n; j0 += 16) {
        const int m = n - j0 < 16 ? n - j0 : 16;
        const __mmask16 in = (__mmask16)((1u << m) - 1);
        __m512 d2 = _mm512_setzero_ps();
        for (int i = 0; i < 4; i++) {
            const __m512i l = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(lvt + i * stride + j0)));
            const __m512 q = _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_add_epi32(l, l), one));
            const __m512 diff = _mm512_sub_ps(_mm512_mul_ps(vs, q), _mm512_set1_ps(xv[i]));
            d2 = _mm512_add_ps(d2, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(w[i]), diff), diff));
        }
        /* lanes past the list, NaN or not below FLT_MAX never win (the reference's strict <) */
        const __mmask16 live = _mm512_mask_cmp_ps_mask(in, d2, big, _CMP_LT_OQ);
        const float lo = _mm512_reduce_min_ps(_mm512_mask_blend_ps(live, big, d2));
        if (lo < best) { /* the first lane holding the chunk's least */
            best = lo;
            index = nb[1 + j0 + __builtin_ctz((unsigned)_mm512_mask_cmp_ps_mask(live, d2, _mm512_set1_ps(lo), _CMP_EQ_OQ))];
        }
    }
    return index;
}

/* Quantize as qb_quant_tq_iq3_ref (the same bytes), the neighbour search in vectors. */
bool qb_quant_tq_iq3_avx512(int type, const float *x, void *dst, int64_t nrows, int64_t n_per_row, const float *qw)
{
    return qb_quant_tq_iq3_with(type, x, dst, nrows, n_per_row, qw, qb_iq3_neighbour_avx512);
}
