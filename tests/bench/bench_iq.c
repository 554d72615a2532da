/* bench_iq.c — the grid i-quants' generation kernels against llama.cpp's own, one thread: for
 * IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M, a matrix of ROWS × N weights (quantized by our
 * reference with uniform importance) times one Q8_K activation row, through our qdot (nc = 1,
 * the table this CPU runs) and through ggml-cpu's vec_dot for the type (libggml-cpu.so of
 * llama.cpp c392e50, opened at run time: $QB_GGML_CPU_LIB, default
 * ../peer/llama.cpp/build/bin/libggml-cpu.so; skipped when absent). Best of REPS passes each,
 * interleaved; GB/s of weights and ours / theirs. The sums must agree (relative 1e-4).
 * Then the quantizers: 512 rows × 1536 (an ffn_down's shape) with random importance, ours
 * (one row at a time, IQ1_M's split search in the lanes of this CPU's table) against libggml-base's ggml_quantize_chunk (what
 * llama-quantize runs), one thread, best of REPS; the bytes must be equal.
 * Usage: bench_iq [REPS] [gen] (gen: the generation kernels only) */
#include "core/qb.h"
#include "kernels.h"
#include "quant_iq.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { N = 4096, ROWS = 4096 };

void qb_iq1m_scores_avx2(const float *, const float *, const int *, float[][4], float[][4]);
void qb_iq1m_scores_avx512(const float *, const float *, const int *, float[][4], float[][4]);

typedef void (*vec_dot_fn)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nrc);
struct traits_cpu {
    void *from_float;
    vec_dot_fn vec_dot;
    int vec_dot_type;
    int64_t nrows;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

int main(int argc, char **argv)
{
    const int reps = argc > 1 ? atoi(argv[1]) : 5;
    const char *path = getenv("QB_GGML_CPU_LIB");
    if (!path || !*path) path = "../peer/llama.cpp/build/bin/libggml-cpu.so";
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const struct traits_cpu *(*get)(int) = lib ? (const struct traits_cpu *(*)(int))dlsym(lib, "ggml_get_type_traits_cpu") : NULL;
    void (*cpu_init)(void) = lib ? (void (*)(void))dlsym(lib, "ggml_cpu_init") : NULL;
    if (!get || !cpu_init) {
        printf("bench_iq: %s not usable: llama.cpp comparison skipped\n", path);
        return 0;
    }
    cpu_init();
    static const int types[] = {QB_TYPE_IQ2_XXS, QB_TYPE_IQ2_XS, QB_TYPE_IQ2_S, QB_TYPE_IQ1_S, QB_TYPE_IQ1_M};
    const qb_kernel_table *k = qb_kernels();
    float *x = malloc(N * sizeof *x);
    uint8_t *xq = malloc(qb_type_row_bytes(QB_TYPE_Q8_K, N));
    for (int j = 0; j < N; j++) x[j] = frand();
    k->quantize_act[QB_TYPE_Q8_K](x, xq, N);
    printf("grid i-quants, generation (one row x one token), %d x %d, one thread, table %s, best of %d\n", ROWS, N, k->isa, reps);
    printf("%-8s %10s %10s %8s\n", "type", "ours GB/s", "ggml GB/s", "ratio");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const int t = types[ti];
        const size_t rb = qb_type_row_bytes((qb_type)t, N);
        uint8_t *w = malloc(rb * ROWS);
        float *a = malloc(ROWS * sizeof *a), *b = malloc(ROWS * sizeof *b);
        for (int r = 0; r < 64; r++) { /* 64 distinct rows, repeated */
            for (int j = 0; j < N; j++) x[j] = frand() * (j % 97 == 0 ? 4.0f : 1.0f);
            qb_quant_row_ref(t, x, w + (size_t)r * rb, N);
        }
        for (int r = 64; r < ROWS; r++) memcpy(w + (size_t)r * rb, w + (size_t)(r % 64) * rb, rb);
        const vec_dot_fn vd = get(t)->vec_dot;
        double best_o = 1e30, best_g = 1e30;
        for (int rep = 0; rep < reps; rep++) {
            double t0 = now();
            for (int r = 0; r < ROWS; r++) k->qdot[t](N, w + (size_t)r * rb, xq, 0, 1, &a[r]);
            double t1 = now();
            for (int r = 0; r < ROWS; r++) vd(N, &b[r], 0, w + (size_t)r * rb, 0, xq, 0, 1);
            double t2 = now();
            best_o = fmin(best_o, t1 - t0);
            best_g = fmin(best_g, t2 - t1);
        }
        for (int r = 0; r < 64; r++)
            if (fabsf(a[r] - b[r]) > 1e-4f * (fabsf(b[r]) + 1.0f)) {
                printf("%s: row %d: ours %.6g, ggml %.6g\n", qb_type_get(t)->name, r, a[r], b[r]);
                return 1;
            }
        const double gb = (double)rb * ROWS / 1e9;
        printf("%-8s %10.2f %10.2f %7.2fx\n", qb_type_get(t)->name, gb / best_o, gb / best_g, best_g / best_o);
        free(w);
        free(a);
        free(b);
    }
    free(x);
    free(xq);
    dlclose(lib);
    if (argc > 2 && !strcmp(argv[2], "gen")) return 0;

