/* awq.h — AWQ, activation-aware weight quantization (Lin et al. 2023), written from the
 * paper: weights that meet large activations matter more, so before round-to-nearest each
 * input channel j of the matrices that share an input is scaled up by s_j = s_x,j^α (s_x: the
 * channel's mean |x| on calibration data) and the input divided by s_j, which the preceding
 * RMSNorm or linear layer absorbs exactly (fold.h). α is searched on a grid over [0, 1] to
 * minimise the matrices' output error on the calibration data, measured through XᵀX:
 * ‖X·Wᵀ − X·diag(1/s)·Q(W·diag(s))ᵀ‖². A search then clips each group's range (qb_awq_clip). */
#ifndef QB_AWQ_H
#define QB_AWQ_H

#include "../quant/format.h"

typedef struct {
    float alpha; /* < 0: search the grid (default); else this α, in [0, 1] */
    int n_grid;  /* grid points over [0, 1], both ends included (0 = 20) */
    bool clip;   /* search a clipping range per group after scaling (AWQ's auto-clip; on
                    by default in qb_method_parse, as the authors' code runs it) */
    bool weighted; /* the scaled matrices are rounded with importance weights E[(x/s)²] per
                      column (the calibration's mean square: an imatrix's data), for the ggml
                      types llama-quantize weights; an imatrix given to the plan is used the
                      same way, weighted or not (method.c) */
} qb_awq_params;

/* One matrix of a group sharing an input: values (rows × n, f32, row-major; clipping may
 * change them in place) and its target format. */
typedef struct {
    float *w;
    int64_t rows;
    const qb_format *fmt;
} qb_awq_mat;

/* Choose the scales s (n floats) for the n_mats matrices sharing an input with per-channel
 * mean |x| sx and XᵀX xtx (n × n), and report the α chosen (may be NULL). s is normalised
 * (√(max·min) = 1) as the authors do. α = 0 gives s = 1 (plain RTN). Errors: QB_ERR_ARG for
 * α outside [0, 1] or a bad grid, the format's own errors, QB_ERR_CANCELLED. */
qb_status qb_awq_search(qb_ctx *ctx, qb_awq_mat *mats, int n_mats, int64_t n, const float *sx, const double *xtx,
                        const qb_awq_params *p, float *s, float *alpha, const volatile int *cancel);

/* AWQ's clipping search (the authors' auto-clip) on already scaled values w_s = W·diag(s)
 * (rows × n, changed in place): each independently quantized group of a row (an integer
 * group, a ggml block or super-block, the whole row per channel) gets the clipping range
 * ±r·max|group| with r in {1, 0.95, …, 0.55} (QB_AWQ_CLIP_STEPS ratios) whose rounding
 * minimises the group's own output error (d/s)ᵀ·H_gg·(d/s), d = w_s − Q(clip(w_s)), H_gg the
 * group's diagonal block of XᵀX. Formats with one scale per tensor and float formats are
 * left alone. */
#define QB_AWQ_CLIP_STEPS 10
qb_status qb_awq_clip(qb_ctx *ctx, qb_awq_mat *mat, int64_t n, const float *s, const double *xtx,
                      const volatile int *cancel);

#endif
