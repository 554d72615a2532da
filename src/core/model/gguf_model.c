/* gguf_model.c — a model from a GGUF file: the architecture's row (arch.h) completed by the
 * "<arch>.*" keys llama.cpp writes, tensors left in the mapping (a 3-D expert tensor becomes
 * one 2-D tensor per expert, each a slice of the mapping), tokenizer from tokenizer.ggml.*. */
#include "model.h"
#include "../util/gguf.h"
#include "../tokenizer/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* "<arch>.<key>" in buf (lookups of the architecture's keys). */
static const char *arch_key(char buf[128], const char *arch, const char *key)
{
    snprintf(buf, 128, "%s.%s", arch, key);
    return buf;
}

static int64_t arch_int(const qb_gguf *g, const char *arch, const char *key, int64_t dflt)
{
    char k[128];
    return qb_gguf_get_int(g, arch_key(k, arch, key), dflt);
}

static double arch_float(const qb_gguf *g, const char *arch, const char *key, double dflt)
{
    char k[128];
    return qb_gguf_get_float(g, arch_key(k, arch, key), dflt);
}

static int clamp_int(int64_t v)
{
    return v < -1 || v > (1 << 30) ? -1 : (int)v;
}

static bool arch_has(const qb_gguf *g, const char *arch, const char *key)
{
    char k[128];
    return qb_gguf_find(g, arch_key(k, arch, key)) != NULL;
}

/* The description's numbers from the file (llama.cpp's keys and its per-architecture rules). */
static qb_status read_description(qb_ctx *ctx, qb_model *m, const qb_gguf *g, const char *arch)
{
    qb_config *c = &m->cfg;
    const qb_arch_info *ai = qb_arch_get(c->arch);
    c->act = ai->act;
    c->attn_bias = ai->attn_bias;
    c->qk_norm = ai->qk_norm;
    c->post_norms = ai->post_norms;
    c->embed_scale = ai->embed_scale ? sqrtf((float)c->dim) : 1.0f;
    c->rope_layout = ai->gguf_rope_half ? QB_ROPE_HALF : QB_ROPE_INTERLEAVED;
    /* Gemma's query scale is not in the file: llama.cpp takes 1/sqrt(dim / heads) for the 27B
     * models (46 layers for Gemma 2, 62 for Gemma 3) and 1/sqrt(head_dim) otherwise. */
    int qdiv = c->head_dim;
    if ((c->arch == QB_ARCH_GEMMA2 && c->n_layers == 46) || (c->arch == QB_ARCH_GEMMA3 && c->n_layers == 62))
        qdiv = c->dim / c->n_heads;
    c->query_scale = 1.0f / sqrtf((float)(qdiv > 0 ? qdiv : 1));
    c->attn_softcap = (float)arch_float(g, arch, "attn_logit_softcapping", 0.0);
    c->final_softcap = (float)arch_float(g, arch, "final_logit_softcapping", 0.0);
    if (c->arch == QB_ARCH_GEMMA2 && !arch_has(g, arch, "attn_logit_softcapping")) c->attn_softcap = 50.0f;
    if (c->arch == QB_ARCH_GEMMA2 && !arch_has(g, arch, "final_logit_softcapping")) c->final_softcap = 30.0f;
    int64_t win = arch_int(g, arch, "attention.sliding_window", 0);
    if (c->arch == QB_ARCH_GEMMA2 && !arch_has(g, arch, "attention.sliding_window")) win = 4096;
    if (win < 0 || win > (1 << 30))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: %s.attention.sliding_window %lld is out of range", m->path, arch,
                       (long long)win);
    c->swa_window = (int)win;
    c->swa_period = c->arch == QB_ARCH_GEMMA2 ? 2 : c->arch == QB_ARCH_GEMMA3 ? 6 : 1;
    if (c->arch == QB_ARCH_GEMMA3) c->rope_theta_swa = 10000.0f;
    char key[128];
    const char *st = qb_gguf_get_str(g, arch_key(key, arch, "rope.scaling.type"));
    double factor = arch_float(g, arch, "rope.scaling.factor", 0.0);
    if (st && strcmp(st, "none") != 0 && strcmp(st, "linear") != 0 && strcmp(st, "yarn") != 0)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: RoPE scaling '%.32s' (%s) is not supported (linear, yarn and "
                       "llama3 are)", m->path, st, key);
    if (st && strcmp(st, "yarn") == 0) {
        int64_t orig = arch_int(g, arch, "rope.scaling.original_context_length", 0);
        if (!(factor >= 1.0 && factor < 1e6) || orig <= 0 || orig > (1 << 30))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: %s.rope.scaling.factor %g / original_context_length %lld out of "
                           "range for YaRN", m->path, arch, factor, (long long)orig);
        c->rope_scaling.kind = QB_ROPE_SCALE_YARN;
        c->rope_scaling.factor = (float)factor;
        c->rope_scaling.orig_ctx = (int)orig;
    }
    else if ((st && strcmp(st, "linear") == 0) || (!st && factor > 0 && factor != 1.0)) {
        if (!(factor >= 1.0 && factor < 1e6))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: %s.rope.scaling.factor %g is out of range", m->path, arch, factor);
        c->rope_scaling.kind = QB_ROPE_SCALE_LINEAR;
        c->rope_scaling.factor = (float)factor;
    }
    int64_t ne = arch_int(g, arch, "expert_count", 0), nu = arch_int(g, arch, "expert_used_count", 0);
    if (ne < 0 || ne > 4096 || nu < 0 || nu > ne || (ne > 0 && nu == 0))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: %s.expert_count %lld / expert_used_count %lld do not fit", m->path,
                       arch, (long long)ne, (long long)nu);
    c->n_experts = (int)ne;
    c->n_experts_used = (int)nu;
    c->expert_hidden_dim = clamp_int(arch_int(g, arch, "expert_feed_forward_length", c->hidden_dim));
    c->expert_norm_topk = qb_gguf_get_bool(g, arch_key(key, arch, "expert_weights_norm"), true);
    if (ai->moe && ne == 0)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: %s model without %s.expert_count", m->path, arch, arch);
    return QB_OK;
}

