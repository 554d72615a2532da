/* fmt_nvfp4_ref.c — NVFP4, the scalar spec: 16 E2M1 elements per block sharing an FP8 E4M3
 * scale, times one FP32 scale per tensor. The quantization rule is NVIDIA
 * TensorRT-Model-Optimizer's (modelopt/torch/quantization/qtensor/nvfp4_tensor.py,
 * NVFP4QTensor: get_weights_scaling_factor_2, get_weights_scaling_factor, quantize, _cast_fp4),
 * all in f32:
 *   global  g = amax(|tensor|) / (6 · 448)                     (6: E2M1's max, 448: E4M3's)
 *   block   s = amax(|block|) / (6 · g); s = 1 where it is 0; stored as E4M3, round to
 *           nearest even (torch's cast to float8_e4m3fn; s <= 448 up to rounding, saturated)
 *   element q = E2M1(x / (E4M3(s) · g)): round to nearest, ties to even (modelopt's bounds
 *           0.25 0.75 1.25 1.75 2.5 3.5 5 with the odd-bound bump are exactly that),
 *           saturating at ±6
 *   value   x' = e2m1(q) · (E4M3(s) · g)
 * Corner cases modelopt leaves to NaN / inf, fixed here so every stored value is finite: an
 * all-zero tensor (g = 0) stores g = 0, block scales 1.0 and codes 0; a block whose E4M3
 * scale rounds to 0 (|block| tiny against the tensor) stores codes 0. Both dequantize to 0,
 * as modelopt's would (it multiplies by the same zero). A negative element that rounds to
 * zero stores +0 (modelopt keeps the sign bit; the value is the same). NaNs are not handled.
 *
 * Storage: a row is { f32 g; then n/16 blocks of { u8 s_e4m3; u8 qs[8] } } (4 + 9·n/16
 * bytes: 4.5 bits per weight and the row's copy of g). Element j < 8 of a block sits in the
 * low nibble of qs[j], element j + 8 in its high nibble (as ggml packs block_mxfp4); E2M1
 * codes as fmt_mxfp4_ref.c's (bit 3 sign, magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6). */
#include "fmt_nvfp4.h"
#include "fmt.h"
#include "blocks.h"

#include <math.h>
#include <string.h>

typedef struct QB_PACKED {
    uint8_t s;     /* E4M3 block scale */
    uint8_t qs[8]; /* 16 E2M1 codes */
} nvfp4_block;
_Static_assert(sizeof(nvfp4_block) == 9, "nvfp4 block is 9 bytes");

size_t qb_nvfp4_row_bytes(int64_t n) { return 4 + (size_t)(n / QB_NVFP4_BLOCK) * sizeof(nvfp4_block); }

float qb_nvfp4_global_scale(float absmax) { return absmax / (6.0f * QB_FP8_E4M3_MAX); }

void qb_quant_row_nvfp4_ref(const float *x, void *dst, int64_t n, float tensor_absmax)
{
    float g = qb_nvfp4_global_scale(tensor_absmax);
    if (!(g > 0.0f) || !isfinite(g)) g = 0.0f;
    memcpy(dst, &g, 4);
    nvfp4_block *blocks = (nvfp4_block *)((uint8_t *)dst + 4);
    const float g6 = 6.0f * g;
    for (int64_t b = 0; b < n / QB_NVFP4_BLOCK; b++) {
        const float *xb = x + b * QB_NVFP4_BLOCK;
        nvfp4_block *o = &blocks[b];
        float amax = 0.0f;
        for (int i = 0; i < QB_NVFP4_BLOCK; i++) {
            const float a = fabsf(xb[i]);
            if (a > amax) amax = a;
        }
        float s = g > 0.0f ? amax / g6 : 0.0f;
        if (s == 0.0f) s = 1.0f;
        o->s = qb_fp8_e4m3_from_f32(s);
        const float d = qb_fp8_e4m3_to_f32(o->s) * g;
        memset(o->qs, 0, sizeof o->qs);
        if (!(d > 0.0f)) continue; /* g = 0, or the block scale rounded to 0: all zero */
        for (int j = 0; j < 8; j++) {
            const uint8_t lo = qb_e2m1_from_f32(xb[j] / d), hi = qb_e2m1_from_f32(xb[j + 8] / d);
            o->qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}

void qb_dequant_row_nvfp4_ref(const void *src, float *y, int64_t n)
{
    float g;
    memcpy(&g, src, 4);
    const nvfp4_block *blocks = (const nvfp4_block *)((const uint8_t *)src + 4);
    for (int64_t b = 0; b < n / QB_NVFP4_BLOCK; b++) {
        const nvfp4_block *o = &blocks[b];
        const float d = qb_fp8_e4m3_to_f32(o->s) * g;
        float *yb = y + b * QB_NVFP4_BLOCK;
        for (int j = 0; j < 8; j++) {
            yb[j] = qb_e2m1_to_f32(o->qs[j] & 15) * d;
            yb[j + 8] = qb_e2m1_to_f32(o->qs[j] >> 4) * d;
        }
    }
}
