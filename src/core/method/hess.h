/* hess.h — quadratic forms with a layer's calibration Hessian XᵀX, Σ_r d_rᵀ·H·d_r over the
 * rows of a matrix d: the output error ‖X·Dᵀ‖² that GPTQ and AWQ measure, without the inputs.
 * Blocked so H streams from memory once per block of rows, not once per row. Private to
 * src/core/method. */
#ifndef QB_METHOD_HESS_H
#define QB_METHOD_HESS_H

#include <stdint.h>

/* Σ_r d_rᵀ·hf·d_r for the rows × n matrix d, hf the n × n symmetric H in f32 (row-major).
 * Parallel over row blocks (OpenMP); summed in double in an order that does not depend on
 * the thread count. NAN when out of memory. */
double qb_hess_quad_rows(const float *hf, const float *d, int64_t rows, int64_t n);

/* A malloc'd f32 copy of the n × n double matrix h (NULL when out of memory). */
float *qb_hess_to_f32(const double *h, int64_t n);

#endif
