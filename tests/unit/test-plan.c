/* test-plan.c — plan files: version 1 (format only), version 2 (format, method, parameters),
 * the workbench's older "# tui methods:" snapshots, errors naming file:line (unknown method,
 * unknown or out-of-range parameter, a parameter given twice or without a method), print →
 * parse round trips, method specifications; and SHA-256 against FIPS 180-4's examples. */
#include "testutil.h"

#include "core/quant/plan.h"
#include "core/util/sha256.h"

static void parse_ok(const char *text, qb_plan *p)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (qb_plan_parse(&ctx, "t.plan", text, p) != QB_OK) fail_msg("parse: %s", qb_ctx_errmsg(&ctx));
}

/* the error message for text, which must fail with QB_ERR_* st */
static const char *parse_err(const char *text)
{
    static qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_plan p;
    qb_status st = qb_plan_parse(&ctx, "t.plan", text, &p);
    assert_int_not_equal(st, QB_OK);
    assert_int_equal(p.n_rules, 0); /* nothing left behind */
    return qb_ctx_errmsg(&ctx);
}

static void expect_err(const char *text, const char *want)
{
    const char *msg = parse_err(text);
    if (!strstr(msg, want)) fail_msg("error '%s' does not contain '%s'", msg, want);
}

static void v1_files_load(void **state)
{
    (void)state;
    qb_plan p;
    parse_ok("# quantbench plan v1\n* = q4_k\n*ffn_down* = q6_k  # comment\n\nblk.0.* = int8-channel\n", &p);
    assert_int_equal(p.n_rules, 3);
    assert_string_equal(p.rules[1].pattern, "*ffn_down*");
    assert_int_equal(p.rules[1].line, 3);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(p.rules[k].method.kind, QB_METHOD_RTN);
        assert_int_equal(p.rules[k].method.set, 0);
    }
    char name[64];
    qb_format_name(qb_plan_lookup(&p, "blk.0.ffn_down.weight"), name, sizeof name);
    assert_string_equal(name, "int8-channel");
    qb_format_name(qb_plan_lookup(&p, "blk.3.ffn_down.weight"), name, sizeof name);
    assert_string_equal(name, "q6_k");
    assert_int_equal(qb_plan_lookup_rule(&p, "blk.3.attn_q.weight"), 0);
    assert_false(qb_plan_needs_calib(&p));
    qb_plan_free(&p);
}

static void v2_methods_and_parameters(void **state)
{
    (void)state;
    qb_plan p;
    parse_ok("# quantbench plan v2\n* = q4_k\n*ffn_down* = q4_k gptq\nblk.0.* = int4-g128 awq alpha=0.5\n"
             "output.weight = q6_k GPTQ damp=0 act_order=true block=64\n",
             &p);
    assert_int_equal(p.n_rules, 4);
    assert_int_equal(p.rules[0].method.kind, QB_METHOD_RTN);
    assert_int_equal(p.rules[1].method.kind, QB_METHOD_GPTQ);
    assert_int_equal(p.rules[1].method.set, 0);
    assert_int_equal(p.rules[2].method.kind, QB_METHOD_AWQ);
    double v = -1;
    assert_true(qb_method_spec_get(&p.rules[2].method, "alpha", &v));
    assert_true(v == 0.5);
    assert_false(qb_method_spec_get(&p.rules[2].method, "grid", &v));
    assert_true(qb_method_spec_get(&p.rules[3].method, "damp", &v) && v == 0);
    assert_true(qb_method_spec_get(&p.rules[3].method, "act_order", &v) && v == 1);
    assert_true(qb_method_spec_get(&p.rules[3].method, "block", &v) && v == 64);
    assert_true(qb_plan_needs_calib(&p));
    /* printed as version 2, parsed back to the same rules */
    char *text = qb_plan_to_string(&p);
    assert_non_null(strstr(text, "# quantbench plan v2"));
    assert_non_null(strstr(text, "\n* = q4_k\n"));
    assert_non_null(strstr(text, "*ffn_down* = q4_k gptq\n"));
    assert_non_null(strstr(text, "awq alpha=0.5\n"));
    qb_plan q;
    parse_ok(text, &q);
    assert_int_equal(q.n_rules, p.n_rules);
    for (int k = 0; k < p.n_rules; k++) {
        assert_string_equal(q.rules[k].pattern, p.rules[k].pattern);
        assert_true(qb_format_equal(&q.rules[k].fmt, &p.rules[k].fmt));
        assert_true(qb_method_spec_equal(&q.rules[k].method, &p.rules[k].method));
    }
    char *again = qb_plan_to_string(&q);
    assert_string_equal(again, text);
    free(again);
    free(text);
    qb_plan_free(&q);
    qb_plan_free(&p);
}

