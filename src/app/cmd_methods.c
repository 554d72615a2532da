/* cmd_methods.c — `quantbench methods MODEL --calib FILE --eval FILE [--formats LIST]
 * [--methods LIST] [--iters N --lr L --batch N] …`: the method comparison table. One calibration run (with XᵀX) serves
 * every method; for each format × method the model is quantized in memory and measured on
 * held-out text against the unquantized model: bits per weight, perplexity, KLD, top-1
 * agreement, quantization time and single-token decode speed. When --calib and --eval name the
 * same file, its first 60% of tokens calibrate and the rest is evaluated. With --hellaswag,
 * --winogrande or --multiple-choice FILE (and --tasks N) a column of task accuracy as
 * llama-perplexity scores it (core/eval/tasks.h) joins the table. */
#include "cli.h"
#include "core/method/method.h"
#include "core/method/fold.h"
#include "core/calib/calib.h"
#include "core/eval/eval.h"
#include "core/eval/tasks.h"
#include "core/infer/infer.h"
#include "core/quant/apply.h"
#include "core/tokenizer/tokenizer.h"
#include "core/util/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* tokens per second of single-token steps (what generation does) over n steps */
static double decode_speed(qb_ctx *ctx, const qb_model *m, const int32_t *toks, int n)
{
    qb_infer *s;
    if (qb_infer_new(ctx, m, n, 1, &s) != QB_OK) return 0;
    float *logits = malloc(sizeof(float) * (size_t)m->cfg.vocab_size);
    double t0 = cli_now();
    for (int i = 0; i < n && logits; i++)
        if (qb_infer_eval(ctx, s, toks + i, 1, i, logits, 1) != QB_OK) break;
    double dt = cli_now() - t0;
    free(logits);
    qb_infer_free(s);
    return dt > 0 ? n / dt : 0;
}

/* m's score ± err on the task set; false when it fails (the message goes to stderr). */
static bool task_score(qb_ctx *ctx, const qb_model *m, const qb_task_set *ts, double *acc, double *err)
{
    qb_tasks_opts o = {.cancel = &cli_cancel};
    qb_tasks_result r;
    if (qb_tasks_score(ctx, m, ts, &o, &r) != QB_OK) {
        fprintf(stderr, "quantbench: methods: %s\n", qb_ctx_errmsg(ctx));
        return false;
    }
    *acc = r.acc;
    *err = r.acc_err;
    return true;
}

/* One cell of the table (format × method), as measured: plain bytes, so the ranks of a job
 * can send it to rank 0. */
typedef struct {
    bool failed;        /* the method could not apply: error holds why */
    char error[200];
    double bpw, ppl, base_ppl, kld, top1, quant_s, tps;
    bool task_ok;
    double acc, acc_err;
} cell;

/* What every cell is measured with. */
typedef struct {
    qb_ctx *ctx;
    const qb_model *base;
    qb_model *m;
    const qb_task_set *ts;
    bool tasks;
    const int32_t *etok;
    int n_etok, n_gen;
    const qb_eval_opts *eo;
    const qb_calib *cal;
    bool act_order;
} cell_env;

/* m quantized by method k with plan, measured against the base. Errors that end the table
 * (cancel, a failed evaluation) are returned; a method that cannot apply is the cell's. */
static qb_status measure_cell(const cell_env *e, const qb_plan *plan, const qb_method *method, cell *out)
{
    qb_status st = qb_fold_reset(e->ctx, e->m);
    if (st != QB_OK) return st;
    double q0 = cli_now();
    qb_method_opts mo = {.cancel = &cli_cancel};
    st = qb_method_apply(e->ctx, e->m, plan, method, e->cal, &mo);
    out->quant_s = cli_now() - q0;
    if (st == QB_ERR_CANCELLED) return st;
    if (st != QB_OK) {
        out->failed = true;
        snprintf(out->error, sizeof out->error, "%s", qb_ctx_errmsg(e->ctx));
        return QB_OK;
    }
    qb_model_size sz;
    qb_quant_size_compute(e->m, &sz);
    qb_kld_result r;
    if ((st = qb_eval_kld(e->ctx, e->base, e->m, e->etok, e->n_etok, e->eo, &r)) != QB_OK) return st;
    out->bpw = sz.bpw;
    out->ppl = r.other.ppl;
    out->base_ppl = r.base.ppl;
    out->kld = r.kld_mean;
    out->top1 = r.top1_pct;
    out->tps = decode_speed(e->ctx, e->m, e->etok, e->n_gen);
    if (e->tasks) out->task_ok = task_score(e->ctx, e->m, e->ts, &out->acc, &out->acc_err);
    return QB_OK;
}

