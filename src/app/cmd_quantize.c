/* cmd_quantize.c — `quantbench quantize MODEL OUT.gguf TYPE [--pure] [--plan FILE]`, like
 * llama-quantize: same type names, same default mix unless --pure; a plan file overrides
 * tensors by name pattern. MODEL may be a GGUF (quantized tensor by tensor, metadata kept) or
 * a llama2.c / Hugging Face model (quantized in memory, exported with its tokenizer). The
 * output is written atomically; Ctrl-C leaves it untouched. */
#include "cli.h"
#include "core/quant/ftype.h"
#include "core/quant/quantize_file.h"
#include "core/quant/apply.h"

#include <sys/stat.h>

#include <stdio.h>
#include <string.h>

static void list_types(FILE *f)
{
    fputs("types:", f);
    for (const qb_ftype *t = qb_ftype_all(); t->name; t++) fprintf(f, " %s", t->name);
    fputc('\n', f);
}

static bool is_gguf(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return false;
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    bool yes = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
    if (f) fclose(f);
    return yes;
}

/* llama2.c checkpoints and Hugging Face directories: open, quantize in memory, export. */
static qb_status quantize_model(qb_ctx *ctx, const char *in, const char *out, const qb_quantize_opts *o,
                                qb_quantize_result *r)
{
    memset(r, 0, sizeof *r);
    double t0 = cli_now();
    qb_model *m;
    qb_status st = qb_model_open(ctx, in, NULL, &m);
    if (st != QB_OK) return st;
    qb_model_size before, after;
    qb_model_size_compute(m, &before);
    qb_apply_opts ao = {.progress = o->progress, .ud = o->ud, .cancel = o->cancel};
    if (o->ftype) st = qb_model_apply_ftype(ctx, m, o->ftype, o->pure, &ao);
    if (st == QB_OK && o->plan) st = qb_model_apply_plan(ctx, m, o->plan, &ao);
    if (st == QB_OK) st = qb_model_export_gguf(ctx, m, out, o->plan, o->cancel);
    qb_model_size_compute(m, &after);
    r->bytes_in = before.bytes;
    r->bytes_out = after.bytes;
    r->n_tensors = m->n_tensors;
    for (int i = 0; i < m->n_tensors; i++) r->n_quantized += m->tensors[i].type != m->tensors[i].src_type &&
                                                             qb_tensor_quantizable(&m->tensors[i]);
    r->seconds = cli_now() - t0;
    qb_model_close(m);
    return st;
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
            puts("usage: quantbench quantize MODEL OUT.gguf TYPE [--pure] [--plan FILE] [--allow-requantize] [-t N]");
            list_types(stdout);
            return 0;
        } else if (a[0] == '-') return cli_error("quantize: unknown option '%s'", a);
        else if (n_pos < 3) pos[n_pos++] = a;
        else return cli_error("quantize: unexpected argument '%s'", a);
    }
    if (n_pos < 2 || (n_pos < 3 && !plan_path)) {
        cli_error("quantize: usage: quantbench quantize MODEL OUT.gguf TYPE [--pure] [--plan FILE]");
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
    qb_status st = is_gguf(pos[0]) ? qb_quantize_gguf(&ctx, pos[0], pos[1], &o, &r)
                                   : quantize_model(&ctx, pos[0], pos[1], &o, &r);
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
