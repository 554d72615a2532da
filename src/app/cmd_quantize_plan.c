/* cmd_quantize_plan.c — the plan side of `quantbench quantize`: --plan FILE (text) or
 * FILE.gguf (the recipe a quantbench GGUF records: plan, type, calibration text digest), the
 * --method flags as a method specification, warnings for rules that match no tensor, and the
 * in-memory path: open, calibrate where a rule's method needs it, one qb_plan_apply call,
 * export with the recipe. */
#include "cli.h"
#include "cmd_quantize.h"
#include "core/quant/apply.h"
#include "core/quant/export_repack.h"
#include "core/method/plan_apply.h"

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Set key on s when s's method has such a parameter (flags another method does not read are
 * ignored, as before plans carried methods). */
static qb_status set_if(qb_ctx *ctx, qb_method_spec *s, const char *key, double v)
{
    for (int k = 0; qb_method_param_name(s->kind, k); k++)
        if (!strcmp(qb_method_param_name(s->kind, k), key)) return qb_method_spec_set(ctx, s, key, v);
    return QB_OK;
}

qb_status qz_method_spec(qb_ctx *ctx, const qz_args *q, qb_method_spec *out)
{
    qb_status st = qb_method_spec_init(ctx, q->method, out);
    if (st == QB_OK && q->block > 0) st = set_if(ctx, out, "block", (double)q->block);
    if (st == QB_OK && q->damp >= 0) st = set_if(ctx, out, "damp", q->damp);
    if (st == QB_OK && q->act_order) st = set_if(ctx, out, "act_order", 1);
    if (st == QB_OK && q->weighted) st = set_if(ctx, out, "weighted", 1);
    if (st == QB_OK && q->iters > 0) st = set_if(ctx, out, "iters", (double)q->iters);
    if (st == QB_OK && q->batch > 0) st = set_if(ctx, out, "batch", (double)q->batch);
    if (st == QB_OK && q->lr > 0) st = set_if(ctx, out, "lr", q->lr);
    if (st == QB_OK && q->alpha_set) st = set_if(ctx, out, "alpha", q->alpha);
    if (st == QB_OK && (q->clip || q->no_clip)) st = set_if(ctx, out, "clip", q->no_clip ? 0 : 1);
    return st;
}

qb_status qz_load_plan(qb_ctx *ctx, qz_args *q, qb_plan *plan, qb_recipe_info *recorded)
{
    qb_plan_init(plan);
    memset(recorded, 0, sizeof *recorded);
    if (!q->plan_path) return QB_OK;
    if (!qz_is_gguf(q->plan_path)) return qb_plan_load(ctx, q->plan_path, plan);
    qb_gguf *g;
    qb_status st = qb_gguf_open(ctx, q->plan_path, &g);
    if (st != QB_OK) return st;
    st = qb_recipe_get(ctx, g, q->plan_path, plan, recorded);
    qb_gguf_close(g);
    if (st == QB_OK && !q->type && recorded->type[0]) {
        q->type = recorded->type;
        q->pure = q->pure || recorded->pure;
    }
    return st;
}

static void warn_unmatched(const qb_model *m, const qb_plan *plan)
{
    char msg[400];
    for (int k = 0; (k = qb_plan_unmatched(plan, m, k, msg, sizeof msg)) >= 0; k++)
        fprintf(stderr, "warning: %s\n", msg);
}

void qz_warn_unmatched(qb_ctx *ctx, const char *model_path, const qb_plan *plan)
{
    qb_model *m;
    if (plan->n_rules == 0 || qb_model_open(ctx, model_path, NULL, &m) != QB_OK) return; /* the quantize reports it */
    warn_unmatched(m, plan);
    qb_model_close(m);
}

/* Say how tensors in formats without a ggml type went into the file, one line per kind of
 * conversion with its count ("42 × int4-g128 -> Q4_0 (exact)"). */
static void note_conversions(const qb_model *m)
{
    char *d = qb_export_describe(m);
    if (!d) return;
    enum { MAXK = 16 };
    char kinds[MAXK][160];
    int count[MAXK], nk = 0;
    for (char *line = strtok(d, "\n"); line; line = strtok(NULL, "\n")) {
        const char *what = strchr(line, ' '); /* after the tensor name */
        if (!what) continue;
        int k = 0;
        while (k < nk && strcmp(kinds[k], what + 1)) k++;
        if (k == nk && nk < MAXK) {
            snprintf(kinds[nk], sizeof kinds[nk], "%s", what + 1);
            count[nk++] = 0;
        }
        if (k < nk) count[k]++;
    }
    for (int k = 0; k < nk; k++) printf("note: %d tensor(s) %s\n", count[k], kinds[k]);
    free(d);
}

static size_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (size_t)sb.st_size : 0;
}

/* TYPE's rules (every one with spec when given), then the plan's (spec where they name no
 * method). */
