/* quant_kquants_ref.c — scalar quantization of the 256-element super-block formats (Q2_K,
 * Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_XS) and the scale searches they are built on.
 *
 * Every K format quantizes in two levels: each sub-block (16 or 32 elements) first gets its
 * own float scale (and min) from a small search, then those sub-block scales are themselves
 * quantized to 4, 6 or 8 bits against one f16 super-block scale, and finally every element
 * is re-quantized against the scale it will really be decoded with.
 *
 * This file is the spec and must write exactly the bytes ggml's quantize_row_*_ref writes
 * (for IQ4_XS, quantize_iq4_xs without an importance matrix): the searches try the same
 * candidate scales in the same order, accumulate in f32 with the operations grouped the same
 * way ((w * l) * x, never w * (l * x)), round with the same "add 1.5 * 2^23" trick, and keep
 * the first candidate on ties. Do not "simplify" an expression here without re-running the
 * byte-exact tests: one changed rounding flips a code somewhere in a large tensor. No
 * contraction into fused multiply-adds either (the build's -std=c11 keeps GCC from fusing;
 * the pragma tells clang). */
#include "blocks.h"
#include "quant_k.h"

#include "qb_types.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define GROUP_EPS 1e-15f /* a group with no magnitude above this counts as all zeros */

/* Round to the nearest integer, halves to even, by adding 1.5 * 2^23: the sum's low mantissa
 * bits then hold the integer (valid for |v| < 2^22; other inputs give the same meaningless
 * but deterministic result ggml's version gives, which keeps us byte-compatible even on
 * degenerate blocks). */
static inline int round_int(float v)
{
    const float t = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

static inline int clamp_int(int v, int lo, int hi)
{
    v = v > lo ? v : lo; /* two plain min/max steps: the compiler keeps them branch-free */
    return v < hi ? v : hi;
}

/* ---- sub-block searches ------------------------------------------------------------------- */

/* Affine fit for the formats with a min (Q2_K, Q4_K, Q5_K): find scale s and offset m <= 0
 * so that x ~ s * L + m with L in 0..nmax, minimising sum w * |err| (abs_err) or
 * sum w * err^2. Starts from the plain min/max mapping (m = min(x, 0)), then tries the
 * inverse scales (nmax + rmin + rdelta * k) / (max - m) for k = 0..nstep in turn, coding
 * x - m with each; the codes a candidate gives are refitted by weighted least squares (m
 * clamped to 0, s refitted alone, when the fit wants a positive offset), and the candidate
 * is accepted if it strictly lowers the error. An accepted candidate's m becomes the offset
 * the following candidates code from. Writes the codes to L and -m (>= 0) to *neg_min;
 * returns s.
 *
 * Evaluation order, for speed: a candidate depends on the ones before it only through m,
 * which changes only when one is accepted. So the candidates are evaluated in batches side
 * by side (each sum still accumulated element by element in order, so every figure is the
 * one-at-a-time one), then scanned in order; at the first acceptance the rest of the batch,
 * computed from the old m, is dropped and a new batch starts after it. Side by side, the
 * long chains of dependent additions overlap instead of running one after another (and the
 * compiler can put the candidates in vector lanes). */
enum { MAX_N = 32, BATCH = 4 }; /* n <= 32 elements; candidates evaluated together */

/* Least-squares figures of the candidates with inverse scales isc[0..BATCH) coding x - m:
 * codes[i][c], whether the fit exists (ok), its scale and offset, and its error. */
typedef struct {
    float code[MAX_N][BATCH];
    float s[BATCH], m[BATCH], err[BATCH];
    bool ok[BATCH];
} fit_batch;

static void eval_batch(fit_batch *fb, int n, int nmax, const float *x, const float *w,
                       float sum_w, float sum_x, float m, const float isc[BATCH], bool abs_err)
{
    float xm[MAX_N];
    for (int i = 0; i < n; i++) xm[i] = x[i] - m;
    float sl[BATCH] = {0}, sl2[BATCH] = {0}, sxl[BATCH] = {0};
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < BATCH; c++) {
            const float l = (float)clamp_int(round_int(isc[c] * xm[i]), 0, nmax);
            fb->code[i][c] = l;
            const float wl = w[i] * l;
            sl[c] += wl;
            sl2[c] += wl * l;
            sxl[c] += wl * x[i];
        }
    }
    for (int c = 0; c < BATCH; c++) {
        const float det = sum_w * sl2[c] - sl[c] * sl[c];
        fb->ok[c] = det > 0;
        fb->s[c] = fb->m[c] = 0.0f;
        if (!fb->ok[c]) continue;
        fb->s[c] = (sum_w * sxl[c] - sum_x * sl[c]) / det;
        fb->m[c] = (sl2[c] * sum_x - sl[c] * sxl[c]) / det;
        if (fb->m[c] > 0) {
            fb->m[c] = 0;
            fb->s[c] = sxl[c] / sl2[c];
        }
    }
    float err[BATCH] = {0}; /* a local accumulator: kept in registers */
    for (int i = 0; i < n; i++) {
        if (abs_err) {
            for (int c = 0; c < BATCH; c++)
                err[c] += w[i] * fabsf(fb->s[c] * fb->code[i][c] + fb->m[c] - x[i]);
        } else {
            for (int c = 0; c < BATCH; c++) {
                const float diff = fb->s[c] * fb->code[i][c] + fb->m[c] - x[i];
                err[c] += w[i] * (diff * diff);
            }
        }
    }
    memcpy(fb->err, err, sizeof err);
}

