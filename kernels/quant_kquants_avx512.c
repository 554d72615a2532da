/* quant_kquants_avx512.c — the scale searches of the K-quants in AVX-512 lanes, writing the
 * bytes of the scalar spec (quant_kquants_ref.c): quant_kquants_avx2.c's design with 32
 * sub-blocks side by side in up to four registers of 16 lanes, one per lane, each lane doing exactly
 * the scalar sequence (the same candidates in the same order, every sum accumulated element
 * by element, acceptance per lane); several registers so the core overlaps chains of
 * dependent additions. The quantizers hand over up to 64 sub-blocks per call (eight Q4_K /
 * Q5_K super-blocks, four of the others). Rounding is the scalar's 1.5·2^23 trick,
 * exact for |v| < 2^22; a lane that could meet a value outside that range (or a NaN) is redone
 * by the scalar search. In the affine search that test is made once per candidate rather than
 * per element: every v = isc·(x − m) lies within |isc|·max(|max − m|, |min − m|) (rounding is
 * monotone), so when that bound is below 2^22 no element can be outside; otherwise the lane is
 * redone (never fewer lanes than the per-element test would flag). Separate multiplies and
 * adds, divisions where the scalar divides. */
#include "kernels.h"
#include "tq_iq3.h"
#include "quant_k.h"
#include "quant_iq.h"

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

/* Up to four sets of 16 lanes go side by side through every loop: each lane's sums are still
 * one element after another, but the core has independent chains of additions to overlap (one
 * set alone waits on the latency of its adds). Each search is instantiated for NV = 1..4 live
 * sets (a constant inside it), chosen by the number of sub-blocks, so short rows do no work in
 * empty lanes. */
enum { V = 4, LANES = 16 * V };
#define EACH(v) _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)

/* Lane s of set v's element offsets: sub-block 16v + s (of `len` elements) while below nsub,
 * else sub-block 0 (its results are dropped). */
AI void lane_offsets(int nsub, int len, __m512i off[V], const int NV)
{
    const __m512i s = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    EACH(v) {
        const int live = nsub - 16 * v < 0 ? 0 : nsub - 16 * v > 16 ? 16 : nsub - 16 * v;
        off[v] = _mm512_maskz_mullo_epi32((__mmask16)((1u << live) - 1), _mm512_add_epi32(s, _mm512_set1_epi32(16 * v)),
                                          _mm512_set1_epi32(len));
    }
}

/* Element i of every lane's sub-block. */
AI __m512 gather_i(const float *p, __m512i off, int i) { return _mm512_i32gather_ps(off, p + i, 4); }

/* Codes C[i][v] (integer-valued floats < 256) of lane 16v + s into L + len·(16v + s), below nsub. */
AI void store_codes(const __m512 (*C)[V], int len, int nsub, uint8_t *L, const int NV)
{
    uint8_t t[32][LANES];
    for (int i = 0; i < len; i++)
        EACH(v) _mm_storeu_si128((__m128i *)(t[i] + 16 * v), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(C[i][v])));
    for (int s = 0; s < nsub; s++)
        for (int i = 0; i < len; i++) L[len * s + i] = t[i][s];
}

