/* quant_avx512.c — AVX-512 row quantizers for the 32-element ggml blocks (Q8_0, Q4_0, Q5_0,
 * Q4_1, Q5_1), writing exactly the bytes of the scalar spec (quant_ref.c, ggml's
 * quantize_row_*_ref), F16 / BF16 rows, the IQ4_NL / IQ4_XS scale search (the sixteen candidate
 * scales in the lanes of one register, the code book in another) and their codes, and the
 * entry of the AVX-512 tables: Q2_K..Q6_K go to the searches of quant_kquants_avx512.c, every
 * other type on to qb_quant_row_avx2.
 *
 * One block is two registers. The reference's operations are kept one for one: the scale
 * divisions, 1/d, x·id and the added offset as separate roundings (no fma), roundf (halves
 * away from zero) as trunc plus the exact fraction's test, "(int8_t)(float)" casts as a
 * truncating conversion (NaN and out-of-range give INT32_MIN, as cvttss2si) whose low byte
 * is read as signed. Where the reference's scan order shows in the result the block goes to
 * the reference itself: a NaN inside Q8_0's running maximum (the maximum after a NaN is the
 * next element), and a zero extreme of Q4_1 / Q5_1 (the minimum is stored as f16, and the
 * sign of a zero minimum is the first zero's). The largest magnitude of Q4_0 / Q5_0 is found
 * in lanes and its first element by a compare mask, as the reference's strict "<" keeps it. */
#include "kernels.h"
#include "blocks.h"
#include "tq_iq3.h"

#include "qb_types.h"
#include "quant_k.h"
#include "quant_iq.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* (int32_t) of v as cvttss2si does it (INT32_MIN for NaN and beyond int32), low byte read as a
 * signed byte: ggml's (int8_t)(float). */
AI __m512i trunc_s8(__m512 v)
{
    return _mm512_srai_epi32(_mm512_slli_epi32(_mm512_cvttps_epi32(v), 24), 24);
}

/* roundf: nearest, halves away from zero; trunc(v) ± 1 where the exact fraction is >= 0.5. */
AI __m512 round_away(__m512 v)
{
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_abs_ps(_mm512_sub_ps(v, t));
    const __mmask16 up = _mm512_cmp_ps_mask(f, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(v, _mm512_set1_ps(-0.0f)));
    return _mm512_mask_add_ps(t, up, t, one);
}

AI bool has_nan(__m512 a, __m512 b)
{
    return (_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q)) != 0;
}

static void q8_0(const float *x, qb_block_q8_0 *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK32) {
        const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        if (has_nan(v0, v1)) {
            qb_quant_row_ref(QB_TYPE_Q8_0, x, y, QB_QK32);
            continue;
        }
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float d = amax / 127.0f;
        const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
        y->d = qb_f32_to_f16(d);
        _mm_storeu_si128((__m128i *)y->qs, _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(round_away(_mm512_mul_ps(v0, id)))));
        _mm_storeu_si128((__m128i *)(y->qs + 16),
                         _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(round_away(_mm512_mul_ps(v1, id)))));
    }
}

/* The element of largest magnitude, the first one on ties, NaNs never chosen; 0 when every
 * magnitude is 0 (the reference's signed_absmax). */
AI float signed_absmax(const float *x, __m512 v0, __m512 v1)
{
    /* a > m ? a : m from m = 0: NaN magnitudes never enter */
    const __m512 a0 = _mm512_abs_ps(v0), a1 = _mm512_abs_ps(v1);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, _mm512_max_ps(a1, _mm512_setzero_ps())));
    if (amax == 0.0f) return 0.0f;
    const __m512 m = _mm512_set1_ps(amax);
    const uint32_t eq = (uint32_t)_mm512_cmp_ps_mask(a0, m, _CMP_EQ_OQ) |
                        (uint32_t)_mm512_cmp_ps_mask(a1, m, _CMP_EQ_OQ) << 16;
    return x[__builtin_ctz(eq)];
}

