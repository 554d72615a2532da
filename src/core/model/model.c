/* model.c — opening a model of any kind: detection, the tensor table, binding tensors to the
 * per-layer weight slots with shape checks against the hyperparameters, and closing. */
#include "model.h"
#include "../util/gguf.h"
#include "../tokenizer/tokenizer.h"
#include "kernels.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *qb_file_kind_name(qb_file_kind k)
{
    switch (k) {
    case QB_FILE_LLAMA2C: return "llama2.c";
    case QB_FILE_GGUF: return "GGUF";
    case QB_FILE_SAFETENSORS: return "safetensors";
    }
    return "?";
}

qb_tensor *qb_model_add_tensor(qb_ctx *ctx, qb_model *m, const char *name)
{
    qb_tensor *nt = realloc(m->tensors, (size_t)(m->n_tensors + 1) * sizeof *nt);
    if (!nt) {
        qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", m->path);
        return NULL;
    }
    m->tensors = nt;
    qb_tensor *t = &nt[m->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) {
        qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", m->path);
        return NULL;
    }
    for (int i = 0; i < 4; i++) t->ne[i] = 1;
    m->n_tensors++;
    return t;
}

qb_tensor *qb_model_find_tensor(const qb_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

qb_status qb_model_add_map(qb_ctx *ctx, qb_model *m, const char *path, qb_mapfile **out)
{
    qb_mapfile *nm = realloc(m->maps, (size_t)(m->n_maps + 1) * sizeof *nm);
    if (!nm) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
    m->maps = nm;
    qb_status st = qb_mapfile_open(ctx, path, &nm[m->n_maps]);
    if (st != QB_OK) return st;
    *out = &nm[m->n_maps++];
    return QB_OK;
}

int64_t qb_tensor_nelements(const qb_tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

int64_t qb_tensor_rows(const qb_tensor *t)
{
    return t->ne[1] * t->ne[2] * t->ne[3];
}

void qb_tensor_source_rows(const qb_tensor *t, int64_t r0, int64_t nr, float *out)
{
    int64_t n = t->ne[0];
    size_t rb = qb_type_row_bytes(t->src_type, n);
    const qb_kernel_table *k = qb_kernels();
    for (int64_t r = 0; r < nr; r++) {
        const void *row = (const char *)t->src_data + (size_t)(r0 + r) * rb;
        if (t->src_type == QB_TYPE_F16) k->f16_to_f32((int)n, row, out + r * n);
        else if (t->src_type == QB_TYPE_BF16) k->bf16_to_f32((int)n, row, out + r * n);
        else qb_dequant_row_ref(t->src_type, row, out + r * n, n);
    }
}

qb_status qb_tensor_to_f32(qb_ctx *ctx, qb_tensor *t)
{
    if (t->type == QB_TYPE_F32) return QB_OK;
    int64_t n = qb_tensor_nelements(t);
    float *dst = malloc((size_t)n * sizeof(float));
    if (!dst) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory converting %s", t->name);
    const qb_type_info *ti = qb_type_get(t->type);
    int64_t row = t->ne[0];
    size_t row_bytes = qb_type_row_bytes(t->type, row);
    bool ok = true;
    int64_t rows = n / row;
#pragma omp parallel for schedule(static) reduction(&& : ok)
    for (int64_t r = 0; r < rows; r++)
        ok = ok && qb_dequant_row_ref(t->type, (const char *)t->data + (size_t)r * row_bytes, dst + r * row, row);
    if (!ok) {
        free(dst);
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "tensor %s: cannot convert type %s", t->name,
                       ti ? ti->name : "?");
    }
    free(t->owned);
    t->owned = dst;
    t->data = dst;
    t->type = QB_TYPE_F32;
    t->fmt = (qb_format){.kind = QB_FMT_GGML, .type = QB_TYPE_F32};
    t->nbytes = (size_t)n * sizeof(float);
    return QB_OK;
}

size_t qb_model_bytes(const qb_model *m)
{
    size_t s = 0;
    for (int i = 0; i < m->n_tensors; i++) s += m->tensors[i].nbytes;
    return s;
}

int64_t qb_model_params(const qb_model *m)
{
    int64_t s = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (!(m->cfg.tied_output && strcmp(m->tensors[i].name, "output.weight") == 0))
            s += qb_tensor_nelements(&m->tensors[i]);
    return s;
}

/* Find name and check it is a matrix of rows x cols (or a vector of cols when rows == 0). */
static qb_status bind_one(qb_ctx *ctx, qb_model *m, const char *name, int64_t rows, int64_t cols, qb_tensor **slot)
{
    qb_tensor *t = qb_model_find_tensor(m, name);
    if (!t) return qb_fail(ctx, QB_ERR_FORMAT, "%s: missing tensor %s", m->path, name);
    bool ok = t->ne[2] == 1 && t->ne[3] == 1 && t->ne[0] == cols && t->ne[1] == (rows == 0 ? 1 : rows);
    if (!ok) {
        char shape[96]; /* all four dims when the extra ones are what is wrong */
        if (t->ne[2] == 1 && t->ne[3] == 1)
            snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)t->ne[0], (long long)t->ne[1]);
        else
            snprintf(shape, sizeof shape, "[%lld, %lld, %lld, %lld]", (long long)t->ne[0], (long long)t->ne[1],
                     (long long)t->ne[2], (long long)t->ne[3]);
        if (rows == 0)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor %s has shape %s, expected [%lld]", m->path, name, shape,
                           (long long)cols);
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor %s has shape %s, expected [%lld, %lld]", m->path, name,
                       shape, (long long)cols, (long long)rows);
    }
    /* The forward pass reads F32, F16, BF16 and packed types with a kernel in place (mapped,
     * never copied); anything else becomes F32. */
    if (t->type != QB_TYPE_F32 && t->type != QB_TYPE_F16 && t->type != QB_TYPE_BF16 &&
        !(rows > 0 && qb_type_runs_packed(t->type))) {
        qb_status st = qb_tensor_to_f32(ctx, t);
        if (st != QB_OK) return st;
    }
    /* norms are read as plain f32 vectors */
    if (rows == 0 && t->type != QB_TYPE_F32) {
        qb_status st = qb_tensor_to_f32(ctx, t);
        if (st != QB_OK) return st;
    }
    *slot = t;
    return QB_OK;
}