/* fit_scale_min's search (quant_kquants_ref.c) of nsub <= 64 sub-blocks of n (16 or 32), one per lane. */
AI void fitv(int nsub, int n, int nmax, const float *x, const float *w, uint8_t *L, float *scales, float *neg_mins,
             float rmin, float rdelta, int nstep, bool abs_err, const int NV)
{
    __m512i off[V];
    lane_offsets(nsub, n, off, NV);
    __m512 X[32][V], W[32][V], best_code[32][V], code[32][V];
    __mmask16 bad[V] = {0};
    for (int i = 0; i < n; i++)
        EACH(v) {
            X[i][v] = gather_i(x, off[v], i);
            W[i][v] = gather_i(w, off[v], i);
            bad[v] |= _mm512_cmp_ps_mask(X[i][v], X[i][v], _CMP_UNORD_Q);
        }
    const __m512 zero = _mm512_setzero_ps(), vnmax = _mm512_set1_ps((float)nmax), big = _mm512_set1_ps(ROUND_MAX);
    __m512 min[V], max[V], sum_w[V], sum_x[V], data_min[V], scale[V], best_err[V];
    __mmask16 flat[V];
    EACH(v) {
        min[v] = X[0][v], max[v] = X[0][v], sum_w[v] = W[0][v], sum_x[v] = _mm512_mul_ps(W[0][v], X[0][v]);
    }
    for (int i = 1; i < n; i++)
        EACH(v) {
            min[v] = _mm512_min_ps(X[i][v], min[v]); /* x < min ? x : min */
            max[v] = _mm512_max_ps(X[i][v], max[v]);
            sum_w[v] = _mm512_add_ps(sum_w[v], W[i][v]);
            sum_x[v] = _mm512_add_ps(sum_x[v], _mm512_mul_ps(W[i][v], X[i][v]));
        }
    EACH(v) {
        data_min[v] = min[v];
        min[v] = _mm512_mask_mov_ps(min[v], _mm512_cmp_ps_mask(min[v], zero, _CMP_GT_OQ), zero); /* min <= 0 */
        flat[v] = _mm512_cmp_ps_mask(max[v], min[v], _CMP_EQ_OQ); /* the scalar returns early */
    }
    __m512 iscale0[V];
    EACH(v) {
        iscale0[v] = _mm512_div_ps(vnmax, _mm512_sub_ps(max[v], min[v]));
        scale[v] = _mm512_div_ps(_mm512_set1_ps(1.0f), iscale0[v]);
        best_err[v] = zero;
    }
    for (int i = 0; i < n; i++)
        EACH(v) {
            const __m512 t = _mm512_mul_ps(iscale0[v], _mm512_sub_ps(X[i][v], min[v]));
            bad[v] |= outside16(t);
            best_code[i][v] = _mm512_min_ps(_mm512_max_ps(round16(t), zero), vnmax);
            const __m512 diff = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(scale[v], best_code[i][v]), min[v]), X[i][v]);
            const __m512 e = abs_err ? _mm512_abs_ps(diff) : _mm512_mul_ps(diff, diff);
            best_err[v] = _mm512_add_ps(best_err[v], _mm512_mul_ps(W[i][v], e));
        }
    for (int k = 0; k <= nstep; k++) {
        float a = rmin + rdelta * (float)k;
        a = a + (float)nmax;
        __m512 isc[V], sl[V], sl2[V], sxl[V];
        EACH(v) {
            isc[v] = _mm512_div_ps(_mm512_set1_ps(a), _mm512_sub_ps(max[v], min[v]));
            /* every isc·(x − min) is within |isc|·max(|max − min|, |data_min − min|) */
            const __m512 reach = _mm512_max_ps(_mm512_abs_ps(_mm512_sub_ps(max[v], min[v])),
                                               _mm512_abs_ps(_mm512_sub_ps(data_min[v], min[v])));
            bad[v] |= _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_abs_ps(isc[v]), reach), big, _CMP_NLT_UQ);
            sl[v] = sl2[v] = sxl[v] = zero;
        }
        for (int i = 0; i < n; i++)
            EACH(v) {
                const __m512 l = _mm512_min_ps(
                    _mm512_max_ps(round16(_mm512_mul_ps(isc[v], _mm512_sub_ps(X[i][v], min[v]))), zero), vnmax);
                code[i][v] = l;
                const __m512 wl = _mm512_mul_ps(W[i][v], l);
                sl[v] = _mm512_add_ps(sl[v], wl);
                sl2[v] = _mm512_add_ps(sl2[v], _mm512_mul_ps(wl, l));
                sxl[v] = _mm512_add_ps(sxl[v], _mm512_mul_ps(wl, X[i][v]));
            }
        __m512 sv[V], mv[V], err[V];
        __mmask16 ok[V];
        EACH(v) {
            const __m512 det = _mm512_sub_ps(_mm512_mul_ps(sum_w[v], sl2[v]), _mm512_mul_ps(sl[v], sl[v]));
            ok[v] = _mm512_cmp_ps_mask(det, zero, _CMP_GT_OQ);
            __m512 s = _mm512_div_ps(_mm512_sub_ps(_mm512_mul_ps(sum_w[v], sxl[v]), _mm512_mul_ps(sum_x[v], sl[v])), det);
            __m512 m = _mm512_div_ps(_mm512_sub_ps(_mm512_mul_ps(sl2[v], sum_x[v]), _mm512_mul_ps(sl[v], sxl[v])), det);
            const __mmask16 pos = _mm512_cmp_ps_mask(m, zero, _CMP_GT_OQ);
            m = _mm512_mask_mov_ps(m, pos, zero);
            s = _mm512_mask_mov_ps(s, pos, _mm512_div_ps(sxl[v], sl2[v]));
            sv[v] = _mm512_maskz_mov_ps(ok[v], s); /* the scalar leaves 0 where the fit does not exist */
            mv[v] = _mm512_maskz_mov_ps(ok[v], m);
            err[v] = zero;
        }
        for (int i = 0; i < n; i++)
            EACH(v) {
                const __m512 diff = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(sv[v], code[i][v]), mv[v]), X[i][v]);
                const __m512 e = abs_err ? _mm512_abs_ps(diff) : _mm512_mul_ps(diff, diff);
                err[v] = _mm512_add_ps(err[v], _mm512_mul_ps(W[i][v], e));
            }
        EACH(v) {
            const __mmask16 take = (__mmask16)(~flat[v] & ok[v] & _mm512_cmp_ps_mask(err[v], best_err[v], _CMP_LT_OQ));
            if (!take) continue;
            for (int i = 0; i < n; i++) best_code[i][v] = _mm512_mask_mov_ps(best_code[i][v], take, code[i][v]);
            best_err[v] = _mm512_mask_mov_ps(best_err[v], take, err[v]);
            scale[v] = _mm512_mask_mov_ps(scale[v], take, sv[v]);
            min[v] = _mm512_mask_mov_ps(min[v], take, mv[v]);
        }
    }
    float sc[LANES], mn[LANES];
    uint64_t redo = 0;
    EACH(v) {
        for (int i = 0; i < n; i++) best_code[i][v] = _mm512_maskz_mov_ps((__mmask16)~flat[v], best_code[i][v]);
        _mm512_storeu_ps(sc + 16 * v, _mm512_maskz_mov_ps((__mmask16)~flat[v], scale[v]));
        _mm512_storeu_ps(mn + 16 * v, min[v]);
        redo |= (uint64_t)(uint16_t)(bad[v] & ~flat[v]) << (16 * v);
    }
    store_codes((const __m512(*)[V])best_code, n, nsub, L, NV);
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

