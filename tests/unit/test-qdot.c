/* test-qdot.c — packed-weight dot products (qdot) and activation quantizers (quantize_act):
 * the scalar reference against a double-precision computation on dequantized rows, and
 * every vector table this CPU runs (avx2, avx512, avx512vnni) against the reference, for
 * every weight type, at awkward lengths (1, 2, 3, 5, 7, …, 1023 blocks), nc = 1..4 (and 7: the
 * kernels take four rows at a time), activation rows act_stride bytes apart (longer than a
 * row, odd, unaligned). A row's result must not depend on nc (bit for bit), so batched and
 * one-token-at-a-time evaluation agree.
 *
 * Weights are random floats quantized with qb_quant_row_ref, and separately random bytes
 * with sane f16 scales (every code and scale bit pattern). Activations are random floats
 * quantized with the reference activation quantizer. Vector dots must match the reference
 * within a relative tolerance (the integer parts are exact, the float sums differ in order);
 * the vector activation quantizers must write exactly the reference's bytes (they emulate
 * its roundf for Q8_0 / Q8_1; Q8_K rounds half to even in both). */
#include "testutil.h"
#include <math.h>

#include "core/qb.h"
#include "blocks.h"
#include "kernels.h"

static const int wtypes[] = {
    QB_TYPE_Q4_0, QB_TYPE_Q4_1, QB_TYPE_Q5_0, QB_TYPE_Q5_1, QB_TYPE_Q8_0, QB_TYPE_IQ4_NL,
    QB_TYPE_Q2_K, QB_TYPE_Q3_K, QB_TYPE_Q4_K, QB_TYPE_Q5_K, QB_TYPE_Q6_K, QB_TYPE_IQ4_XS,
    QB_TYPE_IQ2_XXS, QB_TYPE_IQ2_XS, QB_TYPE_IQ2_S, QB_TYPE_IQ1_S, QB_TYPE_IQ1_M,
};
#define NWT (int)(sizeof wtypes / sizeof wtypes[0])
static const int act_types[] = {QB_TYPE_Q8_0, QB_TYPE_Q8_1, QB_TYPE_Q8_K};
static const char *isas[] = {"avx2", "avx512", "avx512vnni"};
#define NISA (int)(sizeof isas / sizeof isas[0])
/* lengths in blocks */
static const int nblocks[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 255, 1023};
#define NLEN (int)(sizeof nblocks / sizeof nblocks[0])

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_u64(void) { return qbt_xorshift(&rng); }
static float frand(void) { return qbt_frand(&rng); }

static int blck(int t) { return qb_type_get(t)->blck; }
static size_t row_bytes(int t, int n) { return qb_type_row_bytes((qb_type)t, n); }

/* Activations of n elements with a mix of magnitudes (and some exact ties). */
static void fill_acts(float *x, int n, int flavour)
{
    for (int i = 0; i < n; i++) {
        x[i] = frand() * (i % 97 == 0 ? 8.0f : 1.0f);
        if (flavour == 1) x[i] = (float)((int)(next_u64() % 255) - 127) * 0.5f; /* halves: rounding ties */
    }
}

/* Row of n elements of type t from random floats (flavour 0) or random bytes with sane f16
 * scales (flavour 1). */