/* The workbench's snapshots before plans carried methods: one letter per rule. */
static void tui_methods_legacy(void **state)
{
    (void)state;
    qb_plan p;
    parse_ok("# tui methods: rga\n# quantbench plan v1 (last matching rule wins)\n* = q4_k\n*ffn_down* = q4_k\n"
             "blk.0.* = int4-g128\n",
             &p);
    assert_int_equal(p.n_rules, 3);
    assert_int_equal(p.rules[0].method.kind, QB_METHOD_RTN);
    assert_int_equal(p.rules[1].method.kind, QB_METHOD_GPTQ);
    assert_int_equal(p.rules[2].method.kind, QB_METHOD_AWQ);
    qb_plan_free(&p);
    /* a tag shorter than the rules: the rest RTN */
    parse_ok("# tui methods: g\n* = q4_k\n*ffn_down* = q4_k\n", &p);
    assert_int_equal(p.rules[0].method.kind, QB_METHOD_GPTQ);
    assert_int_equal(p.rules[1].method.kind, QB_METHOD_RTN);
    qb_plan_free(&p);
}

static void errors_name_file_and_line(void **state)
{
    (void)state;
    expect_err("* = q4_k\n\n*ffn_down* = q4_k gptq dmap=0.1\n", "t.plan:3: gptq has no parameter 'dmap' (block, damp, act_order, weighted)");
    expect_err("* = q4_k sparse\n", "t.plan:1: unknown method 'sparse'");
    expect_err("# x\n* = q4_k awq alpha=1.5\n", "t.plan:2: awq: alpha=1.5 out of range [0, 1]");
    expect_err("* = q4_k gptq block=12.5\n", "t.plan:1: gptq: block=12.5 must be an integer");
    expect_err("* = q4_k gptq act_order=2\n", "t.plan:1: gptq: act_order=2 out of range");
    expect_err("* = q4_k gptq damp=0.1 damp=0.2\n", "t.plan:1: gptq: parameter damp given twice");
    expect_err("* = q4_k alpha=0.5\n", "t.plan:1: parameter 'alpha=0.5' without a method");
    expect_err("* = q4_k gptq damp=x\n", "t.plan:1: damp=x: not a number");
    expect_err("* = q4_k gptq damp\n", "t.plan:1: expected KEY=VALUE after the method, got 'damp'");
    expect_err("* = q4_k rtn alpha=1\n", "t.plan:1: rtn has no parameter 'alpha' (it takes none)");
    expect_err("* = q4_k\nblk.0.*\n", "t.plan:2: expected 'PATTERN = FORMAT");
    expect_err("* = q9_z gptq\n", "t.plan:1: ");
    expect_err(" = q4_k\n", "t.plan:1: empty tensor pattern");
}

static void method_specs(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_method_spec a, b;
    assert_int_equal(qb_method_spec_parse(&ctx, "awq grid=10 clip=false", &a), QB_OK);
    assert_int_equal(qb_method_spec_init(&ctx, "AWQ", &b), QB_OK);
    assert_false(qb_method_spec_equal(&a, &b));
    assert_int_equal(qb_method_spec_set(&ctx, &b, "clip", 0), QB_OK);
    assert_int_equal(qb_method_spec_set(&ctx, &b, "grid", 10), QB_OK);
    assert_true(qb_method_spec_equal(&a, &b)); /* order of the keys does not matter */
    char buf[128];
    qb_method_spec_format(&a, buf, sizeof buf);
    assert_string_equal(buf, "awq grid=10 clip=0");
    assert_int_equal(qb_method_spec_set(&ctx, &b, "block", 64), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "awq has no parameter 'block' (alpha, grid, clip, weighted)"));
    assert_true(qb_method_spec_needs_calib(&a));
    assert_int_equal(qb_method_spec_init(&ctx, "rtn", &a), QB_OK);
    assert_false(qb_method_spec_needs_calib(&a));
    assert_string_equal(qb_method_param_name(QB_METHOD_GPTQ, 1), "damp");
    assert_string_equal(qb_method_param_name(QB_METHOD_GPTQ, 3), "weighted");
    assert_null(qb_method_param_name(QB_METHOD_GPTQ, 4));
    assert_null(qb_method_param_name(QB_METHOD_RTN, 0));
    /* a copy is deep and equal */
    qb_plan p, q;
    qb_plan_init(&p);
    qb_format f;
    assert_int_equal(qb_format_parse(&ctx, "q4_k", &f), QB_OK);
    assert_int_equal(qb_plan_add_rule(&ctx, &p, "*", &f, &b, 7), QB_OK);
    assert_int_equal(qb_plan_copy(&ctx, &p, &q), QB_OK);
    assert_true(q.rules[0].pattern != p.rules[0].pattern);
    assert_true(qb_method_spec_equal(&q.rules[0].method, &b));
    assert_int_equal(q.rules[0].line, 7);
    qb_plan_free(&p);
    qb_plan_free(&q);
}

/* FIPS 180-4 examples (and the two-block padding boundary at 56 bytes). */
static void sha256_vectors(void **state)
{
    (void)state;
    char hex[65];
    qb_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    qb_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes */
    qb_sha256_hex(two, strlen(two), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *mil = malloc(1000000);
    memset(mil, 'a', 1000000);
    qb_sha256_hex(mil, 1000000, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(mil);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(v1_files_load),
        cmocka_unit_test(v2_methods_and_parameters),
        cmocka_unit_test(tui_methods_legacy),
        cmocka_unit_test(errors_name_file_and_line),
        cmocka_unit_test(method_specs),
        cmocka_unit_test(sha256_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
