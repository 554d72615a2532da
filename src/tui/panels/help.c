/* help.c — the help overlay (help.h): keys in the left column, commands (usage, then what it
 * does) in the right one, or everything in one column on narrow screens. Longer than the
 * window, it scrolls: both columns move together by the session's help_top. */
#include "tui/panels/help.h"
#include "tui/controllers/commands.h"
#include "tui/widgets/crt.h"
#include "tui/widgets/keymap.h"

#include <curses.h>

/* The overlay's geometry for a screen of rows × cols; false when too small to draw. */
typedef struct {
    int h, w, colw, body; /* window size, column width, lines of a column inside the frame */
    bool two;             /* two columns (keys | commands) */
} help_geom;

static bool geom(int rows, int cols, help_geom *g)
{
    g->h = rows - 2;
    g->w = cols - 4;
    if (g->h < 6 || g->w < 30) return false;
    g->two = g->w >= 80;
    g->colw = g->two ? g->w / 2 - 2 : g->w - 4;
    g->body = g->h - 3; /* frame above and below, the "more" line */
    return true;
}

static int key_lines(void)
{
    int n, c = 1; /* the "Keys" heading */
    const tui_binding *k = tui_keymap(&n);
    for (int i = 0; i < n; i++) c += k[i].help != NULL;
    return c;
}

static int command_lines(void)
{
    int n;
    tui_commands(&n);
    return 1 + 2 * n; /* heading, then usage and help of each */
}

int tui_help_max_top(int rows, int cols)
{
    help_geom g;
    if (!geom(rows, cols, &g)) return 0;
    const int total = g.two ? (key_lines() > command_lines() ? key_lines() : command_lines())
                            : key_lines() + 1 + command_lines();
    return total > g.body ? total - g.body : 0;
}

/* Line i of the content (column col: 0 keys, 1 commands; one column: keys, a blank line, then
 * commands) drawn at row y; bold for headings. */
static void draw_line(WINDOW *win, int y, int x, int width, int col, int i)
{
    int n;
    const tui_binding *k = tui_keymap(&n);
    if (col == 0) {
        if (i == 0) {
            wattron(win, A_BOLD);
            mvwprintw(win, y, x, "Keys");
            wattroff(win, A_BOLD);
            return;
        }
        for (int j = 0, seen = 0; j < n; j++) {
            if (!k[j].help) continue;
            if (++seen == i) {
                mvwprintw(win, y, x, "%-7s %.*s", k[j].label, width - 9 > 0 ? width - 9 : 0, k[j].help);
                return;
            }
        }
        return;
    }
    int ncmd;
    const tui_command_doc *d = tui_commands(&ncmd);
    if (i == 0) {
        wattron(win, A_BOLD);
        mvwprintw(win, y, x, "Commands (after :)");
        wattroff(win, A_BOLD);
        return;
    }
    const int c = (i - 1) / 2;
    if (c >= ncmd) return;
    if ((i - 1) % 2 == 0) mvwprintw(win, y, x, "%.*s", width, d[c].usage);
    else mvwprintw(win, y, x + 2, "%.*s", width - 2, d[c].help);
}

void tui_help_draw(const tui_session *s, int rows, int cols)
{
    help_geom g;
    if (!geom(rows, cols, &g)) return;
    WINDOW *win = newwin(g.h, g.w, 1, 2);
    if (!win) return;
    werase(win);
    box(win, 0, 0);
    const int max_top = tui_help_max_top(rows, cols);
    const int top = s->help_top < 0 ? 0 : s->help_top > max_top ? max_top : s->help_top;
    wattron(win, A_BOLD | crt_color(CRT_TITLE));
    mvwprintw(win, 0, 2, max_top ? " quantbench help: j/k, PgDn/PgUp scroll; any other key closes "
                                 : " quantbench help: any key closes ");
    wattroff(win, A_BOLD | crt_color(CRT_TITLE));
    const int nk = key_lines(), nc = command_lines();
    for (int r = 0; r < g.body; r++) {
        const int i = top + r;
        if (g.two) {
            if (i < nk) draw_line(win, 1 + r, 2, g.colw, 0, i);
            if (i < nc) draw_line(win, 1 + r, g.w / 2 + 1, g.colw, 1, i);
        } else if (i < nk) {
            draw_line(win, 1 + r, 2, g.colw, 0, i);
        } else if (i > nk && i - nk - 1 < nc) {
            draw_line(win, 1 + r, 2, g.colw, 1, i - nk - 1);
        }
    }
    if (top < max_top) mvwprintw(win, g.h - 2, 2, "more below: j / PgDn");
    else if (top > 0) mvwprintw(win, g.h - 2, 2, "end (k / PgUp: back)");
    wnoutrefresh(win);
    delwin(win);
}
