/* cmd_scan_fisher.c — the Fisher estimate in `quantbench scan` (one calibration pass, the KLD of
 * each unit estimated as ½ Σ F·ΔW², optionally the top units measured, beside the exact scan
 * with Spearman's rho when an evaluation text is given) and the options `search` shares. */
#include "cli.h"
#include "cmd_scan.h"
#include "core/eval/eval.h"
#include "core/quant/format.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool fisher_parse_opt(const char *o, const char *v, int *i, fisher_args *a, bool *ok)
{
    *ok = true;
    if (!strcmp(o, "--estimate")) {
        (*i)++;
        if (!v) *ok = !cli_error("%s needs a value", o);
        else if (!strcmp(v, "fisher")) a->fisher = true;
        else *ok = !cli_error("--estimate takes 'fisher' (the importance-matrix estimate is --imatrix FILE), not '%s'", v);
    } else if (!strcmp(o, "--calib")) {
        (*i)++;
        if (!(a->calib = v)) *ok = !cli_error("%s needs a value", o);
    } else if (!strcmp(o, "--calib-tokens")) *ok = cli_int(o, v, 1, 1 << 30, &a->calib_tokens), (*i)++;
    else if (!strcmp(o, "--refine")) *ok = cli_int(o, v, 0, 100000, &a->refine), (*i)++;
    else if (!strcmp(o, "--samples")) *ok = cli_int(o, v, 1, 64, &a->samples), (*i)++;
    else if (!strcmp(o, "--stream")) {
        (*i)++;
        if (v && !strcmp(v, "auto")) a->stream = QB_FISHER_STREAM_AUTO;
        else if (v && !strcmp(v, "on")) a->stream = QB_FISHER_STREAM_ON;
        else if (v && !strcmp(v, "off")) a->stream = QB_FISHER_STREAM_OFF;
        else if (v && !strcmp(v, "recompute")) a->stream = QB_FISHER_STREAM_RECOMPUTE;
        else *ok = !cli_error("--stream takes 'auto', 'on', 'off' or 'recompute'");
    }
    else if (!strcmp(o, "--seed")) *ok = cli_int(o, v, 0, 1L << 30, &a->seed), (*i)++;
    else if (!strcmp(o, "--labels") || !strcmp(o, "--positions")) {
        (*i)++;
        bool lab = !strcmp(o, "--labels");
        const char *x = lab ? "sampled" : "half", *y = lab ? "data" : "all";
        if (!v || (strcmp(v, x) && strcmp(v, y))) *ok = !cli_error("%s takes '%s' or '%s'", o, x, y);
        else if (lab) a->data_labels = !strcmp(v, y);
        else a->all_positions = !strcmp(v, y);
    } else return false;
    return true;
}

qb_fisher *fisher_gather(qb_ctx *ctx, const qb_model *m, const fisher_args *a, const char *path, long n_tokens,
                         long n_ctx, const qb_format *price, int n_price)
{
    int32_t *toks = NULL;
    int n = 0;
    qb_fisher *f = NULL;
    qb_status st = qb_eval_load_text(ctx, m, path, &toks, &n);
    if (st == QB_OK) {
        cli_progress pr;
        cli_progress_start(&pr, "fisher");
        cli_install_sigint();
        qb_fisher_opts fo = {.n_ctx = (int)n_ctx, .n_tokens = (int)n_tokens,
                             .labels = a->data_labels ? QB_FISHER_DATA : QB_FISHER_SAMPLED,
                             .all_positions = a->all_positions, .samples = (int)a->samples, .seed = (uint64_t)a->seed,
                             .stream = a->stream, .price = price, .n_price = n_price,
                             .progress = cli_progress_cb, .ud = &pr, .cancel = &cli_cancel};
        st = qb_fisher_compute(ctx, m, toks, n, &fo, &f);
        cli_progress_end(&pr);
    }
    free(toks);
    if (st != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(ctx));
        return NULL;
    }
    long pos;
    int chunks, len;
    double secs;
    qb_fisher_info(f, &pos, &chunks, &len, &secs);
    const int s = a->samples > 1 && !a->data_labels ? (int)a->samples : 1, fw = qb_fisher_forwards(f);
    printf("fisher     %s: %d chunks of %d, %ld positions, labels %s, %d forward + %d backward per chunk "
           "(~%d forward passes over the tokens)%s; %.2f s\n",
           path, chunks, len, pos, a->data_labels ? "of the text" : "sampled", fw, s, fw + 2 * s,
           qb_fisher_streamed(f) ? ", streamed block by block (prices kept, not F)" : "", secs);
    return f;
}