float qb_model_rope_divisor(const qb_model *m, int i)
{
    const qb_config *c = &m->cfg;
    const qb_rope_scaling *rs = &c->rope_scaling;
    if (m->rope_freqs) return ((const float *)m->rope_freqs->data)[i];
    if (rs->kind == QB_ROPE_SCALE_LINEAR) return rs->factor;
    if (rs->kind == QB_ROPE_SCALE_YARN) {
        /* the correction range: the dimensions that turn beta_fast (32) and beta_slow (1) times
         * over the original context, floor/ceil'd and clamped (transformers' truncate) */
        int dim = c->head_dim;
        double base = c->rope_theta, orig = rs->orig_ctx;
        double lo = floor(dim * log(orig / (32.0 * 2 * M_PI)) / (2 * log(base)));
        double hi = ceil(dim * log(orig / (1.0 * 2 * M_PI)) / (2 * log(base)));
        if (lo < 0) lo = 0;
        if (hi > dim - 1) hi = dim - 1;
        if (hi == lo) hi += 0.001;
        double ramp = ((double)i - lo) / (hi - lo);
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        float keep = (float)(1.0 - ramp); /* share of the original frequency */
        return 1.0f / ((1.0f - keep) / rs->factor + keep);
    }
    if (rs->kind != QB_ROPE_SCALE_LLAMA3) return 1.0f;
    float freq = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
    float wavelen = 2.0f * (float)M_PI / freq;
    float lo_wl = (float)rs->orig_ctx / rs->low_freq_factor, hi_wl = (float)rs->orig_ctx / rs->high_freq_factor;
    if (wavelen < hi_wl) return 1.0f;
    if (wavelen > lo_wl) return rs->factor;
    float smooth = ((float)rs->orig_ctx / wavelen - rs->low_freq_factor) / (rs->high_freq_factor - rs->low_freq_factor);
    return 1.0f / ((1.0f - smooth) / rs->factor + smooth);
}

