/* job.c — worker threads with atomic progress, a cancel flag and a message queue (job.h). */
#include "job.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

struct qb_msg_queue {
    pthread_mutex_t mu;
    qb_msg *items; /* ring buffer of cap entries, n used, starting at head */
    int cap, n, head;
    int pipe[2];   /* wake-up pipe: [0] polled by the owner, [1] written on post; -1 if none */
};

struct qb_job {
    pthread_t thread;
    qb_msg_queue *q;
    int id;
    char name[48];
    qb_job_fn fn;
    void *arg;
    void (*free_arg)(void *);
    qb_ctx ctx;
    volatile int cancel;   /* read by core through const volatile int *; written atomically */
    atomic_int done, total;
    atomic_bool finished;
    qb_status status;
    double t0;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

qb_status qb_msg_queue_new(qb_ctx *ctx, qb_msg_queue **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory (message queue)");
    pthread_mutex_init(&(*out)->mu, NULL);
    int *p = (*out)->pipe;
    if (pipe(p) != 0) p[0] = p[1] = -1;
    for (int i = 0; i < 2 && p[i] >= 0; i++) {
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    return QB_OK;
}

void qb_msg_free(qb_msg *m)
{
    if (!m) return;
    free(m->text);
    if (m->data && m->free_data) m->free_data(m->data);
    m->text = NULL;
    m->data = NULL;
}

void qb_msg_queue_free(qb_msg_queue *q)
{
    if (!q) return;
    qb_msg m;
    while (qb_msg_queue_pop(q, &m)) qb_msg_free(&m);
    pthread_mutex_destroy(&q->mu);
    if (q->pipe[0] >= 0) close(q->pipe[0]), close(q->pipe[1]);
    free(q->items);
    free(q);
}

bool qb_msg_queue_post(qb_msg_queue *q, const qb_msg *m)
{
    pthread_mutex_lock(&q->mu);
    if (q->n == q->cap) {
        int cap = q->cap ? 2 * q->cap : 64;
        qb_msg *it = malloc((size_t)cap * sizeof *it);
        if (!it) {
            pthread_mutex_unlock(&q->mu);
            qb_msg copy = *m;
            qb_msg_free(&copy);
            return false;
        }
        for (int i = 0; i < q->n; i++) it[i] = q->items[(q->head + i) % q->cap];
        free(q->items);
        q->items = it;
        q->cap = cap;
        q->head = 0;
    }
    q->items[(q->head + q->n) % q->cap] = *m;
    q->n++;
    if (q->pipe[1] >= 0) {
        char b = 1;
        ssize_t w = write(q->pipe[1], &b, 1); /* a full pipe already wakes the reader */
        (void)w;
    }
    pthread_mutex_unlock(&q->mu);
    return true;
}

bool qb_msg_queue_pop(qb_msg_queue *q, qb_msg *out)
{
    pthread_mutex_lock(&q->mu);
    bool any = q->n > 0;
    if (any) {
        *out = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
    }
    if (q->n == 0 && q->pipe[0] >= 0) {
        char buf[64];
        while (read(q->pipe[0], buf, sizeof buf) > 0) {}
    }
    pthread_mutex_unlock(&q->mu);
    return any;
}

int qb_msg_queue_fd(const qb_msg_queue *q) { return q->pipe[0]; }

static void *run(void *p)
{
    qb_job *j = p;
    j->status = j->fn(j, &j->ctx, j->arg);
    qb_msg m = {.job_id = j->id, .tag = QB_MSG_DONE, .i0 = j->status};
    if (j->status != QB_OK) m.text = strdup(qb_ctx_errmsg(&j->ctx));
    atomic_store(&j->finished, true);
    qb_msg_queue_post(j->q, &m);
    return NULL;
}

qb_status qb_job_start(qb_ctx *ctx, qb_msg_queue *q, int id, const char *name, qb_job_fn fn, void *arg,
                       void (*free_arg)(void *), qb_job **out)
{
    *out = NULL;
    qb_job *j = calloc(1, sizeof *j);
    if (!j) {
        if (free_arg) free_arg(arg);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory starting job %s", name);
    }
    j->q = q;
    j->id = id;
    snprintf(j->name, sizeof j->name, "%s", name);
    j->fn = fn;
    j->arg = arg;
    j->free_arg = free_arg;
    qb_ctx_init(&j->ctx);
    j->ctx.n_threads = ctx->n_threads;
    j->t0 = now();
    if (pthread_create(&j->thread, NULL, run, j) != 0) {
        if (free_arg) free_arg(arg);
        free(j);
        return qb_fail(ctx, QB_ERR_NOMEM, "cannot start a thread for job %s", name);
    }
    *out = j;
    return QB_OK;
}

void qb_job_cancel(qb_job *j)
{
    if (j) __atomic_store_n(&j->cancel, 1, __ATOMIC_SEQ_CST);
}

const volatile int *qb_job_cancel_flag(const qb_job *j) { return &j->cancel; }
bool qb_job_cancelled(const qb_job *j) { return __atomic_load_n(&j->cancel, __ATOMIC_SEQ_CST) != 0; }

void qb_job_progress(qb_job *j, int done, int total)
{
    atomic_store(&j->total, total);
    atomic_store(&j->done, done);
}

bool qb_job_post(qb_job *j, qb_msg *m)
{
    m->job_id = j->id;
    return qb_msg_queue_post(j->q, m);
}

void qb_job_get_progress(const qb_job *j, int *done, int *total)
{
    *done = atomic_load(&((qb_job *)j)->done);
    *total = atomic_load(&((qb_job *)j)->total);
}

double qb_job_elapsed(const qb_job *j) { return now() - j->t0; }
const char *qb_job_name(const qb_job *j) { return j->name; }
int qb_job_id(const qb_job *j) { return j->id; }
bool qb_job_finished(const qb_job *j) { return atomic_load(&((qb_job *)j)->finished); }

qb_status qb_job_join(qb_job *j, char *errmsg, size_t cap)
{
    if (!j) return QB_OK;
    pthread_join(j->thread, NULL);
    qb_status st = j->status;
    if (errmsg && cap) snprintf(errmsg, cap, "%s", st == QB_OK ? "" : qb_ctx_errmsg(&j->ctx));
    if (j->free_arg) j->free_arg(j->arg);
    free(j);
    return st;
}
