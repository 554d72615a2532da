/* quant_kquants_avx512.c — the scale searches of the K-quants in AVX-512 lanes, writing the
 * bytes of the scalar spec (quant_kquants_ref.c): quant_kquants_avx2.c's design with 16
 * sub-blocks side by side, one per lane, each lane doing exactly the scalar sequence (the same
 * candidates in the same order, every sum accumulated element by element, acceptance per
 * lane). Q2_K, Q3_K and Q6_K fill the 16 lanes with one super-block; Q4_K and Q5_K with two
 * (their quantizers fit two super-blocks per call). Rounding is the scalar's 1.5·2^23 trick,
 * exact for |v| < 2^22; a lane that could meet a value outside that range (or a NaN) is redone
 * by the scalar search. In the affine search that test is made once per candidate rather than
 * per element: every v = isc·(x − m) lies within |isc|·max(|max − m|, |min − m|) (rounding is
 * monotone), so when that bound is below 2^22 no element can be outside; otherwise the lane is
 * redone (never fewer lanes than the per-element test would flag). Separate multiplies and
 * adds, divisions where the scalar divides. */
#include "kernels.h"
#include "quant_k.h"

#include "qb_types.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))
#define GROUP_EPS 1e-15f
#define ROUND_C 12582912.0f /* 1.5 * 2^23 */
#define ROUND_MAX 4194304.0f /* 2^22 */

/* round to nearest even of v (|v| < 2^22), as a float */
AI __m512 round16(__m512 v)
{
    const __m512 c = _mm512_set1_ps(ROUND_C);
    return _mm512_sub_ps(_mm512_add_ps(v, c), c);
}

/* lanes where |v| is not below 2^22 (or NaN) */
AI __mmask16 outside16(__m512 v) { return _mm512_cmp_ps_mask(_mm512_abs_ps(v), _mm512_set1_ps(ROUND_MAX), _CMP_NLT_UQ); }

/* Lane s's element offsets: sub-block s (of `len` elements) for s < nsub, else sub-block 0. */
AI __m512i lane_offsets(int nsub, int len)
{
    const __m512i s = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __mmask16 live = (__mmask16)((1u << nsub) - 1);
    return _mm512_maskz_mullo_epi32(live, s, _mm512_set1_epi32(len));
}

/* Element i of every lane's sub-block. */
AI __m512 gather_i(const float *p, __m512i off, int i) { return _mm512_i32gather_ps(off, p + i, 4); }

/* Codes C[i] (integer-valued floats < 256) of lane s into L + len·s, s < nsub. */
static void store_codes(const __m512 *C, int len, int nsub, uint8_t *L)
{
    uint8_t t[32][16];
    for (int i = 0; i < len; i++) _mm_storeu_si128((__m128i *)t[i], _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(C[i])));
    for (int s = 0; s < nsub; s++)
        for (int i = 0; i < len; i++) L[len * s + i] = t[i][s];
}