bool qb_model_blocks_plain(const qb_model *m)
{
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const qb_layer_weights *L = &m->layers[l];
        if (!L->wq || !L->wk || !L->wv || !L->w_gate || !L->w_up || !L->w_down) return false;
    }
    return true;
}

void qb_config_describe(const qb_config *c, char *buf, size_t cap)
{
    size_t n = 0;
#define PUT(...) (n += (size_t)snprintf(buf + (n < cap ? n : cap), n < cap ? cap - n : 0, __VA_ARGS__))
    PUT("%s gate", c->act == QB_GLU_GELU_TANH ? "GELU-tanh" : "SiLU");
    if (c->attn_bias) PUT(", q/k/v biases");
    if (c->qk_norm) PUT(", q/k norms");
    if (c->post_norms) PUT(", post-norms");
    if (c->embed_scale != 1.0f) PUT(", embeddings x%.4g", c->embed_scale);
    if (c->head_dim > 0 && fabsf(c->query_scale * sqrtf((float)c->head_dim) - 1.0f) > 1e-6f)
        PUT(", query scale 1/sqrt(%.4g)", 1.0 / ((double)c->query_scale * c->query_scale));
    if (c->attn_softcap > 0) PUT(", attention soft-cap %g", c->attn_softcap);
    if (c->final_softcap > 0) PUT(", logit soft-cap %g", c->final_softcap);
    if (c->swa_window > 0) {
        if (c->swa_period <= 1) PUT(", sliding window %d on every layer", c->swa_window);
        else PUT(", sliding window %d on %d of %d layers", c->swa_window, c->swa_period - 1, c->swa_period);
        if (c->rope_theta_swa > 0) PUT(" (RoPE base %g)", c->rope_theta_swa);
    }
    if (c->rope_scaling.kind == QB_ROPE_SCALE_LINEAR) PUT(", RoPE linear x%g", c->rope_scaling.factor);
    if (c->rope_scaling.kind == QB_ROPE_SCALE_YARN)
        PUT(", RoPE YaRN x%g (original context %d)", c->rope_scaling.factor, c->rope_scaling.orig_ctx);
    if (c->rope_scaling.kind == QB_ROPE_SCALE_LLAMA3)
        PUT(", RoPE llama3 x%g (low %g, high %g, original context %d)", c->rope_scaling.factor,
            c->rope_scaling.low_freq_factor, c->rope_scaling.high_freq_factor, c->rope_scaling.orig_ctx);
    if (c->n_experts > 0)
        PUT(", %d experts, top %d%s, expert FFN %d", c->n_experts, c->n_experts_used,
            c->expert_norm_topk ? " (renormalised)" : "", c->expert_hidden_dim);
#undef PUT
}

float qb_model_rope_mscale(const qb_model *m)
{
    const qb_rope_scaling *rs = &m->cfg.rope_scaling;
    return rs->kind == QB_ROPE_SCALE_YARN ? 0.1f * logf(rs->factor) + 1.0f : 1.0f;
}

/* Numbers a loader may leave unset take the plain Llama values. */
static void complete_description(qb_config *c)
{
    if (c->embed_scale == 0) c->embed_scale = 1.0f;
    if (c->query_scale == 0 && c->head_dim > 0) c->query_scale = 1.0f / sqrtf((float)c->head_dim);
    if (c->swa_period <= 0) c->swa_period = 1;
    if (c->n_experts > 0 && c->expert_hidden_dim <= 0) c->expert_hidden_dim = c->hidden_dim;
}

