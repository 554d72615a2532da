/* plotfile.h — the three plots of the selection written to files for slides, through the
 * core plot module (SVG, PNG or PDF, by the extension): PATH "plots.svg" gives plots-values.svg,
 * plots-mapping.svg and plots-error.svg, drawn from the same analysis the screen shows. */
#ifndef QB_TUI_PLOTFILE_H
#define QB_TUI_PLOTFILE_H

#include "tui/controllers/session.h"

/* Write the three files (each atomically); status says where or why not. */
bool tui_plot_export(tui_session *s, const char *path);

#endif
