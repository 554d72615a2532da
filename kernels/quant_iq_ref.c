/* quant_iq_ref.c — quantizers of the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M) with
 * importance weights: the spec, writing exactly the bytes ggml's quantize_iq2_xxs /
 * quantize_iq2_xs / quantize_iq2_s / quantize_iq1_s / quantize_iq1_m write for the same row and
 * importance (llama-quantize --imatrix).
 *
 * The searches follow ggml's algorithms step for step (same candidate scales in the same
 * order, f32 sums grouped the same way, the 1.5·2^23 rounding, the first candidate kept on
 * ties, the same fudge factors on the stored scales); do not "simplify" an expression without
 * re-running the byte-exact tests (tests/unit/test-quantize-iq.c). The build's -std=c11 keeps
 * GCC from contracting into fused multiply-adds, as ggml's base library is built.
 *
 * IQ2 formats: each group of 8 values is matched, by |x| and a sign per element (IQ2_XXS and
 * IQ2_XS flip the least important sign to keep an even count), against the grid's points; a
 * code that is not a point goes to its nearest listed neighbour (iq_gridmap.h) by weighted
 * squared error. IQ1 formats: 3 levels (-1, 0, 1 plus a shift ±1/8) split exhaustively over
 * the sorted values, then snapped to the grid. */
#include "kernels.h"
#include "blocks.h"
#include "iq_gridmap.h"
#include "quant_iq.h"
#include "qb_types.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define EPS_IQ2 1e-15f   /* a group whose largest |x| is below this is all zero (IQ2_XXS, IQ2_XS) */
#define EPS_IQ2_S 1e-8f
#define EPS_IQ1_S 1e-12f
#define EPS_IQ1_M 1e-7f

