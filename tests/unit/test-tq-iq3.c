/* test-tq-iq3.c — TQ1_0, TQ2_0, IQ3_XXS and IQ3_S: the scalar dequantizers against llama.cpp's
 * dequantize_row_* bit for bit, the vector dequantizers against the scalar ones, the dot
 * products (scalar against an independent sum over ggml's dequantized weights, vectors
 * against the scalar one at awkward lengths and activation counts), and the quantizers
 * against ggml_quantize_chunk byte for byte, with and without importance weights.
 *
 * llama.cpp's libggml-base.so is opened at run time (ggml_peer.h); the tests that need it are
 * skipped, saying so, when it is absent. */
#include "testutil.h"
#include "ggml_peer.h"

#include "core/qb.h"
#include "kernels.h"
#include "blocks.h"
#include "tq_iq3.h"

#include <dlfcn.h>
#include <math.h>

static const int types[] = {QB_TYPE_TQ1_0, QB_TYPE_TQ2_0, QB_TYPE_IQ3_XXS, QB_TYPE_IQ3_S};
static const char *const dq_syms[] = {"dequantize_row_tq1_0", "dequantize_row_tq2_0", "dequantize_row_iq3_xxs",
                                      "dequantize_row_iq3_s"};
enum { NT = 4 };

typedef struct {
    void *lib;
    void (*dq[NT])(const void *, float *, int64_t);
    void (*qinit)(int);
    size_t (*qchunk)(int, const float *, void *, int64_t, int64_t, int64_t, const float *);
} peer;

static int setup(void **state)
{
    peer *p = calloc(1, sizeof *p);
    if (!p) return -1;
    const char *syms[NT + 2];
    void *fn[NT + 2];
    for (int i = 0; i < NT; i++) syms[i] = dq_syms[i];
    syms[NT] = "ggml_quantize_init";
    syms[NT + 1] = "ggml_quantize_chunk";
    if ((p->lib = qbt_ggml_open(syms, NT + 2, fn))) {
        for (int i = 0; i < NT; i++) p->dq[i] = (void (*)(const void *, float *, int64_t))fn[i];
        p->qinit = (void (*)(int))fn[NT];
        p->qchunk = (size_t (*)(int, const float *, void *, int64_t, int64_t, int64_t, const float *))fn[NT + 1];
    } else {
        print_message("skip: llama.cpp's libggml-base.so not found (QB_GGML_LIB); the ggml comparisons are skipped\n");
    }
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    peer *p = *state;
    if (p->lib) dlclose(p->lib);
    free(p);
    return 0;
}

