/* prune_structured.h — structured pruning: whole attention heads (with their KV heads where
 * grouped-query attention allows), FFN neurons and whole blocks removed from a loaded model,
 * chosen by importance measured on a calibration text, and the model's shapes rewritten so it
 * really shrinks (fewer parameters, bytes and FLOPs) and keeps running, quantizing and
 * exporting as any model does. The usual follow-up is distillation into the smaller student
 * (finetune.h, with the unpruned model as teacher).
 *
 * Importance (measured on the unpruned model, once):
 *   FFN neuron i of a block: E[h_i²]·‖w_down[:, i]‖², the energy the neuron adds to the residual
 *     (h = the input of w_down: silu(gate)·up), from the calibration's per-channel mean square;
 *   attention head h: the same summed over the head's head_dim channels of wo's input;
 *   block l: its influence on the output, the mean KL divergence (nats per token) of the next-
 *     token distribution of the model with block l skipped from the full model's, over the
 *     calibration windows (one block skipped at a time; skipping = the block adds nothing to the
 *     residual). Measured only when blocks are to be removed.
 *
 * The rewrite keeps the description regular, as the config and llama.cpp's llama graph want
 * it: every block keeps the same number of heads, KV heads and FFN neurons; a KV head goes only
 * with all of its query heads; each kept KV head keeps the same number of query heads (so the
 * query-to-KV mapping h / group stays right); head_dim is unchanged (n_heads·head_dim may then
 * differ from dim: export writes key_length / value_length). Removed blocks renumber the later
 * ones. */
#ifndef QB_PRUNE_STRUCTURED_H
#define QB_PRUNE_STRUCTURED_H

#include "../model/model.h"
#include "../calib/calib.h"

/* What to remove: fractions of each block's heads and FFN neurons (rounded to the nearest
 * count the regular shape allows), and a number of whole blocks. */
typedef struct {
    double heads;  /* [0, 1): share of the attention heads removed in every block */
    double ffn;    /* [0, 1): share of the FFN neurons removed in every block */
    int layers;    /* 0 .. n_layers - 1: blocks removed */
} qb_prune_amount;

/* Measured importance of a model's parts (sizes of the model it was measured on). */
typedef struct {
    int n_layers, n_heads, hidden_dim;
    int n_windows, n_ctx; /* the calibration it came from: windows × tokens */
    double *head;   /* (n_layers, n_heads) */
    double *neuron; /* (n_layers, hidden_dim) */
    double *layer;  /* (n_layers) KLD with the block skipped; NULL when not measured */
} qb_prune_importance;

/* Which parts stay (the original model's sizes; 1 = kept). A valid selection is regular:
 * every kept block keeps kv_kept KV heads, each of those heads_per_kv query heads (and none of
 * the query heads of a KV head that goes), and ffn_kept neurons; at least one block, head and
 * neuron stays. */
typedef struct {
    int n_layers, n_heads, n_kv_heads, hidden_dim;
    uint8_t *keep_layer;  /* (n_layers) */
    uint8_t *keep_head;   /* (n_layers, n_heads) */
    uint8_t *keep_kv;     /* (n_layers, n_kv_heads) */
    uint8_t *keep_neuron; /* (n_layers, hidden_dim) */
} qb_prune_selection;

/* Options of the measuring run. */
typedef struct {
    int n_samples; /* calibration windows (0 = all the text holds) */
    int n_ctx;     /* window length (0 = 256) */
    void (*progress)(void *ud, const char *stage, int done, int total); /* calling thread */
    void *ud;
    const volatile int *cancel; /* non-zero stops: QB_ERR_CANCELLED, the model untouched */
} qb_prune_structured_opts;

/* Whether m can be pruned by a (ranges, at least one head / neuron / block left, a model the
 * rewrite handles: separate q/k/v and gate/up/down matrices, no experts, not a view; blocks
 * removed only without a sliding-window pattern). Errors are one line naming the problem. */
qb_status qb_prune_amount_check(qb_ctx *ctx, const qb_model *m, const qb_prune_amount *a);

/* Importance of m's heads and neurons from c (a calibration of m that captured QB_OBS_ATTN_OUT
 * and QB_OBS_FFN_DOWN_IN of every layer), and, when with_layers, each block's influence over
 * c's windows (n_layers + 1 forward passes over each window, the skipped ones starting from the
 * full model's residual at that block). out is the caller's (qb_prune_importance_free).
 * Errors: a calibration of another shape, QB_ERR_CANCELLED, out of memory. */
qb_status qb_prune_importance_measure(qb_ctx *ctx, const qb_model *m, const qb_calib *c, bool with_layers,
                                      const qb_prune_structured_opts *o, qb_prune_importance *out);
void qb_prune_importance_free(qb_prune_importance *imp);

/* Choose what goes for amount a (checked as qb_prune_amount_check does) by imp (of m):
 * the a->layers least influential blocks; in every block the least important FFN neurons; for
 * heads, the regular shape (kept KV heads × heads per KV head) whose head count is nearest to
 * the asked share, ties to the one keeping the most importance, and in each block the most
 * important heads of each KV group, then the KV groups keeping the most. out is the caller's
 * (qb_prune_selection_free). */
qb_status qb_prune_select(qb_ctx *ctx, const qb_model *m, const qb_prune_importance *imp, const qb_prune_amount *a,
                          qb_prune_selection *out);
void qb_prune_selection_free(qb_prune_selection *s);
/* An all-kept selection for m (to edit by hand: tests, scripts). */
qb_status qb_prune_selection_all(qb_ctx *ctx, const qb_model *m, qb_prune_selection *out);

/* Rewrite m to keep only what s keeps: wq rows and wo columns of the removed heads (and their
 * q bias), wk / wv rows of removed KV heads (and biases), w_gate / w_up rows and w_down columns
 * of removed neurons, the removed blocks' tensors (the later blocks renamed blk.N-1...); the
 * config (n_heads, n_kv_heads, hidden_dim, n_layers) follows and the model is bound again
 * (every shape checked). A rewritten tensor takes the model's current values: the same storage
 * type where whole rows go (and for F32 / F16 / BF16 where columns go), else F32; it becomes
 * both the current and the original representation, so quantizing, restoring and exporting
 * work on the pruned model as on any (prune first, then quantize: a tensor quantized in memory
 * before pruning keeps its quantized values as its new original). Sets m->reshaped.
 * m must not be a view and must have no views or run states alive (they borrow its tensors).
 * Errors (an irregular or mismatched selection, out of memory) leave m unchanged. */
qb_status qb_prune_structured_apply(qb_ctx *ctx, qb_model *m, const qb_prune_selection *s);

/* The whole job on m: calibrate on the text at calib_path (the windows of o), measure, select
 * by a and rewrite. imp_out / sel_out (each may be NULL) receive what was measured and chosen,
 * the caller's to free. On any error m is unchanged. */
qb_status qb_prune_structured(qb_ctx *ctx, qb_model *m, const char *calib_path, const qb_prune_amount *a,
                              const qb_prune_structured_opts *o, qb_prune_importance *imp_out,
                              qb_prune_selection *sel_out);

/* Counts of a selection: blocks, query heads and KV heads per block, neurons per block kept. */
void qb_prune_selection_counts(const qb_prune_selection *s, int *layers, int *heads, int *kv_heads, int *neurons);

#endif
