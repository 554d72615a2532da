/* gguf_read.c — parse and validate a GGUF file held in a read-only mapping.
 * Every read is bounds-checked against the file size, so truncated or hostile files produce
 * a one-line error instead of a crash. */
#include "gguf.h"

#include <stdlib.h>
#include <string.h>

#define GGUF_MAX_DIMS 4
#define GGUF_MAX_STR (1ull << 30)

typedef struct {
    const uint8_t *p;
    size_t size, pos;
    qb_ctx *ctx;
    const char *name;
    qb_status status; /* what a failed read reports (format unless said otherwise) */
} reader;

static bool need(reader *r, uint64_t n, const char *what)
{
    if (n > r->size - r->pos) {
        qb_fail(r->ctx, QB_ERR_FORMAT, "%s: truncated file: %s at offset %zu needs %llu bytes, %zu left",
                r->name, what, r->pos, (unsigned long long)n, r->size - r->pos);
        return false;
    }
    return true;
}

static bool rd(reader *r, void *dst, size_t n, const char *what)
{
    if (!need(r, n, what)) return false;
    memcpy(dst, r->p + r->pos, n);
    r->pos += n;
    return true;
}

static bool rd_str(reader *r, qb_gguf_strref *s, const char *what)
{
    uint64_t len;
    if (!rd(r, &len, 8, what)) return false;
    if (len > GGUF_MAX_STR) {
        qb_fail(r->ctx, QB_ERR_FORMAT, "%s: absurd string length %llu (%s at offset %zu)", r->name,
                (unsigned long long)len, what, r->pos - 8);
        return false;
    }
    if (!need(r, len, what)) return false;
    s->ptr = (const char *)r->p + r->pos;
    s->len = len;
    r->pos += len;
    return true;
}

static char *dup_ref(qb_gguf_strref s)
{
    char *c = malloc(s.len + 1);
    if (!c) return NULL;
    memcpy(c, s.ptr, s.len);
    c[s.len] = 0;
    return c;
}

