/* export.c — a loaded model, as it is now, written as GGUF for llama.cpp: metadata copied
 * (GGUF sources) or written from the hyperparameters and tokenizer (llama2.c / HF sources),
 * q/k rows reordered for GGUF's interleaved RoPE when the source used rotate-half; formats
 * GGUF has no type for written as ggml types (export_repack.h), the conversions recorded, and
 * the recipe (recipe.h) under quantbench.*; a structurally pruned model's block shapes written
 * over the copied ones. */
#include "apply.h"
#include "export_repack.h"
#include "../util/gguf.h"
#include "../util/gguf_write.h"
#include "../tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The block shapes (what structured pruning changes) under llama.cpp's "<arch>.*" keys. */
static bool put_shapes(qb_gguf_writer *w, const qb_model *m)
{
    const qb_config *c = &m->cfg;
    const char *a = qb_arch_get(c->arch)->gguf;
    char k[128];
#define KEY(name) (snprintf(k, sizeof k, "%s.%s", a, name), k)
    return qb_gguf_set_u32(w, KEY("block_count"), (uint32_t)c->n_layers) &&
           qb_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->hidden_dim) &&
           qb_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)c->n_heads) &&
           qb_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_heads) &&
           qb_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim) &&
           qb_gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim);
#undef KEY
}

/* The hyperparameters under llama.cpp's "<arch>.*" keys (as its converters write them). */
static bool put_hparams(qb_gguf_writer *w, const qb_model *m)
{
    const qb_config *c = &m->cfg;
    const char *a = qb_arch_get(c->arch)->gguf;
    char k[128];
#define KEY(name) (snprintf(k, sizeof k, "%s.%s", a, name), k)
    bool ok = qb_gguf_set_str(w, "general.architecture", a) &&
              qb_gguf_set_str(w, "general.name", m->name[0] ? m->name : "model") &&
              qb_gguf_set_u32(w, KEY("context_length"), (uint32_t)c->seq_len) &&
              qb_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)c->dim) && put_shapes(w, m) &&
              qb_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim) &&
              qb_gguf_set_f32(w, KEY("rope.freq_base"), c->rope_theta) &&
              qb_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps) &&
              qb_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size);
    if (ok && (c->swa_window > 0 || c->arch == QB_ARCH_PHI3)) /* llama.cpp's phi3 wants the key */
        ok = qb_gguf_set_u32(w, KEY("attention.sliding_window"), (uint32_t)c->swa_window);
    if (ok && c->attn_softcap > 0) ok = qb_gguf_set_f32(w, KEY("attn_logit_softcapping"), c->attn_softcap);
    if (ok && c->final_softcap > 0) ok = qb_gguf_set_f32(w, KEY("final_logit_softcapping"), c->final_softcap);
    if (ok && c->rope_scaling.kind == QB_ROPE_SCALE_LINEAR)
        ok = qb_gguf_set_str(w, KEY("rope.scaling.type"), "linear") &&
             qb_gguf_set_f32(w, KEY("rope.scaling.factor"), c->rope_scaling.factor);
    if (ok && c->rope_scaling.kind == QB_ROPE_SCALE_YARN)
        ok = qb_gguf_set_str(w, KEY("rope.scaling.type"), "yarn") &&
             qb_gguf_set_f32(w, KEY("rope.scaling.factor"), c->rope_scaling.factor) &&
             qb_gguf_set_u32(w, KEY("rope.scaling.original_context_length"), (uint32_t)c->rope_scaling.orig_ctx);
    if (ok && c->n_experts > 0) {
        ok = qb_gguf_set_u32(w, KEY("expert_count"), (uint32_t)c->n_experts) &&
             qb_gguf_set_u32(w, KEY("expert_used_count"), (uint32_t)c->n_experts_used);
        if (ok && c->expert_hidden_dim != c->hidden_dim)
            ok = qb_gguf_set_u32(w, KEY("expert_feed_forward_length"), (uint32_t)c->expert_hidden_dim);
        if (ok && !c->expert_norm_topk) ok = qb_gguf_set_bool(w, KEY("expert_weights_norm"), false);
    }
#undef KEY
    return ok;
}

/* The llama3 RoPE divisors as llama.cpp's converter writes them (rope_freqs.weight), when the
 * model has that scaling from a config and no such tensor. *buf is malloc'd (caller frees). */
static bool put_rope_freqs(qb_gguf_writer *w, const qb_model *m, float **buf)
{
    *buf = NULL;
    if (m->rope_freqs || m->cfg.rope_scaling.kind != QB_ROPE_SCALE_LLAMA3) return true;
    int half = m->cfg.head_dim / 2;
    if (!(*buf = malloc((size_t)half * sizeof **buf))) return false;
    for (int i = 0; i < half; i++) (*buf)[i] = qb_model_rope_divisor(m, i);
    int64_t ne[4] = {half, 1, 1, 1};
    return qb_gguf_add_tensor(w, "rope_freqs.weight", QB_TYPE_F32, 1, ne, *buf);
}

