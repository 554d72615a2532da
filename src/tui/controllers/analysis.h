/* analysis.h — the selected tensor's analysis at the current choice, computed by core
 * (qb_quant_analyze) on short worker jobs: a new keypress cancels the job still running, so
 * holding a key never queues up work, and the UI stays responsive on large tensors. */
#ifndef QB_TUI_ANALYSIS_H
#define QB_TUI_ANALYSIS_H

#include "tui/controllers/session.h"

/* Points of the mapping asked for (the zoomed view still gets a dense staircase). */
#define TUI_MAP_POINTS 4096
/* Tensors above this many values get a preview first: the analysis of an evenly spaced
 * sample of whole rows holding about this many values, shown (marked as a preview) while the
 * full analysis runs, so a keypress shows its effect at once even on the largest matrices. */
#define TUI_PREVIEW_VALUES (256 * 1024)

/* Full analyses kept per (tensor, format, bins), so going back to a setting shows it at once
 * (QB_TUI_NO_CACHE=1 turns this off, to measure the computation itself). */
#define TUI_AN_CACHE 32

/* Cancel and reap every analysis job, drop the cached source values, the analysis and the
 * cache of analyses. */
void tui_analysis_reset(tui_session *s);
/* Handle a message from an analysis job (job ids > 0 are analysis serials). */
void tui_analysis_message(tui_session *s, const qb_msg *m);
/* Frees a qb_analysis posted as message data. */
void tui_analysis_msg_free(void *p);
/* Ctrl-C: cancel a calibration method's analysis still running (plain analyses are short and
 * cancelled by the next request anyway). False when there was none. */
bool tui_analysis_cancel(tui_session *s);
/* The importance of tensor t's columns from the session's imatrix (borrowed from it), or NULL
 * when none is loaded or it has no entry for t (token_embd, output). */
const float *tui_importance_of(tui_session *s, const qb_tensor *t);
/* The imatrix was loaded or dropped: forget the cached analyses (their weighted half belongs
 * to the old one) and analyse the selection again. */
void tui_analysis_importance_changed(tui_session *s);
/* Key w: switch the metrics and the error plot between plain and importance-weighted (the
 * analysis already holds both: nothing is computed); without an imatrix the status line says
 * how to load one. */
void tui_weighted_toggle(tui_session *s);
/* Whether the panels show the weighted view now: asked for, and the analysis shown has it. */
bool tui_weighted_shown(const tui_session *s);

/* Whether an analysis newer than the one shown (or the full one after a preview) is still
 * being computed. */
bool tui_analysis_pending(const tui_session *s);

#endif
