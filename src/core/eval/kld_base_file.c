/* kld_base_file.c — llama-perplexity's KL-divergence base files (layout in kld_base.h): read
 * with every field checked, written back byte for byte, one row encoded as llama-perplexity
 * encodes it, and a file checked against a model and a text. */
#include "kld_base.h"
#include "../util/atomic_file.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const qb_kld_quantile qb_kld_quantiles[QB_KLD_NQ] = {
    {"max", "max", 1.0f, true},       {"99.9%", "p99_9", 0.999f, true}, {"99.0%", "p99", 0.990f, true},
    {"95.0%", "p95", 0.950f, false},  {"90.0%", "p90", 0.900f, false},  {"75.0%", "p75", 0.750f, false},
    {"median", "median", 0.5f, true}, {"25.0%", "p25", 0.250f, false},  {"10.0%", "p10", 0.100f, true},
    {"5.0%", "p5", 0.050f, true},     {"1.0%", "p1", 0.010f, true},     {"0.1%", "p0_1", 0.001f, false},
    {"min", "min", 0.0f, true},
};

static int row_width(int n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }

const uint16_t *qb_kld_base_row(const qb_kld_base *b, int c, int r)
{
    return b->logp + ((size_t)c * b->rows + (size_t)r) * (size_t)b->nv;
}

static float row_float(const uint16_t *row, int k)
{
    float v;
    memcpy(&v, (const char *)row + 4 * k, sizeof v);
    return v;
}

/* Every field of the bytes b->bytes[0 … size) checked into b's header fields. */
static qb_status parse(qb_ctx *ctx, qb_kld_base *b)
{
    const char *f = b->path;
    const uint8_t *p = b->bytes;
    size_t size = b->size;
    if (size < 8 || memcmp(p, QB_KLD_BASE_MAGIC, 8) != 0)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: not a KL-divergence base file (no \"_logits_\" magic at the start)", f);
    if (size < QB_KLD_BASE_HEADER)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated in the header (%zu bytes, the header has %d)", f, size,
                       QB_KLD_BASE_HEADER);
    int32_t h[3];
    memcpy(h, p + 8, sizeof h);
    if (h[0] < 4 || h[0] > (1 << 24))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: context length %d out of range (4 … %d)", f, (int)h[0], 1 << 24);
    if (h[1] < 1 || h[1] > (1 << 24))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: vocabulary size %d out of range (1 … %d)", f, (int)h[1], 1 << 24);
    if (h[2] < 1) return qb_fail(ctx, QB_ERR_FORMAT, "%s: chunk count %d (must be at least 1)", f, (int)h[2]);
    b->n_ctx = h[0];
    b->n_vocab = h[1];
    b->n_chunk = h[2];
    b->rows = b->n_ctx - 1 - b->n_ctx / 2;
    b->nv = row_width(b->n_vocab);
    /* sizes in 64 bits: n_chunk * n_ctx * 4 < 2^31 * 2^24 * 4 = 2^57, the rows likewise */
    uint64_t tok_bytes = (uint64_t)b->n_chunk * (uint64_t)b->n_ctx * 4;
    uint64_t chunk_bytes = (uint64_t)b->rows * (uint64_t)b->nv * 2;
    if (tok_bytes > size - QB_KLD_BASE_HEADER)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated in the tokens (%d chunks x %d tokens need %llu bytes, %zu left)",
                       f, b->n_chunk, b->n_ctx, (unsigned long long)tok_bytes, size - QB_KLD_BASE_HEADER);
    uint64_t left = size - QB_KLD_BASE_HEADER - tok_bytes;
    if (left / chunk_bytes < (uint64_t)b->n_chunk)
        return qb_fail(ctx, QB_ERR_FORMAT,
                       "%s: truncated in chunk %llu's log-probabilities (%d chunks of %llu bytes need %llu, %llu left)",
                       f, (unsigned long long)(left / chunk_bytes) + 1, b->n_chunk, (unsigned long long)chunk_bytes,
                       (unsigned long long)chunk_bytes * (uint64_t)b->n_chunk, (unsigned long long)left);
    if (left > chunk_bytes * (uint64_t)b->n_chunk)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: %llu bytes after the end of the last chunk", f,
                       (unsigned long long)(left - chunk_bytes * (uint64_t)b->n_chunk));
    b->tokens = (const int32_t *)(const void *)(p + QB_KLD_BASE_HEADER);
    b->logp = (const uint16_t *)(const void *)(p + QB_KLD_BASE_HEADER + tok_bytes);
    long n_tok = (long)b->n_chunk * b->n_ctx;
    for (long i = 0; i < n_tok; i++)
        if (b->tokens[i] < 0 || b->tokens[i] >= b->n_vocab)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: token %ld is %d, outside the vocabulary of %d", f, i,
                           (int)b->tokens[i], b->n_vocab);
    for (int c = 0; c < b->n_chunk; c++)
        for (int r = 0; r < b->rows; r++) {
            const uint16_t *row = qb_kld_base_row(b, c, r);
            float scale = row_float(row, 0), mn = row_float(row, 1);
            if (!isfinite(scale) || scale < 0 || !isfinite(mn))
                return qb_fail(ctx, QB_ERR_FORMAT,
                               "%s: chunk %d, position %d: scale %g and minimum log-probability %g (must be finite, "
                               "scale >= 0)",
                               f, c + 1, b->n_ctx / 2 + r, (double)scale, (double)mn);
        }
    return QB_OK;
}