size_t qb_gguf_type_size(uint32_t type)
{
    switch (type) {
    case QB_GGUF_UINT8: case QB_GGUF_INT8: case QB_GGUF_BOOL: return 1;
    case QB_GGUF_UINT16: case QB_GGUF_INT16: return 2;
    case QB_GGUF_UINT32: case QB_GGUF_INT32: case QB_GGUF_FLOAT32: return 4;
    case QB_GGUF_UINT64: case QB_GGUF_INT64: case QB_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* A float value as int64 without undefined behaviour: NaN gives 0, out-of-range values
 * saturate (a hostile file may store 1e300 where an integer is expected). */
static int64_t f64_to_i64(double d)
{
    if (d != d) return 0;
    if (d >= 9223372036854775808.0) return INT64_MAX;
    if (d < -9223372036854775808.0) return INT64_MIN;
    return (int64_t)d;
}

/* Widen one scalar at p into kv's i64/u64/f64. */
static void set_scalar(qb_gguf_kv *kv, uint32_t type, const uint8_t *p)
{
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
            float f32; uint64_t u64; int64_t i64; double f64; } v;
    memcpy(&v, p, qb_gguf_type_size(type));
    switch (type) {
    case QB_GGUF_UINT8: kv->u64 = v.u8; kv->i64 = v.u8; kv->f64 = v.u8; break;
    case QB_GGUF_BOOL: kv->u64 = v.u8 != 0; kv->i64 = v.u8 != 0; kv->f64 = v.u8 != 0; break;
    case QB_GGUF_INT8: kv->i64 = v.i8; kv->u64 = (uint64_t)v.i8; kv->f64 = v.i8; break;
    case QB_GGUF_UINT16: kv->u64 = v.u16; kv->i64 = v.u16; kv->f64 = v.u16; break;
    case QB_GGUF_INT16: kv->i64 = v.i16; kv->u64 = (uint64_t)v.i16; kv->f64 = v.i16; break;
    case QB_GGUF_UINT32: kv->u64 = v.u32; kv->i64 = v.u32; kv->f64 = v.u32; break;
    case QB_GGUF_INT32: kv->i64 = v.i32; kv->u64 = (uint64_t)v.i32; kv->f64 = v.i32; break;
    case QB_GGUF_FLOAT32: kv->f64 = v.f32; kv->i64 = f64_to_i64(v.f32); kv->u64 = (uint64_t)kv->i64; break;
    case QB_GGUF_UINT64: kv->u64 = v.u64; kv->i64 = (int64_t)v.u64; kv->f64 = (double)v.u64; break;
    case QB_GGUF_INT64: kv->i64 = v.i64; kv->u64 = (uint64_t)v.i64; kv->f64 = (double)v.i64; break;
    case QB_GGUF_FLOAT64: kv->f64 = v.f64; kv->i64 = f64_to_i64(v.f64); kv->u64 = (uint64_t)kv->i64; break;
    }
}

static bool read_kv(reader *r, qb_gguf_kv *kv)
{
    qb_gguf_strref key;
    if (!rd_str(r, &key, "metadata key")) return false;
    if (!(kv->key = dup_ref(key))) {
        qb_fail(r->ctx, QB_ERR_NOMEM, "%s: out of memory", r->name);
        return false;
    }
    if (!rd(r, &kv->type, 4, "metadata type")) return false;
    if (kv->type >= QB_GGUF_NTYPES) {
        qb_fail(r->ctx, QB_ERR_FORMAT, "%s: key '%s' has unknown value type %u", r->name, kv->key, kv->type);
        return false;
    }
    if (kv->type == QB_GGUF_STRING) {
        qb_gguf_strref s;
        if (!rd_str(r, &s, kv->key)) return false;
        if (!(kv->str = dup_ref(s))) {
            qb_fail(r->ctx, QB_ERR_NOMEM, "%s: out of memory", r->name);
            return false;
        }
        return true;
    }
    if (kv->type != QB_GGUF_ARRAY) {
        size_t n = qb_gguf_type_size(kv->type);
        if (!need(r, n, kv->key)) return false;
        set_scalar(kv, kv->type, r->p + r->pos);
        r->pos += n;
        return true;
    }
    if (!rd(r, &kv->arr_type, 4, kv->key) || !rd(r, &kv->arr_n, 8, kv->key)) return false;
    if (kv->arr_type >= QB_GGUF_NTYPES || kv->arr_type == QB_GGUF_ARRAY) {
        qb_fail(r->ctx, QB_ERR_FORMAT, "%s: array '%s' has unsupported element type %u", r->name, kv->key,
                kv->arr_type);
        return false;
    }
    if (kv->arr_type == QB_GGUF_STRING) {
        /* every string takes at least 8 bytes: bound the count before allocating */
        if (kv->arr_n > (r->size - r->pos) / 8) {
            qb_fail(r->ctx, QB_ERR_FORMAT, "%s: array '%s' claims %llu strings, more than the file holds",
                    r->name, kv->key, (unsigned long long)kv->arr_n);
            return false;
        }
        kv->arr_str = malloc((kv->arr_n ? kv->arr_n : 1) * sizeof *kv->arr_str);
        if (!kv->arr_str) {
            qb_fail(r->ctx, QB_ERR_NOMEM, "%s: out of memory", r->name);
            return false;
        }
        for (uint64_t i = 0; i < kv->arr_n; i++)
            if (!rd_str(r, &kv->arr_str[i], kv->key)) return false;
        return true;
    }
    size_t es = qb_gguf_type_size(kv->arr_type);
    if (kv->arr_n > (r->size - r->pos) / es) {
        qb_fail(r->ctx, QB_ERR_FORMAT, "%s: array '%s' claims %llu elements, more than the file holds",
                r->name, kv->key, (unsigned long long)kv->arr_n);
        return false;
    }
    kv->arr_data = r->p + r->pos;
    r->pos += kv->arr_n * es;
    return true;
}

static bool read_tensor_info(reader *r, qb_gguf_tensor *t)
{
    qb_gguf_strref name;
    if (!rd_str(r, &name, "tensor name")) return false;
    if (!(t->name = dup_ref(name))) {
        qb_fail(r->ctx, QB_ERR_NOMEM, "%s: out of memory", r->name);
        return false;
    }
    uint32_t nd;
    if (!rd(r, &nd, 4, t->name)) return false;
    if (nd < 1 || nd > GGUF_MAX_DIMS) {
        qb_fail(r->ctx, QB_ERR_FORMAT, "%s: tensor '%s' has %u dimensions (1..4 allowed)", r->name, t->name, nd);
        return false;
    }
    t->n_dims = (int)nd;
    for (int i = 0; i < 4; i++) t->ne[i] = 1;
    uint64_t nel = 1;
    for (uint32_t i = 0; i < nd; i++) {
        uint64_t d;
        if (!rd(r, &d, 8, t->name)) return false;
        if (d == 0 || d > (1ull << 40) || nel > (1ull << 46) / d) {
            qb_fail(r->ctx, QB_ERR_FORMAT, "%s: tensor '%s' has absurd dimension %llu", r->name, t->name,
                    (unsigned long long)d);
            return false;
        }
        t->ne[i] = (int64_t)d;
        nel *= d;
    }
    uint32_t type;
    if (!rd(r, &type, 4, t->name) || !rd(r, &t->offset, 8, t->name)) return false;
    const qb_type_info *ti = qb_type_get((int)type);
    if (!ti) {
        r->status = qb_fail(r->ctx, QB_ERR_UNSUPPORTED, "%s: tensor '%s' has unsupported type %u", r->name,
                            t->name, type);
        return false;
    }
    t->type = (int)type;
    if (t->ne[0] % ti->blck != 0) {
        qb_fail(r->ctx, QB_ERR_FORMAT, "%s: tensor '%s' row length %lld is not a multiple of %s block size %d",
                r->name, t->name, (long long)t->ne[0], ti->name, ti->blck);
        return false;
    }
    t->nbytes = (size_t)(nel / (uint64_t)ti->blck) * (size_t)ti->size;
    return true;
}

static int cmp_offset(const void *a, const void *b)
{
    const qb_gguf_tensor *x = *(qb_gguf_tensor *const *)a, *y = *(qb_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Check data offsets: aligned, inside the file, not overlapping. */
static bool check_layout(reader *r, qb_gguf *g)
{
    size_t avail = r->size - g->data_offset;
    qb_gguf_tensor **order = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *order);
    if (!order) {
        qb_fail(r->ctx, QB_ERR_NOMEM, "%s: out of memory", r->name);
        return false;
    }
    bool ok = true;
    for (uint64_t i = 0; i < g->n_tensors && ok; i++) {
        qb_gguf_tensor *t = &g->tensors[i];
        order[i] = t;
        if (t->offset % g->alignment != 0) {
            qb_fail(r->ctx, QB_ERR_FORMAT, "%s: tensor '%s' data offset %llu is not aligned to %zu", r->name,
                    t->name, (unsigned long long)t->offset, g->alignment);
            ok = false;
        } else if (t->offset > avail || t->nbytes > avail - t->offset) {
            qb_fail(r->ctx, QB_ERR_FORMAT,
                    "%s: tensor '%s' data (offset %llu, %zu bytes) lies past the end of the file (truncated?)",
                    r->name, t->name, (unsigned long long)t->offset, t->nbytes);
            ok = false;
        } else {
            t->data = r->p + g->data_offset + t->offset;
        }
    }
    if (ok && g->n_tensors > 1) {
        qsort(order, g->n_tensors, sizeof *order, cmp_offset);
        for (uint64_t i = 1; i < g->n_tensors; i++) {
            if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset) {
                qb_fail(r->ctx, QB_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", r->name, order[i - 1]->name,
                        order[i]->name);
                ok = false;
                break;
            }
        }
    }
    free(order);
    return ok;
}

static qb_status parse(qb_ctx *ctx, qb_gguf *g, const char *name)
{
    reader r = {.p = g->map.data, .size = g->map.size, .pos = 0, .ctx = ctx, .name = name,
                .status = QB_ERR_FORMAT};
    char magic[4];
    if (r.size < 4) return qb_fail(ctx, QB_ERR_FORMAT, "%s: not a GGUF file (too short)", name);
    rd(&r, magic, 4, "magic");
    if (memcmp(magic, "GGUF", 4) != 0) return qb_fail(ctx, QB_ERR_FORMAT, "%s: not a GGUF file (bad magic)", name);
    if (!rd(&r, &g->version, 4, "version")) return QB_ERR_FORMAT;
    if (g->version != 2 && g->version != 3)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: GGUF version %u is not supported (2 and 3 are)", name,
                       g->version);
    uint64_t n_kv, n_t;
    if (!rd(&r, &n_t, 8, "tensor count") || !rd(&r, &n_kv, 8, "metadata count")) return QB_ERR_FORMAT;
    /* each kv takes >= 8+1+4 bytes, each tensor info >= 8+4+8+4+8 */
    if (n_kv > r.size / 13 || n_t > r.size / 32)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: absurd counts (%llu tensors, %llu metadata entries) for a %zu-byte file (truncated or corrupt?)",
                       name, (unsigned long long)n_t, (unsigned long long)n_kv, r.size);
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(n_t ? n_t : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", name);
    /* n_kv / n_tensors on g count the initialised entries, for cleanup */
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv++;
        if (!read_kv(&r, &g->kv[i])) return r.status;
    }
    g->alignment = 32;
    const qb_gguf_kv *al = qb_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type == QB_GGUF_ARRAY || al->type == QB_GGUF_STRING || al->u64 == 0 || al->u64 > 65536 ||
            (al->u64 & (al->u64 - 1)) != 0)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: general.alignment must be a power of two", name);
        g->alignment = (size_t)al->u64;
    }
    for (uint64_t i = 0; i < n_t; i++) {
        g->n_tensors++;
        if (!read_tensor_info(&r, &g->tensors[i])) return r.status;
    }
    size_t off = (r.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (off > r.size) {
        if (n_t > 0) return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated file: no tensor data section", name);
        off = r.size;
    }
    g->data_offset = off;
    if (!check_layout(&r, g)) return QB_ERR_FORMAT;
    return QB_OK;
}

