/* tq_iq3_avx2.c — AVX2 dot products (against Q8_K activation rows) and row dequantizers of
 * TQ1_0, TQ2_0, IQ3_XXS and IQ3_S. Built with -mavx2 -mfma -mf16c. Specs: qdot_tq_iq3_ref.c
 * (integer parts exact, only the float summation order differs) and dequant_tq_iq3_ref.c (the
 * same bits). Weights decode to bytes in element order (tq_iq3_simd.h); products are
 * vpmaddubsw of unsigned codes / magnitudes with the activations (IQ3 signs applied to the
 * activations), then vpmaddwd by ones (ternary: the -1 offset through Q8_K's bsums) or by the
 * sub-block's odd scale (IQ3), so a super-block sums in int32 and meets its float scales once.
 * nc (1..4) activation rows share each decoded register. */
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

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

enum { T_TQ1, T_TQ2, T_XXS, T_S };
#define TBYTES(T) ((T) == T_TQ1 ? 54 : (T) == T_TQ2 ? 66 : (T) == T_XXS ? 98 : 110)

/* ---- dot products ------------------------------------------------------------------------- */

AI void ternary_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int T)
{
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int c = 0; c < nc; c++) acc[c] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *x = w + (size_t)b * TBYTES(T);
        __m256i v[8];
        if (T == T_TQ1) tq1_codes(x, v);
        else
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) v[i] = tq2_codes(x, i / 4, i % 4);
        const float d = f16(rd16(x + (T == T_TQ1 ? 52 : 64)));
        #pragma GCC unroll 4
        for (int c = 0; c < nc; c++) {
            const uint8_t *y = xq + c * st + (size_t)b * Q8K_BYTES;
            __m256i s16 = _mm256_setzero_si256(); /* |sum| <= 8 * 2 * 3 * 127 per lane */
            #pragma GCC unroll 8
            for (int i = 0; i < 8; i++) s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(v[i], tqi_load(Q8K_QS(y) + 32 * i)));
            const __m256i s32 = _mm256_sub_epi32(_mm256_madd_epi16(s16, ones), _mm256_madd_epi16(tqi_load(Q8K_BSUMS(y)), ones));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32), _mm256_set1_ps(d * Q8K_D(y)), acc[c]);
        }
    }
    #pragma GCC unroll 4
    for (int c = 0; c < nc; c++) out[c] = hsum(acc[c]);
}

AI void iq3_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int T)
{
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int c = 0; c < nc; c++) acc[c] = _mm256_setzero_ps();
    const __m256i one = _mm256_set1_epi8(1);
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *x = w + (size_t)b * TBYTES(T);
        __m256i isum[4];
        #pragma GCC unroll 4
        for (int c = 0; c < nc; c++) isum[c] = _mm256_setzero_si256();
        _Pragma("GCC unroll 8") for (int s = 0; s < 8; s++) {
            uint32_t bits;
            int scale;
            const __m256i mag = IQ3_SUB(T == T_XXS, x, s, &bits, &scale);
            const __m256i sgn = T == T_XXS ? iq3xxs_sign_bytes(x, s) : _mm256_or_si256(tqi_bitmask(bits), one);
            const __m256i sc = _mm256_set1_epi16((short)scale);
            #pragma GCC unroll 4
            for (int c = 0; c < nc; c++) {
                const __m256i y = _mm256_sign_epi8(tqi_load(Q8K_QS(xq + c * st + (size_t)b * Q8K_BYTES) + 32 * s), sgn);
                isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(_mm256_maddubs_epi16(mag, y), sc));
            }
        }
        const float d = f16(rd16(x));
        #pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]),
                                     _mm256_set1_ps(d * Q8K_D(xq + c * st + (size_t)b * Q8K_BYTES)), acc[c]);
    }
    #pragma GCC unroll 4
    for (int c = 0; c < nc; c++) out[c] = (T == T_XXS ? 0.25f : 1.0f) * hsum(acc[c]);
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

ENTRY(qb_qdot_tq1_0_avx2, T_TQ1)
ENTRY(qb_qdot_tq2_0_avx2, T_TQ2)
ENTRY(qb_qdot_iq3_xxs_avx2, T_XXS)
ENTRY(qb_qdot_iq3_s_avx2, T_S)

/* ---- dequantization ------------------------------------------------------------------------- */

/* 32 ternary codes to (code - 1) * d. */
AI void put_ternary(float *y, __m256i codes, __m256 d)
{
    const __m256i v = _mm256_sub_epi8(codes, _mm256_set1_epi8(1));
    const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d));
}

