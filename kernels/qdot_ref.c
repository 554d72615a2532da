/* qdot_ref.c — scalar reference for the packed-weight dot products and the activation
 * quantizers: the spec the AVX2 / AVX-512 versions in qdot_avx2.c / qdot_avx512.c are tested
 * against.
 *
 * A packed weight row of type t is multiplied with activation rows quantized to
 * qb_act_type(t) (Q8_0, Q8_1 or Q8_K), the way ggml's vec_dot functions do it: per block (or
 * sub-block) an exact integer dot product of the quantized values, scaled by the product of
 * the fp16 / fp32 block scales and summed in float. Offsets (Q4_0's 8, Q5_0's 16, Q3_K's 4,
 * Q6_K's 32) are applied to the integers; the mins of Q4_1 / Q5_1 go through Q8_1's s and the
 * mins of Q2_K / Q4_K / Q5_K through Q8_K's bsums. Each integer part below is exact in int32
 * for every byte pattern; only the float sum can differ from another summation order.
 *
 * Activation quantizers follow ggml's quantize_row_q8_0_ref / q8_1_ref / q8_K_ref: Q8_0 and
 * Q8_1 round with roundf (half away from zero), Q8_K rounds half to even (ggml's nearest_int).
 * The vector versions reproduce those bytes exactly. */
#include "kernels.h"
#include "blocks.h"

#include "qb_types.h"

#include <math.h>
#include <string.h>

int qb_act_type(int weight_type)
{
    switch (weight_type) {
    case QB_TYPE_Q4_0: case QB_TYPE_Q5_0: case QB_TYPE_Q8_0: case QB_TYPE_IQ4_NL:
        return QB_TYPE_Q8_0;
    case QB_TYPE_Q4_1: case QB_TYPE_Q5_1:
        return QB_TYPE_Q8_1;
    case QB_TYPE_Q2_K: case QB_TYPE_Q3_K: case QB_TYPE_Q4_K: case QB_TYPE_Q5_K: case QB_TYPE_Q6_K:
    case QB_TYPE_IQ4_XS: case QB_TYPE_IQ2_XXS: case QB_TYPE_IQ2_XS: case QB_TYPE_IQ2_S:
    case QB_TYPE_IQ1_S: case QB_TYPE_IQ1_M:
        return QB_TYPE_Q8_K;
    case QB_TYPE_TQ1_0: case QB_TYPE_TQ2_0: case QB_TYPE_IQ3_XXS: case QB_TYPE_IQ3_S: /* qdot_tq_iq3_ref.c */
        return QB_TYPE_Q8_K;
    default:
        return -1;
    }
}

/* ---- activation quantizers ------------------------------------------------------------ */

