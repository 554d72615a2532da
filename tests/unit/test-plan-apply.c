/* test-plan-apply.c — qb_plan_apply on stories260K: a plan mixing RTN, GPTQ and AWQ rules
 * gives each tensor what its own method gives it; a rule failing midway (after other groups
 * were computed) and a cancel leave the model byte for byte as it was; a rule matching no
 * tensor is an error unless allowed; with an apply state only changed targets are redone and
 * the result equals a fresh apply; the recipe (plan with methods, calibration text size and
 * sha256, version) survives a GGUF export and read-back. */
#include "testmodel.h"

#include "core/method/plan_apply.h"
#include "core/method/fold.h"
#include "core/tokenizer/tokenizer.h"
#include "core/util/sha256.h"

typedef struct {
    qb_model *m;
    qb_calib *cal;
} fixture;

static int setup(void **state)
{
    static fixture F;
    *state = NULL;
    const char *p = qbt_model_path("stories260K/stories260K.bin");
    if (access(p, R_OK) != 0) return 0;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (qb_model_open(&ctx, p, NULL, &F.m) != QB_OK) return -1;
    qb_calib_opts o = {.n_ctx = 64, .hessian = true};
    if (qb_calib_run_file(&ctx, F.m, qbt_model_path("stories260K/ppl-sample.txt"), &o, &F.cal) != QB_OK) return -1;
    *state = &F;
    return 0;
}

static int teardown(void **state)
{
    fixture *F = *state;
    if (!F) return 0;
    qb_calib_free(F->cal);
    qb_model_close(F->m);
    return 0;
}

#define NEED_MODEL(F)                                                                                                  \
    if (!(F)) {                                                                                                        \
        print_message("stories260K missing: skipped\n");                                                              \
        skip();                                                                                                        \
        return;                                                                                                        \
    }

typedef struct {
    uint8_t **bytes;
    size_t *n;
    int count;
} snap;

static snap take(const qb_model *m)
{
    snap s = {calloc((size_t)m->n_tensors, sizeof(uint8_t *)), calloc((size_t)m->n_tensors, sizeof(size_t)),
              m->n_tensors};
    for (int i = 0; i < m->n_tensors; i++) {
        s.n[i] = m->tensors[i].nbytes;
        s.bytes[i] = malloc(s.n[i]);
        memcpy(s.bytes[i], m->tensors[i].data, s.n[i]);
    }
    return s;
}

static bool same(const qb_model *m, const snap *s)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].nbytes != s->n[i] || memcmp(m->tensors[i].data, s->bytes[i], s->n[i])) return false;
    return true;
}

static void drop(snap *s)
{
    for (int i = 0; i < s->count; i++) free(s->bytes[i]);
    free(s->bytes);
    free(s->n);
}

static void parse(const char *text, qb_plan *p)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (qb_plan_parse(&ctx, "plan", text, p) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
}

/* every tensor back to its original, checked */
static void reset(qb_model *m)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    assert_int_equal(qb_fold_reset(&ctx, m), QB_OK);
}

static const char *MIXED = "*attn_q* = q8_0\n*attn_k* = q4_0 gptq\n*attn_v* = q4_0 gptq act_order=1\n"
                           "blk.1.* = int4-channel awq alpha=0.5\n";

/* Each group gets what its method alone gives it: GPTQ tensors equal qb_method_apply's,
 * RTN ones qb_tensor_quantize's. */
static void mixed_plan_matches_single_methods(void **state)
{
    fixture *F = *state;
    NEED_MODEL(F);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_plan p;
    parse(MIXED, &p);
    qb_plan_apply_opts o = {0};
    assert_int_equal(qb_plan_apply(&ctx, F->m, &p, F->cal, &o), QB_OK);
    assert_int_equal(o.n_redone, 4 + 4 + 4 + 7); /* q (RTN), k, v (GPTQ) of 4 layers; blk.1's 7 matrices (AWQ) */
    snap mixed = take(F->m);
    reset(F->m);
    /* GPTQ alone on blk.0.attn_k (a tensor outside blk.1, which AWQ rescales) */
    qb_plan g;
    parse("blk.0.attn_k.weight = q4_0\n", &g);
    qb_method meth;
    assert_int_equal(qb_method_parse(&ctx, "gptq", &meth), QB_OK);
    assert_int_equal(qb_method_apply(&ctx, F->m, &g, &meth, F->cal, NULL), QB_OK);
    const qb_tensor *t = qb_model_find_tensor(F->m, "blk.0.attn_k.weight");
    int ti = (int)(t - F->m->tensors);
    assert_int_equal(t->nbytes, mixed.n[ti]);
    assert_memory_equal(t->data, mixed.bytes[ti], t->nbytes);
    reset(F->m);
    /* RTN q8_0 of blk.3.attn_q */
    qb_tensor *q = qb_model_find_tensor(F->m, "blk.3.attn_q.weight");
    qb_format f;
    assert_int_equal(qb_format_parse(&ctx, "q8_0", &f), QB_OK);
    assert_int_equal(qb_tensor_quantize(&ctx, q, &f, NULL), QB_OK);
    int qi = (int)(q - F->m->tensors);
    assert_memory_equal(q->data, mixed.bytes[qi], q->nbytes);
    reset(F->m);
    drop(&mixed);
    qb_plan_free(&g);
    qb_plan_free(&p);
}

