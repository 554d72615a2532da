/* export_repack.c — formats GGUF cannot store, written as ggml types (export_repack.h): the
 * target comes from the format's row of the format table (format_traits.h); integer grids
 * are repacked code for code into Q4_0/Q5_0/Q8_0/Q4_1/Q5_1 blocks, the rest dequantized to
 * F16 (or F32). */
#include "export_repack.h"
#include "format_traits.h"
#include "fmt.h"
#include "blocks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

qb_export_target qb_export_target_for(const qb_format *f, int64_t n)
{
    const qb_format_traits *tr = qb_format_traits_of(f);
    return tr && tr->export_target ? tr->export_target(f, n) : qb_format_export_dequant(f, n);
}

/* One 32-element block from codes q (0..maxq) with scale d and zero point z. */
static void put_block(qb_type t, const uint8_t *q, float d, float z, void *dst)
{
    const int zi = (int)z;
    switch (t) {
    case QB_TYPE_Q4_0: {
        qb_block_q4_0 *b = dst;
        b->d = qb_f32_to_f16(d);
        for (int j = 0; j < 16; j++)
            b->qs[j] = (uint8_t)((q[j] - zi + 8) | (q[j + 16] - zi + 8) << 4);
        break;
    }
    case QB_TYPE_Q5_0: {
        qb_block_q5_0 *b = dst;
        b->d = qb_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int lo = q[j] - zi + 16, hi = q[j + 16] - zi + 16;
            b->qs[j] = (uint8_t)((lo & 15) | (hi & 15) << 4);
            qh |= (uint32_t)(lo >> 4) << j | (uint32_t)(hi >> 4) << (j + 16);
        }
        memcpy(b->qh, &qh, 4); /* little-endian machines only, as the rest of the loader */
        break;
    }
    case QB_TYPE_Q8_0: {
        qb_block_q8_0 *b = dst;
        b->d = qb_f32_to_f16(d);
        for (int j = 0; j < 32; j++) b->qs[j] = (int8_t)(q[j] - zi);
        break;
    }
    case QB_TYPE_Q4_1: {
        qb_block_q4_1 *b = dst;
        b->d = qb_f32_to_f16(d);
        b->m = qb_f32_to_f16(-d * z);
        for (int j = 0; j < 16; j++) b->qs[j] = (uint8_t)(q[j] | q[j + 16] << 4);
        break;
    }
    case QB_TYPE_Q5_1: {
        qb_block_q5_1 *b = dst;
        b->d = qb_f32_to_f16(d);
        b->m = qb_f32_to_f16(-d * z);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            b->qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
            qh |= (uint32_t)(q[j] >> 4) << j | (uint32_t)(q[j + 16] >> 4) << (j + 16);
        }
        memcpy(b->qh, &qh, 4);
        break;
    }
    default:
        break;
    }
}

static qb_status repack_int(qb_ctx *ctx, const qb_tensor *t, qb_type type, void **out, size_t *nbytes)
{
    const qb_format *f = &t->fmt;
    int64_t n = t->ne[0], rows = qb_tensor_rows(t);
    int64_t gs = f->group > 0 ? f->group : n;
    size_t in_rb = qb_format_row_bytes(f, n), out_rb = qb_type_row_bytes(type, n);
    size_t block_bytes = out_rb / (size_t)(n / QB_QK32);
    uint8_t *dst = malloc(out_rb * (size_t)rows);
    uint8_t *q = malloc((size_t)(n * rows));
    float *sc = malloc((size_t)(n / gs * rows) * sizeof *sc), *zp = malloc((size_t)(n / gs * rows) * sizeof *zp);
    if (!dst || !q || !sc || !zp) {
        free(dst), free(q), free(sc), free(zp);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory exporting %s", t->name);
    }
    qb_ctx_apply_threads(ctx);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *qr = q + r * n;
        float *s = sc + r * (n / gs), *z = zp + r * (n / gs);
        qb_int_row_unpack(f->bits, f->group, f->asym, (const uint8_t *)t->data + (size_t)r * in_rb, n, qr, s, z);
        for (int64_t b = 0; b < n / QB_QK32; b++)
            put_block(type, qr + b * QB_QK32, s[b * QB_QK32 / gs], z[b * QB_QK32 / gs],
                      dst + (size_t)r * out_rb + (size_t)b * block_bytes);
    }
    free(q), free(sc), free(zp);
    *out = dst;
    *nbytes = out_rb * (size_t)rows;
    return QB_OK;
}

static qb_status dequantize_all(qb_ctx *ctx, const qb_tensor *t, qb_type *type, void **out, size_t *nbytes)
{
    int64_t n = t->ne[0], rows = qb_tensor_rows(t);
    size_t in_rb = qb_format_row_bytes(&t->fmt, n), count = (size_t)(n * rows);
    float *y = malloc(count * sizeof *y);
    if (!y) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory exporting %s", t->name);
    int too_big = 0;
    qb_ctx_apply_threads(ctx);
#pragma omp parallel for schedule(static) reduction(| : too_big)
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * n;
        qb_dequantize_row(&t->fmt, (const uint8_t *)t->data + (size_t)r * in_rb, yr, n);
        for (int64_t i = 0; i < n; i++) too_big |= fabsf(yr[i]) > 65504.0f;
    }
    if (too_big) { /* keep every value: F32 */
        *type = QB_TYPE_F32;
        *out = y;
        *nbytes = count * sizeof *y;
        return QB_OK;
    }
    uint16_t *h = malloc(count * sizeof *h);
    if (!h) {
        free(y);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory exporting %s", t->name);
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < (int64_t)count; i++) h[i] = qb_f32_to_f16(y[i]);
    free(y);
    *type = QB_TYPE_F16;
    *out = h;
    *nbytes = count * sizeof *h;
    return QB_OK;
}

qb_status qb_export_repack(qb_ctx *ctx, const qb_tensor *t, qb_type *type, void **out, size_t *nbytes)
{
    if (t->type != QB_TYPE_CUSTOM) return qb_fail(ctx, QB_ERR_ARG, "%s: already a ggml type", t->name);
    qb_export_target tg = qb_export_target_for(&t->fmt, t->ne[0]);
    if (tg.kind == QB_EXPORT_DEQUANT) return dequantize_all(ctx, t, type, out, nbytes);
    *type = tg.type;
    return repack_int(ctx, t, tg.type, out, nbytes);
}

char *qb_export_describe(const qb_model *m)
{
    static const char *how[] = {"as is", "exact", "scales rounded to f16", "dequantized"};
    size_t cap = 0, len = 0;
    char *s = NULL;
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i];
        if (t->type != QB_TYPE_CUSTOM) continue;
        qb_export_target tg = qb_export_target_for(&t->fmt, t->ne[0]);
        char fmt[64], line[256];
        qb_format_name(&t->fmt, fmt, sizeof fmt);
        int k = snprintf(line, sizeof line, "%s %s -> %s (%s)\n", t->name, fmt, qb_type_get(tg.type)->name,
                         how[tg.kind]);
        if (k < 0) continue;
        if (len + (size_t)k + 1 > cap) {
            size_t nc = cap ? cap * 2 : 1024;
            while (nc < len + (size_t)k + 1) nc *= 2;
            char *ns = realloc(s, nc);
            if (!ns) {
                free(s);
                return NULL;
            }
            s = ns;
            cap = nc;
        }
        memcpy(s + len, line, (size_t)k + 1);
        len += (size_t)k;
    }
    return s;
}
