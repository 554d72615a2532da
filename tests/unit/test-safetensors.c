/* test-safetensors.c — Hugging Face model directories: the safetensors header parser, the
 * config.json reader and the loader (index, shards, name mapping), against the shared
 * qb-docs-26m model (values cross-checked with its F16 GGUF) and against small valid and
 * broken directories built here under $TMPDIR. */
#include "testutil.h"

#include "core/util/gguf.h"
#include "core/model/hf_config.h"
#include "core/model/model.h"
#include "core/model/safetensors.h"

#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

#define HF_DIR "qb-docs-26m/hf"
#define F16_GGUF "qb-docs-26m/qb-docs-26m-f16.gguf"

/* ---------- helpers: temp directories and files ---------- */

static char *make_tmpdir(void)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    char *path = malloc(1024);
    assert_non_null(path);
    snprintf(path, 1024, "%s/qbtest-hf-XXXXXX", tmp);
    assert_non_null(mkdtemp(path));
    return path;
}

/* Remove the files in dir (flat) and dir itself, then free the path. */
static void remove_tmpdir(char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    char p[2048];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        assert_int_equal(unlink(p), 0);
    }
    closedir(d);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    write_file(dir, name, text, strlen(text));
}

/* A safetensors file: u64 header length, header (padded with spaces to a multiple of 8),
 * then data_len bytes of data. Caller frees. */
static unsigned char *st_bytes(const char *header, const void *data, size_t data_len, size_t *len)
{
    size_t h = strlen(header), hp = (h + 7) / 8 * 8;
    unsigned char *b = malloc(8 + hp + data_len + 1);
    assert_non_null(b);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hp >> (8 * i));
    memcpy(b + 8, header, h);
    memset(b + 8 + h, ' ', hp - h);
    if (data_len) memcpy(b + 8 + hp, data, data_len);
    *len = 8 + hp + data_len;
    return b;
}

/* Parse a header with data_len zero bytes of data, from an exact-size heap buffer. */
static qb_status parse_header(qb_ctx *ctx, const char *header, size_t data_len, qb_st_file *f)
{
    unsigned char *zeros = calloc(1, data_len + 1);
    assert_non_null(zeros);
    size_t len;
    unsigned char *b = st_bytes(header, zeros, data_len, &len);
    unsigned char *exact = malloc(len);
    assert_non_null(exact);
    memcpy(exact, b, len);
    qb_status st = qb_safetensors_parse(ctx, "mem.safetensors", exact, len, f);
    if (st == QB_OK) qb_safetensors_free(f); /* data pointers would dangle: callers only look at status */
    free(exact);
    free(b);
    free(zeros);
    return st;
}

/* ---------- a tiny valid model (dim 8, ffn 16, 2 layers, 2 heads / 1 kv head, vocab 16) ---------- */

static const char tiny_config[] =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 8,\n"
    " \"intermediate_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,\n"
    " \"num_key_value_heads\": 1, \"vocab_size\": 16, \"max_position_embeddings\": 64,\n"
    " \"rms_norm_eps\": 1e-06, \"rope_theta\": 500000.0, \"hidden_act\": \"silu\",\n"
    " \"tie_word_embeddings\": false, \"rope_scaling\": null}\n";

typedef struct {
    const char *name;
    int64_t rows, cols; /* rows == 0: a vector of cols */
    const char *dtype;  /* NULL: F32 */
} tspec;

static const tspec tiny_top[] = {
    {"model.embed_tokens.weight", 16, 8, NULL},
    {"model.norm.weight", 0, 8, NULL},
    {"lm_head.weight", 16, 8, NULL},
    {"model.rotary_emb.inv_freq", 0, 2, NULL}, /* not a weight: ignored */
    {"model.extra.counts", 0, 4, "I8"},        /* unknown name, unsupported dtype: ignored */
};
static const char *const tiny_layer_fmt[][2] = {
    {"model.layers.%d.input_layernorm.weight", "0x8"},  {"model.layers.%d.self_attn.q_proj.weight", "8x8"},
    {"model.layers.%d.self_attn.k_proj.weight", "4x8"}, {"model.layers.%d.self_attn.v_proj.weight", "4x8"},
    {"model.layers.%d.self_attn.o_proj.weight", "8x8"}, {"model.layers.%d.post_attention_layernorm.weight", "0x8"},
    {"model.layers.%d.mlp.gate_proj.weight", "16x8"},   {"model.layers.%d.mlp.up_proj.weight", "16x8"},
    {"model.layers.%d.mlp.down_proj.weight", "8x16"},
};

typedef struct {
    tspec t[64];
    char names[64][80];
    int n;
} tlist;

static void tlist_add(tlist *l, const char *name, int64_t rows, int64_t cols, const char *dtype)
{
    assert_true(l->n < 64);
    snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
    l->t[l->n] = (tspec){l->names[l->n], rows, cols, dtype};
    l->n++;
}

/* Layers [l0, l1) of the tiny model, plus the top-level tensors when top is set. */
static void tiny_tensors(tlist *l, bool top, bool lm_head, int l0, int l1)
{
    memset(l, 0, sizeof *l);
    for (size_t i = 0; top && i < sizeof tiny_top / sizeof tiny_top[0]; i++)
        if (lm_head || strcmp(tiny_top[i].name, "lm_head.weight") != 0)
            tlist_add(l, tiny_top[i].name, tiny_top[i].rows, tiny_top[i].cols, tiny_top[i].dtype);
    for (int layer = l0; layer < l1; layer++) {
        for (size_t i = 0; i < sizeof tiny_layer_fmt / sizeof tiny_layer_fmt[0]; i++) {
            char name[80];
            long long r, c;
            snprintf(name, sizeof name, tiny_layer_fmt[i][0], layer);
            assert_int_equal(sscanf(tiny_layer_fmt[i][1], "%lldx%lld", &r, &c), 2);
            tlist_add(l, name, r, c, NULL);
        }
    }
}

