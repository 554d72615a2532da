/* fmt_nvfp4.h — the row functions of NVFP4 (NVIDIA's 4-bit float of Blackwell GPUs): E2M1
 * values in 16-element blocks, each block with an FP8 E4M3 scale, and an FP32 scale for the
 * whole tensor, repeated at the start of every row so rows stay self-contained. The layout
 * and the exact quantization rule are at the top of fmt_nvfp4_ref.c (the spec); the vector
 * tiles (fmt_nvfp4_avx2.c, fmt_nvfp4_avx512.c) are qb_fmt_tile_fn entries (kernels.h) that
 * decode every weight bit-identically to it. Private to libqb: core/quant/format_nvfp4.c
 * validates every argument first (n a positive multiple of 16). */
#ifndef QB_FMT_NVFP4_H
#define QB_FMT_NVFP4_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct qb_fmt_params;

#define QB_NVFP4_BLOCK 16

/* Bytes of a row of n elements: 4 + n/16 · 9 (4.5 bits per weight plus the row's f32). */
size_t qb_nvfp4_row_bytes(int64_t n);
/* The per-tensor scale of a tensor whose largest |value| is absmax: absmax / (6 · 448). */
float qb_nvfp4_global_scale(float absmax);
/* Quantize one row with the tensor's absmax (the global scale is computed from it). */
void qb_quant_row_nvfp4_ref(const float *x, void *dst, int64_t n, float tensor_absmax);
void qb_dequant_row_nvfp4_ref(const void *src, float *y, int64_t n);

/* An E4M3 block scale's value, inline for the tiles' inner loops: bit-identical to
 * qb_fp8_e4m3_to_f32 (fmt.h) for every code (test-nvfp4.c checks all 256). */
static inline float qb_nvfp4_scale(uint8_t c)
{
    const int e = (c >> 3) & 15, m = c & 7;
    float v;
    if (e == 0) {
        v = (float)m * 0x1p-9f; /* subnormal: m/8 · 2^-6 */
    } else if (e == 15 && m == 7) {
        v = NAN;
    } else {
        const uint32_t b = (uint32_t)(e + 120) << 23 | (uint32_t)m << 20;
        memcpy(&v, &b, sizeof v);
    }
    return (c & 0x80) ? -v : v;
}

void qb_fmt_tile_nvfp4_avx2(const struct qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const float *x,
                            size_t ldx, int nc, float *y, size_t ldy);
void qb_fmt_tile_nvfp4_avx512(const struct qb_fmt_params *f, int n, const void *w, size_t wst, int nr,
                              const float *x, size_t ldx, int nc, float *y, size_t ldy);

#endif
