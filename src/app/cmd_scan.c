/* cmd_scan.c — `quantbench scan` (which tensors or layers can take fewer bits: KLD and ΔPPL of
 * the model with only that unit quantized), `quantbench search` (a format per tensor under a
 * bits-per-weight budget, as a plan that can be saved, applied and exported) and
 * `quantbench prune` (magnitude or N:M pruning, alone or before a format). */
#include "cli.h"
#include "core/eval/sensitivity.h"
#include "core/quant/apply.h"
#include "core/eval/search.h"
#include "core/quant/view.h"
#include "core/method/prune.h"
#include "core/calib/imatrix.h"
#include "cmd_scan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail_st(qb_ctx *ctx, qb_status st)
{
    cli_error("%s", qb_ctx_errmsg(ctx));
    return st == QB_ERR_CANCELLED ? 130 : 1;
}

/* The estimate's table (scan --imatrix without a text). */
static void print_estimate(const qb_scan_result *r, const char *model, const char *imatrix)
{
    printf("model      %s\nimatrix    %s\n", model, imatrix);
    printf("setting    %s; estimate: importance-weighted output error, no forward pass\n", r->format);
    if (r->n_skipped) printf("skipped    %d unit(s): %s\n", r->n_skipped, r->skipped_why);
    printf("%4s  %-28s %-12s %6s %10s %12s %12s\n", "rank", "unit", "format", "bpw", "bytes", "est err", "est rel");
    for (int i = 0; i < r->n_rows; i++) {
        const qb_scan_row *w = &r->rows[i];
        printf("%4d  %-28s %-12s %6.3f %10zu %12.5g %12.5g\n", i + 1, w->name, w->format, w->bpw, w->bytes, w->est_err,
               w->est_rel);
    }
}

/* The estimate beside the exact scan: its figures into the rows, and how well it ranks them. */
static void join_estimate(qb_scan_result *exact, const qb_scan_result *est)
{
    int n;
    double rho_err, rho_rel;
    qb_scan_join_estimate(exact, est, &n, &rho_err, &rho_rel);
    if (n >= 2)
        printf("estimate   %d of %d units (%.2f s): Spearman rho against KLD mean: est err %.3f, est rel %.3f\n", n,
               exact->n_rows, est->seconds, rho_err, rho_rel);
    else
        printf("estimate   %d of %d units: too few to rank\n", n, exact->n_rows);
}

/* The engine's cost line (and its note when the cache bound cut the reuse). */
static void print_cost(const qb_scan_stats *s)
{
    printf("cost       %.3f of a full forward pass per unit (mean; %.3f with the base's passes), reuse cache %.1f "
           "MiB (bound %.0f MiB)\n",
           s->cost_mean, s->cost_all, (double)s->cache_used / 1048576, (double)s->cache_bound / 1048576);
    if (s->note[0]) printf("note       %s\n", s->note);
}

static void print_scan(const qb_scan_result *r, const char *model, const char *text)
{
    printf("model      %s\ntext       %s: %d chunks of %d, %ld scored\n", model, text, r->base.n_chunks,
           r->base.n_ctx, r->base.n_scored);
    printf("setting    %s; base PPL %.4f +/- %.5f\n", r->format, r->base.ppl, r->base.ppl_err);
    print_cost(&r->stats);
    if (r->n_skipped) printf("skipped    %d unit(s): %s\n", r->n_skipped, r->skipped_why);
    printf("%4s  %-28s %-12s %6s %10s %11s %11s %8s %9s %6s\n", "rank", "unit", "format", "bpw", "bytes", "KLD mean",
           "KLD p99", "top-1 %", "dPPL", "cost");
    for (int i = 0; i < r->n_rows; i++) {
        const qb_scan_row *w = &r->rows[i];
        printf("%4d  %-28s %-12s %6.3f %10zu %11.6f %11.6f %8.3f %+9.4f %6.3f\n", i + 1, w->name, w->format, w->bpw,
               w->bytes, w->kld.kld_mean, w->kld.kld_p99, w->kld.top1_pct, w->kld.dppl, w->kld.cost);
    }
}

