/* cmd_quantize.c — `quantbench quantize IN.gguf OUT.gguf TYPE [--pure] [--plan FILE]`, like
 * llama-quantize: same type names, same default mix unless --pure; a plan file overrides
 * tensors by name pattern. The output is written atomically; Ctrl-C leaves it untouched. */
#include "cli.h"
#include "core/quant/ftype.h"
#include "core/quant/quantize_file.h"

#include <stdio.h>
#include <string.h>

static void list_types(FILE *f)
{
    fputs("types:", f);
    for (const qb_ftype *t = qb_ftype_all(); t->name; t++) fprintf(f, " %s", t->name);
    fputc('\n', f);
}

int cmd_quantize(int argc, char **argv)
{
    const char *pos[3] = {0}, *plan_path = NULL;
    int n_pos = 0;
    long threads = 0;
    qb_quantize_opts o = {0};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--pure")) o.pure = true;
        else if (!strcmp(a, "--allow-requantize")) o.allow_requantize = true;
        else if (!strcmp(a, "--plan")) {
            if (!(plan_path = v)) return cli_error("quantize: --plan needs a file");
            i++;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!cli_int(a, v, 1, 1024, &threads)) return 1;
            i++;
        } else if (!strcmp(a, "--help")) {
            puts("usage: quantbench quantize IN.gguf OUT.gguf TYPE [--pure] [--plan FILE] [--allow-requantize] [-t N]");
            list_types(stdout);
            return 0;
        } else if (a[0] == '-') return cli_error("quantize: unknown option '%s'", a);
        else if (n_pos < 3) pos[n_pos++] = a;
        else return cli_error("quantize: unexpected argument '%s'", a);
    }
    if (n_pos < 2 || (n_pos < 3 && !plan_path)) {
        cli_error("quantize: usage: quantbench quantize IN.gguf OUT.gguf TYPE [--pure] [--plan FILE]");
        list_types(stderr);
        return 1;
    }
    if (!strcmp(pos[0], pos[1])) return cli_error("quantize: the output would overwrite the input %s", pos[0]);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (threads) ctx.n_threads = (int)threads;
    qb_ctx_apply_threads(&ctx);
    qb_plan plan;
    qb_plan_init(&plan);
    if (plan_path && qb_plan_load(&ctx, plan_path, &plan) != QB_OK) return cli_error("%s", qb_ctx_errmsg(&ctx));
    o.ftype = n_pos == 3 ? pos[2] : NULL;
    o.plan = plan_path ? &plan : NULL;
    cli_progress pr;
    cli_progress_start(&pr, "quantize");
    o.progress = cli_progress_cb;
    o.ud = &pr;
    o.cancel = &cli_cancel;
    cli_install_sigint();
    qb_quantize_result r;
    qb_status st = qb_quantize_gguf(&ctx, pos[0], pos[1], &o, &r);
    cli_progress_end(&pr);
    qb_plan_free(&plan);
    if (st != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(&ctx));
        return st == QB_ERR_CANCELLED ? 130 : 1;
    }
    printf("%s -> %s: %d tensors (%d quantized), %.2f MiB -> %.2f MiB, %.2f s\n", pos[0], pos[1], r.n_tensors,
           r.n_quantized, r.bytes_in / 1048576.0, r.bytes_out / 1048576.0, r.seconds);
    return 0;
}
