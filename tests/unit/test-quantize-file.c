/* test-quantize-file.c — `quantize` against llama-quantize's own output: the same F16 model
 * quantized to Q4_K_M gives the fixture file's tensor types and bytes exactly; stories260K
 * with Q6_K takes llama.cpp's fallback path (Q8_0, ffn_down F16) byte for byte; plans override
 * tensors; bad types, unwritable paths and cancelled writes leave no file behind; the names
 * llama-quantize leaves alone (norms, the experts' router); on experts, the mix chosen in memory
 * is the file quantizer's. */
#include "testutil.h"
#include <sys/stat.h>

#include "core/util/gguf.h"
#include "core/quant/quantize_file.h"
#include "core/quant/ftype.h"
#include "core/quant/apply.h"
#include "core/model/model.h"
#include "core/util/gguf_write.h"

static char *temp_path(const char *tag)
{
    char *p = qbt_write_temp(tag, "", 0);
    unlink(p);
    return p;
}

/* Every tensor of got has the same type, shape and bytes as in want. */
static void assert_same_tensors(const char *got_path, const char *want_path)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *a, *b;
    assert_int_equal(qb_gguf_open(&ctx, got_path, &a), QB_OK);
    assert_int_equal(qb_gguf_open(&ctx, want_path, &b), QB_OK);
    assert_int_equal(a->n_tensors, b->n_tensors);
    for (uint64_t i = 0; i < b->n_tensors; i++) {
        const qb_gguf_tensor *w = &b->tensors[i], *g = qb_gguf_find_tensor(a, w->name);
        if (!g) fail_msg("tensor %s missing", w->name);
        if (g->type != w->type)
            fail_msg("tensor %s: type %s, llama-quantize wrote %s", w->name, qb_type_get(g->type)->name,
                     qb_type_get(w->type)->name);
        assert_int_equal(g->nbytes, w->nbytes);
        if (memcmp(g->data, w->data, w->nbytes) != 0) fail_msg("tensor %s (%s): bytes differ", w->name, qb_type_get(w->type)->name);
    }
    qb_gguf_close(a);
    qb_gguf_close(b);
}

static void test_q4_k_m_matches_llama_quantize(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    char *out = temp_path("q4km");
    qb_quantize_opts o = {.ftype = "Q4_K_M"};
    qb_quantize_result r;
    qb_status st = qb_quantize_gguf(&ctx, qbt_model_path("qb-docs-26m/qb-docs-26m-f16.gguf"), out, &o, &r);
    if (st != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    print_message("Q4_K_M: %d tensors, %d quantized, %.1f MiB, %.2f s\n", r.n_tensors, r.n_quantized,
                  r.bytes_out / 1048576.0, r.seconds);
    assert_same_tensors(out, qbt_model_path("qb-docs-26m/qb-docs-26m-q4_k_m.gguf"));
    qb_gguf *g;
    assert_int_equal(qb_gguf_open(&ctx, out, &g), QB_OK);
    assert_int_equal(qb_gguf_get_int(g, "general.file_type", -1), 15);
    assert_string_equal(qb_gguf_get_str(g, "tokenizer.ggml.pre"), "llama-bpe");
    qb_gguf_close(g);
    unlink(out);
    free(out);
}

static void test_260k_fallback_matches_llama_quantize(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    char *out = temp_path("q6k");
    qb_quantize_opts o = {.ftype = "Q6_K"};
    qb_quantize_result r;
    if (qb_quantize_gguf(&ctx, qbt_model_path("stories260K/stories260K-f32.gguf"), out, &o, &r) != QB_OK)
        fail_msg("%s", qb_ctx_errmsg(&ctx));
    assert_same_tensors(out, qbt_model_path("stories260K/stories260K-q8_0.gguf"));
    unlink(out);
    /* plain Q8_0 cannot hold the 172-wide ffn_down rows: llama.cpp refuses, so do we */
    qb_quantize_opts o2 = {.ftype = "Q8_0"};
    assert_int_equal(qb_quantize_gguf(&ctx, qbt_model_path("stories260K/stories260K-f32.gguf"), out, &o2, &r),
                     QB_ERR_UNSUPPORTED);
    assert_non_null(strstr(ctx.errmsg, "not divisible by 32, required for Q8_0"));
    struct stat sb;
    assert_int_not_equal(stat(out, &sb), 0);
    free(out);
}

static void test_pure_matches_zoo(void **state)
{
    (void)state;
    static const char *types[] = {"Q4_0", "Q5_1", "Q3_K", "IQ4_XS"};
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *zoo;
    assert_int_equal(qb_gguf_open(&ctx, qbt_model_path("qb-docs-26m/qb-docs-26m-zoo.gguf"), &zoo), QB_OK);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        char *out = temp_path("pure");
        qb_quantize_opts o = {.ftype = types[k], .pure = true};
        qb_quantize_result r;
        if (qb_quantize_gguf(&ctx, qbt_model_path("qb-docs-26m/qb-docs-26m-f16.gguf"), out, &o, &r) != QB_OK)
            fail_msg("%s", qb_ctx_errmsg(&ctx));
        qb_gguf *g;
        assert_int_equal(qb_gguf_open(&ctx, out, &g), QB_OK);
        const char *names[] = {"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.ffn_down.weight", "blk.3.ffn_up.weight"};
        for (int i = 0; i < 4; i++) {
            char zname[96];
            snprintf(zname, sizeof zname, "%s@%s", names[i], types[k]);
            const qb_gguf_tensor *want = qb_gguf_find_tensor(zoo, zname), *got = qb_gguf_find_tensor(g, names[i]);
            assert_non_null(want);
            assert_non_null(got);
            assert_int_equal(got->type, want->type);
            if (memcmp(got->data, want->data, want->nbytes)) fail_msg("%s: bytes differ from llama-quantize --pure", zname);
        }
        /* --pure: the output tensor gets the base type too */
        assert_int_equal(qb_gguf_find_tensor(g, "output.weight")->type, qb_type_from_name(types[k]));
        qb_gguf_close(g);
        unlink(out);
        free(out);
    }
    qb_gguf_close(zoo);
}