/* Split a 3-D expert tensor "blk.N.ffn_X_exps.weight" (ne = [cols, rows, experts]) into
 * "blk.N.ffn_X_exps.E.weight" tensors, each a slice of the mapping. */
static qb_status add_experts(qb_ctx *ctx, qb_model *m, const qb_gguf_tensor *gt)
{
    size_t n = strlen(gt->name);
    if (n < 8 || strcmp(gt->name + n - 7, ".weight") != 0 || gt->ne[3] != 1)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor %s has shape [%lld, %lld, %lld, %lld]: 3-D tensors are "
                       "expert weights named *_exps.weight", m->path, gt->name, (long long)gt->ne[0],
                       (long long)gt->ne[1], (long long)gt->ne[2], (long long)gt->ne[3]);
    size_t each = gt->nbytes / (size_t)gt->ne[2];
    if (each * (size_t)gt->ne[2] != gt->nbytes)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor %s: %zu bytes do not split into %lld experts", m->path,
                       gt->name, gt->nbytes, (long long)gt->ne[2]);
    for (int64_t e = 0; e < gt->ne[2]; e++) {
        char name[160];
        snprintf(name, sizeof name, "%.*s.%lld.weight", (int)(n - 7), gt->name, (long long)e);
        qb_tensor *t = qb_model_add_tensor(ctx, m, name);
        if (!t) return QB_ERR_NOMEM;
        t->n_dims = 2;
        t->ne[0] = gt->ne[0];
        t->ne[1] = gt->ne[1];
        t->type = t->src_type = (qb_type)gt->type;
        t->data = (const char *)gt->data + (size_t)e * each;
        t->nbytes = each;
    }
    return QB_OK;
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
    const qb_arch_info *ai = qb_arch_by_gguf(arch);
    if (!ai)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: architecture '%.40s' is not supported (%s are)", m->path, arch,
                       qb_arch_gguf_list());
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    const char *name = qb_gguf_get_str(g, "general.name");
    snprintf(m->name, sizeof m->name, "%s", name ? name : "");

    qb_config *c = &m->cfg;
    c->arch = ai->arch;
    c->dim = clamp_int(arch_int(g, arch, "embedding_length", -1));
    c->hidden_dim = clamp_int(arch_int(g, arch, "feed_forward_length", -1));
    c->n_layers = clamp_int(arch_int(g, arch, "block_count", -1));
    c->n_heads = clamp_int(arch_int(g, arch, "attention.head_count", -1));
    c->n_kv_heads = clamp_int(arch_int(g, arch, "attention.head_count_kv", c->n_heads));
    c->seq_len = clamp_int(arch_int(g, arch, "context_length", 2048));
    c->rope_theta = (float)arch_float(g, arch, "rope.freq_base", 10000.0);
    c->norm_eps = (float)arch_float(g, arch, "attention.layer_norm_rms_epsilon", 1e-5);
    c->head_dim = c->n_heads > 0 ? clamp_int(arch_int(g, arch, "attention.key_length", c->dim / c->n_heads)) : -1;
    if (c->dim <= 0 || c->hidden_dim < 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->head_dim <= 0)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: missing or bad %s.* hyperparameters (embedding_length, "
                       "feed_forward_length, block_count, attention.head_count)", m->path, arch);
    if ((st = read_description(ctx, m, g, arch)) != QB_OK) return st;
    const qb_gguf_tensor *emb = qb_gguf_find_tensor(g, "token_embd.weight");
    if (!emb) return qb_fail(ctx, QB_ERR_FORMAT, "%s: missing tensor token_embd.weight", m->path);
    c->vocab_size = clamp_int(arch_int(g, arch, "vocab_size", emb->ne[1]));
    c->tied_output = qb_gguf_find_tensor(g, "output.weight") == NULL;
    if (qb_gguf_find_tensor(g, "blk.0.attn_q.bias")) c->attn_bias = true; /* Llama files may have them too */

    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const qb_gguf_tensor *gt = &g->tensors[i];
        if (gt->n_dims >= 3 && gt->ne[2] > 1) {
            if ((st = add_experts(ctx, m, gt)) != QB_OK) return st;
            continue;
        }
        qb_tensor *t = qb_model_add_tensor(ctx, m, gt->name);
        if (!t) return QB_ERR_NOMEM;
        t->n_dims = gt->n_dims > 2 ? 2 : gt->n_dims;
        memcpy(t->ne, gt->ne, sizeof t->ne);
        t->type = t->src_type = (qb_type)gt->type;
        t->data = gt->data;
        t->nbytes = gt->nbytes;
    }
    if (opts->skip_tokenizer) return QB_OK;
    return qb_tokenizer_from_gguf(ctx, g, &m->tok);
}