static qb_status open_common(qb_ctx *ctx, const char *name, qb_gguf *g, qb_gguf **out)
{
    g->path = strdup(name);
    qb_status st = g->path ? parse(ctx, g, name) : qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    if (st != QB_OK) {
        qb_gguf_close(g);
        return st;
    }
    *out = g;
    return QB_OK;
}

qb_status qb_gguf_open_one(qb_ctx *ctx, const char *path, qb_gguf **out)
{
    *out = NULL;
    qb_gguf *g = calloc(1, sizeof *g);
    if (!g) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    qb_status st = qb_mapfile_open(ctx, path, &g->map);
    if (st != QB_OK) {
        free(g);
        return st;
    }
    g->n_parts = 1;
    return open_common(ctx, path, g, out);
}

qb_status qb_gguf_open(qb_ctx *ctx, const char *path, qb_gguf **out)
{
    qb_status st = qb_gguf_open_one(ctx, path, out);
    if (st == QB_OK && (st = qb_gguf_join_splits(ctx, *out)) != QB_OK) {
        qb_gguf_close(*out);
        *out = NULL;
    }
    return st;
}

qb_status qb_gguf_open_memory(qb_ctx *ctx, const char *name, const void *data, size_t size, qb_gguf **out)
{
    *out = NULL;
    qb_gguf *g = calloc(1, sizeof *g);
    if (!g) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    g->map.data = (void *)data;
    g->map.size = size;
    g->borrowed = true;
    g->n_parts = 1;
    return open_common(ctx, name, g, out);
}

