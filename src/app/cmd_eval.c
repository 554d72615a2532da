/* cmd_eval.c — `quantbench ppl` and `quantbench kld`: perplexity and KL divergence on a text
 * file with llama-perplexity's protocol, with a progress bar and Ctrl-C to stop; `kld
 * --save-base FILE` / `kld --base FILE` write and read llama-perplexity's KL-divergence base
 * files and print its KL-divergence statistics. */
#include "cli.h"
#include "cli_act.h"
#include "core/eval/eval.h"
#include "core/eval/kld_base.h"
#include "core/util/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *pos[3];
    int n_pos;
    const char *tok;
    const char *base_file, *save_base; /* kld --base FILE / --save-base FILE */
    bool ctx_given;
    long n_ctx, chunks, threads;
    cli_act act; /* activation / KV-cache options (the other model for kld; the one model run
                    with --base / --save-base) */
} eval_args;

static bool parse(const char *cmd, int argc, char **argv, int want, eval_args *a)
{
    memset(a, 0, sizeof *a);
    a->n_ctx = 256;
    cli_act_init(&a->act);
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        int r = cli_act_option(&a->act, cmd, argc, argv, &i);
        if (r) {
            if (r < 0) return false;
            continue;
        }
        if (!strcmp(o, "--ctx") || !strcmp(o, "-c")) ok = cli_int(o, v, 8, 1 << 20, &a->n_ctx), i++, a->ctx_given = true;
        else if (want == 3 && !strcmp(o, "--base")) a->base_file = v, i++, ok = v != NULL;
        else if (want == 3 && !strcmp(o, "--save-base")) a->save_base = v, i++, ok = v != NULL;
        else if (!strcmp(o, "--chunks")) ok = cli_int(o, v, 1, 1 << 30, &a->chunks), i++;
        else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) ok = cli_int(o, v, 1, 1024, &a->threads), i++;
        else if (!strcmp(o, "--tokenizer")) a->tok = v, i++, ok = v != NULL;
        else if (o[0] == '-' && o[1]) return !cli_error("%s: unknown option '%s'", cmd, o);
        else if (a->n_pos < want) a->pos[a->n_pos++] = o;
        else return !cli_error("%s: unexpected argument '%s'", cmd, o);
        if (!ok) return v ? false : !cli_error("%s: %s needs a value", cmd, o);
    }
    if (a->base_file && a->save_base) return !cli_error("kld: --base and --save-base exclude each other");
    if (a->base_file || a->save_base) want = 2;
    if (a->n_pos != want) {
        if (!strcmp(cmd, "ppl")) cli_error("ppl: usage: quantbench ppl MODEL TEXTFILE [--ctx N] [--chunks N]");
        else if (a->save_base)
            cli_error("kld: usage: quantbench kld --save-base FILE BASE_MODEL TEXTFILE [--ctx N] [--chunks N]");
        else if (a->base_file) cli_error("kld: usage: quantbench kld --base FILE MODEL TEXTFILE [--chunks N]");
        else cli_error("kld: usage: quantbench kld BASE_MODEL OTHER_MODEL TEXTFILE [--ctx N] [--chunks N]");
        return false;
    }
    return true;
}

