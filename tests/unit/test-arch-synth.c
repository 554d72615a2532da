/* test-arch-synth.c — every architecture against llama.cpp's own forward pass, without
 * transformers: tiny GGUF models with random weights (the Llama 3 RoPE factors, Qwen2's biases,
 * Qwen3's q/k norms, Gemma 2's post-norms, soft-caps and alternating windows, Gemma 3's 5:1
 * layers, Phi-3's fused matrices, Mixtral's experts) and stories260K's 512-token vocabulary are
 * written here, and our perplexity on stories260K's sample text must match
 * llama-perplexity's (llama.cpp c392e50, built beside the project in ../peer/llama.cpp) within
 * 0.5% for every architecture c392e50 runs. Every architecture then runs quantized, packed, in
 * the 32-element formats of each family (ggml blocks, INT groups, NF4, MXFP4, FP8: perplexity
 * near the F32 model's), and its Q8_0 export runs in llama-perplexity within 1% of ours. Without
 * that build the comparisons are skipped; the files are still opened, run, exported and re-read
 * (logits identical after the round trip). */
#include "testutil.h"
#include "core/model/model.h"
#include "core/infer/infer.h"
#include "core/eval/eval.h"
#include "core/quant/apply.h"
#include "core/quant/format.h"
#include "core/quant/plan.h"
#include "core/util/gguf.h"
#include "core/util/gguf_write.h"

#include <math.h>
#include <sys/wait.h>

#define LLAMA_BIN "../peer/llama.cpp/build/bin"
#define DIM 64
#define HEADS 4
#define KV 2
#define HD 16
#define FF 128
#define CTX 64
#define CHUNKS 4

typedef struct {
    const char *name, *arch;
    int layers, experts, used;
    bool bias, qk_norm, post, fused, rope_freqs, llama_cpp_runs;
    float attn_cap, final_cap;
    int window;
} arch_case;