/* Scale of a 32-element block as ggml computes it: d = amax / 127, id = 1/d (0 for d = 0). */
static float q8_block_scale(const float *x, float *id)
{
    float amax = 0.0f;
    for (int j = 0; j < QB_QK32; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    *id = d != 0.0f ? 1.0f / d : 0.0f;
    return d;
}

void qb_quantize_q8_0_ref(const float *x, void *vy, int n)
{
    qb_block_q8_0 *y = vy;
    for (int b = 0; b < n / QB_QK32; b++, x += QB_QK32) {
        float id;
        const float d = q8_block_scale(x, &id);
        y[b].d = qb_f32_to_f16(d);
        for (int j = 0; j < QB_QK32; j++) y[b].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

void qb_quantize_q8_1_ref(const float *x, void *vy, int n)
{
    qb_block_q8_1 *y = vy;
    for (int b = 0; b < n / QB_QK32; b++, x += QB_QK32) {
        float id;
        const float d = q8_block_scale(x, &id);
        int sum = 0;
        for (int j = 0; j < QB_QK32; j++) {
            y[b].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[b].qs[j];
        }
        y[b].d = qb_f32_to_f16(d);
        y[b].s = qb_f32_to_f16((float)sum * d);
    }
}

/* Round to nearest, ties to even, as ggml's nearest_int (|v| < 2^22). */
static int nearest_int(float v)
{
    const float t = v + 12582912.0f; /* 1.5 * 2^23: the integer lands in the low mantissa bits */
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

void qb_quantize_q8_K_ref(const float *x, void *vy, int n)
{
    qb_block_q8_K *y = vy;
    for (int b = 0; b < n / QB_QK_K; b++, x += QB_QK_K) {
        float amax = 0.0f, max = 0.0f; /* max: the signed value of the first largest |x| */
        for (int j = 0; j < QB_QK_K; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        if (amax == 0.0f) { /* ggml leaves bsums unwritten here; we zero them */
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < QB_QK_K; j++) {
            const int v = nearest_int(iscale * x[j]);
            y[b].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int s = 0; s < 16; s++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[b].qs[16 * s + l];
            y[b].bsums[s] = (int16_t)sum;
        }
        y[b].d = 1.0f / iscale;
    }
}

/* ---- legacy 32-element blocks --------------------------------------------------------- */

/* Weight values of one 32-element block as integers (element order), for the formats whose
 * value is d * (q - offset): Q4_0, Q5_0, Q8_0, IQ4_NL (the code book value). */
static void q4_nibbles(const uint8_t qs[16], int q[32])
{
    for (int j = 0; j < 16; j++) {
        q[j] = qs[j] & 15;
        q[j + 16] = qs[j] >> 4;
    }
}

static void q5_values(const uint8_t qs[16], const uint8_t qh[4], int q[32])
{
    const uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 |
                       (uint32_t)qh[3] << 24;
    q4_nibbles(qs, q);
    for (int j = 0; j < 32; j++) q[j] |= (int)((h >> j) & 1) << 4;
}

static int idot32(const int q[32], const int8_t y[32])
{
    int s = 0;
    for (int j = 0; j < 32; j++) s += q[j] * y[j];
    return s;
}

static float dot_q4_0(int n, const void *vw, const void *vx)
{
    const qb_block_q4_0 *w = vw;
    const qb_block_q8_0 *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK32; b++) {
        int q[32];
        q4_nibbles(w[b].qs, q);
        for (int j = 0; j < 32; j++) q[j] -= 8;
        sum += (float)idot32(q, x[b].qs) * (qb_f16_to_f32(w[b].d) * qb_f16_to_f32(x[b].d));
    }
    return sum;
}

static float dot_q4_1(int n, const void *vw, const void *vx)
{
    const qb_block_q4_1 *w = vw;
    const qb_block_q8_1 *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK32; b++) {
        int q[32];
        q4_nibbles(w[b].qs, q);
        sum += (float)idot32(q, x[b].qs) * (qb_f16_to_f32(w[b].d) * qb_f16_to_f32(x[b].d)) +
               qb_f16_to_f32(w[b].m) * qb_f16_to_f32(x[b].s);
    }
    return sum;
}

static float dot_q5_0(int n, const void *vw, const void *vx)
{
    const qb_block_q5_0 *w = vw;
    const qb_block_q8_0 *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK32; b++) {
        int q[32];
        q5_values(w[b].qs, w[b].qh, q);
        for (int j = 0; j < 32; j++) q[j] -= 16;
        sum += (float)idot32(q, x[b].qs) * (qb_f16_to_f32(w[b].d) * qb_f16_to_f32(x[b].d));
    }
    return sum;
}

static float dot_q5_1(int n, const void *vw, const void *vx)
{
    const qb_block_q5_1 *w = vw;
    const qb_block_q8_1 *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK32; b++) {
        int q[32];
        q5_values(w[b].qs, w[b].qh, q);
        sum += (float)idot32(q, x[b].qs) * (qb_f16_to_f32(w[b].d) * qb_f16_to_f32(x[b].d)) +
               qb_f16_to_f32(w[b].m) * qb_f16_to_f32(x[b].s);
    }
    return sum;
}

static float dot_q8_0(int n, const void *vw, const void *vx)
{
    const qb_block_q8_0 *w = vw;
    const qb_block_q8_0 *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK32; b++) {
        int s = 0;
        for (int j = 0; j < 32; j++) s += w[b].qs[j] * x[b].qs[j];
        sum += (float)s * (qb_f16_to_f32(w[b].d) * qb_f16_to_f32(x[b].d));
    }
    return sum;
}

