/* dequant_iq_ref.c — scalar dequantizers of the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ1_S, IQ1_M): the spec for dequant_iq_avx2.c / dequant_iq_avx512.c. Each element is a
 * grid byte times its group's float scale, with the sign or shift of the format, computed
 * with the float operations of ggml's dequantize_row_* in the same order, so values are
 * bit-identical to ggml's (layouts: blocks.h; grids: iq_grids.h). */
#include "blocks.h"
#include "iq_grids.h"
#include "qb_types.h"

#include <string.h>

/* 8 elements: scale · grid byte, negated where bit j of signs is set. */
static void put8_signed(float *y, float dl, const uint8_t *grid, uint8_t signs)
{
    for (int j = 0; j < 8; j++) y[j] = dl * (float)grid[j] * ((signs >> j) & 1 ? -1.0f : 1.0f);
}

/* 8 elements of an IQ1 group: scale · (grid value + shift). */
static void put8_shift(float *y, float dl, const int8_t *grid, float delta)
{
    for (int j = 0; j < 8; j++) y[j] = dl * ((float)grid[j] + delta);
}

void qb_dequant_iq2_xxs_ref(const qb_block_iq2_xxs *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = qb_f16_to_f32(x[b].d);
        for (int s = 0; s < 8; s++, y += 32) {
            uint32_t w[2];
            memcpy(w, x[b].qs + 4 * s, sizeof w);
            const float db = d * (0.5f + (float)(w[1] >> 28)) * 0.25f;
            for (int l = 0; l < 4; l++) {
                const uint8_t *grid = (const uint8_t *)&qb_iq2xxs_grid[(w[0] >> 8 * l) & 255];
                put8_signed(y + 8 * l, db, grid, qb_iq2_signs[(w[1] >> 7 * l) & 127]);
            }
        }
    }
}

void qb_dequant_iq2_xs_ref(const qb_block_iq2_xs *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = qb_f16_to_f32(x[b].d);
        for (int s = 0; s < 8; s++, y += 32) {
            const float db[2] = {d * (0.5f + (float)(x[b].scales[s] & 15)) * 0.25f,
                                 d * (0.5f + (float)(x[b].scales[s] >> 4)) * 0.25f};
            for (int l = 0; l < 4; l++) {
                const uint16_t q = x[b].qs[4 * s + l];
                put8_signed(y + 8 * l, db[l / 2], (const uint8_t *)&qb_iq2xs_grid[q & 511], qb_iq2_signs[q >> 9]);
            }
        }
    }
}

void qb_dequant_iq2_s_ref(const qb_block_iq2_s *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = qb_f16_to_f32(x[b].d);
        for (int s = 0; s < 8; s++, y += 32) {
            const float db[2] = {d * (0.5f + (float)(x[b].scales[s] & 15)) * 0.25f,
                                 d * (0.5f + (float)(x[b].scales[s] >> 4)) * 0.25f};
            for (int l = 0; l < 4; l++) {
                const int g = 4 * s + l;
                const int idx = x[b].qs[g] | ((x[b].qh[s] >> (2 * l)) & 3) << 8;
                put8_signed(y + 8 * l, db[l / 2], (const uint8_t *)&qb_iq2s_grid[idx], x[b].qs[32 + g]);
            }
        }
    }
}

void qb_dequant_iq1_s_ref(const qb_block_iq1_s *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = qb_f16_to_f32(x[b].d);
        for (int s = 0; s < 8; s++, y += 32) {
            const unsigned h = x[b].qh[s];
            const float dl = d * (float)(2 * ((h >> 12) & 7) + 1);
            const float delta = h & 0x8000 ? -QB_IQ1_DELTA : QB_IQ1_DELTA;
            for (int l = 0; l < 4; l++) {
                const int idx = x[b].qs[4 * s + l] | ((h >> 3 * l) & 7) << 8;
                put8_shift(y + 8 * l, dl, (const int8_t *)&qb_iq1s_grid[idx], delta);
            }
        }
    }
}

void qb_dequant_iq1_m_ref(const qb_block_iq1_m *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = qb_f16_to_f32(qb_iq1m_scale_bits(&x[b]));
        for (int s = 0; s < 8; s++, y += 32) {
            const unsigned sc = (unsigned)(x[b].scales[2 * (s / 2)] | x[b].scales[2 * (s / 2) + 1] << 8);
            const float dl[2] = {d * (float)(2 * ((sc >> (6 * (s % 2))) & 7) + 1),
                                 d * (float)(2 * ((sc >> (6 * (s % 2) + 3)) & 7) + 1)};
            for (int l = 0; l < 4; l++) {
                const unsigned nib = x[b].qh[2 * s + l / 2] >> (4 * (l % 2));
                const int idx = x[b].qs[4 * s + l] | (nib & 7) << 8;
                put8_shift(y + 8 * l, dl[l / 2], (const int8_t *)&qb_iq1s_grid[idx], nib & 8 ? -QB_IQ1_DELTA : QB_IQ1_DELTA);
            }
        }
    }
}
