/* metrics.h — the metrics panel: error statistics of the selected tensor at the current
 * choice (from core's analysis), and the whole model at its plan (core's size computation):
 * size against F16/F32, bits per weight, projected memory of 7B/13B/70B models. */
#ifndef QB_TUI_METRICS_H
#define QB_TUI_METRICS_H

#include "tui/controllers/session.h"

#include <curses.h>

void tui_metrics_draw(WINDOW *win, const tui_session *s);
/* Human size: "1.50 MiB", "3.9 GiB". */
const char *tui_bytes(double b, char *buf, size_t cap);

#endif