/* A rule failing after the RTN and GPTQ groups were computed (AWQ's format cannot take
 * ffn_down's rows of 172): the model stays exactly as it was, the message names the tensor. */
static void failing_rule_midway_changes_nothing(void **state)
{
    fixture *F = *state;
    NEED_MODEL(F);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_plan first, p;
    parse("* = q8_0\n*ffn_down* = f16\n", &first); /* something applied before */
    assert_int_equal(qb_plan_apply(&ctx, F->m, &first, NULL, NULL), QB_OK);
    snap before = take(F->m);
    parse("*attn_q* = q4_0\n*attn_k* = q4_0 gptq\nblk.2.ffn_down.weight = q4_0 awq\n", &p);
    assert_int_equal(qb_plan_apply(&ctx, F->m, &p, F->cal, NULL), QB_ERR_UNSUPPORTED);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "blk.2.ffn_down.weight"));
    assert_true(same(F->m, &before));
    /* a method that needs calibration, without one: refused before anything is computed */
    assert_int_equal(qb_plan_apply(&ctx, F->m, &p, NULL, NULL), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "plan rule 2 '*attn_k*' uses gptq"));
    assert_true(same(F->m, &before));
    drop(&before);
    reset(F->m);
    qb_plan_free(&first);
    qb_plan_free(&p);
}

typedef struct {
    volatile int cancel;
    int after, seen;
} cancel_at;

static void cancel_progress(void *ud, int done, int total)
{
    cancel_at *c = ud;
    (void)total;
    c->seen = done;
    if (done >= c->after) c->cancel = 1;
}

/* Cancelled midway (inside the GPTQ group, after the RTN group): nothing changes. */
static void cancel_changes_nothing(void **state)
{
    fixture *F = *state;
    NEED_MODEL(F);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    snap before = take(F->m);
    qb_plan p;
    parse(MIXED, &p);
    cancel_at c = {0, 8, 0};
    qb_plan_apply_opts o = {.progress = cancel_progress, .ud = &c, .cancel = &c.cancel};
    assert_int_equal(qb_plan_apply(&ctx, F->m, &p, F->cal, &o), QB_ERR_CANCELLED);
    assert_true(c.seen >= 8);
    assert_true(same(F->m, &before));
    assert_int_equal(o.n_redone, 0);
    drop(&before);
    qb_plan_free(&p);
}

static void unmatched_rule_is_an_error(void **state)
{
    fixture *F = *state;
    NEED_MODEL(F);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    snap before = take(F->m);
    qb_plan p;
    parse("* = q8_0\n*fnn_down* = f16\n*attn_norm* = q8_0\n", &p);
    assert_int_equal(qb_plan_apply(&ctx, F->m, &p, NULL, NULL), QB_ERR_ARG);
    assert_string_equal(qb_ctx_errmsg(&ctx), "plan rule 2 '*fnn_down*' matches no tensor");
    assert_true(same(F->m, &before));
    char msg[200];
    assert_int_equal(qb_plan_unmatched(&p, F->m, 2, msg, sizeof msg), 2);
    assert_string_equal(msg, "plan rule 3 '*attn_norm*' matches only tensors a plan does not change (norms)");
    qb_plan_apply_opts o = {.allow_unmatched = true};
    assert_int_equal(qb_plan_apply(&ctx, F->m, &p, NULL, &o), QB_ERR_UNSUPPORTED); /* ffn_down 172 cannot be q8_0 */
    qb_plan_free(&p);
    parse("* = q8_0\n*ffn_down* = f16\n*fnn_down* = f16\n", &p);
    assert_int_equal(qb_plan_apply(&ctx, F->m, &p, NULL, &o), QB_OK);
    reset(F->m);
    drop(&before);
    qb_plan_free(&p);
}

/* The workbench's use: with a state, applying the same plan again redoes nothing, a new rule
 * redoes its tensors, dropping it (undo) brings them back; the result equals a fresh apply. */
