/* plan.h — a quantization plan as plain data: for each tensor, the format it is stored in and
 * the method (with its parameters) that chooses the values. Rules map a tensor-name pattern
 * (shell glob: "*ffn_down*", "blk.3.*", "output.weight") to (format, method, parameters); the
 * last matching rule wins, so a plan reads "everything Q4_K, but ffn_down by GPTQ, but layer
 * 0 int4 by AWQ". Plans are built by hand (TUI), from Lua, or read from / saved to a file:
 *
 *     # quantbench plan v2
 *     * = q4_k
 *     *ffn_down* = q4_k gptq
 *     blk.0.* = int4-g128 awq alpha=0.5
 *
 * A rule's right side is FORMAT [METHOD [KEY=VALUE ...]]; no method means RTN. Parameters are
 * checked against the method's list (below) when parsed: an unknown key, a value out of range
 * or a parameter given twice is an error naming the file and line. Version 1 files (FORMAT
 * only) and the workbench's older snapshots (a comment "# tui methods: rga…" giving each rule's
 * method by one letter) keep loading.
 *
 * This file owns the grammar of method specifications (names, parameter keys and ranges);
 * what the parameters mean lives with the methods (src/core/method/method.h). */
#ifndef QB_PLAN_H
#define QB_PLAN_H

#include "format.h"

typedef enum { QB_METHOD_RTN = 0, QB_METHOD_GPTQ, QB_METHOD_AWQ, QB_METHOD_LEARNED, QB_METHOD_COUNT } qb_method_kind;

#define QB_METHOD_MAX_PARAMS 5

/* A method and the parameters given for it (the others take the method's defaults).
 *   rtn:  none
 *   gptq: block (integer 1..65536), damp (0..10; 0 = none), act_order (0/1, true/false),
 *         weighted (0/1)
 *   awq:  alpha (0..1; absent = searched), grid (integer 1..1000), clip (0/1, true/false),
 *         weighted (0/1)
 *   learned: iters (1..100000), lr (0..1), batch (1..100000), weighted (0/1), scales (0/1) */
typedef struct {
    qb_method_kind kind;
    unsigned set;                       /* bit k: parameter k of kind's list was given */
    double value[QB_METHOD_MAX_PARAMS]; /* value of parameter k where set */
} qb_method_spec;

typedef struct {
    char *pattern;         /* owned */
    qb_format fmt;
    qb_method_spec method; /* RTN with no parameters unless the rule says otherwise */
    int line;              /* line in the file it was parsed from (0: built in code) */
} qb_plan_rule;

typedef struct {
    qb_plan_rule *rules; /* owned */
    int n_rules;
} qb_plan;

/* ---- method specifications ---- */

/* "rtn", "gptq", "awq" (static storage; "?" for an unknown kind). */
const char *qb_plan_method_name(qb_method_kind k);
/* Name of parameter k of method kind, or NULL past the last one (static storage). */
const char *qb_method_param_name(qb_method_kind kind, int k);
/* The method called name (case-insensitive) with no parameters. Errors: unknown name. */
qb_status qb_method_spec_init(qb_ctx *ctx, const char *name, qb_method_spec *out);
/* Give parameter key the value v (checked: known key, in range, integer / boolean where the
 * key is one, not given before). Errors name the method and its keys. */
qb_status qb_method_spec_set(qb_ctx *ctx, qb_method_spec *s, const char *key, double v);
/* Parse "METHOD [KEY=VALUE ...]" (booleans may be written true/false). */
qb_status qb_method_spec_parse(qb_ctx *ctx, const char *text, qb_method_spec *out);
/* The value of parameter key when given (true) or false. */
bool qb_method_spec_get(const qb_method_spec *s, const char *key, double *v);
/* "gptq damp=0.1 act_order=1"; "rtn" for plain RTN. Returns the length it needed. */
int qb_method_spec_format(const qb_method_spec *s, char *buf, size_t cap);
bool qb_method_spec_equal(const qb_method_spec *a, const qb_method_spec *b);
/* Whether the method reads calibration data (GPTQ, AWQ). */
bool qb_method_spec_needs_calib(const qb_method_spec *s);

/* ---- plans ---- */

void qb_plan_init(qb_plan *p);
void qb_plan_free(qb_plan *p);
/* Append a rule with format fmt applied by RTN (it overrides earlier ones where both match). */
qb_status qb_plan_add(qb_ctx *ctx, qb_plan *p, const char *pattern, const qb_format *fmt);
/* Append a rule with a method (NULL: RTN). line is kept for messages (0: none). */
qb_status qb_plan_add_rule(qb_ctx *ctx, qb_plan *p, const char *pattern, const qb_format *fmt,
                           const qb_method_spec *method, int line);
/* *out (initialised here; caller frees with qb_plan_free) becomes a copy of p. */
qb_status qb_plan_copy(qb_ctx *ctx, const qb_plan *p, qb_plan *out);
/* Index of the last rule matching tensor_name, or -1. */
int qb_plan_lookup_rule(const qb_plan *p, const char *tensor_name);
/* The format for a tensor name: the last matching rule's, or NULL when none matches. */
const qb_format *qb_plan_lookup(const qb_plan *p, const char *tensor_name);
/* Whether some rule's method reads calibration data. */
bool qb_plan_needs_calib(const qb_plan *p);
/* Parse plan text (the format above; errors give name:line). name is for messages. */
qb_status qb_plan_parse(qb_ctx *ctx, const char *name, const char *text, qb_plan *out);
qb_status qb_plan_load(qb_ctx *ctx, const char *path, qb_plan *out);
/* Serialise as version 2 (malloc'd string, caller frees) / save atomically (temp + rename). */
char *qb_plan_to_string(const qb_plan *p);
qb_status qb_plan_save(qb_ctx *ctx, const qb_plan *p, const char *path);

#endif
