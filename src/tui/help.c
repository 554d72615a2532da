/* help.c — the help overlay (help.h). */
#include "help.h"
#include "commands.h"
#include "crt.h"
#include "keymap.h"

#include <curses.h>

void tui_help_draw(const tui_session *s, int rows, int cols)
{
    (void)s;
    int h = rows - 2, w = cols - 4;
    if (h < 6 || w < 30) return;
    WINDOW *win = newwin(h, w, 1, 2);
    if (!win) return;
    werase(win);
    box(win, 0, 0);
    wattron(win, A_BOLD | crt_color(CRT_TITLE));
    mvwprintw(win, 0, 2, " quantbench help: any key closes ");
    wattroff(win, A_BOLD | crt_color(CRT_TITLE));
    int n, y = 1, x = 2, colw = w / 2 - 2;
    const tui_binding *k = tui_keymap(&n);
    wattron(win, A_BOLD);
    mvwprintw(win, y++, x, "Keys");
    wattroff(win, A_BOLD);
    for (int i = 0; i < n && y < h - 1; i++) {
        if (!k[i].help) continue;
        mvwprintw(win, y++, x, "%-7s %.*s", k[i].label, colw - 9, k[i].help);
    }
    int ncmd;
    const tui_command_doc *d = tui_commands(&ncmd);
    x = w / 2 + 1, y = 1;
    if (w < 80) { /* narrow: commands below the keys if room */
        x = 2;
        y = h;
    }
    wattron(win, A_BOLD);
    if (y < h - 1) mvwprintw(win, y++, x, "Commands (after :)");
    wattroff(win, A_BOLD);
    for (int i = 0; i < ncmd && y < h - 1; i++) {
        mvwprintw(win, y++, x, "%.*s", colw, d[i].usage);
        if (y < h - 1) mvwprintw(win, y++, x + 2, "%.*s", colw - 2, d[i].help);
    }
    wnoutrefresh(win);
    delwin(win);
}
