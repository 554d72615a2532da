/* imatrix.c — the importance matrix as data: entries, the name index, the importance a
 * quantizer reads (llama-quantize's derivation), lookups by llama.cpp's names and by ours, and
 * the check against a model. Collection: imatrix_collect.c; files: imatrix_file.c. */
#include "imatrix.h"
#include "../util/mapfile.h"
#include "../util/sha256.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

qb_imatrix *qb_imatrix_new(void) { return calloc(1, sizeof(qb_imatrix)); }

qb_imatrix_entry *qb_imatrix_add(qb_imatrix *im, const char *name, size_t name_len, int n_cols, int n_mat)
{
    if (n_cols < 1 || n_mat < 1) return NULL;
    qb_imatrix_entry *e = realloc(im->entries, (size_t)(im->n_entries + 1) * sizeof *e);
    if (!e) return NULL;
    im->entries = e;
    e += im->n_entries;
    memset(e, 0, sizeof *e);
    size_t n = (size_t)n_cols * n_mat;
    e->name = malloc(name_len + 1);
    e->sum2 = calloc(n, sizeof *e->sum2);
    e->w = calloc(n, sizeof *e->w);
    e->counts = calloc((size_t)n_mat, sizeof *e->counts);
    im->n_entries++; /* counted even when half made, so qb_imatrix_free releases it */
    if (!e->name || !e->sum2 || !e->w || !e->counts) return NULL;
    memcpy(e->name, name, name_len);
    e->name[name_len] = 0;
    e->n_cols = n_cols;
    e->n_mat = n_mat;
    return e;
}

bool qb_imatrix_add_dataset(qb_imatrix *im, const char *name, size_t len)
{
    char **d = realloc(im->datasets, (size_t)(im->n_datasets + 1) * sizeof *d);
    if (!d) return false;
    im->datasets = d;
    if (!(d[im->n_datasets] = malloc(len + 1))) return false;
    memcpy(d[im->n_datasets], name, len);
    d[im->n_datasets++][len] = 0;
    return true;
}

static int cmp_index(const void *a, const void *b, void *ud)
{
    const qb_imatrix *im = ud;
    return strcmp(im->entries[*(const int *)a].name, im->entries[*(const int *)b].name);
}

/* The importance of one entry: a .dat's value / ncall (llama-quantize c392e50), a GGUF's sums /
 * counts with 1 for a matrix that saw nothing (later llama-quantize). */
static void importance(const qb_imatrix *im, qb_imatrix_entry *e)
{
    for (int j = 0; j < e->n_mat; j++) {
        float c = e->counts[j];
        const float *s = e->sum2 + (size_t)j * e->n_cols;
        float *w = e->w + (size_t)j * e->n_cols;
        for (int i = 0; i < e->n_cols; i++) {
            if (im->legacy) w[i] = c > 0 ? s[i] / c : s[i];
            else w[i] = c > 0 ? s[i] / c : 1.0f;
        }
    }
}

qb_status qb_imatrix_finish(qb_ctx *ctx, qb_imatrix *im)
{
    free(im->by_name);
    im->by_name = malloc((size_t)(im->n_entries > 0 ? im->n_entries : 1) * sizeof *im->by_name);
    if (!im->by_name) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    for (int i = 0; i < im->n_entries; i++) im->by_name[i] = i;
    qsort_r(im->by_name, (size_t)im->n_entries, sizeof *im->by_name, cmp_index, im);
    for (int i = 1; i < im->n_entries; i++)
        if (!strcmp(im->entries[im->by_name[i]].name, im->entries[im->by_name[i - 1]].name))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%s' appears twice", im->path ? im->path : "imatrix",
                           im->entries[im->by_name[i]].name);
    for (int i = 0; i < im->n_entries; i++) importance(im, &im->entries[i]);
    return QB_OK;
}

