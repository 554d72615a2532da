/* bench_qdot.c — micro-benchmark of the packed-weight dot products (kernels.h qdot[]): for
 * every weight type and every kernel table this CPU runs, one thread multiplies a matrix of
 * 8192 rows × 4096 elements with nc = 1 activation row (the generation path) and nc = 4 (the
 * prompt-processing tile), and prints GB/s of weights streamed (matrix bytes / time, best of
 * the repetitions). Not a test: numbers depend on the machine and its load.
 *
 *   cc -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Isrc -Ikernels tests/bench/bench_qdot.c build/libqb.a \
 *      $(pkg-config --libs cairo jansson libpcre2-8 lua5.4 ncursesw readline) -lm -lpthread
 *   ./a.out [reps] [TYPE…]        (reps default 5; the scalar "ref" table runs once)
 *
 * Then the non-ggml formats (INT, NF4, FP8, MXFP4: kernels' fmt_tile with f32 activations):
 * GB/s of weights with one activation row (nr = 4 rows per call, generation) and GMAC/s of
 * the 4 × 4 tile (prompt processing); "ref" is the spec's path, dequantize 4 rows then the
 * f32 tile. For INT formats also the integer path the forward pass takes (int_tile_q8, 8-bit
 * activations), the same two figures. TYPE arguments filter these by format name too. */
#include "core/qb.h"
#include "core/quant/format_traits.h"
#include "kernels.h"
#include "fmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { N = 4096, ROWS = 8192, DISTINCT = 64 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* Seconds for one pass over all rows with nc activation rows, best of reps. */
static double time_pass(const qb_kernel_table *k, int t, const uint8_t *w, size_t rb, const uint8_t *xq, size_t ast,
                        int nc, int reps, float *out)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        for (int i = 0; i < ROWS; i++) k->qdot[t](N, w + (size_t)i * rb, xq, ast, nc, out + (size_t)i * 4);
        const double dt = now() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

/* Seconds for one pass of the GEMM tile (QB_GEMM_ROWS rows × QB_GEMM_TOKENS tokens per call), best of reps. */
static double time_gemm(const qb_kernel_table *k, int t, const uint8_t *w, size_t rb, const uint8_t *xa, size_t ab,
                        int reps, float *out)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        for (int i = 0; i < ROWS; i += QB_GEMM_ROWS)
            k->gemm_q[t](N, w + (size_t)i * rb, rb, QB_GEMM_ROWS, xa, ab, QB_GEMM_TOKENS, out + i, ROWS);
        const double dt = now() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

/* Seconds for one pass of the generation kernel (gemv_q, one row per call), best of reps. */
static double time_gemv(const qb_kernel_table *k, int t, const uint8_t *w, size_t rb, const uint8_t *xg, int reps,
                        float *out)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        for (int i = 0; i < ROWS; i++) out[i] = k->gemv_q[t](N, w + (size_t)i * rb, xg);
        const double dt = now() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

/* Seconds for one pass of the format's tile entry for table k (its row of the format table)
 * over the matrix with nc activation rows, best of reps. No entry: the scalar path
 * (dequantize 4 rows, then tile_f32). */