    const char *bpath = getenv("QB_GGML_LIB");
    if (!bpath || !*bpath) bpath = "../peer/llama.cpp/build/bin/libggml-base.so";
    void *base = dlopen(bpath, RTLD_NOW | RTLD_LOCAL);
    void (*qinit)(int) = base ? (void (*)(int))dlsym(base, "ggml_quantize_init") : NULL;
    size_t (*chunk)(int, const float *, void *, int64_t, int64_t, int64_t, const float *) =
        base ? (size_t (*)(int, const float *, void *, int64_t, int64_t, int64_t, const float *))dlsym(base, "ggml_quantize_chunk") : NULL;
    if (!qinit || !chunk) {
        printf("bench_iq: %s not usable: quantizer comparison skipped\n", bpath);
        return 0;
    }
    enum { QR = 512, QN = 1536 };
    float *src = malloc((size_t)QR * QN * sizeof *src), *imp = malloc(QN * sizeof *imp);
    uint8_t *qa = malloc((size_t)QR * QN), *qb = malloc((size_t)QR * QN);
    for (size_t i = 0; i < (size_t)QR * QN; i++) src[i] = frand() * 0.05f * (i % 101 == 0 ? 5.0f : 1.0f);
    for (int i = 0; i < QN; i++) imp[i] = frand() + 1.5f;
    const qb_iq1m_score_fn score = qb_kernels()->level >= QB_ISA_AVX512 ? qb_iq1m_scores_avx512
                                 : qb_kernels()->level >= QB_ISA_AVX2 ? qb_iq1m_scores_avx2 : qb_iq1m_scores_ref;
    printf("quantize %d x %d with importance, one thread, best of %d (ms)\n%-8s %10s %10s %8s\n", QR, QN, reps, "type", "ours",
           "ggml", "ratio");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const int t = types[ti];
        const size_t rb = qb_type_row_bytes((qb_type)t, QN);
        qinit(t);
        qb_quant_row_iq_ref(t, src, qa, QN, imp); /* builds our grid maps outside the timing */
        double best_o = 1e30, best_g = 1e30;
        for (int rep = 0; rep < reps; rep++) {
            double t0 = now();
            for (int r = 0; r < QR; r++) qb_quant_row_iq_with(t, src + (size_t)r * QN, qa + r * rb, QN, imp, score);
            double t1 = now();
            chunk(t, src, qb, 0, QR, QN, imp);
            double t2 = now();
            best_o = fmin(best_o, t1 - t0);
            best_g = fmin(best_g, t2 - t1);
        }
        if (memcmp(qa, qb, rb * QR)) {
            printf("%s: bytes differ from ggml's\n", qb_type_get(t)->name);
            return 1;
        }
        printf("%-8s %10.1f %10.1f %7.2fx\n", qb_type_get(t)->name, best_o * 1e3, best_g * 1e3, best_g / best_o);
    }
    free(src);
    free(imp);
    free(qa);
    free(qb);
    dlclose(base);
    return 0;
}