static inline int nearest_int(float v)
{
    const float t = v + 12582912.0f; /* 1.5 * 2^23 */
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* ---- IQ2 ------------------------------------------------------------------------------------- */

/* The neighbour of a non-point code closest to x (8 values) at this scale, by w-weighted
 * squared error; its levels into L. Returns its index. */
static int iq2_nearest(const qb_iq_gridmap *m, int code, const float *x, const float *w, float scale, int8_t *L)
{
    const uint16_t *nb = qb_iq_neighbours(m, code);
    float best = FLT_MAX;
    int pick = nb[1];
    for (int j = 1; j <= nb[0]; j++) {
        const uint8_t *p = (const uint8_t *)&m->points[nb[j]];
        float d2 = 0;
        for (int i = 0; i < 8; i++) {
            const float diff = scale * (float)p[i] - x[i];
            d2 += w[i] * diff * diff;
        }
        if (d2 < best) {
            best = d2;
            pick = nb[j];
        }
    }
    const uint8_t *p = (const uint8_t *)&m->points[pick];
    for (int i = 0; i < 8; i++) L[i] = (int8_t)((p[i] - 1) / 2);
    return pick;
}

/* Levels of 8 values at inverse scale id, clamped to 0..2, into L; their code. */
static int iq2_levels(const float *x, float id, int8_t *L)
{
    int code = 0;
    for (int i = 0; i < 8; i++) {
        L[i] = (int8_t)imax(0, imin(2, nearest_int(0.5f * (id * x[i] - 1))));
        code |= L[i] << 2 * i;
    }
    return code;
}

static int code_of(const int8_t *L)
{
    int code = 0;
    for (int i = 0; i < 8; i++) code |= L[i] << 2 * i;
    return code;
}

/* ggml's make_qp_quants: the weighted best scale for levels 0..nmax of x >= 0 (codes into L). */
static float fit_qp(int n, int nmax, const float *x, uint8_t *L, const float *w)
{
    float max = 0;
    for (int i = 0; i < n; i++) max = max > x[i] ? max : x[i];
    if (!max) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = nmax / max;
    for (int i = 0; i < n; i++) L[i] = (uint8_t)nearest_int(iscale * x[i]);
    const float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; i++) {
        const float diff = x[i] - scale * L[i];
        best_mse += w[i] * diff * diff;
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0) continue;
        const float iscale_is = (0.1f * is + nmax) / max, scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; i++) {
            const int l = imin(nmax, nearest_int(iscale_is * x[i]));
            const float diff = x[i] - scale_is * l;
            mse += w[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = imin(nmax, nearest_int(iscale * x[i]));
        L[i] = (uint8_t)l;
        sumlx += w[i] * x[i] * l;
        suml2 += w[i] * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float slx = sumlx - w[i] * x[i] * L[i], sl2 = suml2 - w[i] * L[i] * L[i];
            if (slx > 0 && sl2 > 0) {
                const int nl = imin(nmax, nearest_int(x[i] * sl2 / slx));
                if (nl != L[i]) {
                    slx += w[i] * x[i] * nl;
                    sl2 += w[i] * nl * nl;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)nl;
                        sumlx = slx;
                        suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (!changed) break;
    }
    return sumlx / suml2;
}

/* Σ w·x·q and Σ w·q² over n values with q = 2L + 1. */
static void iq2_sums(int n, const float *w, const float *x, const int8_t *L, float *sumqx, float *sumq2)
{
    float a = 0, b = 0;
    for (int i = 0; i < n; i++) {
        const float q = 2 * L[i] + 1;
        a += w[i] * x[i] * q;
        b += w[i] * q * q;
    }
    *sumqx = a;
    *sumq2 = b;
}

/* The sign handling of a group of 8: |x| into xval, the negative ones as bits; with `even`,
 * an odd count flips the element of least w·x² back (its value goes negative in xval). */
static uint8_t iq2_signs(const float *xb, const float *w, float *xval, bool even)
{
    uint8_t s = 0;
    int nflip = 0;
    for (int i = 0; i < 8; i++) {
        if (xb[i] >= 0) xval[i] = xb[i];
        else {
            xval[i] = -xb[i];
            nflip++;
            s |= (uint8_t)(1 << i);
        }
    }
    if (even && nflip % 2) {
        int im = 0;
        float mn = w[0] * xb[0] * xb[0];
        for (int i = 1; i < 8; i++) {
            const float ax = w[i] * xb[i] * xb[i];
            if (ax < mn) {
                mn = ax;
                im = i;
            }
        }
        xval[im] = -xval[im];
        s ^= (uint8_t)(1 << im);
    }
    return s;
}

/* IQ2_XXS: sub-blocks of 32 with one 4-bit scale, candidates around make_qp_quants' scale. */
static bool quant_iq2_xxs(const float *x, qb_block_iq2_xxs *y, int64_t nb, const float *qw)
{
    const qb_iq_gridmap *m = qb_iq_gridmap_get(QB_IQ_GRID_2XXS);
    if (!m) return false;
    float scales[8], weight[32], xval[32], waux[32];
    int8_t L[32], Laux[32];
    uint8_t signs[4];
    uint32_t q2[16];
    for (int64_t ibl = 0; ibl < nb; ibl++) {
        const float *xbl = x + 256 * ibl;
        y[ibl].d = qb_f32_to_f16(0.f);
        memset(q2, 0, sizeof q2);
        float max_scale = 0, sumx2 = 0;
        for (int i = 0; i < 256; i++) sumx2 += xbl[i] * xbl[i];
        const float sigma2 = sumx2 / 256;
        for (int ib = 0; ib < 8; ib++) {
            const float *xb = xbl + 32 * ib, *w = qw + 256 * ibl + 32 * ib;
            for (int i = 0; i < 32; i++) weight[i] = w[i] * sqrtf(sigma2 + xb[i] * xb[i]);
            for (int i = 0; i < 32; i++) waux[i] = sqrtf(weight[i]);
            for (int k = 0; k < 4; k++) signs[k] = iq2_signs(xb + 8 * k, weight + 8 * k, xval + 8 * k, true) & 127;
            float max = xval[0];
            for (int i = 1; i < 32; i++) max = max > xval[i] ? max : xval[i];
            if (max < EPS_IQ2) {
                scales[ib] = 0;
                memset(L, 0, sizeof L); /* ggml clears the levels here (a later sub-block may keep them) */
                continue;
            }
            float scale = fit_qp(32, 4, xval, (uint8_t *)L, weight);
            const float eff_max = scale * 3;
            float best = 0;
            for (int is = -6; is <= 6; is++) {
                const float id = (5 + is * 0.1f) / eff_max, this_scale = 1 / id;
                for (int k = 0; k < 4; k++) {
                    const int code = iq2_levels(xval + 8 * k, id, Laux + 8 * k);
                    if (m->map[code] < 0) iq2_nearest(m, code, xval + 8 * k, waux + 8 * k, this_scale, Laux + 8 * k);
                }
                float sumqx, sumq2;
                iq2_sums(32, weight, xval, Laux, &sumqx, &sumq2);
                if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                    scale = sumqx / sumq2;
                    best = scale * sumqx;
                    memcpy(L, Laux, 32);
                }
            }
            if (scale > 0) {
                const float id = 1 / scale;
                for (int k = 0; k < 4; k++) {
                    const int code = iq2_levels(xval + 8 * k, id, L + 8 * k);
                    if (m->map[code] < 0) iq2_nearest(m, code, xval + 8 * k, waux + 8 * k, scale, L + 8 * k);
                }
                float sumqx, sumq2;
                iq2_sums(32, weight, xval, L, &sumqx, &sumq2);
                if (sumq2 > 0) scale = sumqx / sumq2;
            }
            if (scale < 0) { /* ggml guards against it; the signs flip with the scale */
                scale = -scale;
                for (int k = 0; k < 4; k++) signs[k] = (uint8_t)(~signs[k] & 127);
            }
            for (int k = 0; k < 4; k++) {
                const int idx = m->map[code_of(L + 8 * k)];
                if (idx < 0) return false; /* cannot happen: L always comes from a point */
                q2[2 * ib] |= (uint32_t)idx << 8 * k;
                q2[2 * ib + 1] |= (uint32_t)signs[k] << 7 * k;
            }
            scales[ib] = scale;
            max_scale = max_scale > scale ? max_scale : scale;
        }
        if (!max_scale) {
            memset(y[ibl].qs, 0, sizeof y[ibl].qs);
            continue;
        }
        const float d = max_scale / 31;
        y[ibl].d = qb_f32_to_f16(d);
        const float id = 1 / d;
        for (int ib = 0; ib < 8; ib++) {
            const int l = imax(0, imin(15, nearest_int(0.5f * (id * scales[ib] - 1))));
            q2[2 * ib + 1] |= (uint32_t)l << 28;
        }
        memcpy(y[ibl].qs, q2, sizeof q2);
    }
    return true;
}

