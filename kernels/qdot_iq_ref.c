/* qdot_iq_ref.c — scalar reference dot products of the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ1_S, IQ1_M) with Q8_K activation rows, as ggml's vec_dot_*_q8_K: per super-block an exact
 * integer sum of (scale of each half sub-block) × (weights · activations), times the product
 * of the two float scales, summed in float. The spec for qdot_iq_avx2.c / qdot_iq_avx512.c.
 *
 * Integer weights: the IQ2 formats give grid byte × sign, with the odd scale 2·ls + 1 and a
 * final factor 1/8 (x = d·(ls + 1/2)/4 · grid = d·(2ls + 1)/8 · grid). The IQ1 formats give
 * 8·g ± 1 (g the grid value -1, 0, 1 and ±1/8 the group's shift, times 8), so the shift term
 * ggml adds through the activation sums is inside the same exact integer sum, again with a
 * final 1/8. Every integer part is exact in int32 for every byte pattern. */
#include "kernels.h"
#include "blocks.h"
#include "iq_grids.h"
#include "qb_types.h"

#include <string.h>

/* Sub-block s (32 elements) of a block as signed integer weights q[32] and the scales of its
 * halves (elements 0-15 and 16-31). */
typedef void (*decode_fn)(const void *blk, int s, int q[32], int ls[2]);

static void signed8(int *q, const uint64_t *point, unsigned signs)
{
    const uint8_t *g = (const uint8_t *)point;
    for (int j = 0; j < 8; j++) q[j] = (signs >> j) & 1 ? -(int)g[j] : (int)g[j];
}

static void shifted8(int *q, const uint64_t *point, int neg)
{
    const int8_t *g = (const int8_t *)point;
    for (int j = 0; j < 8; j++) q[j] = 8 * g[j] + (neg ? -1 : 1);
}

static void decode_iq2_xxs(const void *blk, int s, int q[32], int ls[2])
{
    const qb_block_iq2_xxs *b = blk;
    uint32_t w[2];
    memcpy(w, b->qs + 4 * s, sizeof w);
    for (int l = 0; l < 4; l++) signed8(q + 8 * l, &qb_iq2xxs_grid[(w[0] >> 8 * l) & 255], qb_iq2_signs[(w[1] >> 7 * l) & 127]);
    ls[0] = ls[1] = 2 * (int)(w[1] >> 28) + 1;
}

static void decode_iq2_xs(const void *blk, int s, int q[32], int ls[2])
{
    const qb_block_iq2_xs *b = blk;
    for (int l = 0; l < 4; l++) {
        const uint16_t v = b->qs[4 * s + l];
        signed8(q + 8 * l, &qb_iq2xs_grid[v & 511], qb_iq2_signs[v >> 9]);
    }
    ls[0] = 2 * (b->scales[s] & 15) + 1;
    ls[1] = 2 * (b->scales[s] >> 4) + 1;
}

static void decode_iq2_s(const void *blk, int s, int q[32], int ls[2])
{
    const qb_block_iq2_s *b = blk;
    for (int l = 0; l < 4; l++) {
        const int g = 4 * s + l;
        signed8(q + 8 * l, &qb_iq2s_grid[b->qs[g] | ((b->qh[s] >> (2 * l)) & 3) << 8], b->qs[32 + g]);
    }
    ls[0] = 2 * (b->scales[s] & 15) + 1;
    ls[1] = 2 * (b->scales[s] >> 4) + 1;
}

static void decode_iq1_s(const void *blk, int s, int q[32], int ls[2])
{
    const qb_block_iq1_s *b = blk;
    const unsigned h = b->qh[s];
    for (int l = 0; l < 4; l++) shifted8(q + 8 * l, &qb_iq1s_grid[b->qs[4 * s + l] | ((h >> 3 * l) & 7) << 8], h & 0x8000);
    ls[0] = ls[1] = 2 * (int)((h >> 12) & 7) + 1;
}

static void decode_iq1_m(const void *blk, int s, int q[32], int ls[2])
{
    const qb_block_iq1_m *b = blk;
    for (int l = 0; l < 4; l++) {
        const unsigned nib = b->qh[2 * s + l / 2] >> (4 * (l % 2));
        shifted8(q + 8 * l, &qb_iq1s_grid[b->qs[4 * s + l] | (nib & 7) << 8], nib & 8);
    }
    const unsigned sc = (unsigned)(b->scales[2 * (s / 2)] | b->scales[2 * (s / 2) + 1] << 8);
    ls[0] = 2 * (int)((sc >> (6 * (s % 2))) & 7) + 1;
    ls[1] = 2 * (int)((sc >> (6 * (s % 2) + 3)) & 7) + 1;
}

static float block_d(int type, const void *blk)
{
    if (type == QB_TYPE_IQ1_M) return qb_f16_to_f32(qb_iq1m_scale_bits(blk));
    uint16_t d;
    memcpy(&d, blk, sizeof d); /* every other layout starts with its f16 scale */
    return qb_f16_to_f32(d);
}

static float dot_iq(int type, decode_fn decode, int n, const void *vw, const void *vx)
{
    const uint8_t *w = vw;
    const size_t bs = (size_t)qb_type_get(type)->size;
    const qb_block_q8_K *x = vx;
    float sum = 0.0f;
    for (int b = 0; b < n / QB_QK_K; b++, w += bs) {
        int isum = 0;
        for (int s = 0; s < 8; s++) {
            int q[32], ls[2], p[2] = {0, 0};
            decode(w, s, q, ls);
            for (int j = 0; j < 32; j++) p[j / 16] += q[j] * x[b].qs[32 * s + j];
            isum += ls[0] * p[0] + ls[1] * p[1];
        }
        sum += block_d(type, w) * x[b].d * (float)isum;
    }
    return 0.125f * sum;
}

#define QDOT_IQ_REF(name, TYPE)                                                                              \
    void qb_qdot_##name##_ref(int n, const void *w, const void *xq, size_t act_stride, int nc, float *out)   \
    {                                                                                                        \
        for (int c = 0; c < nc; c++) out[c] = dot_iq(TYPE, decode_##name, n, w, (const char *)xq + c * act_stride); \
    }

QDOT_IQ_REF(iq2_xxs, QB_TYPE_IQ2_XXS)
QDOT_IQ_REF(iq2_xs, QB_TYPE_IQ2_XS)
QDOT_IQ_REF(iq2_s, QB_TYPE_IQ2_S)
QDOT_IQ_REF(iq1_s, QB_TYPE_IQ1_S)
QDOT_IQ_REF(iq1_m, QB_TYPE_IQ1_M)
