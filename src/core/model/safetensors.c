/* safetensors.c — parse and validate the header of one .safetensors file held in memory.
 * The JSON header is read with Jansson; every offset and shape is checked against the file
 * size, so truncated or hostile files produce a one-line error instead of a crash. */
#include "safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_DIM (1ll << 40)

static const struct {
    const char *name;
    size_t size;
    int type;
} dtypes[] = {
    {"F32", 4, QB_TYPE_F32},  {"F16", 2, QB_TYPE_F16},   {"BF16", 2, QB_TYPE_BF16},   {"F64", 8, -1},
    {"I64", 8, -1},           {"U64", 8, -1},            {"I32", 4, -1},              {"U32", 4, -1},
    {"I16", 2, -1},           {"U16", 2, -1},            {"I8", 1, -1},               {"U8", 1, -1},
    {"BOOL", 1, -1},          {"F8_E4M3", 1, -1},        {"F8_E5M2", 1, -1},
};

static int dtype_index(const char *s)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtypes[i].name, s) == 0) return (int)i;
    return -1;
}

size_t qb_safetensors_dtype_size(const char *dtype)
{
    int i = dtype_index(dtype);
    return i < 0 ? 0 : dtypes[i].size;
}

/* "[8192, 512]" into buf (truncated if long). */
static const char *fmt_shape(char *buf, size_t cap, const int64_t *shape, int n)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}

/* Fill t from its header entry v (t->name already set). avail = bytes in the data section. */
static qb_status read_entry(qb_ctx *ctx, const char *name, json_t *v, const uint8_t *base, size_t avail,
                            qb_st_tensor *t)
{
    if (!json_is_object(v))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", name, t->name);
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
           *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor '%s': entry needs \"dtype\", \"shape\" and \"data_offsets\"",
                       name, t->name);
    int di = dtype_index(json_string_value(dt));
    if (di < 0)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: tensor '%s' has unsupported dtype '%.32s'", name, t->name,
                       json_string_value(dt));
    snprintf(t->dtype, sizeof t->dtype, "%s", dtypes[di].name);
    t->type = dtypes[di].type;

    size_t nd = json_array_size(shape);
    if (nd > QB_ST_MAX_DIMS)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor '%s' has %zu dimensions (at most %d allowed)", name,
                       t->name, nd, QB_ST_MAX_DIMS);
    t->n_dims = (int)nd;
    uint64_t nel = 1;
    bool overflow = false;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > ST_MAX_DIM)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor '%s' has an absurd dimension (shape entry %zu)", name,
                           t->name, i);
        t->shape[i] = (int64_t)json_integer_value(d);
        overflow |= __builtin_mul_overflow(nel, (uint64_t)t->shape[i], &nel);
    }
    char sb[96];
    uint64_t want;
    if (overflow || __builtin_mul_overflow(nel, (uint64_t)dtypes[di].size, &want))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor '%s' has absurd shape %s", name, t->name,
                       fmt_shape(sb, sizeof sb, t->shape, t->n_dims));

    json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
    if (json_array_size(offs) != 2 || !json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < json_integer_value(b))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end",
                       name, t->name);
    t->begin = (uint64_t)json_integer_value(b);
    t->end = (uint64_t)json_integer_value(e);
    if (t->end - t->begin != want)
        return qb_fail(ctx, QB_ERR_FORMAT,
                       "%s: tensor '%s' of shape %s and dtype %s needs %llu bytes but data_offsets [%llu, %llu] "
                       "span %llu",
                       name, t->name, fmt_shape(sb, sizeof sb, t->shape, t->n_dims), t->dtype,
                       (unsigned long long)want, (unsigned long long)t->begin, (unsigned long long)t->end,
                       (unsigned long long)(t->end - t->begin));
    if (t->end > avail)
        return qb_fail(ctx, QB_ERR_FORMAT,
                       "%s: tensor '%s' data [%llu, %llu) lies past the end of the file (data section has %zu "
                       "bytes; truncated?)",
                       name, t->name, (unsigned long long)t->begin, (unsigned long long)t->end, avail);
    t->data = base + t->begin;
    t->nbytes = (size_t)(t->end - t->begin);
    return QB_OK;
}

static int cmp_begin(const void *a, const void *b)
{
    const qb_st_tensor *x = *(const qb_st_tensor *const *)a, *y = *(const qb_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* No two non-empty tensors may share a byte. */
static qb_status check_overlap(qb_ctx *ctx, const char *name, const qb_st_file *f)
{
    const qb_st_tensor **order = malloc((f->n_tensors ? (size_t)f->n_tensors : 1) * sizeof *order);
    if (!order) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", name);
    int n = 0;
    for (int i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].nbytes > 0) order[n++] = &f->tensors[i];
    qsort(order, (size_t)n, sizeof *order, cmp_begin);
    qb_status st = QB_OK;
    for (int i = 1; i < n; i++) {
        if (order[i - 1]->end > order[i]->begin) {
            st = qb_fail(ctx, QB_ERR_FORMAT, "%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", name,
                         order[i - 1]->name, (unsigned long long)order[i - 1]->begin,
                         (unsigned long long)order[i - 1]->end, order[i]->name, (unsigned long long)order[i]->begin,
                         (unsigned long long)order[i]->end);
            break;
        }
    }
    free(order);
    return st;
}

qb_status qb_safetensors_parse(qb_ctx *ctx, const char *name, const void *data, size_t size, qb_st_file *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *p = data;
    qb_st_file f = {0};
    json_t *root = NULL;
    qb_status st;
    if (size < 8) {
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: too short for a safetensors file (%zu bytes)", name, size);
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | p[i];
    if (n > size - 8) {
        st = qb_fail(ctx, QB_ERR_FORMAT,
                     "%s: header length %llu is larger than the file (%zu bytes): truncated or not a safetensors file",
                     name, (unsigned long long)n, size);
        goto fail;
    }
    if (n > QB_ST_MAX_HEADER) {
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: absurd header length %llu (limit %llu)", name, (unsigned long long)n,
                     QB_ST_MAX_HEADER);
        goto fail;
    }
    json_error_t jerr;
    root = json_loadb((const char *)p + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: header is not valid JSON: %s (line %d, column %d)", name, jerr.text,
                     jerr.line, jerr.column);
        goto fail;
    }
    if (!json_is_object(root)) {
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: header is not a JSON object", name);
        goto fail;
    }
    f.data_offset = 8 + (size_t)n;
    f.tensors = calloc(json_object_size(root) ? json_object_size(root) : 1, sizeof *f.tensors);
    if (!f.tensors) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) continue;
        qb_st_tensor *t = &f.tensors[f.n_tensors++];
        if (!(t->name = strdup(key))) {
            st = qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", name);
            goto fail;
        }
        if ((st = read_entry(ctx, name, val, p + f.data_offset, size - f.data_offset, t)) != QB_OK) goto fail;
    }
    if ((st = check_overlap(ctx, name, &f)) != QB_OK) goto fail;
    json_decref(root);
    *out = f;
    return QB_OK;
fail:
    json_decref(root);
    qb_safetensors_free(&f);
    return st;
}

void qb_safetensors_free(qb_st_file *f)
{
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    memset(f, 0, sizeof *f);
}

const qb_st_tensor *qb_safetensors_find(const qb_st_file *f, const char *name)
{
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}