static uint64_t rng(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float uniform(uint64_t *s) { return (float)((rng(s) >> 11) * (1.0 / 9007199254740992.0)); }

static float gauss(uint64_t *s)
{
    const float u = uniform(s) + 1e-7f, v = uniform(s);
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void expect_same_bits(const char *what, const float *got, const float *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (isnan(got[i]) && isnan(want[i])) continue;
        if (bits(got[i]) != bits(want[i]))
            fail_msg("%s: element %lld is %.9g, expected %.9g", what, (long long)i, (double)got[i], (double)want[i]);
    }
}

/* nb random blocks of type t; the f16 scale (where the block has one at a known place) is set
 * to a finite value in [0.001, 1) unless raw. */
static uint8_t *random_blocks(int t, int nb, uint64_t *s, bool raw)
{
    const qb_type_info *ti = qb_type_get(t);
    uint8_t *b = malloc((size_t)nb * ti->size);
    assert_non_null(b);
    for (size_t k = 0; k < (size_t)nb * ti->size; k++) b[k] = (uint8_t)rng(s);
    if (!raw) {
        const size_t off = t == QB_TYPE_TQ1_0 ? 52 : t == QB_TYPE_TQ2_0 ? 64 : 0;
        for (int i = 0; i < nb; i++) {
            const uint16_t h = qb_f32_to_f16(0.001f + uniform(s));
            memcpy(b + (size_t)i * ti->size + off, &h, 2);
        }
    }
    return b;
}

/* ---- dequantization ------------------------------------------------------------------------ */

static void test_dequant_vs_ggml(void **state)
{
    peer *p = *state;
    if (!p->lib) skip();
    uint64_t s = 11;
    for (int i = 0; i < NT; i++) {
        enum { NB = 512 };
        uint8_t *b = random_blocks(types[i], NB, &s, true); /* every field random: inf / NaN scales too */
        float *got = malloc(NB * 256 * sizeof(float)), *want = malloc(NB * 256 * sizeof(float));
        assert_true(got && want);
        assert_true(qb_dequant_row_ref(types[i], b, got, NB * 256));
        p->dq[i](b, want, NB * 256);
        expect_same_bits(dq_syms[i], got, want, NB * 256);
        free(b);
        free(got);
        free(want);
    }
}

static void test_dequant_simd(void **state)
{
    (void)state;
    const char *isas[] = {"avx2", "avx512", "avx512vnni"};
    uint64_t s = 5;
    int ran = 0;
    for (int a = 0; a < 3; a++) {
        const qb_kernel_table *k = qb_kernels_for(isas[a]);
        if (!k) {
            print_message("note: this CPU has no %s; its dequantizers are not run\n", isas[a]);
            continue;
        }
        for (int i = 0; i < NT; i++) {
            const int lens[] = {1, 2, 3, 5, 7, 17};
            for (int l = 0; l < 6; l++) {
                const int nb = lens[l];
                uint8_t *b = random_blocks(types[i], nb, &s, l == 5);
                float *got = malloc(nb * 256 * sizeof(float)), *want = malloc(nb * 256 * sizeof(float));
                assert_true(got && want);
                assert_true(qb_dequant_row_ref(types[i], b, want, nb * 256));
                assert_true(k->dequant_row(types[i], b, got, nb * 256));
                expect_same_bits(isas[a], got, want, nb * 256);
                free(b);
                free(got);
                free(want);
                ran++;
            }
        }
    }
    if (!ran) skip();
}

/* ---- dot products ---------------------------------------------------------------------------- */

/* nc activation rows of n floats, quantized to Q8_K by the reference. */
static uint8_t *q8k_rows(int n, int nc, uint64_t *s, size_t *stride)
{
    *stride = (size_t)(n / 256) * sizeof(qb_block_q8_K);
    uint8_t *y = malloc(*stride * nc);
    float *x = malloc((size_t)n * sizeof(float));
    assert_true(y && x);
    for (int c = 0; c < nc; c++) {
        for (int i = 0; i < n; i++) x[i] = gauss(s) * (i % 97 == 0 ? 8.0f : 1.0f);
        qb_kernels_for("ref")->quantize_act[QB_TYPE_Q8_K](x, y + *stride * c, n);
    }
    free(x);
    return y;
}

/* The dot product from ggml's dequantized weights and the activations' d * q, in double; *mag
 * gets the sum of the magnitudes of the terms (the scale of the rounding error). */
static double dot_from_ggml(const peer *p, int i, const uint8_t *w, const qb_block_q8_K *y, int n, double *mag)
{
    float *wf = malloc((size_t)n * sizeof(float));
    assert_non_null(wf);
    p->dq[i](w, wf, n);
    double sum = 0;
    *mag = 0;
    for (int e = 0; e < n; e++) {
        const double t = (double)wf[e] * ((double)y[e / 256].d * y[e / 256].qs[e % 256]);
        sum += t;
        *mag += fabs(t);
    }
    free(wf);
    return sum;
}

static void test_qdot_ref_vs_ggml(void **state)
{
    peer *p = *state;
    if (!p->lib) skip();
    const qb_kernel_table *ref = qb_kernels_for("ref");
    uint64_t s = 3;
    for (int i = 0; i < NT; i++) {
        assert_int_equal(qb_act_type(types[i]), QB_TYPE_Q8_K);
        for (int nb = 1; nb <= 9; nb += 4) {
            const int n = nb * 256;
            uint8_t *w = random_blocks(types[i], nb, &s, false);
            size_t st;
            uint8_t *y = q8k_rows(n, 1, &s, &st);
            float got;
            ref->qdot[types[i]](n, w, y, st, 1, &got);
            double mag;
            const double want = dot_from_ggml(p, i, w, (const qb_block_q8_K *)y, n, &mag);
            if (fabs(got - want) > 1e-5 * mag + 1e-30)
                fail_msg("%s, %d blocks: %.9g, from ggml's weights %.9g", qb_type_get(types[i])->name, nb, (double)got, want);
            free(w);
            free(y);
        }
    }
}

static void test_qdot_simd(void **state)
{
    (void)state;
    const char *isas[] = {"avx2", "avx512", "avx512vnni"};
    const qb_kernel_table *ref = qb_kernels_for("ref");
    uint64_t s = 9;
    int ran = 0;
    for (int a = 0; a < 3; a++) {
        const qb_kernel_table *k = qb_kernels_for(isas[a]);
        if (!k) {
            print_message("note: this CPU has no %s; its dot products are not run\n", isas[a]);
            continue;
        }
        for (int i = 0; i < NT; i++) {
            const int lens[] = {1, 2, 3, 5, 7, 17};
            for (int l = 0; l < 6; l++) {
                const int n = lens[l] * 256;
                for (int nc = 1; nc <= 6; nc++) {
                    uint8_t *w = random_blocks(types[i], lens[l], &s, false);
                    size_t st;
                    uint8_t *y = q8k_rows(n, nc, &s, &st);
                    float got[6], want[6], one;
                    k->qdot[types[i]](n, w, y, st, nc, got);
                    ref->qdot[types[i]](n, w, y, st, nc, want);
                    for (int c = 0; c < nc; c++) {
                        /* bound: the float sums of the per-block products in another order */
                        double mag = 0;
                        for (int b = 0; b < lens[l]; b++) {
                            ref->qdot[types[i]](256, w + (size_t)b * qb_type_get(types[i])->size,
                                                y + st * c + (size_t)b * sizeof(qb_block_q8_K), 0, 1, &one);
                            mag += fabs(one);
                        }
                        if (fabs(got[c] - want[c]) > 1e-5 * mag + 1e-30)
                            fail_msg("%s %s n=%d nc=%d row %d: %.9g, reference %.9g", isas[a], qb_type_get(types[i])->name,
                                     n, nc, c, (double)got[c], (double)want[c]);
                    }
                    free(w);
                    free(y);
                    ran++;
                }
            }
        }
    }
    if (!ran) skip();
}

/* ---- quantizers ------------------------------------------------------------------------------ */

/* Rows that exercise the searches: gaussian, heavy outliers, a zero sub-block, an all-zero
 * block, tiny values, a constant block. */
static void fill_rows(float *x, int rows, int n, uint64_t *s)
{
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * n;
        for (int i = 0; i < n; i++) {
            float v = gauss(s);
            if (r % 3 == 1 && uniform(s) < 0.02f) v *= 20.0f;
            xr[i] = v * (r % 4 == 3 ? 1e-3f : 1.0f);
        }
        if (r == 2)
            for (int i = 32; i < 64; i++) xr[i] = 0; /* one zero sub-block */
        if (r == 4 && n >= 512)
            for (int i = 256; i < 512; i++) xr[i] = 0; /* one zero block */
        if (r == 5)
            for (int i = 0; i < 256; i++) xr[i] = 0.25f; /* a constant block */
    }
}

