/* method_stage.h — private to src/core/method: the staging area methods compute into before
 * anything in the model changes, shared by qb_method_apply (one method) and
 * qb_plan_apply (a plan whose rules carry different methods, plan_apply.h): every new
 * representation is staged, checked, and installed only when all succeeded. */
#ifndef QB_METHOD_STAGE_H
#define QB_METHOD_STAGE_H

#include "method.h"

/* One tensor's staged representation (per tensor index of the model). */
typedef struct {
    void *buf;      /* owned until installed; NULL with restore */
    size_t nbytes;
    qb_format fmt;
    bool set;       /* something is staged for this tensor */
    bool restore;   /* back to the original representation (as loaded) */
} qb_staged;

/* Compute meth over the tensors plan matches into st (m->n_tensors entries; an entry this
 * call fills replaces what was staged there). full (may be NULL) is the whole plan: a matrix
 * that AWQ rescales (v or up rows) but plan does not name gets full's format for it by RTN of
 * the rescaled values (F32 when full names none either). Progress counts from *done up to
 * total (both across calls). Checks the inputs first (calibration, formats the method can
 * produce). The model is not changed. */
qb_status qb_method_stage(qb_ctx *ctx, qb_model *m, const qb_plan *plan, const qb_plan *full, const qb_method *meth,
                          const qb_calib *cal, const qb_method_opts *o, qb_staged *st, int *done, int total);

/* Install everything staged (norms an earlier AWQ folded go back to their originals where
 * every matrix of their layer was re-staged and the norms themselves were not). Fails, with
 * the model untouched, when a layer holding folded scales would be only partly re-staged. */
qb_status qb_staged_install(qb_ctx *ctx, qb_model *m, qb_staged *st);

/* Free what is still staged (after an error, or the leftovers after install). */
void qb_staged_free(const qb_model *m, qb_staged *st);

#endif
