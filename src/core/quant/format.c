/* format.c — quantization formats as values: parsing and naming ("q4_k", "int4-g128-asym",
 * "nf4-dq", "fp8-e4m3-channel", "mxfp4"), validity for a row length, llama-quantize's
 * fallback table, storage size, and the whole-matrix quantize / per-row dequantize entry
 * points that dispatch to the scalar row kernels (kernels/quant_ref.c for ggml types,
 * kernels/fmt_*_ref.c for the others). */
#include "format.h"

#include "fmt.h"
#include "kernels.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The ggml types that are weight storage formats (parse names, in this order for help). */
static const qb_type ggml_storable[] = {
    QB_TYPE_F32,  QB_TYPE_F16,  QB_TYPE_BF16, QB_TYPE_Q8_0, QB_TYPE_Q4_0,   QB_TYPE_Q4_1,   QB_TYPE_Q5_0, QB_TYPE_Q5_1,
    QB_TYPE_Q2_K, QB_TYPE_Q3_K, QB_TYPE_Q4_K, QB_TYPE_Q5_K, QB_TYPE_Q6_K, QB_TYPE_IQ4_NL, QB_TYPE_IQ4_XS,
};
enum { N_STORABLE = sizeof ggml_storable / sizeof ggml_storable[0] };

static bool ggml_is_storable(int t)
{
    for (int i = 0; i < N_STORABLE; i++)
        if ((int)ggml_storable[i] == t) return true;
    return false;
}

static bool group_is_valid_int(int g)
{
    return g == QB_GROUP_TENSOR || g == QB_GROUP_CHANNEL || g == 32 || g == 64 || g == 128 || g == 256;
}

qb_format qb_format_ggml(qb_type t)
{
    qb_format f;
    memset(&f, 0, sizeof f);
    f.kind = QB_FMT_GGML;
    f.type = (int)t;
    return f;
}

/* ---- parse / name --------------------------------------------------------------------- */