/* "--layers N" or "--layers A-B" (inclusive): only those blocks' matrices. */
static bool parse_layers(const char *v, qb_scan_opts *so)
{
    char *end;
    long a = strtol(v, &end, 10), b = a;
    if (end == v || a < 0 || a > 1 << 20) return false;
    if (*end == '-') {
        const char *s = end + 1;
        b = strtol(s, &end, 10);
        if (end == s || b < a || b > 1 << 20) return false;
    }
    if (*end) return false;
    so->layers_only = true;
    so->layer_first = (int)a;
    so->layer_last = (int)b;
    return true;
}

int cmd_scan(int argc, char **argv)
{
    const char *pos[2] = {0}, *fmt_name = "q4_k", *csv = NULL, *json = NULL, *tok = NULL, *imx = NULL;
    int n_pos = 0;
    long n_tokens = 16384, n_ctx = 256, threads = 0;
    qb_scan_opts so = {0};
    fisher_args fa = {0};
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (fisher_parse_opt(o, v, &i, &fa, &ok)) {
            if (!ok) return 1;
            continue;
        }
        if (!strcmp(o, "--format") || !strcmp(o, "-f")) ok = (fmt_name = v) != NULL, i++;
        else if (!strcmp(o, "--per")) {
            ok = v != NULL, i++;
            if (ok && !strcmp(v, "layer")) so.per = QB_SCAN_LAYER;
            else if (ok && strcmp(v, "tensor")) return cli_error("scan: --per takes 'layer' or 'tensor', not '%s'", v);
        } else if (!strcmp(o, "--tokens")) ok = cli_int(o, v, 0, 1 << 30, &n_tokens), i++;
        else if (!strcmp(o, "--ctx") || !strcmp(o, "-c")) ok = cli_int(o, v, 8, 1 << 20, &n_ctx), i++;
        else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) ok = cli_int(o, v, 1, 1024, &threads), i++;
        else if (!strcmp(o, "--csv")) ok = (csv = v) != NULL, i++;
        else if (!strcmp(o, "--json")) ok = (json = v) != NULL, i++;
        else if (!strcmp(o, "--tokenizer")) ok = (tok = v) != NULL, i++;
        else if (!strcmp(o, "--blocks-only")) so.blocks_only = true;
        else if (!strcmp(o, "--no-reuse")) so.no_reuse = true;
        else if (!strcmp(o, "--cache-mb")) {
            long mb;
            if (!cli_int(o, v, 0, 1 << 24, &mb)) return 1;
            so.cache_mb = mb > 0 ? (int)mb : QB_SCAN_NO_CACHE;
            i++;
        }
        else if (!strcmp(o, "--imatrix")) ok = (imx = v) != NULL, i++;
        else if (!strcmp(o, "--layers")) {
            if (!v) return cli_error("scan: --layers needs a value");
            if (!parse_layers(v, &so)) return cli_error("scan: --layers takes N or FIRST-LAST (block numbers), not '%s'", v);
            i++;
        }
        else if (o[0] == '-' && o[1]) return cli_error("scan: unknown option '%s'", o);
        else if (n_pos < 2) pos[n_pos++] = o;
        else return cli_error("scan: unexpected argument '%s'", o);
        if (!ok) return v ? 1 : cli_error("scan: %s needs a value", o);
    }
    if (n_pos != 2 && !(n_pos == 1 && (imx || fa.fisher)))
        return cli_error("scan: usage: quantbench scan MODEL EVAL.txt [--format q4_k] [--per layer|tensor] "
                         "[--tokens 16384] [--ctx 256] [--blocks-only] [--layers N|A-B] [--imatrix FILE] [--cache-mb N] "
                         "[--no-reuse] [--csv OUT.csv] "
                         "[--json OUT.json]  (MODEL --imatrix FILE without a text: the estimate alone; MODEL [EVAL.txt] "
                         "--estimate fisher --calib CALIB.txt [--calib-tokens N] [--refine K] [--stream auto|on|off|recompute] "
                         "[--format F,F…]: the "
                         "Fisher estimate)");
    if (fa.fisher && imx) return cli_error("scan: --estimate fisher and --imatrix: one estimate at a time");
    if (!fa.fisher &&
        (fa.calib || fa.refine || fa.calib_tokens || fa.samples || fa.data_labels || fa.all_positions || fa.stream))
        return cli_error("scan: --calib, --calib-tokens, --refine, --samples, --labels, --positions, --stream go with "
                         "--estimate fisher");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (threads) ctx.n_threads = (int)threads;
    if (fa.fisher) {
        qb_model *fm = cli_open_model(&ctx, pos[0], tok, false);
        if (!fm) return 1;
        int frc = scan_fisher(&ctx, fm, fmt_name, n_pos == 2 ? pos[1] : NULL, &fa, &so, n_tokens, n_ctx, csv, json);
        qb_model_close(fm);
        return frc;
    }
    qb_format fmt;
    if (qb_format_parse(&ctx, fmt_name, &fmt) != QB_OK) return cli_error("scan: --format: %s", qb_ctx_errmsg(&ctx));
    qb_model *m = cli_open_model(&ctx, pos[0], tok, false);
    if (!m) return 1;
    int32_t *toks = NULL;
    int n = 0, rc = 1;
    qb_scan_result r = {0}, est = {0};
    qb_imatrix *im = NULL;
    qb_status st = QB_OK;
    if (imx) {
        if ((st = qb_imatrix_load(&ctx, imx, &im)) != QB_OK || (st = qb_imatrix_match(&ctx, im, m)) != QB_OK) {
            rc = fail_st(&ctx, st);
            goto out;
        }
        so.cancel = &cli_cancel;
        cli_install_sigint();
        if ((st = qb_scan_estimate(&ctx, m, &fmt, im, &so, &est)) != QB_OK) {
            rc = fail_st(&ctx, st);
            goto out;
        }
        if (n_pos == 1) { /* the estimate alone */
            print_estimate(&est, m->path, imx);
            fprintf(stderr, "%.2f s for %d units\n", est.seconds, est.n_rows);
            if (!cli_writes()) rc = 0;
            else if (csv && (st = qb_scan_save_csv(&ctx, &est, csv)) != QB_OK) rc = fail_st(&ctx, st);
            else if (json && (st = qb_scan_save_json(&ctx, &est, m->path, json)) != QB_OK) rc = fail_st(&ctx, st);
            else rc = 0;
            goto out;
        }
    }
    st = qb_eval_load_text(&ctx, m, pos[1], &toks, &n);
    if (st != QB_OK) {
        rc = fail_st(&ctx, st);
        goto out;
    }
    cli_progress pr;
    cli_progress_start(&pr, "scan");
    pr.items = so.per == QB_SCAN_LAYER ? "units (layers)" : "tensors";
    cli_install_sigint();
    so.n_tokens = (int)n_tokens;
    so.n_ctx = (int)n_ctx;
    so.progress = cli_progress_cb;
    so.ud = &pr;
    so.cancel = &cli_cancel;
    so.divided = cli_divided_cb;
    st = qb_sensitivity_scan(&ctx, m, &fmt, toks, n, &so, &r);
    cli_progress_end(&pr);
    if (st != QB_OK) {
        rc = fail_st(&ctx, st);
        goto out;
    }
    print_scan(&r, m->path, pos[1]);
    if (im) join_estimate(&r, &est);
    fprintf(stderr, "%.2f s for %d variants\n", r.seconds, r.n_rows);
    if (!cli_writes()) csv = json = NULL; /* rank 0 writes a job's files */
    if (csv && (st = qb_scan_save_csv(&ctx, &r, csv)) != QB_OK) {
        rc = fail_st(&ctx, st);
        goto out;
    }
    if (json && (st = qb_scan_save_json(&ctx, &r, m->path, json)) != QB_OK) {
        rc = fail_st(&ctx, st);
        goto out;
    }
    rc = 0;
