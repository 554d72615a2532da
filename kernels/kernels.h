/* kernels.h — the hot loops: dot products, small GEMM tiles, row conversions and
 * dequantization. Each op has a scalar reference (*_ref.c, the spec) and AVX2 / AVX-512
 * versions; qb_kernels() returns the table chosen once from cpuid (QB_ISA=ref|avx2|avx512
 * overrides). Kernels are single-threaded; callers parallelise over rows. */
#ifndef QB_KERNELS_H
#define QB_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef struct {
    const char *isa; /* "ref", "avx2", "avx512" */
    /* dot products of one weight row with one activation vector, n elements */
    float (*dot_f32)(int n, const float *w, const float *x);
    float (*dot_f16)(int n, const uint16_t *w, const float *x);
    float (*dot_bf16)(int n, const uint16_t *w, const float *x);
    /* y[c*ldy + r] = dot(w + r*ldw, x + c*ldx) for r < nr (<= 4), c < nc (<= 4): the register
     * tile behind batched matmul (prompt processing). */
    void (*tile_f32)(int n, const float *w, size_t ldw, int nr, const float *x, size_t ldx, int nc,
                     float *y, size_t ldy);
    /* row conversions to f32 */
    void (*f16_to_f32)(int n, const uint16_t *src, float *dst);
    void (*bf16_to_f32)(int n, const uint16_t *src, float *dst);
} qb_kernel_table;

/* The table for this CPU (initialised on first call, thread-safe). */
const qb_kernel_table *qb_kernels(void);
/* A specific table: "ref", "avx2", "avx512"; NULL if this CPU cannot run it. For tests. */
const qb_kernel_table *qb_kernels_for(const char *isa);

/* Scalar references (the spec every vector path is tested against). */
float qb_dot_f32_ref(int n, const float *w, const float *x);
float qb_dot_f16_ref(int n, const uint16_t *w, const float *x);
float qb_dot_bf16_ref(int n, const uint16_t *w, const float *x);
void qb_tile_f32_ref(int n, const float *w, size_t ldw, int nr, const float *x, size_t ldx, int nc,
                     float *y, size_t ldy);
void qb_f16_to_f32_row_ref(int n, const uint16_t *src, float *dst);
void qb_bf16_to_f32_row_ref(int n, const uint16_t *src, float *dst);

/* Dequantize n elements (a multiple of the type's block size) of ggml type `type` (qb_type id)
 * from src into dst. Returns false for types it does not know. Scalar; follows ggml's
 * dequantize_row_* exactly. */
bool qb_dequant_row_ref(int type, const void *src, float *dst, int64_t n);

#endif