static void compare_quant(const peer *p, int t, int rows, int n, const float *x, const float *qw, const char *what)
{
    const size_t rb = qb_type_row_bytes((qb_type)t, n);
    uint8_t *got = malloc(rb * rows), *want = malloc(rb * rows);
    assert_true(got && want);
    memset(got, 0xAA, rb * rows);
    memset(want, 0x55, rb * rows);
    assert_true(qb_quant_tq_iq3_ref(t, x, got, rows, n, qw));
    assert_int_equal(p->qchunk(t, x, want, 0, rows, n, qw), rb * rows);
    for (size_t k = 0; k < rb * rows; k++)
        if (got[k] != want[k])
            fail_msg("%s %s: byte %zu (row %zu, block %zu, offset %zu) is 0x%02x, ggml writes 0x%02x", qb_type_get(t)->name,
                     what, k, k / rb, k % rb / qb_type_get(t)->size, k % rb % qb_type_get(t)->size, got[k], want[k]);
    free(got);
    free(want);
}

static void test_quant_vs_ggml(void **state)
{
    peer *p = *state;
    if (!p->lib) skip();
    uint64_t s = 21;
    enum { ROWS = 12, N = 1024 };
    float *x = malloc(sizeof(float) * ROWS * N), *qw = malloc(sizeof(float) * N);
    assert_true(x && qw);
    fill_rows(x, ROWS, N, &s);
    for (int i = 0; i < N; i++) qw[i] = uniform(&s) * uniform(&s) * 4.0f + (i % 50 == 0 ? 30.0f : 0.0f);
    for (int i = 0; i < NT; i++) {
        p->qinit(types[i]);
        compare_quant(p, types[i], ROWS, N, x, NULL, "without importance");
        compare_quant(p, types[i], ROWS, N, x, qw, "with importance");
        /* the weighted row entry (quantize --imatrix) of every table: the same bytes */
        for (int r = 0; r < 3; r++) {
            const char *isa = r == 0 ? "ref" : r == 1 ? "avx2" : "avx512";
            const qb_kernel_table *kt = qb_kernels_for(isa);
            if (!kt) continue;
            const size_t rw = qb_type_row_bytes((qb_type)types[i], N);
            uint8_t *a = malloc(rw), *b = malloc(rw);
            assert_true(a && b);
            assert_true(kt->quant_row_w(types[i], x + N, a, N, qw));
            assert_true(qb_quant_tq_iq3_ref(types[i], x + N, b, 1, N, qw));
            if (memcmp(a, b, rw)) fail_msg("%s quant_row_w %s: bytes differ", isa, qb_type_get(types[i])->name);
            free(a);
            free(b);
        }
        /* the kernel tables' row quantizer (no importance) writes the same bytes */
        const size_t rb = qb_type_row_bytes((qb_type)types[i], N);
        uint8_t *a = malloc(rb), *b = malloc(rb);
        assert_true(a && b);
        assert_true(qb_kernels()->quant_row(types[i], x, a, N));
        assert_true(qb_quant_tq_iq3_ref(types[i], x, b, 1, N, NULL));
        assert_memory_equal(a, b, rb);
        free(a);
        free(b);
    }
    free(x);
    free(qw);
}

