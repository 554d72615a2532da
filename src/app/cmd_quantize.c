/* cmd_quantize.c — `quantbench quantize MODEL OUT.gguf TYPE [--pure] [--plan FILE]`, like
 * llama-quantize: same type names, same default mix unless --pure; a plan file overrides
 * tensors by name pattern. MODEL may be a GGUF (quantized tensor by tensor, metadata kept) or
 * a llama2.c / Hugging Face model (quantized in memory, exported with its tokenizer). The
 * output is written atomically; Ctrl-C leaves it untouched.
 *
 * With --method rtn|gptq|awq the model is opened, calibrated on --calib FILE where the method
 * needs it, quantized in memory by the method (TYPE_OR_FORMAT: a format such as int4-g128 or
 * q4_k for every tensor, or a llama-quantize mix) and exported. */
#include "cli.h"
#include "core/quant/ftype.h"
#include "core/quant/quantize_file.h"
#include "core/quant/apply.h"
#include "core/quant/export_repack.h"
#include "core/method/method.h"

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
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
    if (st == QB_OK) note_conversions(m);
    qb_model_size_compute(m, &after);
    r->bytes_in = before.bytes;
    r->bytes_out = st == QB_OK ? file_size(out) : after.bytes;
    r->n_tensors = m->n_tensors;
    for (int i = 0; i < m->n_tensors; i++) r->n_quantized += m->tensors[i].type != m->tensors[i].src_type &&
                                                             qb_tensor_quantizable(&m->tensors[i]);
    r->seconds = cli_now() - t0;
    qb_model_close(m);
    return st;
}

typedef struct {
    const char *name;  /* NULL: no --method */
    const char *calib; /* --calib FILE */
    long samples, n_ctx, block;
    double damp, alpha;
    bool act_order, clip, no_clip, alpha_set;
} method_args;

/* --method: open, calibrate (GPTQ, AWQ), apply the method under the plan, export. */
static qb_status quantize_method(qb_ctx *ctx, const char *in, const char *out, const char *type, const qb_plan *extra,
                                 bool pure, const method_args *a, qb_quantize_result *r)
{
    memset(r, 0, sizeof *r);
    double t0 = cli_now();
    qb_method meth;
    qb_status st = qb_method_parse(ctx, a->name, &meth);
    if (st != QB_OK) return st;
    meth.gptq.act_order = a->act_order;
    if (a->damp >= 0) meth.gptq.damp = a->damp > 0 ? (float)a->damp : -1.0f;
    if (a->block > 0) meth.gptq.block = (int)a->block;
    if (a->alpha_set) meth.awq.alpha = (float)a->alpha;
    if (a->clip || a->no_clip) meth.awq.clip = !a->no_clip; /* default: on */
    if (qb_method_needs_calib(&meth) && !a->calib)
        return qb_fail(ctx, QB_ERR_ARG, "--method %s needs --calib FILE (a text to calibrate on)", a->name);
    qb_model *m;
    if ((st = qb_model_open(ctx, in, NULL, &m)) != QB_OK) return st;
    qb_model_size before, after;
    qb_model_size_compute(m, &before);
    qb_plan plan;
    qb_plan_init(&plan);
    qb_calib *cal = NULL;
    if (type) st = qb_method_plan(ctx, m, type, pure, &plan);
    for (int i = 0; st == QB_OK && extra && i < extra->n_rules; i++)
        st = qb_plan_add(ctx, &plan, extra->rules[i].pattern, &extra->rules[i].fmt);
    if (st == QB_OK && qb_method_needs_calib(&meth)) {
        cli_progress pr;
        cli_progress_start(&pr, "calibrate");
        qb_calib_opts co = {.n_samples = (int)a->samples, .n_ctx = (int)a->n_ctx, .hessian = true,
                            .progress = cli_progress_cb, .ud = &pr, .cancel = &cli_cancel};
        st = qb_calib_run_file(ctx, m, a->calib, &co, &cal);
        cli_progress_end(&pr);
    }
    if (st == QB_OK) {
        cli_progress pr;
        cli_progress_start(&pr, a->name);
        qb_method_opts mo = {.progress = cli_progress_cb, .ud = &pr, .cancel = &cli_cancel};
        st = qb_model_apply_method(ctx, m, &plan, &meth, cal, &mo);
        cli_progress_end(&pr);
    }
    if (st == QB_OK) st = qb_model_export_gguf(ctx, m, out, &plan, &cli_cancel);
    if (st == QB_OK) note_conversions(m);
    qb_model_size_compute(m, &after);
    r->bytes_in = before.bytes;
    r->bytes_out = st == QB_OK ? file_size(out) : after.bytes;
    r->n_tensors = m->n_tensors;
    for (int i = 0; i < m->n_tensors; i++)
        r->n_quantized += m->tensors[i].type != m->tensors[i].src_type && qb_tensor_quantizable(&m->tensors[i]);
    r->seconds = cli_now() - t0;
    qb_calib_free(cal);
    qb_plan_free(&plan);
    qb_model_close(m);
    return st;
}

