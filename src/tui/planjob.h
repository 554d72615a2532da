/* planjob.h — the plan as the workbench keeps it: the core plan (pattern → format rules, the
 * last matching rule wins) plus, per rule, the method that applies it ('r' RTN, 'g' GPTQ,
 * 'a' AWQ, on the session's calibration), and the job that brings the model to it.
 *
 * Undo and redo keep snapshots of plan + methods (text: the plan file format with a comment
 * line "# tui methods: rgr…"), and every change runs the job, which compares each tensor's
 * target (format, method) with what it holds now (s->tmethod, its format) and redoes only the
 * tensors that differ, from their original values: RTN changes and restores first, then one
 * qb_model_apply_method call for the GPTQ tensors, then one for the AWQ tensors. Since one-shot
 * calibration reads the unquantized model, a tensor's GPTQ result depends only on its values,
 * its format and the calibration: replaying a rule gives the same bytes (while the same
 * calibration is loaded). AWQ folds scales into norms and neighbouring matrices, so once AWQ
 * is in the model, any later change rebuilds the whole model from the originals (RTN, GPTQ,
 * then every AWQ rule in one call). A single GPTQ or AWQ apply on a model without AWQ is one
 * core call, so Ctrl-C leaves the model exactly as it was; a cancelled rebuild leaves part of
 * the plan applied (the status says so; u or r replays). */
#ifndef QB_TUI_PLANJOB_H
#define QB_TUI_PLANJOB_H

#include "session.h"

/* Plan + methods as text (malloc'd; NULL when out of memory). */
char *tui_plan_snapshot(const tui_session *s);
/* Replace the plan and methods with a snapshot's (or any plan text: methods then RTN). False
 * + status on a parse error (nothing changed). */
bool tui_plan_restore(tui_session *s, const char *text, const char *what);
/* Replace the plan with p (taken), every rule RTN. */
void tui_plan_replace(tui_session *s, qb_plan *p);
/* Append a rule applied by method ('r', 'g', 'a'). False + status when out of memory. */
bool tui_plan_add_rule(tui_session *s, const char *pattern, const qb_format *f, char method);
/* Whether some rule uses a calibration method. */
bool tui_plan_has_calib_rules(const tui_session *s);
/* Start the job that brings the model to the plan (tasks.h's one long job). */
bool tui_plan_run(tui_session *s);

#endif