static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                           float *neg_min, float rmin, float rdelta, int nstep, bool abs_err)
{
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *neg_min = -min;
        return 0.0f;
    }
    const float iscale0 = (float)nmax / (max - min);
    float scale = 1 / iscale0;
    float best_err = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clamp_int(round_int(iscale0 * (x[i] - min)), 0, nmax);
        const float diff = scale * (float)L[i] + min - x[i];
        best_err += w[i] * (abs_err ? fabsf(diff) : diff * diff);
    }
    fit_batch fb;
    for (int k0 = 0; k0 <= nstep;) {
        float isc[BATCH];
        for (int c = 0; c < BATCH; c++) /* lanes past nstep are computed and ignored */
            isc[c] = (rmin + rdelta * (float)(k0 + c) + (float)nmax) / (max - min);
        eval_batch(&fb, n, nmax, x, w, sum_w, sum_x, min, isc, abs_err);
        int c = 0;
        while (c < BATCH && k0 + c <= nstep && !(fb.ok[c] && fb.err[c] < best_err)) c++;
        if (c < BATCH && k0 + c <= nstep) { /* accepted: later lanes used the old offset */
            for (int i = 0; i < n; i++) L[i] = (uint8_t)fb.code[i][c];
            best_err = fb.err[c];
            scale = fb.s[c];
            min = fb.m[c];
            c++;
        }
        k0 += c;
    }
    *neg_min = -min;
    return scale;
}

/* Symmetric fit for Q6_K (16 values, codes -nmax..nmax-1 stored biased by nmax into L),
 * weights x^2: start from the mapping of the largest-magnitude element to -nmax, take the
 * least-squares scale for its codes, then try the inverse scales -(nmax + 0.1 k) / max for
 * k = -9..9 (k != 0) in that order, accepting one only if it strictly improves
 * sum_lx^2 / sum_l2 over the best so far. Returns the scale (0 and all codes 0 for an
 * all-zero group).
 *
 * The candidates' sums do not depend on one another (only the acceptance test does), so
 * all nineteen (the start is k = 0) are accumulated side by side, element by element in
 * order, and then scanned in candidate order. */