/* fit_scale_min's search (quant_kquants_ref.c) of nsub <= 16 sub-blocks of n (16 or 32), one per lane. */
AI void fit16(int nsub, int n, int nmax, const float *x, const float *w, uint8_t *L, float *scales, float *neg_mins,
              float rmin, float rdelta, int nstep, bool abs_err)
{
    const __m512i off = lane_offsets(nsub, n);
    __m512 X[32], W[32], best_code[32], code[32];
    __mmask16 bad = 0;
    for (int i = 0; i < n; i++) {
        X[i] = gather_i(x, off, i);
        W[i] = gather_i(w, off, i);
        bad |= _mm512_cmp_ps_mask(X[i], X[i], _CMP_UNORD_Q);
    }
    const __m512 zero = _mm512_setzero_ps(), vnmax = _mm512_set1_ps((float)nmax), big = _mm512_set1_ps(ROUND_MAX);
    __m512 min = X[0], max = X[0], sum_w = W[0], sum_x = _mm512_mul_ps(W[0], X[0]);
    for (int i = 1; i < n; i++) {
        min = _mm512_min_ps(X[i], min); /* x < min ? x : min */
        max = _mm512_max_ps(X[i], max);
        sum_w = _mm512_add_ps(sum_w, W[i]);
        sum_x = _mm512_add_ps(sum_x, _mm512_mul_ps(W[i], X[i]));
    }
    const __m512 data_min = min;
    min = _mm512_mask_mov_ps(min, _mm512_cmp_ps_mask(min, zero, _CMP_GT_OQ), zero); /* if (min > 0) min = 0 */
    const __mmask16 flat = _mm512_cmp_ps_mask(max, min, _CMP_EQ_OQ);             /* the scalar returns early */
    const __m512 iscale0 = _mm512_div_ps(vnmax, _mm512_sub_ps(max, min));
    __m512 scale = _mm512_div_ps(_mm512_set1_ps(1.0f), iscale0);
    __m512 best_err = zero;
    for (int i = 0; i < n; i++) {
        const __m512 v = _mm512_mul_ps(iscale0, _mm512_sub_ps(X[i], min));
        bad |= outside16(v);
        best_code[i] = _mm512_min_ps(_mm512_max_ps(round16(v), zero), vnmax);
        const __m512 diff = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(scale, best_code[i]), min), X[i]);
        const __m512 e = abs_err ? _mm512_abs_ps(diff) : _mm512_mul_ps(diff, diff);
        best_err = _mm512_add_ps(best_err, _mm512_mul_ps(W[i], e));
    }
    for (int k = 0; k <= nstep; k++) {
        float a = rmin + rdelta * (float)k;
        a = a + (float)nmax;
        const __m512 isc = _mm512_div_ps(_mm512_set1_ps(a), _mm512_sub_ps(max, min));
        /* every isc·(x − min) is within |isc|·max(|max − min|, |data_min − min|) */
        const __m512 reach = _mm512_max_ps(_mm512_abs_ps(_mm512_sub_ps(max, min)), _mm512_abs_ps(_mm512_sub_ps(data_min, min)));
        bad |= _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_abs_ps(isc), reach), big, _CMP_NLT_UQ);
        __m512 sl = zero, sl2 = zero, sxl = zero;
        for (int i = 0; i < n; i++) {
            const __m512 l = _mm512_min_ps(_mm512_max_ps(round16(_mm512_mul_ps(isc, _mm512_sub_ps(X[i], min))), zero), vnmax);
            code[i] = l;
            const __m512 wl = _mm512_mul_ps(W[i], l);
            sl = _mm512_add_ps(sl, wl);
            sl2 = _mm512_add_ps(sl2, _mm512_mul_ps(wl, l));
            sxl = _mm512_add_ps(sxl, _mm512_mul_ps(wl, X[i]));
        }
        const __m512 det = _mm512_sub_ps(_mm512_mul_ps(sum_w, sl2), _mm512_mul_ps(sl, sl));
        const __mmask16 ok = _mm512_cmp_ps_mask(det, zero, _CMP_GT_OQ);
        __m512 s = _mm512_div_ps(_mm512_sub_ps(_mm512_mul_ps(sum_w, sxl), _mm512_mul_ps(sum_x, sl)), det);
        __m512 m = _mm512_div_ps(_mm512_sub_ps(_mm512_mul_ps(sl2, sum_x), _mm512_mul_ps(sl, sxl)), det);
        const __mmask16 pos = _mm512_cmp_ps_mask(m, zero, _CMP_GT_OQ);
        m = _mm512_mask_mov_ps(m, pos, zero);
        s = _mm512_mask_mov_ps(s, pos, _mm512_div_ps(sxl, sl2));
        s = _mm512_maskz_mov_ps(ok, s); /* the scalar leaves 0 where the fit does not exist */
        m = _mm512_maskz_mov_ps(ok, m);
        __m512 err = zero;
        for (int i = 0; i < n; i++) {
            const __m512 diff = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(s, code[i]), m), X[i]);
            const __m512 e = abs_err ? _mm512_abs_ps(diff) : _mm512_mul_ps(diff, diff);
            err = _mm512_add_ps(err, _mm512_mul_ps(W[i], e));
        }
        const __mmask16 take = (__mmask16)(~flat & ok & _mm512_cmp_ps_mask(err, best_err, _CMP_LT_OQ));
        if (take) {
            for (int i = 0; i < n; i++) best_code[i] = _mm512_mask_mov_ps(best_code[i], take, code[i]);
            best_err = _mm512_mask_mov_ps(best_err, take, err);
            scale = _mm512_mask_mov_ps(scale, take, s);
            min = _mm512_mask_mov_ps(min, take, m);
        }
    }
    for (int i = 0; i < n; i++) best_code[i] = _mm512_maskz_mov_ps((__mmask16)~flat, best_code[i]);
    float sc[16], mn[16];
    _mm512_storeu_ps(sc, _mm512_maskz_mov_ps((__mmask16)~flat, scale));
    _mm512_storeu_ps(mn, min);
    store_codes(best_code, n, nsub, L);
    const unsigned redo = (unsigned)(bad & ~flat);
    for (int s = 0; s < nsub; s++) {
        if (redo >> s & 1) {
            qb_kfit_ref(1, n, nmax, x + n * s, w + n * s, L + n * s, &scales[s], &neg_mins[s], rmin, rdelta, nstep,
                        abs_err);
            continue;
        }
        scales[s] = sc[s];
        neg_mins[s] = -mn[s];
    }
}

