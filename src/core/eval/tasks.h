/* tasks.h — multiple-choice task accuracy as llama.cpp's llama-perplexity (c392e50) scores it:
 * HellaSwag (--hellaswag), Winogrande (--winogrande) and its binary multiple-choice format
 * (--multiple-choice). The same files, the same tokenization of context + choice, the same
 * log-probability sums and normalisation, the same random task selection (std::mt19937 seeded
 * with 1 and libstdc++'s distributions) and the same quirks, so a model's count of correct tasks
 * compares with llama-perplexity's one for one. Readers: tasks_read.c; selection:
 * tasks_select.c; scoring: tasks.c. */
#ifndef QB_TASKS_H
#define QB_TASKS_H

#include "../model/model.h"
#include "../infer/runcfg.h"

typedef enum { QB_TASKS_HELLASWAG = 0, QB_TASKS_WINOGRANDE = 1, QB_TASKS_MC = 2 } qb_tasks_kind;

/* One task: a context and n_choices continuations, one (or, multiple choice, any) correct. */
typedef struct {
    char *context;   /* HellaSwag: the context line; Winogrande: the sentence before '_';
                        multiple choice: the question */
    char *after;     /* Winogrande: the sentence after '_' ("" otherwise) */
    int n_choices;   /* HellaSwag 4, Winogrande 2, multiple choice 1..100 */
    char **choices;  /* (n_choices) NUL-free strings */
    int *labels;     /* (n_choices) 1 = a correct choice (multiple choice: the file's mc1 labels) */
    int gold;        /* HellaSwag: the gold ending 0..3; Winogrande: the answer 1 or 2; MC: -1 */
    int line;        /* where it starts in the file: a line number (1-based), or MC's byte offset */
} qb_task;

typedef struct {
    qb_tasks_kind kind;
    char *path;      /* the file read (owned) */
    int n;           /* tasks, in file order (after qb_tasks_select: in draw order) */
    int n_file;      /* tasks the file holds (n before any selection) */
    qb_task *tasks;  /* (n) */
    int skipped;     /* Winogrande: a header line not read as a task (0 or 1) */
    bool last_dropped; /* Winogrande: the file's last line was not read, as llama-perplexity does */
} qb_task_set;

/* Read a task file of the given kind into *out (caller frees with qb_tasks_free). Every
 * malformation is an error naming the file, the task (and line) and the problem:
 *  - HellaSwag (hellaswag_val_full.txt): six lines per task (context, gold ending index 0..3,
 *    four endings); the file's final newline, if any, is not a line.
 *  - Winogrande (CSV: index,sentence,choice1,choice2,answer; the sentence may be quoted and
 *    holds one '_'): llama-perplexity reads a line only when a newline follows it after its
 *    loader dropped the file's final newline, so the last line of a file ending in one newline
 *    (or in none) is not a task (out->last_dropped); a first line whose answer is "answer" is a
 *    header and skipped.
 *  - multiple choice (binary): u32 task count, u32 byte offset of each task, then each task: a
 *    question string (u32 length + bytes), the mc1 answers (u32 count <= 100, strings, then one
 *    int32 label each) and the mc2 answers (the same; read and ignored), all little-endian; the
 *    offsets must be where the tasks are; no bytes may follow the last task.
 * Text files must be valid for the tokenizer as bytes (no NUL). */
qb_status qb_tasks_read(qb_ctx *ctx, qb_tasks_kind kind, const char *path, qb_task_set *out);
/* The same from bytes in memory (path names them in messages); data need not be terminated. */
qb_status qb_tasks_parse(qb_ctx *ctx, qb_tasks_kind kind, const char *path, const char *data, size_t len,
                         qb_task_set *out);
void qb_tasks_free(qb_task_set *s); /* NULL or zeroed is fine */

/* "hellaswag", "winogrande", "multiple-choice" (static). */
const char *qb_tasks_kind_name(qb_tasks_kind kind);

/* Keep n of s's tasks (0 or >= s->n: all) as llama-perplexity selects them: HellaSwag draws
 * n times (all of them when n is 0 or >= s->n: llama-perplexity always scores HellaSwag in its
 * random order) with std::uniform_int_distribution<size_t>(0, left - 1) over the
 * tasks not yet drawn (list order kept as tasks leave it); Winogrande and multiple choice keep
 * file order when taking all, else draw int(2^-32 · rng() · left) in float arithmetic and swap the last task left into the
 * drawn place; all from std::mt19937 seeded with 1. Tasks end up in draw order. Errors: a draw
 * outside the list (llama-perplexity would read out of bounds), out of memory. */
