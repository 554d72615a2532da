/* dequant_iq_avx2.c — AVX2 dequantizers of the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S,
 * IQ1_M), 8 elements (one grid point) per register. Built with the AVX2 flags; called from
 * qb_dequant_row_avx2. The spec is dequant_iq_ref.c, bit for bit: the same float products in
 * the same order (a sign is a flip of the sign bit, which is what multiplying by -1 does). */
#include "blocks.h"
#include "iq_grids.h"
#include "qb_types.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

AI float f16(uint16_t h) { return _cvtsh_ss(h); }

/* The sign bit in lane j where bit j of signs is set. */
AI __m256 sign_mask(unsigned signs)
{
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i m = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)signs), bit), bit);
    return _mm256_castsi256_ps(_mm256_slli_epi32(m, 31));
}

AI void put8_signed(float *y, __m256 dl, const uint64_t *point, unsigned signs)
{
    const __m256 g = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)point)));
    _mm256_storeu_ps(y, _mm256_xor_ps(_mm256_mul_ps(dl, g), sign_mask(signs)));
}

AI void put8_shift(float *y, __m256 dl, const uint64_t *point, float delta)
{
    const __m256 g = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)point)));
    _mm256_storeu_ps(y, _mm256_mul_ps(dl, _mm256_add_ps(g, _mm256_set1_ps(delta))));
}

static void dq_iq2_xxs(const qb_block_iq2_xxs *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = f16(x[b].d);
        for (int s = 0; s < 8; s++, y += 32) {
            uint32_t w[2];
            memcpy(w, x[b].qs + 4 * s, sizeof w);
            const __m256 db = _mm256_set1_ps(d * (0.5f + (float)(w[1] >> 28)) * 0.25f);
            for (int l = 0; l < 4; l++)
                put8_signed(y + 8 * l, db, &qb_iq2xxs_grid[(w[0] >> 8 * l) & 255], qb_iq2_signs[(w[1] >> 7 * l) & 127]);
        }
    }
}

static void dq_iq2_xs(const qb_block_iq2_xs *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = f16(x[b].d);
        for (int s = 0; s < 8; s++, y += 32) {
            const __m256 db0 = _mm256_set1_ps(d * (0.5f + (float)(x[b].scales[s] & 15)) * 0.25f);
            const __m256 db1 = _mm256_set1_ps(d * (0.5f + (float)(x[b].scales[s] >> 4)) * 0.25f);
            for (int l = 0; l < 4; l++) {
                const uint16_t q = x[b].qs[4 * s + l];
                put8_signed(y + 8 * l, l < 2 ? db0 : db1, &qb_iq2xs_grid[q & 511], qb_iq2_signs[q >> 9]);
            }
        }
    }
}

static void dq_iq2_s(const qb_block_iq2_s *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = f16(x[b].d);
        for (int s = 0; s < 8; s++, y += 32) {
            const __m256 db0 = _mm256_set1_ps(d * (0.5f + (float)(x[b].scales[s] & 15)) * 0.25f);
            const __m256 db1 = _mm256_set1_ps(d * (0.5f + (float)(x[b].scales[s] >> 4)) * 0.25f);
            for (int l = 0; l < 4; l++) {
                const int g = 4 * s + l;
                const int idx = x[b].qs[g] | ((x[b].qh[s] >> (2 * l)) & 3) << 8;
                put8_signed(y + 8 * l, l < 2 ? db0 : db1, &qb_iq2s_grid[idx], x[b].qs[32 + g]);
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
            const __m256 dl = _mm256_set1_ps(d * (float)(2 * ((h >> 12) & 7) + 1));
            const float delta = h & 0x8000 ? -QB_IQ1_DELTA : QB_IQ1_DELTA;
            for (int l = 0; l < 4; l++)
                put8_shift(y + 8 * l, dl, &qb_iq1s_grid[x[b].qs[4 * s + l] | ((h >> 3 * l) & 7) << 8], delta);
        }
    }
}

static void dq_iq1_m(const qb_block_iq1_m *x, float *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = f16(qb_iq1m_scale_bits(&x[b]));
        for (int s = 0; s < 8; s++, y += 32) {
            const unsigned sc = (unsigned)(x[b].scales[2 * (s / 2)] | x[b].scales[2 * (s / 2) + 1] << 8);
            const __m256 dl0 = _mm256_set1_ps(d * (float)(2 * ((sc >> (6 * (s % 2))) & 7) + 1));
            const __m256 dl1 = _mm256_set1_ps(d * (float)(2 * ((sc >> (6 * (s % 2) + 3)) & 7) + 1));
            for (int l = 0; l < 4; l++) {
                const unsigned nib = x[b].qh[2 * s + l / 2] >> (4 * (l % 2));
                put8_shift(y + 8 * l, l < 2 ? dl0 : dl1, &qb_iq1s_grid[x[b].qs[4 * s + l] | (nib & 7) << 8],
                           nib & 8 ? -QB_IQ1_DELTA : QB_IQ1_DELTA);
            }
        }
    }
}

/* nb blocks of a grid i-quant type; false for other types. */
bool qb_dequant_iq_avx2(int type, const void *src, float *dst, int64_t nb)
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
