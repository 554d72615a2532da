/* session.h — the live workbench state every panel reads: the open model (and its
 * full-precision twin for comparisons), the tensor selection, the method/bits/granularity
 * choice and its analysis, the plan with undo/redo, the running job, the generation
 * transcript and the status message. Only the UI thread touches a session; workers get
 * copies or reference-counted buffers and answer through the message queue. */
#ifndef QB_TUI_SESSION_H
#define QB_TUI_SESSION_H

#include <stdatomic.h>
#include "core/eval/eval.h"
#include "core/calib/calib.h"
#include "core/quant/importance.h"
#include "core/jobs/job.h"
#include "core/model/model.h"
#include "core/quant/apply.h"
#include "core/quant/stats.h"

#include <stdio.h>

#define TUI_UNDO_MAX 64
#define TUI_GEN_MAX 512

/* The original values of one tensor as f32, filled once by the first analysis job that needs
 * them and shared (reference counted) by later ones. */
typedef struct tui_srcbuf tui_srcbuf;

/* Message tags used by the workbench's jobs. */
enum {
    TUI_MSG_ANALYSIS = QB_MSG_USER, /* data = qb_analysis*, i0 = request serial */
    TUI_MSG_TOKEN,                  /* i0 = side (0 base, 1 plan), i1 = token id, text = bytes */
    TUI_MSG_GEN_SIDE_DONE,          /* i0 = side, d0 = tokens/s, i1 = tokens */
    TUI_MSG_PPL,                    /* data = tui_ppl_msg* (tasks.c) */
    TUI_MSG_NOTE,                   /* text = a line for the status bar */
    TUI_MSG_METHOD_AN,              /* data = tui_method_an* (methodan.h), i0 = request serial */
    TUI_MSG_CALIB,                  /* data = qb_calib* (moved out by the receiver) */
    TUI_MSG_TRAIN,                  /* i0 = step, i1 = steps, d0 = loss, d1 = tokens/s (trainjob.c) */
    TUI_MSG_LEARN_STEP,             /* learned rounding's analysis: i0 = step, i1 = steps, d0 = its
                                       output error (methodan.c); job id = request serial */
    TUI_MSG_TRAIN_AN,               /* data = qb_analysis* of a tensor as training left it, i0 = its
                                       index, i1 = step (trainjob.c) */
};

typedef enum { JOB_NONE, JOB_APPLY, JOB_GEN, JOB_PPL, JOB_EXPORT, JOB_CALIB, JOB_ACT, JOB_TRAIN } tui_job_kind;

typedef struct {
    char text[4096];     /* decoded continuation */
    int32_t ids[TUI_GEN_MAX];
    int off[TUI_GEN_MAX]; /* byte offset of each token in text */
    int n_ids;
    int div_byte;        /* byte offset in text where the first diverging token starts, or -1 */
    double tps;          /* tokens/s (0 while running) */
    bool done;
} tui_gen_side;

/* What the browser shows of one tensor: copied from the model on the UI thread while no job
 * is changing it (tui_session_sync), so drawing never reads a tensor an apply job is
 * rewriting on a worker thread. */
typedef struct {
    qb_format fmt;
    size_t nbytes;
} tui_tensor_state;

