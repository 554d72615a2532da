/* tq_iq3.h — entry points of the ternary (TQ1_0, TQ2_0) and 3-bit i-quant (IQ3_XXS, IQ3_S)
 * kernels that other kernel files call: the vector row dequantizers (tq_iq3_avx2.c,
 * tq_iq3_avx512.c) and the quantizers (quant_tq_iq3_ref.c). Block layouts: blocks.h. */
#ifndef QB_TQ_IQ3_H
#define QB_TQ_IQ3_H

#include <stdbool.h>
#include <stdint.h>

/* Dequantize nb blocks of type (one of the four) with qb_dequant_row_ref's bits; false, writing
 * nothing, for any other type. */
bool qb_dequant_tq_iq3_avx2(int type, const void *src, float *dst, int64_t nb);
bool qb_dequant_tq_iq3_avx512(int type, const void *src, float *dst, int64_t nb);

/* Quantize nrows rows of n_per_row floats (a multiple of 256) into type (TQ1_0, TQ2_0, IQ3_XXS,
 * IQ3_S), rows back to back in dst: the bytes ggml's quantize_<type>(src, dst, nrows,
 * n_per_row, qw) writes (llama.cpp c392e50). qw: n_per_row importance weights per column
 * (llama-imatrix's), or NULL; the ternary types ignore them, as ggml does. False, writing
 * nothing, for other types or a row length that is not a multiple of 256. Thread-safe (the
 * IQ3 code book tables are built once, on first use). */
bool qb_quant_tq_iq3_ref(int type, const float *x, void *dst, int64_t nrows, int64_t n_per_row, const float *qw);

/* The IQ3 quantizers' hot search: among the code book points listed in nb (nb[0] of them, their
 * indices after it), the one whose values q_i = 2 level + 1 (level of element i of the j-th
 * listed point: lvt[i * stride + j], stride = nb[0] rounded up to 16, padding readable) at
 * scale have the least Σ w_i (scale·q_i − xv_i)² (each sum in ggml's order: ((w·diff)·diff)
 * added element by element); the first of equal ones; nb[1] when none is below FLT_MAX.
 * Vector versions (lanes = points) return the same index. */
typedef int (*qb_iq3_nb_fn)(const uint16_t *nb, const uint8_t *lvt, const float *xv, const float *w, float scale);
int qb_iq3_neighbour_ref(const uint16_t *nb, const uint8_t *lvt, const float *xv, const float *w, float scale);
int qb_iq3_neighbour_avx2(const uint16_t *nb, const uint8_t *lvt, const float *xv, const float *w, float scale);
int qb_iq3_neighbour_avx512(const uint16_t *nb, const uint8_t *lvt, const float *xv, const float *w, float scale);

/* qb_quant_tq_iq3_ref's contract and bytes, the IQ3 neighbour search in vectors. */
bool qb_quant_tq_iq3_avx2(int type, const float *x, void *dst, int64_t nrows, int64_t n_per_row, const float *qw);
bool qb_quant_tq_iq3_avx512(int type, const float *x, void *dst, int64_t nrows, int64_t n_per_row, const float *qw);

/* qb_quant_tq_iq3_ref with the neighbour search nbf (the same bytes for any of the above). */
bool qb_quant_tq_iq3_with(int type, const float *x, void *dst, int64_t nrows, int64_t n_per_row, const float *qw,
                          qb_iq3_nb_fn nbf);

#endif
