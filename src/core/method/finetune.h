/* finetune.h — fine-tuning a model against a teacher on the CPU, in two modes:
 *
 *  - quantization-aware fine-tuning (QAT) with distillation: the student is a model whose
 *    tensors already have the formats of a plan (round-to-nearest: qb_plan_apply_rtn or an
 *    llama-quantize mix). Its latent weights start from the original values; every step runs
 *    the training pass on their fake quantization (each matrix quantized to its format and
 *    dequantized: the exact values its packed bytes hold) and passes the gradient straight
 *    through the rounding to the latent weights (the straight-through estimator, identity), as
 *    LLM-QAT / EfficientQAT's end-to-end stage train. Matrices, norms and biases train; the
 *    token embeddings stay (a tied classifier with them). At the end every matrix is packed
 *    from its latent values in its format and installed, so the model runs, evaluates and
 *    exports packed. With learn_clip, integer formats with groups also learn per-group clip
 *    factors (the range each group's grid covers) by the same optimizer, as LSQ / OmniQuant's
 *    learnable clipping; their gradients come through the format's rounding (fakequant.h).
 *  - heal: the student's matrices stay exactly as they are (any method's result, e.g. a GPTQ
 *    GGUF); only the float parameters (norms, biases) train: a cheap repair.
 *
 * Loss per sequence: kd·τ²·mean KL(teacher/τ ‖ student/τ) over its positions + ce·mean
 * next-token cross-entropy on the text; the step's loss is the mean over its sequences.
 * AdamW with warm-up + cosine (optim.h), global-norm clipping, weight decay on matrices only.
 * A run is resumable bit for bit: qb_finetune_save writes (atomically) the latent values, the
 * moments, the step and the data order's state; qb_finetune_resume reads them into a run
 * begun with the same model, plan and parameters (anything else is refused, one line). */
#ifndef QB_METHOD_FINETUNE_H
#define QB_METHOD_FINETUNE_H

#include "../model/model.h"

typedef struct {
    int steps;          /* optimizer steps (0 = 100) */
    int batch;          /* sequences per step, their gradients accumulated (0 = 4) */
    int seq;            /* tokens per sequence (0 = 128) */
    float lr;           /* peak learning rate (0 = 1e-4 for QAT, 1e-3 for heal) */
    float min_lr_ratio; /* cosine floor as a fraction of lr (< 0: 0.1) */
    int warmup;         /* warm-up steps (< 0: steps / 10) */
    float clip;         /* global gradient norm bound (0 = 1.0; < 0: no clipping) */
    float weight_decay; /* AdamW's, on matrices (default 0) */
    float kd;           /* weight of the distillation term (< 0: 1) */
    float ce;           /* weight of the cross-entropy term (default 0) */
    float tau;          /* distillation temperature (0 = 1) */
    bool heal;          /* train only norms and biases; matrices stay as they are */
    bool learn_clip;    /* QAT: integer formats with groups or per channel also learn each group's
                           clip factors α (on its maximum) and β (on its minimum) in [0.5, 1]
                           (fakequant.h's parametrisation), packed with them */
    float clip_lr;      /* their peak learning rate (0 = 1e-3), on the same schedule */
    uint64_t seed;      /* data order (0 = a fixed default) */
    bool shift_windows; /* each epoch cuts the text into windows at another offset (drawn from the
                           seed and the epoch; the first epoch at 0), so later epochs see the same
                           tokens in new contexts (a text of fewer than two windows has only the
                           one cut); off: the same windows every epoch */
    int recompute;      /* activation recomputation (train.h): 1 on, -1 off, 0 auto: on when the
                           activations of every block would take more than a quarter of the
                           machine's memory. The same results either way (not in checkpoints). */
} qb_finetune_params;

/* What one step did. */
typedef struct {
    int step;           /* steps done after it (1-based) */
    double loss, kd, ce; /* the mean over its sequences (kd, ce unweighted) */
    double grad_norm;   /* before clipping */
    float lr;
    double seconds;
    int tokens;         /* tokens it trained on */
} qb_finetune_report;

typedef struct qb_finetune qb_finetune;

/* Begin a run on student (borrowed, changed only by qb_finetune_finish) against teacher (may
 * be student itself: its current representation is what teaches, so pass the unquantized
 * model), with training text tokens (as qb_eval_load_text gives them, BOS first) cut into
 * windows of p->seq tokens, each starting with BOS (calib.h's protocol); steps draw windows at
 * random (seeded). Errors, one line each: a model the training pass refuses, a teacher of
 * another vocabulary or tokenizer, a text shorter than one window, a QAT student with no
 * quantized matrix ("the plan quantizes nothing"), a parameter out of range, memory. */
qb_status qb_finetune_begin(qb_ctx *ctx, qb_model *student, const qb_model *teacher, const int32_t *tokens,
                            int n_tokens, const qb_finetune_params *p, qb_finetune **out);

/* One optimizer step on the next windows of the data order; r (may be NULL) says what it did.
 * cancel (may be NULL) is read between sequences: QB_ERR_CANCELLED leaves the run at the last
 * finished step. */
qb_status qb_finetune_step(qb_ctx *ctx, qb_finetune *ft, qb_finetune_report *r, const volatile int *cancel);
/* The same on the given sequences (n of the run's seq tokens each) instead of the data order's
 * (tests; the data order does not advance). */
qb_status qb_finetune_step_on(qb_ctx *ctx, qb_finetune *ft, const int32_t *seqs, int n, qb_finetune_report *r);

/* Whether the run recomputes activations, and the bytes its activations take. */
bool qb_finetune_recomputes(const qb_finetune *ft, size_t *acts_bytes);
/* Steps done so far. */
int qb_finetune_steps_done(const qb_finetune *ft);
/* The parameters in force (defaults filled in). */
const qb_finetune_params *qb_finetune_get_params(const qb_finetune *ft);
/* Latent values of the trained tensor named name (e.g. "blk.0.attn_q.weight"), *n floats;
 * with "#alpha" / "#beta" after the name, its learned clip factors (one per group); with "#run",
 * the values the student runs now (a quantized matrix: its latent values' fake quantization, the
 * values its packed bytes would hold; else the latent values); NULL when it does not train (or
 * learns no clip factors). Borrowed, valid until the next step. */
const float *qb_finetune_latent(const qb_finetune *ft, const char *name, size_t *n);

/* Write a checkpoint to path atomically (temp file + rename): nothing is lost if it fails. */
qb_status qb_finetune_save(qb_ctx *ctx, const qb_finetune *ft, const char *path);
/* Continue from a checkpoint of this run: it must be of the same model (tensor names and
 * shapes), formats and parameters (other than steps' count of this session). Errors name the
 * file and the mismatch or the damage (truncated, corrupted, not a checkpoint); on error the
 * run is unchanged. */
qb_status qb_finetune_resume(qb_ctx *ctx, qb_finetune *ft, const char *path);

/* Install the result in the student: QAT: every fake-quantized matrix packed from its latent
 * values in its format, every trained float tensor set to its values; heal: the norms and
 * biases. Then the student runs what was trained. */
qb_status qb_finetune_finish(qb_ctx *ctx, qb_finetune *ft);

void qb_finetune_end(qb_finetune *ft);

#endif