/* The instantiations: NV sets for n-element sub-blocks. */
#define FITV(N, NVV)                                                                                                  \
    static void fitv_##N##_##NVV(int nsub, int nmax, const float *x, const float *w, uint8_t *L, float *scales,      \
                                 float *neg_mins, float rmin, float rdelta, int nstep, bool abs_err)                 \
    {                                                                                                                 \
        fitv(nsub, N, nmax, x, w, L, scales, neg_mins, rmin, rdelta, nstep, abs_err, NVV);                           \
    }
FITV(16, 1) FITV(16, 2) FITV(16, 3) FITV(16, 4) FITV(32, 1) FITV(32, 2) FITV(32, 3) FITV(32, 4)

typedef void (*fitv_fn)(int, int, const float *, const float *, uint8_t *, float *, float *, float, float, int, bool);
/* [n == 32][live sets − 1] */
static const fitv_fn fitv_by_sets[2][V] = {{fitv_16_1, fitv_16_2, fitv_16_3, fitv_16_4},
                                           {fitv_32_1, fitv_32_2, fitv_32_3, fitv_32_4}};

/* qb_kfit_fn: up to 64 sub-blocks per call, in as many lane sets as they fill. */
static void kfit_avx512(int nsub, int n, int nmax, const float *x, const float *w, uint8_t *L, float *scales,
                        float *neg_mins, float rmin, float rdelta, int nstep, bool abs_err)
{
    if (n != 16 && n != 32) {
        qb_kfit_ref(nsub, n, nmax, x, w, L, scales, neg_mins, rmin, rdelta, nstep, abs_err);
        return;
    }
    for (int s = 0; s < nsub; s += LANES) {
        const int k = nsub - s < LANES ? nsub - s : LANES;
        fitv_by_sets[n == 32][(k + 15) / 16 - 1](k, nmax, x + n * s, w + n * s, L + n * s, scales + s, neg_mins + s,
                                                 rmin, rdelta, nstep, abs_err);
    }
}

