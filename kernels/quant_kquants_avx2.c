/* quant_kquants_avx2.c — the scale searches of the ggml quantizers in AVX2 lanes, writing
 * the same bytes as the scalar spec (quant_kquants_ref.c, quant_ref.c).
 *
 * Q2_K, Q4_K, Q5_K (and Q3_K, Q6_K below): the sub-blocks of a super-block are independent searches, so eight of
 * them run side by side, one per lane, each lane doing exactly the scalar sequence: the same
 * candidates in the same order, every sum accumulated element by element in the same order,
 * acceptance per lane (a lane's accepted candidate changes only that lane's offset). No lane
 * work is wasted, unlike batching the candidates of one sub-block. Rounding: the scalar code
 * rounds with the "add 1.5 * 2^23" bit trick; here (v + 1.5·2^23) − 1.5·2^23 in float, which is
 * the same integer for |v| < 2^22, and the clamp is done on that float. A lane that ever meets
 * a value outside that range (or NaN: degenerate blocks, huge or subnormal ranges) is redone
 * by the scalar search, so even those blocks come out byte-identical.
 *
 * IQ4_NL / IQ4_XS: the sixteen candidate scales of one group of 32 run in two vectors of
 * eight lanes; the code book index is found by comparisons (count of entries <= v) and two
 * table look-ups with permutes, then the same nearer-neighbour test as the scalar one.
 *
 * Only separate multiplies and adds (no fused multiply-add intrinsics), divisions where the
 * scalar code divides. */
#include "kernels.h"
#include "quant_k.h"
#include "tq_iq3.h"
#include "quant_iq.h"

#include "qb_types.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define GROUP_EPS 1e-15f
#define ROUND_C 12582912.0f /* 1.5 * 2^23 */

/* round to nearest even of v (|v| < 2^22), as a float */
static inline __m256 round8(__m256 v)
{
    const __m256 c = _mm256_set1_ps(ROUND_C);
    return _mm256_sub_ps(_mm256_add_ps(v, c), c);
}

/* lanes where v is outside the exact range of round8 (or NaN) */
static inline __m256 outside8(__m256 v)
{
    const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
    return _mm256_cmp_ps(a, _mm256_set1_ps(4194304.0f), _CMP_NLT_UQ);
}

/* clamp an integer-valued float to [0, hi] (not NaN: callers flag NaN lanes) */
static inline __m256 clamp8(__m256 v, __m256 hi)
{
    return _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), hi);
}

/* Eight sub-blocks (x + n * s, s = 0..7) by fit_scale_min's search, one per lane (inlined
 * into the n = 16 and n = 32 versions below). */
