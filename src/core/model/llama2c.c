/* llama2c.c — llama2.c checkpoints: the legacy format (7 int32 header; a negative vocab size
 * means an untied classifier stored after the RoPE tables) and the version-1 "ak42" fp32
 * export (256-byte header with a shared-classifier flag). The tokenizer is a separate
 * tokenizer.bin, given explicitly or found beside the checkpoint. */
#include "model.h"
#include "../tokenizer/tokenizer.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AK42_MAGIC 0x616b3432u

typedef struct {
    const float *p;   /* next unread float */
    const float *end;
} cursor;

/* Take one tensor of rows x cols floats (rows = 1 for vectors) from the cursor. */
static qb_status take(qb_ctx *ctx, qb_model *m, cursor *c, const char *name, int64_t rows, int64_t cols)
{
    int64_t n = rows * cols;
    if (c->end - c->p < n)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: file too short: tensor %s needs %lld more floats (truncated file?)",
                       m->path, name, (long long)(n - (c->end - c->p)));
    qb_tensor *t = qb_model_add_tensor(ctx, m, name);
    if (!t) return QB_ERR_NOMEM;
    t->n_dims = rows > 1 ? 2 : 1;
    t->ne[0] = cols;
    t->ne[1] = rows;
    t->type = t->src_type = QB_TYPE_F32;
    t->data = c->p;
    t->nbytes = (size_t)n * sizeof(float);
    c->p += n;
    return QB_OK;
}

/* Add one per-layer tensor for every layer, in llama2.c's "all layers of one kind" order. */
static qb_status take_layers(qb_ctx *ctx, qb_model *m, cursor *c, const char *suffix, int64_t rows, int64_t cols)
{
    for (int l = 0; l < m->cfg.n_layers; l++) {
        char name[96];
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, suffix);
        qb_status st = take(ctx, m, c, name, rows, cols);
        if (st != QB_OK) return st;
    }
    return QB_OK;
}

static qb_status find_tokenizer(qb_ctx *ctx, qb_model *m, const qb_model_opts *opts, char *out, size_t cap)
{
    if (opts->tokenizer_path) {
        snprintf(out, cap, "%s", opts->tokenizer_path);
        return QB_OK;
    }
    char *copy = strdup(m->path);
    if (!copy) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    const char *dir = dirname(copy);
    /* tokenizer.bin beside it, else any tok*.bin there (stories260K ships tok512.bin) */
    static const char *names[] = {"tokenizer.bin", "tok512.bin", "tok4096.bin", "tok32000.bin"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(out, cap, "%s/%s", dir, names[i]);
        if (access(out, R_OK) == 0) {
            free(copy);
            return QB_OK;
        }
    }
    qb_status st = qb_fail(ctx, QB_ERR_IO, "%s: no tokenizer.bin beside the checkpoint (in %s); pass --tokenizer FILE",
                           m->path, dir);
    free(copy);
    return st;
}

