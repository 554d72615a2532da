/* fmt_int_ref.c — integer round-to-nearest (RTN) grids of 2..8 bits, symmetric or with a zero
 * point, per tensor, per row or in groups of 32/64/128/256 along the row: the scalar spec.
 *
 * Quantizer: exactly the GPTQ authors' reference (IST-DASLab/gptq quant.py: find_params and
 * quantize), the one ../shared/models/qb-docs-26m/fixtures/gptq-reference.json was computed
 * with, so our RTN errors can be compared with that file. For a group (or row, or tensor)
 * with smallest value xmin and largest xmax, maxq = 2^b - 1:
 *     xmin = min(xmin, 0), xmax = max(xmax, 0)
 *     sym:  xmax = max(|xmin|, xmax); xmin = -xmax where xmin < 0
 *     xmin = -1, xmax = +1 where both are 0
 *     scale = (xmax - xmin) / maxq
 *     zero  = 2^(b-1) (sym)   |   round(-xmin / scale) (asym)
 *     q     = clamp(round(x / scale) + zero, 0, maxq),   x' = scale * (q - zero)
 * round is round-half-to-even (torch.round = rintf), everything in f32 like the reference.
 * Note the symmetric convention: scale = 2·absmax / (2^b − 1) and q − zero spans the full
 * two's-complement range −2^(b−1) .. 2^(b−1)−1 (−absmax lands on −2^(b−1)·scale ≈ −absmax·16/15
 * for 4 bits, +absmax on 7·scale). A reference quirk kept on purpose: a symmetric group with no
 * negative value keeps xmin = 0, so scale = xmax / maxq and values above (2^(b−1)−1)·scale
 * (about half of xmax) clip.
 *
 * Storage of one row of n elements (little-endian; no alignment assumed):
 *   groups (group g = 32, 64, 128 or 256, n a multiple of g): n/g groups back to back, each
 *       f16 scale, [f16 zero (asym only; an integer 0..maxq, exact in f16)], g·b/8 code bytes.
 *       The scale is rounded to f16 *before* the codes are chosen (and the asym zero point is
 *       recomputed from the rounded scale), so stored scale and codes agree; this is the only
 *       departure from the f32 reference (relative scale error <= 2^-11).
 *   per row / per tensor: f32 scale, [f32 zero (asym)], ceil(n·b/8) code bytes (the last byte
 *       zero-padded). Per tensor, the tensor-wide scale is repeated in every row.
 *   Codes q (0..maxq, unsigned) form a little-endian bit stream: code i occupies bits
 *       i·b .. i·b+b−1, least significant first (b=2: four per byte, element 0 in bits 0-1;
 *       b=3: eight codes in three bytes; b=4: element 2i in the low nibble; b=8: one byte).
 *   So bits per weight = b + 16/g (sym) or b + 32/g (asym) for groups.
 * A scale that is 0 (a group of zeros with f16 underflow) stores q = zero, giving 0. */
#include "fmt.h"
#include "blocks.h"

#include "qb_types.h"

#include <math.h>
#include <string.h>

/* Headers of a group (f16 fields) and of a row (f32 fields); codes follow. */
typedef struct QB_PACKED { uint16_t d; } int_ghdr_sym;
typedef struct QB_PACKED { uint16_t d; uint16_t z; } int_ghdr_asym;
typedef struct QB_PACKED { float d; } int_rhdr_sym;
typedef struct QB_PACKED { float d; float z; } int_rhdr_asym;
_Static_assert(sizeof(int_ghdr_sym) == 2, "sym group header is one f16");
_Static_assert(sizeof(int_ghdr_asym) == 4, "asym group header is two f16");
_Static_assert(sizeof(int_rhdr_sym) == 4, "sym row header is one f32");
_Static_assert(sizeof(int_rhdr_asym) == 8, "asym row header is two f32");

#define F16_MAX_BITS 0x7bffu /* 65504 */

/* find_params with the adjusted xmin returned too (the asym zero point is recomputed from it
 * when the scale is rounded to f16). */