static inline __attribute__((always_inline)) void fit8(int n, int nmax, const float *x, const float *w, uint8_t *L, float *scales, float *neg_mins,
                 float rmin, float rdelta, int nstep, bool abs_err)
{
    __m256 X[32], W[32], best_code[32], code[32];
    for (int i = 0; i < n; i++) {
        X[i] = _mm256_setr_ps(x[i], x[n + i], x[2 * n + i], x[3 * n + i], x[4 * n + i], x[5 * n + i], x[6 * n + i],
                              x[7 * n + i]);
        W[i] = _mm256_setr_ps(w[i], w[n + i], w[2 * n + i], w[3 * n + i], w[4 * n + i], w[5 * n + i], w[6 * n + i],
                              w[7 * n + i]);
    }
    const __m256 zero = _mm256_setzero_ps(), vnmax = _mm256_set1_ps((float)nmax);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 min = X[0], max = X[0], sum_w = W[0], sum_x = _mm256_mul_ps(W[0], X[0]);
    for (int i = 1; i < n; i++) {
        min = _mm256_min_ps(X[i], min); /* x < min ? x : min */
        max = _mm256_max_ps(X[i], max); /* x > max ? x : max */
        sum_w = _mm256_add_ps(sum_w, W[i]);
        sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(W[i], X[i]));
    }
    min = _mm256_blendv_ps(min, zero, _mm256_cmp_ps(min, zero, _CMP_GT_OQ)); /* if (min > 0) min = 0 */
    const __m256 flat = _mm256_cmp_ps(max, min, _CMP_EQ_OQ);            /* the scalar returns early */
    const __m256 iscale0 = _mm256_div_ps(vnmax, _mm256_sub_ps(max, min));
    __m256 scale = _mm256_div_ps(_mm256_set1_ps(1.0f), iscale0);
    __m256 best_err = zero, bad = zero;
    for (int i = 0; i < n; i++) {
        const __m256 v = _mm256_mul_ps(iscale0, _mm256_sub_ps(X[i], min));
        bad = _mm256_or_ps(bad, outside8(v));
        best_code[i] = clamp8(round8(v), vnmax);
        const __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, best_code[i]), min), X[i]);
        const __m256 e = abs_err ? _mm256_andnot_ps(sign, diff) : _mm256_mul_ps(diff, diff);
        best_err = _mm256_add_ps(best_err, _mm256_mul_ps(W[i], e));
    }
    for (int k = 0; k <= nstep; k++) {
        float a = rmin + rdelta * (float)k;
        a = a + (float)nmax;
        const __m256 isc = _mm256_div_ps(_mm256_set1_ps(a), _mm256_sub_ps(max, min));
        __m256 sl = zero, sl2 = zero, sxl = zero;
        for (int i = 0; i < n; i++) {
            const __m256 v = _mm256_mul_ps(isc, _mm256_sub_ps(X[i], min));
            bad = _mm256_or_ps(bad, outside8(v));
            const __m256 l = clamp8(round8(v), vnmax);
            code[i] = l;
            const __m256 wl = _mm256_mul_ps(W[i], l);
            sl = _mm256_add_ps(sl, wl);
            sl2 = _mm256_add_ps(sl2, _mm256_mul_ps(wl, l));
            sxl = _mm256_add_ps(sxl, _mm256_mul_ps(wl, X[i]));
        }
        const __m256 det = _mm256_sub_ps(_mm256_mul_ps(sum_w, sl2), _mm256_mul_ps(sl, sl));
        const __m256 ok = _mm256_cmp_ps(det, zero, _CMP_GT_OQ);
        __m256 s = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_w, sxl), _mm256_mul_ps(sum_x, sl)), det);
        __m256 m = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sl2, sum_x), _mm256_mul_ps(sl, sxl)), det);
        const __m256 pos = _mm256_cmp_ps(m, zero, _CMP_GT_OQ);
        m = _mm256_blendv_ps(m, zero, pos);
        s = _mm256_blendv_ps(s, _mm256_div_ps(sxl, sl2), pos);
        s = _mm256_and_ps(s, ok); /* the scalar leaves 0 where the fit does not exist */
        m = _mm256_and_ps(m, ok);
        __m256 err = zero;
        for (int i = 0; i < n; i++) {
            const __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(s, code[i]), m), X[i]);
            const __m256 e = abs_err ? _mm256_andnot_ps(sign, diff) : _mm256_mul_ps(diff, diff);
            err = _mm256_add_ps(err, _mm256_mul_ps(W[i], e));
        }
        const __m256 take = _mm256_andnot_ps(flat, _mm256_and_ps(ok, _mm256_cmp_ps(err, best_err, _CMP_LT_OQ)));
        if (_mm256_movemask_ps(take)) {
            for (int i = 0; i < n; i++) best_code[i] = _mm256_blendv_ps(best_code[i], code[i], take);
            best_err = _mm256_blendv_ps(best_err, err, take);
            scale = _mm256_blendv_ps(scale, s, take);
            min = _mm256_blendv_ps(min, m, take);
        }
    }
    float sc[8], mn[8], cd[32][8];
    _mm256_storeu_ps(sc, _mm256_andnot_ps(flat, scale));
    _mm256_storeu_ps(mn, min);
    for (int i = 0; i < n; i++) _mm256_storeu_ps(cd[i], _mm256_andnot_ps(flat, best_code[i]));
    const int redo = _mm256_movemask_ps(_mm256_andnot_ps(flat, bad));
    for (int s = 0; s < 8; s++) {
        if (redo >> s & 1) {
            qb_kfit_ref(1, n, nmax, x + n * s, w + n * s, L + n * s, &scales[s], &neg_mins[s], rmin, rdelta, nstep,
                        abs_err);
            continue;
        }
        scales[s] = sc[s];
        neg_mins[s] = -mn[s];
        for (int i = 0; i < n; i++) L[n * s + i] = (uint8_t)cd[i][s];
    }
}