/* IQ2_XS and IQ2_S: sub-blocks of 16 (two groups) with 4-bit scales, 19 candidate scales.
 * IQ2_S keeps every sign (its signs are stored whole), has its own default weights and
 * threshold and stores d · 0.9875; IQ2_XS packs index | signs << 9. */
static bool quant_iq2_16(const float *x, void *vy, int64_t nb, const float *qw, bool is_s)
{
    const qb_iq_gridmap *m = qb_iq_gridmap_get(is_s ? QB_IQ_GRID_2S : QB_IQ_GRID_2XS);
    if (!m) return false;
    float scales[16], weight[16], xval[16], waux[16];
    int8_t L[16], Laux[16];
    bool on_grid[2], on_grid_aux[2];
    uint8_t signs[2];
    uint16_t q2[32];
    for (int64_t ibl = 0; ibl < nb; ibl++) {
        const float *xbl = x + 256 * ibl;
        qb_block_iq2_xs *yx = is_s ? NULL : (qb_block_iq2_xs *)vy + ibl;
        qb_block_iq2_s *ys = is_s ? (qb_block_iq2_s *)vy + ibl : NULL;
        if (is_s) memset(ys, 0, sizeof *ys);
        else {
            memset(q2, 0, sizeof q2);
            memset(yx->scales, 0, sizeof yx->scales);
        }
        float max_scale = 0, sumx2 = 0;
        for (int i = 0; i < 256; i++) sumx2 += xbl[i] * xbl[i];
        const float sigma2 = is_s ? 2 * sumx2 / 256 : sumx2 / 256;
        for (int ib = 0; ib < 16; ib++) {
            const float *xb = xbl + 16 * ib;
            if (qw) {
                const float *w = qw + 256 * ibl + 16 * ib;
                for (int i = 0; i < 16; i++) weight[i] = w[i] * sqrtf(sigma2 + xb[i] * xb[i]);
            } else { /* IQ2_S only */
                for (int i = 0; i < 16; i++) weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
            }
            for (int i = 0; i < 16; i++) waux[i] = sqrtf(weight[i]);
            for (int k = 0; k < 2; k++) {
                signs[k] = iq2_signs(xb + 8 * k, weight + 8 * k, xval + 8 * k, !is_s);
                if (!is_s) signs[k] &= 127;
            }
            float max = xval[0];
            for (int i = 1; i < 16; i++) max = max > xval[i] ? max : xval[i];
            if (max < (is_s ? EPS_IQ2_S : EPS_IQ2)) {
                scales[ib] = 0;
                if (!is_s) memset(L, 0, sizeof L); /* as ggml: IQ2_XS clears the levels, IQ2_S keeps them */
                continue;
            }
            float best = 0, scale = max / 5;
            on_grid[0] = on_grid[1] = true;
            for (int is = -9; is <= 9; is++) {
                const float id = (5 + is * 0.1f) / max, this_scale = 1 / id;
                for (int k = 0; k < 2; k++) {
                    const int code = iq2_levels(xval + 8 * k, id, Laux + 8 * k);
                    on_grid_aux[k] = m->map[code] >= 0;
                    if (!on_grid_aux[k]) iq2_nearest(m, code, xval + 8 * k, waux + 8 * k, this_scale, Laux + 8 * k);
                }
                float sumqx, sumq2;
                iq2_sums(16, weight, xval, Laux, &sumqx, &sumq2);
                if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                    scale = sumqx / sumq2;
                    best = scale * sumqx;
                    memcpy(L, Laux, 16);
                    on_grid[0] = on_grid_aux[0];
                    on_grid[1] = on_grid_aux[1];
                }
            }
            if ((!on_grid[0] || !on_grid[1]) && scale > 0) {
                const float id = 1 / scale;
                for (int k = 0; k < 2; k++) {
                    if (on_grid[k]) continue;
                    const int code = iq2_levels(xval + 8 * k, id, L + 8 * k);
                    if (m->map[code] < 0) iq2_nearest(m, code, xval + 8 * k, waux + 8 * k, scale, L + 8 * k);
                }
                float sumqx, sumq2;
                iq2_sums(16, weight, xval, L, &sumqx, &sumq2);
                if (sumq2 > 0) scale = sumqx / sumq2;
            }
            if (scale < 0) {
                scale = -scale;
                for (int k = 0; k < 2; k++) signs[k] = (uint8_t)(is_s ? ~signs[k] : ~signs[k] & 127);
            }
            for (int k = 0; k < 2; k++) {
                const int idx = m->map[code_of(L + 8 * k)];
                if (idx < 0) return false; /* cannot happen: L always comes from a point */
                if (is_s) {
                    const int g = 2 * ib + k;
                    ys->qs[g] = (uint8_t)(idx & 255);
                    ys->qh[g / 4] |= (uint8_t)((idx >> 8) << 2 * (g % 4));
                    ys->qs[32 + g] = signs[k];
                } else {
                    q2[2 * ib + k] = (uint16_t)(idx | signs[k] << 9);
                }
            }
            scales[ib] = scale;
            max_scale = max_scale > scale ? max_scale : scale;
        }
        if (!max_scale) {
            if (!is_s) {
                yx->d = qb_f32_to_f16(0.f);
                memset(yx->qs, 0, sizeof yx->qs);
            }
            continue;
        }
        const float d = max_scale / 31;
        const float id = 1 / d;
        uint8_t *sc = is_s ? ys->scales : yx->scales;
        if (is_s) ys->d = qb_f32_to_f16(d * 0.9875f);
        else yx->d = qb_f32_to_f16(d);
        for (int ib = 0; ib < 16; ib++) {
            const int l = imax(0, imin(15, nearest_int(0.5f * (id * scales[ib] - 1))));
            if (ib % 2 == 0) sc[ib / 2] = (uint8_t)l;
            else sc[ib / 2] |= (uint8_t)(l << 4);
        }
        if (!is_s) memcpy(yx->qs, q2, sizeof q2);
    }
    return true;
}