static void fit16_16(int nsub, int nmax, const float *x, const float *w, uint8_t *L, float *scales, float *neg_mins,
                     float rmin, float rdelta, int nstep, bool abs_err)
{
    fit16(nsub, 16, nmax, x, w, L, scales, neg_mins, rmin, rdelta, nstep, abs_err);
}

static void fit16_32(int nsub, int nmax, const float *x, const float *w, uint8_t *L, float *scales, float *neg_mins,
                     float rmin, float rdelta, int nstep, bool abs_err)
{
    fit16(nsub, 32, nmax, x, w, L, scales, neg_mins, rmin, rdelta, nstep, abs_err);
}

/* qb_kfit_fn: 16 sub-blocks per call (fewer lanes for the last ones). */
static void kfit_avx512(int nsub, int n, int nmax, const float *x, const float *w, uint8_t *L, float *scales,
                        float *neg_mins, float rmin, float rdelta, int nstep, bool abs_err)
{
    if (n != 16 && n != 32) {
        qb_kfit_ref(nsub, n, nmax, x, w, L, scales, neg_mins, rmin, rdelta, nstep, abs_err);
        return;
    }
    for (int s = 0; s < nsub; s += 16) {
        const int k = nsub - s < 16 ? nsub - s : 16;
        (n == 16 ? fit16_16 : fit16_32)(k, nmax, x + n * s, w + n * s, L + n * s, scales + s, neg_mins + s, rmin,
                                        rdelta, nstep, abs_err);
    }
}

/* ---- Q6_K and Q3_K: symmetric sub-blocks of 16, sixteen at a time --------------------------- */

/* The 16 sub-blocks of 16 (x + 16 s) as X[i] = element i of each; the signed value of largest
 * magnitude (the first on ties) of each lane into *max, its magnitude into *amax; lanes with a
 * NaN into *nan. */
AI void load16x16(const float *x, __m512 X[16], __m512 *amax, __m512 *max, __mmask16 *nan)
{
    const __m512i off = lane_offsets(16, 16);
    __m512 am = _mm512_setzero_ps(), mx = am;
    __mmask16 bad = 0;
    for (int i = 0; i < 16; i++) {
        X[i] = gather_i(x, off, i);
        bad |= _mm512_cmp_ps_mask(X[i], X[i], _CMP_UNORD_Q);
        const __m512 a = _mm512_abs_ps(X[i]);
        const __mmask16 gt = _mm512_cmp_ps_mask(a, am, _CMP_GT_OQ);
        am = _mm512_mask_mov_ps(am, gt, a);
        mx = _mm512_mask_mov_ps(mx, gt, X[i]);
    }
    *amax = am;
    *max = mx;
    *nan = bad;
}

/* codes (integer-valued floats, biased, < 128) of lane s into L + 16 s */
static void store_codes16(const __m512 C[16], int8_t *L) { store_codes(C, 16, 16, (uint8_t *)L); }

/* fit_scale_sym (nmax 32) of 16 sub-blocks, one per lane: all nineteen candidates in turn,
 * each lane keeping its own best. */