static float fit_scale_sym(const float *x, int nmax, int8_t *L)
{
    enum { N = 16, LANES = 20 }; /* lane c: k = c - 9; lane 19 is padding */
    float amax = 0, max = 0;
    for (int i = 0; i < N; i++) {
        const float a = fabsf(x[i]);
        if (a > amax) {
            amax = a;
            max = x[i];
        }
    }
    if (amax < GROUP_EPS) {
        memset(L, 0, N);
        return 0.0f;
    }
    float w[N], wx[N];
    for (int i = 0; i < N; i++) {
        w[i] = x[i] * x[i];
        wx[i] = w[i] * x[i];
    }
    float isc[LANES];
    for (int c = 0; c < LANES; c++)
        isc[c] = c < 19 ? -((float)nmax + 0.1f * (float)(c - 9)) / max : 0.0f;
    float sumlx[LANES] = {0}, suml2[LANES] = {0};
    for (int i = 0; i < N; i++) {
        for (int c = 0; c < LANES; c++) {
            const float l = (float)clamp_int(round_int(isc[c] * x[i]), -nmax, nmax - 1);
            sumlx[c] += wx[i] * l;
            suml2[c] += w[i] * l * l;
        }
    }
    int win = 9; /* k = 0: the start, -nmax / max */
    float scale = suml2[9] != 0 ? sumlx[9] / suml2[9] : 0.0f;
    float best = scale * sumlx[9];
    for (int c = 0; c < 19; c++) {
        if (c == 9) continue;
        if (suml2[c] > 0 && sumlx[c] * sumlx[c] > best * suml2[c]) {
            win = c;
            scale = sumlx[c] / suml2[c];
            best = scale * sumlx[c];
        }
    }
    for (int i = 0; i < N; i++)
        L[i] = (int8_t)(nmax + clamp_int(round_int(isc[win] * x[i]), -nmax, nmax - 1));
    return scale;
}

/* Symmetric fit for Q3_K (16 values, codes -4..3, weights x^2) by coordinate descent: start
 * from the mapping of the largest-magnitude element to -4, then up to five sweeps in which
 * each code in turn is moved to its best value given the others, kept when that strictly
 * raises sum_lx^2 / sum_l2. Codes come back biased by 4 (0..7); returns the scale
 * sum_lx / sum_l2 (0 and codes 0 for an all-zero group). */
static float fit_scale_q3(const float *x, int8_t *L)
{
    enum { N = 16, NMAX = 4 };
    float amax = 0, max = 0;
    for (int i = 0; i < N; i++) {
        const float a = fabsf(x[i]);
        if (a > amax) {
            amax = a;
            max = x[i];
        }
    }
    if (amax < GROUP_EPS) {
        memset(L, 0, N);
        return 0.0f;
    }
    const float iscale = (float)-NMAX / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < N; i++) {
        const int l = clamp_int(round_int(iscale * x[i]), -NMAX, NMAX - 1);
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int sweep = 0; sweep < 5; sweep++) {
        int changed = 0;
        for (int i = 0; i < N; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (!(slx > 0)) continue;
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            const int l = clamp_int(round_int(x[i] * sl2 / slx), -NMAX, NMAX - 1);
            if (l == L[i]) continue;
            slx += w * x[i] * (float)l;
            sl2 += w * (float)l * (float)l;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)l;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < N; i++) L[i] = (int8_t)(L[i] + NMAX);
    return sumlx / suml2;
}

/* ---- packing helpers ---------------------------------------------------------------------- */

/* 2-bit codes of 256 elements into 64 bytes: byte 32h + l holds elements 128h + l + 32k in
 * bits 2k..2k+1 (k = 0..3). */
void qb_kpack_2bit(const uint8_t *L, uint8_t qs[64])
{
    for (int h = 0; h < 2; h++) {
        const uint8_t *c = L + 128 * h;
        for (int l = 0; l < 32; l++)
            qs[32 * h + l] = (uint8_t)(c[l] | c[l + 32] << 2 | c[l + 64] << 4 | c[l + 96] << 6);
    }
}

/* Eight (scale, min) 6-bit pairs into the 12-byte Q4_K / Q5_K layout (see blocks.h). */
static void pack_scale_min_k4(const uint8_t sc[8], const uint8_t mn[8], uint8_t p[12])
{
    for (int s = 0; s < 4; s++) {
        p[s] = (uint8_t)(sc[s] | (sc[s + 4] >> 4) << 6);
        p[s + 4] = (uint8_t)(mn[s] | (mn[s + 4] >> 4) << 6);
        p[s + 8] = (uint8_t)((sc[s + 4] & 15) | (mn[s + 4] & 15) << 4);
    }
}

/* Contract (quant_k.h). */
void qb_kcode_ref(const float *x, int n, float dm, float d, int lo, int hi, uint8_t *L)
{
    for (int i = 0; i < n; i++) L[i] = (uint8_t)(clamp_int(round_int((x[i] + dm) / d), lo, hi) - lo);
}