/* ---- IQ1 ------------------------------------------------------------------------------------- */

/* A value and its position, sorted by value with the C library's qsort (as ggml sorts its
 * (value, index) pairs: the same layout, comparator and input give the same order). */
typedef struct {
    float v;
    int i;
} vpair;

static int vpair_cmp(const void *a, const void *b)
{
    const float l = ((const vpair *)a)->v, r = ((const vpair *)b)->v;
    return l < r ? -1 : l > r ? 1 : 0;
}

/* The neighbour of a non-point code closest to x (8 values) when level l means scale·xg[l], by
 * w-weighted squared error; its levels into L. */
static int iq1_nearest(const qb_iq_gridmap *m, int code, const float *x, const float *w, float scale, const float *xg,
                       int8_t *L)
{
    const uint16_t *nb = qb_iq_neighbours(m, code);
    float best = FLT_MAX;
    int pick = nb[1];
    for (int j = 1; j <= nb[0]; j++) {
        const uint8_t *p = (const uint8_t *)&m->points[nb[j]];
        float d2 = 0;
        for (int i = 0; i < 8; i++) {
            const float q = xg[(p[i] - 1) / 2];
            const float diff = scale * q - x[i];
            d2 += w[i] * diff * diff;
        }
        if (d2 < best) {
            best = d2;
            pick = nb[j];
        }
    }
    const uint8_t *p = (const uint8_t *)&m->points[pick];
    for (int i = 0; i < 8; i++) L[i] = (int8_t)((p[i] - 1) / 2);
    return pick;
}

