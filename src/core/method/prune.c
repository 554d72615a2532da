/* prune.c — magnitude and N:M pruning of a tensor's original values before its format
 * quantizes them (see prune.h). */
#include "prune.h"
#include "../quant/apply.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

qb_status qb_prune_parse(qb_ctx *ctx, const char *spec, qb_prune *out)
{
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return qb_fail(ctx, QB_ERR_ARG, "empty pruning spec (try 0.5, 50%% or 2:4)");
    const char *s = spec;
    if (!strncmp(s, "magnitude:", 10)) s += 10;
    int n, m, used = 0;
    if (sscanf(s, "%d:%d%n", &n, &m, &used) == 2 && s[used] == 0 && s == spec) {
        *out = (qb_prune){.kind = QB_PRUNE_NM, .n = n, .m = m};
        return qb_prune_check(ctx, out, m > 0 ? m : 1);
    }
    char *end;
    double v = strtod(s, &end);
    if (end != s && *end == '%' && end[1] == 0) v /= 100, end++;
    if (end == s || *end != 0)
        return qb_fail(ctx, QB_ERR_ARG, "pruning spec '%s': expected a sparsity (0.5, 50%%) or N:M (2:4)", spec);
    *out = (qb_prune){.kind = QB_PRUNE_MAGNITUDE, .sparsity = v};
    return qb_prune_check(ctx, out, 1);
}

void qb_prune_name(const qb_prune *p, char *buf, size_t cap)
{
    if (p->kind == QB_PRUNE_NM)
        snprintf(buf, cap, "%d:%d", p->n, p->m);
    else if (p->kind == QB_PRUNE_MAGNITUDE)
        snprintf(buf, cap, "magnitude-%g%%", 100 * p->sparsity);
    else
        snprintf(buf, cap, "none");
}

qb_status qb_prune_check(qb_ctx *ctx, const qb_prune *p, int64_t n)
{
    switch (p->kind) {
    case QB_PRUNE_NONE:
        return QB_OK;
    case QB_PRUNE_MAGNITUDE:
        if (!(p->sparsity >= 0 && p->sparsity < 1))
            return qb_fail(ctx, QB_ERR_ARG, "sparsity %g is out of range [0, 1)", p->sparsity);
        return QB_OK;
    case QB_PRUNE_NM:
        if (p->m < 2 || p->m > 64 || p->n < 1 || p->n >= p->m)
            return qb_fail(ctx, QB_ERR_ARG, "N:M sparsity %d:%d: need 0 < N < M <= 64", p->n, p->m);
        if (n % p->m)
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "N:M sparsity %d:%d: M does not divide the row length %lld", p->n,
                           p->m, (long long)n);
        return QB_OK;
    }
    return qb_fail(ctx, QB_ERR_ARG, "unknown pruning kind %d", (int)p->kind);
}

/* Order of |w|, ties by position: the earlier weight counts as smaller. */
typedef struct {
    float a;
    int64_t i;
} mag;

static int cmp_mag(const void *x, const void *y)
{
    const mag *a = x, *b = y;
    if (a->a != b->a) return a->a < b->a ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* Zero the k smallest |w| of w[0..n) (scratch holds n entries). */
static void zero_smallest(float *w, int64_t n, int64_t k, mag *scratch)
{
    if (k <= 0) return;
    for (int64_t i = 0; i < n; i++) scratch[i] = (mag){fabsf(w[i]), i};
    qsort(scratch, (size_t)n, sizeof *scratch, cmp_mag);
    for (int64_t j = 0; j < k; j++) w[scratch[j].i] = 0.0f;
}

qb_status qb_prune_matrix(qb_ctx *ctx, const qb_prune *p, float *w, int64_t rows, int64_t n)
{
    qb_status st = qb_prune_check(ctx, p, n);
    if (st != QB_OK || p->kind == QB_PRUNE_NONE) return st;
    int64_t k = p->kind == QB_PRUNE_MAGNITUDE ? (int64_t)floor(p->sparsity * (double)n + 0.5) : p->m - p->n;
    int64_t span = p->kind == QB_PRUNE_MAGNITUDE ? n : p->m;
    bool oom = false;
    qb_ctx_apply_threads(ctx);
#pragma omp parallel reduction(|| : oom)
    {
        mag *scratch = malloc((size_t)span * sizeof *scratch);
        oom = scratch == NULL;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            if (!scratch) continue;
            float *row = w + r * n;
            for (int64_t g = 0; g < n; g += span) zero_smallest(row + g, span, k, scratch);
        }
        free(scratch);
    }
    return oom ? qb_fail(ctx, QB_ERR_NOMEM, "out of memory pruning") : QB_OK;
}