/* Contract (quant_k.h): the sub-blocks one after another, each with fit_scale_min. */
void qb_kfit_ref(int nsub, int n, int nmax, const float *x, const float *w, uint8_t *L, float *scales, float *neg_mins,
                 float rmin, float rdelta, int nstep, bool abs_err)
{
    for (int s = 0; s < nsub; s++)
        scales[s] = fit_scale_min(n, nmax, x + n * s, w + n * s, L + n * s, &neg_mins[s], rmin, rdelta, nstep, abs_err);
}

/* The weights of a Q4_K / Q5_K super-block's sub-block fits: the sub-block's RMS plus |x|. */
static void k4_weights(const float *x, float w[QB_QK_K])
{
    for (int s = 0; s < 8; s++) {
        const float *xs = x + 32 * s;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[32 * s + l] = av_x + fabsf(xs[l]);
    }
}

/* After the fits: the 6-bit scale/min quantization shared by Q4_K and Q5_K; fills L with the
 * final codes (0..nmax) of the 256 elements, the packed scales, d and dmin. */
static void k4_finish(const float *x, int nmax, const float scales[8], const float mins[8], uint8_t L[QB_QK_K],
                      uint8_t scales_out[12], uint16_t *dh, uint16_t *dminh, qb_kcode_fn code)
{
    float max_scale = 0, max_min = 0; /* scales and mins come out >= 0 */
    for (int s = 0; s < 8; s++) {
        if (scales[s] > max_scale) max_scale = scales[s];
        if (mins[s] > max_min) max_min = mins[s];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t sc[8], mn[8];
    for (int s = 0; s < 8; s++) {
        const uint8_t ls = (uint8_t)round_int(inv_scale * scales[s]);
        const uint8_t lm = (uint8_t)round_int(inv_min * mins[s]);
        sc[s] = ls < 63 ? ls : 63;
        mn[s] = lm < 63 ? lm : 63;
    }
    pack_scale_min_k4(sc, mn, scales_out);
    *dh = qb_f32_to_f16(max_scale / 63.f);
    *dminh = qb_f32_to_f16(max_min / 63.f);
    /* re-quantize against the scales as they will be decoded */
    const float d_all = qb_f16_to_f32(*dh), dmin_all = qb_f16_to_f32(*dminh);
    for (int s = 0; s < 8; s++) {
        const float d = d_all * (float)sc[s];
        if (d == 0) continue;
        const float dm = dmin_all * (float)mn[s];
        code(x + 32 * s, 32, dm, d, 0, nmax, L + 32 * s);
    }
}

/* Super-blocks whose sub-block fits go to one fit call: 64 sub-blocks (eight Q4_K / Q5_K blocks
 * of 8, four blocks of 16 for the others), so vector fits fill up to four registers of 16
 * lanes. The fits are independent searches, so the figures are those of one sub-block at a
 * time. */
enum { K4_BATCH = 8, K16_BATCH = 4 };

/* Codes, scales, d and dmin of nb <= K4_BATCH Q4_K / Q5_K super-blocks (x their 256 · nb
 * values): the sub-block fits of all in one call, then each block's scale/min quantization. */
static void quant_k4_common(const float *x, int nb, int nmax, float rmin, int nstep, uint8_t L[K4_BATCH][QB_QK_K],
                            uint8_t scales_out[K4_BATCH][12], uint16_t dh[K4_BATCH], uint16_t dminh[K4_BATCH],
                            qb_kfit_fn fit, qb_kcode_fn code)
{
    float scales[8 * K4_BATCH], mins[8 * K4_BATCH], w[K4_BATCH * QB_QK_K];
    uint8_t Lf[K4_BATCH * QB_QK_K];
    int b = 0;
    do k4_weights(x + QB_QK_K * b, w + QB_QK_K * b); /* nb >= 1 */
    while (++b < nb);
    fit(8 * nb, 32, nmax, x, w, Lf, scales, mins, rmin, 0.1f, nstep, false);
    for (b = 0; b < nb; b++) {
        memcpy(L[b], Lf + QB_QK_K * b, QB_QK_K);
        k4_finish(x + QB_QK_K * b, nmax, scales + 8 * b, mins + 8 * b, L[b], scales_out[b], &dh[b], &dminh[b], code);
    }
}

/* ---- the formats -------------------------------------------------------------------------- */

/* The rest of one Q2_K block once its sub-blocks are fitted: L (the fit's codes, re-made
 * here), the fitted scales and mins, into y. */
static void q2_K_finish(const float *x, uint8_t *L, const float *scales, const float *mins, qb_block_q2_K *y,
                        qb_kcode_fn code)
{
    float max_scale = 0, max_min = 0;
    for (int s = 0; s < 16; s++) {
        if (scales[s] > max_scale) max_scale = scales[s];
        if (mins[s] > max_min) max_min = mins[s];
    }
    uint8_t sb[16]; /* scale in the low nibble, min in the high one */
    uint16_t dh = 0, dminh = 0;
    if (max_scale > 0) {
        const float iscale = 15.f / max_scale;
        for (int s = 0; s < 16; s++) sb[s] = (uint8_t)round_int(iscale * scales[s]);
        dh = qb_f32_to_f16(max_scale / 15.f);
    } else {
        memset(sb, 0, sizeof sb);
        dh = qb_f32_to_f16(0.f);
    }
    if (max_min > 0) {
        const float iscale = 15.f / max_min;
        for (int s = 0; s < 16; s++) sb[s] = (uint8_t)(sb[s] | (unsigned)round_int(iscale * mins[s]) << 4);
        dminh = qb_f32_to_f16(max_min / 15.f);
    } else {
        dminh = qb_f32_to_f16(0.f);
    }
    const float d_all = qb_f16_to_f32(dh), dmin_all = qb_f16_to_f32(dminh);
    for (int s = 0; s < 16; s++) {
        const float d = d_all * (float)(sb[s] & 15);
        if (d == 0) continue;
        const float dm = dmin_all * (float)(sb[s] >> 4);
        code(x + 16 * s, 16, dm, d, 0, 3, L + 16 * s);
    }
    memcpy(y->scales, sb, 16);
    y->d = dh;
    y->dmin = dminh;
    qb_kpack_2bit(L, y->qs);
}

void qb_quant_q2_K_with(const float *x, qb_block_q2_K *y, int64_t nb, qb_kfit_fn fit, qb_kcode_fn code)
{
    for (int64_t b = 0; b < nb; b += K16_BATCH) { /* K16_BATCH blocks per fit call */
        const int cnt = nb - b < K16_BATCH ? (int)(nb - b) : K16_BATCH;
        uint8_t L[K16_BATCH * QB_QK_K];
        float scales[16 * K16_BATCH], mins[16 * K16_BATCH], w[K16_BATCH * QB_QK_K];
        for (int l = 0; l < QB_QK_K * cnt; l++) w[l] = fabsf(x[QB_QK_K * b + l]);
        fit(16 * cnt, 16, 3, x + QB_QK_K * b, w, L, scales, mins, -0.5f, 0.1f, 15, true);
        for (int k = 0; k < cnt; k++)
            q2_K_finish(x + QB_QK_K * (b + k), L + QB_QK_K * k, scales + 16 * k, mins + 16 * k, y + b + k, code);
    }
}

void qb_quant_q2_K_ref(const float *x, qb_block_q2_K *y, int64_t nb) { qb_quant_q2_K_with(x, y, nb, qb_kfit_ref, qb_kcode_ref); }

/* Contract (quant_k.h): the sub-blocks one after another, each with fit_scale_q3. */
void qb_kfit_q3_ref(int nsub, const float *x, int8_t *L, float *scales)
{
    for (int s = 0; s < nsub; s++) scales[s] = fit_scale_q3(x + 16 * s, L + 16 * s);
}

/* Contract (quant_k.h): the sub-blocks one after another, each with fit_scale_sym (nmax 32). */
void qb_kfit_q6_ref(int nsub, const float *x, int8_t *L, float *scales)
{
    for (int s = 0; s < nsub; s++) scales[s] = fit_scale_sym(x + 16 * s, 32, L + 16 * s);
}

/* Contract (quant_k.h). */
void qb_kpack_q3(const int8_t *L, qb_block_q3_K *y)
{
    /* high bit of element e into bit e/32 of hmask[e%32]; the low two bits as Q2_K. Without
     * branches: a data-dependent "if (code > 3)" per element mispredicted half the time and
     * cost more than Q3_K's whole scale search. */
    uint8_t lo[QB_QK_K];
    for (int e = 0; e < QB_QK_K; e++) lo[e] = (uint8_t)(L[e] & 3);
    for (int j = 0; j < 32; j++) {
        unsigned m = 0;
        for (int k = 0; k < 8; k++) m |= (unsigned)(L[32 * k + j] >> 2 & 1) << k;
        y->hmask[j] = (uint8_t)m;
    }
    qb_kpack_2bit(lo, y->qs);
}

/* The rest of one Q3_K block once its sub-blocks are fitted: L (the fit's codes, re-made
 * here), the fitted scales, into y. */
static void q3_K_finish(const float *x, int8_t *L, const float *scales, qb_block_q3_K *y, qb_kcode_fn code)
{
    float max_scale = 0, amax = 0; /* the scale of largest magnitude, with its sign */
    for (int s = 0; s < 16; s++) {
        const float a = fabsf(scales[s]);
        if (a > amax) {
            amax = a;
            max_scale = scales[s];
        }
    }
    int sc[16]; /* 6-bit scales, biased by 32 */
    uint8_t p[12] = {0};
    uint16_t dh;
    if (max_scale != 0) {
        const float iscale = -32.f / max_scale;
        for (int s = 0; s < 16; s++) {
            const int8_t l = (int8_t)round_int(iscale * scales[s]);
            sc[s] = clamp_int(l, -32, 31) + 32;
            if (s < 8) p[s] = (uint8_t)(sc[s] & 15);
            else p[s - 8] = (uint8_t)(p[s - 8] | (sc[s] & 15) << 4);
            p[8 + s % 4] = (uint8_t)(p[8 + s % 4] | (sc[s] >> 4) << (2 * (s / 4)));
        }
        dh = qb_f32_to_f16(1 / iscale);
    } else {
        for (int s = 0; s < 16; s++) sc[s] = 0;
        dh = qb_f32_to_f16(0.f);
    }
    const float d_all = qb_f16_to_f32(dh);
    for (int s = 0; s < 16; s++) {
        const float d = d_all * (float)(sc[s] - 32);
        if (d == 0) continue;
        code(x + 16 * s, 16, 0.0f, d, -4, 3, (uint8_t *)L + 16 * s); /* clamp(round(x / d), -4, 3) + 4 */
    }
    qb_kpack_q3(L, y);
    memcpy(y->scales, p, 12);
    y->d = dh;
}

void qb_quant_q3_K_with(const float *x, qb_block_q3_K *y, int64_t nb, qb_kfit_s_fn fit, qb_kcode_fn code)
{
    for (int64_t b = 0; b < nb; b += K16_BATCH) { /* K16_BATCH blocks per fit call */
        const int cnt = nb - b < K16_BATCH ? (int)(nb - b) : K16_BATCH;
        int8_t L[K16_BATCH * QB_QK_K];
        float scales[16 * K16_BATCH];
        fit(16 * cnt, x + QB_QK_K * b, L, scales);
        for (int k = 0; k < cnt; k++)
            q3_K_finish(x + QB_QK_K * (b + k), L + QB_QK_K * k, scales + 16 * k, y + b + k, code);
    }
}

void qb_quant_q3_K_ref(const float *x, qb_block_q3_K *y, int64_t nb) { qb_quant_q3_K_with(x, y, nb, qb_kfit_q3_ref, qb_kcode_ref); }

/* Contract (quant_k.h). */
void qb_kpack_q4(const uint8_t *L, uint8_t qs[128])
{
    for (int c = 0; c < 4; c++) /* chunk of 64: sub-block 2c low nibbles, 2c+1 high */
        for (int l = 0; l < 32; l++) qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
}

/* Contract (quant_k.h). */
void qb_kpack_q5(const uint8_t *L, uint8_t qs[128], uint8_t qh[32])
{
    memset(qh, 0, 32);
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            const int a = L[64 * c + l], b2 = L[64 * c + 32 + l];
            qs[32 * c + l] = (uint8_t)((a & 15) | (b2 & 15) << 4);
            qh[l] = (uint8_t)(qh[l] | (a >> 4) << (2 * c) | (b2 >> 4) << (2 * c + 1));
        }
    }
}