/* Levels 0 below split i1, 1 up to i2, 2 above, over the sorted positions. */
static void iq1_split(const vpair *pr, int n, int i1, int i2, int8_t *L)
{
    for (int j = 0; j < i1; j++) L[pr[j].i] = 0;
    for (int j = i1; j < i2; j++) L[pr[j].i] = 1;
    for (int j = i2; j < n; j++) L[pr[j].i] = 2;
}

static const float iq1_xp[3] = {-1 + QB_IQ1_DELTA, QB_IQ1_DELTA, 1 + QB_IQ1_DELTA};
static const float iq1_xm[3] = {-1 - QB_IQ1_DELTA, -QB_IQ1_DELTA, 1 - QB_IQ1_DELTA};

/* Snap the 8-value groups of a sub-block (levels L, group k's level values xg[k]) to grid
 * points: their indices into index[]; false when some group was off the grid. */
static bool iq1_snap(const qb_iq_gridmap *m, int ngroups, const float *xb, const float *w, float scale,
                     const float *const *xg, int8_t *L, uint16_t *index)
{
    bool all = true;
    for (int k = 0; k < ngroups; k++) {
        const int code = code_of(L + 8 * k);
        int idx = m->map[code];
        if (idx < 0) {
            all = false;
            idx = iq1_nearest(m, code, xb + 8 * k, w + 8 * k, scale, xg[k], L + 8 * k);
        }
        index[k] = (uint16_t)idx;
    }
    return all;
}

/* The scale refitted to the snapped points. */
static float iq1_refit(const qb_iq_gridmap *m, int ngroups, const float *xb, const float *w, const float *const *xg,
                       const uint16_t *index, float scale)
{
    float sumqx = 0, sumq2 = 0;
    for (int k = 0; k < ngroups; k++) {
        const uint8_t *p = (const uint8_t *)&m->points[index[k]];
        for (int j = 0; j < 8; j++) {
            const float ww = w[8 * k + j], q = xg[k][(p[j] - 1) / 2];
            sumqx += ww * q * xb[8 * k + j];
            sumq2 += ww * q * q;
        }
    }
    return sumqx > 0 && sumq2 > 0 ? sumqx / sumq2 : scale;
}

/* IQ1_S: sub-blocks of 32, one shift sign and a 3-bit scale each. shifts persists across
 * calls' blocks as ggml's buffer does (an all-zero sub-block reuses the last value there). */