static const arch_case cases[] = {
    {"llama3", "llama", 2, 0, 0, false, false, false, false, true, true, 0, 0, 0},
    {"qwen2", "qwen2", 2, 0, 0, true, false, false, false, false, true, 0, 0, 0},
    {"qwen3", "qwen3", 2, 0, 0, false, true, false, false, false, false, 0, 0, 0},
    {"gemma2", "gemma2", 26, 0, 0, false, false, true, false, false, true, 3.0f, 5.0f, 8},
    {"gemma3", "gemma3", 6, 0, 0, false, true, true, false, false, false, 0, 0, 8},
    {"phi3", "phi3", 2, 0, 0, false, false, false, true, false, true, 0, 0, 0},
    {"mixtral", "llama", 2, 4, 2, false, false, false, false, false, true, 0, 0, 0},
    {"qwen3moe", "qwen3moe", 2, 8, 2, false, true, false, false, false, false, 0, 0, 0},
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float gauss(void)
{
    double u1 = ((double)(qbt_xorshift(&rng) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = ((double)(qbt_xorshift(&rng) >> 11) + 0.5) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
}

/* kind: 'w' matrix N(0, 1/ne0), 'n' norm 1 + N(0, 0.2), 'b' bias N(0, 0.3), 'e' embedding N(0, 0.5) */
static float *values(int64_t n, int64_t ne0, char kind)
{
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        float g = gauss();
        v[i] = kind == 'w' ? g / sqrtf((float)ne0) : kind == 'n' ? 1.0f + 0.2f * g : kind == 'b' ? 0.3f * g : 0.5f * g;
    }
    return v;
}

typedef struct {
    qb_gguf_writer *w;
    float *bufs[4096];
    int n;
} writer;

static void add(writer *W, const char *name, int n_dims, int64_t a, int64_t b, int64_t c, char kind)
{
    int64_t ne[4] = {a, b, c, 1};
    float *v = values(a * b * c, a, kind);
    W->bufs[W->n++] = v;
    assert_true(qb_gguf_add_tensor(W->w, name, QB_TYPE_F32, n_dims, ne, v));
}

static char *write_case(const arch_case *k, const qb_gguf *tok)
{
    writer W = {.w = qb_gguf_writer_new()};
    char key[128], name[128];
    const char *a = k->arch;
#define KEY(x) (snprintf(key, sizeof key, "%s.%s", a, x), key)
    assert_true(qb_gguf_set_str(W.w, "general.architecture", a));
    /* (not the case's name: llama.cpp gives models named "phi3" special-token rules) */
    assert_true(qb_gguf_set_str(W.w, "general.name", "synthetic"));
    assert_true(qb_gguf_set_u32(W.w, KEY("context_length"), 256));
    assert_true(qb_gguf_set_u32(W.w, KEY("embedding_length"), DIM));
    assert_true(qb_gguf_set_u32(W.w, KEY("block_count"), (uint32_t)k->layers));
    assert_true(qb_gguf_set_u32(W.w, KEY("feed_forward_length"), FF));
    assert_true(qb_gguf_set_u32(W.w, KEY("attention.head_count"), HEADS));
    assert_true(qb_gguf_set_u32(W.w, KEY("attention.head_count_kv"), KV));
    assert_true(qb_gguf_set_u32(W.w, KEY("attention.key_length"), HD));
    assert_true(qb_gguf_set_u32(W.w, KEY("attention.value_length"), HD));
    assert_true(qb_gguf_set_u32(W.w, KEY("rope.dimension_count"), HD));
    assert_true(qb_gguf_set_f32(W.w, KEY("rope.freq_base"), k->rope_freqs ? 500000.0f : 10000.0f));
    assert_true(qb_gguf_set_f32(W.w, KEY("attention.layer_norm_rms_epsilon"), 1e-6f));
    if (k->experts) {
        assert_true(qb_gguf_set_u32(W.w, KEY("expert_count"), (uint32_t)k->experts));
        assert_true(qb_gguf_set_u32(W.w, KEY("expert_used_count"), (uint32_t)k->used));
    }
    if (k->window || !strcmp(a, "phi3")) assert_true(qb_gguf_set_u32(W.w, KEY("attention.sliding_window"), (uint32_t)k->window));
    if (k->attn_cap > 0) assert_true(qb_gguf_set_f32(W.w, KEY("attn_logit_softcapping"), k->attn_cap));
    if (k->final_cap > 0) assert_true(qb_gguf_set_f32(W.w, KEY("final_logit_softcapping"), k->final_cap));
#undef KEY
    for (uint64_t i = 0; i < tok->n_kv; i++)
        if (!strncmp(tok->kv[i].key, "tokenizer.", 10)) assert_true(qb_gguf_copy_kv(W.w, &tok->kv[i]));
    int vocab = (int)qb_gguf_find(tok, "tokenizer.ggml.tokens")->arr_n;
    add(&W, "token_embd.weight", 2, DIM, vocab, 1, 'e');
    add(&W, "output_norm.weight", 1, DIM, 1, 1, 'n');
    if (strncmp(a, "gemma", 5) != 0) add(&W, "output.weight", 2, DIM, vocab, 1, 'w'); /* Gemma: always tied */
    if (k->rope_freqs) { /* any positive divisors: both sides must apply the same ones */
        int64_t ne[4] = {HD / 2, 1, 1, 1};
        float *f = malloc(HD / 2 * sizeof *f);
        for (int i = 0; i < HD / 2; i++) f[i] = 1.0f + (float)i * 0.9f;
        W.bufs[W.n++] = f;
        assert_true(qb_gguf_add_tensor(W.w, "rope_freqs.weight", QB_TYPE_F32, 1, ne, f));
    }
    for (int l = 0; l < k->layers; l++) {
#define T(suffix, nd, x, y, z, kind) (snprintf(name, sizeof name, "blk.%d.%s", l, suffix), add(&W, name, nd, x, y, z, kind))
        T("attn_norm.weight", 1, DIM, 1, 1, 'n');
        if (k->fused) T("attn_qkv.weight", 2, DIM, HEADS * HD + 2 * KV * HD, 1, 'w');
        else {
            T("attn_q.weight", 2, DIM, HEADS * HD, 1, 'w');
            T("attn_k.weight", 2, DIM, KV * HD, 1, 'w');
            T("attn_v.weight", 2, DIM, KV * HD, 1, 'w');
        }
        if (k->bias) {
            T("attn_q.bias", 1, HEADS * HD, 1, 1, 'b');
            T("attn_k.bias", 1, KV * HD, 1, 1, 'b');
            T("attn_v.bias", 1, KV * HD, 1, 1, 'b');
        }
        if (k->qk_norm) {
            T("attn_q_norm.weight", 1, HD, 1, 1, 'n');
            T("attn_k_norm.weight", 1, HD, 1, 1, 'n');
        }
        T("attn_output.weight", 2, HEADS * HD, DIM, 1, 'w');
        if (k->post) {
            T("post_attention_norm.weight", 1, DIM, 1, 1, 'n');
            T("post_ffw_norm.weight", 1, DIM, 1, 1, 'n');
        }
        T("ffn_norm.weight", 1, DIM, 1, 1, 'n');
        if (k->experts) {
            T("ffn_gate_inp.weight", 2, DIM, k->experts, 1, 'w');
            T("ffn_gate_exps.weight", 3, DIM, FF, k->experts, 'w');
            T("ffn_up_exps.weight", 3, DIM, FF, k->experts, 'w');
            T("ffn_down_exps.weight", 3, FF, DIM, k->experts, 'w');
        } else if (k->fused) {
            T("ffn_up.weight", 2, DIM, 2 * FF, 1, 'w');
            T("ffn_down.weight", 2, FF, DIM, 1, 'w');
        } else {
            T("ffn_gate.weight", 2, DIM, FF, 1, 'w');
            T("ffn_up.weight", 2, DIM, FF, 1, 'w');
            T("ffn_down.weight", 2, FF, DIM, 1, 'w');
        }
#undef T
    }
    void *buf;
    size_t len;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    assert_int_equal(qb_gguf_write_memory(&ctx, W.w, &buf, &len), QB_OK);
    qb_gguf_writer_free(W.w);
    for (int i = 0; i < W.n; i++) free(W.bufs[i]);
    char *path = qbt_write_temp(k->name, buf, len);
    free(buf);
    return path;
}

static double our_ppl(const qb_model *m, const char *text)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *toks;
    int n;
    if (qb_eval_load_text(&ctx, m, text, &toks, &n) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    qb_eval_opts o = {.n_ctx = CTX, .n_chunks = CHUNKS};
    qb_ppl_result r;
    if (qb_eval_perplexity(&ctx, m, toks, n, &o, &r) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    free(toks);
    return r.ppl;
}

/* llama-perplexity's "Final estimate" for path, or -1 when it failed. */
static double llama_ppl(const char *path, const char *text)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "LD_LIBRARY_PATH=" LLAMA_BIN " " LLAMA_BIN "/llama-perplexity -m '%s' -f '%s' -c %d -b %d --chunks %d "
             "-t 2 2>&1",
             path, text, CTX, CTX, CHUNKS);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[4096];
    double v = -1;
    while (fgets(line, sizeof line, p)) {
        const char *s = strstr(line, "Final estimate: PPL = ");
        if (s) v = atof(s + 22);
    }
    pclose(p);
    return v;
}

/* Logits of the first 16 tokens of text (a fixed id sequence) from m. */
static void logits_of(const qb_model *m, float *out)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t ids[16];
    for (int i = 0; i < 16; i++) ids[i] = (int32_t)(1 + (i * 37) % (m->cfg.vocab_size - 1));
    qb_infer *s;
    assert_int_equal(qb_infer_new(&ctx, m, 64, 0, &s), QB_OK);
    assert_int_equal(qb_infer_eval(&ctx, s, ids, 16, 0, out, 16), QB_OK);
    qb_infer_free(s);
}