static void make_weights(int t, int n, uint8_t *w, int flavour)
{
    const size_t bytes = row_bytes(t, n), bs = (size_t)qb_type_get(t)->size;
    if (flavour == 0) { /* the grid i-quants: with uniform importance */
        float *f = malloc((size_t)n * sizeof *f);
        for (int i = 0; i < n; i++) f[i] = frand() * (i % 61 == 0 ? 3.0f : 1.0f);
        assert_true(qb_quant_row_ref(t, f, w, n));
        free(f);
        return;
    }
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)next_u64();
    int d_off[2] = {0, -1}; /* byte offsets of the f16 fields inside a block */
    switch (t) {
    case QB_TYPE_Q4_1: case QB_TYPE_Q5_1: case QB_TYPE_Q4_K: case QB_TYPE_Q5_K: d_off[1] = 2; break;
    case QB_TYPE_Q2_K: d_off[0] = 80; d_off[1] = 82; break;
    case QB_TYPE_Q3_K: d_off[0] = 108; break;
    case QB_TYPE_Q6_K: d_off[0] = 208; break;
    case QB_TYPE_IQ1_M: d_off[0] = -2; break; /* its f16 scale: the top nibbles of four words */
    default: break;
    }
    for (size_t b = 0; b < bytes / bs; b++)
        for (int k = 0; k < 2; k++) {
            if (d_off[k] == -2) {
                const uint16_t h = qb_f32_to_f16(frand() * 0.01f);
                for (int q = 0; q < 4; q++) {
                    uint8_t *hi = w + b * bs + 48 + 2 * q + 1;
                    *hi = (uint8_t)((*hi & 15) | ((h >> (4 * q)) & 15) << 4);
                }
            }
            if (d_off[k] < 0) continue;
            const uint16_t h = qb_f32_to_f16(frand() * 0.01f);
            memcpy(w + b * bs + d_off[k], &h, 2);
        }
}

/* Dequantized activation row (Q8_1 has no ggml dequantizer: d * q). */
static void dequant_act(int at, const uint8_t *xq, float *x, int n)
{
    if (at != QB_TYPE_Q8_1) {
        assert_true(qb_dequant_row_ref(at, xq, x, n));
        return;
    }
    for (int b = 0; b < n / 32; b++) {
        const qb_block_q8_1 *blk = (const qb_block_q8_1 *)xq + b;
        for (int j = 0; j < 32; j++) x[32 * b + j] = qb_f16_to_f32(blk->d) * (float)blk->qs[j];
    }
}

/* A weight row with 4 quantized activation rows and what the checks need. */
typedef struct {
    int t, at, n;      /* weight type, activation type, row length */
    size_t stride;     /* act_stride: a row plus an odd number of bytes */
    uint8_t *w;        /* weights, at an odd address */
    uint8_t *xq;       /* 4 activation rows, at an odd address */
    float *wf, *xf;    /* dequantized weight row, 4 dequantized activation rows */
    double scale[4];   /* per activation row: sum (|w_i| + max|w|) * |x_i|, a bound for the terms */
    double exact[4];   /* double dot of the dequantized rows */
    double sround[4];  /* Q8_1 only: sum |m| * |s| * 2^-11, the fp16 rounding of s */
    void *wbuf, *xbuf; /* the allocations */
} fixture;

static void fixture_make(fixture *f, int t, int nblk, int flavour)
{
    f->t = t;
    f->at = qb_act_type(t);
    f->n = nblk * blck(t);
    const int n = f->n;
    f->stride = row_bytes(f->at, n) + 37;
    f->wbuf = malloc(row_bytes(t, n) + 1);
    f->xbuf = malloc(f->stride * 3 + row_bytes(f->at, n) + 1); /* ends with the last row (ASan sees overreads) */
    f->w = (uint8_t *)f->wbuf + 1;
    f->xq = (uint8_t *)f->xbuf + 1;
    make_weights(t, n, f->w, flavour);
    f->wf = malloc((size_t)n * sizeof(float));
    f->xf = malloc((size_t)n * 4 * sizeof(float));
    assert_true(qb_dequant_row_ref(t, f->w, f->wf, n));
    const qb_kernel_table *ref = qb_kernels_for("ref");
    float *x = malloc((size_t)n * sizeof *x);
    double wmax = 0;
    for (int i = 0; i < n; i++) wmax = fmax(wmax, fabs(f->wf[i]));
    for (int c = 0; c < 4; c++) {
        fill_acts(x, n, c == 3 ? 1 : 0);
        uint8_t *row = f->xq + c * f->stride;
        if (c < 3) memset(row + row_bytes(f->at, n), 0xA5, 37); /* the gap between rows */
        ref->quantize_act[f->at](x, row, n);
        dequant_act(f->at, row, f->xf + (size_t)c * n, n);
        double s = 0, e = 0, sr = 0;
        for (int i = 0; i < n; i++) {
            const double xi = f->xf[(size_t)c * n + i];
            s += (fabs(f->wf[i]) + wmax) * fabs(xi);
            e += (double)f->wf[i] * xi;
        }
        if (f->at == QB_TYPE_Q8_1)
            for (int b = 0; b < n / 32; b++) {
                uint16_t m, sy;
                memcpy(&m, f->w + (size_t)b * qb_type_get(t)->size + 2, 2);
                memcpy(&sy, row + 36 * b + 2, 2);
                sr += fabs(qb_f16_to_f32(m)) * fabs(qb_f16_to_f32(sy)) / 2048.0;
            }
        f->scale[c] = s;
        f->exact[c] = e;
        f->sround[c] = sr;
    }
    free(x);
}

