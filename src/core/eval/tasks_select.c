/* tasks_select.c — llama-perplexity's random task selection (--hellaswag-tasks,
 * --winogrande-tasks, --multiple-choice-tasks): std::mt19937 seeded with 1 and the two ways it
 * draws from it, reproduced so that the same N picks the same tasks in the same order. */
#include "tasks.h"

#include <stdlib.h>
#include <string.h>

/* MT19937 (Matsumoto & Nishimura 1998) with the C++ standard's parameters: w 32, n 624, m 397,
 * r 31, a 0x9908b0df, tempering u 11, s 7 b 0x9d2c5680, t 15 c 0xefc60000, l 18, seeding with
 * f 1812433253. */
void qb_mt19937_seed(qb_mt19937 *r, uint32_t seed)
{
    r->mt[0] = seed;
    for (int i = 1; i < 624; i++) r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->i = 624;
}

static void regenerate(qb_mt19937 *r)
{
    for (int k = 0; k < 624; k++) {
        uint32_t y = (r->mt[k] & 0x80000000u) | (r->mt[(k + 1) % 624] & 0x7fffffffu);
        r->mt[k] = r->mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    r->i = 0;
}

uint32_t qb_mt19937_next(qb_mt19937 *r)
{
    if (r->i >= 624) regenerate(r);
    uint32_t y = r->mt[r->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* The engine's range (2^32) exceeds the wanted one: a 64-bit product of a draw and the range
 * count, redrawn while its low half falls under (2^32 mod range) (Lemire 2019). */
uint64_t qb_mt19937_uniform(qb_mt19937 *r, uint64_t hi)
{
    uint32_t range = (uint32_t)(hi + 1);
    uint64_t prod = (uint64_t)qb_mt19937_next(r) * range;
    uint32_t low = (uint32_t)prod;
    if (low < range) {
        uint32_t threshold = (uint32_t)(-range) % range;
        while (low < threshold) {
            prod = (uint64_t)qb_mt19937_next(r) * range;
            low = (uint32_t)prod;
        }
    }
    return prod >> 32;
}

int qb_tasks_default_count(qb_tasks_kind kind) { return kind == QB_TASKS_HELLASWAG ? 400 : 0; }

qb_status qb_tasks_select(qb_ctx *ctx, qb_task_set *s, int n)
{
    /* HellaSwag draws even when it takes every task: only the order changes */
    if (n <= 0 || n >= s->n) {
        if (s->kind != QB_TASKS_HELLASWAG) return QB_OK;
        n = s->n;
    }
    qb_task *left = malloc((size_t)s->n * sizeof *left), *picked = malloc((size_t)n * sizeof *picked);
    if (!left || !picked) {
        free(left);
        free(picked);
        return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", s->path);
    }
    memcpy(left, s->tasks, (size_t)s->n * sizeof *left);
    int n_left = s->n;
    qb_mt19937 rng;
    qb_mt19937_seed(&rng, 1);
    /* float arithmetic as llama-perplexity writes it: scale = 1/(1 + (float)max) = 2^-32, then
     * (scale * (float)draw) * (float)count, truncated */
    const float scale = 1.0f / (1.0f + (float)4294967295u);
    for (int i = 0; i < n; i++) {
        size_t j;
        if (s->kind == QB_TASKS_HELLASWAG) {
            j = (size_t)qb_mt19937_uniform(&rng, (uint64_t)n_left - 1);
        } else {
            float x = scale * (float)qb_mt19937_next(&rng);
            x = x * (float)n_left;
            j = (size_t)(int)x;
        }
        if (j >= (size_t)n_left) {
            free(left);
            free(picked);
            return qb_fail(ctx, QB_ERR_ARG,
                           "%s: draw %d of the random selection falls outside the %d tasks left (llama-perplexity "
                           "would read out of bounds); use another task count",
                           s->path, i + 1, n_left);
        }
        picked[i] = left[j];
        if (s->kind == QB_TASKS_HELLASWAG) { /* erased from the list, the rest keeps its order */
            memmove(left + j, left + j + 1, (size_t)(n_left - 1 - j) * sizeof *left);
        } else { /* the last one takes its place */
            left[j] = left[n_left - 1];
        }
        n_left--;
    }
    /* the tasks not picked are freed; the picked ones move into s in draw order */
    for (int i = 0; i < n_left; i++) {
        qb_task *t = &left[i];
        free(t->context);
        free(t->after);
        for (int j = 0; j < t->n_choices; j++) free(t->choices[j]);
        free(t->choices);
        free(t->labels);
    }
    free(left);
    free(s->tasks);
    s->tasks = picked;
    s->n = n;
    return QB_OK;
}