static void fit_q6_16(const float *x, int8_t *L, float *scales)
{
    enum { NMAX = 32 };
    __m512 X[16], W[16], WX[16], amax, max;
    __mmask16 bad;
    load16x16(x, X, &amax, &max, &bad);
    for (int i = 0; i < 16; i++) {
        W[i] = _mm512_mul_ps(X[i], X[i]);
        WX[i] = _mm512_mul_ps(W[i], X[i]);
    }
    const __m512 zero = _mm512_setzero_ps(), lo = _mm512_set1_ps(-NMAX), hi = _mm512_set1_ps(NMAX - 1);
    const __m512 big = _mm512_set1_ps(ROUND_MAX);
    const __mmask16 empty = _mm512_cmp_ps_mask(amax, _mm512_set1_ps(GROUP_EPS), _CMP_LT_OQ);
    __m512 scale = zero, best = zero, best_isc = zero;
    for (int k = 0; k < 19; k++) {
        const int c = k == 0 ? 9 : k <= 9 ? k - 1 : k; /* lane order of the scalar: 9 first */
        const float a = (float)NMAX + 0.1f * (float)(c - 9);
        const __m512 isc = _mm512_div_ps(_mm512_set1_ps(-a), max);
        /* |isc·x| <= |isc|·amax: one test for the whole candidate */
        bad |= _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_abs_ps(isc), amax), big, _CMP_NLT_UQ);
        __m512 slx = zero, sl2 = zero;
        for (int i = 0; i < 16; i++) {
            const __m512 l = _mm512_min_ps(_mm512_max_ps(round16(_mm512_mul_ps(isc, X[i])), lo), hi);
            slx = _mm512_add_ps(slx, _mm512_mul_ps(WX[i], l));
            sl2 = _mm512_add_ps(sl2, _mm512_mul_ps(_mm512_mul_ps(W[i], l), l));
        }
        if (c == 9) {
            scale = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(sl2, zero, _CMP_NEQ_UQ), _mm512_div_ps(slx, sl2));
            best = _mm512_mul_ps(scale, slx);
            best_isc = isc;
            continue;
        }
        const __mmask16 take = _mm512_cmp_ps_mask(sl2, zero, _CMP_GT_OQ) &
                               _mm512_cmp_ps_mask(_mm512_mul_ps(slx, slx), _mm512_mul_ps(best, sl2), _CMP_GT_OQ);
        const __m512 sc = _mm512_div_ps(slx, sl2);
        scale = _mm512_mask_mov_ps(scale, take, sc);
        best = _mm512_mask_mov_ps(best, take, _mm512_mul_ps(sc, slx));
        best_isc = _mm512_mask_mov_ps(best_isc, take, isc);
    }
    __m512 C[16];
    for (int i = 0; i < 16; i++) {
        const __m512 l = _mm512_min_ps(_mm512_max_ps(round16(_mm512_mul_ps(best_isc, X[i])), lo), hi);
        C[i] = _mm512_maskz_mov_ps((__mmask16)~empty, _mm512_add_ps(l, _mm512_set1_ps(NMAX)));
    }
    store_codes16(C, L);
    _mm512_storeu_ps(scales, _mm512_maskz_mov_ps((__mmask16)~empty, scale));
    const unsigned redo = (unsigned)(bad & ~empty);
    for (int s = 0; s < 16; s++)
        if (redo >> s & 1) qb_kfit_q6_ref(1, x + 16 * s, L + 16 * s, &scales[s]);
}

/* fit_scale_q3 of 16 sub-blocks, one per lane: the same sweeps, a lane leaving the loop after
 * its first sweep without a change (as the scalar one breaks). */