/* Expert tensor "blk.N.ffn_X_exps.E.weight": *e = E and the 3-D name into out; false for others. */
static bool expert_of(const char *name, int *e, char *out, size_t cap)
{
    const char *p = strstr(name, "_exps.");
    if (!p) return false;
    char *end;
    long v = strtol(p + 6, &end, 10);
    if (end == p + 6 || strcmp(end, ".weight") != 0) return false;
    *e = (int)v;
    snprintf(out, cap, "%.*s_exps.weight", (int)(p - name), name);
    return true;
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

/* The E expert tensors of one kind in one block (tensor i is expert 0; GGUF writes them as
 * one [cols, rows, E] tensor, so they must share a type) into tmp[i]. */
static qb_status add_experts(qb_ctx *ctx, qb_gguf_writer *w, const qb_model *m, int i, const char *merged, void **tmp)
{
    int E = m->cfg.n_experts;
    const qb_tensor *t0 = &m->tensors[i];
    size_t each = 0;
    qb_type type0 = QB_TYPE_COUNT;
    uint8_t *all = NULL;
    qb_status st = QB_OK;
    for (int e = 0; e < E && st == QB_OK; e++) {
        char name[160];
        snprintf(name, sizeof name, "%.*s.%d.weight", (int)(strlen(merged) - 7), merged, e);
        const qb_tensor *t = qb_model_find_tensor(m, name);
        if (!t) return qb_fail(ctx, QB_ERR_FORMAT, "%s: expert %d of %s is missing", m->path, e, merged);
        const void *data = t->data;
        size_t nbytes = t->nbytes;
        qb_type type = t->type;
        void *conv = NULL;
        if (type == QB_TYPE_CUSTOM && (st = qb_export_repack(ctx, t, &type, &conv, &nbytes)) != QB_OK) break;
        if (conv) data = conv;
        if (e == 0) {
            type0 = type;
            each = nbytes;
            if (!(all = malloc(each * (size_t)E))) st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory exporting %s", merged);
        } else if (type != type0 || nbytes != each) {
            const qb_type_info *a = qb_type_get(type0), *b = qb_type_get(type);
            st = qb_fail(ctx, QB_ERR_ARG, "%s: %s: experts at %s and %s (expert %d); GGUF needs one type per expert tensor",
                         m->path, merged, a ? a->name : "?", b ? b->name : "?", e);
        }
        if (st == QB_OK) memcpy(all + (size_t)e * each, data, each);
        free(conv);
    }
    if (st != QB_OK) {
        free(all);
        return st;
    }
    tmp[i] = all;
    int64_t ne[4] = {t0->ne[0], t0->ne[1], E, 1};
    if (!qb_gguf_add_tensor(w, merged, (int)type0, 3, ne, all))
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory exporting %s", merged);
    return QB_OK;
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
    float *freqs = NULL;
    if (!w || !tmp) goto oom;
    if (m->gguf) {
        const qb_gguf *g = m->gguf;
        for (uint64_t i = 0; i < g->n_kv; i++) /* an earlier recipe is replaced by this one */
            if (strncmp(g->kv[i].key, "quantbench.", 11) && !qb_gguf_copy_kv(w, &g->kv[i])) goto oom;
        /* a structurally pruned model's shapes replace the file's (in place, keeping the order) */
        if (m->reshaped && !put_shapes(w, m)) goto oom;
    } else {
        if (!put_hparams(w, m)) goto oom;
        if (!m->tok) {
            st = qb_fail(ctx, QB_ERR_ARG, "%s: cannot export without a tokenizer", path);
            goto done;
        }
        if ((st = qb_tokenizer_export_gguf(ctx, m->tok, w)) != QB_OK) goto done;
    }
    /* llama.cpp keeps q/k rows interleaved for llama only (the others use NEOX RoPE) */
    bool permute = m->cfg.rope_layout == QB_ROPE_HALF && !qb_arch_get(m->cfg.arch)->gguf_rope_half;
    if (!put_rope_freqs(w, m, &freqs)) goto oom;
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i];
        int e;
        char merged[160];
        if (expert_of(t->name, &e, merged, sizeof merged)) {
            if (e == 0 && (st = add_experts(ctx, w, m, i, merged, tmp)) != QB_OK) goto done;
            continue;
        }
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
    free(freqs);
    for (int i = 0; tmp && i < m->n_tensors; i++) free(tmp[i]);
    free(tmp);
    qb_gguf_writer_free(w);
    return st;
}
