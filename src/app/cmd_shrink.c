/* cmd_shrink.c — `quantbench shrink`: structured pruning of MODEL (whole attention heads, FFN
 * neurons, blocks) chosen by importance measured on a calibration TEXT, the model's shapes
 * rewritten so it really shrinks; prints what went in every block and how important it was,
 * parameters and bytes before and after, PPL and KLD (against the unpruned model) on --eval,
 * and writes the GGUF. The computation is core's (core/method/prune_structured.h). */
#include "cli.h"

#include "core/eval/eval.h"
#include "core/method/prune_structured.h"
#include "core/quant/apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define USAGE                                                                                                          \
    "shrink: usage: quantbench shrink MODEL TEXT [--heads F] [--ffn F] [--layers N] [--out OUT.gguf]\n"               \
    "           [--samples N] [--calib-ctx N] [--eval FILE] [--chunks N] [--ctx N] [-t N]\n"                          \
    "  --heads F / --ffn F: share in [0, 1) of every block's attention heads / FFN neurons removed;\n"                \
    "  --layers N: whole blocks removed; TEXT: the calibration text the importance is measured on"

typedef struct {
    const char *model, *text, *out, *eval, *tok;
    double heads, ffn;
    long layers, samples, calib_ctx, chunks, ctx, threads;
} shrink_args;

static int parse(int argc, char **argv, shrink_args *a)
{
    memset(a, 0, sizeof *a);
    a->calib_ctx = 256;
    a->ctx = 256;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, val = true;
        if (!strcmp(o, "--out") || !strcmp(o, "-o")) ok = (a->out = v) != NULL;
        else if (!strcmp(o, "--eval")) ok = (a->eval = v) != NULL;
        else if (!strcmp(o, "--tokenizer")) ok = (a->tok = v) != NULL;
        else if (!strcmp(o, "--heads")) ok = cli_float(o, v, -1e9, 1e9, &a->heads); /* range: core's check */
        else if (!strcmp(o, "--ffn")) ok = cli_float(o, v, -1e9, 1e9, &a->ffn);
        else if (!strcmp(o, "--layers")) ok = cli_int(o, v, 0, 100000, &a->layers);
        else if (!strcmp(o, "--samples")) ok = cli_int(o, v, 1, 1000000, &a->samples);
        else if (!strcmp(o, "--calib-ctx")) ok = cli_int(o, v, 8, 1 << 20, &a->calib_ctx);
        else if (!strcmp(o, "--chunks")) ok = cli_int(o, v, 1, 1000000, &a->chunks);
        else if (!strcmp(o, "--ctx") || !strcmp(o, "-c")) ok = cli_int(o, v, 8, 1 << 20, &a->ctx);
        else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) ok = cli_int(o, v, 1, 1024, &a->threads);
        else if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            puts(USAGE + strlen("shrink: "));
            return -1;
        }
        else if (o[0] == '-' && o[1]) return cli_error("shrink: unknown option '%s'", o);
        else if (!a->model) a->model = o, val = false;
        else if (!a->text) a->text = o, val = false;
        else return cli_error("shrink: unexpected argument '%s'", o);
        if (!ok) return v ? 1 : cli_error("shrink: %s needs a value", o);
        if (val) i++;
    }
    if (!a->model || !a->text) return cli_error(USAGE);
    if (a->heads == 0 && a->ffn == 0 && a->layers == 0)
        return cli_error("shrink: nothing to remove (give --heads, --ffn or --layers)");
    return 0;
}

/* the progress bar, restarted at each stage of the job */
typedef struct {
    cli_progress bar;
    const char *stage;
} stage_bar;

static void stage_progress(void *ud, const char *stage, int done, int total)
{
    stage_bar *b = ud;
    if (b->stage != stage) {
        if (b->stage) cli_progress_end(&b->bar);
        cli_progress_start(&b->bar, stage);
        b->stage = stage;
    }
    cli_progress_cb(&b->bar, done, total);
}

/* what block l lost: indices of the removed heads (and KV heads) and the shares of the
 * block's measured importance that went */
static void print_block(const qb_prune_importance *imp, const qb_prune_selection *s, int l)
{
    int H = s->n_heads, KV = s->n_kv_heads, F = s->hidden_dim;
    printf("  %3d", l);
    if (imp->layer) printf("  %11.5f", imp->layer[l]);
    if (!s->keep_layer[l]) {
        printf("  removed\n");
        return;
    }
    double ht = 0, hr = 0, nt = 0, nr = 0;
    char heads[256] = "";
    size_t k = 0;
    int nrm = 0;
    for (int h = 0; h < H; h++) {
        double v = imp->head[(size_t)l * H + h];
        ht += v;
        if (s->keep_head[(size_t)l * H + h]) continue;
        hr += v;
        if (k < sizeof heads) k += (size_t)snprintf(heads + k, sizeof heads - k, "%s%d", k ? "," : "", h);
    }
    for (int g = 0; g < KV; g++)
        if (!s->keep_kv[(size_t)l * KV + g] && k < sizeof heads)
            k += (size_t)snprintf(heads + k, sizeof heads - k, "%skv%d", k ? "," : "", g);
    for (int i = 0; i < F; i++) {
        double v = imp->neuron[(size_t)l * F + i];
        nt += v;
        if (!s->keep_neuron[(size_t)l * F + i]) nr += v, nrm++;
    }
    printf("  %-18s %6.2f%%  %6d %6.2f%%\n", k ? heads : "-", ht > 0 ? 100 * hr / ht : 0, nrm,
           nt > 0 ? 100 * nr / nt : 0);
}