static void fit_q3_16(const float *x, int8_t *L, float *scales)
{
    enum { NMAX = 4 };
    __m512 X[16], W[16], WX[16], Lc[16], amax, max;
    __mmask16 bad;
    load16x16(x, X, &amax, &max, &bad);
    const __m512 zero = _mm512_setzero_ps(), lo = _mm512_set1_ps(-NMAX), hi = _mm512_set1_ps(NMAX - 1);
    const __mmask16 empty = _mm512_cmp_ps_mask(amax, _mm512_set1_ps(GROUP_EPS), _CMP_LT_OQ);
    const __m512 iscale = _mm512_div_ps(_mm512_set1_ps((float)-NMAX), max);
    __m512 sumlx = zero, suml2 = zero;
    for (int i = 0; i < 16; i++) {
        const __m512 v = _mm512_mul_ps(iscale, X[i]);
        bad |= outside16(v);
        Lc[i] = _mm512_min_ps(_mm512_max_ps(round16(v), lo), hi);
        W[i] = _mm512_mul_ps(X[i], X[i]);
        WX[i] = _mm512_mul_ps(W[i], X[i]);
        sumlx = _mm512_add_ps(sumlx, _mm512_mul_ps(WX[i], Lc[i]));
        suml2 = _mm512_add_ps(suml2, _mm512_mul_ps(_mm512_mul_ps(W[i], Lc[i]), Lc[i]));
    }
    __mmask16 active = (__mmask16)~empty;
    for (int sweep = 0; sweep < 5 && active; sweep++) {
        __mmask16 changed = 0;
        for (int i = 0; i < 16; i++) {
            __m512 slx = _mm512_sub_ps(sumlx, _mm512_mul_ps(WX[i], Lc[i]));
            const __mmask16 pos = _mm512_cmp_ps_mask(slx, zero, _CMP_GT_OQ);
            __m512 sl2 = _mm512_sub_ps(suml2, _mm512_mul_ps(_mm512_mul_ps(W[i], Lc[i]), Lc[i]));
            const __m512 v = _mm512_div_ps(_mm512_mul_ps(X[i], sl2), slx);
            const __mmask16 live = active & pos;
            bad |= live & outside16(v);
            const __m512 l = _mm512_min_ps(_mm512_max_ps(round16(v), lo), hi);
            slx = _mm512_add_ps(slx, _mm512_mul_ps(WX[i], l));
            sl2 = _mm512_add_ps(sl2, _mm512_mul_ps(_mm512_mul_ps(W[i], l), l));
            const __mmask16 better =
                _mm512_cmp_ps_mask(sl2, zero, _CMP_GT_OQ) &
                _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_mul_ps(slx, slx), suml2),
                                   _mm512_mul_ps(_mm512_mul_ps(sumlx, sumlx), sl2), _CMP_GT_OQ);
            const __mmask16 upd = live & _mm512_cmp_ps_mask(l, Lc[i], _CMP_NEQ_OQ) & better;
            Lc[i] = _mm512_mask_mov_ps(Lc[i], upd, l);
            sumlx = _mm512_mask_mov_ps(sumlx, upd, slx);
            suml2 = _mm512_mask_mov_ps(suml2, upd, sl2);
            changed |= upd;
        }
        active &= changed;
    }
    __m512 C[16];
    for (int i = 0; i < 16; i++) C[i] = _mm512_maskz_mov_ps((__mmask16)~empty, _mm512_add_ps(Lc[i], _mm512_set1_ps(NMAX)));
    store_codes16(C, L);
    _mm512_storeu_ps(scales, _mm512_maskz_mov_ps((__mmask16)~empty, _mm512_div_ps(sumlx, suml2)));
    const unsigned redo = (unsigned)(bad & ~empty);
    for (int s = 0; s < 16; s++)
        if (redo >> s & 1) qb_kfit_q3_ref(1, x + 16 * s, L + 16 * s, &scales[s]);
}

static void kfit_q6_avx512(int nsub, const float *x, int8_t *L, float *scales)
{
    int s = 0;
    for (; s + 16 <= nsub; s += 16) fit_q6_16(x + 16 * s, L + 16 * s, scales + s);
    if (s < nsub) qb_kfit_q6_ref(nsub - s, x + 16 * s, L + 16 * s, scales + s);
}

static void kfit_q3_avx512(int nsub, const float *x, int8_t *L, float *scales)
{
    int s = 0;
    for (; s + 16 <= nsub; s += 16) fit_q3_16(x + 16 * s, L + 16 * s, scales + s);
    if (s < nsub) qb_kfit_q3_ref(nsub - s, x + 16 * s, L + 16 * s, scales + s);
}

/* Q2_K .. Q6_K with the searches above: nb blocks of x into y; false for other types. */
bool qb_quant_kquants_avx512(int type, const float *x, void *y, int64_t nb)
{
    switch (type) {
    case QB_TYPE_Q2_K: qb_quant_q2_K_with(x, y, nb, kfit_avx512); return true;
    case QB_TYPE_Q3_K: qb_quant_q3_K_with(x, y, nb, kfit_q3_avx512); return true;
    case QB_TYPE_Q4_K: qb_quant_q4_K_with(x, y, nb, kfit_avx512); return true;
    case QB_TYPE_Q5_K: qb_quant_q5_K_with(x, y, nb, kfit_avx512); return true;
    case QB_TYPE_Q6_K: qb_quant_q6_K_with(x, y, nb, kfit_q6_avx512); return true;
    default: return false;
    }
}
