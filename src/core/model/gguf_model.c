/* gguf_model.c — a Llama model from a GGUF file: hyperparameters from the "<arch>.*" keys,
 * tensors left in the mapping, tokenizer from tokenizer.ggml.*. */
#include "model.h"
#include "../util/gguf.h"
#include "../tokenizer/tokenizer.h"

#include <stdio.h>
#include <string.h>

static int64_t arch_int(const qb_gguf *g, const char *arch, const char *key, int64_t dflt)
{
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return qb_gguf_get_int(g, k, dflt);
}

static double arch_float(const qb_gguf *g, const char *arch, const char *key, double dflt)
{
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return qb_gguf_get_float(g, k, dflt);
}

static int clamp_int(int64_t v)
{
    return v < -1 || v > (1 << 30) ? -1 : (int)v;
}

qb_status qb_model_load_gguf(qb_ctx *ctx, qb_model *m, const qb_model_opts *opts)
{
    qb_gguf *g;
    qb_status st = qb_gguf_open(ctx, m->path, &g);
    if (st != QB_OK) return st;
    m->gguf = g;
    m->kind = QB_FILE_GGUF;
    const char *arch = qb_gguf_get_str(g, "general.architecture");
    if (!arch) return qb_fail(ctx, QB_ERR_FORMAT, "%s: no general.architecture key", m->path);
    if (strcmp(arch, "llama") != 0 && strcmp(arch, "mistral") != 0)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (llama is)", m->path, arch);
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    const char *name = qb_gguf_get_str(g, "general.name");
    snprintf(m->name, sizeof m->name, "%s", name ? name : "");

    qb_config *c = &m->cfg;
    c->dim = clamp_int(arch_int(g, arch, "embedding_length", -1));
    c->hidden_dim = clamp_int(arch_int(g, arch, "feed_forward_length", -1));
    c->n_layers = clamp_int(arch_int(g, arch, "block_count", -1));
    c->n_heads = clamp_int(arch_int(g, arch, "attention.head_count", -1));
    c->n_kv_heads = clamp_int(arch_int(g, arch, "attention.head_count_kv", c->n_heads));
    c->seq_len = clamp_int(arch_int(g, arch, "context_length", 2048));
    c->rope_theta = (float)arch_float(g, arch, "rope.freq_base", 10000.0);
    c->norm_eps = (float)arch_float(g, arch, "attention.layer_norm_rms_epsilon", 1e-5);
    c->head_dim = c->n_heads > 0 ? clamp_int(arch_int(g, arch, "attention.key_length", c->dim / c->n_heads)) : -1;
    c->rope_layout = QB_ROPE_INTERLEAVED;
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: missing or bad %s.* hyperparameters (embedding_length, "
                       "feed_forward_length, block_count, attention.head_count)", m->path, arch);
    const qb_gguf_tensor *emb = qb_gguf_find_tensor(g, "token_embd.weight");
    if (!emb) return qb_fail(ctx, QB_ERR_FORMAT, "%s: missing tensor token_embd.weight", m->path);
    c->vocab_size = clamp_int(arch_int(g, arch, "vocab_size", emb->ne[1]));
    c->tied_output = qb_gguf_find_tensor(g, "output.weight") == NULL;

    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const qb_gguf_tensor *gt = &g->tensors[i];
        qb_tensor *t = qb_model_add_tensor(ctx, m, gt->name);
        if (!t) return QB_ERR_NOMEM;
        t->n_dims = gt->n_dims;
        memcpy(t->ne, gt->ne, sizeof t->ne);
        t->type = t->src_type = (qb_type)gt->type;
        t->data = gt->data;
        t->nbytes = gt->nbytes;
    }
    if (opts->skip_tokenizer) return QB_OK;
    return qb_tokenizer_from_gguf(ctx, g, &m->tok);
}
