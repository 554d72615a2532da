/* export.c — a loaded model, as it is now, written as GGUF for llama.cpp: metadata copied
 * (GGUF sources) or written from the hyperparameters and tokenizer (llama2.c / HF sources),
 * q/k rows reordered for GGUF's interleaved RoPE when the source used rotate-half; formats
 * GGUF has no type for written as ggml types (export_repack.h), the conversions recorded, and
 * the recipe (recipe.h) under quantbench.*. */
#include "apply.h"
#include "export_repack.h"
#include "../util/gguf.h"
#include "../util/gguf_write.h"
#include "../tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool put_hparams(qb_gguf_writer *w, const qb_model *m)
{
    const qb_config *c = &m->cfg;
    return qb_gguf_set_str(w, "general.architecture", "llama") &&
           qb_gguf_set_str(w, "general.name", m->name[0] ? m->name : "model") &&
           qb_gguf_set_u32(w, "llama.context_length", (uint32_t)c->seq_len) &&
           qb_gguf_set_u32(w, "llama.embedding_length", (uint32_t)c->dim) &&
           qb_gguf_set_u32(w, "llama.block_count", (uint32_t)c->n_layers) &&
           qb_gguf_set_u32(w, "llama.feed_forward_length", (uint32_t)c->hidden_dim) &&
           qb_gguf_set_u32(w, "llama.attention.head_count", (uint32_t)c->n_heads) &&
           qb_gguf_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads) &&
           qb_gguf_set_u32(w, "llama.attention.key_length", (uint32_t)c->head_dim) &&
           qb_gguf_set_u32(w, "llama.attention.value_length", (uint32_t)c->head_dim) &&
           qb_gguf_set_u32(w, "llama.rope.dimension_count", (uint32_t)c->head_dim) &&
           qb_gguf_set_f32(w, "llama.rope.freq_base", c->rope_theta) &&
           qb_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", c->norm_eps) &&
           qb_gguf_set_u32(w, "llama.vocab_size", (uint32_t)c->vocab_size);
}

/* GGUF row order of a rotate-half q/k matrix: GGUF row h*hd + 2j + a is HF row h*hd + a*hd/2 + j. */
static void *permute_rows(const void *data, size_t nbytes, int64_t rows, int head_dim)
{
    size_t rb = nbytes / (size_t)rows;
    uint8_t *out = malloc(nbytes);
    if (!out) return NULL;
    int half = head_dim / 2;
    for (int64_t r = 0; r < rows; r++) {
        int64_t h = r / head_dim, i = r % head_dim, j = i / 2, a = i % 2;
        int64_t src = h * head_dim + a * half + j;
        memcpy(out + (size_t)r * rb, (const uint8_t *)data + (size_t)src * rb, rb);
    }
    return out;
}

static bool is_qk(const char *name)
{
    return strstr(name, ".attn_q.weight") || strstr(name, ".attn_k.weight");
}

qb_status qb_export_gguf(qb_ctx *ctx, const qb_model *m, const char *path, const qb_plan *plan,
                               const volatile int *cancel)
{
    qb_recipe r;
    qb_recipe_init(&r, plan);
    return qb_export_gguf_recipe(ctx, m, path, &r, cancel);
}

qb_status qb_export_gguf_recipe(qb_ctx *ctx, const qb_model *m, const char *path, const qb_recipe *recipe,
                                      const volatile int *cancel)
{
    qb_gguf_writer *w = qb_gguf_writer_new();
    void **tmp = calloc((size_t)m->n_tensors + 1, sizeof *tmp);
    qb_status st = QB_OK;
    if (!w || !tmp) goto oom;
    if (m->gguf) {
        const qb_gguf *g = m->gguf;
        for (uint64_t i = 0; i < g->n_kv; i++) /* an earlier recipe is replaced by this one */
            if (strncmp(g->kv[i].key, "quantbench.", 11) && !qb_gguf_copy_kv(w, &g->kv[i])) goto oom;
    } else {
        if (!put_hparams(w, m)) goto oom;
        if (!m->tok) {
            st = qb_fail(ctx, QB_ERR_ARG, "%s: cannot export without a tokenizer", path);
            goto done;
        }
        if ((st = qb_tokenizer_export_gguf(ctx, m->tok, w)) != QB_OK) goto done;
    }
    bool permute = m->cfg.rope_layout == QB_ROPE_HALF;
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i];
        /* as it is now: norms are F32 (as llama.cpp's converters write them); formats GGUF
         * has no type for are repacked or dequantized (export_repack.h) */
        const void *data = t->data;
        size_t nbytes = t->nbytes;
        qb_type type = t->type;
        if (type == QB_TYPE_CUSTOM) {
            void *conv;
            if ((st = qb_export_repack(ctx, t, &type, &conv, &nbytes)) != QB_OK) goto done;
            data = tmp[i] = conv;
        }
        if (permute && is_qk(t->name)) {
            void *p = permute_rows(data, nbytes, qb_tensor_rows(t), m->cfg.head_dim);
            if (!p) goto oom;
            free(tmp[i]);
            data = tmp[i] = p;
        }
        if (!qb_gguf_add_tensor(w, t->name, (int)type, t->n_dims, t->ne, data)) goto oom;
    }
    if (!qb_recipe_put(w, recipe)) goto oom;
    char *conversions = qb_export_describe(m);
    bool ok = !conversions || qb_gguf_set_str(w, "quantbench.export.conversions", conversions);
    free(conversions);
    if (!ok) goto oom;
    qb_gguf_set_u32(w, "general.quantization_version", 2);
    st = qb_gguf_write_file(ctx, w, path, cancel);
    goto done;
oom:
    st = qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory exporting", path);
done:
    for (int i = 0; tmp && i < m->n_tensors; i++) free(tmp[i]);
    free(tmp);
    qb_gguf_writer_free(w);
    return st;
}
