/* model.c — opening a model of any kind: detection, the tensor table, binding tensors to the
 * per-layer weight slots with shape checks against the hyperparameters, and closing. */
#include "model.h"
#include "../util/gguf.h"
#include "../tokenizer/tokenizer.h"
#include "kernels.h"

#include <errno.h>
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

static qb_status check_config(qb_ctx *ctx, const qb_model *m)
{
    const qb_config *c = &m->cfg;
    if (c->dim <= 0 || c->dim > 65536 || c->hidden_dim <= 0 || c->hidden_dim > 1 << 20 || c->n_layers <= 0 ||
        c->n_layers > 1024 || c->n_heads <= 0 || c->n_heads > 1024 || c->n_kv_heads <= 0 ||
        c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0 || c->vocab_size <= 0 ||
        c->vocab_size > 1 << 22 || c->seq_len <= 0 || c->head_dim <= 0 || c->head_dim % 2 != 0 ||
        c->head_dim > 4096)
        return qb_fail(ctx, QB_ERR_FORMAT,
                       "%s: absurd hyperparameters (dim %d, ffn %d, layers %d, heads %d/%d, head_dim %d, vocab %d, "
                       "ctx %d)",
                       m->path, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim,
                       c->vocab_size, c->seq_len);
    if (!(c->norm_eps > 0 && c->norm_eps < 1) || !(c->rope_theta > 0))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: bad norm epsilon %g or rope theta %g", m->path, c->norm_eps,
                       c->rope_theta);
    return QB_OK;
}

qb_status qb_model_bind(qb_ctx *ctx, qb_model *m)
{
    qb_status st = check_config(ctx, m);
    if (st != QB_OK) return st;
    const qb_config *c = &m->cfg;
    int64_t q_dim = (int64_t)c->n_heads * c->head_dim, kv_dim = (int64_t)c->n_kv_heads * c->head_dim;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", m->path);
    if ((st = bind_one(ctx, m, "token_embd.weight", c->vocab_size, c->dim, &m->tok_embd)) != QB_OK) return st;
    if ((st = bind_one(ctx, m, "output_norm.weight", 0, c->dim, &m->output_norm)) != QB_OK) return st;
    if (c->tied_output && !qb_model_find_tensor(m, "output.weight")) {
        m->output = m->tok_embd;
    } else if ((st = bind_one(ctx, m, "output.weight", c->vocab_size, c->dim, &m->output)) != QB_OK) {
        return st;
    }
    for (int l = 0; l < c->n_layers; l++) {
        qb_layer_weights *L = &m->layers[l];
        struct { const char *suffix; int64_t rows, cols; qb_tensor **slot; } want[] = {
            {"attn_norm", 0, c->dim, &L->attn_norm},     {"attn_q", q_dim, c->dim, &L->wq},
            {"attn_k", kv_dim, c->dim, &L->wk},          {"attn_v", kv_dim, c->dim, &L->wv},
            {"attn_output", c->dim, q_dim, &L->wo},      {"ffn_norm", 0, c->dim, &L->ffn_norm},
            {"ffn_gate", c->hidden_dim, c->dim, &L->w_gate}, {"ffn_down", c->dim, c->hidden_dim, &L->w_down},
            {"ffn_up", c->hidden_dim, c->dim, &L->w_up},
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, want[i].suffix);
            if ((st = bind_one(ctx, m, name, want[i].rows, want[i].cols, want[i].slot)) != QB_OK) return st;
        }
    }
    return QB_OK;
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
