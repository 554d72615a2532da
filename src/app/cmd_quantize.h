/* cmd_quantize.h — private to `quantbench quantize` (cmd_quantize.c, cmd_quantize_plan.c):
 * its parsed arguments and the in-memory path (plans with methods, replay of a recipe). */
#ifndef QB_CMD_QUANTIZE_H
#define QB_CMD_QUANTIZE_H

#include "core/quant/plan.h"
#include "core/quant/recipe.h"
#include "core/quant/quantize_file.h"

typedef struct {
    const char *pos[3];
    int n_pos;
    const char *type;      /* TYPE (pos[2]) or NULL */
    const char *plan_path; /* --plan: a plan file or a GGUF with a recipe */
    bool pure, allow_requantize;
    long threads;
    const char *method;    /* --method, NULL: none */
    const char *calib;     /* --calib FILE */
    long samples, n_ctx, block, iters, batch; /* iters, batch: learned rounding (0: its defaults) */
    double damp, alpha, lr; /* damp < 0: not given; lr 0: not given */
    bool act_order, clip, no_clip, alpha_set, weighted;
    const char *imatrix;        /* --imatrix FILE */
    const qb_importance *imp;   /* its importance once loaded, else NULL */
} qz_args;

bool qz_is_gguf(const char *path);
/* The --method flags as a method specification. */
qb_status qz_method_spec(qb_ctx *ctx, const qz_args *q, qb_method_spec *out);
/* The --plan file (text, or the recipe of a GGUF: then *recorded holds its other keys and a
 * type it records becomes q->type unless TYPE was given). *plan is empty without --plan. */
qb_status qz_load_plan(qb_ctx *ctx, qz_args *q, qb_plan *plan, qb_recipe_info *recorded);
/* "warning: plan rule N 'PATTERN' matches no tensor" on stderr for each such rule of plan
 * against the model at path (opened for its names). */
void qz_warn_unmatched(qb_ctx *ctx, const char *model_path, const qb_plan *plan);
/* Open, build TYPE's rules (with method spec, may be NULL) followed by plan's, calibrate where
 * a rule's method needs it, apply in one call, export with the recipe. */
qb_status qz_quantize_model(qb_ctx *ctx, const qz_args *q, const qb_method_spec *spec, const qb_plan *plan,
                            const qb_recipe_info *recorded, qb_quantize_result *r);

#endif