static void test_plan_overrides(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_plan plan;
    assert_int_equal(qb_plan_parse(&ctx, "test-plan", "# demo\n*ffn_down* = q8_0\nblk.0.* = q6_k\n", &plan), QB_OK);
    char *out = temp_path("plan");
    qb_quantize_opts o = {.ftype = "Q4_0", .pure = true, .plan = &plan};
    qb_quantize_result r;
    if (qb_quantize_gguf(&ctx, qbt_model_path("qb-docs-26m/qb-docs-26m-f16.gguf"), out, &o, &r) != QB_OK)
        fail_msg("%s", qb_ctx_errmsg(&ctx));
    qb_gguf *g;
    assert_int_equal(qb_gguf_open(&ctx, out, &g), QB_OK);
    assert_int_equal(qb_gguf_find_tensor(g, "blk.3.ffn_down.weight")->type, QB_TYPE_Q8_0);
    assert_int_equal(qb_gguf_find_tensor(g, "blk.0.ffn_down.weight")->type, QB_TYPE_Q6_K); /* last rule wins */
    assert_int_equal(qb_gguf_find_tensor(g, "blk.3.attn_q.weight")->type, QB_TYPE_Q4_0);
    assert_int_equal(qb_gguf_find_tensor(g, "blk.3.attn_norm.weight")->type, QB_TYPE_F32);
    assert_non_null(strstr(qb_gguf_get_str(g, "quantbench.plan"), "*ffn_down* = q8_0"));
    qb_gguf_close(g);
    unlink(out);
    /* save and load back: the same rules; an unwritable place is a clear error */
    assert_int_equal(qb_plan_save(&ctx, &plan, out), QB_OK);
    qb_plan back;
    assert_int_equal(qb_plan_load(&ctx, out, &back), QB_OK);
    char *s1 = qb_plan_to_string(&plan), *s2 = qb_plan_to_string(&back);
    assert_string_equal(s1, s2);
    free(s1);
    free(s2);
    qb_plan_free(&back);
    unlink(out);
    free(out);
    assert_int_equal(qb_plan_save(&ctx, &plan, "/nonexistent-dir/plan.txt"), QB_ERR_IO);
    assert_non_null(strstr(ctx.errmsg, "/nonexistent-dir/plan.txt"));
    qb_plan_free(&plan);
    /* plan errors name the line */
    assert_int_not_equal(qb_plan_parse(&ctx, "bad-plan", "* = q4_k\nblk.* = q9_z\n", &plan), QB_OK);
    assert_non_null(strstr(ctx.errmsg, "bad-plan:2"));
    assert_int_not_equal(qb_plan_parse(&ctx, "bad-plan", "just words\n", &plan), QB_OK);
    assert_non_null(strstr(ctx.errmsg, "bad-plan:1"));
}

static int cancel_after;
static volatile int cancel_flag;
static void cancel_progress(void *ud, int done, int total)
{
    (void)ud;
    (void)total;
    if (done >= cancel_after) cancel_flag = 1;
}