static float dot_iq4_nl(int n, const void *vw, const void *vx)
{
    const qb_block_iq4_nl *w = vw;
    const qb_block_q8_0 *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK32; b++) {
        int q[32];
        q4_nibbles(w[b].qs, q);
        for (int j = 0; j < 32; j++) q[j] = qb_iq4nl_values[q[j]];
        sum += (float)idot32(q, x[b].qs) * (qb_f16_to_f32(w[b].d) * qb_f16_to_f32(x[b].d));
    }
    return sum;
}

/* ---- 256-element super-blocks against Q8_K ---------------------------------------------- */

/* Sum of y[0..len) * q[0..len). */
static int idot(const int *q, const int8_t *y, int len)
{
    int s = 0;
    for (int j = 0; j < len; j++) s += q[j] * y[j];
    return s;
}

static float dot_q2_K(int n, const void *vw, const void *vx)
{
    const qb_block_q2_K *w = vw;
    const qb_block_q8_K *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK_K; b++) {
        int isum = 0, msum = 0;
        for (int s = 0; s < 16; s++) { /* sub-blocks of 16 */
            const int e0 = 16 * s, h = e0 / 128, shift = 2 * ((e0 % 128) / 32);
            const uint8_t *qs = w[b].qs + 32 * h + e0 % 32;
            int q[16];
            for (int l = 0; l < 16; l++) q[l] = (qs[l] >> shift) & 3;
            isum += (w[b].scales[s] & 15) * idot(q, x[b].qs + e0, 16);
            msum += (w[b].scales[s] >> 4) * x[b].bsums[s];
        }
        sum += x[b].d * qb_f16_to_f32(w[b].d) * (float)isum -
               x[b].d * qb_f16_to_f32(w[b].dmin) * (float)msum;
    }
    return sum;
}

static float dot_q3_K(int n, const void *vw, const void *vx)
{
    const qb_block_q3_K *w = vw;
    const qb_block_q8_K *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK_K; b++) {
        const uint8_t *p = w[b].scales;
        int isum = 0;
        for (int s = 0; s < 16; s++) {
            const int sc = ((s < 8 ? p[s] & 15 : p[s - 8] >> 4) | ((p[8 + s % 4] >> (2 * (s / 4))) & 3) << 4) - 32;
            const int e0 = 16 * s, h = e0 / 128, shift = 2 * ((e0 % 128) / 32);
            const uint8_t *qs = w[b].qs + 32 * h + e0 % 32, *hm = w[b].hmask + e0 % 32;
            const int hbit = 1 << (e0 / 32);
            int q[16];
            for (int l = 0; l < 16; l++) q[l] = ((qs[l] >> shift) & 3) - ((hm[l] & hbit) ? 0 : 4);
            isum += sc * idot(q, x[b].qs + e0, 16);
        }
        sum += x[b].d * qb_f16_to_f32(w[b].d) * (float)isum;
    }
    return sum;
}

/* 6-bit scale and min of sub-block s of a Q4_K / Q5_K block. */
static void k4_scale_min(const uint8_t p[12], int s, int *sc, int *mn)
{
    if (s < 4) {
        *sc = p[s] & 63;
        *mn = p[s + 4] & 63;
    } else {
        *sc = (p[s + 4] & 15) | (p[s - 4] >> 6) << 4;
        *mn = (p[s + 4] >> 4) | (p[s] >> 6) << 4;
    }
}