out:
    qb_scan_result_free(&r);
    qb_scan_result_free(&est);
    qb_imatrix_free(im);
    free(toks);
    qb_model_close(m);
    return rc;
}

typedef struct {
    fisher_args fa; /* --estimate fisher: the costs from the Fisher estimate on the search text */
    const char *pos[2], *cands, *plan_out, *out, *eval, *bpw_of, *compare, *tok;
    int n_pos;
    double bpw;
    long n_tokens, eval_tokens, n_ctx, rounds, swaps, threads;
} search_args;

static bool parse_search(int argc, char **argv, search_args *a)
{
    memset(a, 0, sizeof *a);
    a->n_tokens = 4096;
    a->eval_tokens = 16384;
    a->n_ctx = 256;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (fisher_parse_opt(o, v, &i, &a->fa, &ok)) {
            if (!ok) return false;
            continue;
        }
        if (!strcmp(o, "--bpw")) ok = cli_float(o, v, 0.5, 32, &a->bpw), i++;
        else if (!strcmp(o, "--bpw-of")) ok = (a->bpw_of = v) != NULL, i++;
        else if (!strcmp(o, "--candidates")) ok = (a->cands = v) != NULL, i++;
        else if (!strcmp(o, "--plan-out")) ok = (a->plan_out = v) != NULL, i++;
        else if (!strcmp(o, "--out") || !strcmp(o, "-o")) ok = (a->out = v) != NULL, i++;
        else if (!strcmp(o, "--eval")) ok = (a->eval = v) != NULL, i++;
        else if (!strcmp(o, "--compare")) ok = (a->compare = v) != NULL, i++;
        else if (!strcmp(o, "--tokens")) ok = cli_int(o, v, 0, 1 << 30, &a->n_tokens), i++;
        else if (!strcmp(o, "--eval-tokens")) ok = cli_int(o, v, 0, 1 << 30, &a->eval_tokens), i++;
        else if (!strcmp(o, "--ctx") || !strcmp(o, "-c")) ok = cli_int(o, v, 8, 1 << 20, &a->n_ctx), i++;
        else if (!strcmp(o, "--rounds")) ok = cli_int(o, v, -1, 100, &a->rounds), i++;
        else if (!strcmp(o, "--swaps")) ok = cli_int(o, v, 1, 1000, &a->swaps), i++;
        else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) ok = cli_int(o, v, 1, 1024, &a->threads), i++;
        else if (!strcmp(o, "--tokenizer")) ok = (a->tok = v) != NULL, i++;
        else if (o[0] == '-' && o[1]) return !cli_error("search: unknown option '%s'", o);
        else if (a->n_pos < 2) a->pos[a->n_pos++] = o;
        else return !cli_error("search: unexpected argument '%s'", o);
        if (!ok) return v ? false : !cli_error("search: %s needs a value", o);
    }
    if (a->n_pos != 2 || (a->bpw <= 0 && !a->bpw_of)) {
        cli_error("search: usage: quantbench search MODEL CALIB.txt (--bpw B | --bpw-of Q4_K_M) [--candidates "
                  "q3_k,q4_k,q6_k] [--tokens 4096] [--plan-out PLAN] [--out OUT.gguf] [--eval EVAL.txt "
                  "[--eval-tokens N] [--compare Q4_K_M]] [--estimate fisher [--calib-tokens N]]");
        return false;
    }
    if (a->fa.calib || a->fa.refine)
        return !cli_error("search: --calib and --refine are scan's (search estimates on its own text, CALIB.txt)");
    if (!a->fa.fisher &&
        (a->fa.calib_tokens || a->fa.samples || a->fa.data_labels || a->fa.all_positions || a->fa.stream))
        return !cli_error("search: --calib-tokens, --samples, --labels, --positions, --stream go with "
                          "--estimate fisher");
    return true;
}

