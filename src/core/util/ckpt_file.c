/* ckpt_file.c — reading and writing the checkpoint container (ckpt_file.h). */
#include "ckpt_file.h"
#include "atomic_file.h"
#include "mapfile.h"
#include "sha256.h"

#include <stdlib.h>
#include <string.h>

static const char MAGIC[8] = {'Q', 'B', 'C', 'K', 'P', 'T', 0, 0};
enum { VERSION = 1, MAX_NAME = 255 };

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

qb_status qb_ckpt_write(qb_ctx *ctx, const char *path, const char *meta, const qb_ckpt_array *arrays, uint32_t n)
{
    const size_t meta_len = strlen(meta);
    size_t size = 8 + 4 + 4 + 8 + meta_len + 32;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = strlen(arrays[i].name);
        if (len < 1 || len > MAX_NAME) return qb_fail(ctx, QB_ERR_ARG, "%s: array name of %zu bytes", path, len);
        size += 4 + len + 8 + (size_t)arrays[i].count * 4;
    }
    uint8_t *buf = malloc(size);
    if (!buf) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory for a checkpoint of %zu bytes", path, size);
    uint8_t *p = buf;
    memcpy(p, MAGIC, 8);
    put_u32(p + 8, VERSION);
    put_u32(p + 12, n);
    put_u64(p + 16, meta_len);
    memcpy(p + 24, meta, meta_len);
    p += 24 + meta_len;
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t len = (uint32_t)strlen(arrays[i].name);
        put_u32(p, len);
        memcpy(p + 4, arrays[i].name, len);
        put_u64(p + 4 + len, arrays[i].count);
        p += 12 + len;
        for (uint64_t k = 0; k < arrays[i].count; k++, p += 4) { /* little-endian floats */
            uint32_t bits;
            memcpy(&bits, &arrays[i].data[k], 4);
            put_u32(p, bits);
        }
    }
    qb_sha256(buf, (size_t)(p - buf), p);
    qb_atomic_file f;
    qb_status st = qb_atomic_begin(ctx, path, &f);
    if (st == QB_OK) {
        if (!qb_atomic_write(&f, buf, size)) {
            qb_atomic_abort(&f);
            st = qb_fail(ctx, QB_ERR_IO, "%s: write failed", path);
        } else {
            st = qb_atomic_commit(ctx, &f);
        }
    }
    free(buf);
    return st;
}

void qb_ckpt_free(qb_ckpt *c)
{
    if (!c) return;
    for (uint32_t i = 0; c->arrays && i < c->n_arrays; i++) free(c->arrays[i].name);
    free(c->arrays);
    free(c->meta);
    free(c->values);
    free(c);
}

qb_status qb_ckpt_read_memory(qb_ctx *ctx, const char *name, const void *data, size_t size, qb_ckpt **out)
{
    *out = NULL;
    const uint8_t *d = data;
    if (size < 8 || memcmp(d, MAGIC, 8) != 0) return qb_fail(ctx, QB_ERR_FORMAT, "%s: not a quantbench checkpoint", name);
    if (size < 24 + 32) return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated checkpoint (%zu bytes)", name, size);
    if (get_u32(d + 8) != VERSION)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: checkpoint version %u (this quantbench reads %d)", name, get_u32(d + 8),
                       VERSION);
    const size_t body = size - 32; /* the digest closes the file */
    const uint32_t n = get_u32(d + 12);
    const uint64_t meta_len = get_u64(d + 16);
    size_t pos = 24;
    if (meta_len > body - pos) return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated checkpoint (its description)", name);
    if (n > (body - pos - meta_len) / 12) return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated checkpoint (%u arrays)", name, n);
    uint8_t digest[32];
    qb_sha256(d, body, digest);
    qb_ckpt *c = calloc(1, sizeof *c);
    if (!c) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", name);
    /* every value fits in the file: the decoded floats need at most body / 4 of them */
    c->values = malloc(body / 4 * sizeof(float) + sizeof(float));
    c->meta = malloc((size_t)meta_len + 1);
    c->arrays = calloc(n ? n : 1, sizeof *c->arrays);
    if (!c->values || !c->meta || !c->arrays) {
        qb_ckpt_free(c);
        return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", name);
    }
    memcpy(c->meta, d + pos, (size_t)meta_len);
    c->meta[meta_len] = 0;
    const char *why = memchr(c->meta, 0, (size_t)meta_len) ? "a NUL byte in the checkpoint's description" : NULL;
    pos += (size_t)meta_len;
    size_t used = 0; /* floats decoded */
    for (uint32_t i = 0; i < n && !why; i++) {
        if (body - pos < 4) {
            why = "truncated checkpoint (an array's name)";
            break;
        }
        const uint32_t len = get_u32(d + pos);
        if (len < 1 || len > MAX_NAME) {
            why = "an array name of a bad length";
            break;
        }
        if (body - pos - 4 < (size_t)len + 8) {
            why = "truncated checkpoint (an array's header)";
            break;
        }
        if (memchr(d + pos + 4, 0, len)) {
            why = "a NUL byte in an array name";
            break;
        }
        const uint64_t count = get_u64(d + pos + 4 + len);
        const size_t start = pos + 4 + len + 8;
        if (count > (body - start) / 4) {
            why = "truncated checkpoint (an array's values)";
            break;
        }
        if (!(c->arrays[i].name = strndup((const char *)d + pos + 4, len))) {
            why = "out of memory";
            break;
        }
        float *a = c->values + used;
        for (uint64_t k = 0; k < count; k++) {
            const uint32_t bits = get_u32(d + start + 4 * k);
            memcpy(&a[k], &bits, 4);
        }
        c->arrays[i].data = a;
        c->arrays[i].count = count;
        c->n_arrays = i + 1;
        used += (size_t)count;
        pos = start + (size_t)count * 4;
    }
    if (!why && pos != body) why = "trailing bytes after the last array";
    if (!why && memcmp(digest, d + body, 32) != 0) why = "corrupted checkpoint (its SHA-256 does not match)";
    if (why) {
        qb_ckpt_free(c);
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: %s", name, why);
    }
    *out = c;
    return QB_OK;
}

qb_status qb_ckpt_read(qb_ctx *ctx, const char *path, qb_ckpt **out)
{
    *out = NULL;
    qb_mapfile mf;
    qb_status st = qb_mapfile_open(ctx, path, &mf);
    if (st != QB_OK) return st;
    st = qb_ckpt_read_memory(ctx, path, mf.data ? mf.data : "", mf.size, out);
    qb_mapfile_close(&mf);
    return st;
}

const qb_ckpt_array *qb_ckpt_find(const qb_ckpt *c, const char *name)
{
    for (uint32_t i = 0; i < c->n_arrays; i++)
        if (!strcmp(c->arrays[i].name, name)) return &c->arrays[i];
    return NULL;
}
