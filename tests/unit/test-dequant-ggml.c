/* test-dequant-ggml.c — qb_dequant_row_ref against llama.cpp's own dequantize_row_*, bit for
 * bit: on every tensor of qb-docs-26m-zoo.gguf and on blocks of random bytes (every bit of
 * every field, scales of any magnitude: subnormal, inf and NaN halfs included).
 *
 * llama.cpp is not part of this project: its libggml-base.so is opened at run time from
 * $QB_GGML_LIB (default ../peer/llama.cpp/build/bin/libggml-base.so) and its exported
 * functions are looked up by name; the tests are skipped when it is absent. */
#include "testutil.h"
#include "ggml_peer.h"

#include "core/util/gguf.h"
#include "core/qb.h"
#include "kernels.h"

#include <dlfcn.h>
#include <math.h>

enum { ZOO_TENSORS = 4, ZOO_FORMATS = 12 }; /* F16 originals, quantized versions of each */

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Every element equal bit for bit (NaNs must both be NaN). */
static void expect_same(const char *what, const float *got, const float *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (isnan(want[i]) && isnan(got[i])) continue;
        if (f32_bits(got[i]) != f32_bits(want[i]))
            fail_msg("%s: element %lld is %.9g (0x%08x), ggml gives %.9g (0x%08x)", what,
                     (long long)i, (double)got[i], f32_bits(got[i]), (double)want[i],
                     f32_bits(want[i]));
    }
}

typedef void (*ggml_row_fn)(const void *src, float *dst, int64_t n);

static struct {
    int type;
    const char *sym;
} const ggml_syms[] = {
    {QB_TYPE_F16, "ggml_fp16_to_fp32_row"},   {QB_TYPE_BF16, "ggml_bf16_to_fp32_row"},
    {QB_TYPE_Q4_0, "dequantize_row_q4_0"},     {QB_TYPE_Q4_1, "dequantize_row_q4_1"},
    {QB_TYPE_Q5_0, "dequantize_row_q5_0"},     {QB_TYPE_Q5_1, "dequantize_row_q5_1"},
    {QB_TYPE_Q8_0, "dequantize_row_q8_0"},     {QB_TYPE_Q2_K, "dequantize_row_q2_K"},
    {QB_TYPE_Q3_K, "dequantize_row_q3_K"},     {QB_TYPE_Q4_K, "dequantize_row_q4_K"},
    {QB_TYPE_Q5_K, "dequantize_row_q5_K"},     {QB_TYPE_Q6_K, "dequantize_row_q6_K"},
    {QB_TYPE_Q8_K, "dequantize_row_q8_K"},     {QB_TYPE_IQ4_NL, "dequantize_row_iq4_nl"},
    {QB_TYPE_IQ4_XS, "dequantize_row_iq4_xs"},  {QB_TYPE_IQ2_XXS, "dequantize_row_iq2_xxs"},
    {QB_TYPE_IQ2_XS, "dequantize_row_iq2_xs"},  {QB_TYPE_IQ2_S, "dequantize_row_iq2_s"},
    {QB_TYPE_IQ1_S, "dequantize_row_iq1_s"},    {QB_TYPE_IQ1_M, "dequantize_row_iq1_m"},
};
enum { GGML_NSYMS = sizeof ggml_syms / sizeof ggml_syms[0] };

typedef struct {
    void *lib;
    ggml_row_fn fn[GGML_NSYMS];
} ggml_state;

/* Open libggml-base and look up its dequantizers; false (and nothing held) if not usable. */
static int ggml_setup(void **state)
{
    ggml_state *gs = calloc(1, sizeof *gs);
    if (!gs) return -1;
    const char *syms[GGML_NSYMS];
    void *fn[GGML_NSYMS];
    for (int i = 0; i < GGML_NSYMS; i++) syms[i] = ggml_syms[i].sym;
    if ((gs->lib = qbt_ggml_open(syms, GGML_NSYMS, fn)))
        for (int i = 0; i < GGML_NSYMS; i++) gs->fn[i] = (ggml_row_fn)fn[i];
    *state = gs;
    return 0;
}

static int ggml_teardown(void **state)
{
    ggml_state *gs = *state;
    if (gs && gs->lib) dlclose(gs->lib);
    free(gs);
    return 0;
}

static ggml_row_fn ggml_fn(const ggml_state *gs, int type)
{
    for (int i = 0; i < GGML_NSYMS; i++)
        if (ggml_syms[i].type == type) return gs->fn[i];
    return NULL;
}

static void test_ggml_zoo_bitexact(void **state)
{
    const ggml_state *gs = *state;
    if (!gs->lib) skip();
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g = NULL;
    if (qb_gguf_open(&ctx, qbt_model_path("qb-docs-26m/qb-docs-26m-zoo.gguf"), &g))
        fail_msg("%s", qb_ctx_errmsg(&ctx));
    int checked = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const qb_gguf_tensor *t = &g->tensors[i];
        const ggml_row_fn fn = ggml_fn(gs, t->type);
        if (!fn) fail_msg("%s: no ggml dequantizer for type %d", t->name, t->type);
        const int64_t n = t->ne[0], rows = t->ne[1];
        const size_t rb = qb_type_row_bytes((qb_type)t->type, n);
        float *y = malloc((size_t)n * sizeof(float)), *w = malloc((size_t)n * sizeof(float));
        assert_true(y && w);
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t *src = (const uint8_t *)t->data + (size_t)r * rb;
            assert_true(qb_dequant_row_ref(t->type, src, y, n));
            fn(src, w, n);
            if (memcmp(y, w, (size_t)n * sizeof(float)) != 0) expect_same(t->name, y, w, n);
        }
        free(y);
        free(w);
        checked++;
    }
    assert_int_equal(checked, ZOO_TENSORS * (ZOO_FORMATS + 1));
    qb_gguf_close(g);
}

/* Blocks of random bytes: every bit of every field exercised, scales of any magnitude
 * (subnormal, inf, NaN halfs included). */
static void test_ggml_random_blocks_bitexact(void **state)
{
    const ggml_state *gs = *state;
    if (!gs->lib) skip();
    enum { NBLK = 2048 };
    uint64_t s = 7;
    for (int i = 0; i < GGML_NSYMS; i++) {
        const int type = ggml_syms[i].type;
        const qb_type_info *ti = qb_type_get(type);
        const int64_t n = (int64_t)NBLK * ti->blck;
        const size_t bytes = (size_t)NBLK * (size_t)ti->size;
        uint8_t *src = malloc(bytes);
        float *y = malloc((size_t)n * sizeof(float)), *w = malloc((size_t)n * sizeof(float));
        assert_true(src && y && w);
        for (size_t k = 0; k < bytes; k++) src[k] = (uint8_t)rng_next(&s);
        assert_true(qb_dequant_row_ref(type, src, y, n));
        gs->fn[i](src, w, n);
        expect_same(ggml_syms[i].sym, y, w, n);
        free(src);
        free(y);
        free(w);
    }
}

int main(void)
{
    const struct CMUnitTest ggml[] = {
        cmocka_unit_test(test_ggml_zoo_bitexact),
        cmocka_unit_test(test_ggml_random_blocks_bitexact),
    };
    return cmocka_run_group_tests_name("ggml", ggml, ggml_setup, ggml_teardown) ? 1 : 0;
}
