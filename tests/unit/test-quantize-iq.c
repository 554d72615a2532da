/* test-quantize-iq.c — the grid i-quant quantizers (IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M) byte
 * for byte against llama.cpp's own: libggml-base.so's ggml_quantize_init + ggml_quantize_chunk
 * (what llama-quantize --imatrix calls), opened at run time (tests/unit/ggml_peer.h; skipped
 * when absent), on random rows of several shapes and lengths (256 … 4096) with random
 * importance (zeros included), and without importance where ggml has a fallback (IQ2_S, IQ1_M)
 * or as all-ones importance (the others). Also: every code decodes to the row it came from
 * within a per-type error budget (the quantizer is sane even without llama.cpp), bad lengths
 * and types refused, and the vector tables give the reference's bytes. */
#include "testutil.h"
#include "ggml_peer.h"

#include "core/qb.h"
#include "blocks.h"
#include "kernels.h"
#include "quant_iq.h"

#include <dlfcn.h>
#include <math.h>

static const int types[] = {QB_TYPE_IQ2_XXS, QB_TYPE_IQ2_XS, QB_TYPE_IQ2_S, QB_TYPE_IQ1_S, QB_TYPE_IQ1_M};
enum { NTYPES = sizeof types / sizeof types[0] };

typedef void (*ggml_init_fn)(int type);
typedef size_t (*ggml_chunk_fn)(int type, const float *src, void *dst, int64_t start, int64_t nrows, int64_t n_per_row,
                                const float *imatrix);
typedef struct {
    void *lib;
    ggml_init_fn init;
    ggml_chunk_fn chunk;
} peer;

