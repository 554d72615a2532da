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

/* ---- pieces the weighted quantizers (quant_weighted_ref.c) share with the plain ones ---- */

/* Pack 32 five-bit codes (Q5_0 / Q5_1): low nibbles as Q4_0, bit 4 of code e into bit e of qh. */
void qb_pack_q5_32(const uint8_t q[32], uint8_t qs[16], uint8_t qh[4]);
/* Pack 256 2-bit codes (Q2_K's qs layout; Q3_K's low bits). */
void qb_kpack_2bit(const uint8_t *L, uint8_t qs[64]);
/* Q3_K codes 0..7 of 256 elements into hmask and qs. */
void qb_kpack_q3(const int8_t *L, qb_block_q3_K *y);
/* Q4_K codes 0..15 / Q5_K codes 0..31 of 256 elements into qs (and qh). */
void qb_kpack_q4(const uint8_t *L, uint8_t qs[128]);
void qb_kpack_q5(const uint8_t *L, uint8_t qs[128], uint8_t qh[32]);
/* The rest of one Q6_K block once its 16 sub-blocks are fitted (codes L, scales): the 8-bit
 * sub-block scales, d, the final codes and their packing, into y. */
void qb_q6_K_finish(const float *x, int8_t *L, const float *scales, qb_block_q6_K *y, qb_kcode_fn code);
/* The rest of one IQ4_XS block once its 8 group scales are found: the 6-bit scales, d, codes. */
void qb_iq4_xs_finish(const float *x, const float scales[8], qb_block_iq4_xs *y, qb_iq4_code_fn codes);

/* Weighted symmetric fit, ggml's make_qx_quants with importance weights (rmse_type 1): nsub
 * consecutive sub-blocks of n values (x, weights w, n * nsub each); for each, start from the
 * mapping of the largest-magnitude element to -nmax and the weighted least-squares scale of
 * its codes, then try the inverse scales -(nmax + 0.1 k) / max, k = -9..9 (k != 0) in that
 * order, accepting one only if it strictly raises S_lx^2 / S_l2. Codes nmax + l (l in
 * -nmax..nmax-1) into L + n * s, the scale into scales[s] (0 and codes 0 for a sub-block whose
 * largest magnitude is below 1e-15). */
typedef void (*qb_kfit_sw_fn)(int nsub, int n, int nmax, const float *x, const float *w, int8_t *L, float *scales);
void qb_kfit_sw_ref(int nsub, int n, int nmax, const float *x, const float *w, int8_t *L, float *scales);
/* qb_iq4nl_group_scale with weights w (32 values) in place of x^2. */
typedef float (*qb_iq4_scale_w_fn)(const float *x, const float *w);
float qb_iq4nl_group_scale_w_ref(const float *x, const float *w);

/* AVX-512 pieces (quant_avx512.c) the weighted quantizer of quant_kquants_avx512.c uses. */
float qb_iq4_scale_w_avx512(const float *x, const float *w);
void qb_iq4_codes_avx512(const float *x, float id, uint8_t qs[16]);
/* The AVX2 weighted IQ4 scale search (quant_kquants_avx2.c), the same figures. */
float qb_iq4_scale_w_avx2(const float *x, const float *w);

/* The searches a weighted quantizer runs (scalar or vector versions, same figures). */
typedef struct {
    qb_kfit_fn fit;          /* affine: Q2_K, Q4_K, Q5_K sub-blocks, Q4_1, Q5_1 blocks */
    qb_kfit_sw_fn fit_sw;    /* symmetric: Q3_K, Q6_K sub-blocks, Q4_0, Q5_0 blocks, Q3_K scales */
    qb_kcode_fn code;        /* final codes against the decoded scales */
    qb_iq4_scale_w_fn iq4_scale;
    qb_iq4_code_fn iq4_codes;
} qb_wquant_pieces;
/* qb_quant_row_w_ref's contract (kernels.h) with these searches. */
bool qb_quant_row_w_with(int type, const float *x, void *dst, int64_t n, const float *qw, const qb_wquant_pieces *p);

#endif