/* The vector tables' quantizers (the IQ3 neighbour search in lanes) write the reference's bytes,
 * with and without importance weights, on rows that exercise the searches. */
static void test_quant_simd(void **state)
{
    (void)state;
    uint64_t s = 31;
    enum { ROWS = 9, N = 768 };
    float *x = malloc(sizeof(float) * ROWS * N), *qw = malloc(sizeof(float) * N);
    uint8_t *a = malloc(ROWS * N), *b = malloc(ROWS * N);
    assert_true(x && qw && a && b);
    fill_rows(x, ROWS, N, &s);
    for (int i = 0; i < N; i++) qw[i] = uniform(&s) * 3.0f + (i % 37 == 0 ? 50.0f : 0.0f);
    static const struct {
        const char *isa;
        bool (*fn)(int, const float *, void *, int64_t, int64_t, const float *);
    } v[] = {{"avx2", qb_quant_tq_iq3_avx2}, {"avx512", qb_quant_tq_iq3_avx512}};
    int ran = 0;
    for (int k = 0; k < 2; k++) {
        const qb_kernel_table *kt = qb_kernels_for(v[k].isa);
        if (!kt) {
            print_message("note: this CPU has no %s; its quantizers are not run\n", v[k].isa);
            continue;
        }
        for (int i = 0; i < NT; i++) {
            const size_t rb = qb_type_row_bytes((qb_type)types[i], N);
            for (int w = 0; w < 2; w++) {
                assert_true(qb_quant_tq_iq3_ref(types[i], x, a, ROWS, N, w ? qw : NULL));
                assert_true(v[k].fn(types[i], x, b, ROWS, N, w ? qw : NULL));
                if (memcmp(a, b, rb * ROWS)) fail_msg("%s %s%s: bytes differ from the reference", v[k].isa, qb_type_get(types[i])->name, w ? " (importance)" : "");
            }
            assert_true(kt->quant_row(types[i], x, b, (int64_t)ROWS * N)); /* the table's entry: no importance */
            assert_true(qb_quant_tq_iq3_ref(types[i], x, a, ROWS, N, NULL));
            assert_memory_equal(a, b, rb * ROWS);
            ran++;
        }
    }
    free(x);
    free(qw);
    free(a);
    free(b);
    if (!ran) skip();
}

/* Ties and padding in the neighbour search: a list with repeated points (equal sums) gives the
 * first, a point past the list never wins, and every version agrees with the reference. */