static qb_status finish_open(qb_ctx *ctx, qb_kld_base *b, qb_kld_base **out)
{
    qb_status st = parse(ctx, b);
    if (st != QB_OK) {
        qb_kld_base_close(b);
        return st;
    }
    *out = b;
    return QB_OK;
}

static qb_kld_base *new_base(const char *name)
{
    qb_kld_base *b = calloc(1, sizeof *b);
    if (b && !(b->path = strdup(name))) {
        free(b);
        b = NULL;
    }
    return b;
}

qb_status qb_kld_base_open(qb_ctx *ctx, const char *path, qb_kld_base **out)
{
    *out = NULL;
    qb_kld_base *b = new_base(path);
    if (!b) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
    qb_status st = qb_mapfile_open(ctx, path, &b->map);
    if (st != QB_OK) {
        qb_kld_base_close(b);
        return st;
    }
    b->bytes = b->map.data;
    b->size = b->map.size;
    return finish_open(ctx, b, out);
}

qb_status qb_kld_base_open_memory(qb_ctx *ctx, const char *name, const void *data, size_t size, qb_kld_base **out)
{
    *out = NULL;
    qb_kld_base *b = new_base(name);
    if (!b) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", name);
    b->bytes = data;
    b->size = size;
    if (((uintptr_t)data & 3) && size) { /* tokens and rows are read as int32/uint16 in place */
        if (!(b->copy = malloc(size))) {
            qb_kld_base_close(b);
            return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", name);
        }
        memcpy(b->copy, data, size);
        b->bytes = b->copy;
    }
    return finish_open(ctx, b, out);
}

void qb_kld_base_close(qb_kld_base *b)
{
    if (!b) return;
    qb_mapfile_close(&b->map);
    free(b->copy);
    free(b->path);
    free(b);
}

qb_status qb_kld_base_write(qb_ctx *ctx, const qb_kld_base *b, const char *path)
{
    qb_atomic_file af;
    qb_status st = qb_atomic_begin(ctx, path, &af);
    if (st != QB_OK) return st;
    /* in pieces of at most 64 MiB: write(2) stops short at 2 GiB */
    for (size_t off = 0; off < b->size;) {
        size_t n = b->size - off < ((size_t)64 << 20) ? b->size - off : (size_t)64 << 20;
        if (!qb_atomic_write(&af, b->bytes + off, n)) {
            int e = errno;
            qb_atomic_abort(&af);
            return qb_fail(ctx, QB_ERR_IO, "%s: write failed: %s", path, strerror(e));
        }
        off += n;
    }
    return qb_atomic_commit(ctx, &af);
}

/* llama-perplexity's rounding: float → nearest int through the float mantissa (ties to even),
 * for |x| < 2^22. */
static int nearest_int(float fval)
{
    float val = fval + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

double qb_kld_base_encode_row(const float *logits, int n_vocab, uint16_t *row, int tok)
{
    float max_logit = logits[0], min_logit = logits[0];
    for (int i = 1; i < n_vocab; i++) {
        if (max_logit < logits[i]) max_logit = logits[i];
        if (logits[i] < min_logit) min_logit = logits[i];
    }
    if (min_logit < max_logit - 16) min_logit = max_logit - 16;
    double sum_exp = 0.0;
    for (int i = 0; i < n_vocab; i++) sum_exp += expf(logits[i] - max_logit);
    const float log_sum_exp = (float)log(sum_exp);
    const float min_log_prob = min_logit - max_logit - log_sum_exp;
    const float scale = (max_logit - min_logit) / 65535.f;
    memcpy(row, &scale, sizeof scale);
    memcpy(row + 2, &min_log_prob, sizeof min_log_prob);
    uint16_t *q = row + 4;
    if (scale != 0) {
        const float inv_scale = 1 / scale;
        for (int i = 0; i < n_vocab; i++)
            q[i] = logits[i] > min_logit ? (uint16_t)nearest_int(inv_scale * (logits[i] - min_logit)) : 0;
    } else {
        memset(q, 0, (size_t)n_vocab * sizeof *q);
    }
    if (n_vocab & 1) q[n_vocab] = 0;
    return max_logit + log_sum_exp - logits[tok];
}

qb_status qb_kld_base_check(qb_ctx *ctx, const qb_kld_base *b, const qb_model *m, const int32_t *text_tokens,
                            int n_text, const char *text_name)
{
    if (b->n_vocab != m->cfg.vocab_size)
        return qb_fail(ctx, QB_ERR_ARG, "%s: made with a vocabulary of %d tokens, %s has %d (another model's base file?)",
                       b->path, b->n_vocab, m->path, m->cfg.vocab_size);
    if (!text_tokens) return QB_OK;
    long n = (long)b->n_chunk * b->n_ctx;
    for (long i = 0; i < n && i < n_text; i++)
        if (text_tokens[i] != b->tokens[i])
            return qb_fail(ctx, QB_ERR_ARG,
                           "%s: token %ld (chunk %ld, position %ld) is %d in the file but %d in %s (a base file of "
                           "another text or tokenizer?)",
                           b->path, i, i / b->n_ctx + 1, i % b->n_ctx, (int)b->tokens[i], (int)text_tokens[i],
                           text_name);
    if (n_text < n)
        return qb_fail(ctx, QB_ERR_ARG, "%s: holds %ld tokens of text (%d chunks of %d), %s has only %d", b->path, n,
                       b->n_chunk, b->n_ctx, text_name, n_text);
    return QB_OK;
}
