/* imatrix_file.c — reading and writing importance matrices in llama.cpp's two file formats
 * (imatrix.h gives both layouts): the legacy binary .dat of c392e50 and the later GGUF
 * imatrix, every field checked on the way in, written through a temp file and a rename. */
#include "imatrix.h"
#include "../util/atomic_file.h"
#include "../util/gguf.h"
#include "../util/gguf_write.h"
#include "kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 4096 /* longer entry names are taken for a corrupt length */

/* ---- .dat ------------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *p;
    size_t n, off;
} reader;

static size_t left(const reader *r) { return r->n - r->off; }

static bool get_i32(reader *r, int32_t *v)
{
    if (left(r) < 4) return false;
    memcpy(v, r->p + r->off, 4);
    r->off += 4;
    return true;
}

static bool bad_value(float v) { return !isfinite(v) || v < 0; }

/* The first control byte (NUL, newline, …) of a name, or -1: names are printed in messages
 * that must stay on one line, and no tensor name holds one. */
static int control_byte(const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return (unsigned char)name[i];
    return -1;
}

static qb_status dat_entry(qb_ctx *ctx, const char *f, reader *r, int k, qb_imatrix *im)
{
    int32_t len, ncall, nval;
    if (!get_i32(r, &len)) return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated at entry %d's name length", f, k + 1);
    if (len < 1 || len > MAX_NAME)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry %d: name length %d out of range (1..%d)", f, k + 1, (int)len,
                       MAX_NAME);
    if (left(r) < (size_t)len) return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated in entry %d's name", f, k + 1);
    const char *name = (const char *)r->p + r->off;
    int bad = control_byte(name, (size_t)len);
    if (bad >= 0) return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry %d: control byte 0x%02x in its name", f, k + 1, bad);
    r->off += (size_t)len;
    if (!get_i32(r, &ncall) || !get_i32(r, &nval))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated in entry '%.*s' before its values", f, (int)len, name);
    if (ncall < 0)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%.*s': ncall %d is negative", f, (int)len, name, (int)ncall);
    if (nval < 1) return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%.*s': %d values", f, (int)len, name, (int)nval);
    if (left(r) / 4 < (size_t)nval)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated in entry '%.*s': %d values need %zu bytes, %zu left", f,
                       (int)len, name, (int)nval, (size_t)nval * 4, left(r));
    qb_imatrix_entry *e = qb_imatrix_add(im, name, (size_t)len, nval, 1);
    if (!e) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", f);
    memcpy(e->sum2, r->p + r->off, (size_t)nval * 4);
    r->off += (size_t)nval * 4;
    for (int i = 0; i < nval; i++)
        if (bad_value(e->sum2[i]))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%s': value %d is %g (must be finite and non-negative)", f,
                           e->name, i, (double)e->sum2[i]);
    e->ncall = ncall;
    e->counts[0] = (float)ncall;
    return QB_OK;
}

static qb_status load_dat(qb_ctx *ctx, const char *f, const uint8_t *data, size_t size, qb_imatrix *im)
{
    reader r = {data, size, 0};
    int32_t n;
    if (!get_i32(&r, &n)) return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated (%zu bytes): not an imatrix file", f, size);
    if (n < 1) return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry count %d: no imatrix data", f, (int)n);
    if ((size_t)n > left(&r) / 16) /* an entry takes at least 16 bytes */
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry count %d does not fit in %zu bytes (not an imatrix file?)", f,
                       (int)n, size);
    im->legacy = true;
    for (int k = 0; k < n; k++) {
        qb_status st = dat_entry(ctx, f, &r, k, im);
        if (st != QB_OK) return st;
    }
    if (left(&r) == 0) return QB_OK; /* files from before the trailer */
    int32_t last, dlen;
    if (!get_i32(&r, &last) || !get_i32(&r, &dlen))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated after the entries (the chunk count and dataset name)", f);
    if (last < 0) return qb_fail(ctx, QB_ERR_FORMAT, "%s: chunk count %d is negative", f, (int)last);
    if (dlen < 0 || (size_t)dlen > left(&r))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: dataset name of %d bytes, %zu left (truncated?)", f, (int)dlen,
                       left(&r));
    if ((size_t)dlen < left(&r))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: %zu bytes after the end of the imatrix data", f, left(&r) - dlen);
    if (memchr(r.p + r.off, 0, (size_t)dlen)) return qb_fail(ctx, QB_ERR_FORMAT, "%s: NUL byte in the dataset name", f);
    im->dat_trailer = true;
    im->chunk_count = last;
    if (!qb_imatrix_add_dataset(im, (const char *)r.p + r.off, (size_t)dlen))
        return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", f);
    return QB_OK;
}