/* The value stored at element i of a tensor called name: distinct per tensor and element. */
static float tiny_value(const char *name, int64_t i)
{
    unsigned h = 0;
    for (const char *p = name; *p; p++) h = h * 31 + (unsigned char)*p;
    return (float)(h % 1000) + (float)i * 0.25f;
}

/* Serialise tensors into safetensors bytes (F32 values from tiny_value; other dtypes zero),
 * after pad unused bytes at the start of the data section. */
static unsigned char *tiny_st_pad(const tlist *l, size_t pad, size_t *len)
{
    char header[8192];
    size_t hl = (size_t)snprintf(header, sizeof header, "{\"__metadata__\": {\"format\": \"pt\"}");
    size_t off = pad;
    unsigned char *data = calloc(1, 1 << 16);
    assert_non_null(data);
    for (int i = 0; i < l->n; i++) {
        const tspec *t = &l->t[i];
        const char *dt = t->dtype ? t->dtype : "F32";
        size_t es = qb_safetensors_dtype_size(dt);
        int64_t nel = (t->rows ? t->rows : 1) * t->cols;
        char shape[48];
        if (t->rows) snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)t->rows, (long long)t->cols);
        else snprintf(shape, sizeof shape, "[%lld]", (long long)t->cols);
        hl += (size_t)snprintf(header + hl, sizeof header - hl,
                               ", \"%s\": {\"dtype\": \"%s\", \"shape\": %s, \"data_offsets\": [%zu, %zu]}", t->name,
                               dt, shape, off, off + (size_t)nel * es);
        assert_true(off + (size_t)nel * es <= 1 << 16);
        for (int64_t k = 0; k < nel; k++) {
            if (t->dtype) memset(data + off + (size_t)k * es, 0, es);
            else {
                float v = tiny_value(t->name, k);
                memcpy(data + off + (size_t)k * 4, &v, 4);
            }
        }
        off += (size_t)nel * es;
    }
    assert_true(hl + 2 < sizeof header);
    snprintf(header + hl, sizeof header - hl, "}");
    unsigned char *b = st_bytes(header, data, off, len);
    free(data);
    return b;
}

static unsigned char *tiny_st(const tlist *l, size_t *len)
{
    return tiny_st_pad(l, 0, len);
}

/* A directory with config.json (text cfg) and the whole tiny model in model.safetensors. */
static char *tiny_dir(const char *cfg)
{
    char *dir = make_tmpdir();
    write_text(dir, "config.json", cfg);
    tlist l;
    tiny_tensors(&l, true, true, 0, 2);
    size_t len;
    unsigned char *b = tiny_st(&l, &len);
    write_file(dir, "model.safetensors", b, len);
    free(b);
    return dir;
}

/* A malloc'd copy of s with the first occurrence of from replaced by to. */
static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    assert_non_null(at);
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *r = malloc(n);
    assert_non_null(r);
    snprintf(r, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return r;
}

static qb_status open_weights(qb_ctx *ctx, const char *path, qb_model **m)
{
    qb_model_opts o = {.skip_tokenizer = true};
    return qb_model_open(ctx, path, &o, m);
}

/* Open path expecting failure with status want and a message containing every string in
 * parts (NULL-terminated). */
static void expect_open_fail(const char *path, qb_status want, const char *const *parts)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = (qb_model *)1;
    qb_status st = open_weights(&ctx, path, &m);
    const char *msg = qb_ctx_errmsg(&ctx);
    if (st != want) fail_msg("status %s, want %s: %s", qb_status_name(st), qb_status_name(want), msg);
    assert_null(m);
    assert_null(strchr(msg, '\n'));
    for (int i = 0; parts[i]; i++)
        if (!strstr(msg, parts[i])) fail_msg("message \"%s\" lacks \"%s\"", msg, parts[i]);
}

#define EXPECT_FAIL(path, want, ...) expect_open_fail(path, want, (const char *const[]){__VA_ARGS__, NULL})

/* ---------- the shared 26M model ---------- */

static int open_real(void **state)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    qb_status st = open_weights(&ctx, qbt_model_path(HF_DIR), &m);
    if (st != QB_OK) fail_msg("open %s: %s", qbt_model_path(HF_DIR), qb_ctx_errmsg(&ctx));
    *state = m;
    return 0;
}

static int close_real(void **state)
{
    qb_model_close(*state);
    return 0;
}

static void test_real_config(void **state)
{
    const qb_model *m = *state;
    const qb_config *c = &m->cfg;
    assert_int_equal(m->kind, QB_FILE_SAFETENSORS);
    assert_string_equal(m->name, "hf");
    assert_string_equal(m->arch, "llama");
    assert_int_equal(c->dim, 512);
    assert_int_equal(c->hidden_dim, 1536);
    assert_int_equal(c->n_layers, 6);
    assert_int_equal(c->n_heads, 8);
    assert_int_equal(c->n_kv_heads, 2);
    assert_int_equal(c->head_dim, 64);
    assert_int_equal(c->vocab_size, 8192);
    assert_int_equal(c->seq_len, 1024);
    assert_float_equal(c->rope_theta, 10000.0f, 1e-3);
    assert_float_equal(c->norm_eps, 1e-5f, 1e-12);
    assert_false(c->tied_output);
    assert_int_equal(c->rope_layout, QB_ROPE_HALF);
    assert_null(m->tok);
    assert_int_equal(m->n_maps, 4);
    assert_int_equal(m->n_tensors, 3 + 6 * 9);
    assert_int_equal(qb_model_params(m), 26483200);
}

static bool inside_maps(const qb_model *m, const qb_tensor *t)
{
    const char *p = t->data;
    for (int i = 0; i < m->n_maps; i++) {
        const char *b = m->maps[i].data;
        if (p >= b && p + t->nbytes <= b + m->maps[i].size) return true;
    }
    return false;
}