static void fit8_16(int nmax, const float *x, const float *w, uint8_t *L, float *scales, float *neg_mins, float rmin,
                    float rdelta, int nstep, bool abs_err)
{
    fit8(16, nmax, x, w, L, scales, neg_mins, rmin, rdelta, nstep, abs_err);
}

static void fit8_32(int nmax, const float *x, const float *w, uint8_t *L, float *scales, float *neg_mins, float rmin,
                    float rdelta, int nstep, bool abs_err)
{
    fit8(32, nmax, x, w, L, scales, neg_mins, rmin, rdelta, nstep, abs_err);
}

static void kfit_avx2(int nsub, int n, int nmax, const float *x, const float *w, uint8_t *L, float *scales,
                      float *neg_mins, float rmin, float rdelta, int nstep, bool abs_err)
{
    int s = 0;
    if (n == 16 || n == 32)
        for (; s + 8 <= nsub; s += 8)
            (n == 16 ? fit8_16 : fit8_32)(nmax, x + n * s, w + n * s, L + n * s, scales + s, neg_mins + s, rmin, rdelta,
                                          nstep, abs_err);
    if (s < nsub)
        qb_kfit_ref(nsub - s, n, nmax, x + n * s, w + n * s, L + n * s, scales + s, neg_mins + s, rmin, rdelta, nstep,
                    abs_err);
}

/* ---- Q6_K and Q3_K: symmetric sub-blocks of 16, eight at a time --------------------------------- */

/* Transpose eight sub-blocks of 16 (x + 16 s) into X[i] = element i of each; the signed value
 * of largest magnitude (the first on ties) of each lane into *max, its magnitude into *amax. */
static inline void load16x8(const float *x, __m256 X[16], __m256 *amax, __m256 *max)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 am = _mm256_setzero_ps(), mx = am;
    for (int i = 0; i < 16; i++) {
        X[i] = _mm256_setr_ps(x[i], x[16 + i], x[32 + i], x[48 + i], x[64 + i], x[80 + i], x[96 + i], x[112 + i]);
        const __m256 a = _mm256_andnot_ps(sign, X[i]);
        const __m256 gt = _mm256_cmp_ps(a, am, _CMP_GT_OQ);
        am = _mm256_blendv_ps(am, a, gt);
        mx = _mm256_blendv_ps(mx, X[i], gt);
    }
    *amax = am;
    *max = mx;
}

/* codes (integer-valued floats, biased) of lane s into L + 16 s */
static inline void store_codes16x8(const __m256 C[16], int8_t *L)
{
    float c[16][8];
    for (int i = 0; i < 16; i++) _mm256_storeu_ps(c[i], C[i]);
    for (int s = 0; s < 8; s++)
        for (int i = 0; i < 16; i++) L[16 * s + i] = (int8_t)c[i][s];
}

/* fit_scale_sym (nmax 32) of eight sub-blocks, one per lane: all nineteen candidates in turn,
 * each lane keeping its own best. */
