/* format_int.c — the format table's row for integer round-to-nearest grids
 * ("int<bits>[-tensor|-channel|-g32|-g64|-g128|-g256][-sym|-asym]"): GPTQ's reference
 * quantizer (kernels/fmt_int_ref.c), the forward pass's integer paths with 8-bit activations
 * (fmt_int_q8_*.c, gemv_int_avx512.c) and the f32 tiles (fmt_dot_*.c), the export's
 * code-for-code repack into Q4_0 / Q5_0 / Q8_0 / Q4_1 / Q5_1 (export_repack.h), and the
 * "RTN sym" / "RTN asym" ladders. */
#include "format_traits.h"
#include "blocks.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool group_is_valid(int g)
{
    return g == QB_GROUP_TENSOR || g == QB_GROUP_CHANNEL || g == 32 || g == 64 || g == 128 || g == 256;
}

/* One "-option": granularity or sym/asym. */
static qb_status int_option(qb_ctx *ctx, const char *name, const char *opt, qb_format *f, bool *have_gran,
                            bool *have_sym)
{
    if (!strcmp(opt, "sym") || !strcmp(opt, "asym")) {
        if (*have_sym) return qb_fail(ctx, QB_ERR_ARG, "format '%s': sym/asym given twice", name);
        *have_sym = true;
        f->asym = opt[0] == 'a';
        return QB_OK;
    }
    int g;
    if (!strcmp(opt, "tensor")) {
        g = QB_GROUP_TENSOR;
    } else if (!strcmp(opt, "channel")) {
        g = QB_GROUP_CHANNEL;
    } else if (opt[0] == 'g' && isdigit((unsigned char)opt[1])) {
        char *end;
        long v = strtol(opt + 1, &end, 10);
        if (*end) return qb_fail(ctx, QB_ERR_ARG, "format '%s': unknown option '%s'", name, opt);
        if (v != 32 && v != 64 && v != 128 && v != 256)
            return qb_fail(ctx, QB_ERR_ARG, "format '%s': group %ld not one of 32, 64, 128, 256", name, v);
        g = (int)v;
    } else {
        return qb_fail(ctx, QB_ERR_ARG,
                       "format '%s': unknown option '%s' (expected tensor, channel, g32, g64, g128, g256, sym "
                       "or asym)",
                       name, opt);
    }
    if (*have_gran) return qb_fail(ctx, QB_ERR_ARG, "format '%s': granularity given twice", name);
    *have_gran = true;
    f->group = g;
    return QB_OK;
}

/* "int<bits>[-opt]…" with lower-cased s; name is the user's spelling for messages. */
static qb_status parse(qb_ctx *ctx, const char *name, const char *s, qb_format *f, bool *mine)
{
    *mine = !strncmp(s, "int", 3);
    if (!*mine) return QB_OK;
    const char *p = s + 3;
    if (!isdigit((unsigned char)*p)) return qb_fail(ctx, QB_ERR_ARG, "format '%s': missing bits after 'int'", name);
    long bits = 0;
    while (isdigit((unsigned char)*p) && bits < 1000) bits = bits * 10 + (*p++ - '0');
    if (isdigit((unsigned char)*p) || (*p && *p != '-'))
        return qb_fail(ctx, QB_ERR_ARG, "unknown format '%s'", name);
    if (bits < 2 || bits > 8) return qb_fail(ctx, QB_ERR_ARG, "format '%s': bits %ld out of range 2..8", name, bits);
    memset(f, 0, sizeof *f);
    f->kind = QB_FMT_INT;
    f->bits = (int)bits;
    f->group = QB_GROUP_CHANNEL;
    bool have_gran = false, have_sym = false;
    while (*p == '-') {
        const char *q = ++p;
        while (*p && *p != '-') p++;
        char opt[32];
        size_t len = (size_t)(p - q);
        if (len == 0 || len >= sizeof opt) return qb_fail(ctx, QB_ERR_ARG, "format '%s': empty or overlong option", name);
        memcpy(opt, q, len);
        opt[len] = 0;
        qb_status st = int_option(ctx, name, opt, f, &have_gran, &have_sym);
        if (st) return st;
    }
    return QB_OK;
}

static void name(const qb_format *f, char *buf, size_t cap)
{
    char gran[16];
    if (f->group == QB_GROUP_TENSOR) snprintf(gran, sizeof gran, "tensor");
    else if (f->group == QB_GROUP_CHANNEL) snprintf(gran, sizeof gran, "channel");
    else snprintf(gran, sizeof gran, "g%d", f->group);
    snprintf(buf, cap, "int%d-%s%s", f->bits, gran, f->asym ? "-asym" : "");
}

static bool equal(const qb_format *a, const qb_format *b)
{
    return a->bits == b->bits && a->group == b->group && a->asym == b->asym;
}