/* A bound matrix: shape ne {cols, rows}, BF16 in place in a mapping. */
static void check_matrix(const qb_model *m, const qb_tensor *t, int64_t rows, int64_t cols)
{
    assert_non_null(t);
    if (t->ne[0] != cols || t->ne[1] != rows)
        fail_msg("%s: ne {%lld, %lld}, want {%lld, %lld}", t->name, (long long)t->ne[0], (long long)t->ne[1],
                 (long long)cols, (long long)rows);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->type, QB_TYPE_BF16);
    assert_int_equal(t->src_type, QB_TYPE_BF16);
    assert_int_equal(t->nbytes, (size_t)(rows * cols * 2));
    assert_null(t->owned);
    if (!inside_maps(m, t)) fail_msg("%s: data is not inside a mapped shard (copied?)", t->name);
}

/* A bound norm: BF16 in the file; the binder hands the forward pass an F32 copy. */
static void check_norm(const qb_tensor *t, int64_t n)
{
    assert_non_null(t);
    assert_int_equal(t->n_dims, 1);
    assert_int_equal(t->ne[0], n);
    assert_int_equal(t->ne[1], 1);
    assert_int_equal(t->src_type, QB_TYPE_BF16);
    assert_true(t->type == QB_TYPE_BF16 || t->type == QB_TYPE_F32);
}

static void test_real_tensors(void **state)
{
    const qb_model *m = *state;
    const qb_config *c = &m->cfg;
    check_matrix(m, m->tok_embd, 8192, 512);
    check_matrix(m, m->output, 8192, 512);
    assert_ptr_not_equal(m->output, m->tok_embd);
    check_norm(m->output_norm, 512);
    for (int l = 0; l < c->n_layers; l++) {
        const qb_layer_weights *L = &m->layers[l];
        check_norm(L->attn_norm, 512);
        check_norm(L->ffn_norm, 512);
        check_matrix(m, L->wq, 512, 512);
        check_matrix(m, L->wk, 128, 512);
        check_matrix(m, L->wv, 128, 512);
        check_matrix(m, L->wo, 512, 512);
        check_matrix(m, L->w_gate, 1536, 512);
        check_matrix(m, L->w_up, 1536, 512);
        check_matrix(m, L->w_down, 512, 1536);
    }
    for (int i = 0; i < m->n_tensors; i++) assert_int_equal(m->tensors[i].src_type, QB_TYPE_BF16);
}

/* Rows of HF tensor t (BF16) against rows of the GGUF F16 tensor gt: row_map(r) gives the HF row
 * stored as GGUF row r. F16 holds every bf16 value of normal magnitude exactly. */
static void compare_rows(const qb_tensor *t, const qb_gguf_tensor *gt, const int *rows, int n_rows, int head_dim)
{
    assert_non_null(gt);
    assert_int_equal(gt->type, QB_TYPE_F16);
    assert_int_equal(gt->ne[0], t->ne[0]);
    assert_int_equal(gt->ne[1], t->ne[1]);
    const uint16_t *hf = t->data, *gg = gt->data;
    int64_t n = t->ne[0];
    for (int k = 0; k < n_rows; k++) {
        int r = rows[k], src = r;
        if (head_dim) { /* llama.cpp's permute for interleaved RoPE: GGUF row h*hd + 2j + a = HF h*hd + a*hd/2 + j */
            int h = r / head_dim, w = r % head_dim;
            src = h * head_dim + (w % 2) * (head_dim / 2) + w / 2;
        }
        double maxabs = 0;
        for (int64_t i = 0; i < n; i++) {
            float a = qb_bf16_to_f32(hf[(int64_t)src * n + i]), b = qb_f16_to_f32(gg[(int64_t)r * n + i]);
            maxabs = fmax(maxabs, fabs(a));
            if (fabsf(a - b) > 1e-3f * fabsf(a) + 1e-7f)
                fail_msg("%s row %d col %lld: safetensors %g, GGUF %g", t->name, r, (long long)i, a, b);
        }
        assert_true(maxabs > 1e-3); /* not a row of zeros */
    }
}