/* ---- Q6_K and Q3_K: symmetric sub-blocks of 16, up to 32 at a time --------------------------- */

/* nsub <= 64 sub-blocks of 16 (x + 16 s) as X[i][v] = element i of each; the signed value of
 * largest magnitude (the first on ties) of each lane into max, its magnitude into amax; lanes
 * with a NaN into nan. */
AI void load16xv(int nsub, const float *x, __m512 X[16][V], __m512 amax[V], __m512 max[V], __mmask16 nan[V], const int NV)
{
    __m512i off[V];
    lane_offsets(nsub, 16, off, NV);
    EACH(v) {
        __m512 am = _mm512_setzero_ps(), mx = am;
        __mmask16 bad = 0;
        for (int i = 0; i < 16; i++) {
            X[i][v] = gather_i(x, off[v], i);
            bad |= _mm512_cmp_ps_mask(X[i][v], X[i][v], _CMP_UNORD_Q);
            const __m512 a = _mm512_abs_ps(X[i][v]);
            const __mmask16 gt = _mm512_cmp_ps_mask(a, am, _CMP_GT_OQ);
            am = _mm512_mask_mov_ps(am, gt, a);
            mx = _mm512_mask_mov_ps(mx, gt, X[i][v]);
        }
        amax[v] = am;
        max[v] = mx;
        nan[v] = bad;
    }
}

/* fit_scale_sym (nmax 32) of nsub <= 64 sub-blocks, one per lane: all nineteen candidates in
 * turn, each lane keeping its own best. */
AI void fit_q6_v(int nsub, const float *x, int8_t *L, float *scales, const int NV)
{
    enum { NMAX = 32 };
    __m512 X[16][V], W[16][V], WX[16][V], amax[V], max[V];
    __mmask16 bad[V], empty[V];
    load16xv(nsub, x, X, amax, max, bad, NV);
    const __m512 zero = _mm512_setzero_ps(), lo = _mm512_set1_ps(-NMAX), hi = _mm512_set1_ps(NMAX - 1);
    const __m512 big = _mm512_set1_ps(ROUND_MAX);
    __m512 scale[V], best[V], best_isc[V];
    EACH(v) {
        for (int i = 0; i < 16; i++) {
            W[i][v] = _mm512_mul_ps(X[i][v], X[i][v]);
            WX[i][v] = _mm512_mul_ps(W[i][v], X[i][v]);
        }
        empty[v] = _mm512_cmp_ps_mask(amax[v], _mm512_set1_ps(GROUP_EPS), _CMP_LT_OQ);
        scale[v] = best[v] = best_isc[v] = zero;
    }
    for (int k = 0; k < 19; k++) {
        const int c = k == 0 ? 9 : k <= 9 ? k - 1 : k; /* lane order of the scalar: 9 first */
        const float a = (float)NMAX + 0.1f * (float)(c - 9);
        __m512 isc[V], slx[V], sl2[V];
        EACH(v) {
            isc[v] = _mm512_div_ps(_mm512_set1_ps(-a), max[v]);
            /* |isc·x| <= |isc|·amax: one test for the whole candidate */
            bad[v] |= _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_abs_ps(isc[v]), amax[v]), big, _CMP_NLT_UQ);
            slx[v] = sl2[v] = zero;
        }
        for (int i = 0; i < 16; i++)
            EACH(v) {
                const __m512 l = _mm512_min_ps(_mm512_max_ps(round16(_mm512_mul_ps(isc[v], X[i][v])), lo), hi);
                slx[v] = _mm512_add_ps(slx[v], _mm512_mul_ps(WX[i][v], l));
                sl2[v] = _mm512_add_ps(sl2[v], _mm512_mul_ps(_mm512_mul_ps(W[i][v], l), l));
            }
        EACH(v) {
            if (c == 9) {
                scale[v] = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(sl2[v], zero, _CMP_NEQ_UQ), _mm512_div_ps(slx[v], sl2[v]));
                best[v] = _mm512_mul_ps(scale[v], slx[v]);
                best_isc[v] = isc[v];
                continue;
            }
            const __mmask16 take =
                _mm512_cmp_ps_mask(sl2[v], zero, _CMP_GT_OQ) &
                _mm512_cmp_ps_mask(_mm512_mul_ps(slx[v], slx[v]), _mm512_mul_ps(best[v], sl2[v]), _CMP_GT_OQ);
            const __m512 sc = _mm512_div_ps(slx[v], sl2[v]);
            scale[v] = _mm512_mask_mov_ps(scale[v], take, sc);
            best[v] = _mm512_mask_mov_ps(best[v], take, _mm512_mul_ps(sc, slx[v]));
            best_isc[v] = _mm512_mask_mov_ps(best_isc[v], take, isc[v]);
        }
    }
    __m512 C[16][V];
    uint64_t redo = 0;
    float sc[LANES];
    EACH(v) {
        for (int i = 0; i < 16; i++) {
            const __m512 l = _mm512_min_ps(_mm512_max_ps(round16(_mm512_mul_ps(best_isc[v], X[i][v])), lo), hi);
            C[i][v] = _mm512_maskz_mov_ps((__mmask16)~empty[v], _mm512_add_ps(l, _mm512_set1_ps(NMAX)));
        }
        _mm512_storeu_ps(sc + 16 * v, _mm512_maskz_mov_ps((__mmask16)~empty[v], scale[v]));
        redo |= (uint64_t)(uint16_t)(bad[v] & ~empty[v]) << (16 * v);
    }
    store_codes((const __m512(*)[V])C, 16, nsub, (uint8_t *)L, NV);
    memcpy(scales, sc, (size_t)nsub * sizeof *scales);
    for (int s = 0; s < nsub; s++)
        if (redo >> s & 1) qb_kfit_q6_ref(1, x + 16 * s, L + 16 * s, &scales[s]);
}