static void test_bad_outputs(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_quantize_result r;
    const char *in = qbt_model_path("stories260K/stories260K-f32.gguf");
    qb_quantize_opts o = {.ftype = "Q4_K_Z"};
    assert_int_equal(qb_quantize_gguf(&ctx, in, "/tmp/never.gguf", &o, &r), QB_ERR_ARG);
    assert_non_null(strstr(ctx.errmsg, "unknown quantization type 'Q4_K_Z'"));
    qb_quantize_opts o2 = {.ftype = "Q6_K"};
    assert_int_equal(qb_quantize_gguf(&ctx, in, "/nonexistent-dir/out.gguf", &o2, &r), QB_ERR_IO);
    assert_non_null(strstr(ctx.errmsg, "/nonexistent-dir/out.gguf"));
    /* cancelled half way: an existing target keeps its bytes */
    const char *old = "the user's previous file";
    char *out = qbt_write_temp("keep", old, strlen(old));
    cancel_after = 10;
    cancel_flag = 0;
    qb_quantize_opts o3 = {.ftype = "Q6_K", .progress = cancel_progress, .cancel = &cancel_flag};
    assert_int_equal(qb_quantize_gguf(&ctx, in, out, &o3, &r), QB_ERR_CANCELLED);
    size_t n;
    char *now = qbt_slurp(out, &n);
    assert_int_equal(n, strlen(old));
    assert_memory_equal(now, old, n);
    free(now);
    unlink(out);
    free(out);
}

/* A tiny Mixtral-style model (2 blocks of 4 experts, F32 zeros) written to a temp file. */
static char *write_moe_model(void)
{
    qb_gguf_writer *w = qb_gguf_writer_new();
    assert_non_null(w);
    static const struct { const char *k; uint32_t v; } keys[] = {
        {"llama.context_length", 64}, {"llama.embedding_length", 256}, {"llama.feed_forward_length", 256},
        {"llama.block_count", 2}, {"llama.attention.head_count", 2}, {"llama.attention.head_count_kv", 2},
        {"llama.expert_count", 4}, {"llama.expert_used_count", 2}};
    assert_true(qb_gguf_set_str(w, "general.architecture", "llama"));
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) assert_true(qb_gguf_set_u32(w, keys[i].k, keys[i].v));
    int64_t v[2] = {256, 260}, sq[2] = {256, 256}, n1[1] = {256}, router[2] = {256, 4}, ex[3] = {256, 256, 4};
    assert_true(qb_gguf_add_tensor(w, "token_embd.weight", QB_TYPE_F32, 2, v, NULL));
    char n[64];
    static const char *mats[] = {"attn_q", "attn_k", "attn_v", "attn_output"};
    static const char *exps[] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
    for (int l = 0; l < 2; l++) {
        snprintf(n, sizeof n, "blk.%d.attn_norm.weight", l);
        assert_true(qb_gguf_add_tensor(w, n, QB_TYPE_F32, 1, n1, NULL));
        snprintf(n, sizeof n, "blk.%d.ffn_norm.weight", l);
        assert_true(qb_gguf_add_tensor(w, n, QB_TYPE_F32, 1, n1, NULL));
        for (int k = 0; k < 4; k++) {
            snprintf(n, sizeof n, "blk.%d.%s.weight", l, mats[k]);
            assert_true(qb_gguf_add_tensor(w, n, QB_TYPE_F32, 2, sq, NULL));
        }
        snprintf(n, sizeof n, "blk.%d.ffn_gate_inp.weight", l);
        assert_true(qb_gguf_add_tensor(w, n, QB_TYPE_F32, 2, router, NULL));
        for (int k = 0; k < 3; k++) {
            snprintf(n, sizeof n, "blk.%d.%s.weight", l, exps[k]);
            assert_true(qb_gguf_add_tensor(w, n, QB_TYPE_F32, 3, ex, NULL));
        }
    }
    assert_true(qb_gguf_add_tensor(w, "output_norm.weight", QB_TYPE_F32, 1, n1, NULL));
    assert_true(qb_gguf_add_tensor(w, "output.weight", QB_TYPE_F32, 2, v, NULL));
    char *path = temp_path("moe");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    assert_int_equal(qb_gguf_write_file(&ctx, w, path, NULL), QB_OK);
    qb_gguf_writer_free(w);
    return path;
}

/* Experts: the Q4_K_M mix chosen in memory (qb_ftype_apply, where each expert is a tensor of its
 * own) is the file quantizer's (one 3-D tensor per block, as llama-quantize counts them): every
 * expert of block 0 keeps Q4_K for ffn_down, block 1 (the last eighth) gets Q6_K; the router
 * stays F32 in both. */