static qb_status check_config(qb_ctx *ctx, const qb_model *m)
{
    const qb_config *c = &m->cfg;
    if (c->dim <= 0 || c->dim > 65536 || c->hidden_dim < 0 || c->hidden_dim > 1 << 20 ||
        (c->hidden_dim == 0 && c->n_experts == 0) || c->n_layers <= 0 ||
        c->n_layers > 1024 || c->n_heads <= 0 || c->n_heads > 1024 || c->n_kv_heads <= 0 ||
        c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0 || c->vocab_size <= 0 ||
        c->vocab_size > 1 << 22 || c->seq_len <= 0 || c->head_dim <= 0 || c->head_dim % 2 != 0 ||
        c->head_dim > 4096)
        return qb_fail(ctx, QB_ERR_FORMAT,
                       "%s: absurd hyperparameters (dim %d, ffn %d, layers %d, heads %d/%d, head_dim %d, vocab %d, "
                       "ctx %d)",
                       m->path, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim,
                       c->vocab_size, c->seq_len);
    if (!(c->norm_eps > 0 && c->norm_eps < 1) || !(c->rope_theta > 0) || !(c->rope_theta_swa >= 0))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: bad norm epsilon %g or rope theta %g", m->path, c->norm_eps,
                       c->rope_theta);
    if (c->n_experts < 0 || c->n_experts > 4096 || c->n_experts_used < 0 || c->n_experts_used > c->n_experts ||
        (c->n_experts > 0 && (c->n_experts_used == 0 || c->expert_hidden_dim <= 0 || c->expert_hidden_dim > 1 << 20)))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: %d experts, %d per token, expert FFN %d: do not fit", m->path,
                       c->n_experts, c->n_experts_used, c->expert_hidden_dim);
    if (c->swa_window < 0 || c->swa_period > c->n_layers + 1 || !(c->attn_softcap >= 0) || !(c->final_softcap >= 0) ||
        !(c->query_scale > 0) || !(c->embed_scale > 0))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: sliding window %d (period %d), soft-caps %g / %g or scales out of "
                       "range", m->path, c->swa_window, c->swa_period, c->attn_softcap, c->final_softcap);
    const qb_rope_scaling *rs = &c->rope_scaling;
    if (rs->kind != QB_ROPE_SCALE_NONE && !(rs->factor >= 1 && rs->factor < 1e6))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: RoPE scaling factor %g is out of range", m->path, rs->factor);
    if (rs->kind == QB_ROPE_SCALE_YARN && !(rs->orig_ctx > 0))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: YaRN RoPE scaling without its original context", m->path);
    if (rs->kind == QB_ROPE_SCALE_LLAMA3 && !(rs->low_freq_factor > 0 && rs->high_freq_factor > rs->low_freq_factor &&
                                               rs->orig_ctx > 0))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: llama3 RoPE scaling numbers out of range", m->path);
    return QB_OK;
}

/* The tensor name of layer l: "blk.<l>.<suffix>.weight" (or ".bias" when the suffix says). */
static void layer_name(char *out, size_t cap, int l, const char *suffix)
{
    if (strchr(suffix, '.')) snprintf(out, cap, "blk.%d.%s", l, suffix);
    else snprintf(out, cap, "blk.%d.%s.weight", l, suffix);
}

/* bind_one for a tensor that may be absent (then *slot stays NULL). */
static qb_status bind_opt(qb_ctx *ctx, qb_model *m, const char *name, int64_t rows, int64_t cols, qb_tensor **slot)
{
    *slot = NULL;
    return qb_model_find_tensor(m, name) ? bind_one(ctx, m, name, rows, cols, slot) : QB_OK;
}