/* ---- GGUF ------------------------------------------------------------------------------ */

/* The entry name of a tensor "<name>.in_sum2" / "<name>.counts" (*kind 0 / 1), or false. */
static bool split_name(const char *t, size_t *len, int *kind)
{
    static const char *const suffix[] = {".in_sum2", ".counts"};
    size_t n = strlen(t);
    for (int k = 0; k < 2; k++) {
        size_t s = strlen(suffix[k]);
        if (n > s && !strcmp(t + n - s, suffix[k])) {
            *len = n - s;
            *kind = k;
            return true;
        }
    }
    return false;
}

static const qb_gguf_tensor *partner(const qb_gguf *g, const char *base, size_t len, const char *suffix)
{
    char name[MAX_NAME + 16];
    snprintf(name, sizeof name, "%.*s%s", (int)len, base, suffix);
    return qb_gguf_find_tensor(g, name);
}

static qb_status gguf_entry(qb_ctx *ctx, const char *f, const qb_gguf *g, const qb_gguf_tensor *s, size_t len,
                            qb_imatrix *im)
{
    const char *base = s->name;
    const qb_gguf_tensor *c = partner(g, base, len, ".counts");
    if (!c) return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%.*s' has sums but no counts", f, (int)len, base);
    if (s->type != QB_TYPE_F32 || c->type != QB_TYPE_F32)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%.*s': sums and counts must be F32", f, (int)len, base);
    if (s->ne[0] < 1 || s->ne[1] < 1 || s->ne[2] != 1 || s->ne[3] != 1 || s->ne[0] > INT32_MAX || s->ne[1] > INT32_MAX ||
        s->ne[0] * s->ne[1] > INT32_MAX)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%.*s': sums of shape %lld x %lld x %lld x %lld", f, (int)len,
                       base, (long long)s->ne[0], (long long)s->ne[1], (long long)s->ne[2], (long long)s->ne[3]);
    int64_t nc = c->ne[0] * c->ne[1] * c->ne[2] * c->ne[3];
    if (nc != s->ne[1])
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%.*s': %lld counts for %lld matrices", f, (int)len, base,
                       (long long)nc, (long long)s->ne[1]);
    qb_imatrix_entry *e = qb_imatrix_add(im, base, len, (int)s->ne[0], (int)s->ne[1]);
    if (!e) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", f);
    memcpy(e->sum2, s->data, (size_t)s->ne[0] * s->ne[1] * sizeof(float));
    memcpy(e->counts, c->data, (size_t)nc * sizeof(float));
    float max = 0;
    for (int64_t i = 0; i < s->ne[0] * s->ne[1]; i++)
        if (bad_value(e->sum2[i]))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%s': sum %lld is %g (must be finite and non-negative)", f,
                           e->name, (long long)i, (double)e->sum2[i]);
    for (int j = 0; j < e->n_mat; j++) {
        if (bad_value(e->counts[j]))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%s': count %d is %g (must be finite and non-negative)", f,
                           e->name, j, (double)e->counts[j]);
        if (e->counts[j] > max) max = e->counts[j];
    }
    /* what the later llama-imatrix writes into a .dat: chunks, rounded up */
    double calls = im->chunk_size > 0 ? ceil(max / (double)im->chunk_size) : im->chunk_count;
    e->ncall = calls > INT32_MAX ? INT32_MAX : (int32_t)calls;
    return QB_OK;
}

static int64_t gguf_u32(const qb_gguf *g, const char *key)
{
    const qb_gguf_kv *kv = qb_gguf_find(g, key);
    if (!kv || kv->type == QB_GGUF_STRING || kv->type == QB_GGUF_ARRAY || kv->type == QB_GGUF_FLOAT32 ||
        kv->type == QB_GGUF_FLOAT64 || kv->type == QB_GGUF_BOOL)
        return -1;
    int64_t v = qb_gguf_get_int(g, key, -1);
    return v >= 0 && v <= INT32_MAX ? v : -1;
}

