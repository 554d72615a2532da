/* quant_weighted_ref.c — quantization of one row with an importance matrix: the per-column
 * weights llama-quantize --imatrix hands ggml (ggml c392e50, ggml-quants.c: quantize_q4_0 ..
 * quantize_q6_K, quantize_iq4_nl / _xs with quant_weights). The spec: for the same row and
 * weights it writes exactly the bytes ggml_quantize_chunk writes (tests/unit/test-quant-weighted.c
 * compares them through llama.cpp's own libggml-base).
 *
 * What the weights change, per type (qw: the row's importance, one per column; sigma2 a mean
 * square of the row or super-block; the error weight of element j is qw[j]·sqrt(sigma2 + x_j²)
 * unless said otherwise):
 *   Q4_0 / Q5_0   symmetric fit of each block of 32 (the make_qx_quants search below, nmax
 *                 8 / 16) instead of absmax rounding; sigma2 = Σx²/n over the whole row
 *   Q4_1 / Q5_1   affine fit of each block (the K-quants' search with rmin -0.9, step 0.05,
 *                 36 steps) instead of min/max; sigma2 over the row
 *   Q2_K          affine fits of the 16-element sub-blocks (that search), then the sub-block
 *                 scales and mins quantized by a weighted search of their own (make_qp_quants,
 *                 weights the sub-blocks' weight sums); sigma2 = Σx²/256 per super-block
 *   Q3_K          symmetric fits of the sub-blocks (nmax 4), the 6-bit scales by the same
 *                 symmetric search over the 16 scales (nmax 32, weights the sums); sigma2 =
 *                 2Σx²/256
 *   Q4_K / Q5_K   affine fits of the 32-element sub-blocks, scales and mins by make_qp_quants
 *                 (nmax 63); sigma2 = 2Σx²/256
 *   Q6_K          symmetric fits of the sub-blocks (nmax 32) with the weights qw themselves
 *   IQ4_NL / _XS  the code-book scale search with the weights; sigma2 = 2Σx²/32 (NL) or /256
 *   F32 F16 BF16 Q8_0: no weights (ggml ignores them), the plain quantizer.
 * Same float operations in the same order as ggml, the same rounding (the 1.5·2^23 trick) and
 * the same first-wins ties; codes that ggml keeps in uint8_t (where a negative value wraps) are
 * kept so here too, so even degenerate rows give its bytes. No fused multiply-adds (-std=c11;
 * the pragma for clang). */
#include "kernels.h"
#include "tq_iq3.h"
#include "blocks.h"
#include "quant_k.h"
#include "quant_iq.h"

#include "qb_types.h"

#include <math.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define GROUP_EPS 1e-15f