const qb_imatrix_entry *qb_imatrix_find(const qb_imatrix *im, const char *name)
{
    int lo = 0, hi = im->n_entries - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(name, im->entries[im->by_name[mid]].name);
        if (!c) return &im->entries[im->by_name[mid]];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

/* "blk.N.ffn_K_exps.E.weight" (ours) -> "blk.N.ffn_K_exps.weight" and E; false otherwise. */
static bool expert_tensor(const char *name, char *entry, size_t cap, int *expert)
{
    int l, e, len = 0;
    char kind[8];
    if (sscanf(name, "blk.%d.ffn_%7[a-z]_exps.%d.weight%n", &l, kind, &e, &len) != 3 || name[len] || e < 0)
        return false;
    snprintf(entry, cap, "blk.%d.ffn_%s_exps.weight", l, kind);
    *expert = e;
    return true;
}

const float *qb_imatrix_weights(const qb_imatrix *im, const char *tensor_name, int64_t n_cols)
{
    char name[160];
    int expert;
    if (n_cols <= 0) return NULL;
    if (!expert_tensor(tensor_name, name, sizeof name, &expert)) {
        const qb_imatrix_entry *e = qb_imatrix_find(im, tensor_name);
        return e && e->n_mat == 1 && e->n_cols == n_cols ? e->w : NULL;
    }
    const qb_imatrix_entry *e = qb_imatrix_find(im, name);
    if (!e) return NULL;
    int64_t total = (int64_t)e->n_cols * e->n_mat; /* a .dat not yet matched holds one flat row */
    if (total % n_cols || (int64_t)(expert + 1) * n_cols > total) return NULL;
    return e->w + (size_t)expert * n_cols;
}

/* The layer and kind of llama.cpp's expert entry "blk.N.ffn_K_exps.weight". */
static bool expert_entry(const char *name, int *layer, char kind[8])
{
    int len = 0;
    return sscanf(name, "blk.%d.ffn_%7[a-z]_exps.weight%n", layer, kind, &len) == 2 && !name[len];
}

qb_status qb_imatrix_match(qb_ctx *ctx, qb_imatrix *im, const qb_model *m)
{
    const char *f = im->path ? im->path : "imatrix";
    for (int i = 0; i < im->n_entries; i++) {
        qb_imatrix_entry *e = &im->entries[i];
        int layer;
        char kind[8], first[160];
        int64_t total = (int64_t)e->n_cols * e->n_mat;
        if (expert_entry(e->name, &layer, kind)) {
            snprintf(first, sizeof first, "blk.%d.ffn_%s_exps.0.weight", layer, kind);
            const qb_tensor *t = qb_model_find_tensor(m, first);
            int E = m->cfg.n_experts;
            if (!t || E < 1)
                return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%s': the model has no such expert tensor", f, e->name);
            if (total != (int64_t)E * t->ne[0] || (e->n_mat != 1 && e->n_mat != E))
                return qb_fail(ctx, QB_ERR_FORMAT,
                               "%s: entry '%s' has %lld values in %d matrices; the model's %d experts of width %lld "
                               "need %lld",
                               f, e->name, (long long)total, e->n_mat, E, (long long)t->ne[0],
                               (long long)E * t->ne[0]);
            if (e->n_mat == 1 && E > 1) { /* a .dat's flat values: one ncall for every expert */
                float *c = realloc(e->counts, (size_t)E * sizeof *c);
                if (!c) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
                for (int j = 1; j < E; j++) c[j] = c[0];
                e->counts = c;
                e->n_mat = E;
                e->n_cols = (int)t->ne[0];
            }
            continue;
        }
        const qb_tensor *t = qb_model_find_tensor(m, e->name);
        if (!t || t->n_dims < 2)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%s': the model has no weight matrix of that name", f,
                           e->name);
        if (e->n_mat != 1 || total != t->ne[0])
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%s' has %lld values; the tensor is %lld wide", f, e->name,
                           (long long)total, (long long)t->ne[0]);
    }
    return QB_OK;
}

static void note(char *dst, size_t cap, const char *name)
{
    if (!dst[0]) snprintf(dst, cap, "%s", name);
}

