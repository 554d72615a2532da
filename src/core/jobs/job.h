/* job.h — long work off the UI thread: a job runs one function on its own worker thread,
 * reports progress through atomic counters, polls a cancel flag that core functions take as
 * `const volatile int *cancel`, and talks to its owner only by posting messages to a
 * mutex-protected queue that the owner drains (the TUI does so every 50 ms).
 *
 * Lifetime: the owner starts a job, may cancel it at any time, and reaps it with qb_job_join
 * once the job's QB_MSG_DONE message arrived (or at any time: join waits for the thread). */
#ifndef QB_JOB_H
#define QB_JOB_H

#include "../qb.h"

typedef enum {
    QB_MSG_DONE = 0, /* the job's function returned: i0 = qb_status, text = its error message */
    QB_MSG_USER = 16 /* first tag free for callers */
} qb_msg_tag;

typedef struct {
    int job_id;      /* the id given to qb_job_start */
    int tag;         /* QB_MSG_DONE or a caller tag */
    int i0, i1;      /* small payload */
    double d0, d1;
    char *text;      /* malloc'd or NULL; owned by the message (freed with qb_msg_free) */
    void *data;      /* payload owned by the message; freed with free_data (if set) */
    void (*free_data)(void *);
} qb_msg;

typedef struct qb_msg_queue qb_msg_queue;
typedef struct qb_job qb_job;

/* A new empty queue; caller frees with qb_msg_queue_free (pending messages are freed). */
qb_status qb_msg_queue_new(qb_ctx *ctx, qb_msg_queue **out);
void qb_msg_queue_free(qb_msg_queue *q);
/* Append a copy of *m (ownership of m->text and m->data moves to the queue). Thread-safe.
 * Returns false (and frees the payload) when out of memory. */
bool qb_msg_queue_post(qb_msg_queue *q, const qb_msg *m);
/* A file descriptor that is readable while messages wait (a pipe the queue writes a byte to
 * on each post and drains on pop), for a loop that sleeps in poll() on its input and the jobs
 * at once; -1 when the pipe could not be made (then poll with a timeout). Borrowed. */
int qb_msg_queue_fd(const qb_msg_queue *q);
/* Take the oldest message into *out (caller then owns it: qb_msg_free). False when empty. */
bool qb_msg_queue_pop(qb_msg_queue *q, qb_msg *out);
/* Free a message's text and data. */
void qb_msg_free(qb_msg *m);

/* The job's function: runs on the worker thread with its own context (ctx->n_threads copied
 * from the starter's). Return a status; on failure leave the message on ctx. */
typedef qb_status (*qb_job_fn)(qb_job *job, qb_ctx *ctx, void *arg);

/* Start fn(job, ctx, arg) on a new thread. free_arg (may be NULL) is called on arg when the
 * job is joined. id tags every message the job posts. Caller reaps *out with qb_job_join. */
qb_status qb_job_start(qb_ctx *ctx, qb_msg_queue *q, int id, const char *name, qb_job_fn fn, void *arg,
                       void (*free_arg)(void *), qb_job **out);
/* Ask the job to stop (it stops at its next check of the flag). Any thread. */
void qb_job_cancel(qb_job *j);
/* The flag to pass to core functions as their cancel argument. Borrowed, valid until join. */
const volatile int *qb_job_cancel_flag(const qb_job *j);
bool qb_job_cancelled(const qb_job *j);
/* Worker side: progress done/total (atomic; total 0 = unknown), a one-line note shown with it. */
void qb_job_progress(qb_job *j, int done, int total);
/* Worker side: post a message tagged with the job's id (ownership of payload moves). */
bool qb_job_post(qb_job *j, qb_msg *m);
/* Any thread: progress as last reported, seconds since start, the job's name (borrowed). */
void qb_job_get_progress(const qb_job *j, int *done, int *total);
double qb_job_elapsed(const qb_job *j);
const char *qb_job_name(const qb_job *j);
int qb_job_id(const qb_job *j);
/* Whether the function has returned. */
bool qb_job_finished(const qb_job *j);
/* Wait for the thread, free the job and its argument; returns the function's status and
 * copies its message into errmsg (cap bytes, may be NULL). j may be NULL (returns QB_OK). */
qb_status qb_job_join(qb_job *j, char *errmsg, size_t cap);

#endif