static void test_real_values_vs_gguf(void **state)
{
    const qb_model *m = *state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g = NULL;
    if (qb_gguf_open(&ctx, qbt_model_path(F16_GGUF), &g) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    const int rows[] = {0, 1, 2, 255, 511, 8191};
    compare_rows(m->tok_embd, qb_gguf_find_tensor(g, "token_embd.weight"), rows, 6, 0);
    compare_rows(m->output, qb_gguf_find_tensor(g, "output.weight"), rows, 6, 0);
    compare_rows(m->layers[2].w_down, qb_gguf_find_tensor(g, "blk.2.ffn_down.weight"), rows, 5, 0);
    compare_rows(m->layers[5].w_up, qb_gguf_find_tensor(g, "blk.5.ffn_up.weight"), rows, 5, 0);
    compare_rows(m->layers[0].wv, qb_gguf_find_tensor(g, "blk.0.attn_v.weight"), rows, 3, 0);
    /* q and k: the GGUF converter permuted rows for interleaved RoPE; we keep HF's rotate-half
     * order (cfg.rope_layout = QB_ROPE_HALF), so the rows match through that permutation. */
    const int qrows[] = {0, 1, 2, 3, 31, 32, 33, 63, 64, 65, 127, 500, 511};
    compare_rows(m->layers[0].wq, qb_gguf_find_tensor(g, "blk.0.attn_q.weight"), qrows, 13, 64);
    compare_rows(m->layers[3].wk, qb_gguf_find_tensor(g, "blk.3.attn_k.weight"), qrows, 11, 64);
    /* and they do not match row for row */
    const qb_gguf_tensor *gq = qb_gguf_find_tensor(g, "blk.0.attn_q.weight");
    bool differs = false;
    for (int i = 0; i < 512 && !differs; i++)
        differs = qb_bf16_to_f32(((const uint16_t *)m->layers[0].wq->data)[512 + i]) !=
                  qb_f16_to_f32(((const uint16_t *)gq->data)[512 + i]);
    assert_true(differs);
    qb_gguf_close(g);
}

/* With the tokenizer (tokenizer.json): it loads and agrees with the vocabulary. */
static void test_real_with_tokenizer(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (qb_model_open(&ctx, qbt_model_path(HF_DIR), NULL, &m) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    assert_non_null(m->tok);
    assert_int_equal(m->cfg.vocab_size, 8192);
    qb_model_close(m);
}

/* ---------- tiny models built here ---------- */

static const qb_tensor *find(const qb_model *m, const char *name)
{
    const qb_tensor *t = qb_model_find_tensor(m, name);
    if (!t) fail_msg("no tensor %s", name);
    return t;
}

/* Tensor gguf holds HF tensor hf's values with ne = {cols, rows}, in place in a mapping. */
static void check_tiny_tensor(const qb_model *m, const char *gguf, const char *hf, int64_t rows, int64_t cols)
{
    const qb_tensor *t = find(m, gguf);
    assert_int_equal(t->ne[0], cols);
    assert_int_equal(t->ne[1], rows ? rows : 1);
    assert_int_equal(t->n_dims, rows ? 2 : 1);
    assert_int_equal(t->type, QB_TYPE_F32);
    const float *v = t->data;
    for (int64_t i = 0; i < (rows ? rows : 1) * cols; i++) assert_float_equal(v[i], tiny_value(hf, i), 0);
    if (!t->owned && !t->src_owned && !inside_maps(m, t)) fail_msg("%s: not in a mapping", gguf);
}

static void check_tiny(const qb_model *m)
{
    const qb_config *c = &m->cfg;
    assert_int_equal(c->dim, 8);
    assert_int_equal(c->hidden_dim, 16);
    assert_int_equal(c->n_layers, 2);
    assert_int_equal(c->n_heads, 2);
    assert_int_equal(c->n_kv_heads, 1);
    assert_int_equal(c->head_dim, 4); /* hidden / heads: no head_dim key */
    assert_int_equal(c->vocab_size, 16);
    assert_int_equal(c->seq_len, 64);
    assert_float_equal(c->rope_theta, 500000.0f, 0);
    assert_float_equal(c->norm_eps, 1e-6f, 0);
    assert_int_equal(c->rope_layout, QB_ROPE_HALF);
    assert_int_equal(m->n_tensors, 2 + (c->tied_output ? 0 : 1) + 2 * 9);
    check_tiny_tensor(m, "token_embd.weight", "model.embed_tokens.weight", 16, 8);
    check_tiny_tensor(m, "output_norm.weight", "model.norm.weight", 0, 8);
    if (!c->tied_output) check_tiny_tensor(m, "output.weight", "lm_head.weight", 16, 8);
    static const char *const gg[] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                     "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};
    for (int l = 0; l < 2; l++) {
        for (int i = 0; i < 9; i++) {
            char g[64], h[80];
            long long r, cc;
            snprintf(g, sizeof g, "blk.%d.%s.weight", l, gg[i]);
            snprintf(h, sizeof h, tiny_layer_fmt[i][0], l);
            assert_int_equal(sscanf(tiny_layer_fmt[i][1], "%lldx%lld", &r, &cc), 2);
            check_tiny_tensor(m, g, h, r, cc);
        }
    }
    for (int i = 0; i < m->n_tensors; i++) assert_null(m->tensors[i].owned); /* nothing copied */
    assert_ptr_equal(m->layers[1].w_down, qb_model_find_tensor(m, "blk.1.ffn_down.weight"));
    assert_int_equal(m->layers[1].w_down->ne[0], 16); /* HF [8, 16] = [out, in] */
    assert_int_equal(m->layers[1].w_down->ne[1], 8);
}

static void test_tiny_single(void **state)
{
    (void)state;
    char *dir = tiny_dir(tiny_config);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (open_weights(&ctx, dir, &m) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    check_tiny(m);
    assert_int_equal(m->n_maps, 1);
    assert_string_equal(m->name, strrchr(dir, '/') + 1);
    qb_model_close(m);

    /* the .safetensors file named directly: config.json comes from its directory */
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (open_weights(&ctx, p, &m) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    check_tiny(m);
    qb_model_close(m);

    /* trailing slash on the directory */
    snprintf(p, sizeof p, "%s/", dir);
    if (open_weights(&ctx, p, &m) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    assert_string_equal(m->name, strrchr(dir, '/') + 1);
    qb_model_close(m);
    remove_tmpdir(dir);
}

/* Two shards with an index; the index's metadata and an extra unknown entry are fine. */
static char *tiny_sharded_dir(const char *index_extra)
{
    char *dir = make_tmpdir();
    write_text(dir, "config.json", tiny_config);
    tlist a, b;
    tiny_tensors(&a, true, false, 0, 1);
    tiny_tensors(&b, false, false, 1, 2);
    tlist_add(&b, "lm_head.weight", 16, 8, NULL);
    size_t len;
    unsigned char *bytes = tiny_st(&a, &len);
    write_file(dir, "model-00001-of-00002.safetensors", bytes, len);
    free(bytes);
    bytes = tiny_st(&b, &len);
    write_file(dir, "model-00002-of-00002.safetensors", bytes, len);
    free(bytes);
    char idx[8192];
    size_t n = (size_t)snprintf(idx, sizeof idx, "{\"metadata\": {\"total_size\": 1}, \"weight_map\": {");
    for (int i = 0; i < a.n; i++)
        n += (size_t)snprintf(idx + n, sizeof idx - n, "%s\"%s\": \"model-00001-of-00002.safetensors\"", i ? ", " : "",
                              a.t[i].name);
    for (int i = 0; i < b.n; i++)
        n += (size_t)snprintf(idx + n, sizeof idx - n, ", \"%s\": \"model-00002-of-00002.safetensors\"", b.t[i].name);
    n += (size_t)snprintf(idx + n, sizeof idx - n, "%s}}", index_extra);
    assert_true(n < sizeof idx);
    write_text(dir, "model.safetensors.index.json", idx);
    return dir;
}

static void test_tiny_sharded(void **state)
{
    (void)state;
    char *dir = tiny_sharded_dir("");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (open_weights(&ctx, dir, &m) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    check_tiny(m);
    assert_int_equal(m->n_maps, 2);
    qb_model_close(m);
    remove_tmpdir(dir);
}

static void test_tiny_tied(void **state)
{
    (void)state;
    char *cfg = replace(tiny_config, "\"tie_word_embeddings\": false", "\"tie_word_embeddings\": true");
    char *dir = make_tmpdir();
    write_text(dir, "config.json", cfg);
    free(cfg);
    tlist l;
    tiny_tensors(&l, true, false, 0, 2);
    size_t len;
    unsigned char *b = tiny_st(&l, &len);
    write_file(dir, "model.safetensors", b, len);
    free(b);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (open_weights(&ctx, dir, &m) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    assert_true(m->cfg.tied_output);
    check_tiny(m);
    assert_ptr_equal(m->output, m->tok_embd);
    qb_model_close(m);
    remove_tmpdir(dir);
}

/* config.json variants read by qb_hf_config_parse directly. */
static void test_config_variants(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_config c;
    /* transformers 5: rope_theta inside rope_parameters; head_dim given; Mistral's window */
    const char *v5 = "{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 128,"
                     " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"head_dim\": 32, \"vocab_size\": 10,"
                     " \"max_position_embeddings\": 32768, \"sliding_window\": 4096,"
                     " \"rope_parameters\": {\"rope_theta\": 25000, \"rope_type\": \"default\"}}";
    assert_int_equal(qb_hf_config_parse(&ctx, "c.json", v5, strlen(v5), &c), QB_OK);
    assert_float_equal(c.rope_theta, 25000.0f, 0);
    assert_int_equal(c.head_dim, 32);
    assert_int_equal(c.n_kv_heads, 4); /* default: = heads */
    assert_int_equal(c.seq_len, 32768);
    assert_int_equal(c.swa_window, 4096); /* Mistral's window: every layer slides */
    assert_true(qb_config_layer_slides(&c, 0));
    assert_false(c.tied_output);
    assert_float_equal(c.norm_eps, 1e-6f, 0); /* transformers' LlamaConfig default */

    static const struct {
        const char *json;
        qb_status st;
        const char *msg;
    } bad[] = {
        /* positive as a double, 0 as the float qb_config keeps (found by fuzz-hf-config) */
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8, \"intermediate_size\": 8,"
         " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"vocab_size\": 4, \"rms_norm_eps\": 1e-50}",
         QB_ERR_FORMAT, "rms_norm_eps 1e-50 is out of range"},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8, \"intermediate_size\": 8,"
         " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"vocab_size\": 4, \"rope_theta\": 1e-60}",
         QB_ERR_FORMAT, "rope_theta 1e-60 is out of range"},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": 8}}",
         QB_ERR_UNSUPPORTED, "RoPE scaling 'dynamic' (rope_scaling)"},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"rope_scaling\": {\"type\": \"linear\", \"factor\": 0.5}}",
         QB_ERR_FORMAT, "factor 0.5 is out of range"},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8,"
         " \"low_freq_factor\": 4, \"high_freq_factor\": 1}}",
         QB_ERR_FORMAT, "llama3 factors"},
        {"{\"architectures\": [\"Phi3ForCausalLM\"], \"rope_scaling\": {\"type\": \"longrope\", \"factor\": 2}}",
         QB_ERR_UNSUPPORTED, "'longrope'"},
        {"{\"architectures\": [\"Qwen2MoeForCausalLM\"]}", QB_ERR_UNSUPPORTED, "Qwen2MoeForCausalLM is not supported"},
        {"{\"architectures\": [\"Qwen3MoeForCausalLM\"], \"hidden_size\": 8, \"intermediate_size\": 8,"
         " \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"vocab_size\": 4, \"num_experts\": 4,"
         " \"num_experts_per_tok\": 2, \"moe_intermediate_size\": 4, \"mlp_only_layers\": [0]}",
         QB_ERR_UNSUPPORTED, "mlp_only_layers"},
        {"{\"architectures\": [\"MixtralForCausalLM\"], \"hidden_size\": 8, \"intermediate_size\": 8,"
         " \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"vocab_size\": 4, \"num_local_experts\": 4,"
         " \"num_experts_per_tok\": 5}",
         QB_ERR_FORMAT, "4 experts with 5 per token"},
        {"{\"architectures\": [\"Gemma3ForCausalLM\"], \"hidden_size\": 8, \"intermediate_size\": 8,"
         " \"num_hidden_layers\": 3, \"num_attention_heads\": 2, \"vocab_size\": 4, \"layer_types\":"
         " [\"sliding_attention\", \"full_attention\", \"full_attention\"]}",
         QB_ERR_UNSUPPORTED, "not a repeating pattern"},
        {"{\"architectures\": [\"Gemma2ForCausalLM\"], \"hidden_act\": \"silu\"}", QB_ERR_UNSUPPORTED,
         "(gelu_pytorch_tanh is)"},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"rope_parameters\": {\"rope_type\": \"dynamic\"}}",
         QB_ERR_UNSUPPORTED, "'dynamic' (rope_parameters)"},
        {"{\"architectures\": [\"Qwen2ForCausalLM\"], \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4,"
         " \"original_max_position_embeddings\": 32, \"beta_fast\": 16}}",
         QB_ERR_UNSUPPORTED, "YaRN with beta_fast"},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_act\": \"gelu\"}", QB_ERR_UNSUPPORTED,
         "hidden_act gelu"},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"mlp_bias\": true}", QB_ERR_UNSUPPORTED, "mlp_bias"},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"quantization_config\": {\"quant_method\": \"gptq\"}}",
         QB_ERR_UNSUPPORTED, "gptq"},
        {"{\"model_type\": \"gpt2\"}", QB_ERR_UNSUPPORTED, "model_type gpt2"},
        {"{}", QB_ERR_UNSUPPORTED, "architectures"},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"intermediate_size\": 3}", QB_ERR_FORMAT,
         "missing \"hidden_size\""},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": \"512\"}", QB_ERR_FORMAT,
         "\"hidden_size\" must be a positive integer"},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": -4}", QB_ERR_FORMAT, "hidden_size"},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8, \"intermediate_size\": 8,"
         " \"num_hidden_layers\": 1, \"num_attention_heads\": 3, \"vocab_size\": 4}",
         QB_ERR_FORMAT, "not a multiple of num_attention_heads"},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8, \"intermediate_size\": 8,"
         " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"vocab_size\": 4, \"rms_norm_eps\": \"x\"}",
         QB_ERR_FORMAT, "\"rms_norm_eps\" must be a number"},
        {"[1, 2]", QB_ERR_FORMAT, "not a JSON object"},
        {"{\"a\": 1, \"a\": 2}", QB_ERR_FORMAT, "duplicate"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qb_status st = qb_hf_config_parse(&ctx, "c.json", bad[i].json, strlen(bad[i].json), &c);
        if (st != bad[i].st || !strstr(qb_ctx_errmsg(&ctx), bad[i].msg) || !strstr(qb_ctx_errmsg(&ctx), "c.json"))
            fail_msg("case %zu: %s: %s (want %s containing \"%s\")", i, qb_status_name(st), qb_ctx_errmsg(&ctx),
                     qb_status_name(bad[i].st), bad[i].msg);
    }
}