int cmd_ppl(int argc, char **argv)
{
    eval_args a;
    if (!parse("ppl", argc, argv, 2, &a)) return 1;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (a.threads) ctx.n_threads = (int)a.threads;
    qb_model *m = cli_open_model(&ctx, a.pos[0], a.tok, false);
    if (!m) return 1;
    int32_t *toks = NULL;
    int n = 0, rc = 1;
    if (!cli_act_apply(&ctx, m, &a.act)) goto out;
    if (qb_eval_load_text(&ctx, m, a.pos[1], &toks, &n) != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    cli_progress pr;
    cli_progress_start(&pr, "perplexity");
    pr.items = "chunks";
    cli_install_sigint();
    qb_eval_opts o = {.n_ctx = (int)a.n_ctx, .n_chunks = (int)a.chunks, .progress = cli_progress_cb, .ud = &pr,
                      .cancel = &cli_cancel, .run = a.act.run, .divided = cli_divided_cb};
    qb_ppl_result r;
    qb_status st = qb_eval_perplexity(&ctx, m, toks, n, &o, &r);
    cli_progress_end(&pr);
    if (st != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(&ctx));
        rc = st == QB_ERR_CANCELLED ? 130 : 1;
        goto out;
    }
    printf("model      %s\n", m->path);
    printf("text       %s: %d tokens, %d chunks of %d, %ld scored\n", a.pos[1], n, r.n_chunks, r.n_ctx, r.n_scored);
    printf("PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
    fprintf(stderr, "%.2f s, %.1f tokens/s\n", r.seconds, r.n_chunks * r.n_ctx / r.seconds);
    cli_act_report(m, &a.act, stdout);
    rc = 0;
out:
    free(toks);
    cli_act_free(&a.act);
    qb_model_close(m);
    return rc;
}

/* kld --save-base FILE BASE_MODEL TEXT: the base model's log-probabilities into FILE. */
static int kld_save_base(qb_ctx *ctx, eval_args *a)
{
    qb_model *m = cli_open_model(ctx, a->pos[0], a->tok, false);
    if (!m) return 1;
    int32_t *toks = NULL;
    int n = 0, rc = 1;
    if (!cli_act_apply(ctx, m, &a->act)) goto out;
    if (qb_eval_load_text(ctx, m, a->pos[1], &toks, &n) != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(ctx));
        goto out;
    }
    cli_progress pr;
    cli_progress_start(&pr, "kld base");
    cli_install_sigint();
    qb_eval_opts o = {.n_ctx = (int)a->n_ctx, .n_chunks = (int)a->chunks, .progress = cli_progress_cb, .ud = &pr,
                      .cancel = &cli_cancel, .run = a->act.run};
    qb_ppl_result r;
    qb_status st = qb_kld_base_save(ctx, m, toks, n, &o, a->save_base, &r);
    cli_progress_end(&pr);
    if (st != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(ctx));
        rc = st == QB_ERR_CANCELLED ? 130 : 1;
        goto out;
    }
    printf("base       %s\n", m->path);
    printf("text       %s: %d tokens, %d chunks of %d, %ld scored\n", a->pos[1], n, r.n_chunks, r.n_ctx, r.n_scored);
    printf("PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
    printf("saved      %s: %d chunks of %d tokens, vocabulary %d\n", a->save_base, r.n_chunks, r.n_ctx,
           m->cfg.vocab_size);
    fprintf(stderr, "%.2f s\n", r.seconds);
    cli_act_report(m, &a->act, stdout);
    rc = 0;
out:
    free(toks);
    qb_model_close(m);
    return rc;
}

/* llama-perplexity's KL-divergence summary, its labels and digits: the means with their
 * uncertainties, then the quantiles of the per-position KLD and Δp side by side. */
static void print_kld_stats(const qb_kld_stats *r)
{
    /* labels holding "Δ" (two bytes, one column) get one more byte of width */
    printf("%-31s: %10.6f ± %10.6f\n", "Mean PPL(Q)", r->ppl, r->ppl_err);
    printf("%-31s: %10.6f ± %10.6f\n", "Mean PPL(base)", r->ppl_base, r->ppl_base_err);
    printf("%-31s: %9.2f%%\n", "Cor(ln(PPL(Q)), ln(PPL(base)))", 100.0 * r->cor);
    printf("%-31s: %10.6f ± %10.6f\n", "Mean ln(PPL(Q)/PPL(base))", r->ln_ratio, r->ln_ratio_err);
    printf("%-31s: %10.6f ± %10.6f\n", "Mean PPL(Q)/PPL(base)", r->ratio, r->ratio_err);
    printf("%-31s: %10.6f ± %10.6f\n", "Mean PPL(Q)-PPL(base)", r->diff, r->diff_err);
    printf("%-31s: %10.6f ± %10.6f\n", "Mean KLD", r->kld, r->kld_err);
    printf("%-32s: %9.3f%% ± %9.3f%%\n", "Mean Δp", 100.0 * r->dp, 100.0 * r->dp_err);
    printf("%-32s: %9.3f%% ± %9.3f%%\n", "RMS Δp", 100.0 * r->dp_rms, 100.0 * r->dp_rms_err);
    printf("%-31s: %9.3f%% ± %9.3f%%\n", "Same top p", 100.0 * r->same_top, 100.0 * r->same_top_err);
    printf("\n%-8s %10s %11s\n", "quantile", "KLD", "Δp");
    for (int k = 0; k < QB_KLD_NQ; k++)
        printf("%-8s %10.6f %9.3f%%\n", qb_kld_quantiles[k].label, r->kld_q[k], 100.0 * r->dp_q[k]);
}

