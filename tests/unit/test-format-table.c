/* test-format-table.c — the format table itself (format_traits.h): every row is complete and
 * consistent (names round-trip, every format its ladders offer is valid and quantizes and
 * dequantizes a row), the families keep the workbench's order, and stepping up and down a
 * ladder gives the neighbouring formats. A new row that forgets a hook or names a format it
 * cannot parse back fails here. */
#include "testutil.h"
#include <math.h>

#include "core/qb.h"
#include "core/quant/format_traits.h"

static void test_rows_complete(void **state)
{
    (void)state;
    for (int k = 0; k < QB_FMT_KIND_COUNT; k++) {
        const qb_format_traits *tr = qb_format_traits_get(k);
        assert_non_null(tr);
        if (!tr->kind || !tr->parse || !tr->name || !tr->equal || !tr->block || !tr->row_bytes || !tr->bits ||
            !tr->quant_row || !tr->dequant_row || !tr->sweep)
            fail_msg("row %d (%s): a required hook is missing", k, tr->kind ? tr->kind : "?");
        for (int j = 0; j < k; j++)
            if (!strcmp(qb_format_traits_get(j)->kind, tr->kind)) fail_msg("kind name '%s' used twice", tr->kind);
    }
    assert_null(qb_format_traits_get(QB_FMT_KIND_COUNT));
    assert_null(qb_format_traits_get(-1));
}

/* Quantize and dequantize a small ramp in f: finite values, within 1.5x the ramp's range (a
 * sanity check of the row's hooks; budgets per format live in test-formats.c). */
static void roundtrip_ok(const qb_format *f, const char *nm)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    const int64_t n = 256, rows = 2;
    float x[512], y[256];
    for (int i = 0; i < 512; i++) x[i] = (float)(i % 97 - 48) / 16.0f;
    const size_t rb = qb_format_row_bytes(f, n);
    assert_true(rb > 0);
    uint8_t *q = malloc(rb * rows);
    if (qb_quantize_matrix(&ctx, f, x, rows, n, q, NULL) != QB_OK) fail_msg("%s: %s", nm, qb_ctx_errmsg(&ctx));
    qb_dequantize_row(f, q + rb, y, n);
    for (int i = 0; i < n; i++)
        if (!isfinite(y[i]) || fabsf(y[i]) > 4.5f) fail_msg("%s: element %d dequantized to %g", nm, i, y[i]);
    free(q);
}

static void test_families_consistent(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    const int nf = qb_format_family_count();
    assert_true(nf >= 11);
    int checked = 0;
    for (int i = 0; i < nf; i++) {
        const qb_format_family *fam = qb_format_family_get(i);
        assert_non_null(fam);
        if (i > 0) assert_true(qb_format_family_get(i - 1)->rank <= fam->rank);
        assert_int_equal(qb_format_family_find(fam->key), i);
        for (int b = 0; fam->bits[b]; b++)
            for (int g = 0; fam->groups[g] != QB_FAMILY_END; g++) {
                qb_format f, back;
                if (!fam->format(fam->bits[b], fam->groups[g], &f)) continue;
                char nm[48], gn[64];
                qb_format_name(&f, nm, sizeof nm);
                if (qb_format_parse(&ctx, nm, &back) != QB_OK || !qb_format_equal(&f, &back))
                    fail_msg("%s: '%s' does not parse back", fam->key, nm);
                if (qb_format_check(&ctx, &f, 256) != QB_OK) fail_msg("%s: %s", nm, qb_ctx_errmsg(&ctx));
                fam->group_name(fam->groups[g], gn, sizeof gn);
                assert_true(gn[0] != 0);
                roundtrip_ok(&f, nm);
                checked++;
            }
    }
    /* the workbench's order: integer grids first, the llama.cpp families last */
    assert_string_equal(qb_format_family_get(0)->key, "rtn");
    assert_string_equal(qb_format_family_get(1)->key, "rtn-asym");
    assert_string_equal(qb_format_family_get(nf - 6)->key, "iq4");
    assert_string_equal(qb_format_family_get(nf - 5)->key, "iq-grid");
    assert_string_equal(qb_format_family_get(nf - 4)->key, "iq-grid-small");
    assert_string_equal(qb_format_family_get(nf - 3)->key, "iq3s");
    assert_string_equal(qb_format_family_get(nf - 2)->key, "iq3xxs");
    assert_string_equal(qb_format_family_get(nf - 1)->key, "ternary");
    print_message("%d families, %d offered formats round-trip\n", nf, checked);
}

static void want_step(const char *from, int dir, const char *to)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_format f, g;
    assert_int_equal(qb_format_parse(&ctx, from, &f), QB_OK);
    assert_int_equal(qb_format_step(&ctx, &f, dir, &g), QB_OK);
    char nm[48];
    qb_format_name(&g, nm, sizeof nm);
    if (strcmp(nm, to)) fail_msg("%s %+d: %s, want %s", from, dir, nm, to);
}

static void test_ladder_steps(void **state)
{
    (void)state;
    want_step("int4-g128", +1, "int5-g128");
    want_step("int4-g128", -1, "int3-g128");
    want_step("int8-channel-asym", -1, "int7-channel-asym");
    want_step("q4_k", +1, "q5_k");
    want_step("q3_k", -1, "q2_k");
    want_step("q6_k", +1, "q8_0");
    want_step("nf4", +1, "nf4"); /* one width only */
    want_step("tq2_0", -1, "tq1_0"); /* the ternary ladder: 2 bits, then 1 */
    want_step("tq1_0", +1, "tq2_0");
    want_step("iq3_s", +1, "iq3_s"); /* one width only */
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_format f, g;
    assert_int_equal(qb_format_parse(&ctx, "int4-g256", &f), QB_OK); /* no ladder offers g256 */
    assert_int_equal(qb_format_step(&ctx, &f, +1, &g), QB_ERR_UNSUPPORTED);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "int4-g256"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_complete),
        cmocka_unit_test(test_families_consistent),
        cmocka_unit_test(test_ladder_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
