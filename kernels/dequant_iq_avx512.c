/* dequant_iq_avx512.c — AVX-512 dequantizers of the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ1_S, IQ1_M), two grid points (16 elements, one scale) per register, signs as a lane
 * mask. Built with the AVX-512 flags; called from qb_dequant_row_avx512. The spec is
 * dequant_iq_ref.c, bit for bit: the same float products in the same order (a sign is a flip
 * of the sign bit, which is what multiplying by -1 does). */
#include "blocks.h"
#include "iq_grids.h"
#include "qb_types.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

AI float f16(uint16_t h) { return _cvtsh_ss(h); }

/* 16 elements: dl · (points a, b), sign bit flipped in lanes whose bit of signs is set. */
AI void put16_signed(float *y, float dl, uint64_t a, uint64_t b, unsigned signs)
{
    const __m512 g = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_set_epi64x((long long)b, (long long)a)));
    const __m512 v = _mm512_mul_ps(_mm512_set1_ps(dl), g);
    _mm512_storeu_ps(y, _mm512_mask_xor_ps(v, (__mmask16)signs, v, _mm512_set1_ps(-0.0f)));
}

/* 16 elements of two IQ1 groups: dl · (points a, b + their shifts). */
AI void put16_shift(float *y, float dl, uint64_t a, uint64_t b, float da, float db)
{
    const __m512 g = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_set_epi64x((long long)b, (long long)a)));
    const __m512 delta = _mm512_insertf32x8(_mm512_set1_ps(da), _mm256_set1_ps(db), 1);
    _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_set1_ps(dl), _mm512_add_ps(g, delta)));
}

static void dq_iq2_xxs(const qb_block_iq2_xxs *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = f16(x[b].d);
        for (int s = 0; s < 8; s++, y += 32) {
            uint32_t w[2];
            memcpy(w, x[b].qs + 4 * s, sizeof w);
            const float db = d * (0.5f + (float)(w[1] >> 28)) * 0.25f;
            for (int l = 0; l < 4; l += 2)
                put16_signed(y + 8 * l, db, qb_iq2xxs_grid[(w[0] >> 8 * l) & 255], qb_iq2xxs_grid[(w[0] >> 8 * (l + 1)) & 255],
                             qb_iq2_signs[(w[1] >> 7 * l) & 127] | (unsigned)qb_iq2_signs[(w[1] >> 7 * (l + 1)) & 127] << 8);
        }
    }
}

static void dq_iq2_xs(const qb_block_iq2_xs *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = f16(x[b].d);
        for (int s = 0; s < 8; s++, y += 32) {
            const float db[2] = {d * (0.5f + (float)(x[b].scales[s] & 15)) * 0.25f,
                                 d * (0.5f + (float)(x[b].scales[s] >> 4)) * 0.25f};
            for (int l = 0; l < 4; l += 2) {
                const uint16_t q0 = x[b].qs[4 * s + l], q1 = x[b].qs[4 * s + l + 1];
                put16_signed(y + 8 * l, db[l / 2], qb_iq2xs_grid[q0 & 511], qb_iq2xs_grid[q1 & 511],
                             qb_iq2_signs[q0 >> 9] | (unsigned)qb_iq2_signs[q1 >> 9] << 8);
            }
        }
    }
}

static void dq_iq2_s(const qb_block_iq2_s *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = f16(x[b].d);
        for (int s = 0; s < 8; s++, y += 32) {
            const float db[2] = {d * (0.5f + (float)(x[b].scales[s] & 15)) * 0.25f,
                                 d * (0.5f + (float)(x[b].scales[s] >> 4)) * 0.25f};
            for (int l = 0; l < 4; l += 2) {
                const int g = 4 * s + l;
                const int i0 = x[b].qs[g] | ((x[b].qh[s] >> (2 * l)) & 3) << 8;
                const int i1 = x[b].qs[g + 1] | ((x[b].qh[s] >> (2 * l + 2)) & 3) << 8;
                put16_signed(y + 8 * l, db[l / 2], qb_iq2s_grid[i0], qb_iq2s_grid[i1],
                             x[b].qs[32 + g] | (unsigned)x[b].qs[33 + g] << 8);
            }
        }
    }
}

static void dq_iq1_s(const qb_block_iq1_s *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = f16(x[b].d);
        for (int s = 0; s < 8; s++, y += 32) {
            const unsigned h = x[b].qh[s];
            const float dl = d * (float)(2 * ((h >> 12) & 7) + 1);
            const float delta = h & 0x8000 ? -QB_IQ1_DELTA : QB_IQ1_DELTA;
            for (int l = 0; l < 4; l += 2)
                put16_shift(y + 8 * l, dl, qb_iq1s_grid[x[b].qs[4 * s + l] | ((h >> 3 * l) & 7) << 8],
                            qb_iq1s_grid[x[b].qs[4 * s + l + 1] | ((h >> 3 * (l + 1)) & 7) << 8], delta, delta);
        }
    }
}

static void dq_iq1_m(const qb_block_iq1_m *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = f16(qb_iq1m_scale_bits(&x[b]));
        for (int s = 0; s < 8; s++, y += 32) {
            const unsigned sc = (unsigned)(x[b].scales[2 * (s / 2)] | x[b].scales[2 * (s / 2) + 1] << 8);
            const float dl[2] = {d * (float)(2 * ((sc >> (6 * (s % 2))) & 7) + 1),
                                 d * (float)(2 * ((sc >> (6 * (s % 2) + 3)) & 7) + 1)};
            for (int l = 0; l < 4; l += 2) {
                const unsigned h = x[b].qh[2 * s + l / 2];
                put16_shift(y + 8 * l, dl[l / 2], qb_iq1s_grid[x[b].qs[4 * s + l] | (h & 7) << 8],
                            qb_iq1s_grid[x[b].qs[4 * s + l + 1] | ((h >> 4) & 7) << 8], h & 8 ? -QB_IQ1_DELTA : QB_IQ1_DELTA,
                            h & 0x80 ? -QB_IQ1_DELTA : QB_IQ1_DELTA);
            }
        }
    }
}

/* nb blocks of a grid i-quant type; false for other types. */
bool qb_dequant_iq_avx512(int type, const void *src, float *dst, int64_t nb)
{
    switch (type) {
    case QB_TYPE_IQ2_XXS: dq_iq2_xxs(src, dst, nb); return true;
    case QB_TYPE_IQ2_XS: dq_iq2_xs(src, dst, nb); return true;
    case QB_TYPE_IQ2_S: dq_iq2_s(src, dst, nb); return true;
    case QB_TYPE_IQ1_S: dq_iq1_s(src, dst, nb); return true;
    case QB_TYPE_IQ1_M: dq_iq1_m(src, dst, nb); return true;
    default: return false;
    }
}
