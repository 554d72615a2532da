/* lqb_internal.h — what the files of the `qb` Lua module share: the per-state host data (the
 * qb_ctx, limits, output routing), argument helpers that raise Lua errors naming the
 * argument or option, and the registration functions of each part of the module. */
#ifndef QB_LQB_INTERNAL_H
#define QB_LQB_INTERNAL_H

#include "lqb.h"

#include <lauxlib.h>
#include <lualib.h>

#include "core/quant/importance.h"
#include "core/eval/eval.h"
#include "core/quant/format.h"
#include "core/quant/plan.h"

#define LQB_MODEL "qb.model"
#define LQB_TENSOR "qb.tensor"
#define LQB_PLAN "qb.plan"

/* Host data of one state (its pointer lives in the state's extra space). */
typedef struct {
    qb_ctx ctx;
    bool trusted;
    char *write_dir;     /* realpath of the output folder, or NULL (no file output); owned */
    char *lib_dir;       /* shipped Lua helpers; owned, may be NULL */
    size_t mem_used, mem_limit;
    double deadline;     /* monotonic seconds, 0 = none */
    double max_seconds;
    const volatile int *cancel;
    volatile int stop;   /* the flag core sees when a deadline or a Lua progress error applies */
    void (*print)(void *ud, const char *line);
    void *print_ud;
    void (*progress)(void *ud, const char *label, int done, int total);
    void *progress_ud;
} lqb_host;

typedef struct {
    qb_model *m;   /* NULL once closed */
    bool owned;
    struct qb_run_config *run; /* how m runs from this userdata (model:act); owned; NULL = float */
} lqb_model;

typedef struct {
    qb_tensor *t;  /* borrowed from the model kept in the userdata's user value */
} lqb_tensor;

lqb_host *lqb_host_of(lua_State *L);
double lqb_now(void);

/* Emit text through the state's print route, split into lines. */
void lqb_print(lua_State *L, const char *text);

/* Raise a Lua error with the core's message (position of the calling Lua code first). */
int lqb_fail(lua_State *L, qb_status st);

/* Long core calls: the cancel pointer to pass to core, and the progress bridge. A progress
 * context holds the Lua callback (opts table field "progress"), the label for the host. */
typedef struct {
    lua_State *L;
    const char *label;
    int cb_ref;          /* LUA_NOREF when none */
    int failed;          /* the Lua callback raised: its message is at registry ref err_ref */
    int err_ref;
} lqb_progress;
void lqb_progress_begin(lua_State *L, lqb_progress *p, const char *label, int opts_idx);
void lqb_progress_cb(void *ud, int done, int total);
const volatile int *lqb_cancel_ptr(lua_State *L);
/* After the core call: raise the right error for st (cancelled, time limit, callback error,
 * core message) or return when st is QB_OK. Releases the references. */
void lqb_progress_end(lua_State *L, lqb_progress *p, qb_status st);
/* Raise "cancelled" / "time limit" when the host flag or deadline says so; the message carries
 * the position of the function at stack level `level` (0 in the hook, 1 in a C function). */
void lqb_check_stop(lua_State *L, int level);

/* Option helpers: t is the index of an options table (or 0/none). Wrong types raise
 * "bad argument #arg to 'fn' (option 'key': integer expected, got string)". */
lua_Integer lqb_opt_int(lua_State *L, int t, const char *key, lua_Integer def);
double lqb_opt_num(lua_State *L, int t, const char *key, double def);
bool lqb_opt_bool(lua_State *L, int t, const char *key, bool def);
const char *lqb_opt_str(lua_State *L, int t, const char *key, const char *def);

/* t[k] = v for the table on top of the stack. */
void lqb_set_int(lua_State *L, const char *k, lua_Integer v);
void lqb_set_num(lua_State *L, const char *k, double v);
void lqb_set_str(lua_State *L, const char *k, const char *v);
/* Check that argument arg is a table or absent; returns its absolute index or 0. */
int lqb_opt_table(lua_State *L, int arg);

/* A format from a string ("q4_k", "int4-g128") or a setting table
 * {format=, bits=, group=, sym=, method=}: raises on errors. */
void lqb_check_format(lua_State *L, int idx, qb_format *out);
/* The same for a plan rule's table: its method= field is the rule's method, not an error. */
void lqb_check_rule_format(lua_State *L, int idx, qb_format *out);
/* Push a format as a table {name=, kind=, bits=, group=, sym=} (kind, bits and group from the
 * format table's row; sym only where the kind has a sym/asym choice). */
void lqb_push_format(lua_State *L, const qb_format *f);

/* Resolve a path the recipe wants to write: relative to write_dir, no "..", not absolute,
 * parent folders created inside write_dir. Raises when refused. Returns a malloc'd full path
 * (caller frees; pushed nothing). */
char *lqb_output_path(lua_State *L, const char *path);

qb_model *lqb_check_model(lua_State *L, int idx);
/* The importance matrix (qb.imatrix / qb.load_imatrix) at idx; an argument error otherwise. */
struct qb_imatrix *lqb_check_imatrix(lua_State *L, int idx);
/* The run configuration of the model userdata at idx (activation settings, KV type: core
 * infer/runcfg.h), made on first use when create is true (raises when out of memory); NULL
 * when there is none and create is false. Owned by the userdata. */