static void fixture_free(fixture *f)
{
    free(f->wbuf);
    free(f->xbuf);
    free(f->wf);
    free(f->xf);
}

/* Run table t's qdot with nc rows; checks nothing past out[nc-1] is written. */
static void run_qdot(const qb_kernel_table *k, const fixture *f, int nc, const uint8_t *xq, size_t stride, float *out)
{
    for (int c = 0; c < 8; c++) out[c] = -12345.0f;
    k->qdot[f->t](f->n, f->w, xq, stride, nc, out);
    for (int c = nc; c < 8; c++) assert_true(out[c] == -12345.0f);
}

static void test_act_type(void **state)
{
    (void)state;
    assert_int_equal(qb_act_type(QB_TYPE_Q4_0), QB_TYPE_Q8_0);
    assert_int_equal(qb_act_type(QB_TYPE_Q5_0), QB_TYPE_Q8_0);
    assert_int_equal(qb_act_type(QB_TYPE_Q8_0), QB_TYPE_Q8_0);
    assert_int_equal(qb_act_type(QB_TYPE_IQ4_NL), QB_TYPE_Q8_0);
    assert_int_equal(qb_act_type(QB_TYPE_Q4_1), QB_TYPE_Q8_1);
    assert_int_equal(qb_act_type(QB_TYPE_Q5_1), QB_TYPE_Q8_1);
    const int k[] = {QB_TYPE_Q2_K, QB_TYPE_Q3_K, QB_TYPE_Q4_K, QB_TYPE_Q5_K, QB_TYPE_Q6_K, QB_TYPE_IQ4_XS};
    for (int i = 0; i < 6; i++) assert_int_equal(qb_act_type(k[i]), QB_TYPE_Q8_K);
    const int none[] = {QB_TYPE_F32, QB_TYPE_F16, QB_TYPE_BF16, QB_TYPE_Q8_1, QB_TYPE_Q8_K, -1, 39, 1000};
    for (int i = 0; i < 8; i++) assert_int_equal(qb_act_type(none[i]), -1);
}

/* Every table has a dot product for every weight type and a quantizer for every act type. */
static void test_tables_complete(void **state)
{
    (void)state;
    const char *all[] = {"ref", "avx2", "avx512", "avx512vnni"};
    for (int i = 0; i < 4; i++) {
        const qb_kernel_table *k = qb_kernels_for(all[i]);
        if (!k) continue;
        for (int t = 0; t < NWT; t++) assert_non_null(k->qdot[wtypes[t]]);
        for (int a = 0; a < 3; a++) assert_non_null(k->quantize_act[act_types[a]]);
        assert_null(k->qdot[QB_TYPE_F32]);
        assert_null(k->quantize_act[QB_TYPE_Q4_0]);
    }
    print_message("qdot: chose %s\n", qb_kernels()->isa);
}

/* Inputs for the activation quantizers: random, halves (ties), zeros, tiny, one outlier, a
 * negative maximum tied with a positive one. */
static void fill_quant_input(float *x, int n, int kind)
{
    for (int i = 0; i < n; i++) {
        switch (kind) {
        case 0: x[i] = frand(); break;
        case 1: x[i] = (float)((int)(next_u64() % 255) - 127) * 0.5f; break;
        case 2: x[i] = (i / 256) % 2 ? frand() : 0.0f; break;
        case 3: x[i] = frand() * 1e-30f; break;
        case 4: x[i] = frand() * (i % 37 == 5 ? 1000.0f : 0.01f); break;
        default: x[i] = (i % 256 == 3) ? -2.0f : (i % 256 == 9) ? 2.0f : frand(); break;
        }
    }
}

