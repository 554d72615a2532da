/* tui.h — the workbench as the front end (src/app) starts it: the one entry point of the
 * TUI. The arrow goes app → tui; nothing in src/tui includes src/app. */
#ifndef QB_TUI_H
#define QB_TUI_H

#include "core/qb.h"
#include "core/model/model.h"

typedef struct {
    bool present;           /* start in presentation mode (--present) */
    const char *trace_path; /* QB_TUI_TRACE: per-key latency log (NULL or "": none) */
} tui_opts;

/* Run the workbench on m (NULL: the built-in demo with synthetic tensors) until the user
 * quits. Takes ownership of m (closed on every path). Returns QB_OK after a normal quit, or
 * an error with its message on ctx when the session or the terminal cannot be set up. */
qb_status tui_run(qb_ctx *ctx, qb_model *m, const tui_opts *o);

#endif
