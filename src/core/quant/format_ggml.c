/* format_ggml.c — the format table's row for ggml storage types (F32, F16, BF16, Q8_0, the
 * legacy 32-blocks, the K-quants, IQ4_NL / IQ4_XS, IQ3_S / IQ3_XXS, TQ2_0 / TQ1_0, the grid
 * i-quants IQ2_XXS / IQ2_XS / IQ2_S / IQ1_S / IQ1_M): names are ggml's, rows are ggml's blocks
 * (kernels/blocks.h), quantize / dequantize are kernels/quant_ref.c (the quantizer through
 * the kernel table, byte-exact with llama-quantize), the forward pass takes the ggml type
 * paths of infer/matmul.c, export writes the bytes as they are. Also llama-quantize's
 * fallback table (qb_format_fallback) and the llama.cpp ladders of the workbench. */
#include "format_traits.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The ggml types that are weight storage formats (parse names, in this order for help). */
static const qb_type storable[] = {
    QB_TYPE_F32,  QB_TYPE_F16,  QB_TYPE_BF16, QB_TYPE_Q8_0, QB_TYPE_Q4_0,   QB_TYPE_Q4_1,   QB_TYPE_Q5_0, QB_TYPE_Q5_1,
    QB_TYPE_Q2_K, QB_TYPE_Q3_K, QB_TYPE_Q4_K, QB_TYPE_Q5_K, QB_TYPE_Q6_K, QB_TYPE_IQ4_NL, QB_TYPE_IQ4_XS,
    /* 3-bit i-quants and ternary */
    QB_TYPE_IQ3_S, QB_TYPE_IQ3_XXS, QB_TYPE_TQ2_0, QB_TYPE_TQ1_0,
    /* the grid i-quants */
    QB_TYPE_IQ2_XXS, QB_TYPE_IQ2_XS, QB_TYPE_IQ2_S, QB_TYPE_IQ1_S, QB_TYPE_IQ1_M,
};
/* nominal code bits of each, same order (TQ1_0's trits take 1.6 bits: listed at 1; the grid
 * i-quants: 2 for IQ2, 1 for IQ1) */
static const int storable_bits[] = {32, 16, 16, 8, 4, 4, 5, 5, 2, 3, 4, 5, 6, 4, 4,
                                    3, 3, 2, 1, 2, 2, 2, 1, 1};
enum { N_STORABLE = sizeof storable / sizeof storable[0] };
_Static_assert(sizeof storable_bits / sizeof storable_bits[0] == N_STORABLE, "one bits entry per type");

static int storable_index(int t)
{
    for (int i = 0; i < N_STORABLE; i++)
        if ((int)storable[i] == t) return i;
    return -1;
}

static bool is_float(int t) { return t == QB_TYPE_F32 || t == QB_TYPE_F16 || t == QB_TYPE_BF16; }

qb_format qb_format_ggml(qb_type t)
{
    qb_format f;
    memset(&f, 0, sizeof f);
    f.kind = QB_FMT_GGML;
    f.type = (int)t;
    return f;
}

static qb_status parse(qb_ctx *ctx, const char *name, const char *s, qb_format *out, bool *mine)
{
    (void)ctx, (void)name;
    for (int i = 0; i < N_STORABLE; i++) {
        if (!strcasecmp(s, qb_type_get(storable[i])->name)) {
            *out = qb_format_ggml(storable[i]);
            *mine = true;
            return QB_OK;
        }
    }
    *mine = false;
    return QB_OK;
}

static void name(const qb_format *f, char *buf, size_t cap)
{
    const qb_type_info *ti = qb_type_get(f->type);
    if (!ti) {
        snprintf(buf, cap, "ggml-type-%d", f->type);
        return;
    }
    size_t i = 0;
    for (; ti->name[i] && i + 1 < cap; i++) buf[i] = (char)tolower((unsigned char)ti->name[i]);
    buf[i] = 0;
}

static bool equal(const qb_format *a, const qb_format *b) { return a->type == b->type; }

static qb_status check(qb_ctx *ctx, const qb_format *f, const char *nm)
{
    if (!qb_type_get(f->type)) return qb_fail(ctx, QB_ERR_ARG, "unknown ggml type %d", f->type);
    if (storable_index(f->type) < 0) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s is not a weight storage format", nm);
    return QB_OK;
}

static int64_t block(const qb_format *f) { return storable_index(f->type) >= 0 ? qb_type_get(f->type)->blck : 0; }
static size_t row_bytes(const qb_format *f, int64_t n) { return qb_type_row_bytes((qb_type)f->type, n); }
static int bits(const qb_format *f)
{
    int i = storable_index(f->type);
    return i >= 0 ? storable_bits[i] : 0;
}

