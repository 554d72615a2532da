/* trainjob.h — `:finetune [heal] FILE [STEPS] [LR]`: fine-tuning the open model against its
 * full-precision twin (the same file opened again) as the workbench's long job: quantization-
 * aware fine-tuning with distillation of every matrix the applied plan quantized (its latent
 * weights through the format's fake quantization, packed in the same format at the end), or
 * with `heal` only the norms and biases. Each step posts its loss, which the plots panel draws
 * as a live braille curve above the tensor's plots; the status line shows step, loss, tokens/s
 * and ETA; Ctrl-C stops it with the model as it was. The computation is core's
 * (core/method/finetune.h). */
#ifndef QB_TUI_TRAINJOB_H
#define QB_TUI_TRAINJOB_H

#include "tui/controllers/session.h"

/* Parse the command's arguments and start the job; false + status when it cannot start. */
bool tui_finetune(tui_session *s, const char *args);
/* A step's report (TUI_MSG_TRAIN: i0 step, i1 steps, d0 loss, d1 tokens/s) joins the curve. */
void tui_train_step(tui_session *s, const qb_msg *m);
/* A tensor's analysis as the run holds it (TUI_MSG_TRAIN_AN): shown when it is still the
 * selected one. */
void tui_train_analysis(tui_session *s, const qb_msg *m);
/* Learned rounding's step it of iters with output error err (TUI_MSG_LEARN_STEP): the curve
 * starts over at step 0; a running fine-tuning keeps the curve. */
void tui_learn_curve_step(tui_session *s, int it, int iters, double err);
/* The job ended (joined): the model is ours again; say how it went and show the result. */
void tui_train_done(tui_session *s, qb_status st, const char *err);

#endif