/* Q4_0 / Q5_0 codes: min(trunc_s8(x·id + half + 0.5), top) with d = max / −half; returns d's
 * f16 bits. lo / hi: elements 0..15 and 16..31. */
AI uint16_t symmetric(const float *x, int bits, __m512i *lo, __m512i *hi)
{
    const int half = 1 << (bits - 1), top = (1 << bits) - 1;
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float max = signed_absmax(x, v0, v1);
    const float d = max / (float)-half;
    const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f), off = _mm512_set1_ps((float)half + 0.5f);
    const __m512i vtop = _mm512_set1_epi32(top);
    *lo = _mm512_min_epi32(trunc_s8(_mm512_add_ps(_mm512_mul_ps(v0, id), off)), vtop);
    *hi = _mm512_min_epi32(trunc_s8(_mm512_add_ps(_mm512_mul_ps(v1, id), off)), vtop);
    return qb_f32_to_f16(d);
}

/* Nibbles: byte j = (uint8)(q[j] | q[j + 16] << 4), the codes as the bytes they were stored as. */
AI __m128i nibbles(__m512i lo, __m512i hi)
{
    const __m512i m = _mm512_set1_epi32(255);
    return _mm512_cvtepi32_epi8(_mm512_or_si512(_mm512_and_si512(lo, m), _mm512_slli_epi32(_mm512_and_si512(hi, m), 4)));
}

/* Q5 layout: low nibbles as Q4_0, bit 4 of code e into bit e of qh. */
AI void pack_q5(__m512i lo, __m512i hi, uint8_t *qs, uint8_t *qh)
{
    const __m512i m15 = _mm512_set1_epi32(15), b4 = _mm512_set1_epi32(16);
    _mm_storeu_si128((__m128i *)qs, nibbles(_mm512_and_si512(lo, m15), _mm512_and_si512(hi, m15)));
    const uint32_t h = (uint32_t)_mm512_test_epi32_mask(lo, b4) | (uint32_t)_mm512_test_epi32_mask(hi, b4) << 16;
    memcpy(qh, &h, 4);
}

static void q4_0(const float *x, qb_block_q4_0 *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK32) {
        __m512i lo, hi;
        y->d = symmetric(x, 4, &lo, &hi);
        _mm_storeu_si128((__m128i *)y->qs, nibbles(lo, hi));
    }
}

static void q5_0(const float *x, qb_block_q5_0 *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK32) {
        __m512i lo, hi;
        y->d = symmetric(x, 5, &lo, &hi);
        pack_q5(lo, hi, y->qs, y->qh);
    }
}

/* Q4_1 / Q5_1 codes of a block: (x − min)·id + 0.5 truncated (Q4_1: as a signed byte, capped at
 * 15); false when the block must go to the reference (an extreme is a zero). */
AI bool affine(const float *x, int top, bool cap, __m512i *lo, __m512i *hi, uint16_t *dh, uint16_t *mh)
{
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const __m512 big = _mm512_set1_ps(FLT_MAX), nbig = _mm512_set1_ps(-FLT_MAX);
    const float min = _mm512_reduce_min_ps(_mm512_min_ps(v0, _mm512_min_ps(v1, big)));
    const float max = _mm512_reduce_max_ps(_mm512_max_ps(v0, _mm512_max_ps(v1, nbig)));
    if (min == 0.0f || max == 0.0f) return false;
    const float d = (max - min) / (float)top;
    const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f), vmin = _mm512_set1_ps(min);
    const __m512 half = _mm512_set1_ps(0.5f);
    *dh = qb_f32_to_f16(d);
    *mh = qb_f32_to_f16(min);
    const __m512 t0 = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(v0, vmin), id), half);
    const __m512 t1 = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(v1, vmin), id), half);
    if (cap) {
        const __m512i vtop = _mm512_set1_epi32(top);
        *lo = _mm512_min_epi32(trunc_s8(t0), vtop);
        *hi = _mm512_min_epi32(trunc_s8(t1), vtop);
    } else {
        *lo = _mm512_cvttps_epi32(t0);
        *hi = _mm512_cvttps_epi32(t1);
    }
    return true;
}