/* The reference quantizers write exactly what qb_quant_row_ref (the ggml-exact spec) writes.
 * Q8_K bsums of an all-zero block are unspecified in ggml: compared only where d != 0. */
static void test_act_quant_ref_vs_spec(void **state)
{
    (void)state;
    const qb_kernel_table *ref = qb_kernels_for("ref");
    const int n = 4096;
    float *x = malloc(n * sizeof *x);
    uint8_t *a = malloc(2 * 5000), *b = a + 5000;
    for (int kind = 0; kind < 6; kind++)
        for (int i = 0; i < 3; i++) {
            const int at = act_types[i];
            fill_quant_input(x, n, kind);
            memset(a, 0, 5000);
            memset(b, 0, 5000);
            ref->quantize_act[at](x, a, n);
            assert_true(qb_quant_row_ref(at, x, b, n));
            if (at != QB_TYPE_Q8_K) {
                assert_memory_equal(a, b, row_bytes(at, n));
                continue;
            }
            for (int blk = 0; blk < n / 256; blk++) {
                const qb_block_q8_K *p = (const qb_block_q8_K *)a + blk, *q = (const qb_block_q8_K *)b + blk;
                assert_memory_equal(p, q, p->d != 0.0f ? sizeof *p : 4 + 256);
            }
        }
    free(x);
    free(a);
}

static void test_act_quant_simd(void **state)
{
    (void)state;
    const qb_kernel_table *ref = qb_kernels_for("ref");
    int checked = 0;
    for (int s = 0; s < NISA; s++) {
        const qb_kernel_table *k = qb_kernels_for(isas[s]);
        if (!k) continue;
        for (int li = 0; li < NLEN; li++)
            for (int i = 0; i < 3; i++) {
                const int at = act_types[i], n = nblocks[li] * blck(at);
                const size_t bytes = row_bytes(at, n);
                float *xb = malloc(((size_t)n + 1) * sizeof *xb), *x = xb + 1; /* unaligned */
                uint8_t *a = malloc(bytes + 1), *b = malloc(bytes + 1);
                for (int kind = 0; kind < 6; kind++) {
                    fill_quant_input(x, n, kind);
                    memset(a, 0x5A, bytes + 1);
                    memset(b, 0x5A, bytes + 1);
                    ref->quantize_act[at](x, a + 1, n);
                    k->quantize_act[at](x, b + 1, n);
                    if (memcmp(a, b, bytes + 1) != 0)
                        fail_msg("%s quantize_act[%s] n=%d input %d differs from the reference", isas[s],
                                 qb_type_get(at)->name, n, kind);
                    checked++;
                }
                free(xb);
                free(a);
                free(b);
            }
    }
    print_message("activation quantizers: %d rows byte-identical to the reference\n", checked);
}

/* The reference dot products against a double computation on the dequantized rows. */
static void test_qdot_ref_vs_double(void **state)
{
    (void)state;
    const qb_kernel_table *ref = qb_kernels_for("ref");
    for (int ti = 0; ti < NWT; ti++)
        for (int li = 0; li < NLEN; li += 2)
            for (int flavour = 0; flavour < 2; flavour++) {
                fixture f;
                fixture_make(&f, wtypes[ti], nblocks[li], flavour);
                float out[8];
                run_qdot(ref, &f, 4, f.xq, f.stride, out);
                for (int c = 0; c < 4; c++) {
                    const double tol = 1e-7 * f.scale[c] + 1.5 * f.sround[c] + 1e-30;
                    if (fabs(out[c] - f.exact[c]) > tol)
                        fail_msg("ref qdot[%s] n=%d row %d: %.9g vs double %.9g (tol %.3g)", qb_type_get(f.t)->name,
                                 f.n, c, out[c], f.exact[c], tol);
                }
                fixture_free(&f);
            }
}

/* Vector dots against the reference for nc = 1..4 (starting at different rows), and each
 * row against its own nc = 1 result. */
