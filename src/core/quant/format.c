/* format.c — the generic entry points of format.h: each looks up the row of the format's kind
 * in the format table (format_traits.h) and calls its hooks — parsing (every row in turn),
 * naming, validity for a row length, storage size, and the whole-matrix quantize (tensor-wide
 * statistics first where the row asks, then rows in parallel) / per-row dequantize. Nothing
 * here knows a particular kind. */
#include "format_traits.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

qb_status qb_format_parse(qb_ctx *ctx, const char *name, qb_format *out)
{
    if (!out) return qb_fail(ctx, QB_ERR_ARG, "qb_format_parse: no output");
    if (!name || !*name) return qb_fail(ctx, QB_ERR_ARG, "empty format name");
    char s[64];
    size_t len = strlen(name);
    if (len >= sizeof s) return qb_fail(ctx, QB_ERR_ARG, "unknown format '%.60s…'", name);
    for (size_t i = 0; i <= len; i++) s[i] = (char)tolower((unsigned char)name[i]);
    for (int k = 0; k < QB_FMT_KIND_COUNT; k++) {
        qb_format f;
        memset(&f, 0, sizeof f);
        bool mine = false;
        qb_status st = qb_format_traits_get(k)->parse(ctx, name, s, &f, &mine);
        if (st) return st;
        if (mine) {
            *out = f;
            return QB_OK;
        }
    }
    return qb_fail(ctx, QB_ERR_ARG, "unknown format '%s'", name);
}

void qb_format_name(const qb_format *f, char *buf, size_t cap)
{
    if (!buf || cap == 0) return;
    const qb_format_traits *tr = qb_format_traits_of(f);
    if (tr) tr->name(f, buf, cap);
    else snprintf(buf, cap, "invalid-format-kind-%d", f ? (int)f->kind : -1);
}

bool qb_format_equal(const qb_format *a, const qb_format *b)
{
    if (a->kind != b->kind) return false;
    const qb_format_traits *tr = qb_format_traits_of(a);
    return tr && tr->equal(a, b);
}

/* ---- validity, sizes -------------------------------------------------------------------- */

static bool fits(const qb_format *f, int64_t n)
{
    const qb_format_traits *tr = qb_format_traits_of(f);
    int64_t b = tr ? tr->block(f) : 0;
    return b > 0 && n > 0 && n % b == 0;
}

qb_status qb_format_check(qb_ctx *ctx, const qb_format *f, int64_t n)
{
    if (!f) return qb_fail(ctx, QB_ERR_ARG, "no format");
    const qb_format_traits *tr = qb_format_traits_of(f);
    if (!tr) return qb_fail(ctx, QB_ERR_ARG, "unknown format kind %d", (int)f->kind);
    char nm[48];
    qb_format_name(f, nm, sizeof nm);
    if (tr->check) {
        qb_status st = tr->check(ctx, f, nm);
        if (st) return st;
    }
    if (n <= 0) return qb_fail(ctx, QB_ERR_ARG, "%s: row length %lld is not positive", nm, (long long)n);
    int64_t b = tr->block(f);
    if (b <= 0) return qb_fail(ctx, QB_ERR_ARG, "%s: invalid format", nm);
    if (n % b != 0) {
        if (tr->block_is_group)
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: group %lld does not divide the row length %lld", nm,
                           (long long)b, (long long)n);
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: row length %lld is not a multiple of the block size %lld", nm,
                       (long long)n, (long long)b);
    }
    return QB_OK;
}

size_t qb_format_row_bytes(const qb_format *f, int64_t n)
{
    if (!f || !fits(f, n)) return 0;
    return qb_format_traits_of(f)->row_bytes(f, n);
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

/* Tensor-wide min, max and absmax (NaNs ignored; 0, 0 when there is no number). */
static qb_tensor_range tensor_range(const float *x, int64_t count, int nt)
{
    float lo = INFINITY, hi = -INFINITY;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(min : lo) reduction(max : hi)
    for (int64_t i = 0; i < count; i++) {
        const float v = x[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    if (lo > hi) lo = hi = 0.0f;
    return (qb_tensor_range){lo, hi, fmaxf(fabsf(lo), fabsf(hi))};
}

/* One row as qb_quantize_matrix_w quantizes each (rp: the tensor's range, per-tensor formats). */
static inline bool quantize_row(const qb_format_traits *tr, const qb_format *f, const float *x, uint8_t *y, int64_t n,
                                const float *w, const qb_tensor_range *rp)
{
    return w && tr->quant_row_w ? tr->quant_row_w(f, x, y, n, w) : tr->quant_row(f, x, y, n, rp);
}

bool qb_format_row_local(const qb_format *f)
{
    const qb_format_traits *tr = qb_format_traits_of(f);
    return tr && !(tr->per_tensor && tr->per_tensor(f));
}

bool qb_quantize_row_local(const qb_format *f, const float *src, void *dst, int64_t n, const float *w)
{
    const qb_format_traits *tr = qb_format_traits_of(f);
    return tr && quantize_row(tr, f, src, dst, n, w, NULL);
}

qb_status qb_quantize_matrix(qb_ctx *ctx, const qb_format *f, const float *src, int64_t rows, int64_t n, void *dst,
                             const volatile int *cancel)
{
    return qb_quantize_matrix_w(ctx, f, src, rows, n, dst, NULL, cancel);
}

qb_status qb_quantize_matrix_w(qb_ctx *ctx, const qb_format *f, const float *src, int64_t rows, int64_t n, void *dst,
                               const float *w, const volatile int *cancel)
{
    qb_status st = qb_format_check(ctx, f, n);
    if (st) return st;
    if (rows < 0) return qb_fail(ctx, QB_ERR_ARG, "qb_quantize_matrix: %lld rows", (long long)rows);
    if (rows == 0) return QB_OK;
    if (!src || !dst) return qb_fail(ctx, QB_ERR_ARG, "qb_quantize_matrix: NULL buffer");
    const qb_format_traits *tr = qb_format_traits_of(f);
    const int nt = thread_count(ctx);
    const size_t rb = qb_format_row_bytes(f, n);

    qb_tensor_range range;
    const qb_tensor_range *rp = NULL;
    if (tr->per_tensor && tr->per_tensor(f)) {
        range = tensor_range(src, rows * n, nt);
        rp = &range;
    }
    if (cancel && *cancel) return qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");

    int failed = 0, cancelled = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 8) reduction(| : failed, cancelled)
    for (int64_t r = 0; r < rows; r++) {
        if (cancelled || (cancel && *cancel)) {
            cancelled = 1;
            continue;
        }
        /* the next row ahead of use: measured, the hardware prefetcher alone left the vector
         * quantizers waiting on memory (a hint; never faults past the end) */
        for (int64_t o = 0; o < n; o += 16) __builtin_prefetch(src + (r + 1) * n + o);
        if (!quantize_row(tr, f, src + r * n, (uint8_t *)dst + (size_t)r * rb, n, w, rp)) failed = 1;
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
    const qb_format_traits *tr = qb_format_traits_of(f);
    if (tr) tr->dequant_row(f, src, dst, n);
}