static int setup(void **state)
{
    peer *p = calloc(1, sizeof *p);
    if (!p) return -1;
    const char *syms[2] = {"ggml_quantize_init", "ggml_quantize_chunk"};
    void *fn[2];
    if ((p->lib = qbt_ggml_open(syms, 2, fn))) {
        p->init = (ggml_init_fn)fn[0];
        p->chunk = (ggml_chunk_fn)fn[1];
    } else {
        print_message("libggml-base.so not found ($QB_GGML_LIB or ../peer/llama.cpp/build/bin): skipping the ggml comparisons\n");
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

static uint64_t rng = 0x5DEECE66Dull;
static float frand(void) { return qbt_frand(&rng); }
static float gauss(void)
{
    float s = 0;
    for (int k = 0; k < 6; k++) s += frand();
    return s * 0.7071f;
}

/* Rows of several shapes (none with an all-zero stretch: see qb_quant_row_iq_ref's contract). */
static void fill_row(float *x, int n, int kind)
{
    for (int i = 0; i < n; i++) {
        switch (kind) {
        case 0: x[i] = gauss() * 0.02f; break;                                          /* a weight row */
        case 1: x[i] = frand(); break;                                                  /* uniform */
        case 2: x[i] = gauss() * ldexpf(1.0f, (i / 32) % 20 - 10); break;              /* scale per block */
        case 3: x[i] = (i % 53 == 0) ? gauss() * 50.0f : gauss(); break;                /* outliers */
        case 4: x[i] = fabsf(gauss()) + 0.5f; break;                                    /* one sign */
        case 5: x[i] = (float)((int)(qbt_xorshift(&rng) % 7) - 3) * 0.125f + 1e-3f; break; /* ties */
        default: x[i] = -fabsf(gauss()) * 1e-3f; break;
        }
    }
}

static void fill_importance(float *w, int n, int kind)
{
    for (int i = 0; i < n; i++) {
        w[i] = kind == 0 ? 1.0f : (frand() + 1.0f) * (kind == 2 ? 100.0f : 1.0f);
        if (kind == 1 && i % 41 == 7) w[i] = 0.0f; /* dead columns */
    }
}

static void expect_same_bytes(const char *what, int type, const uint8_t *got, const uint8_t *want, size_t nbytes)
{
    for (size_t i = 0; i < nbytes; i++)
        if (got[i] != want[i]) {
            const size_t bs = (size_t)qb_type_get(type)->size;
            fail_msg("%s %s: byte %zu (block %zu, offset %zu) is 0x%02x, ggml wrote 0x%02x", qb_type_get(type)->name, what, i,
                     i / bs, i % bs, got[i], want[i]);
        }
}

static void test_ggml_bytes(void **state)
{
    const peer *p = *state;
    if (!p->lib) skip();
    static const int lengths[] = {256, 768, 1536};
    enum { ROWS = 2 };
    float *x = malloc(4096 * ROWS * sizeof *x), *w = malloc(4096 * sizeof *w);
    uint8_t *got = malloc(4096 * ROWS), *want = malloc(4096 * ROWS);
    assert_true(x && w && got && want);
    int compared = 0;
    for (int t = 0; t < NTYPES; t++) {
        const int type = types[t];
        p->init(type);
        for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
            const int n = lengths[li];
            const size_t rb = qb_type_row_bytes((qb_type)type, n);
            for (int kind = 0; kind < 7; kind++)
                for (int wk = 0; wk < 4; wk++) {
                    if (wk == 3 && type != QB_TYPE_IQ2_S && type != QB_TYPE_IQ1_M) continue;
                    for (int r = 0; r < ROWS; r++) fill_row(x + (size_t)r * n, n, (kind + r) % 7);
                    fill_importance(w, n, wk % 3);
                    const float *im = wk == 3 ? NULL : w; /* 3: ggml's own weights */
                    memset(want, 0, rb * ROWS);
                    p->chunk(type, x, want, 0, ROWS, n, im);
                    for (int r = 0; r < ROWS; r++)
                        assert_true(qb_quant_row_iq_ref(type, x + (size_t)r * n, got + r * rb, n, im));
                    char what[80];
                    snprintf(what, sizeof what, "n=%d kind %d importance %d", n, kind, wk);
                    expect_same_bytes(what, type, got, want, rb * ROWS);
                    if (wk == 0) { /* all-ones importance is what a NULL matrix means here */
                        for (int r = 0; r < ROWS; r++) assert_true(qb_quant_row_ref(type, x + (size_t)r * n, got + r * rb, n));
                        if (type != QB_TYPE_IQ2_S && type != QB_TYPE_IQ1_M)
                            expect_same_bytes("qb_quant_row_ref (uniform importance)", type, got, want, rb * ROWS);
                    }
                    compared++;
                }
        }
    }
    print_message("grid i-quants: %d row sets byte-identical with ggml_quantize_chunk\n", compared);
    free(x);
    free(w);
    free(got);
    free(want);
}

/* Without llama.cpp: the codes decode to the row within a relative RMS budget. */
static void test_round_trip(void **state)
{
    (void)state;
    static const double budget[NTYPES] = {0.47, 0.44, 0.31, 0.60, 0.58}; /* measured + ~15% */ /* rms error / rms of N(0,1) rows */
    enum { N = 4096 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y), *w = malloc(N * sizeof *w);
    uint8_t *q = malloc(N);
    rng = 12345; /* the same rows whatever ran before */
    for (int t = 0; t < NTYPES; t++) {
        fill_row(x, N, 0);
        fill_importance(w, N, 1);
        assert_true(qb_quant_row_iq_ref(types[t], x, q, N, w));
        assert_true(qb_dequant_row_ref(types[t], q, y, N));
        double se = 0, sx = 0;
        for (int i = 0; i < N; i++) {
            se += (double)(x[i] - y[i]) * (x[i] - y[i]);
            sx += (double)x[i] * x[i];
        }
        const double rel = sqrt(se / sx);
        print_message("%-8s relative RMS error %.3f (budget %.2f)\n", qb_type_get(types[t])->name, rel, budget[t]);
        if (getenv("QB_IQ_MEASURE")) continue;
        if (!(rel < budget[t])) fail_msg("%s: relative RMS error %.3f over %.2f", qb_type_get(types[t])->name, rel, budget[t]);
    }
    free(x);
    free(y);
    free(w);
    free(q);
}

static void test_refused(void **state)
{
    (void)state;
    float x[512] = {0};
    uint8_t q[512];
    assert_false(qb_quant_row_iq_ref(QB_TYPE_IQ2_XXS, x, q, 300, NULL)); /* not whole super-blocks */
    assert_false(qb_quant_row_iq_ref(QB_TYPE_IQ1_S, x, q, -256, NULL));
    assert_false(qb_quant_row_iq_ref(QB_TYPE_Q4_K, x, q, 256, NULL)); /* not a grid i-quant */
    assert_true(qb_quant_row_iq_ref(QB_TYPE_IQ2_S, x, q, 0, NULL));
    x[3] = NAN; /* ggml aborts on NaN; we return (true or false) without a crash */
    for (int t = 0; t < NTYPES; t++) (void)qb_quant_row_iq_ref(types[t], x, q, 256, NULL);
    /* all zeros: every type writes an all-zero block (scale 0) */
    memset(x, 0, sizeof x);
    for (int t = 0; t < NTYPES; t++) {
        memset(q, 0xAB, sizeof q);
        assert_true(qb_quant_row_iq_ref(types[t], x, q, 256, NULL));
        for (int i = 0; i < qb_type_get(types[t])->size; i++)
            if (q[i]) fail_msg("%s: zero row, byte %d is 0x%02x", qb_type_get(types[t])->name, i, q[i]);
    }
}

/* The vector tables' quant_row: the reference's bytes. */
static void test_tables(void **state)
{
    (void)state;
    enum { N = 1536 };
    static const char *isas[] = {"avx2", "avx512", "avx512vnni"};
    float x[N];
    uint8_t want[N], got[N];
    for (int t = 0; t < NTYPES; t++) {
        fill_row(x, N, 3);
        assert_true(qb_quant_row_ref(types[t], x, want, N));
        for (int k = 0; k < 3; k++) {
            const qb_kernel_table *kt = qb_kernels_for(isas[k]);
            if (!kt) continue;
            assert_true(kt->quant_row(types[t], x, got, N));
            expect_same_bytes(isas[k], types[t], got, want, qb_type_row_bytes((qb_type)types[t], N));
        }
    }
}

/* IQ1_M's split search in vector lanes (quant_iq_avx2.c / _avx512.c): the reference's bytes on
 * rows of every shape, with and without importance. */
void qb_iq1m_scores_avx2(const float *, const float *, const int *, float[][4], float[][4]);
void qb_iq1m_scores_avx512(const float *, const float *, const int *, float[][4], float[][4]);
static void test_iq1m_search_simd(void **state)
{
    (void)state;
    enum { N = 1024 };
    float x[N], w[N];
    uint8_t want[N], got[N];
    const struct { const char *isa; qb_iq1m_score_fn fn; } v[] = {{"avx2", qb_iq1m_scores_avx2}, {"avx512", qb_iq1m_scores_avx512}};
    int checked = 0;
    for (int kind = 0; kind < 7; kind++)
        for (int wk = 0; wk < 4; wk++) {
            fill_row(x, N, kind);
            fill_importance(w, N, wk % 3);
            const float *im = wk == 3 ? NULL : w;
            assert_true(qb_quant_row_iq_ref(QB_TYPE_IQ1_M, x, want, N, im));
            for (int k = 0; k < 2; k++) {
                if (!qb_kernels_for(v[k].isa)) continue;
                assert_true(qb_quant_row_iq_with(QB_TYPE_IQ1_M, x, got, N, im, v[k].fn));
                char what[64];
                snprintf(what, sizeof what, "%s split search, kind %d importance %d", v[k].isa, kind, wk);
                expect_same_bytes(what, QB_TYPE_IQ1_M, got, want, qb_type_row_bytes(QB_TYPE_IQ1_M, N));
                checked++;
            }
        }
    print_message("IQ1_M split search: %d vector rows byte-identical with the reference\n", checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ggml_bytes),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_iq1m_search_simd),
    };
    return cmocka_run_group_tests_name("quantize-iq", tests, setup, teardown) ? 1 : 0;
}
