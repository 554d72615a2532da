/* test-quant-weighted.c — quantization with importance weights (llama-quantize --imatrix):
 * qb_quant_row_w_ref against llama.cpp's own ggml_quantize_chunk with an imatrix, byte for
 * byte, on random rows (magnitudes from 1e-6 to 1e3, zero blocks and runs, outliers, constant
 * blocks, values below ggml's 1e-15 floor) with random importance (uniform, heavy-tailed,
 * zero columns and zero blocks) at several row lengths, for every type ggml weights and those
 * it ignores weights for (Q8_0, F16); every vector table (AVX2, AVX-512) against the
 * reference at awkward numbers of blocks per row, rows with inf, NaN and huge values too; a
 * NULL weight pointer is the plain path.
 *
 * llama.cpp is not part of this project: its libggml-base.so is opened at run time from
 * $QB_GGML_LIB (default ../peer/llama.cpp/build/bin/libggml-base.so); the comparison with it
 * is skipped, saying so, when it is absent. */
#include "testutil.h"
#include "ggml_peer.h"

#include "core/qb.h"
#include "kernels.h"

#include <dlfcn.h>
#include <math.h>

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float uni(uint64_t *s) { return (float)((rng_next(s) >> 40) * (1.0 / 16777216.0)); } /* [0, 1) */

static float gauss(uint64_t *s)
{
    const float u = uni(s) + 1e-7f, v = uni(s);
    return sqrtf(-2.f * logf(u)) * cosf(6.2831853f * v);
}

/* Row r of a test matrix: a kind chosen by r, values of magnitude 10^(-6..3); with nasty,
 * kind 7 holds an inf, a NaN and huge values (the vector searches must give the reference's
 * bytes even there; ggml's own asserts forbid such rows, so they are not compared with it). */
static void make_row_k(uint64_t *s, int r, float *x, int64_t n, bool nasty)
{
    const float scale = powf(10.f, -6.f + 9.f * uni(s));
    for (int64_t j = 0; j < n; j++) x[j] = scale * gauss(s);
    switch (r % 8) {
    case 1: /* outliers */
        for (int k = 0; k < 1 + (int)(n / 64); k++) x[rng_next(s) % (uint64_t)n] *= 50.f + 200.f * uni(s);
        break;
    case 2: /* a zero block of 32 and a run of zeros */
        memset(x + (rng_next(s) % (uint64_t)(n / 32)) * 32, 0, 32 * sizeof(float));
        for (int64_t j = (int64_t)(rng_next(s) % (uint64_t)n), e = j + 40; j < e && j < n; j++) x[j] = 0;
        break;
    case 3: /* all positive (affine fits with min > 0), one constant block */
        for (int64_t j = 0; j < n; j++) x[j] = fabsf(x[j]) + scale;
        for (int j = 0; j < 32; j++) x[j] = scale;
        break;
    case 4: /* a block below ggml's 1e-15 "all zero" floor */
        for (int j = 0; j < 32; j++) x[j] = 1e-17f * gauss(s);
        break;
    case 5: /* the whole row zero */
        memset(x, 0, (size_t)n * sizeof(float));
        break;
    case 6: /* uniform, heavy in the code tails */
        for (int64_t j = 0; j < n; j++) x[j] = scale * (2.f * uni(s) - 1.f);
        break;
    case 7:
        if (!nasty) break;
        x[rng_next(s) % (uint64_t)n] = INFINITY;
        x[rng_next(s) % (uint64_t)n] = NAN;
        for (int k = 0; k < 4; k++) x[rng_next(s) % (uint64_t)n] = (k & 1 ? -1e30f : 3e37f) * uni(s);
        break;
    default: break;
    }
}

static void make_row(uint64_t *s, int r, float *x, int64_t n) { make_row_k(s, r, x, n, false); }

/* Importance of n columns, kind by seed: uniform, heavy-tailed, with zero columns and a zero
 * block of 32 (and one all-zero importance row). */
static void make_importance(uint64_t *s, int kind, float *w, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        const float u = uni(s);
        switch (kind % 4) {
        case 0: w[j] = u; break;
        case 1: w[j] = expf(8.f * gauss(s)); break; /* log-normal: spans many decades */
        case 2: w[j] = u < 0.3f ? 0.f : 1e3f * u; break;
        default: w[j] = 0; break;
        }
    }
    if (kind % 4 == 1 && n >= 64) memset(w + 32, 0, 32 * sizeof(float));
}