qb_status qb_model_load_llama2c(qb_ctx *ctx, qb_model *m, const qb_model_opts *opts)
{
    qb_mapfile *map;
    qb_status st = qb_model_add_map(ctx, m, m->path, &map);
    if (st != QB_OK) return st;
    m->kind = QB_FILE_LLAMA2C;
    if (map->size < 28) return qb_fail(ctx, QB_ERR_FORMAT, "%s: too short for a llama2.c checkpoint (%zu bytes)", m->path, map->size);
    const uint8_t *base = map->data;
    uint32_t magic;
    memcpy(&magic, base, 4);
    int32_t hdr[7];
    size_t header_bytes;
    bool shared;
    bool v1 = magic == AK42_MAGIC;
    if (v1) {
        int32_t version;
        memcpy(&version, base + 4, 4);
        if (version != 1)
            return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                           "%s: llama2.c export version %d is not supported (only the fp32 version 1)", m->path, version);
        if (map->size < 256) return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated llama2.c v1 header", m->path);
        memcpy(hdr, base + 8, sizeof hdr);
        shared = base[36] != 0;
        header_bytes = 256;
    } else {
        memcpy(hdr, base, sizeof hdr);
        shared = hdr[5] > 0;
        if (hdr[5] < 0) hdr[5] = hdr[5] == INT32_MIN ? 0 : -hdr[5]; /* INT32_MIN: absurd, rejected below */
        header_bytes = 28;
    }
    qb_config *c = &m->cfg;
    c->dim = hdr[0];
    c->hidden_dim = hdr[1];
    c->n_layers = hdr[2];
    c->n_heads = hdr[3];
    c->n_kv_heads = hdr[4];
    c->vocab_size = hdr[5];
    c->seq_len = hdr[6];
    c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-5f;
    c->rope_layout = QB_ROPE_INTERLEAVED;
    c->tied_output = shared;
    /* Sanity before trusting sizes: a file that is not a checkpoint has garbage here. */
    if (c->dim <= 0 || c->dim > 65536 || c->hidden_dim <= 0 || c->hidden_dim > (1 << 20) || c->n_layers <= 0 ||
        c->n_layers > 1024 || c->n_heads <= 0 || c->n_heads > 1024 || c->n_kv_heads <= 0 || c->n_kv_heads > c->n_heads ||
        c->vocab_size <= 0 || c->vocab_size > (1 << 22) || c->seq_len <= 0 || c->seq_len > (1 << 24) ||
        c->dim % c->n_heads != 0)
        return qb_fail(ctx, QB_ERR_FORMAT,
                       "%s: not a llama2.c checkpoint (absurd header: dim %d, ffn %d, layers %d, heads %d/%d, vocab %d, "
                       "seq_len %d)",
                       m->path, hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], hdr[5], hdr[6]);
    if (map->size % 4 != 0)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: size %zu is not a whole number of floats", m->path, map->size);
    int64_t dim = c->dim, hid = c->hidden_dim, kv = (int64_t)c->n_kv_heads * c->head_dim, voc = c->vocab_size;
    cursor cur = {(const float *)(base + header_bytes), (const float *)(base + map->size)};
    if (v1) {
        if ((st = take_layers(ctx, m, &cur, "attn_norm", 1, dim)) || (st = take_layers(ctx, m, &cur, "ffn_norm", 1, dim)) ||
            (st = take(ctx, m, &cur, "output_norm.weight", 1, dim)) ||
            (st = take(ctx, m, &cur, "token_embd.weight", voc, dim)))
            return st;
    } else {
        if ((st = take(ctx, m, &cur, "token_embd.weight", voc, dim)) ||
            (st = take_layers(ctx, m, &cur, "attn_norm", 1, dim)))
            return st;
    }
    if ((st = take_layers(ctx, m, &cur, "attn_q", dim, dim)) || (st = take_layers(ctx, m, &cur, "attn_k", kv, dim)) ||
        (st = take_layers(ctx, m, &cur, "attn_v", kv, dim)) || (st = take_layers(ctx, m, &cur, "attn_output", dim, dim)))
        return st;
    if (!v1 && (st = take_layers(ctx, m, &cur, "ffn_norm", 1, dim))) return st;
    if ((st = take_layers(ctx, m, &cur, "ffn_gate", hid, dim)) || (st = take_layers(ctx, m, &cur, "ffn_down", dim, hid)) ||
        (st = take_layers(ctx, m, &cur, "ffn_up", hid, dim)))
        return st;
    if (!v1) {
        if ((st = take(ctx, m, &cur, "output_norm.weight", 1, dim))) return st;
        /* skip the legacy freq_cis_real / freq_cis_imag tables */
        int64_t skip = (int64_t)c->seq_len * c->head_dim; /* 2 tables of seq_len x head_dim/2 */
        if (cur.end - cur.p < skip)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: file too short for the RoPE tables (truncated file?)", m->path);
        cur.p += skip;
    }
    if (!shared && (st = take(ctx, m, &cur, "output.weight", voc, dim))) return st;
    if (cur.p != cur.end)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: %lld unexpected trailing bytes (not a llama2.c checkpoint of this shape?)",
                       m->path, (long long)((cur.end - cur.p) * 4));
    const char *slash = strrchr(m->path, '/');
    snprintf(m->name, sizeof m->name, "%s", slash ? slash + 1 : m->path);
    if (opts->skip_tokenizer) return QB_OK;
    char tok_path[4096];
    if ((st = find_tokenizer(ctx, m, opts, tok_path, sizeof tok_path)) != QB_OK) return st;
    return qb_tokenizer_from_llama2c(ctx, tok_path, c->vocab_size, &m->tok);
}
