/* gguf_write.c — serialise metadata and tensors as GGUF v3, to memory or atomically to a file. */
#include "gguf_write.h"
#include "gguf.h"
#include "atomic_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;
    uint32_t type;
    uint8_t *payload; /* the value bytes exactly as stored after the type field */
    size_t len;
} kv_entry;

typedef struct {
    char *name;
    int type, n_dims;
    int64_t ne[4];
    const void *data;
    size_t nbytes;
    qb_gguf_produce_fn produce; /* lazy tensors: filled at write time */
    void *ud;
    int index;
} tensor_entry;

struct qb_gguf_writer {
    kv_entry *kv;
    size_t n_kv;
    tensor_entry *t;
    size_t n_t;
    size_t alignment;
};

/* A growable byte buffer. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} buf;

static void put(buf *b, const void *src, size_t n)
{
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

qb_gguf_writer *qb_gguf_writer_new(void)
{
    qb_gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->alignment = 32;
    return w;
}

void qb_gguf_writer_free(qb_gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].payload);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

void qb_gguf_remove_kv(qb_gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].key);
            free(w->kv[i].payload);
            memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - i - 1) * sizeof *w->kv);
            w->n_kv--;
            return;
        }
}

static bool add_kv(qb_gguf_writer *w, const char *key, uint32_t type, buf *payload)
{
    if (!payload->oom && !strcmp(key, "general.alignment") && type == QB_GGUF_UINT32 && payload->len == 4) {
        uint32_t a;
        memcpy(&a, payload->p, 4);
        if (a && !(a & (a - 1))) w->alignment = a;
    }
    for (size_t i = 0; i < w->n_kv; i++) /* replace in place, keeping the order */
        if (!strcmp(w->kv[i].key, key)) {
            if (payload->oom) {
                free(payload->p);
                return false;
            }
            free(w->kv[i].payload);
            w->kv[i].type = type;
            w->kv[i].payload = payload->p;
            w->kv[i].len = payload->len;
            return true;
        }
    kv_entry *nk = payload->oom ? NULL : realloc(w->kv, (w->n_kv + 1) * sizeof *nk);
    char *k = nk ? strdup(key) : NULL;
    if (!k) {
        if (nk) w->kv = nk;
        free(payload->p);
        return false;
    }
    w->kv = nk;
    w->kv[w->n_kv++] = (kv_entry){k, type, payload->p, payload->len};
    return true;
}

static bool set_scalar(qb_gguf_writer *w, const char *key, uint32_t type, const void *v, size_t n)
{
    buf b = {0};
    put(&b, v, n);
    return add_kv(w, key, type, &b);
}

bool qb_gguf_set_str(qb_gguf_writer *w, const char *key, const char *val)
{
    buf b = {0};
    put_str(&b, val);
    return add_kv(w, key, QB_GGUF_STRING, &b);
}

bool qb_gguf_set_u32(qb_gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, QB_GGUF_UINT32, &v, 4); }
bool qb_gguf_set_u64(qb_gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, QB_GGUF_UINT64, &v, 8); }
bool qb_gguf_set_i32(qb_gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, QB_GGUF_INT32, &v, 4); }
bool qb_gguf_set_f32(qb_gguf_writer *w, const char *key, float v) { return set_scalar(w, key, QB_GGUF_FLOAT32, &v, 4); }
bool qb_gguf_set_bool(qb_gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v;
    return set_scalar(w, key, QB_GGUF_BOOL, &b, 1);
}

bool qb_gguf_set_arr_str(qb_gguf_writer *w, const char *key, const char *const *vals, size_t n)
{
    buf b = {0};
    put_u32(&b, QB_GGUF_STRING);
    put_u64(&b, n);
    for (size_t i = 0; i < n; i++) put_str(&b, vals[i]);
    return add_kv(w, key, QB_GGUF_ARRAY, &b);
}

