/* planjob.h — the plan as the workbench keeps it (core plan.h: each rule its pattern, format,
 * method and parameters) and the job that brings the model to it: one qb_plan_apply call
 * with the session's calibration and apply state (plan_apply.h), so only tensors whose target
 * changed are redone, a rebuild happens when AWQ is involved, and an error or Ctrl-C leaves the
 * model exactly as it was. Undo and redo keep snapshots as plan text (version 2: methods
 * included); older snapshots with a "# tui methods:" line still load. */
#ifndef QB_TUI_PLANJOB_H
#define QB_TUI_PLANJOB_H

#include "tui/controllers/session.h"

/* The plan as text (malloc'd; NULL when out of memory). */
char *tui_plan_snapshot(const tui_session *s);
/* Replace the plan with a snapshot's (or any plan text). False + status on a parse error
 * (nothing changed). */
bool tui_plan_restore(tui_session *s, const char *text, const char *what);
/* Replace the plan with p (taken). */
void tui_plan_replace(tui_session *s, qb_plan *p);
/* Append a rule applied by method ("gptq", "awq"; NULL: RTN). False + status on failure. */
bool tui_plan_add_rule(tui_session *s, const char *pattern, const qb_format *f, const char *method);
/* Whether some rule uses a calibration method. */
bool tui_plan_has_calib_rules(const tui_session *s);
/* The first plan rule that matches no tensor, as "plan rule N 'PATTERN' matches no tensor" in
 * msg; false when every rule matches. */
bool tui_plan_unmatched(const tui_session *s, char *msg, size_t cap);
/* :imatrix FILE loads an importance matrix for the session (checked against the model; the
 * apply job then weights RTN rules of ggml types with it, byte for byte llama-quantize
 * --imatrix, and exports record it); :imatrix off drops it. Not while a job runs (it borrows
 * the matrix). Says what happened on the status line. */
void tui_imatrix(tui_session *s, const char *arg);
/* Free the session's importance matrix (a new model, the end). */
void tui_imatrix_drop(tui_session *s);
/* Start the job that brings the model to the plan (tasks.h's one long job). */
bool tui_plan_run(tui_session *s);

#endif
