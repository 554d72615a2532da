/* test-quantize-tq-iq3.c — whole-model quantization to the ternary and 3-bit i-quant file
 * types against llama-quantize (llama.cpp c392e50, run from ../peer/llama.cpp/build/bin or
 * $QB_LLAMA_BIN) on qb-docs-26m F16: every tensor of TQ1_0, TQ2_0, IQ3_XS, IQ3_S, IQ3_M (the
 * mixes of llama_tensor_get_type without an importance matrix) and TQ1_0 / IQ3_XXS --pure has
 * llama-quantize's type and bytes, and the llama.cpp metadata is the same (the files differ
 * only by our quantbench.* recipe keys). IQ3_XXS's mix needs IQ2_S for attn_q / attn_k: where
 * this build does not know that type the quantization must fail with one message naming it.
 * stories260K (rows of 64 and 172) takes llama-quantize's fallbacks for rows not of 256.
 * llama-quantize absent: the comparisons are skipped, saying so. */
#include "testutil.h"

#include "core/util/gguf.h"
#include "core/quant/quantize_file.h"
#include "core/qb.h"

#include <sys/stat.h>

static const char *llama_bin(void)
{
    const char *d = getenv("QB_LLAMA_BIN");
    return d && *d ? d : "../peer/llama.cpp/build/bin";
}

static char *temp_path(const char *tag)
{
    char *p = qbt_write_temp(tag, "", 0);
    unlink(p);
    return p;
}

/* llama-quantize IN OUT TYPE [--pure]; false when the binary is missing or fails. */
static bool llama_quantize(const char *in, const char *out, const char *type, bool pure)
{
    char exe[1024], cmd[4096];
    snprintf(exe, sizeof exe, "%s/llama-quantize", llama_bin());
    if (access(exe, X_OK) != 0) return false;
    snprintf(cmd, sizeof cmd, "LD_LIBRARY_PATH='%s' '%s' %s '%s' '%s' %s 2 >/dev/null 2>&1", llama_bin(), exe,
             pure ? "--pure" : "", in, out, type);
    return system(cmd) == 0;
}

/* Every tensor of got has want's type, shape and bytes; every key of want that is not
 * llama.cpp's run-time note has the same value in got. */
static void assert_same_file(const char *got_path, const char *want_path, const char *what)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *a, *b;
    assert_int_equal(qb_gguf_open(&ctx, got_path, &a), QB_OK);
    assert_int_equal(qb_gguf_open(&ctx, want_path, &b), QB_OK);
    assert_int_equal(a->n_tensors, b->n_tensors);
    int quantized = 0;
    for (uint64_t i = 0; i < b->n_tensors; i++) {
        const qb_gguf_tensor *w = &b->tensors[i], *g = qb_gguf_find_tensor(a, w->name);
        if (!g) fail_msg("%s: tensor %s missing", what, w->name);
        if (g->type != w->type)
            fail_msg("%s: tensor %s is %s, llama-quantize wrote %s", what, w->name, qb_type_get(g->type)->name,
                     qb_type_get(w->type)->name);
        for (int d = 0; d < 4; d++) assert_int_equal(g->ne[d], w->ne[d]);
        assert_int_equal(g->nbytes, w->nbytes);
        if (memcmp(g->data, w->data, w->nbytes) != 0)
            fail_msg("%s: tensor %s (%s): bytes differ", what, w->name, qb_type_get(w->type)->name);
        quantized += qb_type_get(w->type)->blck > 1;
    }
    assert_int_equal(qb_gguf_get_int(a, "general.file_type", -1), qb_gguf_get_int(b, "general.file_type", -2));
    assert_int_equal(qb_gguf_get_int(a, "general.quantization_version", -1),
                     qb_gguf_get_int(b, "general.quantization_version", -2));
    print_message("%s: %llu tensors (%d quantized) as llama-quantize wrote them\n", what,
                  (unsigned long long)b->n_tensors, quantized);
    qb_gguf_close(a);
    qb_gguf_close(b);
}