static void fit_q6_8(const float *x, int8_t *L, float *scales)
{
    enum { NMAX = 32 };
    __m256 X[16], W[16], WX[16], amax, max;
    load16x8(x, X, &amax, &max);
    for (int i = 0; i < 16; i++) {
        W[i] = _mm256_mul_ps(X[i], X[i]);
        WX[i] = _mm256_mul_ps(W[i], X[i]);
    }
    const __m256 zero = _mm256_setzero_ps(), lo = _mm256_set1_ps(-NMAX), hi = _mm256_set1_ps(NMAX - 1);
    const __m256 empty = _mm256_cmp_ps(amax, _mm256_set1_ps(GROUP_EPS), _CMP_LT_OQ);
    __m256 bad = zero, scale = zero, best = zero, best_isc = zero;
    for (int k = 0; k < 19; k++) {
        const int c = k == 0 ? 9 : k <= 9 ? k - 1 : k; /* lane order of the scalar: 9 first */
        const float a = (float)NMAX + 0.1f * (float)(c - 9);
        const __m256 isc = _mm256_div_ps(_mm256_set1_ps(-a), max);
        __m256 slx = zero, sl2 = zero;
        for (int i = 0; i < 16; i++) {
            const __m256 v = _mm256_mul_ps(isc, X[i]);
            bad = _mm256_or_ps(bad, outside8(v));
            const __m256 l = _mm256_min_ps(_mm256_max_ps(round8(v), lo), hi);
            slx = _mm256_add_ps(slx, _mm256_mul_ps(WX[i], l));
            sl2 = _mm256_add_ps(sl2, _mm256_mul_ps(_mm256_mul_ps(W[i], l), l));
        }
        if (c == 9) {
            scale = _mm256_and_ps(_mm256_div_ps(slx, sl2), _mm256_cmp_ps(sl2, zero, _CMP_NEQ_UQ));
            best = _mm256_mul_ps(scale, slx);
            best_isc = isc;
            continue;
        }
        const __m256 take = _mm256_and_ps(_mm256_cmp_ps(sl2, zero, _CMP_GT_OQ),
                                          _mm256_cmp_ps(_mm256_mul_ps(slx, slx), _mm256_mul_ps(best, sl2), _CMP_GT_OQ));
        const __m256 sc = _mm256_div_ps(slx, sl2);
        scale = _mm256_blendv_ps(scale, sc, take);
        best = _mm256_blendv_ps(best, _mm256_mul_ps(sc, slx), take);
        best_isc = _mm256_blendv_ps(best_isc, isc, take);
    }
    __m256 C[16];
    for (int i = 0; i < 16; i++) {
        const __m256 l = _mm256_min_ps(_mm256_max_ps(round8(_mm256_mul_ps(best_isc, X[i])), lo), hi);
        C[i] = _mm256_andnot_ps(empty, _mm256_add_ps(l, _mm256_set1_ps(NMAX)));
    }
    store_codes16x8(C, L);
    _mm256_storeu_ps(scales, _mm256_andnot_ps(empty, scale));
    const int redo = _mm256_movemask_ps(_mm256_andnot_ps(empty, bad));
    for (int s = 0; s < 8; s++)
        if (redo >> s & 1) qb_kfit_q6_ref(1, x + 16 * s, L + 16 * s, &scales[s]);
}

/* fit_scale_q3 of eight sub-blocks, one per lane: the same sweeps, a lane leaving the loop
 * after its first sweep without a change (as the scalar one breaks). */
static void fit_q3_8(const float *x, int8_t *L, float *scales)
{
    enum { NMAX = 4 };
    __m256 X[16], W[16], WX[16], Lc[16], amax, max;
    load16x8(x, X, &amax, &max);
    const __m256 zero = _mm256_setzero_ps(), lo = _mm256_set1_ps(-NMAX), hi = _mm256_set1_ps(NMAX - 1);
    const __m256 empty = _mm256_cmp_ps(amax, _mm256_set1_ps(GROUP_EPS), _CMP_LT_OQ);
    const __m256 iscale = _mm256_div_ps(_mm256_set1_ps((float)-NMAX), max);
    __m256 bad = zero, sumlx = zero, suml2 = zero;
    for (int i = 0; i < 16; i++) {
        const __m256 v = _mm256_mul_ps(iscale, X[i]);
        bad = _mm256_or_ps(bad, outside8(v));
        Lc[i] = _mm256_min_ps(_mm256_max_ps(round8(v), lo), hi);
        W[i] = _mm256_mul_ps(X[i], X[i]);
        WX[i] = _mm256_mul_ps(W[i], X[i]);
        sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(WX[i], Lc[i]));
        suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(W[i], Lc[i]), Lc[i]));
    }
    __m256 active = _mm256_andnot_ps(empty, _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
    for (int sweep = 0; sweep < 5 && _mm256_movemask_ps(active); sweep++) {
        __m256 changed = zero;
        for (int i = 0; i < 16; i++) {
            __m256 slx = _mm256_sub_ps(sumlx, _mm256_mul_ps(WX[i], Lc[i]));
            const __m256 pos = _mm256_cmp_ps(slx, zero, _CMP_GT_OQ);
            __m256 sl2 = _mm256_sub_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(W[i], Lc[i]), Lc[i]));
            const __m256 v = _mm256_div_ps(_mm256_mul_ps(X[i], sl2), slx);
            const __m256 live = _mm256_and_ps(active, pos);
            bad = _mm256_or_ps(bad, _mm256_and_ps(live, outside8(v)));
            const __m256 l = _mm256_min_ps(_mm256_max_ps(round8(v), lo), hi);
            slx = _mm256_add_ps(slx, _mm256_mul_ps(WX[i], l));
            sl2 = _mm256_add_ps(sl2, _mm256_mul_ps(_mm256_mul_ps(W[i], l), l));
            const __m256 better = _mm256_and_ps(
                _mm256_cmp_ps(sl2, zero, _CMP_GT_OQ),
                _mm256_cmp_ps(_mm256_mul_ps(_mm256_mul_ps(slx, slx), suml2),
                              _mm256_mul_ps(_mm256_mul_ps(sumlx, sumlx), sl2), _CMP_GT_OQ));
            const __m256 upd = _mm256_and_ps(_mm256_and_ps(live, _mm256_cmp_ps(l, Lc[i], _CMP_NEQ_OQ)), better);
            Lc[i] = _mm256_blendv_ps(Lc[i], l, upd);
            sumlx = _mm256_blendv_ps(sumlx, slx, upd);
            suml2 = _mm256_blendv_ps(suml2, sl2, upd);
            changed = _mm256_or_ps(changed, upd);
        }
        active = _mm256_and_ps(active, changed);
    }
    __m256 C[16];
    for (int i = 0; i < 16; i++) C[i] = _mm256_andnot_ps(empty, _mm256_add_ps(Lc[i], _mm256_set1_ps(NMAX)));
    store_codes16x8(C, L);
    _mm256_storeu_ps(scales, _mm256_andnot_ps(empty, _mm256_div_ps(sumlx, suml2)));
    const int redo = _mm256_movemask_ps(_mm256_andnot_ps(empty, bad));
    for (int s = 0; s < 8; s++)
        if (redo >> s & 1) qb_kfit_q3_ref(1, x + 16 * s, L + 16 * s, &scales[s]);
}

