/* test-infer.c — the forward pass against other implementations' numbers: llama2.c's logits
 * and greedy tokens for stories260K (llama2.c .bin and llama.cpp's GGUF conversion), and
 * transformers' fp32 logits and greedy ids for qb-docs-26m (HF safetensors and llama.cpp's
 * F16 GGUF). Weights are opened without tokenizers here: ids come from the fixtures. */
#include "testmodel.h"
#include <math.h>

#include "core/model/model.h"
#include "core/infer/infer.h"
#include "core/infer/sampler.h"
#include "core/util/gguf_write.h"

static const qb_model_opts no_tokenizer = {.skip_tokenizer = true};

/* stories260K reference: fed tokens and 32 rows of 512 logits from llama2.c's run.c */
typedef struct {
    int fed[32];
    float logits[32][512];
} ref260k;

static void load_ref260k(ref260k *r)
{
    char *txt = qbt_slurp(qbt_model_path("stories260K/reference-logits.txt"), NULL);
    char *line = txt;
    int rows = 0;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        int pos, tok, off;
        if (sscanf(line, "pos %d token %d logits %n", &pos, &tok, &off) == 2) {
            assert_int_equal(pos, rows);
            r->fed[pos] = tok;
            char *p = line + off;
            for (int i = 0; i < 512; i++) r->logits[pos][i] = strtof(p, &p);
            rows++;
        }
        line = nl ? nl + 1 : NULL;
    }
    assert_int_equal(rows, 32);
    free(txt);
}

static void check_260k_logits_opts(const char *rel, float tol, const qb_model_opts *opts)
{
    static ref260k ref;
    load_ref260k(&ref);
    qb_model *m = qbt_open_model(rel, opts);
    if (opts->no_mmap) /* every weight in private memory, none left in a mapping */
        for (int i = 0; i < m->n_tensors; i++) {
            const qb_tensor *t = &m->tensors[i];
            assert_non_null(t->src_owned);
            assert_ptr_equal(t->data, t->src_owned);
            for (int k = 0; k < m->n_maps; k++) {
                const char *a = m->maps[k].data, *p = t->data;
                if (p >= a && p < a + m->maps[k].size) fail_msg("%s: %s still in the mapping", rel, t->name);
            }
        }
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_infer *s;
    assert_int_equal(qb_infer_new(&ctx, m, 0, 0, &s), QB_OK);
    float logits[512];
    float worst = 0;
    for (int p = 0; p < 32; p++) {
        /* token by token, exactly as run.c does */
        assert_int_equal(qb_infer_eval(&ctx, s, &ref.fed[p], 1, p, logits, 1), QB_OK);
        for (int i = 0; i < 512; i++) worst = fmaxf(worst, fabsf(logits[i] - ref.logits[p][i]));
        if (p >= 4 && p < 31) assert_int_equal(qb_argmax(logits, 512), ref.fed[p + 1]);
    }
    if (worst > tol) fail_msg("%s: max |logit diff| %g > %g", rel, worst, tol);
    /* the same 32 tokens as one batch give the same logits */
    float *all = malloc(32 * 512 * sizeof(float));
    assert_int_equal(qb_infer_eval(&ctx, s, ref.fed, 32, 0, all, 32), QB_OK);
    worst = 0;
    for (int p = 0; p < 32; p++)
        for (int i = 0; i < 512; i++) worst = fmaxf(worst, fabsf(all[p * 512 + i] - ref.logits[p][i]));
    if (worst > tol) fail_msg("%s batched: max |logit diff| %g > %g", rel, worst, tol);
    free(all);
    qb_infer_free(s);
    qb_model_close(m);
}

static void check_260k_logits(const char *rel, float tol) { check_260k_logits_opts(rel, tol, &no_tokenizer); }

/* --no-mmap (qb_model_opts.no_mmap): the weights copied into private memory give the
 * reference logits from both loaders. */
static void test_260k_no_mmap(void **state)
{
    (void)state;
    const qb_model_opts o = {.skip_tokenizer = true, .no_mmap = true};
    check_260k_logits_opts("stories260K/stories260K.bin", 1e-4f, &o);
    check_260k_logits_opts("stories260K/stories260K-f32.gguf", 1e-4f, &o);
}

