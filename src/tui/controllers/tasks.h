/* tasks.h — the workbench's long jobs on the model: applying the plan (after an apply, undo,
 * redo or plan load), side-by-side generation, perplexity/KLD against the full-precision
 * base, GGUF export, and calibration (calibrate.c). One runs at a time; each is cancelled with Ctrl-C. */
#ifndef QB_TUI_TASKS_H
#define QB_TUI_TASKS_H

#include "tui/controllers/session.h"

/* Whether no long job runs; else false + a status naming it (what: the refused action). */
bool tui_task_idle(tui_session *s, const char *what);
/* Start the long job fn(arg) of kind under name (free_arg frees arg, also on refusal). False +
 * status when a script holds the model or the job cannot start. */
bool tui_task_start(tui_session *s, tui_job_kind kind, const char *name, qb_job_fn fn, void *arg,
                    void (*free_arg)(void *));
/* The calibration a finished :calib job posted (TUI_MSG_CALIB) becomes the session's
 * (calibrate.c). */
void tui_calib_adopt(tui_session *s, const qb_msg *m);
/* An act job ended (ok: it succeeded): the activation mode and the plan follow (actmode.c). */
void tui_act_done(tui_session *s, bool ok);
/* Handle a message from a long job (job ids <= 0). */
void tui_task_message(tui_session *s, const qb_msg *m);
/* The glob pattern of a scope ('t' tensor, 'k' kind, 'l' layer, 'm' model) for tensor name
 * into buf; false when the scope does not apply (a tensor outside the layers has no layer). */
bool tui_scope_pattern(const char *name, char scope, char *buf, size_t cap);

#endif
