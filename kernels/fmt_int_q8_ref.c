/* fmt_int_q8_ref.c — the integer path of the INT formats (fmt_int_ref.c rows) in the forward
 * pass, scalar spec: activations quantized once per matmul to 8 bits in 32-element blocks
 * (Q8_0, exactly as for the ggml formats), then per block an exact int32 dot of the weight
 * codes with the activation bytes, corrected for the zero point with the block's sum of q, and
 * scaled by weight scale times activation scale (fmt.h, qb_int_tile_q8_ref). This is what
 * llama.cpp does for its own formats; it replaces f32 activations for INT weights whose
 * groups hold whole activation blocks. The vector versions (fmt_int_q8_avx2.c,
 * fmt_int_q8_avx512.c) compute the same integers and differ only in float summation order. */
#include "fmt.h"
#include "blocks.h"
#include "unaligned.h"

#include "qb_types.h"

#include <math.h>
#include <string.h>

void qb_int_act_from_q8_0(int n, const void *q8_0, void *act)
{
    const qb_block_q8_0 *b = q8_0;
    int8_t *q = act;
    float *d = (float *)((char *)act + n);
    int32_t *s4 = (int32_t *)((char *)act + n + (size_t)n / 8);
    for (int i = 0; i < n / 32; i++) {
        for (int j = 0; j < 32; j++) q[32 * i + j] = b[i].qs[j];
        for (int j = 0; j < 8; j++) s4[8 * i + j] = b[i].qs[4 * j] + b[i].qs[4 * j + 1] + b[i].qs[4 * j + 2] + b[i].qs[4 * j + 3];
        d[i] = qb_f16_to_f32(b[i].d);
    }
}

/* Scale and integer zero point of the group (or row) whose header is at h; returns the
 * first code byte. Same fields as fmt_int_ref.c's read_header. */
static const uint8_t *header(const qb_fmt_params *f, const uint8_t *h, float *d, int32_t *z)
{
    *z = 1 << (f->bits - 1);
    if (f->group > 0) {
        *d = qb_f16_to_f32(rd16(h));
        if (!f->asym) return h + 2;
        *z = (int32_t)lrintf(qb_f16_to_f32(rd16(h + 2)));
        return h + 4;
    }
    *d = rdf32(h);
    if (!f->asym) return h + 4;
    *z = (int32_t)lrintf(rdf32(h + 4));
    return h + 8;
}

/* The 32 codes of block k of a code stream starting at p (b bits each, little-endian). */
static void block_codes(const uint8_t *p, int bits, int k, uint8_t *out)
{
    const uint8_t *in = p + (size_t)k * 4 * bits; /* 32 codes = 4·bits bytes */
    const uint32_t mask = (1u << bits) - 1;
    uint32_t acc = 0;
    int nb = 0;
    for (int i = 0; i < 32; i++) {
        while (nb < bits) {
            acc |= (uint32_t)*in++ << nb;
            nb += 8;
        }
        out[i] = (uint8_t)(acc & mask);
        acc >>= bits;
        nb -= bits;
    }
}

void qb_int_tile_q8_ref(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const void *act, size_t ast,
                        int nc, float *y, size_t ldy)
{
    const int g = f->group > 0 ? f->group : n, bpg = g / 32; /* activation blocks per group */
    const size_t hdr = f->group > 0 ? (f->asym ? 4 : 2) : (f->asym ? 8 : 4);
    const size_t gstride = hdr + (size_t)g * (size_t)f->bits / 8;
    for (int r = 0; r < nr; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * wst;
        for (int c = 0; c < nc; c++) {
            const char *a = (const char *)act + (size_t)c * ast;
            const int8_t *q = qb_int_act_q(a);
            const float *dx = qb_int_act_d(a, n);
            const int32_t *s4 = qb_int_act_s4(a, n);
            float sum = 0.0f;
            for (int b = 0; b < n / 32; b++) {
                float dw;
                int32_t z;
                const uint8_t *codes = header(f, row + (size_t)(b / bpg) * gstride, &dw, &z);
                uint8_t u[32];
                block_codes(codes, f->bits, b % bpg, u);
                int32_t dot = 0, sq = 0;
                for (int i = 0; i < 32; i++) dot += (int32_t)u[i] * q[32 * b + i];
                for (int j = 0; j < 8; j++) sq += s4[8 * b + j];
                sum += (dw * dx[b]) * (float)(dot - z * sq);
            }
            y[(size_t)c * ldy + r] = sum;
        }
    }
}

/* ---- the one-token layout of gemv_int_avx512.c (fmt.h) ---------------------------------- */

bool qb_int_gemv_supported(const qb_fmt_params *f, int n)
{
    if (n <= 0) return false;
    if (f->bits == 4) return f->group > 0 ? f->group == 128 || f->group == 256 : n % 128 == 0;
    if (f->bits == 8) return f->group > 0 ? f->group == 64 || f->group == 128 || f->group == 256 : n % 64 == 0;
    return false;
}

size_t qb_int_gemv_act_bytes(int bits, int n) { return bits == 4 ? (size_t)n / 128 * 256 : (size_t)n / 64 * 192; }

void qb_int_gemv_act(int bits, const void *q8_0, int n, void *xg)
{
    const qb_block_q8_0 *b = q8_0;
    uint8_t *o = xg;
    const int per = bits == 4 ? 128 : 64; /* elements a chunk */
    for (int c = 0; c < n / per; c++, o += bits == 4 ? 256 : 192) {
        int8_t *q = (int8_t *)o;
        int32_t ns[16];
        float dx[16];
        for (int l = 0; l < 16; l++) {
            int s = 0;
            const int e0 = c * per + l * (per / 16); /* the lane's first element */
            for (int i = 0; i < per / 16; i++) {
                const int e = e0 + i;
                const int8_t v = b[e / 32].qs[e % 32];
                s += v;
                if (bits == 8) q[4 * l + i] = v;
                else q[(e - c * per) % 2 ? 64 + (e - c * per) / 2 : (e - c * per) / 2] = v;
            }
            ns[l] = -s;
            dx[l] = qb_f16_to_f32(b[e0 / 32].d);
        }
        memcpy(o + (bits == 4 ? 128 : 64), ns, sizeof ns);
        memcpy(o + (bits == 4 ? 192 : 128), dx, sizeof dx);
    }
}