AI bool any_active(const __mmask16 *a, const int NV)
{
    unsigned m = 0;
    EACH(v) m |= a[v];
    return m != 0;
}

/* fit_scale_q3 of nsub <= 64 sub-blocks, one per lane: the same sweeps, a lane leaving the loop
 * after its first sweep without a change (as the scalar one breaks). */
AI void fit_q3_v(int nsub, const float *x, int8_t *L, float *scales, const int NV)
{
    enum { NMAX = 4 };
    __m512 X[16][V], W[16][V], WX[16][V], Lc[16][V], amax[V], max[V];
    __mmask16 bad[V], empty[V], active[V];
    load16xv(nsub, x, X, amax, max, bad, NV);
    const __m512 zero = _mm512_setzero_ps(), lo = _mm512_set1_ps(-NMAX), hi = _mm512_set1_ps(NMAX - 1);
    __m512 sumlx[V], suml2[V];
    EACH(v) {
        empty[v] = _mm512_cmp_ps_mask(amax[v], _mm512_set1_ps(GROUP_EPS), _CMP_LT_OQ);
        const __m512 iscale = _mm512_div_ps(_mm512_set1_ps((float)-NMAX), max[v]);
        sumlx[v] = suml2[v] = zero;
        for (int i = 0; i < 16; i++) {
            const __m512 t = _mm512_mul_ps(iscale, X[i][v]);
            bad[v] |= outside16(t);
            Lc[i][v] = _mm512_min_ps(_mm512_max_ps(round16(t), lo), hi);
            W[i][v] = _mm512_mul_ps(X[i][v], X[i][v]);
            WX[i][v] = _mm512_mul_ps(W[i][v], X[i][v]);
            sumlx[v] = _mm512_add_ps(sumlx[v], _mm512_mul_ps(WX[i][v], Lc[i][v]));
            suml2[v] = _mm512_add_ps(suml2[v], _mm512_mul_ps(_mm512_mul_ps(W[i][v], Lc[i][v]), Lc[i][v]));
        }
        active[v] = (__mmask16)~empty[v];
    }
    for (int sweep = 0; sweep < 5 && any_active(active, NV); sweep++) {
        __mmask16 changed[V] = {0};
        for (int i = 0; i < 16; i++)
            EACH(v) {
                __m512 slx = _mm512_sub_ps(sumlx[v], _mm512_mul_ps(WX[i][v], Lc[i][v]));
                const __mmask16 pos = _mm512_cmp_ps_mask(slx, zero, _CMP_GT_OQ);
                __m512 sl2 = _mm512_sub_ps(suml2[v], _mm512_mul_ps(_mm512_mul_ps(W[i][v], Lc[i][v]), Lc[i][v]));
                const __m512 t = _mm512_div_ps(_mm512_mul_ps(X[i][v], sl2), slx);
                const __mmask16 live = active[v] & pos;
                bad[v] |= live & outside16(t);
                const __m512 l = _mm512_min_ps(_mm512_max_ps(round16(t), lo), hi);
                slx = _mm512_add_ps(slx, _mm512_mul_ps(WX[i][v], l));
                sl2 = _mm512_add_ps(sl2, _mm512_mul_ps(_mm512_mul_ps(W[i][v], l), l));
                const __mmask16 better =
                    _mm512_cmp_ps_mask(sl2, zero, _CMP_GT_OQ) &
                    _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_mul_ps(slx, slx), suml2[v]),
                                       _mm512_mul_ps(_mm512_mul_ps(sumlx[v], sumlx[v]), sl2), _CMP_GT_OQ);
                const __mmask16 upd = live & _mm512_cmp_ps_mask(l, Lc[i][v], _CMP_NEQ_OQ) & better;
                Lc[i][v] = _mm512_mask_mov_ps(Lc[i][v], upd, l);
                sumlx[v] = _mm512_mask_mov_ps(sumlx[v], upd, slx);
                suml2[v] = _mm512_mask_mov_ps(suml2[v], upd, sl2);
                changed[v] |= upd;
            }
        EACH(v) active[v] &= changed[v];
    }
    __m512 C[16][V];
    uint64_t redo = 0;
    float sc[LANES];
    EACH(v) {
        for (int i = 0; i < 16; i++)
            C[i][v] = _mm512_maskz_mov_ps((__mmask16)~empty[v], _mm512_add_ps(Lc[i][v], _mm512_set1_ps(NMAX)));
        _mm512_storeu_ps(sc + 16 * v, _mm512_maskz_mov_ps((__mmask16)~empty[v], _mm512_div_ps(sumlx[v], suml2[v])));
        redo |= (uint64_t)(uint16_t)(bad[v] & ~empty[v]) << (16 * v);
    }
    store_codes((const __m512(*)[V])C, 16, nsub, (uint8_t *)L, NV);
    memcpy(scales, sc, (size_t)nsub * sizeof *scales);
    for (int s = 0; s < nsub; s++)
        if (redo >> s & 1) qb_kfit_q3_ref(1, x + 16 * s, L + 16 * s, &scales[s]);
}