/* ---------- broken directories ---------- */

static void test_missing_config(void **state)
{
    (void)state;
    char *dir = tiny_dir(tiny_config);
    char p[1100];
    snprintf(p, sizeof p, "%s/config.json", dir);
    assert_int_equal(unlink(p), 0);
    EXPECT_FAIL(dir, QB_ERR_IO, dir, "no config.json");
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    EXPECT_FAIL(p, QB_ERR_IO, "no config.json");
    remove_tmpdir(dir);
}

static void test_corrupt_config(void **state)
{
    (void)state;
    char cfg[sizeof tiny_config];
    snprintf(cfg, sizeof cfg, "%s", tiny_config);
    cfg[strlen(cfg) / 2] = 0; /* truncated in the middle of line 2 or 3 */
    char *dir = tiny_dir(cfg);
    EXPECT_FAIL(dir, QB_ERR_FORMAT, "config.json: not valid JSON", "line ", "column ");
    remove_tmpdir(dir);
}

static void test_unsupported_arch(void **state)
{
    (void)state;
    char *cfg = replace(tiny_config, "LlamaForCausalLM", "GPT2LMHeadModel");
    char *dir = tiny_dir(cfg);
    free(cfg);
    EXPECT_FAIL(dir, QB_ERR_UNSUPPORTED, "config.json", "architecture GPT2LMHeadModel is not supported");
    remove_tmpdir(dir);
}