typedef struct tui_session {
    qb_ctx ctx;
    qb_model *m;            /* the model being quantized; owned */
    qb_model *base;         /* the same file opened again, untouched (lazily; NULL for demo) */
    bool demo;
    qb_msg_queue *q;        /* where every job posts; owned */

    /* browser */
    int sel;                /* selected tensor index */
    int cursor;             /* browser row under the cursor (browser.h rows) */
    bool *unfolded;         /* per layer (n_layers + 1 entries: last = "other") */
    int top;                /* first visible browser row */
    char search[128];
    double *heat;           /* per tensor sensitivity (NaN: none); from a scan, may be NULL */
    tui_tensor_state *tstate; /* per tensor, as shown (tui_session_sync) */
    char heat_label[32];    /* what heat measures ("KLD") */

    /* choice */
    int method, bits, group;
    bool custom;            /* fmt set directly (qb.set{format=…}) instead of by the method */
    qb_format fmt;

    /* analysis of the selected tensor at the current choice */
    tui_srcbuf *src;        /* of tensor src_tensor */
    int src_tensor;
    int serial;             /* last analysis requested */
    int shown_serial;       /* serial of the analysis in an */
    bool an_preview;        /* an is the quick preview on a sample of rows; the full one follows */
    int train_an_step;      /* > 0: an is the tensor as :finetune held it after that step */
    qb_analysis an;
    bool have_an;
    /* a calibration method's analysis (an_method > 0: qb_method_kind of the method shown):
     * the layer's relative output error for it and for RTN of the same format, AWQ's α */
    int an_method;
    double an_oerr, an_oerr_rtn;
    float an_alpha;
    char an_err[256];       /* the choice cannot store this tensor (empty: fine) */
    bool an_hint;           /* an_err is a hint (GPTQ without calibration …), not an error */
    qb_job *an_jobs[8];     /* analysis jobs not yet reaped (cancelled ones included) */
    int n_an_jobs;
    int hist_bins;          /* bins to ask for (set from the plot width) */
    struct tui_an_cache *an_cache; /* full analyses already computed (analysis.c) */

    /* calibration (:calib): every capture point with XᵀX, kept for GPTQ/AWQ; NULL = none */
    qb_calib *calib;
    char calib_desc[200];   /* "calib-docs.txt, 8 × 128 tokens" */
    /* importance matrix (:imatrix FILE): weights RTN applies of ggml types as llama-quantize
     * --imatrix does; NULL = none. importance borrows imatrix. */
    struct qb_imatrix *imatrix;
    qb_importance importance;
    char imatrix_desc[200]; /* "docs.dat, 42 entries" */

    /* plan */
    qb_plan plan;
    struct qb_apply_state *apply_state; /* what made each tensor's representation (plan_apply.h);
                                           written by the apply job, read after the join */
    char act_desc[64];      /* the activation method on (actmode.c; "" = none) */
    qb_run_config *run;     /* how m runs: its activation settings, made by the first :act
                               (NULL until then: float); passed to the plan side's runs */
    char act_pending[64];   /* what the running act job turns on ("" = off) */
    char *undo[TUI_UNDO_MAX];
    int n_undo;
    char *redo[TUI_UNDO_MAX];
    int n_redo;
    qb_model_size size;

    /* the long job (one at a time) */
    qb_job *job;
    tui_job_kind job_kind;
    int next_job_id;

    /* generation */
    char prompt[256];
    int n_predict;
    tui_gen_side gen[2];
    bool gen_shown;

    /* fine-tuning (:finetune, trainjob.c): the loss of every step so far, drawn as a curve */
    double *train_loss;     /* (train_steps); owned */
    int train_n, train_steps;
    bool train_show;        /* the curve is shown above the plots (from the start of a run on) */
    double train_tps, train_t0;
    char train_desc[160];   /* "QAT + distillation on calib-docs.txt" */
    const char *train_legend; /* what the curve measures (static) */
    _Atomic int train_watch; /* the selected tensor, for the training job's live plots */

    /* last evaluation */
    qb_kld_result eval;     /* the last perplexity/KLD job's result */
    bool have_eval;
    char eval_line[256];
    char eval_text[512];    /* path of the evaluation text */
    int eval_chunks;
    char task_file[512];    /* :tasks FILE [N]: a task file scored beside PPL/KLD ("" = none) */
    int task_kind;          /* its qb_tasks_kind */
    int task_n;             /* tasks to draw (0 = all) */

    /* display */
    bool log_hist, zoom_map, present, help, autoplay;
    bool weighted_view;     /* w: metrics and error plot show the importance-weighted analysis
                               (an.wstats, an.hist_werr) where the imatrix has the tensor */
    int help_top; /* first line of the help overlay shown (it scrolls when longer than the screen) */
    bool scan_view;         /* the sensitivity view replaces the plots */
    int scan_cursor;
    int scan_agg;           /* the view's grouping (scanview.h TUI_SCAN_*) */
    double autoplay_next;
    char status[512];
    bool status_err;
    bool quit_asked;        /* second Ctrl-C: "quit? y/n" */
    bool quit;
    int apply_pending;      /* 'a' pressed: waiting for the scope key */
    FILE *trace;            /* QB_TUI_TRACE */
    struct tui_script *script; /* the command line's Lua thread and state (script.c), on first use */
    unsigned script_serial; /* numbers the script threads (script.c) */
    const volatile int *interrupt; /* non-zero while a Ctrl-C waits (crt.h): stops Lua code */
} tui_session;