void qb_gguf_close(qb_gguf *g)
{
    if (!g) return;
    for (int i = 0; i + 1 < g->n_parts && g->parts; i++) qb_gguf_close(g->parts[i]);
    free(g->parts);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str);
        free(g->kv[i].arr_str);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    if (!g->borrowed) qb_mapfile_close(&g->map);
    free(g->path);
    free(g);
}

const qb_gguf_kv *qb_gguf_find(const qb_gguf *g, const char *key)
{
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

static bool is_scalar(const qb_gguf_kv *kv)
{
    return kv && kv->type != QB_GGUF_STRING && kv->type != QB_GGUF_ARRAY;
}

int64_t qb_gguf_get_int(const qb_gguf *g, const char *key, int64_t dflt)
{
    const qb_gguf_kv *kv = qb_gguf_find(g, key);
    return is_scalar(kv) ? kv->i64 : dflt;
}

double qb_gguf_get_float(const qb_gguf *g, const char *key, double dflt)
{
    const qb_gguf_kv *kv = qb_gguf_find(g, key);
    return is_scalar(kv) ? kv->f64 : dflt;
}

bool qb_gguf_get_bool(const qb_gguf *g, const char *key, bool dflt)
{
    const qb_gguf_kv *kv = qb_gguf_find(g, key);
    return is_scalar(kv) ? kv->u64 != 0 : dflt;
}

const char *qb_gguf_get_str(const qb_gguf *g, const char *key)
{
    const qb_gguf_kv *kv = qb_gguf_find(g, key);
    return kv && kv->type == QB_GGUF_STRING ? kv->str : NULL;
}

const qb_gguf_tensor *qb_gguf_find_tensor(const qb_gguf *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

double qb_gguf_arr_float(const qb_gguf_kv *kv, uint64_t i)
{
    qb_gguf_kv tmp = {0};
    size_t es = qb_gguf_type_size(kv->arr_type);
    set_scalar(&tmp, kv->arr_type, (const uint8_t *)kv->arr_data + i * es);
    return tmp.f64;
}

int64_t qb_gguf_arr_int(const qb_gguf_kv *kv, uint64_t i)
{
    qb_gguf_kv tmp = {0};
    size_t es = qb_gguf_type_size(kv->arr_type);
    set_scalar(&tmp, kv->arr_type, (const uint8_t *)kv->arr_data + i * es);
    return tmp.i64;
}