void qb_quant_q4_K_with(const float *x, qb_block_q4_K *y, int64_t nb, qb_kfit_fn fit, qb_kcode_fn code)
{
    for (int64_t b = 0; b < nb; b += K4_BATCH) { /* K4_BATCH blocks per fit call */
        const int cnt = nb - b < K4_BATCH ? (int)(nb - b) : K4_BATCH;
        uint8_t L[K4_BATCH][QB_QK_K], sc[K4_BATCH][12];
        uint16_t dh[K4_BATCH], dminh[K4_BATCH];
        quant_k4_common(x + QB_QK_K * b, cnt, 15, -1.f, 20, L, sc, dh, dminh, fit, code);
        for (int k = 0; k < cnt; k++) {
            qb_block_q4_K *yb = y + b + k;
            memcpy(yb->scales, sc[k], 12);
            yb->d = dh[k];
            yb->dmin = dminh[k];
            qb_kpack_q4(L[k], yb->qs);
        }
    }
}

void qb_quant_q4_K_ref(const float *x, qb_block_q4_K *y, int64_t nb) { qb_quant_q4_K_with(x, y, nb, qb_kfit_ref, qb_kcode_ref); }

void qb_quant_q5_K_with(const float *x, qb_block_q5_K *y, int64_t nb, qb_kfit_fn fit, qb_kcode_fn code)
{
    for (int64_t b = 0; b < nb; b += K4_BATCH) { /* K4_BATCH blocks per fit call */
        const int cnt = nb - b < K4_BATCH ? (int)(nb - b) : K4_BATCH;
        uint8_t L[K4_BATCH][QB_QK_K], sc[K4_BATCH][12];
        uint16_t dh[K4_BATCH], dminh[K4_BATCH];
        quant_k4_common(x + QB_QK_K * b, cnt, 31, -0.5f, 15, L, sc, dh, dminh, fit, code);
        for (int k = 0; k < cnt; k++) {
            qb_block_q5_K *yb = y + b + k;
            memcpy(yb->scales, sc[k], 12);
            yb->d = dh[k];
            yb->dmin = dminh[k];
            qb_kpack_q5(L[k], yb->qs, yb->qh);
        }
    }
}

