/* fuzz-tq-iq3.c — libFuzzer target for the TQ1_0 / TQ2_0 / IQ3_XXS / IQ3_S kernels on
 * arbitrary bytes, the way a GGUF file's tensor data reaches them: the input read as blocks of
 * each type is dequantized by the reference and by every vector table this CPU runs (the same
 * bits, NaN for NaN), multiplied with Q8_K activations by every table (no crash, finite inputs
 * give sums that agree within the float-order bound), and read as floats (NaN, inf, huge and
 * subnormal values included) it is quantized by the reference and the vector quantizers with
 * and without importance weights (the same bytes). Built and run by scripts/fuzz.sh. */
#include "kernels.h"
#include "blocks.h"
#include "tq_iq3.h"
#include "qb_types.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const int types[] = {QB_TYPE_TQ1_0, QB_TYPE_TQ2_0, QB_TYPE_IQ3_XXS, QB_TYPE_IQ3_S};
static const char *const isas[] = {"avx2", "avx512", "avx512vnni"};

static bool same_bits(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) && isnan(b[i])) continue;
        uint32_t x, y;
        memcpy(&x, &a[i], 4);
        memcpy(&y, &b[i], 4);
        if (x != y) return false;
    }
    return true;
}

static void blocks(const uint8_t *data, size_t size)
{
    const qb_kernel_table *ref = qb_kernels_for("ref");
    for (int t = 0; t < 4; t++) {
        const size_t bs = (size_t)qb_type_get(types[t])->size;
        const int nb = (int)(size / bs < 8 ? size / bs : 8);
        if (nb == 0) continue;
        const int n = nb * 256;
        float *want = malloc((size_t)n * sizeof(float)), *got = malloc((size_t)n * sizeof(float));
        uint8_t *act = malloc((size_t)nb * sizeof(qb_block_q8_K));
        if (!want || !got || !act) abort();
        if (!qb_dequant_row_ref(types[t], data, want, n)) __builtin_trap();
        /* activations: a smooth row, so that finite weights give a meaningful tolerance */
        for (int i = 0; i < n; i++) got[i] = sinf((float)i * 0.37f);
        ref->quantize_act[QB_TYPE_Q8_K](got, act, n);
        float r;
        ref->qdot[types[t]](n, data, act, 0, 1, &r);
        for (int a = 0; a < 3; a++) {
            const qb_kernel_table *k = qb_kernels_for(isas[a]);
            if (!k) continue;
            if (!k->dequant_row(types[t], data, got, n) || !same_bits(got, want, (size_t)n)) __builtin_trap();
            float v;
            k->qdot[types[t]](n, data, act, 0, 1, &v);
            double mag = 0;
            for (int i = 0; i < n; i++) mag += fabs((double)want[i]) * 127.0;
            if (isfinite(mag) && isfinite(r) && fabs((double)v - r) > 1e-4 * mag * fabs(((const qb_block_q8_K *)act)->d) + 1e-6)
                __builtin_trap();
        }
        free(want);
        free(got);
        free(act);
    }
}

static void quantizers(const uint8_t *data, size_t size)
{
    const size_t n = size / sizeof(float) / 256 * 256;
    if (n == 0) return;
    const size_t nn = n > 1024 ? 1024 : n;
    float *x = malloc(nn * sizeof(float)), *qw = malloc(nn * sizeof(float));
    uint8_t *a = malloc(nn), *b = malloc(nn);
    if (!x || !qw || !a || !b) abort();
    memcpy(x, data, nn * sizeof(float));
    for (size_t i = 0; i < nn; i++) qw[i] = fabsf(x[(i * 7) % nn]); /* importance from the input too */
    for (int t = 0; t < 4; t++)
        for (int w = 0; w < 2; w++) {
            if (!qb_quant_tq_iq3_ref(types[t], x, a, 1, (int64_t)nn, w ? qw : NULL)) __builtin_trap();
            const size_t rb = qb_type_row_bytes((qb_type)types[t], (int64_t)nn);
            if (qb_kernels_for("avx2")) {
                if (!qb_quant_tq_iq3_avx2(types[t], x, b, 1, (int64_t)nn, w ? qw : NULL) || memcmp(a, b, rb)) __builtin_trap();
            }
            if (qb_kernels_for("avx512")) {
                if (!qb_quant_tq_iq3_avx512(types[t], x, b, 1, (int64_t)nn, w ? qw : NULL) || memcmp(a, b, rb)) __builtin_trap();
            }
            float *y = malloc(nn * sizeof(float));
            if (!y) abort();
            if (!qb_dequant_row_ref(types[t], a, y, (int64_t)nn)) __builtin_trap();
            free(y);
        }
    free(x);
    free(qw);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    blocks(data, size);
    quantizers(data, size);
    return 0;
}