static const int weighted_types[] = {
    QB_TYPE_Q4_0, QB_TYPE_Q4_1, QB_TYPE_Q5_0, QB_TYPE_Q5_1, QB_TYPE_Q2_K, QB_TYPE_Q3_K, QB_TYPE_Q4_K,
    QB_TYPE_Q5_K, QB_TYPE_Q6_K, QB_TYPE_IQ4_NL, QB_TYPE_IQ4_XS, QB_TYPE_Q8_0, QB_TYPE_F16,
};
enum { N_TYPES = sizeof weighted_types / sizeof weighted_types[0] };

/* Blocks per row: awkward counts for the vector searches' lanes (sub-blocks of 16 or 32 in
 * sets of 16 lanes, calls of 64) and a model-sized row. */
static const int blocks_per_row[] = {1, 2, 3, 5, 7, 9, 17, 33, 48};

typedef size_t (*ggml_quantize_chunk_fn)(int type, const float *src, void *dst, int64_t start, int64_t nrows,
                                         int64_t n_per_row, const float *imatrix);

typedef struct {
    void *lib;
    ggml_quantize_chunk_fn chunk;
} ggml_state;

static int setup(void **state)
{
    ggml_state *gs = calloc(1, sizeof *gs);
    if (!gs) return -1;
    const char *syms[1] = {"ggml_quantize_chunk"};
    void *fn[1];
    if ((gs->lib = qbt_ggml_open(syms, 1, fn))) gs->chunk = (ggml_quantize_chunk_fn)fn[0];
    *state = gs;
    return 0;
}

static int teardown(void **state)
{
    ggml_state *gs = *state;
    if (gs->lib) dlclose(gs->lib);
    free(gs);
    return 0;
}

/* The first byte where a and b differ, -1 when equal. */
static long first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return (long)i;
    return -1;
}

enum { ROWS = 16 };

/* Every weighted type, every row length, ROWS rows each with its own importance kind: ours
 * (reference) against ggml_quantize_chunk on the whole matrix with the row's importance. */
static void test_matches_ggml(void **state)
{
    ggml_state *gs = *state;
    if (!gs->lib) {
        print_message("skip: libggml-base.so not found ($QB_GGML_LIB or ../peer/llama.cpp/build/bin)\n");
        skip();
    }
    uint64_t s = 42;
    int compared = 0;
    for (int t = 0; t < N_TYPES; t++) {
        const int type = weighted_types[t];
        const int64_t blk = qb_type_get(type)->blck > 1 ? qb_type_get(type)->blck : 32;
        for (size_t k = 0; k < sizeof blocks_per_row / sizeof blocks_per_row[0]; k++) {
            const int64_t n = blk * blocks_per_row[k];
            const size_t rb = qb_type_row_bytes((qb_type)type, n);
            float *x = malloc((size_t)(n * ROWS) * sizeof(float)), *w = malloc((size_t)n * sizeof(float));
            uint8_t *ours = malloc(rb), *theirs = malloc(rb * ROWS);
            assert_true(x && w && ours && theirs);
            for (int r = 0; r < ROWS; r++) make_row(&s, r, x + r * n, n);
            /* one importance per matrix, as llama-quantize passes it; a new one per (type, n) */
            make_importance(&s, (int)(k + (size_t)t), w, n);
            const size_t got = gs->chunk(type, x, theirs, 0, ROWS, n, w);
            assert_int_equal(got, rb * ROWS);
            for (int r = 0; r < ROWS; r++) {
                assert_true(qb_quant_row_w_ref(type, x + r * n, ours, n, w));
                const long d = first_diff(ours, theirs + rb * (size_t)r, rb);
                if (d >= 0)
                    fail_msg("%s, row length %lld, row %d (kind %d), importance kind %d: byte %ld is 0x%02x, ggml "
                             "wrote 0x%02x", qb_type_get(type)->name, (long long)n, r, r % 8, (int)((k + (size_t)t) % 4),
                             d, ours[d], theirs[rb * (size_t)r + (size_t)d]);
                compared++;
            }
            free(x);
            free(w);
            free(ours);
            free(theirs);
        }
    }
    print_message("compared %d rows with ggml_quantize_chunk\n", compared);
    assert_int_equal(compared, N_TYPES * (int)(sizeof blocks_per_row / sizeof blocks_per_row[0]) * ROWS);
}