/* Q4_K and Q5_K share everything but the fifth bit (qh NULL for Q4_K). */
static float dot_k45(const uint16_t d, const uint16_t dmin, const uint8_t scales[12], const uint8_t *qs,
                     const uint8_t *qh, const qb_block_q8_K *x)
{
    int isum = 0, msum = 0;
    for (int s = 0; s < 8; s++) { /* sub-blocks of 32 */
        int sc, mn, q[32];
        k4_scale_min(scales, s, &sc, &mn);
        for (int l = 0; l < 32; l++) {
            q[l] = (qs[32 * (s / 2) + l] >> (4 * (s % 2))) & 15;
            if (qh) q[l] |= ((qh[l] >> s) & 1) << 4;
        }
        isum += sc * idot(q, x->qs + 32 * s, 32);
        msum += mn * (x->bsums[2 * s] + x->bsums[2 * s + 1]);
    }
    return x->d * qb_f16_to_f32(d) * (float)isum - x->d * qb_f16_to_f32(dmin) * (float)msum;
}

static float dot_q4_K(int n, const void *vw, const void *vx)
{
    const qb_block_q4_K *w = vw;
    const qb_block_q8_K *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK_K; b++) sum += dot_k45(w[b].d, w[b].dmin, w[b].scales, w[b].qs, NULL, &x[b]);
    return sum;
}

static float dot_q5_K(int n, const void *vw, const void *vx)
{
    const qb_block_q5_K *w = vw;
    const qb_block_q8_K *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK_K; b++) sum += dot_k45(w[b].d, w[b].dmin, w[b].scales, w[b].qs, w[b].qh, &x[b]);
    return sum;
}

static float dot_q6_K(int n, const void *vw, const void *vx)
{
    const qb_block_q6_K *w = vw;
    const qb_block_q8_K *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK_K; b++) {
        int isum = 0;
        for (int e0 = 0; e0 < QB_QK_K; e0 += 16) { /* sub-blocks of 16 */
            const int h = e0 / 128, k = (e0 % 128) / 32, l0 = e0 % 32;
            const uint8_t *ql = w[b].ql + 64 * h + 32 * (k & 1) + l0, *qh = w[b].qh + 32 * h + l0;
            int q[16];
            for (int l = 0; l < 16; l++)
                q[l] = (((ql[l] >> (k < 2 ? 0 : 4)) & 15) | ((qh[l] >> (2 * k)) & 3) << 4) - 32;
            isum += w[b].scales[e0 / 16] * idot(q, x[b].qs + e0, 16);
        }
        sum += x[b].d * qb_f16_to_f32(w[b].d) * (float)isum;
    }
    return sum;
}

static float dot_iq4_xs(int n, const void *vw, const void *vx)
{
    const qb_block_iq4_xs *w = vw;
    const qb_block_q8_K *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK_K; b++) {
        int isum = 0;
        for (int s = 0; s < 8; s++) {
            const int ls = ((w[b].scales_l[s / 2] >> (4 * (s % 2))) & 15) | ((w[b].scales_h >> (2 * s)) & 3) << 4;
            int q[32];
            q4_nibbles(w[b].qs + 16 * s, q);
            for (int j = 0; j < 32; j++) q[j] = qb_iq4nl_values[q[j]];
            isum += (ls - 32) * idot(q, x[b].qs + 32 * s, 32);
        }
        sum += x[b].d * qb_f16_to_f32(w[b].d) * (float)isum;
    }
    return sum;
}

/* ---- the table entries: nc activation rows, act_stride bytes apart ---------------------- */

#define QDOT_REF(name)                                                                              \
    void qb_qdot_##name##_ref(int n, const void *w, const void *xq, size_t act_stride, int nc,     \
                              float *out)                                                           \
    {                                                                                               \
        for (int c = 0; c < nc; c++) out[c] = dot_##name(n, w, (const char *)xq + c * act_stride); \
    }

QDOT_REF(q4_0)
QDOT_REF(q4_1)
QDOT_REF(q5_0)
QDOT_REF(q5_1)
QDOT_REF(q8_0)
QDOT_REF(iq4_nl)
QDOT_REF(q2_K)
QDOT_REF(q3_K)
QDOT_REF(q4_K)
QDOT_REF(q5_K)
QDOT_REF(q6_K)
QDOT_REF(iq4_xs)