/* round half to even through 1.5·2^23, bit for bit ggml's nearest_int for every input */
static inline int round_int(float v)
{
    const float t = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

/* ---- the searches ---------------------------------------------------------------------------- */

/* One sub-block of qb_kfit_sw_fn (quant_k.h): candidate after candidate, each sum accumulated
 * element by element in order. */
static float fit_sym_w(int n, int nmax, const float *x, const float *w, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = round_int(iscale * x[i]);
        l = l < nmax - 1 ? l : nmax - 1;
        l = l > -nmax ? l : -nmax;
        L[i] = (int8_t)(l + nmax);
        sumlx += w[i] * x[i] * (float)l;
        suml2 += w[i] * (float)l * (float)l;
    }
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = round_int(iscale * x[i]);
            l = l < nmax - 1 ? l : nmax - 1;
            l = l > -nmax ? l : -nmax;
            sumlx += w[i] * x[i] * (float)l;
            suml2 += w[i] * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = round_int(iscale * x[i]);
                l = l < nmax - 1 ? l : nmax - 1;
                l = l > -nmax ? l : -nmax;
                L[i] = (int8_t)(l + nmax);
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Contract (quant_k.h). */
void qb_kfit_sw_ref(int nsub, int n, int nmax, const float *x, const float *w, int8_t *L, float *scales)
{
    for (int s = 0; s < nsub; s++) scales[s] = fit_sym_w(n, nmax, x + n * s, w + n * s, L + n * s);
}

/* The weighted search for a super-block's sub-block scales (or mins), x >= 0 in the normal
 * case: codes 0..nmax against one scale. Starts from max / nmax, tries the inverse scales
 * (nmax + 0.1 k) / max for k = -4..4 (k != 0) and keeps the one of least weighted squared
 * error (strictly less), then up to five sweeps of coordinate descent that move one code at a
 * time where that strictly raises S_lx² / S_l2. Returns S_lx / S_l2. The codes live in bytes
 * as ggml keeps them (a negative code, possible only for a negative input, wraps) and are read
 * back from there. */
static float fit_scale_qp(int n, int nmax, const float *x, uint8_t *L, const float *w)
{
    float max = 0;
    for (int i = 0; i < n; i++) max = max > x[i] ? max : x[i];
    if (!max) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = (float)nmax / max;
    for (int i = 0; i < n; i++) L[i] = (uint8_t)round_int(iscale * x[i]);
    const float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; i++) {
        const float diff = x[i] - scale * (float)L[i];
        best_mse += w[i] * diff * diff;
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0) continue;
        const float iscale_is = (0.1f * (float)is + (float)nmax) / max;
        const float scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; i++) {
            int l = round_int(iscale_is * x[i]);
            l = nmax < l ? nmax : l;
            const float diff = x[i] - scale_is * (float)l;
            mse += w[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = round_int(iscale * x[i]);
        l = nmax < l ? nmax : l;
        L[i] = (uint8_t)l;
        sumlx += w[i] * x[i] * (float)l;
        suml2 += w[i] * (float)l * (float)l;
    }
    for (int sweep = 0; sweep < 5; sweep++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float wi = w[i];
            float slx = sumlx - wi * x[i] * (float)L[i];
            float sl2 = suml2 - wi * (float)L[i] * (float)L[i];
            if (!(slx > 0 && sl2 > 0)) continue;
            int l = round_int(x[i] * sl2 / slx);
            l = nmax < l ? nmax : l;
            if (l == L[i]) continue;
            slx += wi * x[i] * (float)l;
            sl2 += wi * (float)l * (float)l;
            if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (uint8_t)l;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    return sumlx / suml2;
}

/* ---- weights --------------------------------------------------------------------------------- */

/* Σx² of n values, in order. */
static float sum_sq(const float *x, int64_t n)
{
    float s = 0;
    for (int64_t j = 0; j < n; j++) s += x[j] * x[j];
    return s;
}

/* w[j] = qw[j] · sqrt(sigma2 + x[j]²), n values. */
static void error_weights(const float *x, const float *qw, float sigma2, int n, float *w)
{
    for (int j = 0; j < n; j++) w[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
}

/* ---- 32-element blocks ------------------------------------------------------------------------ */

enum { BATCH = 64 }; /* sub-blocks (or 32-blocks) per search call: vector searches fill lanes */

/* Q4_0 (bits 4) / Q5_0 (bits 5): symmetric fits of nb blocks, sigma2 over the whole row. */
static void q_0_w(const float *x, void *dst, int64_t nb, int bits, const float *qw, float sigma2,
                  const qb_wquant_pieces *p)
{
    for (int64_t b0 = 0; b0 < nb; b0 += BATCH) {
        const int cnt = nb - b0 < BATCH ? (int)(nb - b0) : BATCH;
        float w[BATCH * QB_QK32], d[BATCH];
        int8_t L[BATCH * QB_QK32];
        const float *xb = x + QB_QK32 * b0;
        for (int k = 0; k < cnt; k++)
            error_weights(xb + QB_QK32 * k, qw + QB_QK32 * (b0 + k), sigma2, QB_QK32, w + QB_QK32 * k);
        p->fit_sw(cnt, QB_QK32, 1 << (bits - 1), xb, w, L, d);
        for (int k = 0; k < cnt; k++) {
            const int8_t *l = L + QB_QK32 * k;
            if (bits == 4) {
                qb_block_q4_0 *y = (qb_block_q4_0 *)dst + b0 + k;
                y->d = qb_f32_to_f16(d[k]);
                for (int j = 0; j < 16; j++) y->qs[j] = (uint8_t)(l[j] | l[j + 16] << 4);
            } else {
                qb_block_q5_0 *y = (qb_block_q5_0 *)dst + b0 + k;
                y->d = qb_f32_to_f16(d[k]);
                qb_pack_q5_32((const uint8_t *)l, y->qs, y->qh);
            }
        }
    }
}

/* Q4_1 (bits 4) / Q5_1 (bits 5): affine fits of nb blocks, sigma2 over the whole row. */
static void q_1_w(const float *x, void *dst, int64_t nb, int bits, const float *qw, float sigma2,
                  const qb_wquant_pieces *p)
{
    for (int64_t b0 = 0; b0 < nb; b0 += BATCH) {
        const int cnt = nb - b0 < BATCH ? (int)(nb - b0) : BATCH;
        float w[BATCH * QB_QK32], d[BATCH], neg_min[BATCH];
        uint8_t L[BATCH * QB_QK32];
        const float *xb = x + QB_QK32 * b0;
        for (int k = 0; k < cnt; k++)
            error_weights(xb + QB_QK32 * k, qw + QB_QK32 * (b0 + k), sigma2, QB_QK32, w + QB_QK32 * k);
        p->fit(cnt, QB_QK32, (1 << bits) - 1, xb, w, L, d, neg_min, -0.9f, 0.05f, 36, false);
        for (int k = 0; k < cnt; k++) {
            const uint8_t *l = L + QB_QK32 * k;
            if (bits == 4) {
                qb_block_q4_1 *y = (qb_block_q4_1 *)dst + b0 + k;
                y->d = qb_f32_to_f16(d[k]);
                y->m = qb_f32_to_f16(-neg_min[k]);
                for (int j = 0; j < 16; j++) y->qs[j] = (uint8_t)(l[j] | l[j + 16] << 4);
            } else {
                qb_block_q5_1 *y = (qb_block_q5_1 *)dst + b0 + k;
                y->d = qb_f32_to_f16(d[k]);
                y->m = qb_f32_to_f16(-neg_min[k]);
                qb_pack_q5_32(l, y->qs, y->qh);
            }
        }
    }
}

/* IQ4_NL: each block's scale search with weights, sigma2 = 2Σx²/32 of the block. */
static void iq4_nl_w(const float *x, qb_block_iq4_nl *y, int64_t nb, const float *qw, const qb_wquant_pieces *p)
{
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK32, qw += QB_QK32) {
        float w[QB_QK32];
        float sigma2 = sum_sq(x, QB_QK32);
        sigma2 *= 2.f / QB_QK32;
        error_weights(x, qw, sigma2, QB_QK32, w);
        const float d = p->iq4_scale(x, w);
        y->d = qb_f32_to_f16(d);
        p->iq4_codes(x, d != 0 ? 1 / d : 0.f, y->qs);
    }
}

/* ---- 256-element super-blocks ----------------------------------------------------------------- */

enum { KB16 = BATCH / 16, KB32 = BATCH / 8 }; /* super-blocks per call: 16 / 8 sub-blocks each */

static void q2_K_w(const float *x, qb_block_q2_K *y, int64_t nb, const float *qw, const qb_wquant_pieces *p)
{
    for (int64_t b0 = 0; b0 < nb; b0 += KB16) {
        const int cnt = nb - b0 < KB16 ? (int)(nb - b0) : KB16;
        float w[KB16 * QB_QK_K], sw[KB16 * 16], scales[KB16 * 16], mins[KB16 * 16];
        uint8_t L[KB16 * QB_QK_K];
        const float *xb = x + QB_QK_K * b0;
        for (int k = 0; k < cnt; k++) {
            const float *xk = xb + QB_QK_K * k;
            const float sigma2 = sum_sq(xk, QB_QK_K) / QB_QK_K;
            error_weights(xk, qw + QB_QK_K * (b0 + k), sigma2, QB_QK_K, w + QB_QK_K * k);
            for (int j = 0; j < 16; j++) {
                float s = 0;
                for (int l = 0; l < 16; l++) s += w[QB_QK_K * k + 16 * j + l];
                sw[16 * k + j] = s;
            }
        }
        p->fit(16 * cnt, 16, 3, xb, w, L, scales, mins, -0.9f, 0.05f, 36, false);
        for (int k = 0; k < cnt; k++) {
            qb_block_q2_K *yk = y + b0 + k;
            const float *xk = xb + QB_QK_K * k;
            uint8_t *Lk = L + QB_QK_K * k, Ls[16], Lm[16];
            const float dm0 = fit_scale_qp(16, 15, scales + 16 * k, Ls, sw + 16 * k);
            const float mm0 = fit_scale_qp(16, 15, mins + 16 * k, Lm, sw + 16 * k);
            yk->d = qb_f32_to_f16(dm0);
            yk->dmin = qb_f32_to_f16(mm0);
            const float dm = qb_f16_to_f32(yk->d), mm = qb_f16_to_f32(yk->dmin);
            for (int j = 0; j < 16; j++) yk->scales[j] = (uint8_t)(Ls[j] | Lm[j] << 4);
            for (int j = 0; j < 16; j++) {
                const float d = dm * (float)(yk->scales[j] & 0xF);
                if (d == 0) continue;
                const float m = mm * (float)(yk->scales[j] >> 4);
                p->code(xk + 16 * j, 16, m, d, 0, 3, Lk + 16 * j);
            }
            qb_kpack_2bit(Lk, yk->qs);
        }
    }
}

static void q3_K_w(const float *x, qb_block_q3_K *y, int64_t nb, const float *qw, const qb_wquant_pieces *p)
{
    for (int64_t b0 = 0; b0 < nb; b0 += KB16) {
        const int cnt = nb - b0 < KB16 ? (int)(nb - b0) : KB16;
        float w[KB16 * QB_QK_K], sw[KB16 * 16], scales[KB16 * 16], d_block[KB16];
        int8_t L[KB16 * QB_QK_K], Ls[KB16 * 16];
        const float *xb = x + QB_QK_K * b0;
        for (int k = 0; k < cnt; k++) {
            const float *xk = xb + QB_QK_K * k;
            const float sigma2 = 2 * sum_sq(xk, QB_QK_K) / QB_QK_K;
            error_weights(xk, qw + QB_QK_K * (b0 + k), sigma2, QB_QK_K, w + QB_QK_K * k);
            for (int j = 0; j < 16; j++) {
                float s = 0;
                for (int l = 0; l < 16; l++) s += w[QB_QK_K * k + 16 * j + l];
                sw[16 * k + j] = s;
            }
        }
        p->fit_sw(16 * cnt, 16, 4, xb, w, L, scales);
        p->fit_sw(cnt, 16, 32, scales, sw, Ls, d_block); /* each block's 16 scales, one fit */
        for (int k = 0; k < cnt; k++) {
            qb_block_q3_K *yk = y + b0 + k;
            const float *xk = xb + QB_QK_K * k;
            int8_t *Lk = L + QB_QK_K * k;
            const int8_t *ls = Ls + 16 * k;
            memset(yk->scales, 0, 12);
            for (int j = 0; j < 16; j++) { /* low nibbles, then bits 4-5 in the last four bytes */
                int l = ls[j];
                if (j < 8) yk->scales[j] = (uint8_t)(l & 0xF);
                else yk->scales[j - 8] = (uint8_t)(yk->scales[j - 8] | (l & 0xF) << 4);
                l >>= 4;
                yk->scales[8 + j % 4] = (uint8_t)(yk->scales[8 + j % 4] | l << (2 * (j / 4)));
            }
            yk->d = qb_f32_to_f16(d_block[k]);
            const float d_all = qb_f16_to_f32(yk->d);
            for (int j = 0; j < 16; j++) {
                int sc = j < 8 ? yk->scales[j] & 0xF : yk->scales[j - 8] >> 4;
                sc = (int8_t)((sc | ((yk->scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32);
                const float d = d_all * (float)sc;
                if (d == 0) continue;
                p->code(xk + 16 * j, 16, 0.0f, d, -4, 3, (uint8_t *)Lk + 16 * j); /* round(x / d), -4..3, + 4 */
            }
            qb_kpack_q3(Lk, yk);
        }
    }
}

/* The 6-bit scale/min pairs of Q4_K / Q5_K from their codes, in ggml's packing (codes above 63
 * lose their high bits there, as in ggml), and back as the decoder reads them. */
static void pack_k4_scales(const uint8_t Ls[8], const uint8_t Lm[8], uint8_t q[12])
{
    for (int j = 0; j < 8; j++) {
        const uint8_t ls = Ls[j], lm = Lm[j];
        if (j < 4) {
            q[j] = ls;
            q[j + 4] = lm;
        } else {
            q[j + 4] = (uint8_t)((ls & 0xF) | (lm & 0xF) << 4);
            q[j - 4] = (uint8_t)(q[j - 4] | (ls >> 4) << 6);
            q[j] = (uint8_t)(q[j] | (lm >> 4) << 6);
        }
    }
}

static void unpack_k4_scale(int j, const uint8_t q[12], uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | (q[j - 4] >> 6) << 4);
        *m = (uint8_t)((q[j + 4] >> 4) | (q[j] >> 6) << 4);
    }
}

/* Q4_K (nmax 15) / Q5_K (nmax 31): codes L (256 per block) and the scales, d, dmin of nb
 * blocks written into the blocks by set_block. */
static void q45_K_w(const float *x, void *dst, int64_t nb, int nmax, const float *qw, const qb_wquant_pieces *p)
{
    for (int64_t b0 = 0; b0 < nb; b0 += KB32) {
        const int cnt = nb - b0 < KB32 ? (int)(nb - b0) : KB32;
        float w[KB32 * QB_QK_K], sw[KB32 * 8], scales[KB32 * 8], mins[KB32 * 8];
        uint8_t L[KB32 * QB_QK_K];
        const float *xb = x + QB_QK_K * b0;
        for (int k = 0; k < cnt; k++) {
            const float *xk = xb + QB_QK_K * k;
            const float sigma2 = 2 * sum_sq(xk, QB_QK_K) / QB_QK_K;
            error_weights(xk, qw + QB_QK_K * (b0 + k), sigma2, QB_QK_K, w + QB_QK_K * k);
            for (int j = 0; j < 8; j++) {
                float s = 0;
                for (int l = 0; l < 32; l++) s += w[QB_QK_K * k + 32 * j + l];
                sw[8 * k + j] = s;
            }
        }
        p->fit(8 * cnt, 32, nmax, xb, w, L, scales, mins, -0.9f, 0.05f, 36, false);
        for (int k = 0; k < cnt; k++) {
            const float *xk = xb + QB_QK_K * k;
            uint8_t *Lk = L + QB_QK_K * k, Ls[8], Lm[8], q[12];
            const float d_block = fit_scale_qp(8, 63, scales + 8 * k, Ls, sw + 8 * k);
            const float m_block = fit_scale_qp(8, 63, mins + 8 * k, Lm, sw + 8 * k);
            if (nmax == 31)
                for (int j = 0; j < 8; j++) { /* Q5_K caps the codes; Q4_K does not */
                    Ls[j] = Ls[j] < 63 ? Ls[j] : 63;
                    Lm[j] = Lm[j] < 63 ? Lm[j] : 63;
                }
            pack_k4_scales(Ls, Lm, q);
            const uint16_t dh = qb_f32_to_f16(d_block), dminh = qb_f32_to_f16(m_block);
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                unpack_k4_scale(j, q, &sc, &m);
                const float d = qb_f16_to_f32(dh) * (float)sc;
                if (d == 0) continue;
                const float dm = qb_f16_to_f32(dminh) * (float)m;
                p->code(xk + 32 * j, 32, dm, d, 0, nmax, Lk + 32 * j);
            }
            if (nmax == 15) {
                qb_block_q4_K *y = (qb_block_q4_K *)dst + b0 + k;
                memcpy(y->scales, q, 12);
                y->d = dh;
                y->dmin = dminh;
                qb_kpack_q4(Lk, y->qs);
            } else {
                qb_block_q5_K *y = (qb_block_q5_K *)dst + b0 + k;
                memcpy(y->scales, q, 12);
                y->d = dh;
                y->dmin = dminh;
                qb_kpack_q5(Lk, y->qs, y->qh);
            }
        }
    }
}

/* Q6_K: the sub-blocks' symmetric fits weighted by qw itself (no sigma), then as unweighted. */
static void q6_K_w(const float *x, qb_block_q6_K *y, int64_t nb, const float *qw, const qb_wquant_pieces *p)
{
    for (int64_t b0 = 0; b0 < nb; b0 += KB16) {
        const int cnt = nb - b0 < KB16 ? (int)(nb - b0) : KB16;
        float scales[KB16 * 16];
        int8_t L[KB16 * QB_QK_K];
        p->fit_sw(16 * cnt, 16, 32, x + QB_QK_K * b0, qw + QB_QK_K * b0, L, scales);
        for (int k = 0; k < cnt; k++)
            qb_q6_K_finish(x + QB_QK_K * (b0 + k), L + QB_QK_K * k, scales + 16 * k, y + b0 + k, p->code);
    }
}

static void iq4_xs_w(const float *x, qb_block_iq4_xs *y, int64_t nb, const float *qw, const qb_wquant_pieces *p)
{
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK_K, qw += QB_QK_K) {
        float w[QB_QK_K], scales[8];
        float sigma2 = sum_sq(x, QB_QK_K);
        sigma2 *= 2.f / QB_QK_K;
        error_weights(x, qw, sigma2, QB_QK_K, w);
        for (int s = 0; s < 8; s++) scales[s] = p->iq4_scale(x + 32 * s, w + 32 * s);
        qb_iq4_xs_finish(x, scales, y, p->iq4_codes);
    }
}

