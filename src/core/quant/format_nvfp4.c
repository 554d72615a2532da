/* format_nvfp4.c — the format table's row for NVFP4 ("nvfp4"), NVIDIA's 4-bit float of
 * Blackwell GPUs: E2M1 values in 16-element blocks with an FP8 E4M3 scale per block and an
 * FP32 scale per tensor (the tensor's absmax / (6 · 448), repeated in every row). The spec,
 * its source (TensorRT-Model-Optimizer's NVFP4QTensor) and the byte layout are at the top of
 * kernels/fmt_nvfp4_ref.c; the forward pass runs f32-activation tiles (fmt_nvfp4_avx2.c,
 * fmt_nvfp4_avx512.c); GGUF has no NVFP4 type, so export writes F16 of its values and
 * records the conversion; the workbench offers it on the 4-bit ladders next to MXFP4. The
 * global scale couples a tensor's blocks, so AWQ's per-group clipping search skips it, as it
 * skips other per-tensor scales. */
#include "format_traits.h"
#include "fmt_nvfp4.h"

#include <stdio.h>
#include <string.h>

static qb_status parse(qb_ctx *ctx, const char *name, const char *s, qb_format *out, bool *mine)
{
    (void)ctx, (void)name;
    *mine = !strcmp(s, "nvfp4");
    if (*mine) *out = (qb_format){.kind = QB_FMT_NVFP4, .group = QB_NVFP4_BLOCK};
    return QB_OK;
}

static void name(const qb_format *f, char *buf, size_t cap) { (void)f, snprintf(buf, cap, "nvfp4"); }
static bool equal(const qb_format *a, const qb_format *b) { return (void)a, (void)b, true; }
static int64_t block(const qb_format *f) { return (void)f, QB_NVFP4_BLOCK; }
static size_t row_bytes(const qb_format *f, int64_t n) { return (void)f, qb_nvfp4_row_bytes(n); }
static int bits(const qb_format *f) { return (void)f, 4; }
static int64_t clip_group(const qb_format *f, int64_t n) { return (void)f, (void)n, 0; }
static bool per_tensor(const qb_format *f) { return (void)f, true; }

static bool quant_row(const qb_format *f, const float *x, void *dst, int64_t n, const qb_tensor_range *r)
{
    (void)f;
    float absmax = 0.0f;
    if (r) absmax = r->absmax;
    else
        for (int64_t i = 0; i < n; i++) absmax = x[i] > absmax ? x[i] : -x[i] > absmax ? -x[i] : absmax;
    qb_quant_row_nvfp4_ref(x, dst, n, absmax);
    return true;
}

static void dequant_row(const qb_format *f, const void *src, float *dst, int64_t n)
{
    (void)f;
    qb_dequant_row_nvfp4_ref(src, dst, n);
}

static void params(const qb_format *f, qb_fmt_params *p) { (void)f, *p = (qb_fmt_params){0}; }

static bool ladder(int b, int group, qb_format *o)
{
    (void)b, (void)group;
    *o = (qb_format){.kind = QB_FMT_NVFP4, .group = QB_NVFP4_BLOCK};
    return true;
}

static void group_name(int group, char *buf, size_t cap)
{
    (void)group, snprintf(buf, cap, "block 16, E4M3 scales, f32 tensor scale");
}

static const qb_format_family families[] = {
    {41, "NVFP4", "nvfp4", {4, 0}, {16, QB_FAMILY_END}, ladder, group_name},
};

static const char *const sweep[] = {"nvfp4", NULL};

const qb_format_traits qb_format_row_nvfp4 = {
    .kind = "nvfp4",
    .parse = parse,
    .name = name,
    .equal = equal,
    .block = block,
    .row_bytes = row_bytes,
    .bits = bits,
    .clip_group = clip_group,
    .per_tensor = per_tensor,
    .quant_row = quant_row,
    .dequant_row = dequant_row,
    .params = params,
    .tile = {[QB_ISA_AVX2] = qb_fmt_tile_nvfp4_avx2, [QB_ISA_AVX512] = qb_fmt_tile_nvfp4_avx512},
    .export_target = qb_format_export_dequant,
    .sweep = sweep,
    .families = families,
    .n_families = 1,
};
