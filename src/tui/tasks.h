/* tasks.h — the workbench's long jobs on the model: applying the plan (after an apply, undo,
 * redo or plan load), side-by-side generation, perplexity/KLD against the full-precision
 * base, and GGUF export. One runs at a time; each is cancelled with Ctrl-C. */
#ifndef QB_TUI_TASKS_H
#define QB_TUI_TASKS_H

#include "session.h"

/* Handle a message from a long job (job ids <= 0). */
void tui_task_message(tui_session *s, const qb_msg *m);
/* The glob pattern of a scope ('t' tensor, 'k' kind, 'l' layer, 'm' model) for tensor name
 * into buf; false when the scope does not apply (a tensor outside the layers has no layer). */
bool tui_scope_pattern(const char *name, char scope, char *buf, size_t cap);

#endif