static void test_260k_llama2c_logits(void **state)
{
    (void)state;
    check_260k_logits("stories260K/stories260K.bin", 1e-4f);
}

static void test_260k_gguf_logits(void **state)
{
    (void)state;
    check_260k_logits("stories260K/stories260K-f32.gguf", 1e-4f);
}

/* Greedy ids for 96 steps after the prompt equal llama2.c's (the reference text's tokens). */
static void test_260k_greedy_same_both_formats(void **state)
{
    (void)state;
    const char *files[] = {"stories260K/stories260K.bin", "stories260K/stories260K-f32.gguf"};
    int32_t seq[2][100];
    for (int f = 0; f < 2; f++) {
        qb_model *m = qbt_open_model(files[f], &no_tokenizer);
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        qb_infer *s;
        assert_int_equal(qb_infer_new(&ctx, m, 128, 0, &s), QB_OK);
        int32_t prompt[5] = {1, 403, 407, 261, 378};
        float logits[512];
        assert_int_equal(qb_infer_eval(&ctx, s, prompt, 5, 0, logits, 1), QB_OK);
        memcpy(seq[f], prompt, sizeof prompt);
        for (int p = 5; p < 100; p++) {
            seq[f][p] = qb_argmax(logits, 512);
            assert_int_equal(qb_infer_eval(&ctx, s, &seq[f][p], 1, p, logits, 1), QB_OK);
        }
        qb_infer_free(s);
        qb_model_close(m);
    }
    assert_memory_equal(seq[0], seq[1], sizeof seq[0]);
    /* first 32 agree with llama2.c's fed tokens */
    static ref260k ref;
    load_ref260k(&ref);
    for (int p = 0; p < 32; p++) assert_int_equal(seq[0][p], ref.fed[p]);
}

/* qb-docs-26m: transformers fp32 logits for 3 prompts at every position */
static void check_docs_logits(const char *rel, float tol)
{
    size_t len;
    char *buf = qbt_slurp(qbt_model_path("qb-docs-26m/fixtures/logits.bin"), &len);
    assert_memory_equal(buf, "QBRL", 4);
    uint32_t hdr[3];
    memcpy(hdr, buf + 4, 12);
    assert_int_equal(hdr[0], 1);
    uint32_t n_prompts = hdr[1], vocab = hdr[2];
    assert_int_equal(vocab, 8192);
    qb_model *m = qbt_open_model(rel, &no_tokenizer);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    size_t off = 16;
    float worst = 0;
    for (uint32_t p = 0; p < n_prompts; p++) {
        uint32_t n;
        memcpy(&n, buf + off, 4);
        off += 4;
        int32_t *ids = malloc(n * sizeof *ids);
        memcpy(ids, buf + off, n * 4);
        off += n * 4;
        const float *ref = (const float *)(buf + off);
        off += (size_t)n * vocab * 4;
        assert_true(off <= len);
        qb_infer *s;
        assert_int_equal(qb_infer_new(&ctx, m, 0, 0, &s), QB_OK);
        float *out = malloc((size_t)n * vocab * sizeof(float));
        assert_int_equal(qb_infer_eval(&ctx, s, ids, (int)n, 0, out, (int)n), QB_OK);
        for (size_t i = 0; i < (size_t)n * vocab; i++) {
            float r;
            memcpy(&r, ref + i, 4);
            worst = fmaxf(worst, fabsf(out[i] - r));
        }
        free(out);
        free(ids);
        qb_infer_free(s);
    }
    if (worst > tol) fail_msg("%s: max |logit diff| vs transformers %g > %g", rel, worst, tol);
    print_message("%s: max |logit diff| vs transformers = %g\n", rel, worst);
    free(buf);
    qb_model_close(m);
}

static void test_docs_hf_logits(void **state)
{
    (void)state;
    check_docs_logits("qb-docs-26m/hf", 2e-3f);
}

static void test_docs_gguf_f16_logits(void **state)
{
    (void)state;
    check_docs_logits("qb-docs-26m/qb-docs-26m-f16.gguf", 2e-3f);
}

/* greedy ids from greedy.json (transformers): parse the small JSON by hand */
static int parse_ids(const char *p, const char *key, int32_t *out, int cap)
{
    const char *k = strstr(p, key);
    assert_non_null(k);
    k = strchr(k, '[') + 1;
    int n = 0;
    while (*k && *k != ']') {
        char *e;
        long v = strtol(k, &e, 10);
        if (e == k) {
            k++;
            continue;
        }
        assert_true(n < cap);
        out[n++] = (int32_t)v;
        k = e;
    }
    return n;
}