void qb_quant_q5_K_ref(const float *x, qb_block_q5_K *y, int64_t nb) { qb_quant_q5_K_with(x, y, nb, qb_kfit_ref, qb_kcode_ref); }

/* Contract (quant_k.h). */
void qb_q6_K_finish(const float *x, int8_t *L, const float *scales, qb_block_q6_K *y, qb_kcode_fn code)
{
    float max_scale = 0, amax = 0;
    for (int s = 0; s < 16; s++) {
        const float a = fabsf(scales[s]);
        if (a > amax) {
            amax = a;
            max_scale = scales[s];
        }
    }
    if (amax < GROUP_EPS) { /* nothing to encode: an all-zero block */
        memset(y, 0, sizeof *y);
        return;
    }
    const float iscale = -128.f / max_scale;
    y->d = qb_f32_to_f16(1 / iscale);
    for (int s = 0; s < 16; s++) {
        const int l = round_int(iscale * scales[s]);
        y->scales[s] = (int8_t)(l < 127 ? l : 127);
    }
    const float d_all = qb_f16_to_f32(y->d);
    for (int s = 0; s < 16; s++) {
        const float d = d_all * (float)y->scales[s];
        if (d == 0) continue;
        code(x + 16 * s, 16, 0.0f, d, -32, 31, (uint8_t *)L + 16 * s); /* clamp(round(x / d), -32, 31) + 32 */
    }
    /* element 128h + 32k + l: low nibble into ql[64h + l + 32(k&1)] (k >= 2: high
     * nibble), bits 4-5 into bits 2k of qh[32h + l] */
    for (int h = 0; h < 2; h++) {
        const int8_t *c = L + 128 * h;
        uint8_t *ql = y->ql + 64 * h, *qh = y->qh + 32 * h;
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((c[l] & 15) | (c[l + 64] & 15) << 4);
            ql[l + 32] = (uint8_t)((c[l + 32] & 15) | (c[l + 96] & 15) << 4);
            qh[l] = (uint8_t)(c[l] >> 4 | (c[l + 32] >> 4) << 2 | (c[l + 64] >> 4) << 4 |
                              (c[l + 96] >> 4) << 6);
        }
    }
}

