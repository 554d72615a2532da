/* cmd_finetune.c — `quantbench finetune`: quantization-aware fine-tuning with distillation of
 * MODEL under a plan (TYPE or --plan FILE, every matrix round-to-nearest first, then trained
 * through its format's fake quantization), or --heal of an already quantized MODEL (norms and
 * biases only), against a teacher (--teacher; for QAT MODEL itself by default), on --text;
 * a step line per step (loss, gradient norm, learning rate, tokens/s, ETA), checkpoints every
 * N steps, --resume, Ctrl-C that stops cleanly (writing the checkpoint when one is named), the
 * packed result exported as GGUF; --eval FILE measures PPL and KLD before and after. The
 * computation is core's (core/method/finetune.h). */
#include "cli.h"

#include "core/eval/eval.h"
#include "core/method/finetune.h"
#include "core/method/method.h"
#include "core/quant/apply.h"
#include "core/quant/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USAGE                                                                                                          \
    "finetune: usage: quantbench finetune MODEL (TYPE | --plan FILE | --heal) --text FILE --out OUT.gguf\n"         \
    "           [--teacher MODEL] [--steps N] [--batch N] [--seq N] [--lr X] [--min-lr-ratio X] [--warmup N]\n"      \
    "           [--clip X] [--weight-decay X] [--kd W] [--ce W] [--tau T] [--seed N] [--learn-clip [--clip-lr X]]\n"  \
    "           [--shift-windows] [--recompute auto|on|off] [--checkpoint FILE] [--save-every N] [--resume FILE] [--stop-after N]\n"    \
    "           [--eval FILE] [--chunks N] [--ctx N] [-t N]\n"                                                        \
    "  TYPE: a format (int2-g64, q2_k, ...) for every matrix, or a llama-quantize type (Q2_K, Q4_K_M)"

typedef struct {
    const char *model, *type, *plan, *text, *out, *teacher, *ckpt, *resume, *eval, *tok;
    bool heal, learn_clip, shift;
    int recompute; /* 1 on, -1 off, 0 auto */
    long steps, batch, seq, warmup, seed, save_every, stop_after, chunks, ctx, threads;
    double lr, min_lr, clip, wd, kd, ce, tau, clip_lr;
} ft_args;