/* Every quantizable tensor of m at fmt (by name), RTN; each block matrix must then be packed
 * (not F32) and the cross-entropy (log-perplexity) stay within tol of base's, relative (these
 * random models' logits are sharp: a deep Gemma's perplexity is 1e3–1e10). Returns that
 * perplexity. */
static double quantized_ppl(const arch_case *k, qb_model *m, const char *fmt, const char *text, double base, double tol)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_plan p;
    qb_format f;
    qb_plan_init(&p);
    assert_int_equal(qb_format_parse(&ctx, fmt, &f), QB_OK);
    assert_int_equal(qb_plan_add(&ctx, &p, "*", &f), QB_OK);
    if (qb_plan_apply_rtn(&ctx, m, &p, NULL) != QB_OK) fail_msg("%s at %s: %s", k->name, fmt, qb_ctx_errmsg(&ctx));
    qb_plan_free(&p);
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i];
        if (strncmp(t->name, "blk.", 4) == 0 && qb_tensor_quantizable(t) && t->type == QB_TYPE_F32)
            fail_msg("%s at %s: %s still F32", k->name, fmt, t->name);
    }
    double q = our_ppl(m, text);
    print_message("%s at %-10s PPL %.4f (F32 %.4f)\n", k->name, fmt, q, base);
    const double rel = fabs(log(q) - log(base)) / log(base);
    if (!(isfinite(q) && rel <= tol))
        fail_msg("%s at %s: PPL %.4f, F32 %.4f (cross-entropy %.2f%% apart, more than %.1f%%)", k->name, fmt, q, base,
                 rel * 100, tol * 100);
    return q;
}

static void restore_all(qb_model *m)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    for (int i = 0; i < m->n_tensors; i++) assert_int_equal(qb_tensor_restore(&ctx, &m->tensors[i]), QB_OK);
}

