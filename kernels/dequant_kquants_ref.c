/* dequant_kquants_ref.c — scalar dequantization of the 256-element super-block formats
 * (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_XS): the spec for their vector versions.
 *
 * Each function walks the block in output order and computes every element with the float
 * operations ggml's dequantize_row_* uses, in the same order: a sub-block factor
 * (d * scale, dmin * min) first, then factor * q, then the min subtracted. Those factors and
 * products are exact in f32 (see dequant_ref.c), so results match ggml bit for bit.
 * Layouts are described next to the structs in blocks.h. */
#include "blocks.h"

#include "qb_types.h"

/* Unpack the sixteen 6-bit Q3_K scales (still biased by 32) from their 12 bytes. */
static void q3_K_scales(const uint8_t p[12], int sc[16])
{
    for (int s = 0; s < 16; s++) {
        const int low = s < 8 ? (p[s] & 15) : (p[s - 8] >> 4);
        const int high = (p[8 + s % 4] >> (2 * (s / 4))) & 3;
        sc[s] = low | high << 4;
    }
}

/* Scale and min (6 bits each) of sub-block s of a Q4_K / Q5_K block. */
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

void qb_dequant_q2_K_ref(const qb_block_q2_K *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = qb_f16_to_f32(x->d), dmin = qb_f16_to_f32(x->dmin);
        for (int e0 = 0; e0 < QB_QK_K; e0 += 16) { /* one sub-block of 16 per pass */
            const int s = e0 / 16, h = e0 / 128, shift = 2 * ((e0 % 128) / 32);
            const uint8_t *q = x->qs + 32 * h + e0 % 32;
            const float dl = d * (float)(x->scales[s] & 15);
            const float ml = dmin * (float)(x->scales[s] >> 4);
            for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l] >> shift) & 3) - ml;
        }
    }
}

void qb_dequant_q3_K_ref(const qb_block_q3_K *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = qb_f16_to_f32(x->d);
        int sc[16];
        q3_K_scales(x->scales, sc);
        for (int e0 = 0; e0 < QB_QK_K; e0 += 16) {
            const int s = e0 / 16, h = e0 / 128, k = (e0 % 128) / 32;
            const uint8_t *q = x->qs + 32 * h + e0 % 32;
            const uint8_t *hm = x->hmask + e0 % 32;
            const uint8_t hbit = (uint8_t)(1u << (e0 / 32));
            const float dl = d * (float)(sc[s] - 32);
            for (int l = 0; l < 16; l++) {
                const int v = ((q[l] >> (2 * k)) & 3) - ((hm[l] & hbit) ? 0 : 4);
                *y++ = dl * (float)v;
            }
        }
    }
}

void qb_dequant_q4_K_ref(const qb_block_q4_K *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = qb_f16_to_f32(x->d), dmin = qb_f16_to_f32(x->dmin);
        for (int s = 0; s < 8; s++) { /* sub-blocks of 32 */
            const uint8_t *q = x->qs + 32 * (s / 2);
            const int shift = 4 * (s % 2); /* even sub-block: low nibbles */
            int sc, mn;
            k4_scale_min(x->scales, s, &sc, &mn);
            const float dl = d * (float)sc, ml = dmin * (float)mn;
            for (int l = 0; l < 32; l++) *y++ = dl * (float)((q[l] >> shift) & 15) - ml;
        }
    }
}

void qb_dequant_q5_K_ref(const qb_block_q5_K *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = qb_f16_to_f32(x->d), dmin = qb_f16_to_f32(x->dmin);
        for (int s = 0; s < 8; s++) {
            const uint8_t *q = x->qs + 32 * (s / 2);
            const int shift = 4 * (s % 2);
            int sc, mn;
            k4_scale_min(x->scales, s, &sc, &mn);
            const float dl = d * (float)sc, ml = dmin * (float)mn;
            for (int l = 0; l < 32; l++) {
                const int v = ((q[l] >> shift) & 15) | ((x->qh[l] >> s) & 1) << 4;
                *y++ = dl * (float)v - ml;
            }
        }
    }
}

void qb_dequant_q6_K_ref(const qb_block_q6_K *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = qb_f16_to_f32(x->d);
        for (int e0 = 0; e0 < QB_QK_K; e0 += 32) { /* quarters of each 128-element half */
            const int h = e0 / 128, k = (e0 % 128) / 32;
            const uint8_t *ql = x->ql + 64 * h + 32 * (k & 1);
            const uint8_t *qh = x->qh + 32 * h;
            const int lshift = k < 2 ? 0 : 4, hshift = 2 * k;
            for (int l = 0; l < 32; l++) {
                const int v = (((ql[l] >> lshift) & 15) | ((qh[l] >> hshift) & 3) << 4) - 32;
                const float ds = d * (float)x->scales[(e0 + l) / 16];
                *y++ = ds * (float)v;
            }
        }
    }
}

void qb_dequant_q8_K_ref(const qb_block_q8_K *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = x->d;
        for (int j = 0; j < QB_QK_K; j++) *y++ = d * (float)x->qs[j];
    }
}

void qb_dequant_iq4_xs_ref(const qb_block_iq4_xs *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x++) {
        const float d = qb_f16_to_f32(x->d);
        for (int s = 0; s < 8; s++, y += 32) {
            const int ls = ((x->scales_l[s / 2] >> (4 * (s % 2))) & 15) |
                           ((x->scales_h >> (2 * s)) & 3) << 4;
            const float dl = d * (float)(ls - 32);
            const uint8_t *q = x->qs + 16 * s;
            for (int j = 0; j < 16; j++) {
                y[j] = dl * (float)qb_iq4nl_values[q[j] & 15];
                y[j + 16] = dl * (float)qb_iq4nl_values[q[j] >> 4];
            }
        }
    }
}