static double time_fmt(const qb_kernel_table *k, const qb_format *f, const uint8_t *w, size_t rb, const float *x, int nc,
                       int reps, float *out, float *buf)
{
    double best = 1e30;
    qb_fmt_params pp;
    qb_fmt_tile_fn tile = NULL;
    const qb_fmt_params *p = &pp;
    if (!qb_format_kernels(f, k, &pp, &tile)) tile = NULL;
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        for (int i = 0; i < ROWS; i += 4) {
            if (tile) {
                tile(p, N, w + (size_t)i * rb, rb, 4, x, N, nc, out + i, ROWS);
                continue;
            }
            for (int j = 0; j < 4; j++) qb_dequantize_row(f, w + (size_t)(i + j) * rb, buf + (size_t)j * N, N);
            k->tile_f32(N, buf, N, 4, x, N, nc, out + i, ROWS);
        }
        const double dt = now() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

/* Seconds for one pass of the integer path (int_tile_q8, 4 rows per call) with nc tokens of
 * 8-bit activations, best of reps; < 0 where the table or the format has none. */
static double time_int(const qb_kernel_table *k, const qb_fmt_params *p, const uint8_t *w, size_t rb, const uint8_t *act,
                       int nc, int reps, float *out)
{
    if (!k->int_tile_q8 || !qb_int_q8_supported(p, N)) return -1;
    const size_t ab = qb_int_act_row_bytes(N);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        for (int i = 0; i < ROWS; i += 4) k->int_tile_q8(p, N, w + (size_t)i * rb, rb, 4, act, ab, nc, out + i, ROWS);
        const double dt = now() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

static void bench_formats(int argc, char **argv, int reps)
{
    const char *names[] = {"int8-channel", "int8-g128", "int6-g128", "int5-g64-asym", "int4-tensor", "int4-channel",
                           "int4-g32", "int4-g128", "int4-g128-asym", "int3-g128", "int2-g64", "int2-g64-asym", "nf4", "nf4-dq",
                           "fp8-e4m3", "fp8-e5m2-channel", "mxfp4", "nvfp4"};
    const char *isas[] = {"ref", "avx2", "avx512", "avx512vnni"};
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    float *src = malloc((size_t)N * 64 * sizeof *src), *x = malloc((size_t)N * 4 * sizeof *x);
    float *out = malloc((size_t)ROWS * 4 * sizeof *out), *buf = malloc((size_t)N * 4 * sizeof *buf);
    for (int j = 0; j < N * 64; j++) src[j] = frand();
    for (int j = 0; j < N * 4; j++) x[j] = frand();
    uint8_t *act = malloc(qb_int_act_row_bytes(N) * 4), *q8 = malloc(qb_type_row_bytes(QB_TYPE_Q8_0, N));
    for (int c = 0; c < 4; c++) {
        qb_kernels_for("ref")->quantize_act[QB_TYPE_Q8_0](x + (size_t)c * N, q8, N);
        qb_int_act_from_q8_0(N, q8, act + (size_t)c * qb_int_act_row_bytes(N));
    }
    printf("\nnon-ggml formats: %d rows x %d elements, one thread: GB/s of weights with 1 activation row, GMAC/s of\n"
           "the 4 rows x 4 tokens tile (best of %d; ref once). fmt_tile: weights decoded to f32 times f32 activations\n"
           "(ref = dequantize rows + f32 tile); int8-act: INT weights through int_tile_q8 (integer dot with 8-bit\n"
           "activations, what the forward pass uses for INT; avx512vnni = the AVX-512 fmt_tile with VNNI int8-act)\n",
           ROWS, N, reps);
    printf("%-18s %6s %-11s %9s %11s %13s %15s\n", "format", "bpw", "isa", "GB/s", "tile GMAC", "int8-act GB/s",
           "int8-act GMAC");
    for (size_t fi = 0; fi < sizeof names / sizeof names[0]; fi++) {
        if (argc > 2) {
            int want = 0;
            for (int a = 2; a < argc; a++) want |= strcasecmp(argv[a], names[fi]) == 0;
            if (!want) continue;
        }
        qb_format f;
        if (qb_format_parse(&ctx, names[fi], &f) != QB_OK) continue;
        qb_fmt_params p = {.bits = f.bits, .group = f.group, .asym = f.asym, .dq = f.double_quant};
        const bool int_grid = qb_format_traits_of(&f)->act == QB_FMT_ACT_INT_Q8;
        const size_t rb = qb_format_row_bytes(&f, N);
        uint8_t *w = malloc(rb * ROWS);
        if (qb_quantize_matrix(&ctx, &f, src, 64, N, w, NULL) != QB_OK) { free(w); continue; }
        for (int i = 64; i < ROWS; i++) memcpy(w + (size_t)i * rb, w + (size_t)(i % 64) * rb, rb);
        for (size_t s = 0; s < sizeof isas / sizeof isas[0]; s++) {
            const qb_kernel_table *k = qb_kernels_for(isas[s]);
            if (!k) continue;
            const int r = s == 0 ? 1 : reps;
            time_fmt(k, &f, w, rb, x, 1, 1, out, buf);
            const double t1 = time_fmt(k, &f, w, rb, x, 1, r, out, buf);
            const double t4 = time_fmt(k, &f, w, rb, x, 4, r, out, buf);
            char i1[16] = "-", i4[16] = "-";
            if (int_grid && time_int(k, &p, w, rb, act, 1, 1, out) > 0) {
                snprintf(i1, sizeof i1, "%.2f", (double)rb * ROWS / 1e9 / time_int(k, &p, w, rb, act, 1, r, out));
                snprintf(i4, sizeof i4, "%.1f", 4.0 * N * ROWS / 1e9 / time_int(k, &p, w, rb, act, 4, r, out));
            }
            printf("%-18s %6.3f %-11s %9.2f %11.1f %13s %15s\n", names[fi], qb_format_bpw(&f, N), isas[s],
                   (double)rb * ROWS / 1e9 / t1, 4.0 * N * ROWS / 1e9 / t4, i1, i4);
            fflush(stdout);
        }
        free(w);
    }
    free(src);
    free(x);
    free(out);
    free(buf);
    free(act);
    free(q8);
}

int main(int argc, char **argv)
{
    const int reps = argc > 1 ? atoi(argv[1]) : 5;
    const int types[] = {QB_TYPE_Q4_0, QB_TYPE_Q4_1, QB_TYPE_Q5_0, QB_TYPE_Q5_1, QB_TYPE_Q8_0, QB_TYPE_IQ4_NL,
                         QB_TYPE_Q2_K, QB_TYPE_Q3_K, QB_TYPE_Q4_K, QB_TYPE_Q5_K, QB_TYPE_Q6_K, QB_TYPE_IQ4_XS,
                         QB_TYPE_IQ3_S, QB_TYPE_IQ3_XXS, QB_TYPE_TQ2_0, QB_TYPE_TQ1_0,
                         QB_TYPE_IQ2_XXS, QB_TYPE_IQ2_XS, QB_TYPE_IQ2_S, QB_TYPE_IQ1_S, QB_TYPE_IQ1_M};
    const char *isas[] = {"ref", "avx2", "avx512", "avx512vnni"};
    float *src = malloc(N * sizeof *src), *out = malloc((size_t)ROWS * QB_GEMM_TOKENS * sizeof *out);
    printf("qdot: %d rows x %d elements, one thread, GB/s of weights (best of %d); prompt tiles in\n"
           "GMAC/s (multiply-adds): qdot with 4 tokens, and the GEMM tile (16 rows x 16 tokens) where the table has one;\n"
           "gemv: GB/s of the one-token generation kernel where the table has one (else generation uses qdot nc=1)\n",
           ROWS, N, reps);
    printf("%-7s %-11s %9s %9s %11s %11s %9s\n", "type", "isa", "nc=1", "nc=4", "qdot4 GMAC", "gemm GMAC", "gemv");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const int t = types[ti], at = qb_act_type(t);
        if (argc > 2) {
            int want = 0;
            for (int a = 2; a < argc; a++) want |= strcasecmp(argv[a], qb_type_get(t)->name) == 0;
            if (!want) continue;
        }
        const size_t rb = qb_type_row_bytes((qb_type)t, N), ast = qb_type_row_bytes((qb_type)at, N);
        const size_t ab = qb_act_tile_row_bytes(N);
        uint8_t *w = malloc(rb * ROWS), *xq = malloc(ast * 4), *xa = malloc(ab * QB_GEMM_TOKENS), *xg = malloc(qb_act_gemv_row_bytes(N));
        for (int i = 0; i < DISTINCT; i++) { /* quantizing 8192 rows with the scalar spec is slow: repeat 64 */
            for (int j = 0; j < N; j++) src[j] = frand();
            qb_quant_row_ref(t, src, w + (size_t)i * rb, N);
        }
        for (int i = DISTINCT; i < ROWS; i++) memcpy(w + (size_t)i * rb, w + (size_t)(i % DISTINCT) * rb, rb);
        for (int c = 0; c < 4; c++) {
            for (int j = 0; j < N; j++) src[j] = frand();
            qb_kernels_for("ref")->quantize_act[at](src, xq + c * ast, N);
        }
        float *srcs = malloc((size_t)N * QB_GEMM_TOKENS * sizeof *srcs);
        for (int j = 0; j < N * QB_GEMM_TOKENS; j++) srcs[j] = frand();
        for (size_t s = 0; s < sizeof isas / sizeof isas[0]; s++) {
            const qb_kernel_table *k = qb_kernels_for(isas[s]);
            if (!k || !k->qdot[t]) continue;
            const int r = s == 0 ? 1 : reps;
            time_pass(k, t, w, rb, xq, ast, 1, 1, out); /* warm up */
            const double t1 = time_pass(k, t, w, rb, xq, ast, 1, r, out);
            const double t4 = time_pass(k, t, w, rb, xq, ast, 4, r, out);
            const double gb = (double)rb * ROWS / 1e9, gmac = (double)N * ROWS / 1e9;
            char gm[16] = "-", gv[16] = "-";
            if (k->gemm_q[t]) {
                for (int c = 0; c < QB_GEMM_TOKENS; c++) k->quantize_act_tile(srcs + (size_t)c * N, xa + c * ab, N);
                time_gemm(k, t, w, rb, xa, ab, 1, out);
                snprintf(gm, sizeof gm, "%.1f", QB_GEMM_TOKENS * gmac / time_gemm(k, t, w, rb, xa, ab, r, out));
            }
            if (k->gemv_q[t]) {
                k->quantize_act_gemv[t](srcs, xg, N);
                time_gemv(k, t, w, rb, xg, 1, out);
                snprintf(gv, sizeof gv, "%.2f", gb / time_gemv(k, t, w, rb, xg, r, out));
            }
            printf("%-7s %-11s %9.2f %9.2f %11.1f %11s %9s\n", qb_type_get(t)->name, isas[s], gb / t1, gb / t4, 4 * gmac / t4,
                   gm, gv);
            fflush(stdout);
        }
        free(w);
        free(xq);
        free(xa);
        free(xg);
        free(srcs);
    }
    free(src);
    free(out);
    bench_formats(argc, argv, reps);
    return 0;
}
