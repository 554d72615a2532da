/* dispatch.c — choose the kernel table once from cpuid; QB_ISA=ref|avx2|avx512 overrides
 * (a request the CPU cannot run falls back to the best it can). */
#include "kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

float qb_dot_f32_avx2(int, const float *, const float *);
float qb_dot_f16_avx2(int, const uint16_t *, const float *);
float qb_dot_bf16_avx2(int, const uint16_t *, const float *);
void qb_tile_f32_avx2(int, const float *, size_t, int, const float *, size_t, int, float *, size_t);
void qb_f16_to_f32_avx2(int, const uint16_t *, float *);
void qb_bf16_to_f32_avx2(int, const uint16_t *, float *);
float qb_dot_f32_avx512(int, const float *, const float *);
float qb_dot_f16_avx512(int, const uint16_t *, const float *);
float qb_dot_bf16_avx512(int, const uint16_t *, const float *);
void qb_tile_f32_avx512(int, const float *, size_t, int, const float *, size_t, int, float *, size_t);
void qb_f16_to_f32_avx512(int, const uint16_t *, float *);
void qb_bf16_to_f32_avx512(int, const uint16_t *, float *);

static const qb_kernel_table table_ref = {
    "ref", qb_dot_f32_ref, qb_dot_f16_ref, qb_dot_bf16_ref, qb_tile_f32_ref, qb_f16_to_f32_row_ref,
    qb_bf16_to_f32_row_ref,
};
static const qb_kernel_table table_avx2 = {
    "avx2", qb_dot_f32_avx2, qb_dot_f16_avx2, qb_dot_bf16_avx2, qb_tile_f32_avx2, qb_f16_to_f32_avx2,
    qb_bf16_to_f32_avx2,
};
static const qb_kernel_table table_avx512 = {
    "avx512", qb_dot_f32_avx512, qb_dot_f16_avx512, qb_dot_bf16_avx512, qb_tile_f32_avx512, qb_f16_to_f32_avx512,
    qb_bf16_to_f32_avx512,
};

static bool cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

static bool cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

const qb_kernel_table *qb_kernels_for(const char *isa)
{
    if (strcmp(isa, "ref") == 0) return &table_ref;
    if (strcmp(isa, "avx2") == 0) return cpu_has_avx2() ? &table_avx2 : NULL;
    if (strcmp(isa, "avx512") == 0) return cpu_has_avx512() ? &table_avx512 : NULL;
    return NULL;
}

static const qb_kernel_table *chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    const char *want = getenv("QB_ISA");
    if (want && *want && (chosen = qb_kernels_for(want))) return;
    chosen = cpu_has_avx512() ? &table_avx512 : cpu_has_avx2() ? &table_avx2 : &table_ref;
}

const qb_kernel_table *qb_kernels(void)
{
    pthread_once(&once, choose);
    return chosen;
}