/* ---- dispatch ---------------------------------------------------------------------------------- */

/* Contract (quant_k.h). */
bool qb_quant_row_w_with(int type, const float *x, void *dst, int64_t n, const float *qw, const qb_wquant_pieces *p)
{
    const qb_type_info *ti = qb_type_get(type);
    if (!ti || n <= 0 || n % ti->blck != 0) return false;
    const int64_t nb = n / ti->blck;
    switch (type) {
    case QB_TYPE_Q4_0: case QB_TYPE_Q5_0: case QB_TYPE_Q4_1: case QB_TYPE_Q5_1: {
        const float sigma2 = sum_sq(x, n) / (float)n;
        const int bits = type == QB_TYPE_Q4_0 || type == QB_TYPE_Q4_1 ? 4 : 5;
        if (type == QB_TYPE_Q4_0 || type == QB_TYPE_Q5_0) q_0_w(x, dst, nb, bits, qw, sigma2, p);
        else q_1_w(x, dst, nb, bits, qw, sigma2, p);
        return true;
    }
    case QB_TYPE_Q2_K: q2_K_w(x, dst, nb, qw, p); return true;
    case QB_TYPE_Q3_K: q3_K_w(x, dst, nb, qw, p); return true;
    case QB_TYPE_Q4_K: q45_K_w(x, dst, nb, 15, qw, p); return true;
    case QB_TYPE_Q5_K: q45_K_w(x, dst, nb, 31, qw, p); return true;
    case QB_TYPE_Q6_K: q6_K_w(x, dst, nb, qw, p); return true;
    case QB_TYPE_IQ4_NL: iq4_nl_w(x, dst, nb, qw, p); return true;
    case QB_TYPE_IQ4_XS: iq4_xs_w(x, dst, nb, qw, p); return true;
    default: return false;
    }
}

