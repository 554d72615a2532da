/* learned.h — learned rounding and clipping, block by block: SignRound (Cheng et al. 2023,
 * "Optimize Weight Rounding via Signed Gradient Descent for the Quantization of LLMs"), the
 * procedure intel/auto-round runs, written from the paper. For each transformer block in
 * turn, the rounding offsets and clip factors of its matrices (fakequant.h) are learned by
 * signed gradient descent (steps of lr·sign(gradient), lr decayed linearly to 0, the best
 * step's values kept) so that the block's output with those matrices quantized, on the inputs
 * the already quantized blocks before it produce, matches the full-precision block's output
 * on the full-precision inputs (mean squared error over random batches of the calibration
 * windows); then the matrices are written in their format's packed bytes and both inputs move
 * past the block. Gradients come from the training pass (train.h); targets: INT formats with
 * groups or per channel (fakequant.h: offsets and clip factors) and the ggml k-quants Q2_K..Q6_K
 * (fakequant_kquant.h: offsets on the scales of the format's own quantization, optionally the
 * sub-blocks' scale and min factors too; the bytes are the format's blocks, so the result
 * exports to a GGUF llama.cpp runs). */
#ifndef QB_METHOD_LEARNED_H
#define QB_METHOD_LEARNED_H

#include "../calib/calib.h"

typedef struct {
    int iters;   /* signed-gradient steps per block (0 = 200) */
    float lr;    /* first step of offsets and factors, decayed linearly to 0 (0 = 1/iters; for the
                    k-quants at most 1/50) */
    int batch;   /* calibration windows per step (0 = 8; at most the calibration's) */
    bool weighted; /* k-quants start from the quantization weighted by the calibration's mean
                      square inputs (llama-quantize --imatrix's); read by method.c */
    bool scales;   /* k-quants: also learn each sub-block's scale and min factors (at the
                      offsets' step size); off: only the offsets, the format's own scales */
} qb_learned_params;

typedef struct qb_learned qb_learned;

/* Start on m (borrowed, unchanged) with the windows of calibration cal (borrowed): the first
 * block's inputs for every window, full-precision and quantized alike. Errors: a model the
 * training pass refuses, a calibration without its windows, QB_ERR_NOMEM. */
qb_status qb_learned_begin(qb_ctx *ctx, const qb_model *m, const qb_calib *cal, const qb_learned_params *p,
                           qb_learned **out);

/* Whether matrix t in format f can be learned (qb_learned_block refuses the others). */
bool qb_learned_supports(const qb_format *f, const qb_tensor *t);

/* Block l (in order 0, 1, ...): fmts[i] (NULL: the matrix stays at full precision) for its
 * matrices wq, wk, wv, wo, w_gate, w_up, w_down; dst[i] receives the packed rows (rows ×
 * qb_format_row_bytes) of each learned one. imps (NULL, or imps[i] NULL: unweighted): the
 * columns' importance (ne[0] floats) a k-quant matrix's starting quantization is weighted
 * with (ignored by INT formats). loss_rtn / loss_learned (may be NULL): the mean squared error
 * of the block's output over all windows with round-to-nearest (where learning starts) and
 * with the result. cancel (may be NULL) stops with QB_ERR_CANCELLED. Errors: a format
 * qb_learned_supports refuses (QB_ERR_UNSUPPORTED), a block out of order, QB_ERR_NOMEM. */
qb_status qb_learned_block(qb_ctx *ctx, qb_learned *lr, int l, const qb_format *const fmts[7],
                           const float *const imps[7], void *const dst[7], double *loss_rtn, double *loss_learned,
                           const volatile int *cancel);

void qb_learned_end(qb_learned *lr);

/* Called by qb_learned_matrix after each measured step, on the calling thread: iteration it
 * (0 = the round-to-nearest start) of iters, the relative output error of the values wq
 * (rows × n) that step measured. wq is only valid during the call. */
typedef void (*qb_learned_watch)(void *ud, int it, int iters, double rel_err, const float *wq);

/* Learned rounding of one matrix alone (the workbench's per-matrix preview): the offsets and
 * factors qb_learned_block learns, by the same signed steps, but against the matrix's own output
 * error ‖(Q − W)X‖² / ‖WX‖² through its input's XᵀX (xtx, n × n) instead of a block's output on
 * windows: exact (every step sees the whole calibration), no forward pass. w (rows × n) in
 * format f (qb_learned_supports: INT with groups or per channel, Q2_K..Q6_K); imp (may be NULL)
 * weights a k-quant's start. deq (rows × n) receives the best step's values (those its packed
 * bytes stand for); err_rtn / err_learned (may be NULL) the relative errors at the start and of
 * the result. p->iters (0 = 200) steps; watch (may be NULL) sees each. Errors: a format the
 * method cannot learn (QB_ERR_UNSUPPORTED), QB_ERR_NOMEM, QB_ERR_CANCELLED. */
qb_status qb_learned_matrix(qb_ctx *ctx, const qb_learned_params *p, const qb_format *f, const float *w, int64_t rows,
                            int64_t n, const double *xtx, const float *imp, float *deq, double *err_rtn,
                            double *err_learned, qb_learned_watch watch, void *ud, const volatile int *cancel);

#endif