qb_status qb_tasks_select(qb_ctx *ctx, qb_task_set *s, int n);
/* llama-perplexity's task count when none is asked for: 400 for HellaSwag (its
 * --hellaswag-tasks default), 0 (all) for the others. */
int qb_tasks_default_count(qb_tasks_kind kind);

/* The standard std::mt19937 (32-bit Mersenne Twister, MT19937 parameters). */
typedef struct {
    uint32_t mt[624];
    int i;
} qb_mt19937;
void qb_mt19937_seed(qb_mt19937 *r, uint32_t seed);
uint32_t qb_mt19937_next(qb_mt19937 *r);
/* libstdc++'s std::uniform_int_distribution<size_t>(0, hi) on a 32-bit engine, hi < 2^32 - 1
 * (Lemire's multiply-and-reject with a 64-bit product, as GCC >= 11 does). */
uint64_t qb_mt19937_uniform(qb_mt19937 *r, uint64_t hi);

/* One scored task, as llama-perplexity's per-task lines show it. */
typedef struct {
    int index;         /* 1-based position in the scored order */
    int chosen;        /* HellaSwag / MC: the choice with the highest score (0-based);
                          Winogrande: 1 or 2 as llama-perplexity prints it */
    bool correct;
    int n_correct, n_done;
    double running;    /* accuracy so far in percent, llama-perplexity's arithmetic */
    int n_choices;
    const double *score; /* (n_choices) the normalised log-probabilities compared */
} qb_task_score;

typedef struct {
    int n_ctx;       /* tokens a task may need at most (llama-perplexity's -c; 0 = 512): a task
                        whose shared prefix plus all its continuations exceed it is an error */
    /* progress: called from the calling thread after each task (may be NULL) */
    void (*progress)(void *ud, int done, int total);
    void *ud;
    /* each scored task (may be NULL), in order, from the calling thread; *t is borrowed */
    void (*on_task)(void *ud, const qb_task_score *t);
    void *task_ud;
    const volatile int *cancel; /* non-zero stops after the current task; may be NULL */
    qb_run_config *run;         /* how the model runs (runcfg.h); NULL = float, f32 KV cache */
    /* in a job of several MPI ranks (util/dist.h; may be NULL): called once the n tasks are
     * divided; rank r scores qb_dist_share(n, r) of them (its progress counts those), then
     * on_task sees every task in order once all are gathered. ud as progress's. */
    void (*divided)(void *ud, int n);
} qb_tasks_opts;

typedef struct {
    qb_tasks_kind kind;
    int n_done, n_correct;
    double acc, acc_err;       /* percent; llama-perplexity's final line where it prints one
                                  (Winogrande, multiple choice: float arithmetic); HellaSwag:
                                  acc as its last running line, acc_err = 100·sqrt(p(1-p)/(n-1)),
                                  which c392e50 does not print */
    bool final_line;           /* llama-perplexity prints a final score line (Winogrande with
                                  >= 100 tasks; multiple choice with >= 100 tasks or all of them) */
    double chance, chance_err; /* multiple choice: "Random chance" (tasks / answers), percent */
    long n_tokens;             /* tokens evaluated */
    double seconds;
} qb_tasks_result;

/* Score m on the tasks of s (in s's order; select first) exactly as llama-perplexity does:
 * each choice tokenized with the context (HellaSwag, MC: context + " " + choice; Winogrande:
 * before + choice + after) with BOS when the model adds one; the tokens all choices share
 * evaluated once; HellaSwag and MC: the mean log-probability of each choice's tokens after the
 * shared prefix, highest wins (first on ties); Winogrande: the mean over the tokens after the
 * blank (the choice's own tokens too when a sentence leaves 3 or fewer after the shared prefix,
 * with llama-perplexity's off-by-one logits for the second choice then), choice 1 when its
 * score is strictly higher. Errors: tokenization, a task that does not fit n_ctx, a task
 * llama-perplexity would read out of bounds for (a choice adding no token, no shared prefix),
 * cancellation (QB_ERR_CANCELLED), out of memory. */
qb_status qb_tasks_score(qb_ctx *ctx, const qb_model *m, const qb_task_set *s, const qb_tasks_opts *opts,
                         qb_tasks_result *out);

#endif
