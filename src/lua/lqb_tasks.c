/* lqb_tasks.c — task accuracy in Lua, as llama-perplexity scores it (core/eval/tasks.h):
 * model:tasks{hellaswag=path | winogrande=path | multiple_choice=path [, tasks=N, ctx=N,
 * progress=fn]} (tasks: as llama-perplexity, 400 for HellaSwag, else all; 0 = all) → {score, stderr, n, correct, kind, tasks_in_file, chance, chance_err, tokens,
 * seconds}. */
#include "lqb_internal.h"

#include <string.h>

#include "core/eval/tasks.h"

int lqb_model_tasks(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    int o = lqb_opt_table(L, 2);
    static const char *keys[] = {"hellaswag", "winogrande", "multiple_choice"};
    const char *path = NULL;
    int kind = -1;
    for (int k = 0; k < 3; k++) {
        const char *p = lqb_opt_str(L, o, keys[k], NULL);
        if (!p) continue;
        if (path) return luaL_error(L, "tasks: give one of hellaswag=, winogrande=, multiple_choice=");
        path = p, kind = k;
    }
    if (!path) return luaL_error(L, "tasks: give a task file: hellaswag=, winogrande= or multiple_choice=");
    lua_Integer n_tasks = lqb_opt_int(L, o, "tasks", qb_tasks_default_count((qb_tasks_kind)kind)), n_ctx = lqb_opt_int(L, o, "ctx", 0);
    if (n_tasks < 0 || n_tasks > (1 << 30) || n_ctx < 0 || n_ctx > (1 << 20))
        return luaL_error(L, "bad option 'tasks'/'ctx' to 'tasks' (must be >= 0)");
    qb_ctx *ctx = &lqb_host_of(L)->ctx;
    qb_task_set s;
    qb_status st = qb_tasks_read(ctx, (qb_tasks_kind)kind, path, &s);
    if (st == QB_OK) st = qb_tasks_select(ctx, &s, (int)n_tasks);
    if (st != QB_OK) {
        qb_tasks_free(&s);
        return lqb_fail(L, st);
    }
    lqb_progress pr;
    lqb_progress_begin(L, &pr, "tasks", o);
    qb_tasks_opts to = {.n_ctx = (int)n_ctx, .progress = lqb_progress_cb, .ud = &pr, .cancel = lqb_cancel_ptr(L),
                        .run = lqb_model_run(L, 1, false)};
    qb_tasks_result r;
    st = qb_tasks_score(ctx, m, &s, &to, &r);
    int n_file = s.n_file;
    qb_tasks_free(&s);
    lqb_progress_end(L, &pr, st);
    lua_createtable(L, 0, 10);
    lqb_set_str(L, "kind", qb_tasks_kind_name(r.kind));
    lqb_set_num(L, "score", r.acc);
    lqb_set_num(L, "stderr", r.acc_err);
    lqb_set_int(L, "n", r.n_done);
    lqb_set_int(L, "correct", r.n_correct);
    lqb_set_int(L, "tasks_in_file", n_file);
    if (r.kind == QB_TASKS_MC) {
        lqb_set_num(L, "chance", r.chance);
        lqb_set_num(L, "chance_err", r.chance_err);
    }
    lqb_set_int(L, "tokens", r.n_tokens);
    lqb_set_num(L, "seconds", r.seconds);
    return 1;
}