int cmd_shrink(int argc, char **argv)
{
    shrink_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (a.threads) ctx.n_threads = (int)a.threads;
    qb_model *m = cli_open_model(&ctx, a.model, a.tok, false), *orig = NULL;
    if (!m) return 1;
    qb_prune_importance imp = {0};
    qb_prune_selection sel = {0};
    int32_t *evtok = NULL;
    int n_ev = 0;
    rc = 1;
    qb_prune_amount amt = {.heads = a.heads, .ffn = a.ffn, .layers = (int)a.layers};
    if (qb_prune_amount_check(&ctx, m, &amt) != QB_OK) {
        cli_error("shrink: %s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    if (a.eval && (!(orig = cli_open_model(&ctx, a.model, a.tok, false)) ||
                   qb_eval_load_text(&ctx, m, a.eval, &evtok, &n_ev) != QB_OK)) {
        if (orig) cli_error("shrink: %s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    const qb_config c0 = m->cfg;
    int64_t p0 = qb_model_params(m);
    size_t b0 = qb_model_bytes(m);
    cli_install_sigint();
    stage_bar bar = {0};
    qb_prune_structured_opts o = {.n_samples = (int)a.samples, .n_ctx = (int)a.calib_ctx, .progress = stage_progress,
                                  .ud = &bar, .cancel = &cli_cancel};
    double t0 = cli_now();
    qb_status st = qb_prune_structured(&ctx, m, a.text, &amt, &o, &imp, &sel);
    if (bar.stage) cli_progress_end(&bar.bar);
    if (st != QB_OK) {
        cli_error("shrink: %s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    double secs = cli_now() - t0;
    printf("model      %s: %d blocks, %d heads on %d KV heads (head_dim %d), FFN %d\n", a.model, c0.n_layers,
           c0.n_heads, c0.n_kv_heads, c0.head_dim, c0.hidden_dim);
    printf("importance %s: %d windows of %d tokens; heads and neurons by output energy E[x²]·‖column‖²%s (%.1f s)\n",
           a.text, imp.n_windows, imp.n_ctx, imp.layer ? ", blocks by the KLD with the block skipped" : "", secs);
    printf("  blk%s  %-18s %7s  %6s %7s\n", imp.layer ? "  skip KLD   " : "", "heads removed", "share", "neurons",
           "share");
    for (int l = 0; l < c0.n_layers; l++) print_block(&imp, &sel, l);
    const qb_config *c = &m->cfg;
    int64_t p1 = qb_model_params(m);
    size_t b1 = qb_model_bytes(m);
    printf("result     %d blocks, %d heads on %d KV heads (head_dim %d), FFN %d\n", c->n_layers, c->n_heads,
           c->n_kv_heads, c->head_dim, c->hidden_dim);
    printf("params     %lld -> %lld (%.1f%%)\n", (long long)p0, (long long)p1, 100.0 * (double)p1 / (double)p0);
    printf("bytes      %.2f MiB -> %.2f MiB (%.1f%%)\n", (double)b0 / 1048576.0, (double)b1 / 1048576.0,
           100.0 * (double)b1 / (double)b0);
    fflush(stdout);
    if (a.eval) {
        qb_eval_opts eo = {.n_ctx = (int)a.ctx, .n_chunks = (int)a.chunks, .cancel = &cli_cancel};
        cli_progress pb;
        cli_progress_start(&pb, "eval");
        eo.progress = cli_progress_cb;
        eo.ud = &pb;
        qb_kld_result r;
        double te = cli_now();
        st = qb_eval_kld(&ctx, orig, m, evtok, n_ev, &eo, &r);
        te = cli_now() - te;
        cli_progress_end(&pb);
        if (st != QB_OK) {
            cli_error("shrink: %s", qb_ctx_errmsg(&ctx));
            goto out;
        }
        printf("eval       %s: %d chunks of %d: PPL %.4f -> %.4f, KLD %.5f, top-1 %.2f%% (%.1f s)\n", a.eval,
               r.base.n_chunks, r.base.n_ctx, r.base.ppl, r.other.ppl, r.kld_mean, r.top1_pct, te);
    }
    if (a.out) {
        if (qb_export_gguf(&ctx, m, a.out, NULL, &cli_cancel) != QB_OK) {
            cli_error("shrink: %s", qb_ctx_errmsg(&ctx));
            goto out;
        }
        struct stat sb;
        if (stat(a.out, &sb) == 0) printf("wrote      %s (%.2f MiB)\n", a.out, (double)sb.st_size / 1048576.0);
    }
    rc = 0;
out:
    qb_prune_importance_free(&imp);
    qb_prune_selection_free(&sel);
    free(evtok);
    qb_model_close(orig);
    qb_model_close(m);
    return rc;
}
