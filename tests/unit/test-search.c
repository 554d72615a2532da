/* test-search.c — mixed-precision search on stories260K: the budget is respected, the plan has
 * one rule per matrix, applies (the applied model has the reported bpw), saves and reloads;
 * more budget gives a lower KLD; refinement never ends worse than the greedy mix; bad input
 * (unknown candidate, budget below the cheapest mix, empty list) and cancel. */
#include "testmodel.h"
#include <math.h>

#include "core/model/model.h"
#include "core/quant/view.h"
#include "core/eval/eval.h"
#include "core/quant/apply.h"
#include "core/eval/search.h"

static int n_matrices(const qb_model *m)
{
    int k = 0;
    for (int i = 0; i < m->n_tensors; i++) k += qb_tensor_quantizable(&m->tensors[i]);
    return k;
}

static void test_search_budget_and_plan(void **state)
{
    (void)state;
    qb_model *m = qbt_open_model_or_skip("stories260K/stories260K.bin");
    if (!m) return;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int n;
    int32_t *toks = qbt_load_tokens(m, qbt_model_path("stories260K/ppl-sample.txt"), &n);
    qb_format *c;
    int nc;
    assert_int_equal(qb_search_parse_candidates(&ctx, "int2-channel,int4-channel,int8-channel", &c, &nc), QB_OK);
    assert_int_equal(nc, 3);
    qb_search_opts o = {.bpw = 5.0, .candidates = c, .n_candidates = nc, .n_ctx = 64, .n_tokens = 256, .swaps = 4};
    qb_search_result r;
    assert_int_equal(qb_search_mixed(&ctx, m, toks, n, &o, &r), QB_OK);
    print_message("5 bpw: %.4f bpw, KLD predicted %.5f greedy %.5f final %.5f, %d swaps, %d variants\n", r.bpw,
                  r.kld_predicted, r.kld_greedy, r.kld, r.n_swaps, r.n_variants);
    assert_true(r.bpw <= 5.0 + 1e-9);
    assert_true(r.bpw > 4.0); /* the greedy uses the budget */
    assert_int_equal(r.plan.n_rules, n_matrices(m));
    assert_true(r.kld > 0 && r.kld <= r.kld_greedy);
    assert_true(fabs(qb_plan_bpw(m, &r.plan) - r.bpw) < 1e-9);
    /* the plan applies to a view (the model stays as loaded) and gives the reported size */
    qb_model *v;
    assert_int_equal(qb_model_view_new(&ctx, m, &v), QB_OK);
    assert_int_equal(qb_plan_apply_rtn(&ctx, v, &r.plan, NULL), QB_OK);
    qb_model_size sz;
    qb_quant_size_compute(v, &sz);
    assert_true(fabs(sz.bpw - r.bpw) < 1e-9);
    /* its measured KLD on the same chunks is the one the search reported */
    qb_eval_opts eo = {.n_ctx = 64, .n_chunks = 4};
    qb_kld_result k;
    assert_int_equal(qb_eval_kld(&ctx, m, v, toks, n, &eo, &k), QB_OK);
    assert_true(fabs(k.kld_mean - r.kld) <= 1e-6 * r.kld);
    qb_model_view_free(v);
    /* save / load round trip */
    char *path = qbt_write_temp("plan", "", 0);
    assert_int_equal(qb_plan_save(&ctx, &r.plan, path), QB_OK);
    qb_plan back;
    assert_int_equal(qb_plan_load(&ctx, path, &back), QB_OK);
    assert_int_equal(back.n_rules, r.plan.n_rules);
    for (int i = 0; i < back.n_rules; i++) assert_true(qb_format_equal(&back.rules[i].fmt, &r.plan.rules[i].fmt));
    qb_plan_free(&back);
    unlink(path);
    free(path);
    /* a larger budget: all-int8 fits, lower KLD */
    qb_search_result r8;
    o.bpw = 8.5;
    assert_int_equal(qb_search_mixed(&ctx, m, toks, n, &o, &r8), QB_OK);
    assert_true(r8.bpw <= 8.5 + 1e-9);
    assert_true(r8.kld < r.kld);
    qb_search_result_free(&r8);
    qb_search_result_free(&r);
    free(c);
    free(toks);
    qb_model_close(m);
}

static void stop_soon(void *ud, int done, int total)
{
    (void)total;
    if (done >= 2) *(volatile int *)ud = 1;
}

static void test_search_bad_input(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_format *c = NULL;
    int nc = 0;
    assert_int_equal(qb_search_parse_candidates(&ctx, "q4_k,foo", &c, &nc), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "foo"));
    assert_null(c);
    assert_int_equal(qb_search_parse_candidates(&ctx, "", &c, &nc), QB_ERR_ARG);
    assert_int_equal(qb_search_parse_candidates(&ctx, ",", &c, &nc), QB_ERR_ARG);
    qb_model *m = qbt_open_model_or_skip("stories260K/stories260K.bin");
    if (!m) return;
    int n;
    int32_t *toks = qbt_load_tokens(m, qbt_model_path("stories260K/ppl-sample.txt"), &n);
    assert_int_equal(qb_search_parse_candidates(&ctx, "int4-channel,int8-channel", &c, &nc), QB_OK);
    qb_search_opts o = {.bpw = 3.0, .candidates = c, .n_candidates = nc, .n_ctx = 64, .n_tokens = 256};
    qb_search_result r;
    assert_int_equal(qb_search_mixed(&ctx, m, toks, n, &o, &r), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "below the cheapest mix"));
    assert_int_equal(r.plan.n_rules, 0);
    o.bpw = 0;
    assert_int_equal(qb_search_mixed(&ctx, m, toks, n, &o, &r), QB_ERR_ARG);
    o.bpw = 6;
    o.n_candidates = 0;
    assert_int_equal(qb_search_mixed(&ctx, m, toks, n, &o, &r), QB_ERR_ARG);
    o.n_candidates = nc;
    assert_int_equal(qb_search_mixed(&ctx, m, toks, 100, &o, &r), QB_ERR_ARG); /* text too short */
    volatile int cancel = 0;
    o.cancel = &cancel;
    o.progress = stop_soon;
    o.ud = (void *)&cancel;
    assert_int_equal(qb_search_mixed(&ctx, m, toks, n, &o, &r), QB_ERR_CANCELLED);
    assert_int_equal(r.plan.n_rules, 0);
    free(c);
    free(toks);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_budget_and_plan),
        cmocka_unit_test(test_search_bad_input),
    };
    return cmocka_run_group_tests_name("search", tests, NULL, NULL);
}