/* The cell's row (after the unquantized model's, before the first measured cell). */
static void print_cell(const cell_env *e, const char *fmt, const char *meth, const qb_method *method, const cell *c,
                       double *base_tps, int *n_printed)
{
    if (c->failed) {
        printf("| %s | %s | — | %s |||||\n", fmt, meth, c->error);
        return;
    }
    if (*n_printed == 0) {
        printf("| unquantized | — | %.1f | %.4f | 0 | 100 | — | %.0f |", 8.0 * e->base->tensors[0].src_nbytes /
               (double)qb_tensor_nelements(&e->base->tensors[0]), c->base_ppl, *base_tps);
        if (e->tasks) {
            double acc, err;
            qb_dist_alone_begin(); /* rank 0 alone prints */
            if (task_score(e->ctx, e->base, e->ts, &acc, &err)) printf(" %.2f ± %.2f |", acc, err);
            else printf(" — |");
            qb_dist_alone_end();
        }
        printf("\n");
    }
    ++*n_printed;
    printf("| %s | %s%s | %.3f | %.4f | %.5f | %.2f | %.2f | %.0f |", fmt, meth,
           method->kind == QB_METHOD_GPTQ && e->act_order ? " (act-order)" : "", c->bpw, c->ppl, c->kld, c->top1,
           c->quant_s, c->tps);
    if (e->tasks) {
        if (c->task_ok) printf(" %.2f ± %.2f |", c->acc, c->acc_err);
        else printf(" — |");
    }
    printf("\n");
    fflush(stdout);
}

static int split_list(char *s, char **out, int cap)
{
    int n = 0;
    for (char *t = strtok(s, ","); t && n < cap; t = strtok(NULL, ",")) out[n++] = t;
    return n;
}