static void params(int bits, bool asym, float xmin, float xmax, float *scale, float *zero, float *xmin_adj)
{
    const float maxq = (float)((1 << bits) - 1);
    xmin = fminf(xmin, 0.0f);
    xmax = fmaxf(xmax, 0.0f);
    if (!asym) {
        xmax = fmaxf(fabsf(xmin), xmax);
        if (xmin < 0) xmin = -xmax;
    }
    if (xmin == 0 && xmax == 0) {
        xmin = -1.0f;
        xmax = 1.0f;
    }
    *scale = (xmax - xmin) / maxq;
    *zero = asym ? rintf(-xmin / *scale) : (float)(1 << (bits - 1));
    if (*scale == 0.0f && asym) *zero = 0.0f; /* subnormal range underflowed: store zeros */
    *xmin_adj = xmin;
}

void qb_int_params(int bits, bool asym, float xmin, float xmax, float *scale, float *zero)
{
    float xa;
    params(bits, asym, xmin, xmax, scale, zero, &xa);
}

size_t qb_int_row_bytes(int bits, int group, bool asym, int64_t n)
{
    if (group > 0) {
        size_t hdr = asym ? sizeof(int_ghdr_asym) : sizeof(int_ghdr_sym);
        return (size_t)(n / group) * (hdr + (size_t)group * (size_t)bits / 8);
    }
    size_t hdr = asym ? sizeof(int_rhdr_asym) : sizeof(int_rhdr_sym);
    return hdr + (size_t)((n * bits + 7) / 8);
}

static void min_max(const float *x, int64_t n, float *mn, float *mx)
{
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] < lo) lo = x[i]; /* NaNs ignored; no libm fminf call in the loop */
        if (x[i] > hi) hi = x[i];
    }
    if (lo > hi) lo = hi = 0.0f; /* empty or all NaN */
    *mn = lo;
    *mx = hi;
}

/* Codes of n values on the grid (d, z), appended to a little-endian bit stream at out;
 * returns the byte after the last one written (a partial last byte is zero-padded). */
static uint8_t *put_codes(const float *x, int64_t n, int bits, float d, float z, uint8_t *out)
{
    const float maxq = (float)((1 << bits) - 1);
    uint64_t acc = 0;
    int nb = 0;
    for (int64_t i = 0; i < n; i++) {
        float t = d != 0.0f ? rintf(x[i] / d) + z : z;
        if (!(t >= 0.0f)) t = 0.0f; /* also NaN */
        if (t > maxq) t = maxq;
        acc |= (uint64_t)(uint32_t)t << nb;
        nb += bits;
        while (nb >= 8) {
            *out++ = (uint8_t)acc;
            acc >>= 8;
            nb -= 8;
        }
    }
    if (nb > 0) *out++ = (uint8_t)acc;
    return out;
}

/* Inverse of put_codes: y[i] = d * (q_i - z). Returns the byte after the codes. */
static const uint8_t *get_codes(const uint8_t *in, int64_t n, int bits, float d, float z, float *y)
{
    const uint32_t mask = (1u << bits) - 1;
    uint64_t acc = 0;
    int nb = 0;
    for (int64_t i = 0; i < n; i++) {
        while (nb < bits) {
            acc |= (uint64_t)*in++ << nb;
            nb += 8;
        }
        y[i] = d * ((float)(acc & mask) - z);
        acc >>= bits;
        nb -= bits;
    }
    return in;
}

static uint16_t f16_scale(float d)
{
    if (!(d <= 65504.0f)) return F16_MAX_BITS; /* overflow (or NaN: unusable anyway) */
    return qb_f32_to_f16(d);
}

/* Contract (fmt.h): find_params on (mn, mx); for groups the scale rounded to f16 and the
 * asym zero point recomputed from it, clamped to the grid. */
