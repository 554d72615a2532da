/* format_nf4.c — the format table's row for QLoRA's 4-bit NormalFloat ("nf4", and "nf4-dq"
 * with double-quantized absmax): 64-element blocks (kernels/fmt_nf4_ref.c), f32-activation
 * tiles in the forward pass, exported as F16 of its values, and the "NF4" ladder (whose
 * granularity 256 stands for double quantization). */
#include "format_traits.h"

#include <stdio.h>
#include <string.h>

static qb_status parse(qb_ctx *ctx, const char *name, const char *s, qb_format *out, bool *mine)
{
    (void)ctx, (void)name;
    *mine = !strcmp(s, "nf4") || !strcmp(s, "nf4-dq");
    if (*mine) *out = (qb_format){.kind = QB_FMT_NF4, .group = QB_NF4_BLOCK, .double_quant = s[3] != 0};
    return QB_OK;
}

static void name(const qb_format *f, char *buf, size_t cap) { snprintf(buf, cap, f->double_quant ? "nf4-dq" : "nf4"); }
static bool equal(const qb_format *a, const qb_format *b) { return a->double_quant == b->double_quant; }
static int64_t block(const qb_format *f) { return (void)f, QB_NF4_BLOCK; }
static size_t row_bytes(const qb_format *f, int64_t n) { return qb_nf4_row_bytes(f->double_quant, n); }
static int bits(const qb_format *f) { return (void)f, 4; }
static int64_t clip_group(const qb_format *f, int64_t n) { return (void)f, (void)n, QB_NF4_BLOCK; }

static bool quant_row(const qb_format *f, const float *x, void *dst, int64_t n, const qb_tensor_range *r)
{
    (void)r;
    qb_kernels()->quant_nf4(f->double_quant, x, dst, n); /* the reference's bytes */
    return true;
}

static void dequant_row(const qb_format *f, const void *src, float *dst, int64_t n)
{
    qb_kernels()->dequant_nf4(f->double_quant, src, dst, n); /* the reference's bits */
}

static void params(const qb_format *f, qb_fmt_params *p) { *p = (qb_fmt_params){.dq = f->double_quant}; }

static bool ladder(int b, int group, qb_format *o)
{
    (void)b;
    *o = (qb_format){.kind = QB_FMT_NF4, .group = QB_NF4_BLOCK, .double_quant = group == 256};
    return true;
}

static void group_name(int group, char *buf, size_t cap)
{
    snprintf(buf, cap, group == 256 ? "block 64, double quant" : "block 64");
}

static const qb_format_family families[] = {
    {20, "NF4", "nf4", {4, 0}, {64, 256, QB_FAMILY_END}, ladder, group_name},
};

static const char *const sweep[] = {"nf4", "nf4-dq", NULL};

const qb_format_traits qb_format_row_nf4 = {
    .kind = "nf4",
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
    .tile = {[QB_ISA_AVX2] = qb_fmt_tile_nf4_avx2, [QB_ISA_AVX512] = qb_fmt_tile_nf4_avx512},
    .export_target = qb_format_export_dequant,
    .sweep = sweep,
    .families = families,
    .n_families = 1,
};