int cmd_quantize(int argc, char **argv)
{
    method_args ma = {.damp = -1.0};
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
        } else if (!strcmp(a, "--method")) {
            if (!(ma.name = v)) return cli_error("quantize: --method needs rtn, gptq or awq");
            i++;
        } else if (!strcmp(a, "--calib")) {
            if (!(ma.calib = v)) return cli_error("quantize: --calib needs a text file");
            i++;
        } else if (!strcmp(a, "--samples") || !strcmp(a, "--ctx") || !strcmp(a, "--block")) {
            long *dst = a[2] == 's' ? &ma.samples : a[2] == 'c' ? &ma.n_ctx : &ma.block;
            if (!cli_int(a, v, a[2] == 'c' ? 2 : 1, 1 << 20, dst)) return 1;
            i++;
        } else if (!strcmp(a, "--damp")) {
            if (!cli_float(a, v, 0.0, 10.0, &ma.damp)) return 1;
            i++;
        } else if (!strcmp(a, "--alpha")) {
            if (!cli_float(a, v, 0.0, 1.0, &ma.alpha)) return 1;
            ma.alpha_set = true;
            i++;
        } else if (!strcmp(a, "--act-order")) ma.act_order = true;
        else if (!strcmp(a, "--clip")) ma.clip = true;
        else if (!strcmp(a, "--no-clip")) ma.no_clip = true;
        else if (!strcmp(a, "--help")) {
            puts("usage: quantbench quantize MODEL OUT.gguf TYPE [--pure] [--plan FILE] [--allow-requantize] [-t N]");
            puts("       quantbench quantize MODEL OUT.gguf TYPE_OR_FORMAT --method rtn|gptq|awq [--calib FILE]\n"
                 "         [--samples N] [--ctx N] [--act-order] [--damp 0.01] [--block 128] [--alpha A] [--no-clip]\n"
                 "  TYPE_OR_FORMAT: a format for every tensor (int4-g128-asym, q4_k, q4_0, ...) or a mix (Q4_K_M)");
            list_types(stdout);
            return 0;
        } else if (a[0] == '-') return cli_error("quantize: unknown option '%s'", a);
        else if (n_pos < 3) pos[n_pos++] = a;
        else return cli_error("quantize: unexpected argument '%s'", a);
    }
    if (ma.name) {
        qb_ctx c0;
        qb_ctx_init(&c0);
        qb_method tmp;
        if (qb_method_parse(&c0, ma.name, &tmp) != QB_OK) return cli_error("quantize: %s", qb_ctx_errmsg(&c0));
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
    qb_status st;
    if (ma.name) {
        cli_progress_end(&pr);
        st = quantize_method(&ctx, pos[0], pos[1], o.ftype, o.plan, o.pure, &ma, &r);
    } else if (ma.calib || ma.act_order || ma.clip || ma.no_clip || ma.alpha_set) {
        qb_plan_free(&plan);
        return cli_error("quantize: --calib, --act-order, --alpha and --clip need --method");
    } else {
        st = is_gguf(pos[0]) ? qb_quantize_gguf(&ctx, pos[0], pos[1], &o, &r) : quantize_model(&ctx, pos[0], pos[1], &o, &r);
    }
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
