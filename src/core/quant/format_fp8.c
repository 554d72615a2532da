/* format_fp8.c — the format table's rows for 8-bit floats, OCP E4M3 ("fp8-e4m3", max 448)
 * and E5M2 ("fp8-e5m2", max 57344), scaled per tensor (the default) or per channel
 * ("-channel"): kernels/fmt_fp8_ref.c, f32-activation tiles in the forward pass, exported
 * as F16 of their values, and the "FP8 E4M3" / "FP8 E5M2" ladders. */
#include "format_traits.h"

#include <stdio.h>
#include <string.h>

static bool e5m2(const qb_format *f) { return f->kind == QB_FMT_FP8_E5M2; }

/* "fp8-e4m3[-tensor|-channel]" or the e5m2 one (which: the row's kind k). */
static qb_status parse_kind(qb_ctx *ctx, const char *name, const char *s, qb_format *out, bool *mine, qb_format_kind k)
{
    *mine = !strncmp(s, k == QB_FMT_FP8_E5M2 ? "fp8-e5m2" : "fp8-e4m3", 8);
    if (!*mine) return QB_OK;
    const char *rest = s + 8;
    qb_format f = {.kind = k};
    if (!*rest || !strcmp(rest, "-tensor")) {
        f.group = QB_GROUP_TENSOR;
    } else if (!strcmp(rest, "-channel")) {
        f.group = QB_GROUP_CHANNEL;
    } else {
        return qb_fail(ctx, QB_ERR_ARG, "format '%s': unknown option '%s' (expected tensor or channel)", name,
                       rest[0] == '-' ? rest + 1 : rest);
    }
    *out = f;
    return QB_OK;
}

static qb_status parse_e4m3(qb_ctx *ctx, const char *name, const char *s, qb_format *out, bool *mine)
{
    return parse_kind(ctx, name, s, out, mine, QB_FMT_FP8_E4M3);
}

static qb_status parse_e5m2(qb_ctx *ctx, const char *name, const char *s, qb_format *out, bool *mine)
{
    return parse_kind(ctx, name, s, out, mine, QB_FMT_FP8_E5M2);
}

static void name(const qb_format *f, char *buf, size_t cap)
{
    snprintf(buf, cap, "fp8-%s%s", e5m2(f) ? "e5m2" : "e4m3", f->group == QB_GROUP_CHANNEL ? "-channel" : "");
}

static bool equal(const qb_format *a, const qb_format *b)
{
    return (a->group == QB_GROUP_CHANNEL) == (b->group == QB_GROUP_CHANNEL);
}

static qb_status check(qb_ctx *ctx, const qb_format *f, const char *nm)
{
    if (f->group != QB_GROUP_TENSOR && f->group != QB_GROUP_CHANNEL)
        return qb_fail(ctx, QB_ERR_ARG, "format '%s': fp8 scales are per tensor or per channel, not groups of %d", nm,
                       f->group);
    return QB_OK;
}

static int64_t block(const qb_format *f) { return f->group == QB_GROUP_TENSOR || f->group == QB_GROUP_CHANNEL ? 1 : 0; }
static size_t row_bytes(const qb_format *f, int64_t n) { return (void)f, qb_fp8_row_bytes(n); }
static int bits(const qb_format *f) { return (void)f, 8; }
static int64_t clip_group(const qb_format *f, int64_t n) { return f->group == QB_GROUP_TENSOR ? 0 : n; }
static bool per_tensor(const qb_format *f) { return f->group == QB_GROUP_TENSOR; }

static bool quant_row(const qb_format *f, const float *x, void *dst, int64_t n, const qb_tensor_range *r)
{
    qb_kernels()->quant_fp8(e5m2(f), x, dst, n, r ? r->absmax : -1.0f); /* the reference's bytes */
    return true;
}

static void dequant_row(const qb_format *f, const void *src, float *dst, int64_t n)
{
    qb_kernels()->dequant_fp8(e5m2(f), src, dst, n); /* the reference's bits */
}

static void params(const qb_format *f, qb_fmt_params *p) { (void)f, *p = (qb_fmt_params){0}; }

static bool ladder_e4m3(int b, int group, qb_format *o)
{
    (void)b;
    *o = (qb_format){.kind = QB_FMT_FP8_E4M3, .bits = 8, .group = group};
    return true;
}

static bool ladder_e5m2(int b, int group, qb_format *o)
{
    (void)b;
    *o = (qb_format){.kind = QB_FMT_FP8_E5M2, .bits = 8, .group = group};
    return true;
}

#define GR_FP8 {QB_GROUP_TENSOR, QB_GROUP_CHANNEL, QB_FAMILY_END}
static const qb_format_family fam_e4m3[] = {
    {30, "FP8 E4M3", "fp8-e4m3", {8, 0}, GR_FP8, ladder_e4m3, qb_format_group_name_int},
};
static const qb_format_family fam_e5m2[] = {
    {31, "FP8 E5M2", "fp8-e5m2", {8, 0}, GR_FP8, ladder_e5m2, qb_format_group_name_int},
};

static const char *const sweep_e4m3[] = {"fp8-e4m3", NULL};
static const char *const sweep_e5m2[] = {"fp8-e5m2", NULL};

#define FP8_ROW(kname, parse_fn, tile_avx2, tile_avx512, fam, sw)                                            \
    {                                                                                                    \
        .kind = kname, .parse = parse_fn, .name = name, .equal = equal, .check = check, .block = block, \
        .row_bytes = row_bytes, .bits = bits, .clip_group = clip_group, .per_tensor = per_tensor,       \
        .quant_row = quant_row, .dequant_row = dequant_row, .params = params,                            \
        .tile = {[QB_ISA_AVX2] = tile_avx2, [QB_ISA_AVX512] = tile_avx512},                              \
        .export_target = qb_format_export_dequant, .sweep = sw, .families = fam, .n_families = 1,       \
    }
const qb_format_traits qb_format_row_fp8_e4m3 =
    FP8_ROW("fp8-e4m3", parse_e4m3, qb_fmt_tile_e4m3_avx2, qb_fmt_tile_e4m3_avx512, fam_e4m3, sweep_e4m3);
const qb_format_traits qb_format_row_fp8_e5m2 =
    FP8_ROW("fp8-e5m2", parse_e5m2, qb_fmt_tile_e5m2_avx2, qb_fmt_tile_e5m2_avx512, fam_e5m2, sweep_e5m2);