static qb_status load_gguf(qb_ctx *ctx, const char *f, const void *data, size_t size, qb_imatrix *im)
{
    qb_gguf *g;
    qb_status st = qb_gguf_open_memory(ctx, f, data, size, &g);
    if (st != QB_OK) return st;
    const char *type = qb_gguf_get_str(g, "general.type");
    const qb_gguf_kv *ds = qb_gguf_find(g, "imatrix.datasets");
    int64_t count = gguf_u32(g, "imatrix.chunk_count"), csize = gguf_u32(g, "imatrix.chunk_size");
    if (type && strcmp(type, "imatrix"))
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: a GGUF file of general.type '%s', not an imatrix", f, type);
    else if (!ds || ds->type != QB_GGUF_ARRAY || ds->arr_type != QB_GGUF_STRING)
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: no imatrix.datasets (array of strings): not a GGUF imatrix", f);
    else if (count < 0 || csize < 0)
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: imatrix.%s missing or not a 32-bit count: not a GGUF imatrix", f,
                     count < 0 ? "chunk_count" : "chunk_size");
    if (st != QB_OK) goto done;
    im->chunk_count = (int32_t)count;
    im->chunk_size = (int32_t)csize;
    for (uint64_t i = 0; i < ds->arr_n && st == QB_OK; i++)
        if (!qb_imatrix_add_dataset(im, ds->arr_str[i].ptr, (size_t)ds->arr_str[i].len))
            st = qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", f);
    for (uint64_t i = 0; i < g->n_tensors && st == QB_OK; i++) {
        size_t len;
        int kind;
        const qb_gguf_tensor *t = &g->tensors[i];
        if (!split_name(t->name, &len, &kind)) continue; /* in_sum and anything else: not ours */
        int bad = control_byte(t->name, len);
        if (len > MAX_NAME) st = qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor name of %zu bytes", f, len);
        else if (bad >= 0) st = qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor %llu: control byte 0x%02x in its name", f,
                                        (unsigned long long)i, bad);
        else if (kind == 0) st = gguf_entry(ctx, f, g, t, len, im);
        else if (!partner(g, t->name, len, ".in_sum2"))
            st = qb_fail(ctx, QB_ERR_FORMAT, "%s: entry '%.*s' has counts but no sums", f, (int)len, t->name);
    }
    if (st == QB_OK && im->n_entries == 0) st = qb_fail(ctx, QB_ERR_FORMAT, "%s: no imatrix entries", f);
done:
    qb_gguf_close(g);
    return st;
}

qb_status qb_imatrix_load_memory(qb_ctx *ctx, const char *name, const void *data, size_t size, qb_imatrix **out)
{
    *out = NULL;
    qb_imatrix *im = qb_imatrix_new();
    if (!im || !(im->path = strdup(name))) {
        qb_imatrix_free(im);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    }
    qb_status st = size >= 4 && !memcmp(data, "GGUF", 4) ? load_gguf(ctx, name, data, size, im)
                                                          : load_dat(ctx, name, data, size, im);
    if (st == QB_OK) st = qb_imatrix_finish(ctx, im);
    if (st != QB_OK) {
        qb_imatrix_free(im);
        return st;
    }
    *out = im;
    return QB_OK;
}

qb_status qb_imatrix_load(qb_ctx *ctx, const char *path, qb_imatrix **out)
{
    *out = NULL;
    qb_mapfile map;
    qb_status st = qb_mapfile_open(ctx, path, &map);
    if (st != QB_OK) return st;
    st = qb_imatrix_load_memory(ctx, path, map.data ? map.data : "", map.size, out);
    qb_mapfile_close(&map);
    return st;
}

/* ---- writing --------------------------------------------------------------------------- */

static bool has_empty_matrix(const qb_imatrix_entry *e)
{
    for (int j = 0; j < e->n_mat; j++)
        if (e->counts[j] <= 0) return true;
    return false;
}

static bool put_i32(qb_atomic_file *af, int32_t v) { return qb_atomic_write(af, &v, 4); }

