/* methodan.h — the selected tensor's analysis under a calibration method (GPTQ, AWQ, learned
 * rounding): a short worker job, like the RTN analyses (a newer request cancels it), that quantizes the tensor
 * from its original values with the method and its input's XᵀX (core qb_method_preview) and
 * measures the result as RTN's analyses are measured (qb_quant_analyze_given), plus the
 * layer's relative output error for the method and for RTN of the same format. Learned rounding
 * learns the matrix against that output error (core qb_learned_matrix, TUI_LEARNED_ITERS signed
 * steps) and shows itself learning: each step's error (TUI_MSG_LEARN_STEP, the live curve above
 * the plots) and, a few times a second, the plots of the values reached so far. */
#ifndef QB_TUI_METHODAN_H
#define QB_TUI_METHODAN_H

#include "tui/controllers/session.h"

/* What the job posts (TUI_MSG_METHOD_AN). */
typedef struct {
    qb_analysis an;
    int method;              /* qb_method_kind */
    double oerr, oerr_rtn;   /* ‖(W − Q)X‖² / ‖WX‖²: the method's, RTN's */
    float alpha;             /* AWQ's α (NAN otherwise) */
} tui_method_an;

#define TUI_LEARNED_ITERS 100

/* "GPTQ", "AWQ", "Learned", "RTN" (static). */
const char *tui_method_display(int kind);
/* The qb_method_kind of the current choice (QB_METHOD_RTN for plain formats). */
int tui_choice_method(const tui_session *s);
/* Why the selection cannot be analysed with calibration method kind right now (no
 * calibration, a tensor without a calibration point), into buf; false when it can. */
bool tui_method_hint(const tui_session *s, int kind, char *buf, size_t cap);
/* Start the job for the selection at the current choice (job id s->serial); NULL + message
 * in s->an_err when it cannot start. */
qb_job *tui_method_analysis_start(tui_session *s, int kind);
/* Free a posted tui_method_an (message data). */
void tui_method_an_free(void *p);

#endif