static void print_estimate(const qb_scan_result *r, bool refined)
{
    printf("setting    %s; estimate: Fisher, 1/2 sum F*dW^2 (nats, the scale of KLD mean)\n", r->format);
    if (r->n_skipped) printf("skipped    %d unit(s): %s\n", r->n_skipped, r->skipped_why);
    printf("%4s  %-28s %-12s %6s %10s %12s %12s%s\n", "rank", "unit", "format", "bpw", "bytes", "est KLD", "est rel",
           refined ? "     KLD mean" : "");
    for (int i = 0; i < r->n_rows; i++) {
        const qb_scan_row *w = &r->rows[i];
        printf("%4d  %-28s %-12s %6.3f %10zu %12.5g %12.5g", i + 1, w->name, w->format, w->bpw, w->bytes, w->est_err,
               w->est_rel);
        if (w->refined) printf(" %12.6f", w->kld.kld_mean);
        putchar('\n');
    }
}

static void print_exact(const qb_scan_result *r, const char *text)
{
    printf("text       %s: %d chunks of %d, %ld scored; base PPL %.4f\n", text, r->base.n_chunks, r->base.n_ctx,
           r->base.n_scored, r->base.ppl);
    printf("%4s  %-28s %-12s %11s %12s %8s\n", "rank", "unit", "format", "KLD mean", "est KLD", "ratio");
    for (int i = 0; i < r->n_rows; i++) {
        const qb_scan_row *w = &r->rows[i];
        printf("%4d  %-28s %-12s %11.6f %12.6f %8.3f\n", i + 1, w->name, w->format, w->kld.kld_mean, w->est_err,
               w->kld.kld_mean > 0 ? w->est_err / w->kld.kld_mean : 0);
    }
}

/* One format: estimate (and refine), then the exact scan when eval tokens are given. */
static int one_format(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, const qb_fisher *f, const fisher_args *fa,
                      const int32_t *calib, int n_calib, const int32_t *ev, int n_ev, const char *eval, qb_scan_opts *so,
                      long calib_tokens, long n_tokens, const char *csv, const char *json)
{
    qb_scan_result est = {0}, r = {0};
    int rc = 1;
    cli_progress pr; /* so's progress points at it while this runs, at nothing after */
    so->progress = NULL;
    so->ud = NULL;
    qb_status st = qb_scan_estimate_fisher(ctx, m, fmt, f, so, &est);
    double t_ref = 0;
    if (st == QB_OK && fa->refine > 0) {
        cli_progress_start(&pr, "refine");
        so->progress = cli_progress_cb;
        so->ud = &pr;
        so->n_tokens = (int)calib_tokens; /* measured on the calibration text */
        double t0 = cli_now();
        st = qb_scan_refine(ctx, m, fmt, &est, (int)fa->refine, calib, n_calib, so);
        t_ref = cli_now() - t0;
        cli_progress_end(&pr);
    }
    if (st != QB_OK) goto fail;
    print_estimate(&est, fa->refine > 0);
    printf("estimate   %d units in %.2f s", est.n_rows, est.seconds);
    if (fa->refine > 0) printf("; top %ld measured on the calibration text in %.1f s", fa->refine, t_ref);
    putchar('\n');
    const qb_scan_result *save = &est;
    if (ev) {
        cli_progress_start(&pr, "scan");
        so->progress = cli_progress_cb;
        so->ud = &pr;
        so->n_tokens = (int)n_tokens;
        st = qb_sensitivity_scan(ctx, m, fmt, ev, n_ev, so, &r);
        cli_progress_end(&pr);
        if (st != QB_OK) goto fail;
        int n, n2;
        double rho, rho_rel, rho_rank = qb_scan_rank_rho(&r, &est, &n2);
        qb_scan_join_estimate(&r, &est, &n, &rho, &rho_rel);
        print_exact(&r, eval);
        printf("spearman   %s: %d units, rho(est KLD, KLD mean) %.3f, rho(est rel) %.3f", r.format, n, rho, rho_rel);
        if (fa->refine > 0) printf(", refined ranking %.3f", rho_rank);
        printf("; exact scan %.1f s\n", r.seconds);
        save = &r;
    }
    if (csv && (st = qb_scan_save_csv(ctx, save, csv)) != QB_OK) goto fail;
    if (json && (st = qb_scan_save_json(ctx, save, m->path, json)) != QB_OK) goto fail;
    if (csv) printf("wrote      %s\n", csv);
    rc = 0;
    goto out;
fail:
    cli_error("%s", qb_ctx_errmsg(ctx));
    rc = st == QB_ERR_CANCELLED ? 130 : 1;
out:
    so->progress = NULL;
    so->ud = NULL;
    qb_scan_result_free(&est);
    qb_scan_result_free(&r);
    return rc;
}