static qb_status bind_attention(qb_ctx *ctx, qb_model *m, int l, qb_layer_weights *L)
{
    const qb_config *c = &m->cfg;
    int64_t q_dim = (int64_t)c->n_heads * c->head_dim, kv_dim = (int64_t)c->n_kv_heads * c->head_dim;
    char n[160];
    qb_status st;
    layer_name(n, sizeof n, l, "attn_qkv");
    if ((st = bind_opt(ctx, m, n, q_dim + 2 * kv_dim, c->dim, &L->wqkv)) != QB_OK) return st;
    if (!L->wqkv) {
        struct { const char *suffix; int64_t rows; qb_tensor **slot; } w[] = {
            {"attn_q", q_dim, &L->wq}, {"attn_k", kv_dim, &L->wk}, {"attn_v", kv_dim, &L->wv}};
        for (int i = 0; i < 3; i++) {
            layer_name(n, sizeof n, l, w[i].suffix);
            if ((st = bind_one(ctx, m, n, w[i].rows, c->dim, w[i].slot)) != QB_OK) return st;
        }
    }
    struct { const char *suffix; int64_t cols; qb_tensor **slot; bool need; } v[] = {
        {"attn_q.bias", q_dim, &L->bq, c->attn_bias},       {"attn_k.bias", kv_dim, &L->bk, c->attn_bias},
        {"attn_v.bias", kv_dim, &L->bv, c->attn_bias},      {"attn_q_norm", c->head_dim, &L->q_norm, c->qk_norm},
        {"attn_k_norm", c->head_dim, &L->k_norm, c->qk_norm}, {"post_attention_norm", c->dim, &L->post_attn_norm,
                                                                c->post_norms},
        {"post_ffw_norm", c->dim, &L->post_ffn_norm, c->post_norms},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        layer_name(n, sizeof n, l, v[i].suffix);
        /* only what the description has: a tensor it does not use is refused below */
        if (v[i].need && (st = bind_one(ctx, m, n, 0, v[i].cols, v[i].slot)) != QB_OK) return st;
    }
    layer_name(n, sizeof n, l, "attn_output");
    if ((st = bind_one(ctx, m, n, c->dim, q_dim, &L->wo)) != QB_OK) return st;
    layer_name(n, sizeof n, l, "attn_norm");
    if ((st = bind_one(ctx, m, n, 0, c->dim, &L->attn_norm)) != QB_OK) return st;
    layer_name(n, sizeof n, l, "ffn_norm");
    return bind_one(ctx, m, n, 0, c->dim, &L->ffn_norm);
}

static qb_status bind_ffn(qb_ctx *ctx, qb_model *m, int l, qb_layer_weights *L, qb_tensor **experts)
{
    const qb_config *c = &m->cfg;
    char n[160];
    qb_status st;
    if (c->n_experts > 0) {
        layer_name(n, sizeof n, l, "ffn_gate_inp");
        if ((st = bind_one(ctx, m, n, c->n_experts, c->dim, &L->router)) != QB_OK) return st;
        L->exp_gate = experts;
        L->exp_up = experts + c->n_experts;
        L->exp_down = experts + 2 * c->n_experts;
        int64_t eh = c->expert_hidden_dim;
        for (int e = 0; e < c->n_experts; e++) {
            struct { const char *what; int64_t rows, cols; qb_tensor **slot; } w[] = {
                {"gate", eh, c->dim, &L->exp_gate[e]}, {"up", eh, c->dim, &L->exp_up[e]},
                {"down", c->dim, eh, &L->exp_down[e]}};
            for (int i = 0; i < 3; i++) {
                snprintf(n, sizeof n, "blk.%d.ffn_%s_exps.%d.weight", l, w[i].what, e);
                if ((st = bind_one(ctx, m, n, w[i].rows, w[i].cols, w[i].slot)) != QB_OK) return st;
            }
        }
        return QB_OK;
    }
    layer_name(n, sizeof n, l, "ffn_down");
    if ((st = bind_one(ctx, m, n, c->dim, c->hidden_dim, &L->w_down)) != QB_OK) return st;
    char gate[160];
    layer_name(gate, sizeof gate, l, "ffn_gate");
    layer_name(n, sizeof n, l, "ffn_up");
    if (!qb_model_find_tensor(m, gate) && qb_arch_get(c->arch)->fused) /* Phi-3: gate and up in ffn_up */
        return bind_one(ctx, m, n, 2 * (int64_t)c->hidden_dim, c->dim, &L->w_gate_up);
    if ((st = bind_one(ctx, m, gate, c->hidden_dim, c->dim, &L->w_gate)) != QB_OK) return st;
    return bind_one(ctx, m, n, c->hidden_dim, c->dim, &L->w_up);
}