/* kld --base FILE MODEL TEXT: MODEL against the log-probabilities FILE holds. */
static int kld_with_base(qb_ctx *ctx, eval_args *a)
{
    if (!a->ctx_given) a->n_ctx = 0; /* the file's; a --ctx given must equal it (checked by the core) */
    qb_kld_base *b = NULL;
    if (qb_kld_base_open(ctx, a->base_file, &b) != QB_OK) return cli_error("%s", qb_ctx_errmsg(ctx));
    qb_model *m = cli_open_model(ctx, a->pos[0], a->tok, false);
    int32_t *toks = NULL;
    int n = 0, rc = 1;
    if (!m || !cli_act_apply(ctx, m, &a->act)) goto out;
    if (qb_eval_load_text(ctx, m, a->pos[1], &toks, &n) != QB_OK ||
        qb_kld_base_check(ctx, b, m, toks, n, a->pos[1]) != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(ctx));
        goto out;
    }
    cli_progress pr;
    cli_progress_start(&pr, "kl-divergence");
    cli_install_sigint();
    qb_eval_opts o = {.n_ctx = (int)a->n_ctx, .n_chunks = (int)a->chunks, .progress = cli_progress_cb, .ud = &pr,
                      .cancel = &cli_cancel, .run = a->act.run};
    qb_kld_stats r;
    qb_status st = qb_eval_kld_base(ctx, b, m, &o, &r);
    cli_progress_end(&pr);
    if (st != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(ctx));
        rc = st == QB_ERR_CANCELLED ? 130 : 1;
        goto out;
    }
    printf("base file  %s: %d chunks of %d tokens, vocabulary %d\n", b->path, b->n_chunk, b->n_ctx, b->n_vocab);
    printf("model      %s\n", m->path);
    printf("text       %s: its first %ld tokens are the file's\n", a->pos[1], (long)b->n_chunk * b->n_ctx);
    printf("scored     %ld positions: %d chunks x %d\n\n", r.n_scored, r.n_chunks, b->rows);
    print_kld_stats(&r);
    fprintf(stderr, "%.2f s\n", r.seconds);
    cli_act_report(m, &a->act, stdout);
    rc = 0;
out:
    free(toks);
    qb_model_close(m);
    qb_kld_base_close(b);
    return rc;
}

int cmd_kld(int argc, char **argv)
{
    eval_args a;
    if (!parse("kld", argc, argv, 3, &a)) return 1;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (a.threads) ctx.n_threads = (int)a.threads;
    if ((a.save_base || a.base_file) && qb_dist_size() > 1) /* its chunks stream to or from one file */
        return cli_error("kld: %s does not divide its work over MPI ranks; run it as one process",
                         a.save_base ? "--save-base" : "--base");
    if (a.save_base || a.base_file) {
        int rc = a.save_base ? kld_save_base(&ctx, &a) : kld_with_base(&ctx, &a);
        cli_act_free(&a.act);
        return rc;
    }
    qb_model *base = cli_open_model(&ctx, a.pos[0], a.tok, false);
    if (!base) return 1;
    qb_model *other = cli_open_model(&ctx, a.pos[1], a.tok, false);
    int32_t *toks = NULL;
    int n = 0, rc = 1;
    if (!other || !cli_act_apply(&ctx, other, &a.act)) goto out;
    if (qb_eval_load_text(&ctx, base, a.pos[2], &toks, &n) != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    cli_progress pr;
    cli_progress_start(&pr, "kl-divergence");
    pr.items = "chunks";
    cli_install_sigint();
    qb_eval_opts o = {.n_ctx = (int)a.n_ctx, .n_chunks = (int)a.chunks, .progress = cli_progress_cb, .ud = &pr,
                      .cancel = &cli_cancel, .run = a.act.run, .divided = cli_divided_cb};
    qb_kld_result r;
    qb_status st = qb_eval_kld(&ctx, base, other, toks, n, &o, &r);
    cli_progress_end(&pr);
    if (st != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(&ctx));
        rc = st == QB_ERR_CANCELLED ? 130 : 1;
        goto out;
    }
    printf("base       %s\nother      %s\n", base->path, other->path);
    printf("text       %s: %d tokens, %d chunks of %d, %ld scored\n", a.pos[2], n, r.base.n_chunks, r.base.n_ctx,
           r.base.n_scored);
    printf("PPL(base)  = %.4f +/- %.5f\n", r.base.ppl, r.base.ppl_err);
    printf("PPL(other) = %.4f +/- %.5f\n", r.other.ppl, r.other.ppl_err);
    printf("dPPL       = %+.4f (%+.3f%%)\n", r.dppl, 100 * r.dppl / r.base.ppl);
    printf("KLD mean   = %.6f +/- %.6f\n", r.kld_mean, r.kld_err);
    printf("KLD median = %.6f\nKLD p99    = %.6f\nKLD max    = %.6f\n", r.kld_median, r.kld_p99, r.kld_max);
    printf("top-1 agreement = %.3f%%\n", r.top1_pct);
    fprintf(stderr, "%.2f s\n", r.base.seconds);
    cli_act_report(other, &a.act, stdout);
    rc = 0;
out:
    free(toks);
    cli_act_free(&a.act);
    qb_model_close(base);
    qb_model_close(other);
    return rc;
}
