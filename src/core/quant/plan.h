/* plan.h — a quantization plan: which format each tensor gets, as plain data. Rules map a
 * tensor-name pattern (shell glob: "*ffn_down*", "blk.3.*", "output.weight") to a format;
 * the last matching rule wins, so a plan reads "everything Q4_K, but ffn_down Q6_K, but layer
 * 0 Q8_0". Plans are built by hand (TUI), from Lua, or read from / saved to a text file:
 *
 *     # quantbench plan v1
 *     * = q4_k
 *     *ffn_down* = q6_k
 *     blk.0.* = int8-channel
 */
#ifndef QB_PLAN_H
#define QB_PLAN_H

#include "format.h"

typedef struct {
    char *pattern;  /* owned */
    qb_format fmt;
} qb_plan_rule;

typedef struct {
    qb_plan_rule *rules; /* owned */
    int n_rules;
} qb_plan;

void qb_plan_init(qb_plan *p);
void qb_plan_free(qb_plan *p);
/* Append a rule (it overrides earlier ones where both match). */
qb_status qb_plan_add(qb_ctx *ctx, qb_plan *p, const char *pattern, const qb_format *fmt);
/* The format for a tensor name: the last matching rule's, or NULL when none matches. */
const qb_format *qb_plan_lookup(const qb_plan *p, const char *tensor_name);
/* Parse plan text (the format above; errors give the line number). name is for messages. */
qb_status qb_plan_parse(qb_ctx *ctx, const char *name, const char *text, qb_plan *out);
qb_status qb_plan_load(qb_ctx *ctx, const char *path, qb_plan *out);
/* Serialise (malloc'd string, caller frees) / save atomically (temp file + rename). */
char *qb_plan_to_string(const qb_plan *p);
qb_status qb_plan_save(qb_ctx *ctx, const qb_plan *p, const char *path);

#endif
