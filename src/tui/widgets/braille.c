/* braille.c — a core braille canvas on the screen (braille.h). */
#include "tui/widgets/braille.h"

#include <wchar.h>

void tui_canvas_render(const qb_canvas *c, WINDOW *win, int y, int x)
{
    if (!c->bits) return;
    for (int cy = 0; cy < c->h; cy++)
        for (int cx = 0; cx < c->w; cx++) {
            unsigned cp = qb_canvas_cell(c, cx, cy);
            if (cp == 0x2800) continue; /* no dot: leave the window's cell as it is */
            wchar_t wc[2] = {(wchar_t)cp, 0};
            cchar_t cc;
            int pair = has_colors() ? c->color[(size_t)cy * c->w + cx] : 0;
            setcchar(&cc, wc, 0, (short)pair, NULL);
            mvwadd_wch(win, y + cy, x + cx, &cc);
        }
}