bool qb_quant_weighted(int type)
{
    switch (type) {
    case QB_TYPE_Q4_0: case QB_TYPE_Q5_0: case QB_TYPE_Q4_1: case QB_TYPE_Q5_1: case QB_TYPE_Q2_K:
    case QB_TYPE_Q3_K: case QB_TYPE_Q4_K: case QB_TYPE_Q5_K: case QB_TYPE_Q6_K: case QB_TYPE_IQ4_NL:
    case QB_TYPE_IQ4_XS: case QB_TYPE_IQ2_XXS: case QB_TYPE_IQ2_XS: case QB_TYPE_IQ2_S: case QB_TYPE_IQ1_S:
    case QB_TYPE_IQ1_M:
    case QB_TYPE_IQ3_XXS: case QB_TYPE_IQ3_S: /* quant_tq_iq3_ref.c; TQ1_0 / TQ2_0 ignore weights */
        return true;
    default:
        return false;
    }
}

static const qb_wquant_pieces ref_pieces = {
    .fit = qb_kfit_ref,
    .fit_sw = qb_kfit_sw_ref,
    .code = qb_kcode_ref,
    .iq4_scale = qb_iq4nl_group_scale_w_ref,
    .iq4_codes = qb_iq4nl_codes_ref,
};

/* Contract (kernels.h). */
bool qb_quant_row_w_ref(int type, const float *src, void *dst, int64_t n, const float *qw)
{
    if (qw && qb_quant_grid_iq(type)) return qb_quant_row_iq_ref(type, src, dst, n, qw); /* quant_iq_ref.c */
    if (!qw || !qb_quant_weighted(type)) return qb_quant_row_ref(type, src, dst, n);
    if (type == QB_TYPE_IQ3_XXS || type == QB_TYPE_IQ3_S) return qb_quant_tq_iq3_ref(type, src, dst, 1, n, qw);
    return qb_quant_row_w_with(type, src, dst, n, qw, &ref_pieces);
}
