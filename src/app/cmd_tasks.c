/* cmd_tasks.c — `quantbench tasks`: HellaSwag, Winogrande or multiple-choice accuracy of a model
 * as llama-perplexity --hellaswag / --winogrande / --multiple-choice scores it, with its per-task
 * lines on request, a progress bar, Ctrl-C to stop and --json for scripts. */
#include "cli.h"
#include "cli_act.h"
#include "core/eval/tasks.h"
#include "core/quant/apply.h"
#include "core/util/atomic_file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *model, *file, *tok, *plan, *json;
    int kind; /* qb_tasks_kind, -1 until given */
    long n_tasks, n_ctx, threads;
    bool per_task, tasks_given;
    cli_act act;
} tasks_args;

static int usage(void)
{
    return cli_error("tasks: usage: quantbench tasks MODEL --hellaswag FILE | --winogrande FILE | --multiple-choice FILE "
                     "[--tasks N] [--ctx N] [--threads N] [--plan FILE] [--per-task] [--json FILE|-]");
}

static bool parse(int argc, char **argv, tasks_args *a)
{
    memset(a, 0, sizeof *a);
    a->kind = -1;
    a->n_ctx = 512;
    cli_act_init(&a->act);
    static const char *kinds[] = {"--hellaswag", "--winogrande", "--multiple-choice"};
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        int r = cli_act_option(&a->act, "tasks", argc, argv, &i);
        if (r) {
            if (r < 0) return false;
            continue;
        }
        int k = -1;
        for (int j = 0; j < 3; j++)
            if (!strcmp(o, kinds[j])) k = j;
        if (k >= 0) {
            if (a->kind >= 0) return !cli_error("tasks: give one of --hellaswag, --winogrande, --multiple-choice");
            a->kind = k, a->file = v, i++, ok = v != NULL;
        } else if (!strcmp(o, "--tasks")) ok = cli_int(o, v, 0, 1 << 30, &a->n_tasks), i++, a->tasks_given = true;
        else if (!strcmp(o, "--ctx") || !strcmp(o, "-c")) ok = cli_int(o, v, 8, 1 << 20, &a->n_ctx), i++;
        else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) ok = cli_int(o, v, 1, 1024, &a->threads), i++;
        else if (!strcmp(o, "--tokenizer")) a->tok = v, i++, ok = v != NULL;
        else if (!strcmp(o, "--plan")) a->plan = v, i++, ok = v != NULL;
        else if (!strcmp(o, "--json")) a->json = v, i++, ok = v != NULL;
        else if (!strcmp(o, "--per-task")) a->per_task = true;
        else if (o[0] == '-' && o[1]) return !cli_error("tasks: unknown option '%s'", o);
        else if (!a->model) a->model = o;
        else return !cli_error("tasks: unexpected argument '%s'", o);
        if (!ok) return v ? false : !cli_error("tasks: %s needs a value", o);
    }
    if (!a->model || a->kind < 0) return !usage();
    if (!a->tasks_given) a->n_tasks = qb_tasks_default_count((qb_tasks_kind)a->kind);
    return true;
}

/* llama-perplexity's per-task line for each kind, then our margin: the chosen choice's score
 * less the best other one (how near the task was to going the other way). */
static void print_task(void *ud, const qb_task_score *t)
{
    const tasks_args *a = ud;
    int best = a->kind == QB_TASKS_WINOGRANDE ? t->chosen - 1 : t->chosen;
    double second = -INFINITY;
    for (int j = 0; j < t->n_choices; j++)
        if (j != best && t->score[j] > second) second = t->score[j];
    double margin = t->n_choices > 1 ? t->score[best] - second : INFINITY;
    if (a->kind == QB_TASKS_WINOGRANDE)
        printf("%d\t%.4f\t%10.6f  %10.6f  %d  %d\t%.6f\n", t->index, t->running, t->score[0], t->score[1], t->chosen,
               t->correct ? t->chosen : 3 - t->chosen, margin);
    else
        printf("%d\t%.8f\t%d\t%.6f\n", t->index, t->running, t->chosen, margin);
}

static bool apply_plan(qb_ctx *ctx, qb_model *m, const char *path)
{
    qb_plan p;
    if (qb_plan_load(ctx, path, &p) != QB_OK) return !cli_error("%s", qb_ctx_errmsg(ctx));
    cli_install_sigint();
    qb_apply_opts o = {.cancel = &cli_cancel};
    qb_status st = qb_plan_apply_rtn(ctx, m, &p, &o);
    qb_plan_free(&p);
    if (st != QB_OK) return !cli_error("%s", qb_ctx_errmsg(ctx));
    return true;
}