static void kfit_q6_avx2(int nsub, const float *x, int8_t *L, float *scales)
{
    int s = 0;
    for (; s + 8 <= nsub; s += 8) fit_q6_8(x + 16 * s, L + 16 * s, scales + s);
    if (s < nsub) qb_kfit_q6_ref(nsub - s, x + 16 * s, L + 16 * s, scales + s);
}

static void kfit_q3_avx2(int nsub, const float *x, int8_t *L, float *scales)
{
    int s = 0;
    for (; s + 8 <= nsub; s += 8) fit_q3_8(x + 16 * s, L + 16 * s, scales + s);
    if (s < nsub) qb_kfit_q3_ref(nsub - s, x + 16 * s, L + 16 * s, scales + s);
}

/* qb_kcode_fn (quant_k.h): 8 codes at a time, the scalar's division and rounding bits. */
static void kcode_avx2(const float *x, int n, float dm, float d, int lo, int hi, uint8_t *L)
{
    const __m256 vdm = _mm256_set1_ps(dm), vd = _mm256_set1_ps(d), c = _mm256_set1_ps(ROUND_C);
    const __m256i vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 t = _mm256_add_ps(_mm256_div_ps(_mm256_add_ps(_mm256_loadu_ps(x + i), vdm), vd), c);
        __m256i v = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(t), _mm256_set1_epi32(0x007fffff)),
                                     _mm256_set1_epi32(0x00400000));
        v = _mm256_sub_epi32(_mm256_min_epi32(_mm256_max_epi32(v, vlo), vhi), vlo);
        const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)(L + i), _mm_packus_epi16(w, w));
    }
    if (i < n) qb_kcode_ref(x + i, n - i, dm, d, lo, hi, L + i);
}

/* ---- IQ4_NL code book ----------------------------------------------------------------------- */

static const float iq4_book[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

/* book[idx] for 16-entry tables held as two halves */
static inline __m256 lookup16(__m256 lo_half, __m256 hi_half, __m256i idx)
{
    const __m256 a = _mm256_permutevar8x32_ps(lo_half, idx), b = _mm256_permutevar8x32_ps(hi_half, idx);
    const __m256i high = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7));
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(high));
}

/* The code book value nearest v, with iq4_index's rules (quant_ref.c): the entry at the count
 * of midpoints at or below v (NaN: the last), found in four halving steps over the midpoint
 * tables (blocks.h; why this is the reference's index for every float: quant_avx512.c). */