/* One "-option" of an int format: granularity or sym/asym. */
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
static qb_status parse_int(qb_ctx *ctx, const char *name, const char *s, qb_format *f)
{
    const char *p = s + 3;
    if (!isdigit((unsigned char)*p)) return qb_fail(ctx, QB_ERR_ARG, "format '%s': missing bits after 'int'", name);
    long bits = 0;
    while (isdigit((unsigned char)*p) && bits < 1000) bits = bits * 10 + (*p++ - '0');
    if (isdigit((unsigned char)*p) || (*p && *p != '-'))
        return qb_fail(ctx, QB_ERR_ARG, "unknown format '%s'", name);
    if (bits < 2 || bits > 8) return qb_fail(ctx, QB_ERR_ARG, "format '%s': bits %ld out of range 2..8", name, bits);
    f->kind = QB_FMT_INT;
    f->bits = (int)bits;
    f->group = QB_GROUP_CHANNEL;
    f->asym = false;
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

qb_status qb_format_parse(qb_ctx *ctx, const char *name, qb_format *out)
{
    if (!out) return qb_fail(ctx, QB_ERR_ARG, "qb_format_parse: no output");
    qb_format f;
    memset(&f, 0, sizeof f);
    if (!name || !*name) return qb_fail(ctx, QB_ERR_ARG, "empty format name");
    char s[64];
    size_t len = strlen(name);
    if (len >= sizeof s) return qb_fail(ctx, QB_ERR_ARG, "unknown format '%.60s…'", name);
    for (size_t i = 0; i <= len; i++) s[i] = (char)tolower((unsigned char)name[i]);

    for (int i = 0; i < N_STORABLE; i++) {
        if (!strcasecmp(s, qb_type_get(ggml_storable[i])->name)) {
            *out = qb_format_ggml(ggml_storable[i]);
            return QB_OK;
        }
    }
    if (!strncmp(s, "int", 3)) {
        qb_status st = parse_int(ctx, name, s, &f);
        if (st) return st;
        *out = f;
        return QB_OK;
    }
    if (!strcmp(s, "nf4") || !strcmp(s, "nf4-dq")) {
        f.kind = QB_FMT_NF4;
        f.group = QB_NF4_BLOCK;
        f.double_quant = s[3] != 0;
        *out = f;
        return QB_OK;
    }
    if (!strncmp(s, "fp8-e4m3", 8) || !strncmp(s, "fp8-e5m2", 8)) {
        const char *rest = s + 8;
        f.kind = s[5] == '4' ? QB_FMT_FP8_E4M3 : QB_FMT_FP8_E5M2;
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
    if (!strcmp(s, "mxfp4")) {
        f.kind = QB_FMT_MXFP4;
        f.group = QB_MXFP4_BLOCK;
        *out = f;
        return QB_OK;
    }
    return qb_fail(ctx, QB_ERR_ARG, "unknown format '%s'", name);
}

static void lower_copy(char *buf, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++) buf[i] = (char)tolower((unsigned char)s[i]);
    if (cap) buf[i] = 0;
}

void qb_format_name(const qb_format *f, char *buf, size_t cap)
{
    if (!buf || cap == 0) return;
    switch (f->kind) {
    case QB_FMT_GGML: {
        const qb_type_info *ti = qb_type_get(f->type);
        if (ti) lower_copy(buf, cap, ti->name);
        else snprintf(buf, cap, "ggml-type-%d", f->type);
        return;
    }
    case QB_FMT_INT: {
        char gran[16];
        if (f->group == QB_GROUP_TENSOR) snprintf(gran, sizeof gran, "tensor");
        else if (f->group == QB_GROUP_CHANNEL) snprintf(gran, sizeof gran, "channel");
        else snprintf(gran, sizeof gran, "g%d", f->group);
        snprintf(buf, cap, "int%d-%s%s", f->bits, gran, f->asym ? "-asym" : "");
        return;
    }
    case QB_FMT_NF4: snprintf(buf, cap, f->double_quant ? "nf4-dq" : "nf4"); return;
    case QB_FMT_FP8_E4M3:
    case QB_FMT_FP8_E5M2:
        snprintf(buf, cap, "fp8-%s%s", f->kind == QB_FMT_FP8_E4M3 ? "e4m3" : "e5m2",
                 f->group == QB_GROUP_CHANNEL ? "-channel" : "");
        return;
    case QB_FMT_MXFP4: snprintf(buf, cap, "mxfp4"); return;
    case QB_FMT_KIND_COUNT: break;
    }
    snprintf(buf, cap, "invalid-format-kind-%d", (int)f->kind);
}

bool qb_format_equal(const qb_format *a, const qb_format *b)
{
    if (a->kind != b->kind) return false;
    switch (a->kind) {
    case QB_FMT_GGML: return a->type == b->type;
    case QB_FMT_INT: return a->bits == b->bits && a->group == b->group && a->asym == b->asym;
    case QB_FMT_NF4: return a->double_quant == b->double_quant;
    case QB_FMT_FP8_E4M3:
    case QB_FMT_FP8_E5M2: return (a->group == QB_GROUP_CHANNEL) == (b->group == QB_GROUP_CHANNEL);
    case QB_FMT_MXFP4: return true;
    case QB_FMT_KIND_COUNT: break;
    }
    return false;
}

/* ---- validity, fallback, sizes -------------------------------------------------------- */

/* Elements per block a row must be a multiple of (1 for per-row formats); 0 when f itself is
 * invalid. */
static int64_t format_block(const qb_format *f)
{
    switch (f->kind) {
    case QB_FMT_GGML: return ggml_is_storable(f->type) ? qb_type_get(f->type)->blck : 0;
    case QB_FMT_INT:
        if (f->bits < 2 || f->bits > 8 || !group_is_valid_int(f->group)) return 0;
        return f->group > 0 ? f->group : 1;
    case QB_FMT_NF4: return QB_NF4_BLOCK;
    case QB_FMT_FP8_E4M3:
    case QB_FMT_FP8_E5M2: return f->group == QB_GROUP_TENSOR || f->group == QB_GROUP_CHANNEL ? 1 : 0;
    case QB_FMT_MXFP4: return QB_MXFP4_BLOCK;
    case QB_FMT_KIND_COUNT: break;
    }
    return 0;
}

static bool fits(const qb_format *f, int64_t n)
{
    int64_t b = format_block(f);
    return b > 0 && n > 0 && n % b == 0;
}

qb_status qb_format_check(qb_ctx *ctx, const qb_format *f, int64_t n)
{
    if (!f) return qb_fail(ctx, QB_ERR_ARG, "no format");
    if ((unsigned)f->kind >= QB_FMT_KIND_COUNT) return qb_fail(ctx, QB_ERR_ARG, "unknown format kind %d", (int)f->kind);
    char nm[48];
    qb_format_name(f, nm, sizeof nm);
    switch (f->kind) {
    case QB_FMT_GGML: {
        const qb_type_info *ti = qb_type_get(f->type);
        if (!ti) return qb_fail(ctx, QB_ERR_ARG, "unknown ggml type %d", f->type);
        if (!ggml_is_storable(f->type))
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s is not a weight storage format", nm);
        break;
    }
    case QB_FMT_INT:
        if (f->bits < 2 || f->bits > 8)
            return qb_fail(ctx, QB_ERR_ARG, "format '%s': bits %d out of range 2..8", nm, f->bits);
        if (!group_is_valid_int(f->group))
            return qb_fail(ctx, QB_ERR_ARG, "format '%s': group %d not one of 32, 64, 128, 256", nm, f->group);
        break;
    case QB_FMT_FP8_E4M3:
    case QB_FMT_FP8_E5M2:
        if (f->group != QB_GROUP_TENSOR && f->group != QB_GROUP_CHANNEL)
            return qb_fail(ctx, QB_ERR_ARG, "format '%s': fp8 scales are per tensor or per channel, not groups of %d",
                           nm, f->group);
        break;
    default: break;
    }
    if (n <= 0) return qb_fail(ctx, QB_ERR_ARG, "%s: row length %lld is not positive", nm, (long long)n);
    int64_t b = format_block(f);
    if (n % b != 0) {
        if (f->kind == QB_FMT_INT)
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: group %lld does not divide the row length %lld", nm,
                           (long long)b, (long long)n);
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: row length %lld is not a multiple of the block size %lld", nm,
                       (long long)n, (long long)b);
    }
    return QB_OK;
}