static qb_status effective_plan(qb_ctx *ctx, const qb_model *m, const qz_args *q, const qb_method_spec *spec,
                                const qb_plan *plan, qb_plan *out)
{
    qb_plan_init(out);
    qb_status st = q->type ? qb_method_plan_im(ctx, m, q->type, q->pure, q->imp != NULL, out) : QB_OK;
    for (int k = 0; st == QB_OK && spec && k < out->n_rules; k++) out->rules[k].method = *spec;
    for (int k = 0; st == QB_OK && k < plan->n_rules; k++) {
        const qb_plan_rule *r = &plan->rules[k];
        bool plain = r->method.kind == QB_METHOD_RTN && !r->method.set;
        st = qb_plan_add_rule(ctx, out, r->pattern, &r->fmt, spec && plain ? spec : &r->method, r->line);
    }
    if (st != QB_OK) qb_plan_free(out);
    return st;
}

/* The calibration the plan's methods read: --calib, cut as recorded unless --samples/--ctx
 * say otherwise; a text other than the recorded one is a warning naming both. */
static qb_status calibrate(qb_ctx *ctx, const qb_model *m, const qz_args *q, const qb_plan *eff,
                           const qb_recipe_info *rec, qb_calib **cal)
{
    *cal = NULL;
    if (!qb_plan_needs_calib(eff)) return QB_OK;
    if (!q->calib) {
        if (q->method && qb_method_spec_needs_calib(&eff->rules[0].method))
            return qb_fail(ctx, QB_ERR_ARG, "--method %s needs --calib FILE (a text to calibrate on)", q->method);
        int k = 0;
        while (!qb_method_spec_needs_calib(&eff->rules[k].method)) k++;
        if (rec->calib_file[0])
            return qb_fail(ctx, QB_ERR_ARG, "%s: the plan uses %s, which needs --calib FILE (it was made with %s, "
                           "%llu bytes, sha256 %s)", q->plan_path, qb_plan_method_name(eff->rules[k].method.kind),
                           rec->calib_file, (unsigned long long)rec->calib_bytes, rec->calib_sha256);
        return qb_fail(ctx, QB_ERR_ARG, "plan rule '%s' uses %s, which needs --calib FILE (a text to calibrate on)",
                       eff->rules[k].pattern, qb_plan_method_name(eff->rules[k].method.kind));
    }
    cli_progress pr;
    cli_progress_start(&pr, "calibrate");
    qb_calib_opts co = {.n_samples = (int)(q->samples ? q->samples : rec->calib_windows),
                        .n_ctx = (int)(q->n_ctx ? q->n_ctx : rec->calib_ctx), .hessian = true,
                        .progress = cli_progress_cb, .ud = &pr, .cancel = &cli_cancel};
    qb_status st = qb_calib_run_file(ctx, m, q->calib, &co, cal);
    cli_progress_end(&pr);
    if (st == QB_OK && rec->calib_sha256[0] && strcmp(rec->calib_sha256, (*cal)->text_sha256))
        fprintf(stderr, "warning: calibration text %s (%llu bytes, sha256 %s) is not the one %s records (%s, %llu "
                "bytes, sha256 %s): the result will differ\n", q->calib, (unsigned long long)(*cal)->text_bytes,
                (*cal)->text_sha256, q->plan_path, rec->calib_file, (unsigned long long)rec->calib_bytes,
                rec->calib_sha256);
    return st;
}

qb_status qz_quantize_model(qb_ctx *ctx, const qz_args *q, const qb_method_spec *spec, const qb_plan *plan,
                            const qb_recipe_info *recorded, qb_quantize_result *r)
{
    memset(r, 0, sizeof *r);
    double t0 = cli_now();
    qb_model *m;
    qb_status st = qb_model_open(ctx, q->pos[0], NULL, &m);
    if (st != QB_OK) return st;
    qb_model_size before, after;
    qb_quant_size_compute(m, &before);
    warn_unmatched(m, plan);
    qb_plan eff;
    qb_calib *cal = NULL;
    st = effective_plan(ctx, m, q, spec, plan, &eff);
    if (st == QB_OK) st = calibrate(ctx, m, q, &eff, recorded, &cal);
    if (st == QB_OK) {
        cli_progress pr;
        cli_progress_start(&pr, spec ? qb_plan_method_name(spec->kind) : "quantize");
        qb_plan_apply_opts ao = {.progress = cli_progress_cb, .ud = &pr, .cancel = &cli_cancel, .allow_unmatched = true,
                                 .imatrix = q->imp};
        st = qb_plan_apply(ctx, m, &eff, cal, &ao);
        cli_progress_end(&pr);
    }
    if (st == QB_OK) {
        qb_recipe rec;
        qb_recipe_from(&rec, &eff, cal);
        qb_recipe_set_imatrix(&rec, q->imp);
        st = qb_export_gguf_recipe(ctx, m, q->pos[1], &rec, &cli_cancel);
    }
    if (st == QB_OK) note_conversions(m);
    qb_quant_size_compute(m, &after);
    r->bytes_in = before.bytes;
    r->bytes_out = st == QB_OK ? file_size(q->pos[1]) : after.bytes;
    r->n_tensors = m->n_tensors;
    for (int i = 0; i < m->n_tensors; i++)
        r->n_quantized += m->tensors[i].type != m->tensors[i].src_type && qb_tensor_quantizable(&m->tensors[i]);
    r->seconds = cli_now() - t0;
    qb_calib_free(cal);
    qb_plan_free(&eff);
    qb_model_close(m);
    return st;
}