static inline __m256 iq4_value8(__m256 v, __m256 book_lo, __m256 book_hi)
{
    __m256i i = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(v, _mm256_set1_ps(qb_iq4nl_mid_at[3][0]), _CMP_GE_OQ)),
                                 _mm256_set1_epi32(8));
    for (int s = 2; s >= 0; s--) {
        const __m256 m = lookup16(_mm256_loadu_ps(qb_iq4nl_mid_at[s]), _mm256_loadu_ps(qb_iq4nl_mid_at[s] + 8), i);
        i = _mm256_add_epi32(i, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(v, m, _CMP_GE_OQ)),
                                                 _mm256_set1_epi32(1 << s)));
    }
    i = _mm256_blendv_epi8(i, _mm256_set1_epi32(15), _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
    return lookup16(book_lo, book_hi, i);
}

float qb_iq4_scale_w_avx2(const float *x, const float *w)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QB_QK32; j++) {
        const float a = fabsf(x[j]);
        if (amax < a) {
            amax = a;
            max = x[j];
        }
    }
    if (amax < GROUP_EPS) return 0.0f;
    float id[16];
    id[0] = 1.0f / (-max / iq4_book[0]);
    for (int t = -7; t <= 7; t++) id[8 + t] = (float)(t + qb_iq4nl_values[0]) / max;
    const __m256 book_lo = _mm256_loadu_ps(iq4_book), book_hi = _mm256_loadu_ps(iq4_book + 8);
    const __m256 id0 = _mm256_loadu_ps(id), id1 = _mm256_loadu_ps(id + 8);
    __m256 sqx0 = _mm256_setzero_ps(), sq20 = sqx0, sqx1 = sqx0, sq21 = sqx0;
    for (int j = 0; j < QB_QK32; j++) {
        const __m256 xj = _mm256_set1_ps(x[j]), wj = _mm256_set1_ps(w[j]);
        const __m256 q0 = iq4_value8(_mm256_mul_ps(id0, xj), book_lo, book_hi);
        const __m256 q1 = iq4_value8(_mm256_mul_ps(id1, xj), book_lo, book_hi);
        const __m256 wq0 = _mm256_mul_ps(wj, q0), wq1 = _mm256_mul_ps(wj, q1);
        sqx0 = _mm256_add_ps(sqx0, _mm256_mul_ps(wq0, xj));
        sqx1 = _mm256_add_ps(sqx1, _mm256_mul_ps(wq1, xj));
        sq20 = _mm256_add_ps(sq20, _mm256_mul_ps(wq0, q0));
        sq21 = _mm256_add_ps(sq21, _mm256_mul_ps(wq1, q1));
    }
    float sqx[16], sq2[16];
    _mm256_storeu_ps(sqx, sqx0);
    _mm256_storeu_ps(sqx + 8, sqx1);
    _mm256_storeu_ps(sq2, sq20);
    _mm256_storeu_ps(sq2 + 8, sq21);
    float d = sqx[0] / sq2[0], best = d * sqx[0];
    for (int c = 1; c < 16; c++) {
        if (sq2[c] > 0 && sqx[c] * sqx[c] > best * sq2[c]) {
            d = sqx[c] / sq2[c];
            best = d * sqx[c];
        }
    }
    return d;
}

/* qb_iq4nl_group_scale's figures: the weighted search with w = x². */
static float iq4_scale_avx2(const float *x)
{
    float w[QB_QK32];
    for (int j = 0; j < QB_QK32; j++) w[j] = x[j] * x[j];
    return qb_iq4_scale_w_avx2(x, w);
}

/* ---- the row quantizer ------------------------------------------------------------------------ */

/* Contract (kernels.h): qb_quant_row_ref's, with the searches above for Q2_K..Q6_K,
 * IQ4_NL and IQ4_XS; every other type goes to the reference. */
void qb_iq1m_scores_avx2(const float *, const float *, const int *, float[][4], float[][4]); /* quant_iq_avx2.c */

