/* status.h — the title bar (model, plan size, running job with progress bar and ETA) and the
 * status bar (the last message, or key hints). */
#ifndef QB_TUI_STATUS_H
#define QB_TUI_STATUS_H

#include "tui/controllers/session.h"

#include <curses.h>

void tui_title_draw(WINDOW *win, const tui_session *s);
void tui_status_draw(WINDOW *win, const tui_session *s);

#endif