bool qb_gguf_set_arr(qb_gguf_writer *w, const char *key, uint32_t elem_type, const void *vals, size_t n)
{
    size_t es = qb_gguf_type_size(elem_type);
    if (!es) return false;
    buf b = {0};
    put_u32(&b, elem_type);
    put_u64(&b, n);
    put(&b, vals, n * es);
    return add_kv(w, key, QB_GGUF_ARRAY, &b);
}

/* The value bytes of a scalar kv in its own type, rebuilt from the widened fields. */
static void put_scalar(buf *b, const qb_gguf_kv *kv)
{
    union { uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64; float f32; double f64; } v;
    switch (kv->type) {
    case QB_GGUF_FLOAT32: v.f32 = (float)kv->f64; break;
    case QB_GGUF_FLOAT64: v.f64 = kv->f64; break;
    case QB_GGUF_UINT8: case QB_GGUF_INT8: case QB_GGUF_BOOL: v.u8 = (uint8_t)kv->u64; break;
    case QB_GGUF_UINT16: case QB_GGUF_INT16: v.u16 = (uint16_t)kv->u64; break;
    case QB_GGUF_UINT32: case QB_GGUF_INT32: v.u32 = (uint32_t)kv->u64; break;
    default: v.u64 = kv->u64; break;
    }
    put(b, &v, qb_gguf_type_size(kv->type));
}

bool qb_gguf_copy_kv(qb_gguf_writer *w, const void *kvp)
{
    const qb_gguf_kv *kv = kvp;
    buf b = {0};
    if (kv->type == QB_GGUF_STRING) {
        put_str(&b, kv->str);
    } else if (kv->type == QB_GGUF_ARRAY) {
        put_u32(&b, kv->arr_type);
        put_u64(&b, kv->arr_n);
        if (kv->arr_type == QB_GGUF_STRING) {
            for (uint64_t i = 0; i < kv->arr_n; i++) {
                put_u64(&b, kv->arr_str[i].len);
                put(&b, kv->arr_str[i].ptr, kv->arr_str[i].len);
            }
        } else {
            put(&b, kv->arr_data, kv->arr_n * qb_gguf_type_size(kv->arr_type));
        }
    } else {
        put_scalar(&b, kv);
    }
    return add_kv(w, kv->key, kv->type, &b);
}

bool qb_gguf_add_tensor(qb_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne, const void *data)
{
    const qb_type_info *ti = qb_type_get(type);
    if (!ti || n_dims < 1 || n_dims > 4 || ne[0] % ti->blck) return false;
    tensor_entry *nt = realloc(w->t, (w->n_t + 1) * sizeof *nt);
    if (!nt) return false;
    w->t = nt;
    tensor_entry *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return false;
    t->type = type;
    t->n_dims = n_dims;
    int64_t nel = 1;
    for (int i = 0; i < 4; i++) {
        t->ne[i] = i < n_dims ? ne[i] : 1;
        nel *= t->ne[i];
    }
    t->data = data;
    t->nbytes = (size_t)(nel / ti->blck) * (size_t)ti->size;
    w->n_t++;
    return true;
}

bool qb_gguf_add_tensor_lazy(qb_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                             qb_gguf_produce_fn produce, void *ud, int index)
{
    if (!qb_gguf_add_tensor(w, name, type, n_dims, ne, NULL)) return false;
    tensor_entry *t = &w->t[w->n_t - 1];
    t->produce = produce;
    t->ud = ud;
    t->index = index;
    return true;
}