static void run_case(const arch_case *k)
{
    const char *tokpath = qbt_model_path("stories260K/stories260K-f32.gguf");
    const char *text = qbt_model_path("stories260K/ppl-sample.txt");
    qbt_need(tokpath);
    qbt_need(text);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *tok;
    assert_int_equal(qb_gguf_open(&ctx, tokpath, &tok), QB_OK);
    rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)strlen(k->name) * 0x100000001b3ull;
    char *path = write_case(k, tok);
    qb_gguf_close(tok);
    qb_model *m = NULL;
    if (qb_model_open(&ctx, path, NULL, &m) != QB_OK) fail_msg("%s: %s", k->name, qb_ctx_errmsg(&ctx));
    double ours = our_ppl(m, text);
    assert_true(isfinite(ours) && ours > 1);

    /* quantized, packed: 8-bit formats close to F32 in cross-entropy, 4-bit ones near it */
    static const struct {
        const char *fmt;
        double tol;
    } fmts[] = {{"q8_0", 0.005}, {"int8-channel", 0.005}, {"fp8-e4m3", 0.02}, {"q5_1", 0.02}, {"q4_0", 0.03},
                {"iq4_nl", 0.03}, {"int4-g32", 0.03}, {"nf4", 0.03}, {"mxfp4", 0.05}};
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        quantized_ppl(k, m, fmts[i].fmt, text, ours, fmts[i].tol);
        restore_all(m);
    }
    assert_true(fabs(our_ppl(m, text) - ours) == 0); /* restored exactly */

    /* our export reads back to the same logits */
    char out[1100];
    snprintf(out, sizeof out, "%s-export.gguf", path);
    if (qb_export_gguf(&ctx, m, out, NULL, NULL) != QB_OK) fail_msg("%s: export: %s", k->name, qb_ctx_errmsg(&ctx));
    qb_model *e = NULL;
    if (qb_model_open(&ctx, out, NULL, &e) != QB_OK) fail_msg("%s: reopen: %s", k->name, qb_ctx_errmsg(&ctx));
    size_t nl = (size_t)16 * m->cfg.vocab_size;
    float *a = malloc(nl * sizeof *a), *b = malloc(nl * sizeof *b);
    logits_of(m, a);
    logits_of(e, b);
    assert_memory_equal(a, b, nl * sizeof *a);
    free(a);
    free(b);
    qb_model_close(e);
    unlink(out);

    char bin[256];
    snprintf(bin, sizeof bin, "%s/llama-perplexity", LLAMA_BIN);
    if (!k->llama_cpp_runs) {
        print_message("%s: PPL %.4f (llama.cpp c392e50 has no %s)\n", k->name, ours, k->arch);
    } else if (access(bin, X_OK) != 0) {
        qb_model_close(m);
        unlink(path);
        free(path);
        skip(); /* the comparison needs llama.cpp beside the project */
    } else {
        double theirs = llama_ppl(path, text);
        print_message("%s: PPL %.4f, llama-perplexity %.4f\n", k->name, ours, theirs);
        if (!(theirs > 0)) fail_msg("%s: llama-perplexity failed on %s", k->name, path);
        if (!(fabs(ours - theirs) / theirs <= 0.005))
            fail_msg("%s: PPL %.4f vs llama-perplexity %.4f (more than 0.5%% apart)", k->name, ours, theirs);
        /* our Q8_0 export in llama.cpp: its perplexity within 1% of ours on the same plan */
        double q8 = quantized_ppl(k, m, "q8_0", text, ours, 0.005);
        if (qb_export_gguf(&ctx, m, out, NULL, NULL) != QB_OK) fail_msg("%s: export q8_0: %s", k->name, qb_ctx_errmsg(&ctx));
        double theirs8 = llama_ppl(out, text);
        print_message("%s: Q8_0 export: PPL %.4f, llama-perplexity %.4f\n", k->name, q8, theirs8);
        unlink(out);
        if (!(theirs8 > 0 && fabs(q8 - theirs8) / theirs8 <= 0.01))
            fail_msg("%s: Q8_0 export: PPL %.4f vs llama-perplexity %.4f (more than 1%% apart)", k->name, q8, theirs8);
    }
    qb_model_close(m);
    unlink(path);
    free(path);
}

#define CASE(i)                                                                                                        \
    static void test_##i(void **state)                                                                                 \
    {                                                                                                                  \
        (void)state;                                                                                                   \
        run_case(&cases[i]);                                                                                           \
    }
CASE(0)
CASE(1)
CASE(2)
CASE(3)
CASE(4)
CASE(5)
CASE(6)
CASE(7)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_0), cmocka_unit_test(test_1), cmocka_unit_test(test_2), cmocka_unit_test(test_3),
        cmocka_unit_test(test_4), cmocka_unit_test(test_5), cmocka_unit_test(test_6), cmocka_unit_test(test_7),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