/* path, or with several formats path with "-FORMAT" before its extension. */
static void per_format(char *out, size_t cap, const char *path, const qb_format *f)
{
    if (!f) {
        snprintf(out, cap, "%s", path);
        return;
    }
    char name[32];
    qb_format_name(f, name, sizeof name);
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) dot = path + strlen(path);
    snprintf(out, cap, "%.*s-%s%s", (int)(dot - path), path, name, dot);
}

int scan_fisher(qb_ctx *ctx, const qb_model *m, const char *formats, const char *eval, const fisher_args *fa,
                qb_scan_opts *so, long n_tokens, long n_ctx, const char *csv, const char *json)
{
    if (!fa->calib) return cli_error("scan: --estimate fisher needs --calib CALIB.txt (the calibration text)");
    char *list = strdup(formats);
    qb_format fs[16];
    int nf = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (nf == 16 || qb_format_parse(ctx, t, &fs[nf]) != QB_OK) {
            free(list);
            return nf == 16 ? cli_error("scan: at most 16 formats") : cli_error("scan: --format: %s", qb_ctx_errmsg(ctx));
        }
        nf++;
    }
    free(list);
    if (nf == 0) return cli_error("scan: --format: no format");
    int32_t *calib = NULL, *ev = NULL;
    int n_calib = 0, n_ev = 0, rc = 1;
    long calib_tokens = fa->calib_tokens > 0 ? fa->calib_tokens : n_tokens;
    qb_fisher *f = NULL;
    qb_status st = qb_eval_load_text(ctx, m, fa->calib, &calib, &n_calib);
    if (st == QB_OK && eval) st = qb_eval_load_text(ctx, m, eval, &ev, &n_ev);
    if (st != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(ctx));
        goto out;
    }
    printf("model      %s\n", m->path);
    if (!(f = fisher_gather(ctx, m, fa, fa->calib, calib_tokens, n_ctx, fs, nf))) goto out;
    so->cancel = &cli_cancel;
    so->n_ctx = (int)n_ctx;
    for (int k = 0; k < nf; k++) {
        char cp[1024], jp[1024]; /* several formats: OUT.csv -> OUT-q4_k.csv */
        if (csv) per_format(cp, sizeof cp, csv, nf > 1 ? &fs[k] : NULL);
        if (json) per_format(jp, sizeof jp, json, nf > 1 ? &fs[k] : NULL);
        if ((rc = one_format(ctx, m, &fs[k], f, fa, calib, n_calib, ev, n_ev, eval, so, calib_tokens, n_tokens,
                             csv ? cp : NULL, json ? jp : NULL)) != 0)
            break;
    }
out:
    qb_fisher_free(f);
    free(calib);
    free(ev);
    return rc;
}