/* A JSON string (paths may hold quotes, backslashes, control bytes). */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void json_out(FILE *f, const tasks_args *a, const qb_task_set *s, const qb_tasks_result *r, const char *model)
{
    fprintf(f, "{\"kind\": \"%s\", \"file\": ", qb_tasks_kind_name(r->kind));
    json_str(f, a->file);
    fprintf(f, ", \"model\": ");
    json_str(f, model);
    fprintf(f, ", \"tasks\": %d, \"tasks_in_file\": %d, \"correct\": %d, \"acc\": %.6f, \"acc_err\": %.6f", r->n_done,
            s->n_file, r->n_correct, r->acc, r->acc_err);
    if (r->kind == QB_TASKS_MC) fprintf(f, ", \"chance\": %.6f, \"chance_err\": %.6f", r->chance, r->chance_err);
    fprintf(f, ", \"ctx\": %ld, \"tokens\": %ld, \"seconds\": %.3f}\n", a->n_ctx, r->n_tokens, r->seconds);
}

/* --json FILE: written beside it and renamed over it. */
static bool write_json(qb_ctx *ctx, const tasks_args *a, const qb_task_set *s, const qb_tasks_result *r,
                       const char *model)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) return !cli_error("tasks: out of memory");
    json_out(mem, a, s, r, model);
    fclose(mem);
    qb_atomic_file f;
    bool ok = qb_atomic_begin(ctx, a->json, &f) == QB_OK;
    if (ok && !qb_atomic_write(&f, buf, len)) {
        qb_atomic_abort(&f);
        qb_fail(ctx, QB_ERR_IO, "%s: write failed", a->json);
        ok = false;
    } else if (ok) {
        ok = qb_atomic_commit(ctx, &f) == QB_OK;
    }
    free(buf);
    if (!ok) cli_error("%s", qb_ctx_errmsg(ctx));
    return ok;
}

int cmd_tasks(int argc, char **argv)
{
    tasks_args a;
    if (!parse(argc, argv, &a)) return 1;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (a.threads) ctx.n_threads = (int)a.threads;
    qb_task_set s = {0};
    if (qb_tasks_read(&ctx, a.kind, a.file, &s) != QB_OK) return cli_error("%s", qb_ctx_errmsg(&ctx));
    int rc = 1;
    qb_model *m = cli_open_model(&ctx, a.model, a.tok, false);
    if (!m) goto out;
    if (a.plan && !apply_plan(&ctx, m, a.plan)) goto out;
    if (!cli_act_apply(&ctx, m, &a.act)) goto out;
    if (qb_tasks_select(&ctx, &s, (int)a.n_tasks) != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    cli_progress pr;
    cli_progress_start(&pr, qb_tasks_kind_name(s.kind));
    pr.items = "tasks";
    cli_install_sigint();
    qb_tasks_opts o = {.n_ctx = (int)a.n_ctx, .progress = cli_progress_cb, .ud = &pr, .cancel = &cli_cancel,
                       .divided = cli_divided_cb,
                       .run = a.act.run, .on_task = a.per_task ? print_task : NULL, .task_ud = &a};
    if (a.per_task) printf("task\t%s\n", s.kind == QB_TASKS_WINOGRANDE ? "acc" : "acc_norm");
    qb_tasks_result r;
    qb_status st = qb_tasks_score(&ctx, m, &s, &o, &r);
    cli_progress_end(&pr);
    if (st != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(&ctx));
        rc = st == QB_ERR_CANCELLED ? 130 : 1;
        goto out;
    }
    bool to_stdout = a.json && !strcmp(a.json, "-");
    if (!to_stdout) {
        printf("model      %s\n", m->path);
        printf("tasks      %s (%s): %d of %d%s, %ld tokens\n", a.file, qb_tasks_kind_name(s.kind), r.n_done, s.n_file,
               r.n_done < s.n_file ? " (llama-perplexity's random selection)" : "", r.n_tokens);
        if (s.last_dropped)
            printf("note       the file's last line is not read (llama-perplexity reads a line only when a newline "
                   "follows it, the final one not counted)\n");
        printf("correct    %d\n", r.n_correct);
        printf("%s = %.4f +/- %.4f\n", s.kind == QB_TASKS_HELLASWAG ? "acc_norm" : "acc", r.acc, r.acc_err);
        if (s.kind == QB_TASKS_MC) printf("random chance = %.4f +/- %.4f\n", r.chance, r.chance_err);
        fprintf(stderr, "%.2f s, %.1f tokens/s\n", r.seconds, r.n_tokens / (r.seconds > 0 ? r.seconds : 1));
    }
    if (a.json && cli_writes()) { /* rank 0 writes a job's files */
        if (to_stdout) json_out(stdout, &a, &s, &r, m->path);
        else if (!write_json(&ctx, &a, &s, &r, m->path)) goto out;
    }
    cli_act_report(m, &a.act, stdout);
    rc = 0;
out:
    qb_tasks_free(&s);
    cli_act_free(&a.act);
    qb_model_close(m);
    return rc;
}
