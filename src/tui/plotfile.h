/* plotfile.h — the three plots of the selection written to a file for slides: SVG drawn
 * from the same analysis the screen shows. */
#ifndef QB_TUI_PLOTFILE_H
#define QB_TUI_PLOTFILE_H

#include "session.h"

/* Write PATH (.svg) atomically; status says where or why not. */
bool tui_plot_export(tui_session *s, const char *path);

#endif