static void check_docs_greedy(const char *rel)
{
    char *js = qbt_slurp(qbt_model_path("qb-docs-26m/fixtures/greedy.json"), NULL);
    qb_model *m = qbt_open_model(rel, &no_tokenizer);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    const char *p = js;
    int prompts = 0;
    while ((p = strstr(p, "\"prompt_ids\""))) {
        int32_t pid[64], gid[64];
        int np = parse_ids(p, "\"prompt_ids\"", pid, 64);
        int ng = parse_ids(p, "\"greedy_ids\"", gid, 64);
        qb_infer *s;
        assert_int_equal(qb_infer_new(&ctx, m, 256, 0, &s), QB_OK);
        float *logits = malloc(8192 * sizeof(float));
        assert_int_equal(qb_infer_eval(&ctx, s, pid, np, 0, logits, 1), QB_OK);
        for (int i = 0; i < ng; i++) {
            int32_t next = qb_argmax(logits, 8192);
            if (next != gid[i]) fail_msg("%s prompt %d: greedy token %d is %d, transformers %d", rel, prompts, i, next, gid[i]);
            assert_int_equal(qb_infer_eval(&ctx, s, &next, 1, np + i, logits, 1), QB_OK);
        }
        free(logits);
        qb_infer_free(s);
        prompts++;
        p = strstr(p, "\"greedy_ids\"");
    }
    assert_int_equal(prompts, 3);
    qb_model_close(m);
    free(js);
}

static void test_docs_hf_greedy(void **state)
{
    (void)state;
    check_docs_greedy("qb-docs-26m/hf");
}

static void test_docs_gguf_greedy(void **state)
{
    (void)state;
    check_docs_greedy("qb-docs-26m/qb-docs-26m-f16.gguf");
}

/* The observer sees every linear layer's input once per layer and point, with the right
 * widths; zeroing the FFN input of every layer changes the logits, and removing the observer
 * gives back llama2.c's logits. */
typedef struct {
    int calls[QB_OBS_COUNT];
    int width[QB_OBS_COUNT];
    int bad_width;
    bool zero_ffn;
} obs_log;

static void obs_fn(void *ud, int layer, qb_obs_point pt, float *x, int n, int width)
{
    obs_log *o = ud;
    (void)layer;
    o->calls[pt]++;
    if (width != o->width[pt] || n <= 0) o->bad_width++;
    if (o->zero_ffn && pt == QB_OBS_FFN_IN) memset(x, 0, (size_t)n * width * sizeof(float));
}

static void test_observer(void **state)
{
    (void)state;
    qb_model *m = qbt_open_model("stories260K/stories260K.bin", &no_tokenizer);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_infer *s = NULL;
    assert_int_equal(qb_infer_new(&ctx, m, 32, 0, &s), QB_OK);
    ref260k *r = malloc(sizeof *r);
    load_ref260k(r);
    const qb_config *c = &m->cfg;
    int V = c->vocab_size;
    float *logits = malloc((size_t)V * sizeof(float));
    obs_log o = {.width = {c->dim, c->n_heads * c->head_dim, c->dim, c->hidden_dim, c->dim}};
    qb_infer_set_observer(s, obs_fn, &o);
    assert_int_equal(qb_infer_eval(&ctx, s, r->fed, 4, 0, logits, 1), QB_OK);
    for (int p = 0; p < QB_OBS_OUTPUT_IN; p++) assert_int_equal(o.calls[p], c->n_layers);
    assert_int_equal(o.calls[QB_OBS_OUTPUT_IN], 1);
    assert_int_equal(o.bad_width, 0);
    assert_true(fabsf(logits[0] - r->logits[3][0]) < 1e-4f);
    o.zero_ffn = true;
    assert_int_equal(qb_infer_eval(&ctx, s, r->fed, 4, 0, logits, 1), QB_OK);
    float diff = 0;
    for (int i = 0; i < V; i++) diff = fmaxf(diff, fabsf(logits[i] - r->logits[3][i]));
    assert_true(diff > 1e-2f);
    qb_infer_set_observer(s, NULL, NULL);
    assert_int_equal(qb_infer_eval(&ctx, s, r->fed, 4, 0, logits, 1), QB_OK);
    for (int i = 0; i < V; i++) assert_true(fabsf(logits[i] - r->logits[3][i]) < 1e-4f);
    free(logits);
    free(r);
    qb_infer_free(s);
    qb_model_close(m);
}