static void test_missing_shard(void **state)
{
    (void)state;
    char *dir = tiny_sharded_dir("");
    char p[1100];
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    assert_int_equal(unlink(p), 0);
    EXPECT_FAIL(dir, QB_ERR_IO, "model.safetensors.index.json", "shard model-00002-of-00002.safetensors is missing");
    remove_tmpdir(dir);
}

static void test_bad_index(void **state)
{
    (void)state;
    /* a tensor listed in a shard that does not hold it */
    char *dir = tiny_sharded_dir(", \"model.layers.0.mlp.bias\": \"model-00002-of-00002.safetensors\"");
    EXPECT_FAIL(dir, QB_ERR_FORMAT, "index.json", "'model.layers.0.mlp.bias' is listed in shard "
                "model-00002-of-00002.safetensors but that file does not hold it");
    remove_tmpdir(dir);
    /* a shard name that leaves the directory */
    dir = tiny_sharded_dir(", \"x\": \"../elsewhere.safetensors\"");
    EXPECT_FAIL(dir, QB_ERR_FORMAT, "index.json", "bad shard file name");
    remove_tmpdir(dir);
    /* not JSON */
    dir = tiny_sharded_dir("");
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\": {\"a\": ");
    EXPECT_FAIL(dir, QB_ERR_FORMAT, "index.json: not valid JSON", "line 1");
    remove_tmpdir(dir);
}

static void test_missing_weights_and_tokenizer(void **state)
{
    (void)state;
    char *dir = tiny_dir(tiny_config);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    /* no tokenizer.json and the tokenizer wanted */
    assert_int_equal(qb_model_open(&ctx, dir, NULL, &m), QB_ERR_IO);
    assert_null(m);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "no tokenizer.json"));
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), dir));
    /* no weights at all */
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    assert_int_equal(unlink(p), 0);
    EXPECT_FAIL(dir, QB_ERR_IO, "no model.safetensors or model.safetensors.index.json");
    remove_tmpdir(dir);
}

/* Wrong tensors in an otherwise valid directory. */
static void test_bad_tensors(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int64_t rows, cols;
        const char *dtype;
        qb_status st;
        const char *msg;
    } cases[] = {
        {"model.layers.7.mlp.up_proj.weight", 16, 8, NULL, QB_ERR_FORMAT, "belongs to layer 7 but config.json has 2"},
        {"model.layers.1.self_attn.v_proj.weight", 4, 8, "I8", QB_ERR_UNSUPPORTED,
         "tensor 'model.layers.1.self_attn.v_proj.weight' has dtype I8"},
        {"embed_tokens.weight", 16, 8, NULL, QB_ERR_FORMAT, "appears twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = make_tmpdir();
        write_text(dir, "config.json", tiny_config);
        tlist l;
        tiny_tensors(&l, true, true, 0, 2);
        if (cases[i].dtype) /* replace the tensor of that name */
            for (int k = 0; k < l.n; k++)
                if (strcmp(l.t[k].name, cases[i].name) == 0) l.t[k].dtype = cases[i].dtype;
        if (!cases[i].dtype) tlist_add(&l, cases[i].name, cases[i].rows, cases[i].cols, NULL);
        size_t len;
        unsigned char *b = tiny_st(&l, &len);
        write_file(dir, "model.safetensors", b, len);
        free(b);
        EXPECT_FAIL(dir, cases[i].st, "model.safetensors: ", cases[i].msg);
        remove_tmpdir(dir);
    }
}