/* A view of m quantized with llama-quantize's mix ftype (NULL on error, message printed). */
static qb_model *ftype_view(qb_ctx *ctx, const qb_model *m, const char *ftype)
{
    qb_model *v;
    if (qb_model_view_new(ctx, m, &v) != QB_OK) return cli_error("%s", qb_ctx_errmsg(ctx)), NULL;
    if (qb_ftype_apply(ctx, v, ftype, false, NULL) != QB_OK) {
        cli_error("search: %s", qb_ctx_errmsg(ctx));
        qb_model_view_free(v);
        return NULL;
    }
    return v;
}

/* Evaluate the searched mix (and the reference mix) on held-out text. */
static int eval_mixes(qb_ctx *ctx, const qb_model *m, const search_args *a, const qb_plan *plan, const char *ref)
{
    int32_t *toks = NULL;
    int n = 0, rc = 1, nv = 0;
    qb_model *vs[2] = {0};
    const char *names[2] = {"search", ref};
    qb_kld_result res[2];
    qb_ppl_result base;
    qb_status st = qb_eval_load_text(ctx, m, a->eval, &toks, &n);
    if (st == QB_OK && (st = qb_model_view_new(ctx, m, &vs[nv])) == QB_OK) {
        nv++;
        st = qb_plan_apply_rtn(ctx, vs[0], plan, NULL);
    }
    if (st != QB_OK) {
        rc = fail_st(ctx, st);
        goto out;
    }
    if (ref && !(vs[nv++] = ftype_view(ctx, m, ref))) goto out;
    cli_progress pr;
    cli_progress_start(&pr, "held-out KLD");
    pr.items = "mixes";
    qb_scan_opts so = {.n_ctx = (int)a->n_ctx, .n_tokens = (int)a->eval_tokens, .progress = cli_progress_cb,
                       .ud = &pr, .cancel = &cli_cancel, .divided = cli_divided_cb};
    st = qb_sensitivity_kld(ctx, m, (const qb_model *const *)vs, nv, toks, n, &so, res, &base);
    cli_progress_end(&pr);
    if (st != QB_OK) {
        rc = fail_st(ctx, st);
        goto out;
    }
    printf("held-out   %s: %d chunks of %d, %ld scored; base PPL %.4f\n", a->eval, base.n_chunks, base.n_ctx,
           base.n_scored, base.ppl);
    printf("%-8s %7s %10s %11s %11s %8s %9s\n", "mix", "bpw", "MiB", "KLD mean", "KLD p99", "top-1 %", "PPL");
    for (int j = 0; j < nv; j++) {
        qb_model_size sz;
        qb_quant_size_compute(vs[j], &sz);
        printf("%-8s %7.4f %10.3f %11.6f %11.6f %8.3f %9.4f\n", names[j], sz.bpw, sz.bytes / 1048576.0,
               res[j].kld_mean, res[j].kld_p99, res[j].top1_pct, res[j].other.ppl);
    }
    rc = 0;
out:
    for (int j = 0; j < nv; j++) qb_model_view_free(vs[j]);
    free(toks);
    return rc;
}

