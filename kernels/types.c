/* types.c — the table of tensor storage types (block size, bytes per block, name) and the
 * scalar half-precision conversions declared in qb_types.h. Block sizes follow ggml's
 * ggml-common.h. */
#include "qb_types.h"

#include <string.h>
#include <strings.h>

static const qb_type_info type_table[QB_TYPE_COUNT] = {
    [QB_TYPE_F32] = {"F32", 1, 4},
    [QB_TYPE_F16] = {"F16", 1, 2},
    [QB_TYPE_BF16] = {"BF16", 1, 2},
    [QB_TYPE_Q4_0] = {"Q4_0", 32, 18},
    [QB_TYPE_Q4_1] = {"Q4_1", 32, 20},
    [QB_TYPE_Q5_0] = {"Q5_0", 32, 22},
    [QB_TYPE_Q5_1] = {"Q5_1", 32, 24},
    [QB_TYPE_Q8_0] = {"Q8_0", 32, 34},
    [QB_TYPE_Q8_1] = {"Q8_1", 32, 36},
    [QB_TYPE_Q2_K] = {"Q2_K", 256, 84},
    [QB_TYPE_Q3_K] = {"Q3_K", 256, 110},
    [QB_TYPE_Q4_K] = {"Q4_K", 256, 144},
    [QB_TYPE_Q5_K] = {"Q5_K", 256, 176},
    [QB_TYPE_Q6_K] = {"Q6_K", 256, 210},
    [QB_TYPE_Q8_K] = {"Q8_K", 256, 292},
    [QB_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18},
    [QB_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136},
    /* ternary and 3-bit i-quants */
    [QB_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98},
    [QB_TYPE_IQ3_S] = {"IQ3_S", 256, 110},
    [QB_TYPE_TQ1_0] = {"TQ1_0", 256, 54},
    [QB_TYPE_TQ2_0] = {"TQ2_0", 256, 66},
    [QB_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66},
    [QB_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74},
    [QB_TYPE_IQ2_S] = {"IQ2_S", 256, 82},
    [QB_TYPE_IQ1_S] = {"IQ1_S", 256, 50},
    [QB_TYPE_IQ1_M] = {"IQ1_M", 256, 56},
};

const qb_type_info *qb_type_get(int t)
{
    if (t < 0 || t >= QB_TYPE_COUNT || !type_table[t].name) return NULL;
    return &type_table[t];
}

size_t qb_type_row_bytes(qb_type t, int64_t n)
{
    const qb_type_info *ti = qb_type_get(t);
    if (!ti) return 0;
    return (size_t)(n / ti->blck) * (size_t)ti->size;
}

int qb_type_from_name(const char *name)
{
    for (int t = 0; t < QB_TYPE_COUNT; t++)
        if (type_table[t].name && strcasecmp(type_table[t].name, name) == 0) return t;
    return -1;
}

float qb_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            man &= 0x3ff;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t qb_f32_to_f16(float f)
{
    /* round-to-nearest-even, as the F16C instruction does */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (absx < 0x38800000u) { /* result is subnormal or zero */
        if (absx < 0x33000000u) return (uint16_t)sign;
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14 - (e - 127) + 13 - 1 ... */
        uint32_t half = m >> (shift);
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t e = (absx >> 23) - 127 + 15;
    uint32_t m = absx & 0x7fffff;
    uint32_t h = (e << 10) | (m >> 13);
    uint32_t rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float qb_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