/* A legacy llama2.c header whose vocab_size is INT32_MIN: negating it (the "untied classifier"
 * convention) overflowed; now it is an absurd header like any other (found by fuzz-llama2c). */
static void test_llama2c_vocab_int_min(void **state)
{
    (void)state;
    int32_t hdr[7] = {8, 16, 1, 2, 2, INT32_MIN, 4};
    char *path = qbt_write_temp("vocabmin", hdr, sizeof hdr);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model_opts opts = {.skip_tokenizer = true};
    qb_model *m = NULL;
    assert_int_equal(qb_model_open(&ctx, path, &opts, &m), QB_ERR_FORMAT);
    assert_null(m);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "not a llama2.c checkpoint (absurd header"));
    unlink(path);
    free(path);
}

/* A weight stored with extra dimensions (ne[2] or ne[3] > 1) is not the matrix the forward pass
 * reads: rejected with its full shape instead of half of it being ignored. */
static void test_bind_rejects_4d(void **state)
{
    (void)state;
    static float zeros[16 * 8 * 2];
    qb_gguf_writer *w = qb_gguf_writer_new();
    assert_non_null(w);
    assert_true(qb_gguf_set_str(w, "general.architecture", "llama"));
    assert_true(qb_gguf_set_u32(w, "llama.embedding_length", 8));
    assert_true(qb_gguf_set_u32(w, "llama.feed_forward_length", 16));
    assert_true(qb_gguf_set_u32(w, "llama.block_count", 1));
    assert_true(qb_gguf_set_u32(w, "llama.attention.head_count", 2));
    assert_true(qb_gguf_set_u32(w, "llama.attention.head_count_kv", 1));
    static const struct { const char *name; int n_dims; int64_t ne[4]; } t[] = {
        {"token_embd.weight", 4, {8, 4, 1, 2}}, /* vocab 4, twice */
        {"output_norm.weight", 1, {8}},           {"blk.0.attn_norm.weight", 1, {8}},
        {"blk.0.attn_q.weight", 2, {8, 8}},       {"blk.0.attn_k.weight", 2, {8, 4}},
        {"blk.0.attn_v.weight", 2, {8, 4}},       {"blk.0.attn_output.weight", 2, {8, 8}},
        {"blk.0.ffn_norm.weight", 1, {8}},        {"blk.0.ffn_gate.weight", 2, {8, 16}},
        {"blk.0.ffn_down.weight", 2, {16, 8}},    {"blk.0.ffn_up.weight", 2, {8, 16}},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        assert_true(qb_gguf_add_tensor(w, t[i].name, QB_TYPE_F32, t[i].n_dims, t[i].ne, zeros));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    void *buf;
    size_t len;
    assert_int_equal(qb_gguf_write_memory(&ctx, w, &buf, &len), QB_OK);
    qb_gguf_writer_free(w);
    char *path = qbt_write_temp("bind4d", buf, len);
    free(buf);
    qb_model_opts opts = {.skip_tokenizer = true};
    qb_model *m = NULL;
    assert_int_equal(qb_model_open(&ctx, path, &opts, &m), QB_ERR_FORMAT);
    assert_null(m);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "token_embd.weight has shape [8, 4, 1, 2], expected [8, 4]"));
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_260k_llama2c_logits),   cmocka_unit_test(test_260k_gguf_logits), cmocka_unit_test(test_260k_no_mmap),
        cmocka_unit_test(test_260k_greedy_same_both_formats), cmocka_unit_test(test_docs_hf_logits),
        cmocka_unit_test(test_docs_gguf_f16_logits),  cmocka_unit_test(test_docs_hf_greedy),
        cmocka_unit_test(test_docs_gguf_greedy), cmocka_unit_test(test_llama2c_vocab_int_min),
        cmocka_unit_test(test_bind_rejects_4d), cmocka_unit_test(test_observer),
    };
    return cmocka_run_group_tests_name("infer", tests, NULL, NULL);
}