void qb_quant_q6_K_with(const float *x, qb_block_q6_K *y, int64_t nb, qb_kfit_s_fn fit, qb_kcode_fn code)
{
    for (int64_t b = 0; b < nb; b += K16_BATCH) { /* K16_BATCH blocks per fit call */
        const int cnt = nb - b < K16_BATCH ? (int)(nb - b) : K16_BATCH;
        int8_t L[K16_BATCH * QB_QK_K];
        float scales[16 * K16_BATCH];
        fit(16 * cnt, x + QB_QK_K * b, L, scales);
        for (int k = 0; k < cnt; k++)
            qb_q6_K_finish(x + QB_QK_K * (b + k), L + QB_QK_K * k, scales + 16 * k, y + b + k, code);
    }
}

void qb_quant_q6_K_ref(const float *x, qb_block_q6_K *y, int64_t nb) { qb_quant_q6_K_with(x, y, nb, qb_kfit_q6_ref, qb_kcode_ref); }

void qb_quant_q8_K_ref(const float *x, qb_block_q8_K *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK_K) {
        float amax = 0, max = 0;
        for (int j = 0; j < QB_QK_K; j++) {
            const float a = fabsf(x[j]);
            if (a > amax) {
                amax = a;
                max = x[j];
            }
        }
        if (amax == 0) { /* ggml leaves bsums unwritten here; we write their value, 0 */
            y->d = 0;
            memset(y->qs, 0, sizeof y->qs);
            memset(y->bsums, 0, sizeof y->bsums);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QB_QK_K; j++) {
            const int v = round_int(iscale * x[j]);
            y->qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int s = 0; s < 16; s++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y->qs[16 * s + l];
            y->bsums[s] = (int16_t)sum;
        }
        y->d = 1 / iscale;
    }
}