/* ---------- the safetensors header parser ---------- */

static void test_parse_valid(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    uint16_t vals[6] = {0x3f80, 0x4000, 0xbf80, 0x0000, 0x4040, 0x3f00}; /* bf16 1, 2, -1, 0, 3, 0.5 */
    int64_t seven = 7;
    unsigned char data[20];
    memcpy(data, vals, 12);
    memcpy(data + 12, &seven, 8);
    size_t len;
    unsigned char *b = st_bytes("{\"__metadata__\": {\"format\": \"pt\"}, \"w\": {\"dtype\": \"BF16\", \"shape\": "
                                "[2, 3], \"data_offsets\": [0, 12]}, \"s\": {\"dtype\": \"I64\", \"shape\": [], "
                                "\"data_offsets\": [12, 20]}, \"e\": {\"dtype\": \"F32\", \"shape\": [0, 5], "
                                "\"data_offsets\": [20, 20]}}",
                                data, sizeof data, &len);
    qb_st_file f;
    if (qb_safetensors_parse(&ctx, "mem", b, len, &f) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    assert_int_equal(f.n_tensors, 3);
    const qb_st_tensor *w = qb_safetensors_find(&f, "w");
    assert_non_null(w);
    assert_int_equal(w->type, QB_TYPE_BF16);
    assert_string_equal(w->dtype, "BF16");
    assert_int_equal(w->n_dims, 2);
    assert_int_equal(w->shape[0], 2);
    assert_int_equal(w->shape[1], 3);
    assert_int_equal(w->nbytes, 12);
    assert_ptr_equal(w->data, b + f.data_offset);
    assert_float_equal(qb_bf16_to_f32(((const uint16_t *)w->data)[4]), 3.0f, 0);
    const qb_st_tensor *s = qb_safetensors_find(&f, "s");
    assert_int_equal(s->type, -1);
    assert_string_equal(s->dtype, "I64");
    assert_int_equal(s->n_dims, 0);
    assert_int_equal(s->nbytes, 8);
    assert_int_equal(qb_safetensors_find(&f, "e")->nbytes, 0);
    assert_null(qb_safetensors_find(&f, "__metadata__"));
    qb_safetensors_free(&f);
    qb_safetensors_free(&f); /* harmless twice */
    free(b);
    assert_int_equal(qb_safetensors_dtype_size("F64"), 8);
    assert_int_equal(qb_safetensors_dtype_size("Q4"), 0);
}

static void test_parse_bad(void **state)
{
    (void)state;
    static const struct {
        const char *header;
        size_t data_len;
        qb_status st;
        const char *msg;
    } cases[] = {
        {"this is not json", 0, QB_ERR_FORMAT, "header is not valid JSON:"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},", 8, QB_ERR_FORMAT, "line 1, column"},
        {"[1, 2, 3]", 0, QB_ERR_FORMAT, "header is not a JSON object"},
        {"{\"a\": 5}", 0, QB_ERR_FORMAT, "tensor 'a': header entry is not an object"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8, QB_ERR_FORMAT, "tensor 'a': entry needs"},
        /* data past the end of the file */
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8, QB_ERR_FORMAT,
         "tensor 'a' data [0, 16) lies past the end of the file (data section has 8 bytes; truncated?)"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [9999999999, 10000000003]}}", 8,
         QB_ERR_FORMAT, "lies past the end"},
        /* overlapping tensors */
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F16\", "
         "\"shape\": [4], \"data_offsets\": [4, 12]}}",
         16, QB_ERR_FORMAT, "tensors 'a' [0, 8) and 'b' [4, 12) overlap"},
        {"{\"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}, \"a\": {\"dtype\": \"U8\", "
         "\"shape\": [1], \"data_offsets\": [15, 16]}}",
         16, QB_ERR_FORMAT, "overlap"},
        /* shape and offsets disagree */
        {"{\"a\": {\"dtype\": \"BF16\", \"shape\": [2, 3], \"data_offsets\": [0, 8]}}", 8, QB_ERR_FORMAT,
         "tensor 'a' of shape [2, 3] and dtype BF16 needs 12 bytes but data_offsets [0, 8] span 8"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", 8, QB_ERR_FORMAT,
         "0 <= begin <= end"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 8, QB_ERR_FORMAT,
         "0 <= begin <= end"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 8, QB_ERR_FORMAT,
         "0 <= begin <= end"},
        /* unsupported dtype */
        {"{\"wq\": {\"dtype\": \"F4_E2M1\", \"shape\": [2], \"data_offsets\": [0, 1]}}", 8, QB_ERR_UNSUPPORTED,
         "mem.safetensors: tensor 'wq' has unsupported dtype 'F4_E2M1'"},
        /* absurd dims */
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1125899906842624, 4], \"data_offsets\": [0, 8]}}", 8,
         QB_ERR_FORMAT, "tensor 'a' has an absurd dimension (shape entry 0)"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1099511627776, 1099511627776, 1099511627776], "
         "\"data_offsets\": [0, 8]}}",
         8, QB_ERR_FORMAT, "tensor 'a' has absurd shape [1099511627776, 1099511627776, 1099511627776]"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2, -1], \"data_offsets\": [0, 8]}}", 8, QB_ERR_FORMAT,
         "absurd dimension (shape entry 1)"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 1.5], \"data_offsets\": [0, 8]}}", 8, QB_ERR_FORMAT,
         "absurd dimension"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,2], \"data_offsets\": [0, 8]}}", 8, QB_ERR_FORMAT,
         "has 9 dimensions (at most 8 allowed)"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [99999999999999999999], \"data_offsets\": [0, 8]}}", 8,
         QB_ERR_FORMAT, "not valid JSON"},
        /* duplicate names */
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, \"a\": {\"dtype\": \"F32\", "
         "\"shape\": [1], \"data_offsets\": [4, 8]}}",
         8, QB_ERR_FORMAT, "duplicate object key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        qb_st_file f = {(qb_st_tensor *)1, 5, 7};
        qb_status st = parse_header(&ctx, cases[i].header, cases[i].data_len, &f);
        const char *msg = qb_ctx_errmsg(&ctx);
        if (st != cases[i].st || !strstr(msg, cases[i].msg) || !strstr(msg, "mem.safetensors: "))
            fail_msg("case %zu: %s: %s (want %s containing \"%s\")", i, qb_status_name(st), msg,
                     qb_status_name(cases[i].st), cases[i].msg);
        assert_null(f.tensors);
        assert_int_equal(f.n_tensors, 0);
    }
}