static void q4_1(const float *x, qb_block_q4_1 *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK32) {
        __m512i lo, hi;
        uint16_t d, m;
        if (!affine(x, 15, true, &lo, &hi, &d, &m)) {
            qb_quant_row_ref(QB_TYPE_Q4_1, x, y, QB_QK32);
            continue;
        }
        y->d = d;
        y->m = m;
        _mm_storeu_si128((__m128i *)y->qs, nibbles(lo, hi));
    }
}

static void q5_1(const float *x, qb_block_q5_1 *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK32) {
        __m512i lo, hi;
        uint16_t d, m;
        if (!affine(x, 31, false, &lo, &hi, &d, &m)) {
            qb_quant_row_ref(QB_TYPE_Q5_1, x, y, QB_QK32);
            continue;
        }
        y->d = d;
        y->m = m;
        pack_q5(lo, hi, y->qs, y->qh);
    }
}

/* F16: the F16C conversion (round to nearest even: the reference's bits for every number, all
 * 2^32 inputs compared), NaNs as the reference writes them (sign, 0x7e00). */
static void f16_row(const float *x, uint16_t *h, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m256i r = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        const __m256i q = _mm256_or_si256(_mm256_and_si256(_mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(v), 16)),
                                                           _mm256_set1_epi16((short)0x8000)),
                                          _mm256_set1_epi16(0x7e00));
        r = _mm256_mask_mov_epi16(r, nan, q);
        _mm256_mask_storeu_epi16(h + i, m, r);
    }
}

/* BF16: round to nearest even; a NaN keeps its upper half with the quiet bit set. */
static void bf16_row(const float *x, uint16_t *h, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        const __m512i u = _mm512_castps_si512(v);
        const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
        const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
        _mm256_mask_storeu_epi16(h + i, m, _mm512_cvtepi32_epi16(r));
    }
}

/* ---- IQ4_NL / IQ4_XS: the code book in one register ----------------------------------------- */

#define GROUP_EPS 1e-15f /* ggml's GROUP_MAX_EPS */

/* The code book entry (*value) or its index nearest to each lane's v, as the reference's
 * iq4_index gives it: not below the last entry (or NaN) → 15; else lo, the largest index with
 * book[lo] <= v (0 when none), or lo + 1 unless v − book[lo] < book[lo + 1] − v in floats.
 * Here that is the count of midpoints m_k = (book[k] + book[k + 1]) / 2 (exact halves) at or
 * below v, found in four halving steps (each a permute from a table shifted by its offset):
 * the same index for every v. Near a midpoint (|v − m_k| < 1/2) both differences are exact,
 * since every |m_k| >= 4.5 and every half-gap is below 2^(e+1) for v's binade 2^e, so the
 * float comparison is v < m_k; farther away the two differences are at least 1 apart and their
 * roundings (|v| < 2^7: below 2^-16) cannot reorder them. Checked against the reference at
 * every float within 64 steps of each midpoint and entry (test-quantize-simd). */
AI __m512i iq4_index16(__m512 v, __m512 book, __m512 *value)
{
    const __m512i one = _mm512_set1_epi32(1);
    __m512i i = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(v, _mm512_set1_ps(qb_iq4nl_mid_at[3][0]), _CMP_GE_OQ),
                                       _mm512_set1_epi32(8));
    i = _mm512_mask_add_epi32(i, _mm512_cmp_ps_mask(v, _mm512_permutexvar_ps(i, _mm512_loadu_ps(qb_iq4nl_mid_at[2])), _CMP_GE_OQ),
                              i, _mm512_set1_epi32(4));
    i = _mm512_mask_add_epi32(i, _mm512_cmp_ps_mask(v, _mm512_permutexvar_ps(i, _mm512_loadu_ps(qb_iq4nl_mid_at[1])), _CMP_GE_OQ),
                              i, _mm512_set1_epi32(2));
    i = _mm512_mask_add_epi32(i, _mm512_cmp_ps_mask(v, _mm512_permutexvar_ps(i, _mm512_loadu_ps(qb_iq4nl_mid_at[0])), _CMP_GE_OQ),
                              i, one);
    i = _mm512_mask_mov_epi32(i, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(15));
    if (value) *value = _mm512_permutexvar_ps(i, book);
    return i;
}

