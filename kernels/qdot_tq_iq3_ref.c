/* qdot_tq_iq3_ref.c — scalar reference dot products of TQ1_0 / TQ2_0 / IQ3_XXS / IQ3_S weight
 * rows with Q8_K activation rows (the spec for tq_iq3_avx2.c / tq_iq3_avx512.c), computed as
 * ggml's generic ggml_vec_dot_*_q8_K: per super-block an exact int32 sum of weight code times
 * activation (IQ3 sub-blocks weighted by their odd scale 2 ls + 1), then one float product
 * with the two block scales, summed over the row (IQ3_XXS times 0.25 at the end, because its
 * decoded scale is (0.5 + ls) / 2). The integer parts are exact for every byte pattern. */
#include "blocks.h"

#include "qb_types.h"

#include <stddef.h>
#include <string.h>

/* Trit k of a TQ1_0 byte (see blocks.h). */
static inline int trit(uint8_t b, int k)
{
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    return ((uint16_t)(uint8_t)(b * pow3[k]) * 3) >> 8;
}

static float dot_tq1_0(int n, const void *vw, const void *vx)
{
    const qb_block_tq1_0 *w = vw;
    const qb_block_q8_K *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK_K; b++) {
        const int8_t *y = x[b].qs;
        int isum = 0;
        for (int k = 0; k < 5; k++)
            for (int m = 0; m < 32; m++) isum += (trit(w[b].qs[m], k) - 1) * y[32 * k + m];
        for (int k = 0; k < 5; k++)
            for (int m = 0; m < 16; m++) isum += (trit(w[b].qs[32 + m], k) - 1) * y[160 + 16 * k + m];
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < 4; j++) isum += (trit(w[b].qh[j], k) - 1) * y[240 + 4 * k + j];
        sum += (float)isum * (qb_f16_to_f32(w[b].d) * x[b].d);
    }
    return sum;
}

static float dot_tq2_0(int n, const void *vw, const void *vx)
{
    const qb_block_tq2_0 *w = vw;
    const qb_block_q8_K *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK_K; b++) {
        int isum = 0;
        for (int e = 0; e < QB_QK_K; e++) {
            const int h = e / 128, l = (e % 128) / 32, m = e % 32;
            isum += x[b].qs[e] * (((w[b].qs[32 * h + m] >> (2 * l)) & 3) - 1);
        }
        sum += (float)isum * (x[b].d * qb_f16_to_f32(w[b].d));
    }
    return sum;
}

/* Signed sum of two grid entries' magnitudes times eight activations. */
static int dot8(uint32_t g1, uint32_t g2, uint8_t signs, const int8_t *y)
{
    int s = 0;
    for (int j = 0; j < 4; j++) {
        s += (int)((g1 >> (8 * j)) & 255) * y[j] * (signs >> j & 1 ? -1 : 1);
        s += (int)((g2 >> (8 * j)) & 255) * y[j + 4] * (signs >> (j + 4) & 1 ? -1 : 1);
    }
    return s;
}

static float dot_iq3_xxs(int n, const void *vw, const void *vx)
{
    const qb_block_iq3_xxs *w = vw;
    const qb_block_q8_K *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK_K; b++) {
        const float d = qb_f16_to_f32(w[b].d) * x[b].d;
        int bsum = 0;
        for (int s = 0; s < 8; s++) {
            uint32_t aux;
            memcpy(&aux, w[b].qs + 64 + 4 * s, sizeof aux);
            int isum = 0;
            for (int k = 0; k < 4; k++) {
                const uint8_t *q = w[b].qs + 8 * s + 2 * k;
                isum += dot8(qb_iq3xxs_grid[q[0]], qb_iq3xxs_grid[q[1]], qb_iq3xxs_signs(aux >> (7 * k)),
                             x[b].qs + 32 * s + 8 * k);
            }
            bsum += isum * (int)(2 * (aux >> 28) + 1);
        }
        sum += d * (float)bsum;
    }
    return 0.25f * sum;
}

static float dot_iq3_s(int n, const void *vw, const void *vx)
{
    const qb_block_iq3_s *w = vw;
    const qb_block_q8_K *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK_K; b++) {
        const float d = qb_f16_to_f32(w[b].d) * x[b].d;
        int bsum = 0;
        for (int s = 0; s < 8; s++) {
            int isum = 0;
            for (int k = 0; k < 4; k++) {
                const int g = 8 * s + 2 * k;
                const uint32_t i1 = w[b].qs[g] | ((w[b].qh[s] >> (2 * k)) & 1) << 8;
                const uint32_t i2 = w[b].qs[g + 1] | ((w[b].qh[s] >> (2 * k + 1)) & 1) << 8;
                isum += dot8(qb_iq3s_grid[i1], qb_iq3s_grid[i2], w[b].signs[4 * s + k], x[b].qs + 32 * s + 8 * k);
            }
            bsum += isum * (1 + 2 * ((w[b].scales[s / 2] >> (4 * (s % 2))) & 15));
        }
        sum += d * (float)bsum;
    }
    return sum;
}

/* The table entries (kernels.h qdot contract): nc activation rows, act_stride bytes apart. */
#define QDOT_REF(name)                                                                              \
    void qb_qdot_##name##_ref(int n, const void *w, const void *xq, size_t act_stride, int nc,     \
                              float *out);                                                          \
    void qb_qdot_##name##_ref(int n, const void *w, const void *xq, size_t act_stride, int nc,     \
                              float *out)                                                           \
    {                                                                                               \
        for (int c = 0; c < nc; c++) out[c] = dot_##name(n, w, (const char *)xq + c * act_stride); \
    }

QDOT_REF(tq1_0)
QDOT_REF(tq2_0)
QDOT_REF(iq3_xxs)
QDOT_REF(iq3_s)