#define FITS(F, NVV) static void F##_##NVV(int nsub, const float *x, int8_t *L, float *scales) { F(nsub, x, L, scales, NVV); }
FITS(fit_q6_v, 1) FITS(fit_q6_v, 2) FITS(fit_q6_v, 3) FITS(fit_q6_v, 4)
FITS(fit_q3_v, 1) FITS(fit_q3_v, 2) FITS(fit_q3_v, 3) FITS(fit_q3_v, 4)
typedef void (*fits_fn)(int, const float *, int8_t *, float *);
static const fits_fn q6_by_sets[V] = {fit_q6_v_1, fit_q6_v_2, fit_q6_v_3, fit_q6_v_4};
static const fits_fn q3_by_sets[V] = {fit_q3_v_1, fit_q3_v_2, fit_q3_v_3, fit_q3_v_4};

static void kfit_q6_avx512(int nsub, const float *x, int8_t *L, float *scales)
{
    for (int s = 0; s < nsub; s += LANES) {
        const int k = nsub - s < LANES ? nsub - s : LANES;
        q6_by_sets[(k + 15) / 16 - 1](k, x + 16 * s, L + 16 * s, scales + s);
    }
}

static void kfit_q3_avx512(int nsub, const float *x, int8_t *L, float *scales)
{
    for (int s = 0; s < nsub; s += LANES) {
        const int k = nsub - s < LANES ? nsub - s : LANES;
        q3_by_sets[(k + 15) / 16 - 1](k, x + 16 * s, L + 16 * s, scales + s);
    }
}