bool qb_quant_row_avx2(int type, const float *src, void *dst, int64_t n)
{
    if (type == QB_TYPE_TQ1_0 || type == QB_TYPE_TQ2_0 || type == QB_TYPE_IQ3_XXS || type == QB_TYPE_IQ3_S)
        return qb_quant_tq_iq3_avx2(type, src, dst, 1, n, NULL); /* tq_iq3_avx2.c */
    if (type == QB_TYPE_IQ1_M) return qb_quant_row_iq_with(type, src, dst, n, NULL, qb_iq1m_scores_avx2);
    const int64_t blk = type == QB_TYPE_IQ4_NL ? QB_QK32 : QB_QK_K;
    const bool mine = type == QB_TYPE_Q2_K || type == QB_TYPE_Q3_K || type == QB_TYPE_Q4_K || type == QB_TYPE_Q5_K ||
                      type == QB_TYPE_Q6_K ||
                      type == QB_TYPE_IQ4_XS || type == QB_TYPE_IQ4_NL;
    if (!mine || n < 0 || n % blk != 0) return qb_quant_row_ref(type, src, dst, n);
    const int64_t nb = n / blk;
    switch (type) {
    case QB_TYPE_Q2_K: qb_quant_q2_K_with(src, dst, nb, kfit_avx2, kcode_avx2); break;
    case QB_TYPE_Q3_K: qb_quant_q3_K_with(src, dst, nb, kfit_q3_avx2, kcode_avx2); break;
    case QB_TYPE_Q4_K: qb_quant_q4_K_with(src, dst, nb, kfit_avx2, kcode_avx2); break;
    case QB_TYPE_Q5_K: qb_quant_q5_K_with(src, dst, nb, kfit_avx2, kcode_avx2); break;
    case QB_TYPE_Q6_K: qb_quant_q6_K_with(src, dst, nb, kfit_q6_avx2, kcode_avx2); break;
    case QB_TYPE_IQ4_XS: qb_quant_iq4_xs_with(src, dst, nb, iq4_scale_avx2, qb_iq4nl_codes_ref); break;
    default: qb_quant_iq4_nl_with(src, dst, nb, iq4_scale_avx2, qb_iq4nl_codes_ref); break;
    }
    return true;
}

/* ---- weighted symmetric fits (make_qx_quants with importance) ----------------------------------- */

/* qb_kfit_sw_fn for k <= 8 sub-blocks of n (16 or 32) values, one per lane: the reference's
 * candidates in its order (k = 0, then -9..-1, 1..9), sums element by element, acceptance per
 * lane; rounding by the 1.5·2^23 trick in integers (the reference's bits for every input). */
