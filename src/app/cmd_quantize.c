/* cmd_quantize.c — `quantbench quantize MODEL OUT.gguf [TYPE] [--pure] [--plan FILE]`, like
 * llama-quantize: same type names, same default mix unless --pure; a plan overrides tensors
 * by name pattern, each rule with its format and method (plan.h). MODEL may be a GGUF
 * (quantized tensor by tensor, metadata kept, when every rule is RTN) or any model quantbench
 * opens (quantized in memory by one qb_plan_apply call, exported with its tokenizer). The
 * output is written atomically; Ctrl-C leaves it untouched.
 *
 * --method rtn|gptq|awq gives TYPE's rules (and plan rules that name no method) that method;
 * methods that read calibration take it from --calib FILE. --plan FILE.gguf replays the recipe
 * a quantbench GGUF records (cmd_quantize_plan.c). --imatrix FILE weights the quantizers with an
 * importance matrix (llama-imatrix's .dat or GGUF, or ours) as llama-quantize --imatrix does,
 * byte for byte (tests/cli/test-quantize-imatrix.sh). */
#include "cli.h"
#include "cmd_quantize.h"
#include "core/quant/ftype.h"
#include "core/quant/quantize_file.h"
#include "core/calib/imatrix.h"

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

bool qz_is_gguf(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return false;
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    bool yes = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
    if (f) fclose(f);
    return yes;
}

static void usage(FILE *f)
{
    fputs("usage: quantbench quantize MODEL OUT.gguf [TYPE] [--pure] [--plan FILE|FILE.gguf] [--allow-requantize] [-t N]\n"
          "         [--method rtn|gptq|awq|learned] [--calib FILE] [--samples N] [--ctx N] [--act-order] [--damp 0.01]\n"
          "         [--block 128] [--alpha A] [--no-clip] [--weighted] [--imatrix FILE] [--iters 200 --lr L --batch 8]\n"
          "  TYPE: a format for every tensor (int4-g128-asym, q4_k, q4_0, ...) or a mix (Q4_K_M)\n"
          "  --plan: rules 'PATTERN = FORMAT [METHOD KEY=VALUE ...]', or a GGUF quantbench wrote (its recipe)\n"
          "  --imatrix: importance matrix (.dat or GGUF, llama-imatrix's or quantbench imatrix's) weighting the quantizers\n"
          "             (RTN, GPTQ's / AWQ's rounding, learned rounding's k-quant start)\n"
          "  --weighted: GPTQ / AWQ round with the calibration's own importance (its mean squares, an imatrix's data);\n"
          "             learned rounding starts its k-quants from the quantization weighted by it\n"
          "  --method learned: INT formats with groups or per channel, and q2_k, q3_k, q4_k, q5_k, q6_k\n",
          f);
    list_types(f);
}

/* One option with a value; returns 0 (handled), 1 (error, reported), -1 (not this kind). */
static int value_option(const char *a, const char *v, qz_args *q, int *i)
{
    if (!strcmp(a, "--plan")) {
        if (!(q->plan_path = v)) return cli_error("quantize: --plan needs a file");
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (!cli_int(a, v, 1, 1024, &q->threads)) return 1;
    } else if (!strcmp(a, "--method")) {
        if (!(q->method = v)) return cli_error("quantize: --method needs rtn, gptq, awq or learned");
    } else if (!strcmp(a, "--imatrix")) {
        if (!(q->imatrix = v)) return cli_error("quantize: --imatrix needs an importance matrix file");
    } else if (!strcmp(a, "--calib")) {
        if (!(q->calib = v)) return cli_error("quantize: --calib needs a text file");
    } else if (!strcmp(a, "--samples") || !strcmp(a, "--ctx") || !strcmp(a, "--block") || !strcmp(a, "--iters") ||
               !strcmp(a, "--batch")) {
        long *dst = a[2] == 's' ? &q->samples : a[2] == 'c' ? &q->n_ctx : a[2] == 'i' ? &q->iters
                  : !strcmp(a, "--batch") ? &q->batch : &q->block;
        if (!cli_int(a, v, a[2] == 'c' ? 2 : 1, 1 << 20, dst)) return 1;
    } else if (!strcmp(a, "--lr")) {
        if (!cli_float(a, v, 1e-6, 1.0, &q->lr)) return 1;
    } else if (!strcmp(a, "--damp")) {
        if (!cli_float(a, v, 0.0, 10.0, &q->damp)) return 1;
    } else if (!strcmp(a, "--alpha")) {
        if (!cli_float(a, v, 0.0, 1.0, &q->alpha)) return 1;
        q->alpha_set = true;
    } else {
        return -1;
    }
    (*i)++;
    return 0;
}

static int parse_args(int argc, char **argv, qz_args *q)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = value_option(a, v, q, &i);
        if (r >= 0) {
            if (r) return 1;
            continue;
        }
        if (!strcmp(a, "--pure")) q->pure = true;
        else if (!strcmp(a, "--allow-requantize")) q->allow_requantize = true;
        else if (!strcmp(a, "--act-order")) q->act_order = true;
        else if (!strcmp(a, "--weighted")) q->weighted = true;
        else if (!strcmp(a, "--clip")) q->clip = true;
        else if (!strcmp(a, "--no-clip")) q->no_clip = true;
        else if (!strcmp(a, "--help")) {
            usage(stdout);
            return -1;
        } else if (a[0] == '-') return cli_error("quantize: unknown option '%s'", a);
        else if (q->n_pos < 3) q->pos[q->n_pos++] = a;
        else return cli_error("quantize: unexpected argument '%s'", a);
    }
    return 0;
}

static void note(void *ud, const char *line)
{
    (void)ud;
    fprintf(stderr, "note: %s\n", line);
}