size_t qb_int_grid(int bits, int group, bool asym, float mn, float mx, float *d, float *z, uint8_t *hdr)
{
    float xa;
    params(bits, asym, mn, mx, d, z, &xa);
    if (group <= 0) {
        if (asym) {
            int_rhdr_asym h = {*d, *z};
            memcpy(hdr, &h, sizeof h);
            return sizeof h;
        }
        int_rhdr_sym h = {*d};
        memcpy(hdr, &h, sizeof h);
        return sizeof h;
    }
    const float maxq = (float)((1 << bits) - 1);
    const uint16_t d16 = f16_scale(*d);
    *d = qb_f16_to_f32(d16);
    if (asym) {
        *z = *d != 0.0f ? rintf(-xa / *d) : 0.0f;
        if (!(*z >= 0.0f)) *z = 0.0f;
        if (*z > maxq) *z = maxq;
        int_ghdr_asym h = {d16, qb_f32_to_f16(*z)};
        memcpy(hdr, &h, sizeof h);
        return sizeof h;
    }
    int_ghdr_sym h = {d16};
    memcpy(hdr, &h, sizeof h);
    return sizeof h;
}

void qb_int_min_max(const float *x, int64_t n, float *mn, float *mx) { min_max(x, n, mn, mx); }

void qb_quant_row_int_ref(int bits, int group, bool asym, const float *x, void *dst, int64_t n,
                          const float *range)
{
    uint8_t *out = dst;
    float mn, mx, d, z;
    if (group <= 0) {
        if (range) {
            mn = range[0];
            mx = range[1];
        } else {
            min_max(x, n, &mn, &mx);
        }
        out += qb_int_grid(bits, group, asym, mn, mx, &d, &z, out);
        put_codes(x, n, bits, d, z, out);
        return;
    }
    for (int64_t g = 0; g < n; g += group) {
        min_max(x + g, group, &mn, &mx);
        out += qb_int_grid(bits, group, asym, mn, mx, &d, &z, out);
        out = put_codes(x + g, group, bits, d, z, out);
    }
}

/* Read the header of a row (group <= 0) or of a group at in: scale and zero point (the
 * symmetric zero 2^(bits-1) when there is none stored). Returns the first code byte. */
static const uint8_t *read_header(const uint8_t *in, int bits, int group, bool asym, float *d, float *z)
{
    *z = (float)(1 << (bits - 1));
    if (group <= 0) {
        if (asym) {
            int_rhdr_asym h;
            memcpy(&h, in, sizeof h);
            *d = h.d;
            *z = h.z;
            return in + sizeof h;
        }
        int_rhdr_sym h;
        memcpy(&h, in, sizeof h);
        *d = h.d;
        return in + sizeof h;
    }
    if (asym) {
        int_ghdr_asym h;
        memcpy(&h, in, sizeof h);
        *d = qb_f16_to_f32(h.d);
        *z = qb_f16_to_f32(h.z);
        return in + sizeof h;
    }
    int_ghdr_sym h;
    memcpy(&h, in, sizeof h);
    *d = qb_f16_to_f32(h.d);
    return in + sizeof h;
}

void qb_dequant_row_int_ref(int bits, int group, bool asym, const void *src, float *y, int64_t n)
{
    const uint8_t *in = src;
    int64_t gs = group > 0 ? group : n;
    for (int64_t g = 0; g < n; g += gs) {
        float d, z;
        in = read_header(in, bits, group, asym, &d, &z);
        in = get_codes(in, gs, bits, d, z, y + g);
    }
}

void qb_int_row_unpack(int bits, int group, bool asym, const void *src, int64_t n, uint8_t *q, float *scale,
                       float *zero)
{
    const uint8_t *in = src;
    const uint32_t mask = (1u << bits) - 1;
    int64_t gs = group > 0 ? group : n;
    for (int64_t g = 0; g < n; g += gs) {
        in = read_header(in, bits, group, asym, &scale[g / gs], &zero[g / gs]);
        uint64_t acc = 0;
        int nb = 0;
        for (int64_t i = g; i < g + gs; i++) {
            while (nb < bits) {
                acc |= (uint64_t)*in++ << nb;
                nb += 8;
            }
            q[i] = (uint8_t)(acc & mask);
            acc >>= bits;
            nb -= bits;
        }
    }
}