static void test_moe_mix_in_memory_matches_file(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    char *in = write_moe_model(), *out = temp_path("moe-q4km");
    qb_quantize_opts o = {.ftype = "Q4_K_M"};
    qb_quantize_result r;
    if (qb_quantize_gguf(&ctx, in, out, &o, &r) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    qb_model_opts mo = {.skip_tokenizer = true};
    qb_model *m, *q;
    if (qb_model_open(&ctx, in, &mo, &m) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    assert_int_equal(qb_model_open(&ctx, out, &mo, &q), QB_OK);
    assert_int_equal(qb_ftype_apply(&ctx, m, "Q4_K_M", false, NULL), QB_OK);
    assert_int_equal(m->n_tensors, q->n_tensors);
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *a = &m->tensors[i], *b = qb_model_find_tensor(q, a->name);
        assert_non_null(b);
        if (a->type != b->type)
            fail_msg("%s: %s in memory, %s in the file", a->name, qb_type_get(a->type)->name, qb_type_get(b->type)->name);
    }
    assert_int_equal(qb_model_find_tensor(m, "blk.0.ffn_down_exps.3.weight")->type, QB_TYPE_Q4_K);
    assert_int_equal(qb_model_find_tensor(m, "blk.1.ffn_down_exps.0.weight")->type, QB_TYPE_Q6_K);
    assert_int_equal(qb_model_find_tensor(m, "blk.1.ffn_gate_inp.weight")->type, QB_TYPE_F32);
    qb_model_close(m);
    qb_model_close(q);
    unlink(in);
    unlink(out);
    free(in);
    free(out);
}

/* Which tensors llama-quantize changes at all (llama-quant.cpp): 2-D and 3-D weights, never
 * norms, 1-D tensors or the experts' router. */
static void test_quantizable_names(void **state)
{
    (void)state;
    assert_true(qb_ftype_quantizable("blk.0.attn_q.weight", 2));
    assert_true(qb_ftype_quantizable("blk.3.ffn_down_exps.weight", 3));
    assert_true(qb_ftype_quantizable("blk.3.ffn_down_exps.7.weight", 2));
    assert_false(qb_ftype_quantizable("blk.3.ffn_gate_inp.weight", 2));
    assert_false(qb_ftype_quantizable("blk.0.attn_norm.weight", 2));
    assert_false(qb_ftype_quantizable("rope_freqs.weight", 1));
    assert_false(qb_ftype_quantizable("blk.0.attn_q.bias", 2));
}

/* The choices llama-quantize makes only with an importance matrix (llama-quant.cpp,
 * qs.has_imatrix): IQ4_NL / IQ4_XS keep the first eighth of ffn_down at their type instead of
 * Q5_K, and Q4_0 / Q5_0 move it to Q4_1 / Q5_1. 16 layers: the first eighth is layers 0-1. */
static void test_mix_with_imatrix(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    static const struct { const char *ftype; qb_type without, with; } cases[] = {
        {"IQ4_NL", QB_TYPE_Q5_K, QB_TYPE_IQ4_NL}, {"IQ4_XS", QB_TYPE_Q5_K, QB_TYPE_IQ4_XS},
        {"Q4_0", QB_TYPE_Q4_0, QB_TYPE_Q4_1},     {"Q5_0", QB_TYPE_Q5_0, QB_TYPE_Q5_1},
        {"Q4_1", QB_TYPE_Q4_1, QB_TYPE_Q4_1},     {"Q4_K_M", QB_TYPE_Q6_K, QB_TYPE_Q6_K},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const qb_ftype *f = qb_ftype_lookup(cases[c].ftype);
        assert_non_null(f);
        for (int im = 0; im < 2; im++) {
            qb_mix_state st = {.n_layers = 16, .n_gqa = 1, .n_attn_v = 16, .has_output = true, .has_imatrix = im};
            for (int l = 0; l < 16; l++) {
                char name[64];
                snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
                qb_type t;
                assert_int_equal(qb_ftype_tensor_type(&ctx, f, false, &st, name, 1024, &t), QB_OK);
                const qb_type want = l < 2 ? (im ? cases[c].with : cases[c].without) : f->base;
                if (strcmp(cases[c].ftype, "Q4_K_M") && t != want)
                    fail_msg("%s %s imatrix, layer %d: %s, want %s", cases[c].ftype, im ? "with" : "without", l,
                             qb_type_get(t)->name, qb_type_get(want)->name);
                if (!strcmp(cases[c].ftype, "Q4_K_M") && l < 2) assert_int_equal(t, QB_TYPE_Q6_K); /* unaffected */
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_260k_fallback_matches_llama_quantize), cmocka_unit_test(test_bad_outputs),
        cmocka_unit_test(test_plan_overrides), cmocka_unit_test(test_pure_matches_zoo),
        cmocka_unit_test(test_q4_k_m_matches_llama_quantize), cmocka_unit_test(test_quantizable_names),
        cmocka_unit_test(test_moe_mix_in_memory_matches_file), cmocka_unit_test(test_mix_with_imatrix),
    };
    return cmocka_run_group_tests_name("quantize-file", tests, NULL, NULL);
}
