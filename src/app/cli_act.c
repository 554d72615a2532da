/* cli_act.c — activation / KV-cache command-line options (cli_act.h). */
#include "cli_act.h"
#include "core/infer/kvcache.h"
#include "core/method/llm_int8.h"

#include <math.h>
#include <string.h>

void cli_act_init(cli_act *a)
{
    memset(a, 0, sizeof *a);
    qb_act_opts_init(&a->o);
}

int cli_act_option(cli_act *a, const char *cmd, int argc, char **argv, int *i)
{
    const char *o = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    bool takes = !strcmp(o, "--act") || !strcmp(o, "--smooth") || !strcmp(o, "--int8-outlier") ||
                 !strcmp(o, "--kv") || !strcmp(o, "--calib") || !strcmp(o, "--calib-windows") ||
                 !strcmp(o, "--calib-ctx");
    if (!takes && strcmp(o, "--smooth-out")) return 0;
    a->any = true;
    if (!takes) {
        a->o.smooth_out = true;
        return 1;
    }
    if (!v) return cli_error("%s: %s needs a value", cmd, o), -1;
    (*i)++;
    double d;
    long n;
    if (!strcmp(o, "--act")) a->o.act = v;
    else if (!strcmp(o, "--kv")) a->o.kv = v;
    else if (!strcmp(o, "--calib")) a->o.calib_path = v;
    else if (!strcmp(o, "--smooth")) {
        if (!cli_float(o, v, 0, 1, &d)) return -1;
        a->o.smooth = true;
        a->o.alpha = (float)d;
    } else if (!strcmp(o, "--int8-outlier")) {
        if (!cli_float(o, v, 0, INFINITY, &d)) return -1;
        a->o.int8_outlier = true;
        a->o.threshold = (float)d;
    } else if (!strcmp(o, "--calib-windows")) {
        if (!cli_int(o, v, 1, 1 << 20, &n)) return -1;
        a->o.calib_windows = (int)n;
    } else {
        if (!cli_int(o, v, 2, 1 << 20, &n)) return -1;
        a->o.calib_ctx = (int)n;
    }
    return 1;
}

bool cli_act_apply(qb_ctx *ctx, qb_model *m, cli_act *a)
{
    if (!a->any) return true;
    cli_install_sigint();
    qb_act_opts o = a->o;
    o.cancel = &cli_cancel;
    double t0 = cli_now();
    if (qb_run_config_new(ctx, m, &a->run) != QB_OK || qb_act_apply(ctx, m, a->run, &o) != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(ctx));
        cli_act_free(a);
        return false;
    }
    const char *act = o.int8_outlier ? "LLM.int8" : o.act && *o.act ? o.act : o.smooth ? "int8" : "float";
    fprintf(stderr, "activations %s%s", act, o.smooth ? "" : "\n");
    if (o.smooth) fprintf(stderr, ", SmoothQuant alpha %.2f%s\n", (double)o.alpha, o.smooth_out ? " (+wo, w_down)" : "");
    if (o.int8_outlier) fprintf(stderr, "LLM.int8 threshold %g\n", (double)o.threshold);
    int n_ctx = m->cfg.seq_len;
    fprintf(stderr, "KV cache %s: %.2f MiB at %d positions (f32 %.2f MiB, f16 %.2f MiB); applied in %.2f s\n",
            qb_kv_type_name(a->run->kv_type), qb_kv_bytes(&m->cfg, n_ctx, a->run->kv_type) / 1048576.0, n_ctx,
            qb_kv_bytes(&m->cfg, n_ctx, QB_KV_F32) / 1048576.0, qb_kv_bytes_f16(&m->cfg, n_ctx) / 1048576.0,
            cli_now() - t0);
    return true;
}

void cli_act_free(cli_act *a)
{
    qb_run_config_free(a->run);
    a->run = NULL;
}

void cli_act_report(const qb_model *m, const cli_act *a, FILE *f)
{
    if (!a->o.int8_outlier) return;
    fprintf(f, "LLM.int8 outlier feature fraction (threshold %g): layer  attn_in  attn_out  ffn_in  ffn_down_in\n",
            (double)a->o.threshold);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        double fr[4];
        qb_llm_int8_fractions(a->run, m, l, fr);
        fprintf(f, "  %2d  %8.4f%%  %8.4f%%  %8.4f%%  %8.4f%%\n", l, 100 * fr[0], 100 * fr[1], 100 * fr[2], 100 * fr[3]);
    }
}
