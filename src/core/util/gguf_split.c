/* gguf_split.c — a model split over several GGUF files the way llama.cpp's gguf-split writes
 * them: NAME-00001-of-0000N.gguf ... NAME-0000N-of-0000N.gguf, each a whole GGUF file whose
 * split.no (0-based), split.count and split.tensors.count keys say where it belongs; the first
 * holds the model's metadata. Opening the first opens the others and joins their tensors into
 * one directory, so every reader of qb_gguf sees one model. */
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPLIT_MAX 9999 /* llama.cpp's names have five digits; more parts than this is corruption */

/* An integer split.* key, or -1 when absent or not an integer. */
static int64_t split_key(const qb_gguf *g, const char *key)
{
    const qb_gguf_kv *kv = qb_gguf_find(g, key);
    if (!kv || kv->type == QB_GGUF_STRING || kv->type == QB_GGUF_ARRAY || kv->type == QB_GGUF_FLOAT32 ||
        kv->type == QB_GGUF_FLOAT64 || kv->type == QB_GGUF_BOOL)
        return -1;
    return kv->i64;
}

/* Drop every split.* key: a file written from the joined model is one file. */
static void drop_split_keys(qb_gguf *g)
{
    uint64_t k = 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        if (strncmp(g->kv[i].key, "split.", 6) == 0) {
            free(g->kv[i].key);
            free(g->kv[i].str);
            free(g->kv[i].arr_str);
            continue;
        }
        g->kv[k++] = g->kv[i];
    }
    g->n_kv = k;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A tensor name that two parts both hold, or NULL. */
static const char *duplicate_tensor(const qb_gguf *g, const char **names)
{
    for (uint64_t i = 0; i < g->n_tensors; i++) names[i] = g->tensors[i].name;
    qsort(names, g->n_tensors, sizeof *names, cmp_name);
    for (uint64_t i = 1; i < g->n_tensors; i++)
        if (strcmp(names[i - 1], names[i]) == 0) return names[i];
    return NULL;
}

/* Move part's tensors to the end of g's directory (their data stays in part's mapping). */
static qb_status take_tensors(qb_ctx *ctx, qb_gguf *g, qb_gguf *part)
{
    qb_gguf_tensor *t = realloc(g->tensors, (g->n_tensors + part->n_tensors + 1) * sizeof *t);
    if (!t) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", g->path);
    g->tensors = t;
    memcpy(t + g->n_tensors, part->tensors, part->n_tensors * sizeof *t);
    g->n_tensors += part->n_tensors;
    part->n_tensors = 0; /* the names are g's now */
    return QB_OK;
}

/* Open part no (0-based) of count, named prefix-%05d-of-%05d.gguf, and check its keys. */
static qb_status open_part(qb_ctx *ctx, const qb_gguf *first, const char *prefix, int no, int count, qb_gguf **out)
{
    size_t n = strlen(prefix) + 32;
    char *path = malloc(n);
    if (!path) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    snprintf(path, n, "%s-%05d-of-%05d.gguf", prefix, no + 1, count);
    qb_gguf *p = NULL;
    qb_status st = qb_gguf_open_one(ctx, path, &p);
    if (st != QB_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", qb_ctx_errmsg(ctx));
        qb_fail(ctx, st, "%s: part %d of %d of this split model: %s", first->path, no + 1, count, why);
    }
    else if (split_key(p, "split.no") != no || split_key(p, "split.count") != count)
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: split.no %lld / split.count %lld, but it is named as part %d of %d of "
                     "%s", path, (long long)split_key(p, "split.no"), (long long)split_key(p, "split.count"), no + 1,
                     count, first->path);
    free(path);
    if (st != QB_OK) {
        qb_gguf_close(p);
        return st;
    }
    *out = p;
    return QB_OK;
}

qb_status qb_gguf_join_splits(qb_ctx *ctx, qb_gguf *g)
{
    g->n_parts = 1;
    if (!qb_gguf_find(g, "split.count")) return QB_OK;
    int64_t count = split_key(g, "split.count"), no = split_key(g, "split.no");
    int64_t total = qb_gguf_find(g, "split.tensors.count") ? split_key(g, "split.tensors.count") : -2;
    if (count < 1 || count > SPLIT_MAX || no < 0 || no >= count || total == -1 || total > (1ll << 31))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: bad split keys (split.no %lld, split.count %lld, split.tensors.count "
                       "%lld)", g->path, (long long)no, (long long)count, (long long)total);
    char tail[32];
    snprintf(tail, sizeof tail, "-%05d-of-%05d.gguf", (int)no + 1, (int)count);
    size_t len = strlen(g->path), tl = strlen(tail);
    if (count > 1 && no != 0)
        return qb_fail(ctx, QB_ERR_ARG, "%s: part %lld of %lld of a split model: open the first part "
                       "(*-00001-of-%05lld.gguf)", g->path, (long long)no + 1, (long long)count, (long long)count);
    if (count > 1 && (len <= tl || strcmp(g->path + len - tl, tail) != 0))
        return qb_fail(ctx, QB_ERR_ARG, "%s: the first of %lld parts of a split model, but not named *%s, so the other "
                       "parts cannot be found (keep llama-gguf-split's names)", g->path, (long long)count, tail);
    char *prefix = strndup(g->path, len - (count > 1 ? tl : 0));
    if (!prefix) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    qb_status st = QB_OK;
    if (count > 1 && !(g->parts = calloc((size_t)count - 1, sizeof *g->parts)))
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    g->n_parts = st == QB_OK ? (int)count : 1;
    for (int i = 1; st == QB_OK && i < count; i++)
        if ((st = open_part(ctx, g, prefix, i, (int)count, &g->parts[i - 1])) == QB_OK)
            st = take_tensors(ctx, g, g->parts[i - 1]);
    free(prefix);
    if (st != QB_OK) return st;
    if (total >= 0 && (uint64_t)total != g->n_tensors)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: split.tensors.count is %lld but the %lld parts hold %llu tensors",
                       g->path, (long long)total, (long long)count, (unsigned long long)g->n_tensors);
    const char **names = malloc((g->n_tensors + 1) * sizeof *names);
    if (!names) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    const char *dup = duplicate_tensor(g, names);
    if (dup) st = qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor %s is in two parts of the split model", g->path, dup);
    free(names);
    if (st == QB_OK) drop_split_keys(g);
    return st;
}