/* qb_kcode_fn (quant_k.h): 16 codes at a time, the scalar's division and rounding bits. */
static void kcode_avx512(const float *x, int n, float dm, float d, int lo, int hi, uint8_t *L)
{
    const __m512 vdm = _mm512_set1_ps(dm), vd = _mm512_set1_ps(d), c = _mm512_set1_ps(ROUND_C);
    const __m512i vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 t = _mm512_add_ps(_mm512_div_ps(_mm512_add_ps(_mm512_maskz_loadu_ps(m, x + i), vdm), vd), c);
        __m512i v = _mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(t), _mm512_set1_epi32(0x007fffff)),
                                     _mm512_set1_epi32(0x00400000));
        v = _mm512_sub_epi32(_mm512_min_epi32(_mm512_max_epi32(v, vlo), vhi), vlo);
        _mm_mask_storeu_epi8(L + i, m, _mm512_cvtepi32_epi8(v));
    }
}

/* Q2_K .. Q6_K with the searches above: nb blocks of x into y; false for other types. */
bool qb_quant_kquants_avx512(int type, const float *x, void *y, int64_t nb)
{
    switch (type) {
    case QB_TYPE_Q2_K: qb_quant_q2_K_with(x, y, nb, kfit_avx512, kcode_avx512); return true;
    case QB_TYPE_Q3_K: qb_quant_q3_K_with(x, y, nb, kfit_q3_avx512, kcode_avx512); return true;
    case QB_TYPE_Q4_K: qb_quant_q4_K_with(x, y, nb, kfit_avx512, kcode_avx512); return true;
    case QB_TYPE_Q5_K: qb_quant_q5_K_with(x, y, nb, kfit_avx512, kcode_avx512); return true;
    case QB_TYPE_Q6_K: qb_quant_q6_K_with(x, y, nb, kfit_q6_avx512, kcode_avx512); return true;
    default: return false;
    }
}


/* ---- weighted symmetric fits (make_qx_quants with importance) ----------------------------------- */

/* qb_kfit_sw_fn for k <= 16 sub-blocks of n (16 or 32) values, one per lane: every lane runs
 * the reference's candidates in its order (the start k = 0, then -9..-1, 1..9), its sums
 * accumulated element by element, acceptance per lane. Codes are rounded by the reference's
 * 1.5·2^23 trick done in integers (its very bits for every input, NaN and huge values
 * included), so no lane needs the scalar path. */
