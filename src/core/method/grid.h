/* grid.h — the quantization grid of a storage format seen one element at a time, for methods
 * that choose a group's scales first and then round its elements one by one against them
 * (GPTQ): a row's packed bytes are built group by group (a "group" is an integer group, the
 * whole row for per-channel integer formats, or a ggml block / super-block), and each element
 * is then rounded onto the grid the group's scales define, its code written in place.
 * Private to src/core/method. */
#ifndef QB_METHOD_GRID_H
#define QB_METHOD_GRID_H

#include "../quant/format.h"

typedef struct {
    qb_format f;
    int64_t n;     /* row length */
    int group;     /* elements per group */
    size_t gbytes; /* bytes per group */
} qb_grid;

/* Set g up for rows of n elements of format f. QB_ERR_UNSUPPORTED (message names the format)
 * for formats whose grid is not an affine code grid per group handled here: per-tensor
 * integer scales, NF4, FP8, MXFP4, F16/BF16/F32 and the ggml types other than Q8_0, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K. */
qb_status qb_grid_init(qb_ctx *ctx, qb_grid *g, const qb_format *f, int64_t n);

/* Choose group grp's scales from its current values w (g->group floats), as the format's
 * round-to-nearest quantizer does, writing the group's bytes into row (a whole packed row).
 * imp (g->group floats, or NULL): the columns' importance, for the ggml types llama-quantize
 * weights with an imatrix (their scale searches then minimise the importance-weighted error,
 * as with --imatrix); ignored by integer groups and by a group whose importance is all zero. */
void qb_grid_start(const qb_grid *g, uint8_t *row, int64_t grp, const float *w, const float *imp);

/* Round w onto the grid of element col's group (already started), store its code in row and
 * return the value the code stands for. */
float qb_grid_round(const qb_grid *g, uint8_t *row, int64_t col, float w);

/* Store code q of element col in row, leaving the group's scales and every other code as they
 * are. q is the index on the element's grid as qb_grid_round counts it: 0..qmax with value
 * a·q + b (the format's stored code: Q3_K's 0..7 for −4..3, Q6_K's 0..63 for −32..31, an
 * integer group's q for d·(q − z)); out-of-range q is the caller's error. */
void qb_grid_set_code(const qb_grid *g, uint8_t *row, int64_t col, int q);
/* The code of element col as row stores it (qb_grid_set_code's q). */
int qb_grid_get_code(const qb_grid *g, const uint8_t *row, int64_t col);

#endif