static void test_neighbour_ties(void **state)
{
    (void)state;
    /* 19 entries (a full register of 16 and a partial one); the points at positions 1, 4 and 17
     * (ids 5, 3, 19) have the same levels (1,0,0,0), values (3,1,1,1): equal sums */
    uint16_t nb[20] = {19, 7, 5, 9, 3, 6, 10, 11, 12, 13, 14, 15, 16, 4, 17, 18, 2, 20, 19, 21};
    uint8_t lvt[4 * 32];
    memset(lvt, 0, sizeof lvt);
    for (int j = 0; j < 19; j++)
        for (int i = 0; i < 4; i++) lvt[i * 32 + j] = (uint8_t)((j * 5 + i * 3 + 2) & 7);
    for (int i = 0; i < 4; i++) lvt[i * 32 + 1] = lvt[i * 32 + 4] = lvt[i * 32 + 17] = i == 0;
    const float xv[4] = {3.0f, 1.0f, 1.0f, 1.0f}, w[4] = {1, 1, 1, 1};
    const int want = qb_iq3_neighbour_ref(nb, lvt, xv, w, 1.0f);
    assert_int_equal(want, 5); /* exact fit, the first of the three */
    if (qb_kernels_for("avx2")) assert_int_equal(qb_iq3_neighbour_avx2(nb, lvt, xv, w, 1.0f), want);
    if (qb_kernels_for("avx512")) assert_int_equal(qb_iq3_neighbour_avx512(nb, lvt, xv, w, 1.0f), want);
    uint64_t s = 8;
    for (int r = 0; r < 2000; r++) {
        float x4[4], w4[4];
        for (int i = 0; i < 4; i++) x4[i] = uniform(&s) * 15.0f, w4[i] = (float)(rng(&s) % 3);
        const float sc = 0.5f + uniform(&s);
        const int a = qb_iq3_neighbour_ref(nb, lvt, x4, w4, sc);
        if (qb_kernels_for("avx2")) assert_int_equal(qb_iq3_neighbour_avx2(nb, lvt, x4, w4, sc), a);
        if (qb_kernels_for("avx512")) assert_int_equal(qb_iq3_neighbour_avx512(nb, lvt, x4, w4, sc), a);
    }
}

/* Round trip: the error of each format on gaussian rows stays within its measured budget (so a
 * quantizer that silently writes zeros or garbage fails even without llama.cpp). */
static void test_quant_roundtrip(void **state)
{
    (void)state;
    static const double budget[NT] = {0.83, 0.83, 0.22, 0.20}; /* RMSE / RMS; measured 0.811, 0.811, 0.211, 0.166 */
    uint64_t s = 77;
    enum { N = 4096 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    uint8_t *q = malloc(N * 2);
    assert_true(x && y && q);
    for (int i = 0; i < N; i++) x[i] = gauss(&s);
    for (int i = 0; i < NT; i++) {
        assert_true(qb_quant_tq_iq3_ref(types[i], x, q, 1, N, NULL));
        assert_true(qb_dequant_row_ref(types[i], q, y, N));
        double e = 0, r = 0;
        for (int k = 0; k < N; k++) {
            e += (double)(x[k] - y[k]) * (x[k] - y[k]);
            r += (double)x[k] * x[k];
        }
        const double rel = sqrt(e / r);
        print_message("%s: relative RMSE %.4f\n", qb_type_get(types[i])->name, rel);
        if (rel > budget[i] || rel < 0.01)
            fail_msg("%s: relative RMSE %.4f outside (0.01, %.2f]", qb_type_get(types[i])->name, rel, budget[i]);
    }
    free(x);
    free(y);
    free(q);
}

static void test_bad_lengths(void **state)
{
    (void)state;
    float x[512] = {0}, y[512];
    uint8_t q[512];
    for (int i = 0; i < NT; i++) {
        assert_false(qb_quant_tq_iq3_ref(types[i], x, q, 1, 300, NULL));
        assert_false(qb_quant_tq_iq3_ref(types[i], x, q, -1, 256, NULL));
        assert_false(qb_quant_row_ref(types[i], x, q, 288));
        assert_false(qb_dequant_row_ref(types[i], q, y, 288));
        assert_true(qb_dequant_row_ref(types[i], q, y, 0));
    }
    assert_false(qb_quant_tq_iq3_ref(QB_TYPE_Q4_K, x, q, 1, 256, NULL));
    /* the type table knows them under ggml's names and sizes */
    assert_int_equal(qb_type_from_name("iq3_xxs"), 18);
    assert_int_equal(qb_type_from_name("IQ3_S"), 21);
    assert_int_equal(qb_type_from_name("tq1_0"), 34);
    assert_int_equal(qb_type_from_name("TQ2_0"), 35);
    assert_int_equal(qb_type_row_bytes(QB_TYPE_IQ3_S, 512), 220);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dequant_vs_ggml),  cmocka_unit_test(test_dequant_simd),
        cmocka_unit_test(test_qdot_ref_vs_ggml), cmocka_unit_test(test_qdot_simd),
        cmocka_unit_test(test_quant_vs_ggml),    cmocka_unit_test(test_quant_simd),
        cmocka_unit_test(test_neighbour_ties),   cmocka_unit_test(test_quant_roundtrip),
        cmocka_unit_test(test_bad_lengths),
    };
    return cmocka_run_group_tests_name("tq-iq3", tests, setup, teardown) ? 1 : 0;
}