static void fit_sw16(int k, int n, int nmax, const float *x, const float *w, int8_t *L, float *scales)
{
    const __mmask16 live = k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << k) - 1);
    const __m512i off = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32(n));
    __m512 X[32], W[32], WX[32];
    __m512 am = _mm512_setzero_ps(), mx = am;
    for (int i = 0; i < n; i++) {
        const __m512i oi = _mm512_add_epi32(off, _mm512_set1_epi32(i));
        X[i] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, oi, x, 4);
        W[i] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, oi, w, 4);
        WX[i] = _mm512_mul_ps(W[i], X[i]);
        const __m512 a = _mm512_abs_ps(X[i]);
        const __mmask16 gt = _mm512_cmp_ps_mask(a, am, _CMP_GT_OQ);
        am = _mm512_mask_mov_ps(am, gt, a);
        mx = _mm512_mask_mov_ps(mx, gt, X[i]);
    }
    const __mmask16 empty = _mm512_cmp_ps_mask(am, _mm512_set1_ps(GROUP_EPS), _CMP_LT_OQ);
    const __m512i lo = _mm512_set1_epi32(-nmax), hi = _mm512_set1_epi32(nmax - 1);
    const __m512i mant = _mm512_set1_epi32(0x007fffff), half = _mm512_set1_epi32(0x00400000);
    const __m512 rc = _mm512_set1_ps(ROUND_C);
    __m512 scale = _mm512_setzero_ps(), best = scale, win = scale;
    for (int c = 0; c < 19; c++) {
        const int is = c == 0 ? 0 : c <= 9 ? c - 10 : c - 9; /* 0, -9..-1, 1..9 */
        const __m512 isc = _mm512_div_ps(_mm512_set1_ps(-((float)nmax + 0.1f * (float)is)), mx);
        __m512 slx = _mm512_setzero_ps(), sl2 = slx;
        for (int i = 0; i < n; i++) {
            const __m512i t = _mm512_castps_si512(_mm512_add_ps(_mm512_mul_ps(isc, X[i]), rc));
            __m512i l = _mm512_sub_epi32(_mm512_and_si512(t, mant), half);
            l = _mm512_max_epi32(_mm512_min_epi32(l, hi), lo);
            const __m512 lf = _mm512_cvtepi32_ps(l);
            slx = _mm512_add_ps(slx, _mm512_mul_ps(WX[i], lf));
            sl2 = _mm512_add_ps(sl2, _mm512_mul_ps(_mm512_mul_ps(W[i], lf), lf));
        }
        if (c == 0) {
            const __mmask16 nz = _mm512_cmp_ps_mask(sl2, _mm512_setzero_ps(), _CMP_NEQ_UQ);
            scale = _mm512_maskz_div_ps(nz, slx, sl2);
            best = _mm512_mul_ps(scale, slx);
            win = isc;
        } else {
            const __mmask16 acc = _mm512_cmp_ps_mask(sl2, _mm512_setzero_ps(), _CMP_GT_OQ) &
                                  _mm512_cmp_ps_mask(_mm512_mul_ps(slx, slx), _mm512_mul_ps(best, sl2), _CMP_GT_OQ);
            const __m512 ns = _mm512_div_ps(slx, sl2);
            scale = _mm512_mask_mov_ps(scale, acc, ns);
            best = _mm512_mask_mov_ps(best, acc, _mm512_mul_ps(ns, slx));
            win = _mm512_mask_mov_ps(win, acc, isc);
        }
    }
    int32_t codes[32][16];
    for (int i = 0; i < n; i++) {
        const __m512i t = _mm512_castps_si512(_mm512_add_ps(_mm512_mul_ps(win, X[i]), rc));
        __m512i l = _mm512_sub_epi32(_mm512_and_si512(t, mant), half);
        l = _mm512_add_epi32(_mm512_max_epi32(_mm512_min_epi32(l, hi), lo), _mm512_set1_epi32(nmax));
        _mm512_storeu_si512(codes[i], _mm512_maskz_mov_epi32((__mmask16)~empty, l));
    }
    float sc[16];
    _mm512_storeu_ps(sc, _mm512_maskz_mov_ps((__mmask16)~empty, scale));
    for (int s = 0; s < k; s++) {
        scales[s] = sc[s];
        for (int i = 0; i < n; i++) L[n * s + i] = (int8_t)codes[i][s];
    }
}

/* qb_kfit_sw_fn: sets of 16 sub-blocks; other lengths than 16 and 32 go to the reference. */
static void kfit_sw_avx512(int nsub, int n, int nmax, const float *x, const float *w, int8_t *L, float *scales)
{
    if (n != 16 && n != 32) {
        qb_kfit_sw_ref(nsub, n, nmax, x, w, L, scales);
        return;
    }
    for (int s = 0; s < nsub; s += 16)
        fit_sw16(nsub - s < 16 ? nsub - s : 16, n, nmax, x + n * s, w + n * s, L + n * s, scales + s);
}

/* ---- with importance weights ------------------------------------------------------------------ */

/* Contract (kernels.h): qb_quant_row_w_ref's bytes, the affine searches and final codes in
 * the lanes above. */
void qb_iq1m_scores_avx512(const float *, const float *, const int *, float[][4], float[][4]); /* quant_iq_avx512.c */

bool qb_quant_row_w_avx512(int type, const float *src, void *dst, int64_t n, const float *qw)
{
    static const qb_wquant_pieces pieces = {
        .fit = kfit_avx512,
        .fit_sw = kfit_sw_avx512,
        .code = kcode_avx512,
        .iq4_scale = qb_iq4_scale_w_avx512,
        .iq4_codes = qb_iq4_codes_avx512,
    };
    if (qw && qb_quant_grid_iq(type)) return qb_quant_row_iq_with(type, src, dst, n, qw, qb_iq1m_scores_avx512);
    if (!qw || !qb_quant_weighted(type)) return qb_quant_row_avx512(type, src, dst, n);
    if (type == QB_TYPE_IQ3_XXS || type == QB_TYPE_IQ3_S) return qb_quant_tq_iq3_avx512(type, src, dst, 1, n, qw);
    return qb_quant_row_w_with(type, src, dst, n, qw, &pieces);
}