/* Initialise with model m (taken; NULL opens the built-in demo). On failure the message is
 * on s->ctx. */
qb_status tui_session_init(tui_session *s, qb_model *m);
void tui_session_free(tui_session *s);
/* Replace the model with the one at path; on failure keep the current one, status says why. */
bool tui_session_open(tui_session *s, const char *path);

/* Copy every tensor's format and bytes (tstate) and the model size (size) from the model;
 * does nothing while an apply job is changing the model (its end calls this again). UI
 * thread only. */
void tui_session_sync(tui_session *s);

/* Status line (printf-style); err marks it red. */
void tui_status(tui_session *s, bool err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The selected tensor (never NULL: models have tensors). */
qb_tensor *tui_sel(const tui_session *s);
/* Select tensor i (unfolds its layer) and request its analysis. */
void tui_select(tui_session *s, int i);
/* Select by name ("blk.3.ffn_down" or a full name; a substring search from the selection
 * onward when not exact). False when nothing matches. */
bool tui_select_name(tui_session *s, const char *name, bool substring);
/* Layer index of tensor name ("blk.N.…") or -1. */
int tui_tensor_layer(const char *name);

/* Recompute s->fmt from method/bits/group (unless custom) and request a new analysis. */
void tui_choice_changed(tui_session *s);
/* Set the choice by method key / bits / group (0 keeps), or a format name. False + status. */
bool tui_set_choice(tui_session *s, const char *method, int bits, int group, bool group_given, const char *format);
/* Start an analysis job for the selection and choice (cancels older ones). */
void tui_request_analysis(tui_session *s);

/* Apply the current format to scope 't' tensor, 'k' kind, 'l' layer, 'm' model (a job). */
bool tui_apply(tui_session *s, char scope);
bool tui_undo(tui_session *s);
bool tui_redo(tui_session *s);
bool tui_plan_save(tui_session *s, const char *path);
bool tui_plan_load(tui_session *s, const char *path);

/* Long jobs. Each refuses (status) when another one runs. */
bool tui_generate(tui_session *s, const char *prompt);
bool tui_perplexity(tui_session *s, int chunks);
/* :tasks FILE [N] — score FILE's tasks (HellaSwag text; *.csv Winogrande; *.bin multiple
 * choice; N drawn as llama-perplexity draws them) after each :ppl; :tasks off — no more. */
void tui_set_tasks(tui_session *s, const char *arg);
bool tui_export(tui_session *s, const char *path);
/* Calibrate the model on text file path (samples windows of ctx tokens; 0 = 32 × 256) as a
 * job; the result (with XᵀX) replaces the session's calibration when the job finishes. */
bool tui_calibrate(tui_session *s, const char *path, int samples, int ctx);
/* `:act smoothquant [ALPHA] | int8 [THRESHOLD] | off` as a job (actmode.c). */
bool tui_act(tui_session *s, const char *args);
/* Cancel the running job; false when none runs. */
bool tui_cancel(tui_session *s);

/* Drain the message queue (UI thread). Returns true when something changed on screen. */
bool tui_drain(tui_session *s);

#endif