/* llama.cpp src/llama-quant.cpp (llama_tensor_get_type, build 4748 / c392e50 and later): when
 * ne0 is not a multiple of the chosen type's block, K-quants and IQ4_XS fall back to these,
 * and if ne0 is not a multiple of 32 either, to F16. */
static int ggml_fallback_type(int t)
{
    switch (t) {
    case QB_TYPE_Q2_K:
    case QB_TYPE_Q3_K:
    case QB_TYPE_IQ4_XS: return QB_TYPE_IQ4_NL;
    case QB_TYPE_Q4_K: return QB_TYPE_Q5_0;
    case QB_TYPE_Q5_K: return QB_TYPE_Q5_1;
    case QB_TYPE_Q6_K: return QB_TYPE_Q8_0;
    default: return QB_TYPE_F16; /* llama-quantize throws here; we store F16 */
    }
}

qb_format qb_format_fallback(const qb_format *f, int64_t n)
{
    if (f->kind != QB_FMT_GGML || !ggml_is_storable(f->type) || n <= 0 || fits(f, n)) return *f;
    int t = ggml_fallback_type(f->type);
    if (n % qb_type_get(t)->blck != 0) t = QB_TYPE_F16;
    return qb_format_ggml((qb_type)t);
}

size_t qb_format_row_bytes(const qb_format *f, int64_t n)
{
    if (!f || !fits(f, n)) return 0;
    switch (f->kind) {
    case QB_FMT_GGML: return qb_type_row_bytes((qb_type)f->type, n);
    case QB_FMT_INT: return qb_int_row_bytes(f->bits, f->group, f->asym, n);
    case QB_FMT_NF4: return qb_nf4_row_bytes(f->double_quant, n);
    case QB_FMT_FP8_E4M3:
    case QB_FMT_FP8_E5M2: return qb_fp8_row_bytes(n);
    case QB_FMT_MXFP4: return qb_mxfp4_row_bytes(n);
    case QB_FMT_KIND_COUNT: break;
    }
    return 0;
}

double qb_format_bpw(const qb_format *f, int64_t n)
{
    size_t rb = qb_format_row_bytes(f, n);
    return rb ? (double)rb * 8.0 / (double)n : 0.0;
}

/* ---- quantize / dequantize ------------------------------------------------------------ */

static int thread_count(const qb_ctx *ctx)
{
#ifdef _OPENMP
    return ctx && ctx->n_threads > 0 ? ctx->n_threads : omp_get_max_threads();
#else
    (void)ctx;
    return 1;
#endif
}