bool qb_imatrix_compare(const qb_imatrix *a, const qb_imatrix *b, qb_imatrix_diff *d)
{
    memset(d, 0, sizeof *d);
    d->entry_rel = malloc((size_t)(a->n_entries > 0 ? a->n_entries : 1) * sizeof *d->entry_rel);
    if (!d->entry_rel) return false;
    for (int i = 0; i < a->n_entries; i++) {
        const qb_imatrix_entry *ea = &a->entries[i], *eb = qb_imatrix_find(b, ea->name);
        d->entry_rel[i] = -1;
        if (!eb) {
            d->n_only_a++;
            note(d->only_a, sizeof d->only_a, ea->name);
            continue;
        }
        d->n_common++;
        if (ea->ncall != eb->ncall) {
            d->n_ncall_differ++;
            note(d->ncall_differs, sizeof d->ncall_differs, ea->name);
        }
        int64_t n = (int64_t)ea->n_cols * ea->n_mat;
        if (n != (int64_t)eb->n_cols * eb->n_mat) {
            d->n_size_differ++;
            note(d->size_differs, sizeof d->size_differs, ea->name);
            continue;
        }
        double mx = 0;
        int64_t at = 0;
        for (int64_t k = 0; k < n; k++) {
            double x = ea->w[k], y = eb->w[k], den = fabs(x) > fabs(y) ? fabs(x) : fabs(y);
            double r = den > 0 ? fabs(x - y) / den : 0;
            if (r > mx) mx = r, at = k;
        }
        d->entry_rel[i] = mx;
        if (mx > d->max_rel || !d->worst[0]) {
            d->max_rel = mx;
            d->worst_index = at;
            snprintf(d->worst, sizeof d->worst, "%s", ea->name);
        }
    }
    for (int i = 0; i < b->n_entries; i++)
        if (!qb_imatrix_find(a, b->entries[i].name)) {
            d->n_only_b++;
            note(d->only_b, sizeof d->only_b, b->entries[i].name);
        }
    return true;
}

qb_imatrix_format qb_imatrix_format_of(const char *path)
{
    size_t n = strlen(path);
    return n >= 5 && !strcasecmp(path + n - 5, ".gguf") ? QB_IMATRIX_GGUF : QB_IMATRIX_DAT;
}

void qb_imatrix_free(qb_imatrix *im)
{
    if (!im) return;
    for (int i = 0; i < im->n_entries; i++) {
        free(im->entries[i].name);
        free(im->entries[i].sum2);
        free(im->entries[i].counts);
        free(im->entries[i].w);
    }
    for (int i = 0; i < im->n_datasets; i++) free(im->datasets[i]);
    free(im->datasets);
    free(im->entries);
    free(im->by_name);
    free(im->path);
    free(im);
}

/* ---- the quantizers' view ---------------------------------------------------------------------- */

static const float *importance_entry(const void *src, const char *name, int64_t *count)
{
    const qb_imatrix_entry *e = qb_imatrix_find(src, name);
    if (!e) return NULL;
    *count = (int64_t)e->n_cols * e->n_mat;
    return e->w;
}

qb_status qb_imatrix_importance(qb_ctx *ctx, const qb_imatrix *im, qb_importance *out)
{
    memset(out, 0, sizeof *out);
    const char *f = im->path ? im->path : "imatrix";
    for (int i = 0; i < im->n_entries; i++) {
        const qb_imatrix_entry *e = &im->entries[i];
        for (int64_t k = 0; k < (int64_t)e->n_cols * e->n_mat; k++)
            if (!isfinite(e->w[k]))
                return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%s': importance value %lld is not finite (%g)", f,
                               e->name, (long long)k, (double)e->w[k]);
    }
    out->path = f;
    out->src = im;
    out->entry = importance_entry;
    if (im->path) {
        qb_mapfile mf;
        qb_status st = qb_mapfile_open(ctx, im->path, &mf);
        if (st != QB_OK) return st;
        out->bytes = mf.size;
        qb_sha256_hex(mf.data, mf.size, out->sha256);
        qb_mapfile_close(&mf);
    }
    return QB_OK;
}