struct qb_run_config *lqb_model_run(lua_State *L, int idx, bool create);
/* The qb.calib result at idx (a calibration of m; errors for an empty one or another model's),
 * with *given = true; NULL and *given = false when idx holds something else. */
const struct qb_calib *lqb_opt_calib(lua_State *L, int idx, const qb_model *m, bool *given);
qb_plan *lqb_check_plan(lua_State *L, int idx);
/* Push a plan userdata that takes ownership of *p (p is zeroed). */
void lqb_push_plan(lua_State *L, qb_plan *p);
/* Plan from a plan userdata or a rules table at idx into out (owned by the caller, free with
 * qb_plan_free); returns true when out must be freed. */
const qb_plan *lqb_to_plan(lua_State *L, int idx, qb_plan *tmp, bool *owned);

/* A growable C string in a userdata (pushed; freed by __gc), so building text can raise
 * Lua errors midway without leaking. */
typedef struct {
    char *p;
    size_t n, cap;
} lqb_sbuf;
lqb_sbuf *lqb_sbuf_new(lua_State *L);
void lqb_sbuf_add(lua_State *L, lqb_sbuf *b, const char *s, size_t n);
void lqb_sbuf_adds(lua_State *L, lqb_sbuf *b, const char *s);
void lqb_sbuf_addf(lua_State *L, lqb_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The Fisher estimate asked by options table o (estimate="fisher", the calibration text at
 * key text_key, ctx=, calib_tokens= (else tokens=), labels="sampled"|"data",
 * positions="half"|"all", samples=, seed=, stream="auto"|"on"|"off"|"recompute", progress=): computed,
 * and held by a userdata pushed on the stack (its __gc frees it); NULL and nothing pushed when
 * o asks no estimate. A streamed pass prices the n_price formats of price (the caller's: the
 * scan's format, the search's candidates). Raises on bad options and core errors. (lqb_fisher.c) */
struct qb_fisher;
typedef struct {
    struct qb_fisher *f;
    int32_t *tokens; /* the calibration text's */
    int n_tokens;
} lqb_fisher_box;
lqb_fisher_box *lqb_opt_fisher(lua_State *L, qb_model *m, int o, const char *text_key, const qb_format *price,
                               int n_price);

/* Tokens of an evaluation text at stack index idx: a readable file path, else the string itself
 * (tokenized with BOS when the model adds one). malloc'd (caller frees); raises on errors. */
int32_t *lqb_eval_tokens(lua_State *L, qb_model *m, int idx, int *n);
/* Push a perplexity result {ppl, ppl_err, nll, chunks, ctx, tokens, seconds}. (lqb_model.c) */
void lqb_push_ppl(lua_State *L, const qb_ppl_result *r);
/* model:kld(base_file, text [, opts]) with the model at 1: llama-perplexity's statistics
 * against a KL-divergence base file. (lqb_kld.c) */
int lqb_kld_with_base(lua_State *L);
/* model:tasks{hellaswag=|winogrande=|multiple_choice= path, tasks=, ctx=, progress=}: task
 * accuracy as llama-perplexity scores it. (lqb_tasks.c) */
int lqb_model_tasks(lua_State *L);
/* model:finetune{...} (lqb_finetune.c). */
int lqb_model_finetune(lua_State *L);
/* model:prune_structured{heads=, ffn=, layers=, calib=, samples=, ctx=, progress=}: structured
 * pruning in place; returns the model and a report. (lqb_prune.c) */
int lqb_model_prune_structured(lua_State *L);
/* model:apply: qb_plan_apply with plan p and the options table at o (0: none): method= (and
 * its parameters) for rules that name none, calib=, imatrix=, progress=. Raises on errors.
 * (lqb_method.c) */
void lqb_apply_plan(lua_State *L, qb_model *m, const qb_plan *p, int o);
/* The option imatrix= of the options table at o (0: none), a qb.imatrix, as the quantizers
 * take it, into *out; NULL when absent. Raises on another type, an empty imatrix or one whose
 * importance is not finite. (lqb_imatrix.c) */
const qb_importance *lqb_opt_importance(lua_State *L, int o, const char *fn, qb_importance *out);
/* The method a table at idx names (field method = "gptq" or "gptq damp=0.1", and the method's
 * parameters as fields: damp=0.1, act_order=true, ...) into *out; false (out = RTN) when the
 * table names none. Raises on a bad name or parameter. (lqb_plan.c) */
bool lqb_opt_method(lua_State *L, int idx, qb_method_spec *out);

/* Registration of each part (each adds fields to the module table on top of the stack). */
void lqb_open_model(lua_State *L);
void lqb_open_tensor(lua_State *L);
void lqb_open_plan(lua_State *L);
void lqb_open_io(lua_State *L);
void lqb_open_plot(lua_State *L);
void lqb_open_misc(lua_State *L);
void lqb_open_method(lua_State *L);
void lqb_open_scan(lua_State *L);
void lqb_open_act(lua_State *L);
void lqb_open_imatrix(lua_State *L);
void lqb_open_kld(lua_State *L);
int luaopen_qb(lua_State *L);

#endif