/* The search divides candidates (every matrix in every format), then the mixes of each round. */
static void search_divided(void *ud, int n)
{
    cli_progress *p = ud;
    cli_divided_cb(ud, n);
    p->items = "mixes";
}

int cmd_search(int argc, char **argv)
{
    search_args a;
    if (!parse_search(argc, argv, &a)) return 1;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (a.threads) ctx.n_threads = (int)a.threads;
    qb_format *cands = NULL;
    int n_cands = 0;
    if (a.cands && qb_search_parse_candidates(&ctx, a.cands, &cands, &n_cands) != QB_OK)
        return cli_error("search: --candidates: %s", qb_ctx_errmsg(&ctx));
    qb_model *m = cli_open_model(&ctx, a.pos[0], a.tok, false);
    if (!m) {
        free(cands);
        return 1;
    }
    int32_t *toks = NULL;
    int n = 0, rc = 1;
    qb_search_result r = {0};
    qb_fisher *fisher = NULL;
    qb_plan_init(&r.plan);
    if (a.bpw_of) {
        qb_model *v = ftype_view(&ctx, m, a.bpw_of);
        if (!v) goto out;
        qb_model_size sz;
        qb_quant_size_compute(v, &sz);
        qb_model_view_free(v);
        a.bpw = sz.bpw;
        printf("budget     %.4f bpw (llama-quantize's %s mix of this model)\n", a.bpw, a.bpw_of);
        if (!a.compare) a.compare = a.bpw_of;
    }
    qb_status st = qb_eval_load_text(&ctx, m, a.pos[1], &toks, &n);
    if (st != QB_OK) {
        rc = fail_st(&ctx, st);
        goto out;
    }
    qb_format def[QB_SEARCH_MAX_DEFAULTS];
    const int n_def = qb_search_default_candidates(def);
    const long fisher_tokens = a.fa.calib_tokens ? a.fa.calib_tokens : a.n_tokens;
    if (a.fa.fisher && !(fisher = fisher_gather(&ctx, m, &a.fa, a.pos[1], fisher_tokens, a.n_ctx, cands ? cands : def,
                                                cands ? n_cands : n_def)))
        goto out;
    cli_progress pr;
    cli_progress_start(&pr, "search");
    pr.items = "candidates";
    cli_install_sigint();
    qb_search_opts so = {.bpw = a.bpw, .candidates = cands, .n_candidates = n_cands, .n_ctx = (int)a.n_ctx,
                         .n_tokens = (int)a.n_tokens, .rounds = (int)a.rounds, .swaps = (int)a.swaps,
                         .fisher = fisher, .progress = cli_progress_cb, .ud = &pr, .cancel = &cli_cancel,
                         .divided = search_divided};
    st = qb_search_mixed(&ctx, m, toks, n, &so, &r);
    cli_progress_end(&pr);
    if (st != QB_OK) {
        rc = fail_st(&ctx, st);
        goto out;
    }
    for (int i = 0; i < r.plan.n_rules; i++) {
        char f[32];
        qb_format_name(&r.plan.rules[i].fmt, f, sizeof f);
        printf("  %-28s %s\n", r.plan.rules[i].pattern, f);
    }
    if (isnan(r.kld))
        printf("search     %.4f bpw (budget %.4f), %.3f MiB of matrices; KLD estimated from the Fisher diagonal %.6f "
               "(not measured); %.1f s\n",
               r.bpw, r.budget_bpw, r.bytes / 1048576.0, r.kld_predicted, r.seconds);
    else
        printf("search     %.4f bpw (budget %.4f), %.3f MiB of matrices; KLD on %s: %s %.6f, greedy %.6f, "
               "after %d swap(s) %.6f; %d variants, %.1f s\n",
               r.bpw, r.budget_bpw, r.bytes / 1048576.0, a.pos[1], fisher ? "estimated" : "predicted",
               r.kld_predicted, r.kld_greedy, r.n_swaps, r.kld, r.n_variants, r.seconds);
    if (!fisher)
        printf("cost       per variant, as a fraction of a full forward pass: scan %.3f, measured rounds %.3f\n",
               r.cost_scan, r.cost_rounds);
    if (!cli_writes()) a.plan_out = a.out = NULL; /* rank 0 writes a job's files */
    if (a.plan_out && (st = qb_plan_save(&ctx, &r.plan, a.plan_out)) != QB_OK) {
        rc = fail_st(&ctx, st);
        goto out;
    }
    if (a.eval && eval_mixes(&ctx, m, &a, &r.plan, a.compare) != 0) goto out;
    if (a.out) {
        if ((st = qb_plan_apply_rtn(&ctx, m, &r.plan, NULL)) != QB_OK ||
            (st = qb_export_gguf(&ctx, m, a.out, &r.plan, &cli_cancel)) != QB_OK) {
            rc = fail_st(&ctx, st);
            goto out;
        }
        printf("wrote      %s\n", a.out);
    }
    rc = 0;
out:
    qb_search_result_free(&r);
    qb_fisher_free(fisher);
    free(cands);
    free(toks);
    qb_model_close(m);
    return rc;
}

