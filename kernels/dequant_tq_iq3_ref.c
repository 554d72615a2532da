/* dequant_tq_iq3_ref.c — scalar dequantization of the ternary formats TQ1_0 / TQ2_0 and the
 * 3-bit i-quants IQ3_XXS / IQ3_S (layouts in blocks.h): the spec their AVX2 / AVX-512
 * versions (tq_iq3_avx2.c, tq_iq3_avx512.c) are tested against. Every value is computed with
 * the float operations ggml's dequantize_row_* uses, in the same order, so results are
 * bit-identical to llama.cpp c392e50. */
#include "blocks.h"

#include "qb_types.h"

#include <string.h>

/* Trit k (0 = most significant) of a TQ1_0 byte: scale the byte by 3^k modulo 256, then the
 * top of (byte * 3) is the trit. */
static inline int trit(uint8_t b, int k)
{
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    const uint8_t q = (uint8_t)(b * pow3[k]);
    return ((uint16_t)q * 3) >> 8;
}

void qb_dequant_tq1_0_ref(const qb_block_tq1_0 *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = qb_f16_to_f32(x->d);
        for (int k = 0; k < 5; k++)
            for (int m = 0; m < 32; m++) *y++ = (float)(trit(x->qs[m], k) - 1) * d;
        for (int k = 0; k < 5; k++)
            for (int m = 0; m < 16; m++) *y++ = (float)(trit(x->qs[32 + m], k) - 1) * d;
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < 4; j++) *y++ = (float)(trit(x->qh[j], k) - 1) * d;
    }
}

void qb_dequant_tq2_0_ref(const qb_block_tq2_0 *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = qb_f16_to_f32(x->d);
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 4; l++)
                for (int m = 0; m < 32; m++) *y++ = (float)(((x->qs[32 * h + m] >> (2 * l)) & 3) - 1) * d;
    }
}

/* Eight values of two grid entries (magnitudes g1 then g2) times db, negated where the sign
 * byte has a bit. */
static inline void put8(float *y, float db, uint32_t g1, uint32_t g2, uint8_t signs)
{
    for (int j = 0; j < 4; j++) {
        y[j] = db * (float)((g1 >> (8 * j)) & 255) * (signs >> j & 1 ? -1.0f : 1.0f);
        y[j + 4] = db * (float)((g2 >> (8 * j)) & 255) * (signs >> (j + 4) & 1 ? -1.0f : 1.0f);
    }
}

void qb_dequant_iq3_xxs_ref(const qb_block_iq3_xxs *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = qb_f16_to_f32(x->d);
        for (int s = 0; s < 8; s++) {
            uint32_t w;
            memcpy(&w, x->qs + 64 + 4 * s, sizeof w);
            const float db = d * (0.5f + (float)(w >> 28)) * 0.5f;
            for (int k = 0; k < 4; k++, y += 8) {
                const uint8_t *q = x->qs + 8 * s + 2 * k;
                put8(y, db, qb_iq3xxs_grid[q[0]], qb_iq3xxs_grid[q[1]], qb_iq3xxs_signs(w >> (7 * k)));
            }
        }
    }
}

void qb_dequant_iq3_s_ref(const qb_block_iq3_s *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = qb_f16_to_f32(x->d);
        for (int s = 0; s < 8; s++) {
            const float db = d * (float)(1 + 2 * ((x->scales[s / 2] >> (4 * (s % 2))) & 15));
            for (int k = 0; k < 4; k++, y += 8) {
                const int g = 8 * s + 2 * k;
                const uint32_t i1 = x->qs[g] | ((x->qh[s] >> (2 * k)) & 1) << 8;
                const uint32_t i2 = x->qs[g + 1] | ((x->qh[s] >> (2 * k + 1)) & 1) << 8;
                put8(y, db, qb_iq3s_grid[i1], qb_iq3s_grid[i2], x->signs[4 * s + k]);
            }
        }
    }
}
