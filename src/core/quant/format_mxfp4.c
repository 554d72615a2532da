/* format_mxfp4.c — the format table's row for OCP Microscaling FP4 ("mxfp4"): 32 E2M1
 * elements per block sharing an E8M0 scale (kernels/fmt_mxfp4_ref.c, ggml's block_mxfp4
 * layout), f32-activation tiles in the forward pass, exported as F16 of its values, and its
 * place on the workbench's 4-bit ladders. */
#include "format_traits.h"

#include <stdio.h>
#include <string.h>

static qb_status parse(qb_ctx *ctx, const char *name, const char *s, qb_format *out, bool *mine)
{
    (void)ctx, (void)name;
    *mine = !strcmp(s, "mxfp4");
    if (*mine) *out = (qb_format){.kind = QB_FMT_MXFP4, .group = QB_MXFP4_BLOCK};
    return QB_OK;
}

static void name(const qb_format *f, char *buf, size_t cap) { (void)f, snprintf(buf, cap, "mxfp4"); }
static bool equal(const qb_format *a, const qb_format *b) { return (void)a, (void)b, true; }
static int64_t block(const qb_format *f) { return (void)f, QB_MXFP4_BLOCK; }
static size_t row_bytes(const qb_format *f, int64_t n) { return (void)f, qb_mxfp4_row_bytes(n); }
static int bits(const qb_format *f) { return (void)f, 4; }
static int64_t clip_group(const qb_format *f, int64_t n) { return (void)f, (void)n, QB_MXFP4_BLOCK; }

static bool quant_row(const qb_format *f, const float *x, void *dst, int64_t n, const qb_tensor_range *r)
{
    (void)f, (void)r;
    qb_kernels()->quant_mxfp4(x, dst, n); /* the reference's bytes */
    return true;
}

static void dequant_row(const qb_format *f, const void *src, float *dst, int64_t n)
{
    (void)f;
    qb_kernels()->dequant_mxfp4(src, dst, n); /* the reference's bits */
}

static void params(const qb_format *f, qb_fmt_params *p) { (void)f, *p = (qb_fmt_params){0}; }

static bool ladder(int b, int group, qb_format *o)
{
    (void)b, (void)group;
    *o = (qb_format){.kind = QB_FMT_MXFP4, .bits = 4, .group = QB_MXFP4_BLOCK};
    return true;
}

static void group_name(int group, char *buf, size_t cap) { (void)group, snprintf(buf, cap, "block 32"); }

static const qb_format_family families[] = {
    {40, "MXFP4", "mxfp4", {4, 0}, {32, QB_FAMILY_END}, ladder, group_name},
};

static const char *const sweep[] = {"mxfp4", NULL};

const qb_format_traits qb_format_row_mxfp4 = {
    .kind = "mxfp4",
    .parse = parse,
    .name = name,
    .equal = equal,
    .block = block,
    .row_bytes = row_bytes,
    .bits = bits,
    .clip_group = clip_group,
    .quant_row = quant_row,
    .dequant_row = dequant_row,
    .params = params,
    .tile = {[QB_ISA_AVX2] = qb_fmt_tile_mxfp4_avx2, [QB_ISA_AVX512] = qb_fmt_tile_mxfp4_avx512},
    .export_target = qb_format_export_dequant,
    .sweep = sweep,
    .families = families,
    .n_families = 1,
};