int cmd_methods(int argc, char **argv)
{
    const char *pos[1] = {0}, *calib = NULL, *eval = NULL, *tok_path = NULL, *task_file = NULL;
    int task_kind = -1;
    long n_tasks = -1;
    static const char *task_opts[] = {"--hellaswag", "--winogrande", "--multiple-choice"};
    char fmts_buf[512] = "int4-g128-asym,int3-g128-asym", meth_buf[64] = "rtn,gptq,awq";
    long samples = 0, n_ctx = 256, chunks = 0, threads = 0, gen = 64, iters = 0, batch = 0;
    double lr = 0;
    bool act_order = false;
    int n_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int tk = -1;
        for (int j = 0; j < 3; j++)
            if (!strcmp(a, task_opts[j])) tk = j;
        if (tk >= 0) {
            if (!v) return cli_error("methods: %s needs a task file", a);
            if (task_file) return cli_error("methods: give one of --hellaswag, --winogrande, --multiple-choice");
            task_file = v, task_kind = tk, i++;
        } else if (!strcmp(a, "--tasks")) {
            if (!cli_int(a, v, 0, 1 << 30, &n_tasks)) return 1;
            i++;
        } else if (!strcmp(a, "--calib") || !strcmp(a, "--eval") || !strcmp(a, "--formats") || !strcmp(a, "--methods") ||
            !strcmp(a, "--tokenizer")) {
            if (!v) return cli_error("methods: %s needs a value", a);
            if (!strcmp(a, "--calib")) calib = v;
            else if (!strcmp(a, "--eval")) eval = v;
            else if (!strcmp(a, "--tokenizer")) tok_path = v;
            else snprintf(a[2] == 'f' ? fmts_buf : meth_buf, a[2] == 'f' ? sizeof fmts_buf : sizeof meth_buf, "%s", v);
            i++;
        } else if (!strcmp(a, "--samples") || !strcmp(a, "--ctx") || !strcmp(a, "--chunks") || !strcmp(a, "--gen") ||
                   !strcmp(a, "-t") || !strcmp(a, "--threads") || !strcmp(a, "--iters") || !strcmp(a, "--batch")) {
            long *dst = !strcmp(a, "--samples") ? &samples : !strcmp(a, "--ctx") ? &n_ctx
                      : !strcmp(a, "--chunks") ? &chunks : !strcmp(a, "--gen") ? &gen
                      : !strcmp(a, "--iters") ? &iters : !strcmp(a, "--batch") ? &batch : &threads;
            if (!cli_int(a, v, dst == &n_ctx ? 8 : dst == &threads || dst == &iters || dst == &batch ? 1 : 0, 1 << 20,
                         dst))
                return 1;
            i++;
        } else if (!strcmp(a, "--lr")) {
            char *end;
            lr = v ? strtod(v, &end) : 0;
            if (!v || *end || !(lr > 0 && lr <= 1)) return cli_error("methods: --lr needs a step size in (0, 1]");
            i++;
        } else if (!strcmp(a, "--act-order")) act_order = true;
        else if (!strcmp(a, "--help")) {
            puts("usage: quantbench methods MODEL --calib FILE --eval FILE [--formats int4-g128-asym,q4_k,...]\n"
                 "         [--methods rtn,gptq,gptq-w,awq,awq-w,awq-noclip,learned,learned-w] [--samples N] [--ctx N] [--chunks N]\n"
                 "         [--gen N] [--act-order] [--iters N] [--lr L] [--batch N]   (learned rounding: learned.h)\n"
                 "         [--hellaswag FILE | --winogrande FILE | --multiple-choice FILE [--tasks N]]   (a task-accuracy column)");
            return 0;
        } else if (a[0] == '-') return cli_error("methods: unknown option '%s'", a);
        else if (n_pos < 1) pos[n_pos++] = a;
        else return cli_error("methods: unexpected argument '%s'", a);
    }
    if (!pos[0] || !calib || !eval) return cli_error("methods: usage: quantbench methods MODEL --calib FILE --eval FILE");
    char *fmts[32], *meths[8];
    int n_fmts = split_list(fmts_buf, fmts, 32), n_meths = split_list(meth_buf, meths, 8);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (threads) ctx.n_threads = (int)threads;
    qb_method mlist[8];
    for (int k = 0; k < n_meths; k++) {
        /* "awq-noclip": AWQ's scale search alone, without its clipping search; "gptq-w",
         * "awq-w", "learned-w": with importance weights from the calibration (gptq.h, awq.h:
         * weighted; learned.h: the k-quants' starting quantization) */
        const char *mk = meths[k];
        bool noclip = !strcasecmp(mk, "awq-noclip"), gw = !strcasecmp(mk, "gptq-w"), aw = !strcasecmp(mk, "awq-w");
        bool lw = !strcasecmp(mk, "learned-w");
        if (qb_method_parse(&ctx, noclip || aw ? "awq" : gw ? "gptq" : lw ? "learned" : mk, &mlist[k]) != QB_OK)
            return cli_error("methods: %s", qb_ctx_errmsg(&ctx));
        if (noclip) mlist[k].awq.clip = false;
        mlist[k].gptq.weighted = gw;
        mlist[k].awq.weighted = aw;
        mlist[k].learned.weighted = lw;
        mlist[k].gptq.act_order = act_order;
        mlist[k].learned.iters = (int)iters;
        mlist[k].learned.batch = (int)batch;
        mlist[k].learned.lr = (float)lr;
    }
    qb_model *base = cli_open_model(&ctx, pos[0], tok_path, false), *m = base ? cli_open_model(&ctx, pos[0], tok_path, false) : NULL;
    if (!m) {
        qb_model_close(base);
        return 1;
    }
    int rc = 1;
    int32_t *etok = NULL, *ctok = NULL, *win = NULL;
    int n_etok = 0, n_ctok = 0, nw = 0;
    qb_calib *cal = NULL;
    qb_task_set ts = {0};
    if (n_tasks < 0 && task_file) n_tasks = qb_tasks_default_count((qb_tasks_kind)task_kind);
    if (task_file && (qb_tasks_read(&ctx, task_kind, task_file, &ts) != QB_OK ||
                      qb_tasks_select(&ctx, &ts, (int)n_tasks) != QB_OK))
        goto fail;
    if (qb_eval_load_text(&ctx, m, eval, &etok, &n_etok) != QB_OK) goto out;
    if (!strcmp(calib, eval)) { /* hold out the last 40% */
        int cut = n_etok * 6 / 10;
        ctok = malloc(sizeof *ctok * (size_t)cut);
        memcpy(ctok, etok, sizeof *ctok * (size_t)cut);
        n_ctok = cut;
        etok[cut - 1] = etok[0];
        memmove(etok, etok + cut - 1, sizeof *etok * (size_t)(n_etok - cut + 1));
        n_etok -= cut - 1;
    } else if (qb_eval_load_text(&ctx, m, calib, &ctok, &n_ctok) != QB_OK) goto out;
    int calib_ctx = (int)n_ctx;
    if (qb_calib_windows(&ctx, ctok, n_ctok, calib_ctx, (int)samples, qb_tokenizer_bos(m->tok), &win, &nw) != QB_OK) {
        cli_error("%s: %s", calib, qb_ctx_errmsg(&ctx));
        goto out;
    }
    cli_install_sigint();
    double t0 = cli_now();
    qb_calib_opts co = {.n_ctx = calib_ctx, .hessian = true, .cancel = &cli_cancel};
    if (qb_calib_run(&ctx, m, win, nw, &co, &cal) != QB_OK) goto fail;
    double t_cal = cli_now() - t0;
    qb_eval_opts eo = {.n_ctx = (int)n_ctx, .n_chunks = (int)chunks, .cancel = &cli_cancel};
    int n_gen = n_etok < gen ? n_etok : (int)gen;
    double base_tps = decode_speed(&ctx, base, etok, n_gen);
    printf("model %s: calibration %d windows x %d tokens (%.1f s, shared by all methods); eval %d tokens, ctx %ld%s\n",
           pos[0], nw, calib_ctx, t_cal, n_etok, n_ctx, !strcmp(calib, eval) ? " (held-out 40% of the same file)" : "");
    if (task_file)
        printf("tasks %s (%s): %d of %d, llama-perplexity's scoring\n", task_file, qb_tasks_kind_name(ts.kind), ts.n,
               ts.n_file);
    printf("| format | method | bpw | PPL | KLD | top-1 %% | quant s | decode tok/s |%s\n",
           task_file ? (task_kind == QB_TASKS_HELLASWAG ? " acc_norm % |" : " acc % |") : "");
    printf("|---|---|---:|---:|---:|---:|---:|---:|%s\n", task_file ? "---:|" : "");
    /* the cells format × method; in a job of several MPI ranks each measures its share
     * (util/dist.h), then rank 0 prints them all in order */
    int n_cells = n_fmts * n_meths, n_printed = 0;
    bool many = qb_dist_size() > 1;
    cell *cells = calloc((size_t)n_cells, sizeof *cells);
    cell_env env = {&ctx, base, m, &ts, task_file != NULL, etok, n_etok, n_gen, &eo, cal, act_order};
    qb_status st = cells ? QB_OK : qb_fail(&ctx, QB_ERR_NOMEM, "out of memory");
    if (many && st == QB_OK) {
        cli_progress pr = {.label = "methods", .items = "cells"};
        cli_divided_cb(&pr, n_cells);
    }
    for (int f = 0; st == QB_OK && f < n_fmts; f++) {
        qb_plan plan;
        bool planned = false;
        for (int k = 0; st == QB_OK && k < n_meths; k++) {
            int c = f * n_meths + k;
            if (!qb_dist_owns(c)) continue;
            if (!planned && (st = qb_method_plan(&ctx, m, fmts[f], false, &plan)) != QB_OK) {
                qb_plan_free(&plan);
                break;
            }
            planned = true;
            qb_dist_alone_begin(); /* the cell is this rank's alone */
            st = measure_cell(&env, &plan, &mlist[k], &cells[c]);
            qb_dist_alone_end();
            if (st == QB_OK && !many) print_cell(&env, fmts[f], meths[k], &mlist[k], &cells[c], &base_tps, &n_printed);
        }
        if (planned) qb_plan_free(&plan);
    }
    if ((st = qb_dist_merge(&ctx, st, cells, sizeof *cells, n_cells)) != QB_OK) {
        free(cells);
        goto fail;
    }
    for (int c = 0; many && c < n_cells; c++)
        print_cell(&env, fmts[c / n_meths], meths[c % n_meths], &mlist[c % n_meths], &cells[c], &base_tps, &n_printed);
    free(cells);
    rc = 0;
    goto out;
fail:
    cli_error("%s", qb_ctx_errmsg(&ctx));
out:
    qb_tasks_free(&ts);
    free(etok);
    free(ctok);
    free(win);
    qb_calib_free(cal);
    qb_model_close(m);
    qb_model_close(base);
    return rc;
}