static void compare_model(const char *f16, const char *type, bool pure)
{
    qbt_need(f16);
    char *want = temp_path("llq"), *got = temp_path("qbq");
    if (!llama_quantize(f16, want, type, pure)) {
        print_message("skip: llama-quantize (%s) not found or failed; %s not compared\n", llama_bin(), type);
        free(want);
        free(got);
        skip();
    }
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_quantize_opts o = {.ftype = type, .pure = pure};
    qb_quantize_result r;
    if (qb_quantize_gguf(&ctx, f16, got, &o, &r) != QB_OK) fail_msg("%s: %s", type, qb_ctx_errmsg(&ctx));
    char what[64];
    snprintf(what, sizeof what, "%s%s%s", strstr(f16, "stories") ? "stories260K " : "", type, pure ? " --pure" : "");
    print_message("%s: ours %.2f s\n", what, r.seconds);
    assert_same_file(got, want, what);
    unlink(want);
    unlink(got);
    free(want);
    free(got);
}

static void compare_type(const char *type, bool pure)
{
    compare_model(qbt_model_path("qb-docs-26m/qb-docs-26m-f16.gguf"), type, pure);
}

/* stories260K: rows of 64 and 172 fit no 256-block: llama-quantize's fallbacks (TQ -> Q4_0,
 * IQ3 -> IQ4_NL, 172 wide -> F16) for every tensor, the IQ3_XS mix's IQ3_XXS choices too. */
static void test_fallbacks(void **state)
{
    (void)state;
    compare_model(qbt_model_path("stories260K/stories260K-f32.gguf"), "TQ2_0", false);
    compare_model(qbt_model_path("stories260K/stories260K-f32.gguf"), "IQ3_XS", false);
}

static void test_tq1_0(void **state) { (void)state, compare_type("TQ1_0", false); }
static void test_tq2_0(void **state) { (void)state, compare_type("TQ2_0", false); }
static void test_tq1_0_pure(void **state) { (void)state, compare_type("TQ1_0", true); }
static void test_iq3_s(void **state) { (void)state, compare_type("IQ3_S", false); }
static void test_iq3_xs(void **state) { (void)state, compare_type("IQ3_XS", false); }
static void test_iq3_m(void **state) { (void)state, compare_type("IQ3_M", false); }

/* IQ3_XXS --pure: every weight IQ3_XXS. The mix puts attn_q / attn_k in IQ2_S, which
 * llama-quantize writes only with importance ("Missing importance matrix ... very low-bit"):
 * without one it is refused the same way, naming the tensor, and nothing is written (the mix
 * with --imatrix against llama-quantize: tests/cli/test-quantize-tq-iq3-imatrix.sh). */
static void test_iq3_xxs(void **state)
{
    (void)state;
    compare_type("IQ3_XXS", true);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    char *got = temp_path("qbx");
    qb_quantize_opts o = {.ftype = "IQ3_XXS"};
    qb_quantize_result r;
    assert_int_equal(qb_quantize_gguf(&ctx, qbt_model_path("qb-docs-26m/qb-docs-26m-f16.gguf"), got, &o, &r),
                     QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "attn_"));
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "IQ2_S needs an importance matrix"));
    struct stat sb;
    assert_int_not_equal(stat(got, &sb), 0); /* nothing written */
    free(got);
    print_message("IQ3_XXS mix without importance: refused (%s)\n", qb_ctx_errmsg(&ctx));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fallbacks), cmocka_unit_test(test_tq1_0),  cmocka_unit_test(test_tq2_0),      cmocka_unit_test(test_tq1_0_pure),
        cmocka_unit_test(test_iq3_s),  cmocka_unit_test(test_iq3_xs),     cmocka_unit_test(test_iq3_m),
        cmocka_unit_test(test_iq3_xxs),
    };
    return cmocka_run_group_tests_name("quantize-tq-iq3", tests, NULL, NULL) ? 1 : 0;
}