static int64_t clip_group(const qb_format *f, int64_t n)
{
    (void)n;
    return is_float(f->type) ? 0 : qb_type_get(f->type)->blck; /* floats: not a rounding grid */
}

static bool quant_row(const qb_format *f, const float *x, void *dst, int64_t n, const qb_tensor_range *range)
{
    (void)range;
    return qb_kernels()->quant_row(f->type, x, dst, n);
}

static bool quant_row_w(const qb_format *f, const float *x, void *dst, int64_t n, const float *w)
{
    return qb_kernels()->quant_row_w(f->type, x, dst, n, w); /* kernels/quant_weighted_ref.c's bytes */
}

static void dequant_row(const qb_format *f, const void *src, float *dst, int64_t n)
{
    qb_kernels()->dequant_row(f->type, src, dst, n); /* the reference's bits, in vectors */
}

static qb_export_target export_target(const qb_format *f, int64_t n)
{
    (void)n;
    return (qb_export_target){(qb_type)f->type, QB_EXPORT_AS_IS};
}

/* llama.cpp src/llama-quant.cpp (llama_tensor_get_type, build 4748 / c392e50 and later): when
 * ne0 is not a multiple of the chosen type's block, K-quants and the i-quants fall back to these,
 * and if ne0 is not a multiple of 32 either, to F16. */
static int fallback_type(int t)
{
    switch (t) {
    case QB_TYPE_Q2_K:
    case QB_TYPE_Q3_K:
    case QB_TYPE_IQ4_XS:
    case QB_TYPE_IQ3_XXS:
    case QB_TYPE_IQ3_S: return QB_TYPE_IQ4_NL;
    case QB_TYPE_TQ1_0:
    case QB_TYPE_TQ2_0: return QB_TYPE_Q4_0;
    case QB_TYPE_IQ2_XXS:
    case QB_TYPE_IQ2_XS:
    case QB_TYPE_IQ2_S:
    case QB_TYPE_IQ1_S:
    case QB_TYPE_IQ1_M: return QB_TYPE_IQ4_NL;
    case QB_TYPE_Q4_K: return QB_TYPE_Q5_0;
    case QB_TYPE_Q5_K: return QB_TYPE_Q5_1;
    case QB_TYPE_Q6_K: return QB_TYPE_Q8_0;
    default: return QB_TYPE_F16; /* llama-quantize throws here; we store F16 */
    }
}

qb_format qb_format_fallback(const qb_format *f, int64_t n)
{
    if (f->kind != QB_FMT_GGML || storable_index(f->type) < 0 || n <= 0) return *f;
    if (n % qb_type_get(f->type)->blck == 0) return *f; /* fits */
    int t = fallback_type(f->type);
    if (n % qb_type_get(t)->blck != 0) t = QB_TYPE_F16;
    return qb_format_ggml((qb_type)t);
}

/* ---- ladders ------------------------------------------------------------------------------- */

static bool kquant(int b, int group, qb_format *o)
{
    (void)group;
    static const qb_type t[9] = {0, 0, QB_TYPE_Q2_K, QB_TYPE_Q3_K, QB_TYPE_Q4_K, QB_TYPE_Q5_K, QB_TYPE_Q6_K, 0, QB_TYPE_Q8_0};
    if (b < 2 || b > 8 || b == 7) return false;
    *o = qb_format_ggml(t[b]);
    return true;
}

static bool legacy(int b, int group, qb_format *o)
{
    (void)group;
    qb_type t = b == 8 ? QB_TYPE_Q8_0 : b == 5 ? QB_TYPE_Q5_0 : b == 4 ? QB_TYPE_Q4_0 : QB_TYPE_COUNT;
    *o = qb_format_ggml(t);
    return t != QB_TYPE_COUNT;
}

static bool legacy_asym(int b, int group, qb_format *o)
{
    (void)group;
    qb_type t = b == 5 ? QB_TYPE_Q5_1 : b == 4 ? QB_TYPE_Q4_1 : QB_TYPE_COUNT;
    *o = qb_format_ggml(t);
    return t != QB_TYPE_COUNT;
}

static bool iq4(int b, int group, qb_format *o)
{
    (void)b;
    *o = qb_format_ggml(group == 256 ? QB_TYPE_IQ4_XS : QB_TYPE_IQ4_NL);
    return true;
}

/* 3-bit i-quants and ternary: one format each at its bits */
static bool iq3s(int b, int group, qb_format *o)
{
    (void)group;
    *o = qb_format_ggml(QB_TYPE_IQ3_S);
    return b == 3;
}

