/* test-iq-model.c — a whole model quantized to an IQ2 / IQ1 file type, tensor by tensor,
 * against the file llama-quantize --imatrix (c392e50) wrote: every tensor's type from our mix
 * (qb_ftype_tensor_type) equals llama-quantize's, and every tensor in a grid i-quant type
 * (quantized by us from the F16 source with qb_imatrix_weights' importance), and every
 * quantized tensor without an importance entry (token_embd), is byte-identical. Tensors of
 * other types that llama-quantize weighted with the matrix (Q2_K / Q4_K / Q5_K) are counted
 * but not compared here (the weighted K-quants are another file's work).
 *
 * Needs the files tests/cli/test-iq-grid.sh makes, named by QB_IQ_F16 (the F16 GGUF),
 * QB_IQ_IMATRIX (llama-imatrix's .dat), QB_IQ_LLAMA (llama-quantize's output) and QB_IQ_FTYPE;
 * skipped (saying so) when they are not set. */
#include "testutil.h"

#include "core/qb.h"
#include "core/calib/imatrix.h"
#include "core/model/model.h"
#include "core/quant/ftype.h"
#include "core/util/gguf.h"
#include "kernels.h"

static bool grid_iq(int t)
{
    return t == QB_TYPE_IQ2_XXS || t == QB_TYPE_IQ2_XS || t == QB_TYPE_IQ2_S || t == QB_TYPE_IQ1_S || t == QB_TYPE_IQ1_M;
}

static void test_against_llama_quantize(void **state)
{
    (void)state;
    const char *f16 = getenv("QB_IQ_F16"), *imf = getenv("QB_IQ_IMATRIX"), *lf = getenv("QB_IQ_LLAMA"),
               *ftn = getenv("QB_IQ_FTYPE");
    if (!f16 || !imf || !lf || !ftn) {
        print_message("QB_IQ_F16 / QB_IQ_IMATRIX / QB_IQ_LLAMA / QB_IQ_FTYPE not set: run by tests/cli/test-iq-grid.sh\n");
        skip();
    }
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    qb_gguf *src = NULL, *ref = NULL;
    qb_imatrix *im = NULL;
    if (qb_model_open(&ctx, f16, NULL, &m) || qb_gguf_open(&ctx, f16, &src) || qb_gguf_open(&ctx, lf, &ref) ||
        qb_imatrix_load(&ctx, imf, &im))
        fail_msg("%s", qb_ctx_errmsg(&ctx));
    const qb_ftype *ft = qb_ftype_lookup(ftn);
    assert_non_null(ft);
    qb_mix_state mix = qb_mix_state_for_model(m);
    int same_type = 0, identical = 0, not_compared = 0;
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        const qb_gguf_tensor *t = &src->tensors[i], *r = NULL;
        for (uint64_t j = 0; j < ref->n_tensors && !r; j++)
            if (!strcmp(ref->tensors[j].name, t->name)) r = &ref->tensors[j];
        if (!r) fail_msg("%s: not in %s", t->name, lf);
        qb_type want = (qb_type)t->type;
        if (qb_ftype_quantizable(t->name, t->n_dims) &&
            qb_ftype_tensor_type(&ctx, ft, false, &mix, t->name, t->ne[0], &want) != QB_OK)
            fail_msg("%s", qb_ctx_errmsg(&ctx));
        if ((int)want != r->type)
            fail_msg("%s: our mix gives %s, llama-quantize wrote %s", t->name, qb_type_get(want)->name, qb_type_get(r->type)->name);
        same_type++;
        if (want == (qb_type)t->type) continue; /* kept as it was */
        const int64_t n = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
        const float *w = qb_imatrix_weights(im, t->name, n);
        if (!grid_iq(want) && w) {
            not_compared++;
            continue;
        }
        const size_t rb = qb_type_row_bytes(want, n);
        float *x = malloc((size_t)n * sizeof *x);
        uint8_t *q = malloc(rb);
        assert_true(x && q && t->type == QB_TYPE_F16);
        for (int64_t row = 0; row < rows; row++) {
            const uint16_t *h = (const uint16_t *)t->data + row * n;
            for (int64_t k = 0; k < n; k++) x[k] = qb_f16_to_f32(h[k]);
            assert_true(grid_iq(want) ? qb_quant_row_iq_ref(want, x, q, n, w) : qb_quant_row_ref(want, x, q, n));
            const uint8_t *lq = (const uint8_t *)r->data + (size_t)row * rb;
            if (memcmp(q, lq, rb)) {
                size_t b = 0;
                while (q[b] == lq[b]) b++;
                fail_msg("%s (%s%s): row %lld differs at byte %zu: 0x%02x, llama-quantize 0x%02x", t->name,
                         qb_type_get(want)->name, w ? ", with importance" : "", (long long)row, b, q[b], lq[b]);
            }
        }
        free(x);
        free(q);
        identical++;
    }
    print_message("%s: %d tensors of llama-quantize's type, %d quantized tensors byte-identical, %d weighted K-quant "
                  "tensors not compared here\n", ftn, same_type, identical, not_compared);
    assert_true(identical > 0);
    qb_imatrix_free(im);
    qb_gguf_close(src);
    qb_gguf_close(ref);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_against_llama_quantize)};
    return cmocka_run_group_tests_name("iq-model", tests, NULL, NULL) ? 1 : 0;
}