/* `quantbench prune MODEL TEXT SPEC [--formats f16,q8_0,q4_k]`: the blocks' matrices pruned by
 * SPEC and stored in each format, against the same formats unpruned; KLD and PPL on TEXT. */
int cmd_prune(int argc, char **argv)
{
    const char *pos[3] = {0}, *formats = "keep", *tok = NULL;
    int n_pos = 0;
    long n_tokens = 16384, n_ctx = 256, threads = 0;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(o, "--formats")) ok = (formats = v) != NULL, i++;
        else if (!strcmp(o, "--tokens")) ok = cli_int(o, v, 0, 1 << 30, &n_tokens), i++;
        else if (!strcmp(o, "--ctx") || !strcmp(o, "-c")) ok = cli_int(o, v, 8, 1 << 20, &n_ctx), i++;
        else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) ok = cli_int(o, v, 1, 1024, &threads), i++;
        else if (!strcmp(o, "--tokenizer")) ok = (tok = v) != NULL, i++;
        else if (o[0] == '-' && o[1]) return cli_error("prune: unknown option '%s'", o);
        else if (n_pos < 3) pos[n_pos++] = o;
        else return cli_error("prune: unexpected argument '%s'", o);
        if (!ok) return v ? 1 : cli_error("prune: %s needs a value", o);
    }
    if (n_pos != 3)
        return cli_error("prune: usage: quantbench prune MODEL TEXT SPARSITY|N:M [--formats keep,q8_0,q4_k] "
                         "[--tokens 16384] [--ctx 256]");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (threads) ctx.n_threads = (int)threads;
    qb_prune pr;
    if (qb_prune_parse(&ctx, pos[2], &pr) != QB_OK) return cli_error("prune: %s", qb_ctx_errmsg(&ctx));
    char *list = strdup(formats);
    qb_format fs[16];
    bool keep[16];
    int nf = 0;
    for (char *save = NULL, *f = strtok_r(list, ",", &save); f && nf < 16; f = strtok_r(NULL, ",", &save), nf++) {
        keep[nf] = !strcmp(f, "keep");
        if (!keep[nf] && qb_format_parse(&ctx, f, &fs[nf]) != QB_OK) {
            free(list);
            return cli_error("prune: --formats: %s", qb_ctx_errmsg(&ctx));
        }
    }
    qb_model *m = cli_open_model(&ctx, pos[0], tok, false);
    if (!m) {
        free(list);
        return 1;
    }
    int32_t *toks = NULL;
    int n = 0, rc = 1, nv = 0;
    qb_model *vs[32] = {0};
    qb_kld_result res[32];
    qb_ppl_result base;
    qb_status st = qb_eval_load_text(&ctx, m, pos[1], &toks, &n);
    qb_prune none = {0};
    for (int k = 0; st == QB_OK && k < 2 * nf; k++) { /* even: unpruned, odd: pruned */
        if ((st = qb_model_view_new(&ctx, m, &vs[nv])) != QB_OK) break;
        nv++;
        st = qb_prune_apply(&ctx, vs[nv - 1], k % 2 ? &pr : &none, keep[k / 2] ? NULL : &fs[k / 2], &cli_cancel);
    }
    if (st != QB_OK) {
        rc = fail_st(&ctx, st);
        goto out;
    }
    cli_progress bar;
    cli_progress_start(&bar, "prune");
    bar.items = "settings";
    cli_install_sigint();
    qb_scan_opts so = {.n_ctx = (int)n_ctx, .n_tokens = (int)n_tokens, .progress = cli_progress_cb, .ud = &bar,
                       .cancel = &cli_cancel, .divided = cli_divided_cb};
    st = qb_sensitivity_kld(&ctx, m, (const qb_model *const *)vs, nv, toks, n, &so, res, &base);
    cli_progress_end(&bar);
    if (st != QB_OK) {
        rc = fail_st(&ctx, st);
        goto out;
    }
    char pname[32];
    qb_prune_name(&pr, pname, sizeof pname);
    printf("model      %s\ntext       %s: %d chunks of %d, %ld scored; base PPL %.4f +/- %.5f\n", m->path, pos[1],
           base.n_chunks, base.n_ctx, base.n_scored, base.ppl, base.ppl_err);
    printf("%-14s %-10s %7s %11s %8s %9s\n", "pruning", "blk format", "bpw", "KLD mean", "top-1 %", "PPL");
    for (int k = 0; k < nv; k++) {
        qb_model_size sz;
        qb_quant_size_compute(vs[k], &sz);
        char fname[32] = "as loaded";
        if (!keep[k / 2]) qb_format_name(&fs[k / 2], fname, sizeof fname);
        printf("%-14s %-10s %7.3f %11.6f %8.3f %9.4f\n", k % 2 ? pname : "none", fname, sz.bpw, res[k].kld_mean,
               res[k].top1_pct, res[k].other.ppl);
    }
    rc = 0;
out:
    for (int k = 0; k < nv; k++) qb_model_view_free(vs[k]);
    free(list);
    free(toks);
    qb_model_close(m);
    return rc;
}