/* Contract (quant_k.h). */
void qb_iq4_xs_finish(const float *x, const float scales[8], qb_block_iq4_xs *y, qb_iq4_code_fn codes)
{
    float max_scale = 0, amax = 0;
    for (int s = 0; s < 8; s++) {
        const float a = fabsf(scales[s]);
        if (a > amax) {
            amax = a;
            max_scale = scales[s];
        }
    }
    /* 6-bit signed sub-block scales against d = -max_scale / 32 */
    const float d = -max_scale / 32;
    const float id = d != 0 ? 1 / d : 0.f;
    uint16_t sh = 0;
    for (int s = 0; s < 8; s++) {
        const int l = clamp_int(round_int(id * scales[s]), -32, 31);
        const float dl = d * (float)l;
        const float idl = dl != 0 ? 1 / dl : 0.f;
        codes(x + 32 * s, idl, y->qs + 16 * s);
        const int u = l + 32;
        if (s % 2 == 0) y->scales_l[s / 2] = (uint8_t)(u & 15);
        else y->scales_l[s / 2] = (uint8_t)(y->scales_l[s / 2] | (u & 15) << 4);
        sh = (uint16_t)(sh | (u >> 4) << (2 * s));
    }
    y->scales_h = sh;
    y->d = qb_f32_to_f16(d);
}

void qb_quant_iq4_xs_with(const float *x, qb_block_iq4_xs *y, int64_t nb, qb_iq4_scale_fn group_scale,
                          qb_iq4_code_fn codes)
{
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK_K) {
        float scales[8];
        for (int s = 0; s < 8; s++) scales[s] = group_scale(x + 32 * s);
        qb_iq4_xs_finish(x, scales, y, codes);
    }
}

void qb_quant_iq4_xs_ref(const float *x, qb_block_iq4_xs *y, int64_t nb)
{
    qb_quant_iq4_xs_with(x, y, nb, qb_iq4nl_group_scale, qb_iq4nl_codes_ref);
}