/* Tensor-wide min and max (NaNs ignored; 0, 0 when there is no number). */
static void tensor_min_max(const float *x, int64_t count, int nt, float *mn, float *mx)
{
    float lo = INFINITY, hi = -INFINITY;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(min : lo) reduction(max : hi)
    for (int64_t i = 0; i < count; i++) {
        const float v = x[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    if (lo > hi) lo = hi = 0.0f;
    *mn = lo;
    *mx = hi;
}

/* One row of any format; false when the ggml quantizer refuses the type. range / absmax: the
 * tensor-wide statistics of per-tensor formats (else unused). */
static bool quant_row(const qb_format *f, const float *x, void *dst, int64_t n, const float range[2], float absmax)
{
    switch (f->kind) {
    case QB_FMT_GGML: return qb_kernels()->quant_row(f->type, x, dst, n);
    case QB_FMT_INT:
        qb_quant_row_int_ref(f->bits, f->group, f->asym, x, dst, n, f->group == QB_GROUP_TENSOR ? range : NULL);
        return true;
    case QB_FMT_NF4: qb_quant_row_nf4_ref(f->double_quant, x, dst, n); return true;
    case QB_FMT_FP8_E4M3:
    case QB_FMT_FP8_E5M2:
        qb_quant_row_fp8_ref(f->kind == QB_FMT_FP8_E5M2, x, dst, n, f->group == QB_GROUP_TENSOR ? absmax : -1.0f);
        return true;
    case QB_FMT_MXFP4: qb_quant_row_mxfp4_ref(x, dst, n); return true;
    case QB_FMT_KIND_COUNT: break;
    }
    return false;
}

qb_status qb_quantize_matrix(qb_ctx *ctx, const qb_format *f, const float *src, int64_t rows, int64_t n, void *dst,
                             const volatile int *cancel)
{
    qb_status st = qb_format_check(ctx, f, n);
    if (st) return st;
    if (rows < 0) return qb_fail(ctx, QB_ERR_ARG, "qb_quantize_matrix: %lld rows", (long long)rows);
    if (rows == 0) return QB_OK;
    if (!src || !dst) return qb_fail(ctx, QB_ERR_ARG, "qb_quantize_matrix: NULL buffer");
    const int nt = thread_count(ctx);
    const size_t rb = qb_format_row_bytes(f, n);

    float range[2] = {0.0f, 0.0f}, absmax = 0.0f;
    const bool per_tensor = (f->kind == QB_FMT_INT || f->kind == QB_FMT_FP8_E4M3 || f->kind == QB_FMT_FP8_E5M2) &&
                            f->group == QB_GROUP_TENSOR;
    if (per_tensor) {
        tensor_min_max(src, rows * n, nt, &range[0], &range[1]);
        absmax = fmaxf(fabsf(range[0]), fabsf(range[1]));
    }
    if (cancel && *cancel) return qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");

    int failed = 0, cancelled = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 8) reduction(| : failed, cancelled)
    for (int64_t r = 0; r < rows; r++) {
        if (cancelled || (cancel && *cancel)) {
            cancelled = 1;
            continue;
        }
        if (!quant_row(f, src + r * n, (uint8_t *)dst + (size_t)r * rb, n, range, absmax)) failed = 1;
    }
    if (cancelled) return qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");
    if (failed) {
        char nm[48];
        qb_format_name(f, nm, sizeof nm);
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: no quantizer for this type", nm);
    }
    return QB_OK;
}

void qb_dequantize_row(const qb_format *f, const void *src, float *dst, int64_t n)
{
    switch (f->kind) {
    case QB_FMT_GGML: qb_dequant_row_ref(f->type, src, dst, n); return;
    case QB_FMT_INT: qb_dequant_row_int_ref(f->bits, f->group, f->asym, src, dst, n); return;
    case QB_FMT_NF4: qb_dequant_row_nf4_ref(f->double_quant, src, dst, n); return;
    case QB_FMT_FP8_E4M3:
    case QB_FMT_FP8_E5M2: qb_dequant_row_fp8_ref(f->kind == QB_FMT_FP8_E5M2, src, dst, n); return;
    case QB_FMT_MXFP4: qb_dequant_row_mxfp4_ref(src, dst, n); return;
    case QB_FMT_KIND_COUNT: break;
    }
}