AI __m512 iq4_book(void) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)qb_iq4nl_values))); }

/* qb_iq4nl_group_scale_w_ref with the sixteen candidates in the lanes of one register (lane
 * 0: the start, lane 8 + t: t = -7..7), each summed element by element as the reference does. */
float qb_iq4_scale_w_avx512(const float *x, const float *w)
{
    /* the element of largest magnitude, the first on ties (NaNs never win, as in the scalar
     * "amax < |x|"), found in two registers */
    const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    const __m512 a0 = _mm512_mask_abs_ps(_mm512_setzero_ps(), _mm512_cmp_ps_mask(x0, x0, _CMP_ORD_Q), x0);
    const __m512 a1 = _mm512_mask_abs_ps(_mm512_setzero_ps(), _mm512_cmp_ps_mask(x1, x1, _CMP_ORD_Q), x1);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
    if (amax < GROUP_EPS) return 0.0f;
    const uint32_t hits = (uint32_t)_mm512_cmp_ps_mask(a0, _mm512_set1_ps(amax), _CMP_EQ_OQ) |
                          (uint32_t)_mm512_cmp_ps_mask(a1, _mm512_set1_ps(amax), _CMP_EQ_OQ) << 16;
    const float max = x[__builtin_ctz(hits)];
    /* lane 0: the start, 1 / (-max / book[0]); lane 8 + t: (t + book[0]) / max, one division
     * per lane as the scalar makes them */
    const __m512 tries = _mm512_cvtepi32_ps(_mm512_add_epi32(
        _mm512_setr_epi32(0, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7), _mm512_set1_epi32(qb_iq4nl_values[0])));
    float id[16];
    _mm512_storeu_ps(id, _mm512_div_ps(tries, _mm512_set1_ps(max)));
    id[0] = 1.0f / (-max / (float)qb_iq4nl_values[0]);
    const __m512 book = iq4_book(), vid = _mm512_loadu_ps(id);
    __m512 sqx = _mm512_setzero_ps(), sq2 = sqx;
    for (int j = 0; j < QB_QK32; j += 2) { /* two elements' look-ups overlap; sums stay in order */
        const __m512 x0 = _mm512_set1_ps(x[j]), w0 = _mm512_set1_ps(w[j]);
        const __m512 x1 = _mm512_set1_ps(x[j + 1]), w1 = _mm512_set1_ps(w[j + 1]);
        __m512 q0, q1;
        iq4_index16(_mm512_mul_ps(vid, x0), book, &q0);
        iq4_index16(_mm512_mul_ps(vid, x1), book, &q1);
        const __m512 wq0 = _mm512_mul_ps(w0, q0), wq1 = _mm512_mul_ps(w1, q1);
        sqx = _mm512_add_ps(sqx, _mm512_mul_ps(wq0, x0));
        sq2 = _mm512_add_ps(sq2, _mm512_mul_ps(wq0, q0));
        sqx = _mm512_add_ps(sqx, _mm512_mul_ps(wq1, x1));
        sq2 = _mm512_add_ps(sq2, _mm512_mul_ps(wq1, q1));
    }
    /* the scalar's choice, in order; each lane's d = sqx / sq2, d · sqx and sqx² made at once
     * (the same operations), the running choice without branches */
    float s2[16], dd[16], bb[16], sq[16];
    const __m512 vd = _mm512_div_ps(sqx, sq2);
    _mm512_storeu_ps(s2, sq2);
    _mm512_storeu_ps(dd, vd);
    _mm512_storeu_ps(bb, _mm512_mul_ps(vd, sqx));
    _mm512_storeu_ps(sq, _mm512_mul_ps(sqx, sqx));
    float d = dd[0], best = bb[0];
    for (int c = 1; c < 16; c++) {
        const bool take = (s2[c] > 0) & (sq[c] > best * s2[c]);
        d = take ? dd[c] : d;
        best = take ? bb[c] : best;
    }
    return d;
}

