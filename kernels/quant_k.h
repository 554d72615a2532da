/* quant_k.h — the pieces of the ggml quantizers that a vector path swaps in: the per-sub-block
 * scale searches of Q2_K..Q6_K, and the group scale search of IQ4_NL / IQ4_XS. The
 * scalar references (quant_kquants_ref.c, quant_ref.c) are built from these with the scalar
 * searches; quant_kquants_avx2.c passes searches that run several sub-blocks (or candidate
 * scales) in vector lanes and write exactly the same figures. Internal to kernels/. */
#ifndef QB_QUANT_K_H
#define QB_QUANT_K_H

#include "blocks.h"

#include <stdbool.h>
#include <stdint.h>

/* Fit nsub consecutive sub-blocks of n elements each (x, weights w, n * nsub values): for
 * each sub-block s, codes 0..nmax into L + n * s, the scale into scales[s] and the negated
 * offset (>= 0) into neg_mins[s], by ggml's make_qkx2_quants search (see fit_scale_min in
 * quant_kquants_ref.c for the exact order of candidates and operations). */
typedef void (*qb_kfit_fn)(int nsub, int n, int nmax, const float *x, const float *w, uint8_t *L, float *scales,
                           float *neg_mins, float rmin, float rdelta, int nstep, bool abs_err);
/* Fit nsub consecutive sub-blocks of 16 symmetric codes (Q3_K: fit_scale_q3, codes 0..7;
 * Q6_K: fit_scale_sym with nmax 32, codes 0..63; both biased): codes into L + 16 * s, the
 * scale into scales[s]. */
typedef void (*qb_kfit_s_fn)(int nsub, const float *x, int8_t *L, float *scales);
/* Codes of n values against a sub-block's scale as it will be decoded:
 * L[i] = clamp(round_int((x[i] + dm) / d), lo, hi) − lo, round_int being the 1.5·2^23 trick of
 * quant_kquants_ref.c bit for bit for every input (dm = 0 for the symmetric formats: x + 0
 * changes only a zero's sign, which the rounding drops). */
typedef void (*qb_kcode_fn)(const float *x, int n, float dm, float d, int lo, int hi, uint8_t *L);
/* The best scale of 32 values for the IQ4_NL code book (qb_iq4nl_group_scale's contract). */
typedef float (*qb_iq4_scale_fn)(const float *x);
/* The IQ4_NL codes of 32 values scaled by id, in the block's nibble order:
 * qs[j] = index(id·x[j]) | index(id·x[j + 16]) << 4, index being qb_iq4nl_index. */
typedef void (*qb_iq4_code_fn)(const float *x, float id, uint8_t qs[16]);

/* The scalar fit: the spec. */
void qb_kfit_ref(int nsub, int n, int nmax, const float *x, const float *w, uint8_t *L, float *scales,
                 float *neg_mins, float rmin, float rdelta, int nstep, bool abs_err);

void qb_kfit_q3_ref(int nsub, const float *x, int8_t *L, float *scales);
void qb_kfit_q6_ref(int nsub, const float *x, int8_t *L, float *scales);
void qb_kcode_ref(const float *x, int n, float dm, float d, int lo, int hi, uint8_t *L);

/* The quantizers with a given search and coder (nb blocks; the *_ref ones pass the scalar
 * pieces). */
void qb_quant_q2_K_with(const float *x, qb_block_q2_K *y, int64_t nb, qb_kfit_fn fit, qb_kcode_fn code);
void qb_quant_q3_K_with(const float *x, qb_block_q3_K *y, int64_t nb, qb_kfit_s_fn fit, qb_kcode_fn code);
void qb_quant_q4_K_with(const float *x, qb_block_q4_K *y, int64_t nb, qb_kfit_fn fit, qb_kcode_fn code);
void qb_quant_q5_K_with(const float *x, qb_block_q5_K *y, int64_t nb, qb_kfit_fn fit, qb_kcode_fn code);
void qb_quant_q6_K_with(const float *x, qb_block_q6_K *y, int64_t nb, qb_kfit_s_fn fit, qb_kcode_fn code);
void qb_iq4nl_codes_ref(const float *x, float id, uint8_t qs[16]);
void qb_quant_iq4_xs_with(const float *x, qb_block_iq4_xs *y, int64_t nb, qb_iq4_scale_fn group_scale,
                          qb_iq4_code_fn codes);
void qb_quant_iq4_nl_with(const float *x, void *dst, int64_t nb, qb_iq4_scale_fn group_scale, qb_iq4_code_fn codes);

#endif