static int parse(int argc, char **argv, ft_args *a)
{
    memset(a, 0, sizeof *a);
    a->warmup = a->min_lr = a->kd = a->clip = -1; /* not given */
    a->chunks = 8;
    a->ctx = 256;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, val = true;
        if (!strcmp(o, "--plan")) ok = (a->plan = v) != NULL;
        else if (!strcmp(o, "--text")) ok = (a->text = v) != NULL;
        else if (!strcmp(o, "--out") || !strcmp(o, "-o")) ok = (a->out = v) != NULL;
        else if (!strcmp(o, "--teacher")) ok = (a->teacher = v) != NULL;
        else if (!strcmp(o, "--checkpoint")) ok = (a->ckpt = v) != NULL;
        else if (!strcmp(o, "--resume")) ok = (a->resume = v) != NULL;
        else if (!strcmp(o, "--eval")) ok = (a->eval = v) != NULL;
        else if (!strcmp(o, "--tokenizer")) ok = (a->tok = v) != NULL;
        else if (!strcmp(o, "--steps")) ok = cli_int(o, v, 1, 10000000, &a->steps);
        else if (!strcmp(o, "--batch")) ok = cli_int(o, v, 1, 100000, &a->batch);
        else if (!strcmp(o, "--seq")) ok = cli_int(o, v, 2, 1 << 20, &a->seq);
        else if (!strcmp(o, "--warmup")) ok = cli_int(o, v, 0, 10000000, &a->warmup);
        else if (!strcmp(o, "--seed")) ok = cli_int(o, v, 1, 0x7fffffffL, &a->seed);
        else if (!strcmp(o, "--save-every")) ok = cli_int(o, v, 1, 10000000, &a->save_every);
        else if (!strcmp(o, "--stop-after")) ok = cli_int(o, v, 1, 10000000, &a->stop_after);
        else if (!strcmp(o, "--chunks")) ok = cli_int(o, v, 1, 100000, &a->chunks);
        else if (!strcmp(o, "--ctx")) ok = cli_int(o, v, 8, 1 << 20, &a->ctx);
        else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) ok = cli_int(o, v, 1, 1024, &a->threads);
        else if (!strcmp(o, "--lr")) ok = cli_float(o, v, 1e-12, 1, &a->lr);
        else if (!strcmp(o, "--min-lr-ratio")) ok = cli_float(o, v, 0, 1, &a->min_lr);
        else if (!strcmp(o, "--clip")) ok = cli_float(o, v, 0, 1e9, &a->clip);
        else if (!strcmp(o, "--weight-decay")) ok = cli_float(o, v, 0, 0.999, &a->wd);
        else if (!strcmp(o, "--kd")) ok = cli_float(o, v, 0, 1e6, &a->kd);
        else if (!strcmp(o, "--ce")) ok = cli_float(o, v, 0, 1e6, &a->ce);
        else if (!strcmp(o, "--tau")) ok = cli_float(o, v, 1e-3, 1e3, &a->tau);
        else if (!strcmp(o, "--heal")) a->heal = true, val = false;
        else if (!strcmp(o, "--learn-clip")) a->learn_clip = true, val = false;
        else if (!strcmp(o, "--shift-windows")) a->shift = true, val = false;
        else if (!strcmp(o, "--clip-lr")) ok = cli_float(o, v, 1e-9, 1, &a->clip_lr);
        else if (!strcmp(o, "--recompute")) {
            a->recompute = !v ? 2 : !strcmp(v, "on") ? 1 : !strcmp(v, "off") ? -1 : !strcmp(v, "auto") ? 0 : 2;
            ok = a->recompute != 2 || (v && cli_error("finetune: --recompute takes auto, on or off, not '%s'", v) == 0);
        }
        else if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            puts(USAGE + strlen("finetune: "));
            return -1;
        }
        else if (o[0] == '-' && o[1]) return cli_error("finetune: unknown option '%s'", o);
        else if (!a->model) a->model = o, val = false;
        else if (!a->type) a->type = o, val = false;
        else return cli_error("finetune: unexpected argument '%s'", o);
        if (!ok) return v ? 1 : cli_error("finetune: %s needs a value", o);
        if (val) i++;
    }
    if (!a->model || !a->text || !a->out) return cli_error(USAGE);
    if (a->heal + (a->type != NULL) + (a->plan != NULL) != 1)
        return cli_error("finetune: give exactly one of TYPE, --plan FILE or --heal (see quantbench finetune --help)");
    if (a->heal && !a->teacher)
        return cli_error("finetune --heal: needs --teacher MODEL (the unquantized model %s was made from)", a->model);
    if (a->stop_after && !a->ckpt) return cli_error("finetune: --stop-after needs --checkpoint FILE to continue from");
    if (a->save_every && !a->ckpt) return cli_error("finetune: --save-every needs --checkpoint FILE");
    return 0;
}

/* TYPE's rules or the plan file's, applied by round-to-nearest; rules with another method are
 * refused (QAT packs by round-to-nearest of its latent weights), rules matching nothing too. */
static qb_status quantize_student(qb_ctx *ctx, qb_model *m, const ft_args *a, qb_plan *plan)
{
    qb_status st = a->plan ? qb_plan_load(ctx, a->plan, plan) : qb_method_plan(ctx, m, a->type, false, plan);
    if (st != QB_OK) return st;
    const char *src = a->plan ? a->plan : a->type;
    for (int k = 0; k < plan->n_rules; k++)
        if (plan->rules[k].method.kind != QB_METHOD_RTN)
            return qb_fail(ctx, QB_ERR_ARG,
                           "%s: rule %d ('%s') names method %s; fine-tuning trains the latent weights from the originals "
                           "and packs them by round-to-nearest (quantize with %s first and use --heal on the result)",
                           src, k + 1, plan->rules[k].pattern, qb_plan_method_name(plan->rules[k].method.kind),
                           qb_plan_method_name(plan->rules[k].method.kind));
    char msg[400];
    if (qb_plan_unmatched(plan, m, 0, msg, sizeof msg) >= 0) return qb_fail(ctx, QB_ERR_ARG, "%s: %s", src, msg);
    return qb_plan_apply_rtn(ctx, m, plan, &(qb_apply_opts){.cancel = &cli_cancel});
}