static void check_simd(int flavour)
{
    const qb_kernel_table *ref = qb_kernels_for("ref");
    int checked = 0;
    for (int ti = 0; ti < NWT; ti++)
        for (int li = 0; li < NLEN; li++) {
            fixture f;
            fixture_make(&f, wtypes[ti], nblocks[li], flavour);
            float want[8];
            run_qdot(ref, &f, 4, f.xq, f.stride, want);
            for (int s = 0; s < NISA; s++) {
                const qb_kernel_table *k = qb_kernels_for(isas[s]);
                if (!k) continue;
                float one[4]; /* each row alone: nc = 1 */
                for (int c = 0; c < 4; c++) {
                    float o[8];
                    run_qdot(k, &f, 1, f.xq + c * f.stride, f.stride, o);
                    one[c] = o[0];
                }
                for (int nc = 1; nc <= 4; nc++)
                    for (int first = 0; first + nc <= 4; first += 4 - nc > 0 ? 4 - nc : 1) {
                        float got[8];
                        run_qdot(k, &f, nc, f.xq + first * f.stride, f.stride, got);
                        for (int c = 0; c < nc; c++) {
                            if (got[c] != one[first + c]) /* a row's result does not depend on nc */
                                fail_msg("%s qdot[%s] n=%d nc=%d row %d: %.9g, alone %.9g", isas[s], qb_type_get(f.t)->name,
                                         f.n, nc, first + c, got[c], one[first + c]);
                            const double tol = 2e-7 * f.scale[first + c] + 1e-30;
                            if (fabs((double)got[c] - want[first + c]) > tol)
                                fail_msg("%s qdot[%s] (%s weights) n=%d nc=%d row %d: %.9g vs reference %.9g (tol %.3g)",
                                         isas[s], qb_type_get(f.t)->name, flavour ? "random-byte" : "quantized", f.n, nc,
                                         first + c, got[c], want[first + c], tol);
                        }
                        checked++;
                    }
            }
            fixture_free(&f);
        }
    print_message("qdot (%s weights): %d vector calls matched the reference\n", flavour ? "random-byte" : "quantized", checked);
}

static void test_qdot_simd_quantized(void **state)
{
    (void)state;
    check_simd(0);
}

static void test_qdot_simd_random_bytes(void **state)
{
    (void)state;
    check_simd(1);
}

/* nc > 4: the kernels work through the rows four at a time; each result equals that row's
 * nc = 1 result exactly. */
static void test_qdot_many_rows(void **state)
{
    (void)state;
    const qb_kernel_table *ref = qb_kernels_for("ref");
    for (int ti = 0; ti < NWT; ti++) {
        const int t = wtypes[ti], at = qb_act_type(t), n = 5 * blck(t) * (blck(t) == 32 ? 8 : 1);
        const size_t stride = row_bytes(at, n) + 3;
        uint8_t *w = malloc(row_bytes(t, n)), *xq = malloc(stride * 7);
        float *x = malloc((size_t)n * sizeof *x);
        make_weights(t, n, w, 0);
        for (int c = 0; c < 7; c++) {
            fill_acts(x, n, 0);
            ref->quantize_act[at](x, xq + c * stride, n);
        }
        const char *all[] = {"ref", "avx2", "avx512", "avx512vnni"};
        for (int s = 0; s < 4; s++) {
            const qb_kernel_table *k = qb_kernels_for(all[s]);
            if (!k) continue;
            float got[8], one;
            got[7] = -1.0f;
            k->qdot[t](n, w, xq, stride, 7, got);
            assert_true(got[7] == -1.0f);
            for (int c = 0; c < 7; c++) {
                k->qdot[t](n, w, xq + c * stride, stride, 1, &one);
                if (got[c] != one) fail_msg("%s qdot[%s] nc=7 row %d: %.9g, alone %.9g", all[s], qb_type_get(t)->name, c, got[c], one);
            }
        }
        free(w);
        free(xq);
        free(x);
    }
}

/* The prompt-processing GEMM tiles (gemm_q, where a table has them) against the reference
 * qdot: nr = 1..QB_GEMM_ROWS weight rows (rows an odd number of bytes apart: the tail path
 * below 16) × nc = 1..QB_GEMM_TOKENS tokens, at the awkward lengths, quantized and
 * random-byte weights; nothing outside the nr × nc outputs is written. Activations go
 * through the table's own tile quantizer, which must reproduce the reference Q8_0 quants
 * (else the sums would differ by far more than the tolerance). */