/* Every tensor of the file must have a place in the description (llama.cpp refuses the same). */
static qb_status check_all_bound(qb_ctx *ctx, const qb_model *m)
{
    bool *used = calloc((size_t)m->n_tensors + 1, 1);
    if (!used) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", m->path);
    const qb_tensor *top[] = {m->tok_embd, m->output_norm, m->output, m->rope_freqs};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (top[i]) used[top[i] - m->tensors] = true;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const qb_layer_weights *L = &m->layers[l];
#define MARK(f) if (L->f) used[L->f - m->tensors] = true;
        QB_LAYER_TENSORS(MARK)
#undef MARK
        for (int e = 0; L->router && e < m->cfg.n_experts; e++)
            used[L->exp_gate[e] - m->tensors] = used[L->exp_up[e] - m->tensors] = used[L->exp_down[e] - m->tensors] =
                true;
    }
    qb_status st = QB_OK;
    for (int i = 0; i < m->n_tensors && st == QB_OK; i++)
        if (!used[i])
            st = qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor %s is not part of the %s model this file describes", m->path,
                         m->tensors[i].name, qb_arch_get(m->cfg.arch)->gguf);
    free(used);
    return st;
}

qb_status qb_model_bind(qb_ctx *ctx, qb_model *m)
{
    complete_description(&m->cfg);
    qb_status st = check_config(ctx, m);
    if (st != QB_OK) return st;
    const qb_config *c = &m->cfg;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", m->path);
    if (c->n_experts > 0 &&
        !(m->expert_slots = calloc((size_t)c->n_layers * 3 * (size_t)c->n_experts, sizeof *m->expert_slots)))
        return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", m->path);
    if ((st = bind_one(ctx, m, "token_embd.weight", c->vocab_size, c->dim, &m->tok_embd)) != QB_OK) return st;
    if ((st = bind_one(ctx, m, "output_norm.weight", 0, c->dim, &m->output_norm)) != QB_OK) return st;
    if (c->tied_output && !qb_model_find_tensor(m, "output.weight")) {
        m->output = m->tok_embd;
    } else if ((st = bind_one(ctx, m, "output.weight", c->vocab_size, c->dim, &m->output)) != QB_OK) {
        return st;
    }
    if ((st = bind_opt(ctx, m, "rope_freqs.weight", 0, c->head_dim / 2, &m->rope_freqs)) != QB_OK) return st;
    for (int l = 0; l < c->n_layers; l++) {
        qb_tensor **experts = m->expert_slots ? m->expert_slots + (size_t)l * 3 * c->n_experts : NULL;
        if ((st = bind_attention(ctx, m, l, &m->layers[l])) != QB_OK ||
            (st = bind_ffn(ctx, m, l, &m->layers[l], experts)) != QB_OK)
            return st;
    }
    return m->kind == QB_FILE_LLAMA2C ? QB_OK : check_all_bound(ctx, m);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Peek at the first four bytes to tell GGUF from a llama2.c checkpoint. */
static qb_status sniff(qb_ctx *ctx, const char *path, qb_file_kind *kind)
{
    if (is_dir(path)) {
        *kind = QB_FILE_SAFETENSORS;
        return QB_OK;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return qb_fail(ctx, QB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char magic[4] = {0};
    size_t n = fread(magic, 1, 4, f);
    fclose(f);
    const char *dot = strrchr(path, '.');
    if (n == 4 && memcmp(magic, "GGUF", 4) == 0) *kind = QB_FILE_GGUF;
    else if (dot && strcmp(dot, ".safetensors") == 0) *kind = QB_FILE_SAFETENSORS;
    else if (dot && strcmp(dot, ".gguf") == 0) *kind = QB_FILE_GGUF; /* reader reports the bad magic */
    else *kind = QB_FILE_LLAMA2C;
    return QB_OK;
}

/* opts->no_mmap: every tensor still borrowed from a mapping gets a private copy (64-byte
 * aligned, so the kernels' loads behave as on the mapping); the mappings' pages are then
 * given back (they stay readable: the tokenizer may borrow strings from them). On a shared
 * machine a mapped file's pages can be slower to stream than freshly written private ones
 * (README, Benchmarks, "At real size"). */
static qb_status copy_from_maps(qb_ctx *ctx, qb_model *m, const char *path)
{
    for (int i = 0; i < m->n_tensors; i++) {
        qb_tensor *t = &m->tensors[i];
        if (t->owned || !t->data || t->nbytes == 0) continue;
        void *b = NULL;
        if (posix_memalign(&b, 64, t->nbytes) != 0)
            return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory reading %s into memory (%zu bytes; without --no-mmap "
                           "it stays mapped)", path, t->name, t->nbytes);
        memcpy(b, t->data, t->nbytes);
        t->owned = b;
        t->data = b;
    }
    for (int i = 0; i < m->n_maps; i++) qb_mapfile_release(m->maps[i].data, m->maps[i].size);
    return QB_OK;
}

qb_status qb_model_open(qb_ctx *ctx, const char *path, const qb_model_opts *opts, qb_model **out)
{
    static const qb_model_opts no_opts;
    if (!opts) opts = &no_opts;
    *out = NULL;
    qb_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    }
    snprintf(m->arch, sizeof m->arch, "llama");
    qb_status st = sniff(ctx, path, &m->kind);
    if (st == QB_OK) {
        switch (m->kind) {
        case QB_FILE_LLAMA2C: st = qb_model_load_llama2c(ctx, m, opts); break;
        case QB_FILE_GGUF: st = qb_model_load_gguf(ctx, m, opts); break;
        case QB_FILE_SAFETENSORS: st = qb_model_load_safetensors(ctx, m, opts); break;
        }
    }
    if (st == QB_OK && opts && opts->no_mmap) st = copy_from_maps(ctx, m, path);
    for (int i = 0; st == QB_OK && i < m->n_tensors; i++) { /* remember the originals */
        qb_tensor *t = &m->tensors[i];
        t->src_type = t->type;
        t->src_data = t->data;
        t->src_nbytes = t->nbytes;
        t->src_owned = t->owned; /* a loader's copy now holds the source */
        t->owned = NULL;
        t->fmt = (qb_format){.kind = QB_FMT_GGML, .type = t->type};
    }
    if (st == QB_OK) st = qb_model_bind(ctx, m);
    if (st == QB_OK && m->tok && qb_tokenizer_vocab_size(m->tok) != m->cfg.vocab_size)
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: tokenizer has %d tokens but the model's vocabulary is %d", path,
                     qb_tokenizer_vocab_size(m->tok), m->cfg.vocab_size);
    if (st != QB_OK) {
        qb_model_close(m);
        return st;
    }
    *out = m;
    return QB_OK;
}

void qb_model_close(qb_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_tensors; i++) {
        free(m->tensors[i].name);
        free(m->tensors[i].owned);
        free(m->tensors[i].src_owned);
    }
    free(m->tensors);
    for (int i = 0; i < m->n_maps; i++) qb_mapfile_close(&m->maps[i]);
    free(m->maps);
    if (m->gguf) qb_gguf_close(m->gguf);
    if (m->tok) qb_tokenizer_free(m->tok);
    free(m->layers);
    free(m->expert_slots);
    free(m->path);
    free(m);
}

qb_status qb_model_tokenize_file(qb_ctx *ctx, const qb_model *m, const char *path, int32_t **tokens, int *n_tokens)
{
    *tokens = NULL;
    *n_tokens = 0;
    if (!m->tok) return qb_fail(ctx, QB_ERR_ARG, "%s: the model has no tokenizer", m->path);
    char *text;
    size_t len;
    qb_status st = qb_read_file(ctx, path, (size_t)1 << 31, &text, &len);
    if (st != QB_OK) return st;
    if (len == 0) {
        free(text);
        return qb_fail(ctx, QB_ERR_ARG, "%s: the evaluation text is empty", path);
    }
    st = qb_tokenize(ctx, m->tok, text, len, qb_tokenizer_add_bos(m->tok), tokens, n_tokens);
    free(text);
    return st;
}

bool qb_type_runs_packed(int type)
{
    if (type < 0 || type >= QB_TYPE_COUNT || type == QB_TYPE_CUSTOM) return false;
    int at = qb_act_type(type);
    const qb_kernel_table *k = qb_kernels();
    return at >= 0 && k->qdot[type] && k->quantize_act[at];
}