/* Importance of the same value everywhere is not "no importance": ggml's weighted searches
 * differ from its plain ones, so the bytes must differ from the plain quantizer's somewhere
 * for every weighted type, and must not for the types that ignore weights. */
static void test_weights_change_bytes(void **state)
{
    (void)state;
    uint64_t s = 9;
    enum { N = 256 * 8 };
    float *x = malloc(N * sizeof(float)), w[N];
    uint8_t *a = malloc(N * 4), *b = malloc(N * 4);
    assert_true(x && a && b);
    for (int j = 0; j < N; j++) x[j] = gauss(&s);
    make_importance(&s, 1, w, N);
    for (int t = 0; t < N_TYPES; t++) {
        const int type = weighted_types[t];
        const size_t rb = qb_type_row_bytes((qb_type)type, N);
        assert_true(qb_quant_row_ref(type, x, a, N));
        assert_true(qb_quant_row_w_ref(type, x, b, N, w));
        const bool same = memcmp(a, b, rb) == 0;
        if (same == qb_quant_weighted(type))
            fail_msg("%s: weighted bytes %s the plain ones", qb_type_get(type)->name, same ? "equal" : "differ from");
        /* NULL weights: the plain path */
        assert_true(qb_quant_row_w_ref(type, x, b, N, NULL));
        assert_memory_equal(a, b, rb);
    }
    free(x);
    free(a);
    free(b);
}

/* Every vector table against the reference, every type and row length above, rows of every
 * kind. */
static void test_simd_matches_reference(void **state)
{
    (void)state;
    static const char *const isas[] = {"avx2", "avx512", "avx512vnni"};
    int tables = 0;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        const qb_kernel_table *k = qb_kernels_for(isas[i]);
        if (!k) continue;
        tables++;
        uint64_t s = 1234;
        for (int t = 0; t < N_TYPES; t++) {
            const int type = weighted_types[t];
            const int64_t blk = qb_type_get(type)->blck > 1 ? qb_type_get(type)->blck : 32;
            for (size_t b = 0; b < sizeof blocks_per_row / sizeof blocks_per_row[0]; b++) {
                const int64_t n = blk * blocks_per_row[b];
                const size_t rb = qb_type_row_bytes((qb_type)type, n);
                float *x = malloc((size_t)n * sizeof(float)), *w = malloc((size_t)n * sizeof(float));
                uint8_t *want = malloc(rb), *got = malloc(rb);
                assert_true(x && w && want && got);
                for (int r = 0; r < 8; r++) {
                    make_row_k(&s, r, x, n, true);
                    make_importance(&s, r + (int)b, w, n);
                    assert_true(qb_quant_row_w_ref(type, x, want, n, w));
                    assert_true(k->quant_row_w(type, x, got, n, w));
                    const long d = first_diff(got, want, rb);
                    if (d >= 0)
                        fail_msg("%s %s, row length %lld, row kind %d: byte %ld is 0x%02x, the reference wrote 0x%02x",
                                 isas[i], qb_type_get(type)->name, (long long)n, r, d, got[d], want[d]);
                }
                free(x);
                free(w);
                free(want);
                free(got);
            }
        }
    }
    if (!tables) {
        print_message("skip: this CPU has no AVX2 (no vector table to compare)\n");
        skip();
    }
}

/* Bad calls: a row length that is not a multiple of the block, a type without a quantizer. */
static void test_bad_calls(void **state)
{
    (void)state;
    float x[64] = {0}, w[64] = {0};
    uint8_t y[256];
    assert_false(qb_quant_row_w_ref(QB_TYPE_Q4_K, x, y, 64, w));
    assert_false(qb_quant_row_w_ref(QB_TYPE_Q4_0, x, y, 40, w));
    assert_false(qb_quant_row_w_ref(QB_TYPE_CUSTOM, x, y, 64, w));
    assert_true(qb_quant_row_w_ref(QB_TYPE_Q4_0, x, y, 64, w)); /* zeros: fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_ggml),
        cmocka_unit_test(test_weights_change_bytes),
        cmocka_unit_test(test_simd_matches_reference),
        cmocka_unit_test(test_bad_calls),
    };
    return cmocka_run_group_tests_name("quant-weighted", tests, setup, teardown);
}