static void test_gemm_tiles(void **state)
{
    (void)state;
    enum { R = QB_GEMM_ROWS, C = QB_GEMM_TOKENS, LD = R + 1 };
    const qb_kernel_table *ref = qb_kernels_for("ref");
    const char *all[] = {"ref", "avx2", "avx512", "avx512vnni"};
    int checked = 0;
    for (int s = 0; s < 4; s++) {
        const qb_kernel_table *k = qb_kernels_for(all[s]);
        if (!k) continue;
        for (int ti = 0; ti < NWT; ti++) {
            const int t = wtypes[ti];
            if (!k->gemm_q[t]) continue;
            assert_non_null(k->quantize_act_tile);
            assert_int_equal(qb_act_type(t), QB_TYPE_Q8_0);
            for (int li = 0; li < NLEN; li++)
                for (int flavour = 0; flavour < 2; flavour++) {
                    const int n = nblocks[li] * 32;
                    const size_t wrow = row_bytes(t, n) + 5, arow = row_bytes(QB_TYPE_Q8_0, n);
                    const size_t ab = qb_act_tile_row_bytes(n);
                    uint8_t *w = malloc(R * wrow), *xq = malloc(C * arow), *xa = malloc(C * ab);
                    float *x = malloc((size_t)n * sizeof *x), *wf = malloc((size_t)n * sizeof *wf);
                    float *xf = malloc((size_t)C * n * sizeof *xf);
                    double scale[R][C];
                    float want[R][C];
                    for (int r = 0; r < R; r++) make_weights(t, n, w + r * wrow, flavour);
                    for (int c = 0; c < C; c++) {
                        fill_acts(x, n, c == C - 1);
                        ref->quantize_act[QB_TYPE_Q8_0](x, xq + c * arow, n);
                        k->quantize_act_tile(x, xa + c * ab, n);
                        assert_true(qb_dequant_row_ref(QB_TYPE_Q8_0, xq + c * arow, xf + (size_t)c * n, n));
                    }
                    for (int r = 0; r < R; r++) {
                        for (int c0 = 0; c0 < C; c0 += 4) ref->qdot[t](n, w + r * wrow, xq + c0 * arow, arow, 4, want[r] + c0);
                        assert_true(qb_dequant_row_ref(t, w + r * wrow, wf, n));
                        for (int c = 0; c < C; c++) {
                            double sc = 0;
                            for (int i = 0; i < n; i++) sc += fabs((double)wf[i] * xf[(size_t)c * n + i]);
                            scale[r][c] = sc;
                        }
                    }
                    for (int nr = 1; nr <= R; nr += nr < 3 || nr >= R - 2 ? 1 : 4)
                        for (int nc = 1; nc <= C; nc++) {
                            float y[(C + 1) * LD];
                            for (int i = 0; i < (C + 1) * LD; i++) y[i] = -12345.0f;
                            k->gemm_q[t](n, w, wrow, nr, xa, ab, nc, y, LD);
                            for (int c = 0; c <= C; c++)
                                for (int r = 0; r < LD; r++) {
                                    const float got = y[c * LD + r];
                                    if (r >= nr || c >= nc) {
                                        if (got != -12345.0f) fail_msg("%s gemm[%s] wrote outside %dx%d at (%d,%d)", all[s], qb_type_get(t)->name, nr, nc, r, c);
                                        continue;
                                    }
                                    const double tol = 4e-7 * scale[r][c] + 1e-30;
                                    if (fabs((double)got - want[r][c]) > tol)
                                        fail_msg("%s gemm[%s] (%s weights) n=%d nr=%d nc=%d (%d,%d): %.9g vs reference %.9g (tol %.3g)",
                                                 all[s], qb_type_get(t)->name, flavour ? "random-byte" : "quantized", n, nr, nc, r, c,
                                                 got, want[r][c], tol);
                                }
                            checked++;
                        }
                    free(w);
                    free(xq);
                    free(xa);
                    free(x);
                    free(xf);
                    free(wf);
                }
        }
    }
    print_message("gemm tiles: %d calls matched the reference\n", checked);
}