static qb_status check(qb_ctx *ctx, const qb_format *f, const char *nm)
{
    if (f->bits < 2 || f->bits > 8) return qb_fail(ctx, QB_ERR_ARG, "format '%s': bits %d out of range 2..8", nm, f->bits);
    if (!group_is_valid(f->group))
        return qb_fail(ctx, QB_ERR_ARG, "format '%s': group %d not one of 32, 64, 128, 256", nm, f->group);
    return QB_OK;
}

static int64_t block(const qb_format *f)
{
    if (f->bits < 2 || f->bits > 8 || !group_is_valid(f->group)) return 0;
    return f->group > 0 ? f->group : 1;
}

static size_t row_bytes(const qb_format *f, int64_t n) { return qb_int_row_bytes(f->bits, f->group, f->asym, n); }
static int bits(const qb_format *f) { return f->bits; }
static int64_t clip_group(const qb_format *f, int64_t n)
{
    return f->group == QB_GROUP_TENSOR ? 0 : f->group > 0 ? f->group : n;
}
static bool per_tensor(const qb_format *f) { return f->group == QB_GROUP_TENSOR; }

static bool quant_row(const qb_format *f, const float *x, void *dst, int64_t n, const qb_tensor_range *r)
{
    const float range[2] = {r ? r->min : 0.0f, r ? r->max : 0.0f};
    qb_kernels()->quant_int(f->bits, f->group, f->asym, x, dst, n, r ? range : NULL); /* the reference's bytes */
    return true;
}

static void dequant_row(const qb_format *f, const void *src, float *dst, int64_t n)
{
    qb_kernels()->dequant_int(f->bits, f->group, f->asym, src, dst, n); /* the reference's bits */
}

static void params(const qb_format *f, qb_fmt_params *p)
{
    *p = (qb_fmt_params){.bits = f->bits, .group = f->group, .asym = f->asym};
}

/* Groups of whole 32-blocks repack code for code: symmetric 2..4 → Q4_0, 5 → Q5_0, 6..8 → Q8_0;
 * asymmetric 2..4 → Q4_1, 5 → Q5_1 (offset rounded to f16), 6..7 → Q8_0; 8-bit asymmetric
 * and other shapes are dequantized. */
static qb_export_target export_target(const qb_format *f, int64_t n)
{
    qb_export_target dq = {QB_TYPE_F16, QB_EXPORT_DEQUANT};
    if (n % QB_QK32 != 0 || (f->group > 0 && f->group % QB_QK32 != 0)) return dq;
    qb_export_kind exact = f->group > 0 ? QB_EXPORT_EXACT : QB_EXPORT_ROUNDED;
    if (!f->asym) {
        qb_type t = f->bits <= 4 ? QB_TYPE_Q4_0 : f->bits == 5 ? QB_TYPE_Q5_0 : QB_TYPE_Q8_0;
        return (qb_export_target){t, exact};
    }
    if (f->bits <= 4) return (qb_export_target){QB_TYPE_Q4_1, QB_EXPORT_ROUNDED};
    if (f->bits == 5) return (qb_export_target){QB_TYPE_Q5_1, QB_EXPORT_ROUNDED};
    if (f->bits <= 7) return (qb_export_target){QB_TYPE_Q8_0, exact}; /* |q - zero| <= 127 */
    return dq;
}

static bool rtn(int b, int group, bool asym, qb_format *o)
{
    *o = (qb_format){.kind = QB_FMT_INT, .bits = b, .group = group, .asym = asym};
    return b >= 2 && b <= 8 && group_is_valid(group);
}
static bool rtn_sym(int b, int group, qb_format *o) { return rtn(b, group, false, o); }
static bool rtn_asym(int b, int group, qb_format *o) { return rtn(b, group, true, o); }

#define GR_INT {QB_GROUP_TENSOR, QB_GROUP_CHANNEL, 128, 64, 32, QB_FAMILY_END}
static const qb_format_family families[] = {
    {10, "RTN sym", "rtn", {8, 7, 6, 5, 4, 3, 2, 0}, GR_INT, rtn_sym, qb_format_group_name_int},
    {11, "RTN asym", "rtn-asym", {8, 7, 6, 5, 4, 3, 2, 0}, GR_INT, rtn_asym, qb_format_group_name_int},
};

static const char *const sweep[] = {"int8-channel", "int4-g128", NULL};

const qb_format_traits qb_format_row_int = {
    .kind = "int",
    .parse = parse,
    .name = name,
    .asym_option = true,
    .equal = equal,
    .check = check,
    .block = block,
    .block_is_group = true,
    .row_bytes = row_bytes,
    .bits = bits,
    .clip_group = clip_group,
    .per_tensor = per_tensor,
    .quant_row = quant_row,
    .dequant_row = dequant_row,
    .params = params,
    .act = QB_FMT_ACT_INT_Q8,
    .tile = {[QB_ISA_AVX2] = qb_fmt_tile_int_avx2, [QB_ISA_AVX512] = qb_fmt_tile_int_avx512},
    .export_target = export_target,
    .sweep = sweep,
    .families = families,
    .n_families = sizeof families / sizeof families[0],
};
