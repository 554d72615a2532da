/* fmt_mxfp4_ref.c — MXFP4 (OCP Microscaling Formats spec v1.0): blocks of 32 FP4 (E2M1)
 * elements sharing one 8-bit power-of-two scale (E8M0): the scalar spec.
 *
 * Scale: for a block with absmax m > 0, the shared exponent is X = floor(log2 m) − 2 (2 is the
 * largest exponent of E2M1, whose largest value is 6 = 1.5 · 2^2), clamped to −127..127 and
 * stored as the E8M0 byte X + 127 (255 would be NaN and is never written). An all-zero block
 * stores X = −127 (byte 0). floor(log2 m) is taken exactly from the float's exponent.
 * Elements: v = x / 2^X rounded to the nearest E2M1 value, ties to even, saturating at ±6
 * (so block values in [6·2^X, 8·2^X) clip, as the spec's scale rule implies). E2M1 code:
 * bit 3 sign, bits 2-1 exponent (bias 1), bit 0 mantissa; magnitudes by code 0..7:
 * 0, 0.5, 1, 1.5, 2, 3, 4, 6. A value that rounds to zero stores +0 (code 0).
 *
 * Storage: a row is n/32 blocks of { u8 e; u8 qs[16] } (17 bytes: 4.25 bits per weight);
 * element j < 16 in the low nibble of qs[j], element j + 16 in its high nibble — the layout of
 * ggml's block_mxfp4, so rows can be handed to ggml-based tools as they are. */
#include "fmt.h"
#include "blocks.h"

#include <math.h>
#include <string.h>

typedef struct QB_PACKED {
    uint8_t e;      /* E8M0 shared scale: 2^(e - 127) */
    uint8_t qs[16]; /* 32 E2M1 codes */
} mxfp4_block;
_Static_assert(sizeof(mxfp4_block) == 17, "mxfp4 block is 17 bytes");

static const float e2m1_values[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
/* midpoints between neighbouring magnitudes; at a tie the even code wins */
static const float e2m1_mid[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};

/* max ignoring a NaN in b (fmaxf is a libm call in a hot loop without -ffast-math) */
static inline float max_f(float a, float b) { return b > a ? b : a; }

uint8_t qb_e2m1_from_f32(float v)
{
    const float a = fabsf(v);
    uint8_t c = 0;
    for (int i = 0; i < 7; i++)
        if (a > e2m1_mid[i] || (a == e2m1_mid[i] && (i & 1))) c = (uint8_t)(i + 1);
    if (c != 0 && signbit(v)) c |= 8;
    return c;
}

float qb_e2m1_to_f32(uint8_t c)
{
    const float a = e2m1_values[c & 7];
    return (c & 8) ? -a : a;
}

size_t qb_mxfp4_row_bytes(int64_t n)
{
    return (size_t)(n / QB_MXFP4_BLOCK) * sizeof(mxfp4_block);
}

void qb_quant_row_mxfp4_ref(const float *x, void *dst, int64_t n)
{
    mxfp4_block *blocks = dst;
    for (int64_t j = 0; j < n / QB_MXFP4_BLOCK; j++) {
        const float *xb = x + j * QB_MXFP4_BLOCK;
        float m = 0.0f;
        for (int i = 0; i < QB_MXFP4_BLOCK; i++) m = max_f(m, fabsf(xb[i]));
        int X = -127;
        if (m > 0.0f && isfinite(m)) {
            int e2;
            frexpf(m, &e2); /* m = f · 2^e2, f in [0.5, 1): floor(log2 m) = e2 − 1 */
            X = e2 - 1 - 2;
            if (X < -127) X = -127;
            if (X > 127) X = 127;
        } else if (isinf(m)) {
            X = 127; /* finite values round to 0, infinities to 6 · 2^127 = inf */
        }
        mxfp4_block b;
        b.e = (uint8_t)(X + 127);
        const float inv = ldexpf(1.0f, -X); /* exact power of two, finite for X >= -127 */
        for (int i = 0; i < 16; i++)
            b.qs[i] = (uint8_t)(qb_e2m1_from_f32(xb[i] * inv) | qb_e2m1_from_f32(xb[i + 16] * inv) << 4);
        memcpy(&blocks[j], &b, sizeof b);
    }
}

void qb_dequant_row_mxfp4_ref(const void *src, float *y, int64_t n)
{
    const mxfp4_block *blocks = src;
    for (int64_t j = 0; j < n / QB_MXFP4_BLOCK; j++) {
        mxfp4_block b;
        memcpy(&b, &blocks[j], sizeof b);
        const float d = b.e == 255 ? NAN : ldexpf(1.0f, (int)b.e - 127);
        float *yb = y + j * QB_MXFP4_BLOCK;
        for (int i = 0; i < 16; i++) {
            yb[i] = qb_e2m1_to_f32(b.qs[i] & 15) * d;
            yb[i + 16] = qb_e2m1_to_f32(b.qs[i] >> 4) * d;
        }
    }
}
