/* runcfg.h — how a caller wants a model run, kept apart from the model (which holds weights
 * and hyperparameters only): the activation quantization of each linear matrix (float, int8
 * per token, int8 with a static per-tensor scale, LLM.int8() with float outlier columns), the
 * KV-cache type, and the LLM.int8() outlier counters the runs add to.
 *
 * A qb_run_config is made for one model (its entries follow m->tensors, so it also serves the
 * model's views), filled by the activation methods (SmoothQuant, LLM.int8: method/) and given
 * to qb_infer_new_run or, through qb_eval_opts / qb_generate_opts, to the evaluations. The
 * caller owns it. Runs only read the settings; they add to the counters atomically, so any
 * number of runs on any threads may share one config (change settings only while none runs). */
#ifndef QB_RUNCFG_H
#define QB_RUNCFG_H

#include "../model/model.h"

typedef enum {
    QB_ACT_FLOAT = 0,        /* activations stay float (the format's own path) */
    QB_ACT_INT8 = 1,         /* dynamic per-token int8 */
    QB_ACT_INT8_STATIC = 2,  /* static per-tensor int8 */
    QB_ACT_INT8_OUTLIER = 3, /* LLM.int8(): int8 with float outlier columns */
} qb_act_mode;

/* How the activations meet one weight matrix; all zero = in float, as always. Only int8
 * weight formats run them in int8 (infer/matmul_w8a8.h); others stay float. */
typedef struct {
    int mode;         /* qb_act_mode */
    float scale;      /* QB_ACT_INT8_STATIC: x ~ scale * q, q in -127..127 */
    float threshold;  /* QB_ACT_INT8_OUTLIER: feature columns with |x| >= this stay float */
} qb_act_setting;

/* LLM.int8() counters of one matrix: feature columns seen and those taken as outliers, summed
 * over every multiplication of every run that used the config. */
typedef struct {
    int64_t seen, outlier;
} qb_act_counts;

typedef struct qb_run_config {
    int kv_type;            /* qb_kv_type (kvcache.h) of the runs' KV caches; 0 = f32 */
    int n_tensors;          /* entries below: the model's n_tensors */
    qb_act_setting *act;    /* (n_tensors) per tensor, indexed as m->tensors; owned */
    qb_act_counts *counts;  /* (n_tensors) added to atomically by runs; owned */
} qb_run_config;

/* A config for m: every activation float, f32 KV cache, counters zero. Caller frees with
 * qb_run_config_free. Errors: out of memory. */
qb_status qb_run_config_new(qb_ctx *ctx, const qb_model *m, qb_run_config **out);
void qb_run_config_free(qb_run_config *rc);

/* The setting of tensor t of m (or of a view of m); NULL when rc is NULL or t is not one of
 * m's tensors (then it runs in float). Borrowed from rc. */
const qb_act_setting *qb_run_config_act(const qb_run_config *rc, const qb_model *m, const qb_tensor *t);
/* The same, writable (for the methods that set them); NULL as above. */
qb_act_setting *qb_run_config_act_mut(qb_run_config *rc, const qb_model *m, const qb_tensor *t);
/* Whether any tensor has activations other than float. rc may be NULL (false). */
bool qb_run_config_any_act(const qb_run_config *rc);
/* Every activation back to float (the KV type stays); counters zero. */
void qb_run_config_clear_act(qb_run_config *rc);

/* Add (seen, outlier) to tensor i's counters (atomic: safe from any thread). */
void qb_run_config_count(qb_run_config *rc, int i, int64_t seen, int64_t outlier);
/* Tensor i's counters as they stand (atomic reads). */
qb_act_counts qb_run_config_counts(const qb_run_config *rc, int i);
/* Every counter back to zero (not while a run uses rc). */
void qb_run_config_reset_counts(qb_run_config *rc);

#endif