/* 32 magnitudes to db * magnitude, the sign bit set where neg. */
AI void put_iq3(float *y, __m256i mag, __m256i neg, __m256 db)
{
    const __m128i m[2] = {_mm256_castsi256_si128(mag), _mm256_extracti128_si256(mag, 1)};
    const __m128i g[2] = {_mm256_castsi256_si128(neg), _mm256_extracti128_si256(neg, 1)};
    const __m256i sbit = _mm256_set1_epi32((int)0x80000000u);
    for (int i = 0; i < 4; i++) {
        const __m128i mi = i & 1 ? _mm_srli_si128(m[i / 2], 8) : m[i / 2];
        const __m128i gi = i & 1 ? _mm_srli_si128(g[i / 2], 8) : g[i / 2];
        const __m256 v = _mm256_mul_ps(db, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mi)));
        const __m256i s = _mm256_and_si256(_mm256_cvtepi8_epi32(gi), sbit);
        _mm256_storeu_ps(y + 8 * i, _mm256_xor_ps(v, _mm256_castsi256_ps(s)));
    }
}

static void dq_ternary(const uint8_t *x, float *y, int64_t nb, const int T)
{
    for (int64_t b = 0; b < nb; b++, x += TBYTES(T), y += 256) {
        __m256i v[8];
        if (T == T_TQ1) tq1_codes(x, v);
        else
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) v[i] = tq2_codes(x, i / 4, i % 4);
        const __m256 d = _mm256_set1_ps(f16(rd16(x + (T == T_TQ1 ? 52 : 64))));
        for (int i = 0; i < 8; i++) put_ternary(y + 32 * i, v[i], d);
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
            const float db = T == T_XXS ? d * (0.5f + (float)(scale >> 1)) * 0.5f : d * (float)scale;
            put_iq3(y + 32 * s, mag, tqi_bitmask(bits), _mm256_set1_ps(db));
        }
    }
}

/* Dequantize nb blocks of one of the four types (qb_dequant_row_ref's bits); false for any
 * other type. Called from dequant_avx2.c. */
bool qb_dequant_tq_iq3_avx2(int type, const void *src, float *dst, int64_t nb)
{
    switch (type) {
    case QB_TYPE_TQ1_0: dq_ternary(src, dst, nb, T_TQ1); return true;
    case QB_TYPE_TQ2_0: dq_ternary(src, dst, nb, T_TQ2); return true;
    case QB_TYPE_IQ3_XXS: dq_iq3(src, dst, nb, T_XXS); return true;
    case QB_TYPE_IQ3_S: dq_iq3(src, dst, nb, T_S); return true;
    default: return false;
    }
}

/* ---- the IQ3 quantizers' neighbour search: 8 code book points per register --------------- */

/* Contract (tq_iq3.h): lanes are points, each lane's sum in the reference's order. */
int qb_iq3_neighbour_avx2(const uint16_t *nb, const uint8_t *lvt, const float *xv, const float *w, float scale)
{
    const int n = nb[0], stride = (n + 15) & ~15;
    const __m256 vs = _mm256_set1_ps(scale), big = _mm256_set1_ps(FLT_MAX);
    const __m256i one = _mm256_set1_epi32(1);
    float best = FLT_MAX;
    int index = nb[1];
    for (int j0 = 0; j0 < n; j0 += 8) {
        __m256 d2 = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            const __m256i l = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(lvt + i * stride + j0)));
            const __m256 q = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_add_epi32(l, l), one));
            const __m256 diff = _mm256_sub_ps(_mm256_mul_ps(vs, q), _mm256_set1_ps(xv[i]));
            d2 = _mm256_add_ps(d2, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(w[i]), diff), diff));
        }
        /* lanes past the list, NaN or not below FLT_MAX never win (the reference's strict <) */
        const __m256 live = _mm256_and_ps(_mm256_cmp_ps(d2, big, _CMP_LT_OQ),
                                          _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n - j0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))));
        d2 = _mm256_blendv_ps(big, d2, live);
        __m128 mn = _mm_min_ps(_mm256_castps256_ps128(d2), _mm256_extractf128_ps(d2, 1));
        mn = _mm_min_ps(mn, _mm_movehl_ps(mn, mn));
        mn = _mm_min_ss(mn, _mm_movehdup_ps(mn));
        const float lo = _mm_cvtss_f32(mn);
        if (lo < best) { /* the first lane holding the chunk's least */
            best = lo;
            index = nb[1 + j0 + __builtin_ctz((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(d2, _mm256_set1_ps(lo), _CMP_EQ_OQ)))];
        }
    }
    return index;
}

/* Quantize as qb_quant_tq_iq3_ref (the same bytes), the neighbour search in vectors. */
bool qb_quant_tq_iq3_avx2(int type, const float *x, void *dst, int64_t nrows, int64_t n_per_row, const float *qw)
{
    return qb_quant_tq_iq3_with(type, x, dst, nrows, n_per_row, qw, qb_iq3_neighbour_avx2);
}