static qb_status save_dat(qb_ctx *ctx, const qb_imatrix *im, const char *path, int *n_skipped)
{
    int32_t n = 0, last = 0;
    for (int i = 0; i < im->n_entries; i++) {
        if (im->legacy || !has_empty_matrix(&im->entries[i])) n++;
        if (im->entries[i].ncall > last) last = im->entries[i].ncall;
    }
    if (n_skipped) *n_skipped = im->n_entries - n;
    if (n == 0) return qb_fail(ctx, QB_ERR_ARG, "%s: no entry to write: each has an expert that saw no token", path);
    if (im->legacy) last = im->chunk_count;
    qb_atomic_file af;
    qb_status st = qb_atomic_begin(ctx, path, &af);
    if (st != QB_OK) return st;
    bool ok = put_i32(&af, n);
    float *tmp = NULL;
    const char *overflow = NULL;
    for (int i = 0; i < im->n_entries && ok; i++) {
        const qb_imatrix_entry *e = &im->entries[i];
        size_t nval = (size_t)e->n_cols * e->n_mat;
        if (!im->legacy && has_empty_matrix(e)) continue;
        ok = put_i32(&af, (int32_t)strlen(e->name)) && qb_atomic_write(&af, e->name, strlen(e->name)) &&
             put_i32(&af, e->ncall) && put_i32(&af, (int32_t)nval);
        if (ok && im->legacy) {
            ok = qb_atomic_write(&af, e->sum2, nval * sizeof(float));
            continue;
        }
        float *p = ok ? realloc(tmp, nval * sizeof *p) : NULL;
        if (!p) {
            ok = false;
            break;
        }
        tmp = p;
        for (size_t k = 0; k < nval; k++) /* c392e50: values / counts × ncall, in float */
            if (!isfinite(tmp[k] = e->sum2[k] / e->counts[k / e->n_cols] * (float)e->ncall)) overflow = e->name;
        ok = !overflow && qb_atomic_write(&af, tmp, nval * sizeof *tmp);
    }
    free(tmp);
    if (overflow) {
        qb_atomic_abort(&af);
        return qb_fail(ctx, QB_ERR_ARG, "%s: entry '%s': a value overflows a float in the .dat's scale", path, overflow);
    }
    if (ok && (!im->legacy || im->dat_trailer)) {
        const char *ds = im->n_datasets ? im->datasets[im->n_datasets - 1] : "";
        ok = put_i32(&af, last) && put_i32(&af, (int32_t)strlen(ds)) && qb_atomic_write(&af, ds, strlen(ds));
    }
    if (!ok) {
        qb_atomic_abort(&af);
        return qb_fail(ctx, QB_ERR_IO, "%s: write failed", path);
    }
    return qb_atomic_commit(ctx, &af);
}

static qb_status save_gguf(qb_ctx *ctx, const qb_imatrix *im, const char *path)
{
    int32_t csize = im->chunk_size > 0 ? im->chunk_size : 512;
    qb_gguf_writer *w = qb_gguf_writer_new();
    float **conv = calloc((size_t)im->n_entries * 2 + 1, sizeof *conv); /* legacy values made sums */
    const char *overflow = NULL;
    bool ok = w && conv && qb_gguf_set_str(w, "general.type", "imatrix") &&
              qb_gguf_set_arr_str(w, "imatrix.datasets", (const char *const *)im->datasets, (size_t)im->n_datasets) &&
              qb_gguf_set_u32(w, "imatrix.chunk_count", (uint32_t)im->chunk_count) &&
              qb_gguf_set_u32(w, "imatrix.chunk_size", (uint32_t)csize);
    for (int k = 0; k < im->n_entries && ok && !overflow; k++) { /* sorted by name, as llama-imatrix writes */
        const qb_imatrix_entry *e = &im->entries[im->by_name[k]];
        size_t nval = (size_t)e->n_cols * e->n_mat;
        const float *sums = e->sum2, *counts = e->counts;
        if (im->legacy) {
            float *s = conv[2 * k] = malloc(nval * sizeof *s), *c = conv[2 * k + 1] = malloc(e->n_mat * sizeof *c);
            if (!s || !c) {
                ok = false;
                break;
            }
            for (size_t i = 0; i < nval; i++)
                if (!isfinite(s[i] = e->sum2[i] * (float)csize)) overflow = e->name;
            for (int j = 0; j < e->n_mat; j++) c[j] = e->counts[j] * (float)csize;
            sums = s;
            counts = c;
        }
        char name[MAX_NAME + 16];
        snprintf(name, sizeof name, "%s.in_sum2", e->name);
        ok = qb_gguf_add_tensor(w, name, QB_TYPE_F32, 2, (int64_t[]){e->n_cols, e->n_mat}, sums);
        snprintf(name, sizeof name, "%s.counts", e->name);
        ok = ok && qb_gguf_add_tensor(w, name, QB_TYPE_F32, 2, (int64_t[]){1, e->n_mat}, counts);
    }
    qb_status st = overflow ? qb_fail(ctx, QB_ERR_ARG, "%s: entry '%s': a value overflows a float as a sum", path, overflow)
                   : ok     ? qb_gguf_write_file(ctx, w, path, NULL)
                            : qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
    for (int k = 0; conv && k < 2 * im->n_entries; k++) free(conv[k]);
    free(conv);
    qb_gguf_writer_free(w);
    return st;
}

qb_status qb_imatrix_save(qb_ctx *ctx, const qb_imatrix *im, const char *path, qb_imatrix_format fmt, int *n_skipped)
{
    if (n_skipped) *n_skipped = 0;
    if (im->n_entries == 0)
        return qb_fail(ctx, QB_ERR_ARG, "%s: nothing to write: the imatrix has no entries (no call of 16 tokens or "
                       "more reached a matrix)", path);
    return fmt == QB_IMATRIX_GGUF ? save_gguf(ctx, im, path) : save_dat(ctx, im, path, n_skipped);
}
