/* present.h — presentation mode for a classroom: the three plots large, the bit width and the
 * SQNR in big digits, and a key (and an auto-play timer) stepping 8 → 6 → 4 → 3 → 2 bits. */
#ifndef QB_TUI_PRESENT_H
#define QB_TUI_PRESENT_H

#include "tui/controllers/session.h"

#include <curses.h>

/* Seconds between automatic steps. */
#define TUI_AUTOPLAY_SECONDS 2.5

/* Next bit width of the 8 → 6 → 4 → 3 → 2 sequence after bits (wrapping). */
int tui_present_next_bits(int bits);
/* Draw the presentation screen into win. */
void tui_present_draw(WINDOW *win, const tui_session *s);

#endif