double qb_prune_zero_fraction(const float *w, int64_t n)
{
    int64_t z = 0;
    for (int64_t i = 0; i < n; i++) z += w[i] == 0.0f;
    return n > 0 ? (double)z / (double)n : 0;
}

qb_status qb_tensor_prune(qb_ctx *ctx, qb_tensor *t, const qb_prune *p, const qb_format *fmt,
                          const volatile int *cancel)
{
    if (!qb_tensor_quantizable(t)) return qb_fail(ctx, QB_ERR_ARG, "tensor %s is not a weight matrix", t->name);
    qb_format f = fmt ? qb_format_fallback(fmt, t->ne[0])
                      : qb_format_ggml(t->src_type == QB_TYPE_F16 || t->src_type == QB_TYPE_BF16 ? t->src_type
                                                                                                   : QB_TYPE_F32);
    qb_status st = qb_prune_check(ctx, p, t->ne[0]);
    if (st == QB_OK) st = qb_format_check(ctx, &f, t->ne[0]);
    if (st != QB_OK) {
        char why[sizeof ctx->errmsg];
        snprintf(why, sizeof why, "%s", ctx->errmsg);
        return qb_fail(ctx, st, "tensor %s: %s", t->name, why);
    }
    int64_t n = t->ne[0], rows = qb_tensor_rows(t);
    size_t nbytes = qb_format_row_bytes(&f, n) * (size_t)rows;
    float *src = malloc((size_t)(n * rows) * sizeof(float));
    void *dst = malloc(nbytes);
    if (!src || !dst) {
        free(src);
        free(dst);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory pruning %s", t->name);
    }
    qb_ctx_apply_threads(ctx);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r += 16) qb_tensor_source_rows(t, r, rows - r < 16 ? rows - r : 16, src + r * n);
    st = qb_prune_matrix(ctx, p, src, rows, n);
    if (st == QB_OK && cancel && *cancel) st = qb_fail(ctx, QB_ERR_CANCELLED, "pruning cancelled");
    if (st == QB_OK) st = qb_quantize_matrix(ctx, &f, src, rows, n, dst, cancel);
    free(src);
    if (st != QB_OK) {
        free(dst);
        return st;
    }
    free(t->owned); /* the tensor's previous buffer (never the base's, for views: see model_view.c) */
    t->owned = dst;
    t->data = dst;
    t->nbytes = nbytes;
    t->fmt = f;
    t->type = qb_format_storage_type(&f);
    return QB_OK;
}

qb_status qb_prune_apply(qb_ctx *ctx, qb_model *m, const qb_prune *p, const qb_format *fmt,
                         const volatile int *cancel)
{
    for (int i = 0; i < m->n_tensors; i++) {
        qb_tensor *t = &m->tensors[i];
        if (strncmp(t->name, "blk.", 4) || !qb_tensor_quantizable(t)) continue;
        if (cancel && *cancel) return qb_fail(ctx, QB_ERR_CANCELLED, "pruning cancelled");
        qb_status st = qb_tensor_prune(ctx, t, p, fmt, cancel);
        if (st != QB_OK) return st;
    }
    return QB_OK;
}