/* qb_iq4nl_group_scale's figures: the weighted search with w = x². */
static float iq4_scale_avx512(const float *x)
{
    float w[QB_QK32];
    for (int j = 0; j < QB_QK32; j++) w[j] = x[j] * x[j];
    return qb_iq4_scale_w_avx512(x, w);
}

/* qb_iq4_code_fn: the 32 codes in two registers. */
void qb_iq4_codes_avx512(const float *x, float id, uint8_t qs[16])
{
    const __m512 book = iq4_book(), vid = _mm512_set1_ps(id);
    const __m512i lo = iq4_index16(_mm512_mul_ps(vid, _mm512_loadu_ps(x)), book, NULL);
    const __m512i hi = iq4_index16(_mm512_mul_ps(vid, _mm512_loadu_ps(x + 16)), book, NULL);
    _mm_storeu_si128((__m128i *)qs, _mm512_cvtepi32_epi8(_mm512_or_si512(lo, _mm512_slli_epi32(hi, 4))));
}

bool qb_quant_kquants_avx512(int type, const float *x, void *y, int64_t nb); /* quant_kquants_avx512.c */

/* Contract (kernels.h): qb_quant_row_ref's, the same bytes. */
void qb_iq1m_scores_avx512(const float *, const float *, const int *, float[][4], float[][4]); /* quant_iq_avx512.c */

bool qb_quant_row_avx512(int type, const float *src, void *dst, int64_t n)
{
    if (type == QB_TYPE_TQ1_0 || type == QB_TYPE_TQ2_0 || type == QB_TYPE_IQ3_XXS || type == QB_TYPE_IQ3_S)
        return qb_quant_tq_iq3_avx512(type, src, dst, 1, n, NULL); /* tq_iq3_avx512.c */
    if (type == QB_TYPE_IQ1_M) return qb_quant_row_iq_with(type, src, dst, n, NULL, qb_iq1m_scores_avx512);
    if (n >= 0 && n % QB_QK_K == 0 && qb_quant_kquants_avx512(type, src, dst, n / QB_QK_K)) return true;
    if (type == QB_TYPE_IQ4_NL && n >= 0 && n % QB_QK32 == 0) {
        qb_quant_iq4_nl_with(src, dst, n / QB_QK32, iq4_scale_avx512, qb_iq4_codes_avx512);
        return true;
    }
    if (type == QB_TYPE_IQ4_XS && n >= 0 && n % QB_QK_K == 0) {
        qb_quant_iq4_xs_with(src, dst, n / QB_QK_K, iq4_scale_avx512, qb_iq4_codes_avx512);
        return true;
    }
    if (n >= 0 && (type == QB_TYPE_F16 || type == QB_TYPE_BF16)) {
        (type == QB_TYPE_F16 ? f16_row : bf16_row)(src, dst, n);
        return true;
    }
    const bool mine = type == QB_TYPE_Q8_0 || type == QB_TYPE_Q4_0 || type == QB_TYPE_Q5_0 || type == QB_TYPE_Q4_1 ||
                      type == QB_TYPE_Q5_1;
    if (!mine || n < 0 || n % QB_QK32 != 0) return qb_quant_row_avx2(type, src, dst, n);
    const int64_t nb = n / QB_QK32;
    switch (type) {
    case QB_TYPE_Q8_0: q8_0(src, dst, nb); break;
    case QB_TYPE_Q4_0: q4_0(src, dst, nb); break;
    case QB_TYPE_Q5_0: q5_0(src, dst, nb); break;
    case QB_TYPE_Q4_1: q4_1(src, dst, nb); break;
    default: q5_1(src, dst, nb); break;
    }
    return true;
}