static void state_redoes_only_changes(void **state)
{
    fixture *F = *state;
    NEED_MODEL(F);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_apply_state *st;
    assert_int_equal(qb_apply_state_new(&ctx, F->m, &st), QB_OK);
    qb_plan a, b;
    parse("*attn* = q8_0\n*attn_k* = q4_0 gptq\n", &a);
    parse("*attn* = q8_0\n*attn_k* = q4_0 gptq\nblk.0.ffn_up.weight = q4_0 gptq damp=0.05\n", &b);
    qb_plan_apply_opts o = {.state = st};
    assert_int_equal(qb_plan_apply(&ctx, F->m, &a, F->cal, &o), QB_OK);
    assert_int_equal(o.n_redone, 20);
    snap at_a = take(F->m);
    assert_int_equal(qb_plan_apply(&ctx, F->m, &a, F->cal, &o), QB_OK);
    assert_int_equal(o.n_redone, 0);
    assert_int_equal(qb_plan_apply(&ctx, F->m, &b, F->cal, &o), QB_OK);
    assert_int_equal(o.n_redone, 1);
    snap at_b = take(F->m);
    assert_int_equal(qb_plan_apply(&ctx, F->m, &a, F->cal, &o), QB_OK); /* undo */
    assert_int_equal(o.n_redone, 1);
    assert_true(same(F->m, &at_a));
    /* AWQ in the plan: later changes rebuild everything, and still match a fresh apply */
    qb_plan c;
    parse("*attn* = q8_0\n*attn_k* = q4_0 gptq\nblk.1.* = int4-channel awq\n", &c);
    assert_int_equal(qb_plan_apply(&ctx, F->m, &c, F->cal, &o), QB_OK);
    assert_true(qb_apply_state_awq(st));
    assert_int_equal(qb_plan_apply(&ctx, F->m, &b, F->cal, &o), QB_OK);
    assert_false(qb_apply_state_awq(st));
    assert_true(same(F->m, &at_b));
    reset(F->m);
    qb_plan_apply_opts fresh = {0};
    assert_int_equal(qb_plan_apply(&ctx, F->m, &b, F->cal, &fresh), QB_OK);
    assert_true(same(F->m, &at_b));
    reset(F->m);
    drop(&at_a);
    drop(&at_b);
    qb_plan_free(&a);
    qb_plan_free(&b);
    qb_plan_free(&c);
    qb_apply_state_free(st);
}

/* Export records the recipe; reading it back gives the same plan, the text's size and sha256
 * (computed here independently), the windows, the version. */
static void recipe_gguf_round_trip(void **state)
{
    fixture *F = *state;
    NEED_MODEL(F);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_plan p;
    parse("* = q8_0\n*ffn_down* = f16\n*attn_k* = q4_0 gptq damp=0.02\nblk.1.* = int4-channel awq alpha=0.5\n", &p);
    assert_int_equal(qb_plan_apply(&ctx, F->m, &p, F->cal, NULL), QB_OK);
    char *path = qbt_write_temp("recipe", "", 0);
    qb_recipe r;
    qb_recipe_from(&r, &p, F->cal);
    assert_int_equal(qb_export_gguf_recipe(&ctx, F->m, path, &r, NULL), QB_OK);
    reset(F->m);
    qb_gguf *g;
    assert_int_equal(qb_gguf_open(&ctx, path, &g), QB_OK);
    qb_plan back;
    qb_recipe_info info;
    assert_int_equal(qb_recipe_get(&ctx, g, path, &back, &info), QB_OK);
    assert_int_equal(back.n_rules, p.n_rules);
    for (int k = 0; k < p.n_rules; k++) {
        assert_string_equal(back.rules[k].pattern, p.rules[k].pattern);
        assert_true(qb_format_equal(&back.rules[k].fmt, &p.rules[k].fmt));
        assert_true(qb_method_spec_equal(&back.rules[k].method, &p.rules[k].method));
    }
    size_t len;
    char *text = qbt_slurp(qbt_model_path("stories260K/ppl-sample.txt"), &len);
    char hex[65];
    qb_sha256_hex(text, len, hex);
    assert_string_equal(info.calib_sha256, hex);
    assert_int_equal(info.calib_bytes, len);
    assert_non_null(strstr(info.calib_file, "ppl-sample.txt"));
    assert_int_equal(info.calib_windows, F->cal->n_windows);
    assert_int_equal(info.calib_ctx, 64);
    assert_string_equal(info.version, QB_VERSION);
    assert_string_equal(info.type, "");
    free(text);
    qb_plan_free(&back);
    qb_gguf_close(g);
    unlink(path);
    free(path);
    qb_plan_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mixed_plan_matches_single_methods),
        cmocka_unit_test(failing_rule_midway_changes_nothing),
        cmocka_unit_test(cancel_changes_nothing),
        cmocka_unit_test(unmatched_rule_is_an_error),
        cmocka_unit_test(state_redoes_only_changes),
        cmocka_unit_test(recipe_gguf_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
