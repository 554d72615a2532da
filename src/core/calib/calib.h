/* calib.h — calibration: a text cut into token windows is run through the forward pass and
 * what every linear layer sees is summarised, per input channel: absmax, mean square, mean
 * absolute value, and (where a method asks) the Hessian XᵀX, accumulated in double a window
 * at a time so memory stays bounded by the captured widths, never by the token count.
 *
 * The capture points are those of the forward-pass observer (infer.h): per layer the input of
 * wq/wk/wv (QB_OBS_ATTN_IN), of wo (QB_OBS_ATTN_OUT), of w_gate/w_up (QB_OBS_FFN_IN) and of
 * w_down (QB_OBS_FFN_DOWN_IN). A calibration result is plain data, reusable across methods and
 * tensors; a run is a job (progress callback, cancel flag). */
#ifndef QB_CALIB_H
#define QB_CALIB_H

#include "../model/model.h"
#include "../infer/infer.h"

/* Statistics of one capture point: n rows (tokens) of width channels. */
typedef struct {
    int width;         /* channels (0: this point was not captured) */
    int64_t n;         /* rows seen */
    float *absmax;     /* (width) max |x| per channel */
    double *sumsq;     /* (width) Σ x² per channel: mean square = sumsq / n */
    double *sumabs;    /* (width) Σ |x| per channel: mean |x| = sumabs / n (AWQ's s_x) */
    double *xtx;       /* (width, width) XᵀX, full symmetric, or NULL when not asked for */
} qb_calib_stat;

typedef struct qb_calib {
    int n_layers;        /* of the model it was run on */
    int n_windows, n_ctx;
    int64_t n_tokens;    /* tokens run (n_windows * n_ctx) */
    int32_t *windows;    /* (n_windows, n_ctx) the token windows it ran, for methods that run
                            the blocks again (learned rounding); owned */
    qb_calib_stat *stat; /* (n_layers, QB_OBS_COUNT); OUTPUT_IN is never captured */
    int n_experts;          /* of the model (0: dense) */
    int64_t *expert_tokens; /* (n_layers, n_experts) tokens routed to each expert, or NULL */
    /* the text it was run on (set by qb_calib_run_file; empty otherwise), for the recipe an
     * export records: the file name as given, its size and sha256 (64 hex digits) */
    char text_name[256];
    uint64_t text_bytes;
    char text_sha256[65];
} qb_calib;

typedef struct {
    int n_samples;      /* windows to run; 0 = all the text holds (default 128 cap: none) */
    int n_ctx;          /* window length in tokens (0 = 256) */
    bool hessian;       /* accumulate XᵀX at the captured points */
    /* which points to capture: want[layer * QB_OBS_COUNT + pt] != 0 (NULL = every point of
     * every layer). Lets a caller bound memory to a few layers per run. */
    const uint8_t *want;
    void (*progress)(void *ud, int done, int total); /* after each window, calling thread */
    void *ud;
    const volatile int *cancel; /* non-zero stops after the current window: QB_ERR_CANCELLED */
} qb_calib_opts;

/* Cut tokens (a text tokenized with BOS, as qb_eval_load_text gives it) into consecutive
 * n_ctx-token windows, each window's first token replaced by bos (the GPTQ reference's and
 * llama-perplexity's protocol). At most max_windows (0 = all). *out (malloc'd, caller frees)
 * holds *n_windows × n_ctx tokens. Errors: QB_ERR_ARG when the text is shorter than one
 * window (the message says how many tokens it has and how many a window needs). */
qb_status qb_calib_windows(qb_ctx *ctx, const int32_t *tokens, int n_tokens, int n_ctx, int max_windows, int32_t bos,
                           int32_t **out, int *n_windows);

/* Run n_windows windows of n_ctx tokens (tokens as qb_calib_windows made them) through m and
 * capture the statistics opts asks for. *out is owned by the caller (qb_calib_free). On
 * failure or cancel nothing is returned and the model is untouched (calibration only reads). */
qb_status qb_calib_run(qb_ctx *ctx, const qb_model *m, const int32_t *windows, int n_windows, const qb_calib_opts *opts,
                       qb_calib **out);

/* qb_eval_load_text + qb_calib_windows + qb_calib_run on a text file, the file's name, size
 * and sha256 recorded in the result. Errors name the file. */
qb_status qb_calib_run_file(qb_ctx *ctx, const qb_model *m, const char *path, const qb_calib_opts *opts,
                            qb_calib **out);

/* The statistics at (layer, pt), or NULL when that point was not captured. Borrowed from c. */
const qb_calib_stat *qb_calib_get(const qb_calib *c, int layer, qb_obs_point pt);
/* Per-channel mean square (sumsq / n) and mean |x| into out (width floats). */
void qb_calib_mean_square(const qb_calib_stat *s, float *out);
void qb_calib_mean_abs(const qb_calib_stat *s, float *out);

void qb_calib_free(qb_calib *c);

/* Tokens the calibration routed to expert `expert` of block `layer` and their share of the
 * block's routed tokens; false for a dense model, counts not kept, or an index out of range. */
bool qb_calib_expert_share(const qb_calib *c, int layer, int expert, int64_t *tokens, double *share);

/* Expert usage of tensor t of m ("blk.L.ffn_{gate,up,down}_exps.E.weight"): its block and
 * expert, the tokens the calibration routed to it and their share of the block's routed
 * tokens (each token goes to n_experts_used experts, so shares sum to 1 over a block).
 * False when t is not an expert's tensor or c has no counts. */
bool qb_calib_expert_usage(const qb_calib *c, const qb_model *m, const qb_tensor *t, int *layer, int *expert,
                           int64_t *tokens, double *share);

/* The capture point whose activations a weight matrix of layer l multiplies (its input), for
 * the matrices of qb_layer_weights: ATTN_IN for wq, wk, wv; ATTN_OUT for wo, FFN_IN for
 * w_gate and w_up, FFN_DOWN_IN for w_down. Returns false (and leaves *layer and *pt alone) for other
 * tensors (embeddings, output, norms). */
bool qb_calib_point_of(const qb_model *m, const qb_tensor *t, int *layer, qb_obs_point *pt);

#endif