static size_t pad_to(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Header + metadata + tensor directory + padding up to the data section. */
static bool build_header(const qb_gguf_writer *w, buf *b)
{
    put(b, "GGUF", 4);
    put_u32(b, 3);
    put_u64(b, w->n_t);
    put_u64(b, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(b, w->kv[i].key);
        put_u32(b, w->kv[i].type);
        put(b, w->kv[i].payload, w->kv[i].len);
    }
    size_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const tensor_entry *t = &w->t[i];
        put_str(b, t->name);
        put_u32(b, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(b, (uint64_t)t->ne[d]);
        put_u32(b, (uint32_t)t->type);
        put_u64(b, off);
        off = pad_to(off + t->nbytes, w->alignment);
    }
    static const uint8_t zeros[64];
    size_t pad = pad_to(b->len, w->alignment) - b->len;
    while (pad > 0) {
        size_t k = pad < sizeof zeros ? pad : sizeof zeros;
        put(b, zeros, k);
        pad -= k;
    }
    return !b->oom;
}

qb_status qb_gguf_write_memory(qb_ctx *ctx, const qb_gguf_writer *w, void **out, size_t *len)
{
    buf b = {0};
    static const uint8_t zeros[64];
    build_header(w, &b);
    for (size_t i = 0; i < w->n_t; i++) {
        const tensor_entry *t = &w->t[i];
        if (t->produce) {
            void *tmp = malloc(t->nbytes ? t->nbytes : 1);
            qb_status ps = tmp ? t->produce(t->ud, t->index, tmp, t->nbytes) : QB_ERR_NOMEM;
            if (ps == QB_OK) put(&b, tmp, t->nbytes);
            free(tmp);
            if (ps != QB_OK) {
                free(b.p);
                return ps == QB_ERR_NOMEM ? qb_fail(ctx, QB_ERR_NOMEM, "out of memory serialising GGUF") : ps;
            }
        } else if (t->data) put(&b, t->data, t->nbytes);
        else for (size_t k = 0; k < t->nbytes; k += sizeof zeros) put(&b, zeros, t->nbytes - k < sizeof zeros ? t->nbytes - k : sizeof zeros);
        size_t pad = pad_to(b.len, w->alignment) - b.len;
        put(&b, zeros, pad);
    }
    if (b.oom) {
        free(b.p);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory serialising GGUF");
    }
    *out = b.p;
    *len = b.len;
    return QB_OK;
}

qb_status qb_gguf_write_file(qb_ctx *ctx, const qb_gguf_writer *w, const char *path, const volatile int *cancel)
{
    qb_atomic_file f;
    qb_status st = qb_atomic_begin(ctx, path, &f);
    if (st != QB_OK) return st;
    buf b = {0};
    static const uint8_t zeros[4096];
    void *scratch = NULL; /* lazy tensors are produced into one reused buffer */
    size_t scratch_cap = 0;
    if (!build_header(w, &b)) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory serialising GGUF");
        goto fail;
    }
    if (!qb_atomic_write(&f, b.p, b.len)) goto io_fail;
    size_t pos = b.len;
    for (size_t i = 0; i < w->n_t; i++) {
        if (cancel && *cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "%s: export cancelled; the file was not changed", path);
            goto fail;
        }
        const tensor_entry *t = &w->t[i];
        if (t->produce) {
            if (t->nbytes > scratch_cap) {
                free(scratch);
                scratch_cap = t->nbytes;
                if (!(scratch = malloc(scratch_cap))) {
                    st = qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
                    goto fail;
                }
            }
            if ((st = t->produce(t->ud, t->index, scratch, t->nbytes)) != QB_OK) goto fail;
            if (!qb_atomic_write(&f, scratch, t->nbytes)) goto io_fail;
        } else if (t->data) {
            if (!qb_atomic_write(&f, t->data, t->nbytes)) goto io_fail;
        } else {
            for (size_t k = 0; k < t->nbytes; k += sizeof zeros)
                if (!qb_atomic_write(&f, zeros, t->nbytes - k < sizeof zeros ? t->nbytes - k : sizeof zeros)) goto io_fail;
        }
        pos += t->nbytes;
        size_t pad = pad_to(pos, w->alignment) - pos;
        if (!qb_atomic_write(&f, zeros, pad)) goto io_fail;
        pos += pad;
    }
    free(b.p);
    free(scratch);
    return qb_atomic_commit(ctx, &f);
io_fail:
    st = qb_fail(ctx, QB_ERR_IO, "%s: write failed: %s; the file was not changed", path, strerror(errno));
fail:
    qb_atomic_abort(&f);
    free(b.p);
    free(scratch);
    return st;
}