/* The header length field against the file size. */
static void test_parse_header_length(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_st_file f;
    unsigned char b[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    assert_int_equal(qb_safetensors_parse(&ctx, "h.st", b, sizeof b, &f), QB_ERR_FORMAT);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "h.st: header length 65535 is larger than the file (16 bytes)"));
    memset(b, 0xff, 8); /* 2^64 - 1: must not wrap */
    assert_int_equal(qb_safetensors_parse(&ctx, "h.st", b, sizeof b, &f), QB_ERR_FORMAT);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "is larger than the file"));
    assert_int_equal(qb_safetensors_parse(&ctx, "h.st", b, 5, &f), QB_ERR_FORMAT);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "h.st: too short for a safetensors file (5 bytes)"));
    assert_int_equal(qb_safetensors_parse(&ctx, "h.st", NULL, 0, &f), QB_ERR_FORMAT);
    /* an empty object is a valid file with no tensors */
    memset(b, 0, 8);
    b[0] = 8;
    assert_int_equal(qb_safetensors_parse(&ctx, "h.st", b, sizeof b, &f), QB_OK);
    assert_int_equal(f.n_tensors, 0);
    assert_int_equal(f.data_offset, 16);
    qb_safetensors_free(&f);
}

/* A valid tiny model.safetensors truncated at many lengths: every prefix fails cleanly, both
 * from an exact-size heap buffer (ASan sees any over-read) and through qb_model_open. */
static void test_truncated(void **state)
{
    (void)state;
    tlist l;
    tiny_tensors(&l, true, true, 0, 2);
    size_t len;
    unsigned char *full = tiny_st(&l, &len);
    size_t hdr = 8;
    for (int i = 0; i < 8; i++) hdr += (size_t)full[i] << (8 * i);
    size_t cuts[] = {0, 1, 4, 7, 8, 9, 20, hdr / 2, hdr - 1, hdr, hdr + 1, hdr + 300, len - 4, len - 1};
    char *dir = make_tmpdir();
    write_text(dir, "config.json", tiny_config);
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        size_t n = cuts[i];
        assert_true(n < len);
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        unsigned char *exact = malloc(n ? n : 1);
        memcpy(exact, full, n);
        qb_st_file f;
        qb_status st = qb_safetensors_parse(&ctx, "cut", exact, n, &f);
        if (st != QB_ERR_FORMAT) fail_msg("cut at %zu of %zu: %s: %s", n, len, qb_status_name(st), qb_ctx_errmsg(&ctx));
        free(exact);
        write_file(dir, "model.safetensors", full, n);
        EXPECT_FAIL(dir, QB_ERR_FORMAT, p);
    }
    /* the whole file is fine */
    write_file(dir, "model.safetensors", full, len);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (open_weights(&ctx, dir, &m) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    qb_model_close(m);
    /* and the messages say what went wrong */
    write_file(dir, "model.safetensors", full, 20);
    EXPECT_FAIL(dir, QB_ERR_FORMAT, "is larger than the file (20 bytes)");
    write_file(dir, "model.safetensors", full, len - 1);
    EXPECT_FAIL(dir, QB_ERR_FORMAT, "lies past the end of the file");
    free(full);
    remove_tmpdir(dir);
}

/* A tensor whose bytes are misaligned for its type gets an aligned copy. */
static void test_misaligned(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    write_text(dir, "config.json", tiny_config);
    tlist l;
    tiny_tensors(&l, true, true, 0, 2);
    size_t len;
    unsigned char *b = tiny_st_pad(&l, 1, &len); /* every offset odd */
    write_file(dir, "model.safetensors", b, len);
    free(b);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (open_weights(&ctx, dir, &m) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    check_tiny_tensor(m, "output.weight", "lm_head.weight", 16, 8);
    check_tiny_tensor(m, "blk.1.ffn_down.weight", "model.layers.1.mlp.down_proj.weight", 8, 16);
    const qb_tensor *t = find(m, "output.weight");
    assert_non_null(t->src_owned); /* the loader's aligned copy holds the source */
    assert_int_equal((uintptr_t)t->data % 4, 0);
    qb_model_close(m);
    remove_tmpdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_real_config, open_real, close_real),
        cmocka_unit_test_setup_teardown(test_real_tensors, open_real, close_real),
        cmocka_unit_test_setup_teardown(test_real_values_vs_gguf, open_real, close_real),
        cmocka_unit_test(test_real_with_tokenizer),
        cmocka_unit_test(test_tiny_single),
        cmocka_unit_test(test_tiny_sharded),
        cmocka_unit_test(test_tiny_tied),
        cmocka_unit_test(test_config_variants),
        cmocka_unit_test(test_missing_config),
        cmocka_unit_test(test_corrupt_config),
        cmocka_unit_test(test_unsupported_arch),
        cmocka_unit_test(test_missing_shard),
        cmocka_unit_test(test_bad_index),
        cmocka_unit_test(test_missing_weights_and_tokenizer),
        cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_header_length),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_misaligned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