static bool quant_iq1_s(const float *x, qb_block_iq1_s *y, int64_t nb, const float *qw, int8_t shifts[8])
{
    const qb_iq_gridmap *m = qb_iq_gridmap_get(QB_IQ_GRID_1S);
    if (!m) return false;
    float scales[8], weight[32], sumx[33], sumw[33];
    int8_t L[32];
    uint16_t index[4];
    vpair pr[32];
    for (int64_t ibl = 0; ibl < nb; ibl++) {
        const float *xbl = x + 256 * ibl;
        memset(&y[ibl], 0, sizeof y[ibl]);
        float max_scale = 0, sumx2 = 0;
        for (int i = 0; i < 256; i++) sumx2 += xbl[i] * xbl[i];
        const float sigma2 = 2 * sumx2 / 256;
        for (int ib = 0; ib < 8; ib++) {
            const float *xb = xbl + 32 * ib, *w = qw + 256 * ibl + 32 * ib;
            for (int i = 0; i < 32; i++) weight[i] = w[i] * sqrtf(sigma2 + xb[i] * xb[i]);
            float max = fabsf(xb[0]);
            for (int i = 1; i < 32; i++) max = max > fabsf(xb[i]) ? max : fabsf(xb[i]);
            if (max < EPS_IQ1_S) {
                scales[ib] = 0;
                continue;
            }
            for (int j = 0; j < 32; j++) pr[j] = (vpair){xb[j], j};
            qsort(pr, 32, sizeof pr[0], vpair_cmp);
            sumx[0] = sumw[0] = 0;
            for (int j = 0; j < 32; j++) {
                const int i = pr[j].i;
                sumx[j + 1] = sumx[j] + weight[i] * xb[i];
                sumw[j + 1] = sumw[j] + weight[i];
            }
            float best = -FLT_MIN, scale = max;
            int b1 = -1, b2 = -1, shift = 0;
            for (int i1 = 0; i1 <= 32; i1++)
                for (int i2 = i1; i2 <= 32; i2++)
                    for (int t = 0; t < 2; t++) {
                        const float *xv = t ? iq1_xm : iq1_xp;
                        const float sumqx = (sumx[i1] - sumx[0]) * xv[0] + (sumx[i2] - sumx[i1]) * xv[1] + (sumx[32] - sumx[i2]) * xv[2];
                        const float sumq2 = (sumw[i1] - sumw[0]) * xv[0] * xv[0] + (sumw[i2] - sumw[i1]) * xv[1] * xv[1] +
                                            (sumw[32] - sumw[i2]) * xv[2] * xv[2];
                        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                            scale = sumqx / sumq2;
                            best = scale * sumqx;
                            b1 = i1;
                            b2 = i2;
                            shift = t ? -1 : 1;
                        }
                    }
            if (b1 < 0) return false; /* ggml asserts here: no split fits (NaN input) */
            iq1_split(pr, 32, b1, b2, L);
            if (scale < 0) {
                for (int j = 0; j < 32; j++) L[j] = (int8_t)(2 - L[j]);
                scale = -scale;
                shift = -shift;
            }
            const float *xx = shift == 1 ? iq1_xp : iq1_xm;
            const float *const xg[4] = {xx, xx, xx, xx};
            if (!iq1_snap(m, 4, xb, weight, scale, xg, L, index)) scale = iq1_refit(m, 4, xb, weight, xg, index, scale);
            uint16_t h = 0;
            for (int k = 0; k < 4; k++) {
                y[ibl].qs[4 * ib + k] = (uint8_t)(index[k] & 255);
                h |= (uint16_t)((index[k] >> 8) << 3 * k);
            }
            y[ibl].qh[ib] = h;
            scales[ib] = scale;
            shifts[ib] = (int8_t)shift;
            max_scale = max_scale > scale ? max_scale : scale;
        }
        if (!max_scale) continue;
        const float d = max_scale / 15;
        y[ibl].d = qb_f32_to_f16(d * 1.125f); /* ggml's factor on the stored scale */
        const float id = 1 / d;
        for (int ib = 0; ib < 8; ib++) {
            int l = imax(0, imin(7, nearest_int(0.5f * (id * scales[ib] - 1))));
            if (shifts[ib] == -1) l |= 8;
            y[ibl].qh[ib] |= (uint16_t)(l << 12);
        }
    }
    return true;
}

/* IQ1_M sub-block weights: the importance form, or ggml's x² without a matrix. */
static void iq1m_weights(const float *xb, const float *w, float sigma2, float *weight)
{
    if (w)
        for (int i = 0; i < 16; i++) weight[i] = w[i] * sqrtf(sigma2 + xb[i] * xb[i]);
    else
        for (int i = 0; i < 16; i++) weight[i] = xb[i] * xb[i];
}

/* IQ1_M: sub-blocks of 16, a shift sign per group of 8 (k: bit 1 the first group's, bit 0 the
 * second's, set = minus) and a 3-bit scale each; the super-block scale is refitted at the end. */