static void fit_sw8(int k, int n, int nmax, const float *x, const float *w, int8_t *L, float *scales)
{
    float xt[32][8] = {{0}}, wt[32][8] = {{0}};
    for (int s = 0; s < k; s++)
        for (int i = 0; i < n; i++) {
            xt[i][s] = x[n * s + i];
            wt[i][s] = w[n * s + i];
        }
    __m256 X[32], W[32], WX[32];
    __m256 am = _mm256_setzero_ps(), mx = am;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int i = 0; i < n; i++) {
        X[i] = _mm256_loadu_ps(xt[i]);
        W[i] = _mm256_loadu_ps(wt[i]);
        WX[i] = _mm256_mul_ps(W[i], X[i]);
        const __m256 a = _mm256_andnot_ps(sign, X[i]);
        const __m256 gt = _mm256_cmp_ps(a, am, _CMP_GT_OQ);
        am = _mm256_blendv_ps(am, a, gt);
        mx = _mm256_blendv_ps(mx, X[i], gt);
    }
    const __m256 empty = _mm256_cmp_ps(am, _mm256_set1_ps(GROUP_EPS), _CMP_LT_OQ);
    const __m256i lo = _mm256_set1_epi32(-nmax), hi = _mm256_set1_epi32(nmax - 1);
    const __m256i mant = _mm256_set1_epi32(0x007fffff), half = _mm256_set1_epi32(0x00400000);
    const __m256 rc = _mm256_set1_ps(ROUND_C), zero = _mm256_setzero_ps();
    __m256 scale = zero, best = zero, win = zero;
    for (int c = 0; c < 19; c++) {
        const int is = c == 0 ? 0 : c <= 9 ? c - 10 : c - 9; /* 0, -9..-1, 1..9 */
        const __m256 isc = _mm256_div_ps(_mm256_set1_ps(-((float)nmax + 0.1f * (float)is)), mx);
        __m256 slx = zero, sl2 = zero;
        for (int i = 0; i < n; i++) {
            const __m256i t = _mm256_castps_si256(_mm256_add_ps(_mm256_mul_ps(isc, X[i]), rc));
            __m256i l = _mm256_sub_epi32(_mm256_and_si256(t, mant), half);
            l = _mm256_max_epi32(_mm256_min_epi32(l, hi), lo);
            const __m256 lf = _mm256_cvtepi32_ps(l);
            slx = _mm256_add_ps(slx, _mm256_mul_ps(WX[i], lf));
            sl2 = _mm256_add_ps(sl2, _mm256_mul_ps(_mm256_mul_ps(W[i], lf), lf));
        }
        if (c == 0) {
            const __m256 nz = _mm256_cmp_ps(sl2, zero, _CMP_NEQ_UQ);
            scale = _mm256_and_ps(nz, _mm256_div_ps(slx, sl2));
            best = _mm256_mul_ps(scale, slx);
            win = isc;
        } else {
            const __m256 acc = _mm256_and_ps(_mm256_cmp_ps(sl2, zero, _CMP_GT_OQ),
                                             _mm256_cmp_ps(_mm256_mul_ps(slx, slx), _mm256_mul_ps(best, sl2), _CMP_GT_OQ));
            const __m256 ns = _mm256_div_ps(slx, sl2);
            scale = _mm256_blendv_ps(scale, ns, acc);
            best = _mm256_blendv_ps(best, _mm256_mul_ps(ns, slx), acc);
            win = _mm256_blendv_ps(win, isc, acc);
        }
    }
    int32_t codes[32][8];
    for (int i = 0; i < n; i++) {
        const __m256i t = _mm256_castps_si256(_mm256_add_ps(_mm256_mul_ps(win, X[i]), rc));
        __m256i l = _mm256_sub_epi32(_mm256_and_si256(t, mant), half);
        l = _mm256_add_epi32(_mm256_max_epi32(_mm256_min_epi32(l, hi), lo), _mm256_set1_epi32(nmax));
        _mm256_storeu_si256((__m256i *)codes[i], _mm256_andnot_si256(_mm256_castps_si256(empty), l));
    }
    float sc[8];
    _mm256_storeu_ps(sc, _mm256_andnot_ps(empty, scale));
    for (int s = 0; s < k; s++) {
        scales[s] = sc[s];
        for (int i = 0; i < n; i++) L[n * s + i] = (int8_t)codes[i][s];
    }
}

/* qb_kfit_sw_fn: sets of 8 sub-blocks; other lengths than 16 and 32 go to the reference. */
static void kfit_sw_avx2(int nsub, int n, int nmax, const float *x, const float *w, int8_t *L, float *scales)
{
    if (n != 16 && n != 32) {
        qb_kfit_sw_ref(nsub, n, nmax, x, w, L, scales);
        return;
    }
    for (int s = 0; s < nsub; s += 8) fit_sw8(nsub - s < 8 ? nsub - s : 8, n, nmax, x + n * s, w + n * s, L + n * s, scales + s);
}

/* ---- with importance weights ------------------------------------------------------------------ */

/* Contract (kernels.h): qb_quant_row_w_ref's bytes, the affine searches and final codes in
 * the lanes above. */
bool qb_quant_row_w_avx2(int type, const float *src, void *dst, int64_t n, const float *qw)
{
    static const qb_wquant_pieces pieces = {
        .fit = kfit_avx2,
        .fit_sw = kfit_sw_avx2,
        .code = kcode_avx2,
        .iq4_scale = qb_iq4_scale_w_avx2,
        .iq4_codes = qb_iq4nl_codes_ref,
    };
    if (qw && qb_quant_grid_iq(type)) return qb_quant_row_iq_with(type, src, dst, n, qw, qb_iq1m_scores_avx2);
    if (!qw || !qb_quant_weighted(type)) return qb_quant_row_avx2(type, src, dst, n);
    if (type == QB_TYPE_IQ3_XXS || type == QB_TYPE_IQ3_S) return qb_quant_tq_iq3_avx2(type, src, dst, 1, n, qw);
    return qb_quant_row_w_with(type, src, dst, n, qw, &pieces);
}