typedef struct {
    double ppl, kld, top1;
} ft_eval;

/* PPL of model and its KLD from the teacher on the evaluation text. */
static qb_status evaluate(qb_ctx *ctx, const qb_model *teacher, const qb_model *m, const int32_t *tok, int n,
                          const ft_args *a, ft_eval *out)
{
    qb_eval_opts o = {.n_ctx = (int)a->ctx, .n_chunks = (int)a->chunks, .cancel = &cli_cancel};
    qb_kld_result r;
    qb_status st = qb_eval_kld(ctx, teacher, m, tok, n, &o, &r);
    if (st != QB_OK) return st;
    *out = (ft_eval){r.other.ppl, r.kld_mean, r.top1_pct};
    return QB_OK;
}

static void fmt_time(double s, char *buf, size_t cap)
{
    if (s < 60) snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

/* The training loop: until the run's last step, --stop-after steps, Ctrl-C or an error.
 * Returns 0 when the run is complete, 2 when it stopped early with its checkpoint, else the
 * exit status of the failure. */
static int train(qb_ctx *ctx, qb_finetune *ft, const ft_args *a)
{
    const qb_finetune_params *p = qb_finetune_get_params(ft);
    const int first = qb_finetune_steps_done(ft);
    double spent = 0;
    long tokens = 0;
    while (qb_finetune_steps_done(ft) < p->steps) {
        if (a->stop_after && qb_finetune_steps_done(ft) - first >= a->stop_after) break;
        qb_finetune_report r;
        qb_status st = qb_finetune_step(ctx, ft, &r, &cli_cancel);
        if (st == QB_ERR_CANCELLED) break;
        if (st != QB_OK) return cli_error("finetune: %s", qb_ctx_errmsg(ctx));
        spent += r.seconds;
        tokens += r.tokens;
        char eta[32];
        fmt_time(spent / (r.step - first) * (p->steps - r.step), eta, sizeof eta);
        fprintf(stderr, "step %d/%d  loss %.5f (kd %.5f ce %.4f)  |g| %.3g  lr %.2e  %.0f tok/s  ETA %s\n", r.step,
                p->steps, r.loss, r.kd, r.ce, r.grad_norm, r.lr, tokens / spent, eta);
        if (a->save_every && r.step % a->save_every == 0 && r.step < p->steps &&
            qb_finetune_save(ctx, ft, a->ckpt) != QB_OK)
            return cli_error("finetune: %s", qb_ctx_errmsg(ctx));
    }
    const int done = qb_finetune_steps_done(ft);
    if (done == p->steps) return 0;
    if (a->ckpt) {
        if (qb_finetune_save(ctx, ft, a->ckpt) != QB_OK) return cli_error("finetune: %s", qb_ctx_errmsg(ctx));
        fprintf(stderr, "finetune: %s at step %d of %d; checkpoint %s (continue with --resume %s); %s not written\n",
                cli_cancel ? "stopped" : "paused", done, p->steps, a->ckpt, a->ckpt, a->out);
    } else {
        fprintf(stderr, "finetune: stopped at step %d of %d; nothing written (--checkpoint FILE keeps the progress)\n",
                done, p->steps);
    }
    return cli_cancel ? 130 : 2;
}

int cmd_finetune(int argc, char **argv)
{
    ft_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (a.threads) ctx.n_threads = (int)a.threads;
    qb_model *student = cli_open_model(&ctx, a.model, a.tok, false);
    if (!student) return 1;
    qb_model *teacher = cli_open_model(&ctx, a.teacher ? a.teacher : a.model, a.tok, false);
    qb_plan plan;
    qb_plan_init(&plan);
    int32_t *text = NULL, *evtok = NULL;
    int n_text = 0, n_ev = 0;
    qb_finetune *ft = NULL;
    rc = 1;
    if (!teacher) goto out;
    cli_install_sigint();
    if (!a.heal && quantize_student(&ctx, student, &a, &plan) != QB_OK) {
        rc = cli_error("finetune: %s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    if (qb_eval_load_text(&ctx, student, a.text, &text, &n_text) != QB_OK ||
        (a.eval && qb_eval_load_text(&ctx, student, a.eval, &evtok, &n_ev) != QB_OK)) {
        rc = cli_error("finetune: %s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    qb_finetune_params p = {.steps = (int)a.steps, .batch = (int)a.batch, .seq = (int)a.seq, .lr = (float)a.lr,
                            .min_lr_ratio = (float)a.min_lr, .warmup = (int)a.warmup, .clip = (float)a.clip,
                            .weight_decay = (float)a.wd, .kd = (float)a.kd, .ce = (float)a.ce, .tau = (float)a.tau,
                            .heal = a.heal, .seed = (uint64_t)a.seed, .learn_clip = a.learn_clip,
                            .clip_lr = (float)a.clip_lr, .recompute = a.recompute, .shift_windows = a.shift};
    p.clip = a.clip < 0 ? 0 : a.clip == 0 ? -1 : (float)a.clip; /* --clip 0: none; not given: core's default */
    if (qb_finetune_begin(&ctx, student, teacher, text, n_text, &p, &ft) != QB_OK ||
        (a.resume && qb_finetune_resume(&ctx, ft, a.resume) != QB_OK)) {
        rc = cli_error("finetune: %s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    const qb_finetune_params *q = qb_finetune_get_params(ft);
    char clipbuf[32] = "none";
    if (q->clip > 0) snprintf(clipbuf, sizeof clipbuf, "%g", q->clip);
    printf("finetune %s: %s, teacher %s\n", student->path,
           a.heal ? "healing (norms and biases train, matrices stay)" : "quantization-aware (latent weights through each format's fake quantization)",
           teacher->path);
    if (q->learn_clip) printf("  integer formats learn each group's clip factors (lr %g)\n", q->clip_lr);
    printf("  %d steps × %d sequences of %d tokens from %s (%d tokens), lr %g (warm-up %d, cosine to %g×), clip %s, "
           "loss %g·KL(τ=%g) + %g·CE\n",
           q->steps, q->batch, q->seq, a.text, n_text, q->lr, q->warmup, q->min_lr_ratio, clipbuf, q->kd, q->tau, q->ce);
    size_t acts;
    const bool rec = qb_finetune_recomputes(ft, &acts);
    printf("  activations %.1f MiB%s\n", (double)acts / 1048576.0,
           rec ? " (recomputed block by block in the backward)" : "");
    if (a.resume) printf("  resumed from %s at step %d\n", a.resume, qb_finetune_steps_done(ft));
    fflush(stdout);
    ft_eval before = {0}, after = {0};
    if (a.eval && evaluate(&ctx, teacher, student, evtok, n_ev, &a, &before) != QB_OK) {
        rc = cli_error("finetune: %s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    if (a.eval) {
        printf("  before: PPL %.4f, KLD %.5f, top-1 %.2f%% (%s, %ld chunks of %ld)\n", before.ppl, before.kld, before.top1,
               a.eval, a.chunks, a.ctx);
        fflush(stdout);
    }
    rc = train(&ctx, ft, &a);
    if (rc) goto out;
    rc = 1;
    if (qb_finetune_finish(&ctx, ft) != QB_OK) {
        cli_error("finetune: %s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    if (a.eval && evaluate(&ctx, teacher, student, evtok, n_ev, &a, &after) != QB_OK) {
        rc = cli_error("finetune: %s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    if (a.eval) printf("  after:  PPL %.4f, KLD %.5f, top-1 %.2f%%\n", after.ppl, after.kld, after.top1);
    if (qb_export_gguf(&ctx, student, a.out, a.heal ? NULL : &plan, &cli_cancel) != QB_OK) {
        cli_error("finetune: %s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    printf("wrote %s\n", a.out);
    rc = 0;
out:
    qb_finetune_end(ft);
    free(text);
    free(evtok);
    qb_plan_free(&plan);
    qb_model_close(teacher);
    qb_model_close(student);
    return rc;
}