/* The IQ1_M split scores, ggml's arithmetic: for every split (i1 ≤ i2 in 0..16, i1 outer, the
 * split's index counting up), Σ w·v·x and Σ w·v·v over the sorted positions j (order[j] the
 * element), v the level value of j (0 below i1, 1 below i2, else 2) under each of the four
 * shift choices k (0: +,+  1: +,-  2: -,+  3: -,-  for the first and second group of 8), added
 * in j order, each product as (w·v)·x. */
void qb_iq1m_scores_ref(const float *weight, const float *xb, const int *order, float sqx[][4], float sq2[][4])
{
    for (int i1 = 0, sp = 0; i1 <= 16; i1++)
        for (int i2 = i1; i2 <= 16; i2++, sp++) {
            float a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
            for (int j = 0; j < 16; j++) {
                const int lv = j < i1 ? 0 : j < i2 ? 1 : 2, i = order[j];
                const float p = iq1_xp[lv], mm = iq1_xm[lv];
                const float px = weight[i] * p * xb[i], mx = weight[i] * mm * xb[i];
                const float pp = weight[i] * p * p, m2 = weight[i] * mm * mm;
                a[0] += px, a[3] += mx, a[1] += i < 8 ? px : mx, a[2] += i < 8 ? mx : px;
                b[0] += pp, b[3] += m2, b[1] += i < 8 ? pp : m2, b[2] += i < 8 ? m2 : pp;
            }
            memcpy(sqx[sp], a, sizeof a);
            memcpy(sq2[sp], b, sizeof b);
        }
}

static bool quant_iq1_m(const float *x, qb_block_iq1_m *y, int64_t nb, const float *qw, int8_t shifts[16],
                        qb_iq1m_score_fn score)
{
    static const uint8_t masks[4] = {0x00, 0x80, 0x08, 0x88};
    const qb_iq_gridmap *m = qb_iq_gridmap_get(QB_IQ_GRID_1S);
    if (!m) return false;
    float scales[16], weight[16];
    int8_t L[16];
    uint16_t index[2];
    vpair pr[16];
    for (int64_t ibl = 0; ibl < nb; ibl++) {
        const float *xbl = x + 256 * ibl;
        memset(&y[ibl], 0, sizeof y[ibl]);
        float max_scale = 0, sumx2 = 0;
        for (int i = 0; i < 256; i++) sumx2 += xbl[i] * xbl[i];
        const float sigma2 = 2 * sumx2 / 256;
        for (int ib = 0; ib < 16; ib++) {
            const float *xb = xbl + 16 * ib;
            iq1m_weights(xb, qw ? qw + 256 * ibl + 16 * ib : NULL, sigma2, weight);
            float max = fabsf(xb[0]);
            for (int i = 1; i < 16; i++) max = max > fabsf(xb[i]) ? max : fabsf(xb[i]);
            if (max < EPS_IQ1_M) {
                scales[ib] = 0;
                continue;
            }
            for (int j = 0; j < 16; j++) pr[j] = (vpair){xb[j], j};
            qsort(pr, 16, sizeof pr[0], vpair_cmp);
            float best = -FLT_MIN, scale = max;
            int b1 = -1, b2 = -1, bk = -1;
            int order[16];
            for (int j = 0; j < 16; j++) order[j] = pr[j].i;
            float sqx[QB_IQ1M_SPLITS][4], sq2[QB_IQ1M_SPLITS][4];
            score(weight, xb, order, sqx, sq2);
            for (int i1 = 0, sp = 0; i1 <= 16; i1++)
                for (int i2 = i1; i2 <= 16; i2++, sp++)
                    for (int k = 0; k < 4; k++)
                        if (sq2[sp][k] > 0 && sqx[sp][k] * sqx[sp][k] > best * sq2[sp][k]) {
                            scale = sqx[sp][k] / sq2[sp][k];
                            best = scale * sqx[sp][k];
                            b1 = i1;
                            b2 = i2;
                            bk = k;
                        }
            if (b1 < 0) return false; /* ggml asserts here: no split fits (NaN input) */
            iq1_split(pr, 16, b1, b2, L);
            if (scale < 0) {
                for (int j = 0; j < 16; j++) L[j] = (int8_t)(2 - L[j]);
                scale = -scale;
                bk = 3 - bk;
            }
            const float *const xg[2] = {bk < 2 ? iq1_xp : iq1_xm, bk % 2 == 0 ? iq1_xp : iq1_xm};
            if (!iq1_snap(m, 2, xb, weight, scale, xg, L, index)) scale = iq1_refit(m, 2, xb, weight, xg, index, scale);
            y[ibl].qs[2 * ib] = (uint8_t)(index[0] & 255);
            y[ibl].qs[2 * ib + 1] = (uint8_t)(index[1] & 255);
            y[ibl].qh[ib] = (uint8_t)((index[0] >> 8) | ((index[1] >> 8) << 4));
            scales[ib] = scale;
            shifts[ib] = (int8_t)bk;
            max_scale = max_scale > scale ? max_scale : scale;
        }
        if (!max_scale) continue;
        uint16_t sc[4] = {0, 0, 0, 0};
        float d = max_scale / 15;
        const float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int ib = 0; ib < 16; ib++) {
            const int l = imax(0, imin(7, nearest_int(0.5f * (id * scales[ib] - 1))));
            sc[ib / 4] |= (uint16_t)(l << 3 * (ib % 4));
            y[ibl].qh[ib] |= masks[shifts[ib] & 3];
            const float *xb = xbl + 16 * ib;
            iq1m_weights(xb, qw ? qw + 256 * ibl + 16 * ib : NULL, sigma2, weight);
            for (int k = 0; k < 2; k++) {
                const float *xx = (k == 0 ? shifts[ib] < 2 : shifts[ib] % 2 == 0) ? iq1_xp : iq1_xm;
                const int idx = y[ibl].qs[2 * ib + k] + ((y[ibl].qh[ib] << (8 - 4 * k)) & 0x700);
                const uint8_t *p = (const uint8_t *)&m->points[idx];
                for (int j = 0; j < 8; j++) {
                    const float ww = weight[8 * k + j], q = xx[(p[j] - 1) / 2] * (2 * l + 1);
                    sumqx += ww * q * xb[8 * k + j];
                    sumq2 += ww * q * q;
                }
            }
        }
        if (sumq2 > 0) d = sumqx / sumq2;
        const uint16_t s = qb_f32_to_f16(d * 1.1125f); /* ggml's factor on the stored scale */
        sc[0] |= (uint16_t)((s & 0x000f) << 12);
        sc[1] |= (uint16_t)((s & 0x00f0) << 8);
        sc[2] |= (uint16_t)((s & 0x0f00) << 4);
        sc[3] |= (uint16_t)(s & 0xf000);
        memcpy(y[ibl].scales, sc, sizeof sc);
    }
    return true;
}