/* The importance matrix --imatrix names, checked, into *im and *imp; a recipe that records one
 * needs --imatrix (its name and digest in the message), one whose digest differs is a warning. */
static qb_status load_imatrix(qb_ctx *ctx, qz_args *q, const qb_recipe_info *rec, qb_imatrix **im, qb_importance *imp)
{
    *im = NULL;
    if (!q->imatrix) {
        if (rec->imatrix_file[0])
            return qb_fail(ctx, QB_ERR_ARG, "%s was quantized with the importance matrix %s (%llu bytes, sha256 %s): "
                           "pass --imatrix FILE to replay it", q->plan_path, rec->imatrix_file,
                           (unsigned long long)rec->imatrix_bytes, rec->imatrix_sha256);
        return QB_OK;
    }
    qb_status st = qb_imatrix_load(ctx, q->imatrix, im);
    if (st == QB_OK) st = qb_imatrix_importance(ctx, *im, imp);
    if (st != QB_OK) {
        qb_imatrix_free(*im);
        *im = NULL;
        return st;
    }
    q->imp = imp;
    if (rec->imatrix_sha256[0] && strcmp(rec->imatrix_sha256, imp->sha256))
        fprintf(stderr, "warning: importance matrix %s (%llu bytes, sha256 %s) is not the one %s records (%s, %llu "
                "bytes, sha256 %s): the result will differ\n", q->imatrix, (unsigned long long)imp->bytes, imp->sha256,
                q->plan_path, rec->imatrix_file, (unsigned long long)rec->imatrix_bytes, rec->imatrix_sha256);
    return QB_OK;
}

/* GGUF in, RTN only: llama-quantize's streaming path (byte-exact with it). */
static qb_status quantize_stream(qb_ctx *ctx, const qz_args *q, const qb_plan *plan, qb_quantize_result *r)
{
    cli_progress pr;
    cli_progress_start(&pr, "quantize");
    qb_quantize_opts o = {.ftype = q->type, .pure = q->pure, .plan = plan && plan->n_rules ? plan : NULL,
                          .allow_requantize = q->allow_requantize, .progress = cli_progress_cb, .ud = &pr,
                          .cancel = &cli_cancel, .imatrix = q->imp, .note = note};
    qb_status st = qb_quantize_gguf(ctx, q->pos[0], q->pos[1], &o, r);
    cli_progress_end(&pr);
    return st;
}

int cmd_quantize(int argc, char **argv)
{
    qz_args q = {.damp = -1.0};
    int rc = parse_args(argc, argv, &q);
    if (rc) return rc < 0 ? 0 : rc;
    if (q.n_pos < 2 || (q.n_pos < 3 && !q.plan_path)) {
        cli_error("quantize: usage: quantbench quantize MODEL OUT.gguf TYPE [--pure] [--plan FILE]");
        list_types(stderr);
        return 1;
    }
    if (!strcmp(q.pos[0], q.pos[1])) return cli_error("quantize: the output would overwrite the input %s", q.pos[0]);
    if (!q.method && (q.act_order || q.clip || q.no_clip || q.alpha_set || q.weighted || q.iters || q.lr > 0 || q.batch))
        return cli_error("quantize: --act-order, --alpha, --clip, --weighted, --iters, --lr and --batch need --method");
    q.type = q.n_pos == 3 ? q.pos[2] : NULL;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (q.threads) ctx.n_threads = (int)q.threads;
    qb_ctx_apply_threads(&ctx);
    qb_method_spec spec;
    if (q.method && qz_method_spec(&ctx, &q, &spec) != QB_OK) return cli_error("quantize: %s", qb_ctx_errmsg(&ctx));
    qb_plan plan;
    qb_recipe_info recorded;
    if (qz_load_plan(&ctx, &q, &plan, &recorded) != QB_OK) return cli_error("%s", qb_ctx_errmsg(&ctx));
    qb_imatrix *im = NULL;
    qb_importance imp;
    if (load_imatrix(&ctx, &q, &recorded, &im, &imp) != QB_OK) {
        qb_plan_free(&plan);
        return cli_error("%s", qb_ctx_errmsg(&ctx));
    }
    if (!q.method && q.calib && !qb_plan_needs_calib(&plan)) {
        qb_plan_free(&plan);
        qb_imatrix_free(im);
        return cli_error("quantize: --calib: calibration methods need --method or a plan whose rules name one");
    }
    cli_install_sigint();
    qb_quantize_result r;
    qb_status st;
    bool stream = qz_is_gguf(q.pos[0]) && !q.method && !qb_plan_needs_calib(&plan);
    for (int k = 0; stream && k < plan.n_rules; k++) stream = plan.rules[k].method.kind == QB_METHOD_RTN;
    if (stream) {
        qz_warn_unmatched(&ctx, q.pos[0], &plan);
        st = quantize_stream(&ctx, &q, &plan, &r);
    } else {
        st = qz_quantize_model(&ctx, &q, q.method ? &spec : NULL, &plan, &recorded, &r);
    }
    qb_plan_free(&plan);
    qb_imatrix_free(im);
    if (st != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(&ctx));
        return st == QB_ERR_CANCELLED ? 130 : 1;
    }
    printf("%s -> %s: %d tensors (%d quantized), %.2f MiB -> %.2f MiB, %.2f s\n", q.pos[0], q.pos[1], r.n_tensors,
           r.n_quantized, r.bytes_in / 1048576.0, r.bytes_out / 1048576.0, r.seconds);
    if (q.imp && stream)
        printf("importance %s: %d tensors weighted, %d without an entry\n", q.imatrix, r.n_weighted, r.n_no_importance);
    return 0;
}
