/* fuzz_tasks.h — the body the three task-file fuzz targets share (fuzz-tasks-hellaswag.c,
 * fuzz-tasks-winogrande.c, fuzz-tasks-mc.c): parse the input as one kind of task file
 * (qb_tasks_parse); a refusal must leave nothing allocated and a one-line message naming the
 * file; an accepted set must hold what the kind promises (choice counts, gold and labels,
 * NUL-free strings), and a random selection of it (its size taken from the input) must keep
 * that many distinct tasks. */
#ifndef QB_FUZZ_TASKS_H
#define QB_FUZZ_TASKS_H

#include "core/eval/tasks.h"

#include <stdlib.h>
#include <string.h>

static void fuzz_tasks_check(const qb_task_set *s)
{
    if (s->n < 1 || s->n > s->n_file) __builtin_trap();
    for (int i = 0; i < s->n; i++) {
        const qb_task *t = &s->tasks[i];
        if (!t->context || !t->after || !t->choices || !t->labels) __builtin_trap();
        if (s->kind == QB_TASKS_HELLASWAG && (t->n_choices != 4 || t->gold < 0 || t->gold > 3 || t->labels[t->gold] != 1))
            __builtin_trap();
        if (s->kind == QB_TASKS_WINOGRANDE && (t->n_choices != 2 || t->gold < 1 || t->gold > 2)) __builtin_trap();
        if (s->kind == QB_TASKS_MC && (t->n_choices < 1 || t->n_choices > 100 || !t->context[0])) __builtin_trap();
        volatile size_t sink = strlen(t->context) + strlen(t->after);
        for (int j = 0; j < t->n_choices; j++) {
            if (!t->choices[j]) __builtin_trap();
            sink += strlen(t->choices[j]) + (size_t)t->labels[j];
        }
        (void)sink;
    }
}

static int fuzz_tasks_one(qb_tasks_kind kind, const uint8_t *data, size_t size)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_task_set s;
    if (qb_tasks_parse(&ctx, kind, "fuzz.tasks", (const char *)data, size, &s) != QB_OK) {
        const char *msg = qb_ctx_errmsg(&ctx);
        if (s.tasks || s.n || !msg[0] || strchr(msg, '\n') || !strstr(msg, "fuzz.tasks")) __builtin_trap();
        return 0;
    }
    fuzz_tasks_check(&s);
    int n_file = s.n, want = size ? 1 + data[size - 1] % (n_file + 1) : 0;
    if (qb_tasks_select(&ctx, &s, want) == QB_OK) {
        int expect = want >= n_file ? n_file : want;
        if (s.n != expect || s.n_file != n_file) __builtin_trap();
        fuzz_tasks_check(&s);
        for (int i = 0; i < s.n; i++)
            for (int j = 0; j < i; j++)
                if (s.tasks[i].context == s.tasks[j].context) __builtin_trap();
    }
    qb_tasks_free(&s);
    return 0;
}

#endif