/* ---- entry ----------------------------------------------------------------------------------- */

bool qb_quant_row_iq_ref(int type, const float *x, void *dst, int64_t n, const float *imatrix)
{
    return qb_quant_row_iq_with(type, x, dst, n, imatrix, qb_iq1m_scores_ref);
}

bool qb_quant_row_iq_with(int type, const float *x, void *dst, int64_t n, const float *imatrix, qb_iq1m_score_fn score)
{
    if (n < 0 || n % QB_QK_K != 0) return false;
    const int64_t nb = n / QB_QK_K;
    float *ones = NULL;
    const float *w = imatrix;
    if (!w && type != QB_TYPE_IQ2_S && type != QB_TYPE_IQ1_M) { /* uniform importance */
        if (!(ones = malloc((size_t)(n ? n : 1) * sizeof *ones))) return false;
        for (int64_t i = 0; i < n; i++) ones[i] = 1.0f;
        w = ones;
    }
    int8_t shifts[16] = {0};
    bool ok;
    switch (type) {
    case QB_TYPE_IQ2_XXS: ok = quant_iq2_xxs(x, dst, nb, w); break;
    case QB_TYPE_IQ2_XS: ok = quant_iq2_16(x, dst, nb, w, false); break;
    case QB_TYPE_IQ2_S: ok = quant_iq2_16(x, dst, nb, w, true); break;
    case QB_TYPE_IQ1_S: ok = quant_iq1_s(x, dst, nb, w, shifts); break;
    case QB_TYPE_IQ1_M: ok = quant_iq1_m(x, dst, nb, w, shifts, score ? score : qb_iq1m_scores_ref); break;
    default: ok = false; break;
    }
    free(ones);
    return ok;
}