/* The generation kernels (gemv_q, where a table has them) against the reference qdot: one
 * weight row (at an odd address, ending where its allocation ends, so ASan sees any read past
 * it) at the awkward lengths, which cross the kernels' groups of 32 blocks, and at k·32 + 16
 * blocks (a partial group of 16 has its own code path), quantized and random-byte weights,
 * activations through the table's own gemv layout. */
static const int gemv_extra[] = {48, 80, 176};
#define NGEMV (NLEN + (int)(sizeof gemv_extra / sizeof gemv_extra[0]))
static void test_gemv(void **state)
{
    (void)state;
    const qb_kernel_table *ref = qb_kernels_for("ref");
    const char *all[] = {"ref", "avx2", "avx512", "avx512vnni"};
    int checked = 0;
    for (int s = 0; s < 4; s++) {
        const qb_kernel_table *k = qb_kernels_for(all[s]);
        if (!k) continue;
        for (int ti = 0; ti < NWT; ti++) {
            const int t = wtypes[ti];
            if (!k->gemv_q[t]) continue;
            assert_non_null(k->quantize_act_gemv[t]);
            assert_int_equal(qb_act_type(t), QB_TYPE_Q8_0);
            for (int li = 0; li < NGEMV; li++)
                for (int flavour = 0; flavour < 2; flavour++)
                    for (int c = 0; c < 2; c++) {
                        const int n = (li < NLEN ? nblocks[li] : gemv_extra[li - NLEN]) * 32;
                        const size_t wrow = row_bytes(t, n), arow = row_bytes(QB_TYPE_Q8_0, n);
                        uint8_t *wbuf = malloc(wrow + 1), *xq = malloc(arow), *xg = malloc(qb_act_gemv_row_bytes(n));
                        uint8_t *w = wbuf + 1;
                        float *x = malloc((size_t)n * sizeof *x), *wf = malloc((size_t)n * sizeof *wf),
                              *xf = malloc((size_t)n * sizeof *xf);
                        make_weights(t, n, w, flavour);
                        fill_acts(x, n, c);
                        ref->quantize_act[QB_TYPE_Q8_0](x, xq, n);
                        k->quantize_act_gemv[t](x, xg, n);
                        float want;
                        ref->qdot[t](n, w, xq, arow, 1, &want);
                        assert_true(qb_dequant_row_ref(t, w, wf, n));
                        assert_true(qb_dequant_row_ref(QB_TYPE_Q8_0, xq, xf, n));
                        double sc = 0;
                        for (int i = 0; i < n; i++) sc += fabs((double)wf[i] * xf[i]);
                        const float got = k->gemv_q[t](n, w, xg);
                        if (fabs((double)got - want) > 4e-7 * sc + 1e-30)
                            fail_msg("%s gemv[%s] (%s weights) n=%d: %.9g vs reference %.9g (tol %.3g)", all[s],
                                     qb_type_get(t)->name, flavour ? "random-byte" : "quantized", n, got, want, 4e-7 * sc);
                        checked++;
                        free(wbuf);
                        free(xq);
                        free(xg);
                        free(x);
                        free(wf);
                        free(xf);
                    }
        }
    }
    print_message("gemv: %d calls matched the reference\n", checked);
    if (qb_kernels_for("avx512vnni")) assert_true(checked > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_act_type),
        cmocka_unit_test(test_tables_complete),
        cmocka_unit_test(test_act_quant_ref_vs_spec),
        cmocka_unit_test(test_act_quant_simd),
        cmocka_unit_test(test_qdot_ref_vs_double),
        cmocka_unit_test(test_qdot_simd_quantized),
        cmocka_unit_test(test_gemv),
        cmocka_unit_test(test_qdot_simd_random_bytes),
        cmocka_unit_test(test_qdot_many_rows),
        cmocka_unit_test(test_gemm_tiles),
    };
    return cmocka_run_group_tests_name("qdot", tests, NULL, NULL);
}