static bool iq3xxs(int b, int group, qb_format *o)
{
    (void)group;
    *o = qb_format_ggml(QB_TYPE_IQ3_XXS);
    return b == 3;
}

static bool ternary(int b, int group, qb_format *o)
{
    (void)group;
    *o = qb_format_ggml(b == 2 ? QB_TYPE_TQ2_0 : QB_TYPE_TQ1_0);
    return b == 1 || b == 2;
}

/* The grid i-quants by bits, in two ladders of super-blocks of 256: the larger types (3 bits
 * stands for IQ2_S at 2.56 bpw, 2 for IQ2_XS at 2.31, 1 for IQ1_M at 1.75) and the smaller
 * ones (2: IQ2_XXS at 2.06, 1: IQ1_S at 1.56). */
static bool iq_grid(int b, int group, qb_format *o)
{
    (void)group;
    const qb_type t = b == 3 ? QB_TYPE_IQ2_S : b == 2 ? QB_TYPE_IQ2_XS : b == 1 ? QB_TYPE_IQ1_M : QB_TYPE_COUNT;
    *o = qb_format_ggml(t);
    return t != QB_TYPE_COUNT;
}

static bool iq_grid_small(int b, int group, qb_format *o)
{
    (void)group;
    const qb_type t = b == 2 ? QB_TYPE_IQ2_XXS : b == 1 ? QB_TYPE_IQ1_S : QB_TYPE_COUNT;
    *o = qb_format_ggml(t);
    return t != QB_TYPE_COUNT;
}

static void gn_super(int group, char *buf, size_t cap) { (void)group, snprintf(buf, cap, "super-block 256"); }
static void gn_block32(int group, char *buf, size_t cap) { (void)group, snprintf(buf, cap, "block 32"); }
static void gn_iq4(int group, char *buf, size_t cap)
{
    snprintf(buf, cap, group == 256 ? "IQ4_XS, super-block 256" : "IQ4_NL, block 32");
}

static const qb_format_family families[] = {
    {60, "llama.cpp K", "kquant", {8, 6, 5, 4, 3, 2, 0}, {256, QB_FAMILY_END}, kquant, gn_super},
    {61, "llama.cpp legacy", "legacy", {8, 5, 4, 0}, {32, QB_FAMILY_END}, legacy, gn_block32},
    {62, "llama.cpp legacy asym", "legacy-asym", {5, 4, 0}, {32, QB_FAMILY_END}, legacy_asym, gn_block32},
    {63, "llama.cpp IQ4", "iq4", {4, 0}, {32, 256, QB_FAMILY_END}, iq4, gn_iq4},
    /* 3-bit i-quants and ternary */
    {70, "llama.cpp IQ3_S", "iq3s", {3, 0}, {256, QB_FAMILY_END}, iq3s, gn_super},
    {71, "llama.cpp IQ3_XXS", "iq3xxs", {3, 0}, {256, QB_FAMILY_END}, iq3xxs, gn_super},
    {72, "llama.cpp ternary (TQ2_0, TQ1_0)", "ternary", {2, 1, 0}, {256, QB_FAMILY_END}, ternary, gn_super},
    /* the grid i-quants */
    {64, "llama.cpp IQ2/IQ1", "iq-grid", {3, 2, 1, 0}, {256, QB_FAMILY_END}, iq_grid, gn_super},
    {65, "llama.cpp IQ2/IQ1 small", "iq-grid-small", {2, 1, 0}, {256, QB_FAMILY_END}, iq_grid_small, gn_super},
};

static const char *const sweep[] = {"f32",  "f16",  "bf16", "q8_0", "q6_k",   "q5_k",   "q5_1", "q5_0",
                                    "q4_k", "q4_1", "q4_0", "iq4_nl", "iq4_xs", "q3_k", "iq3_s", "iq3_xxs",
                                    "q2_k", "iq2_s", "iq2_xs", "iq2_xxs", "tq2_0", "iq1_m", "iq1_s", "tq1_0", NULL};

const qb_format_traits qb_format_row_ggml = {
    .kind = "ggml",
    .parse = parse,
    .name = name,
    .equal = equal,
    .check = check,
    .block = block,
    .row_bytes = row_bytes,
    .bits = bits,
    .clip_group = clip_group,
    .quant_row = quant_row,
    .quant_row_w = quant_row_w,
    .dequant_row = dequant_row,
    .export_target = export_target,
    .sweep = sweep,
    .families = families,
    .n_families = sizeof families / sizeof families[0],
};
