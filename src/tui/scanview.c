/* scanview.c — the sensitivity view (scanview.h). */
#include "scanview.h"
#include "crt.h"

#include <math.h>
#include <stdlib.h>

static const tui_session *sort_s; /* qsort has no user pointer; only the UI thread sorts */

static int by_heat(const void *a, const void *b)
{
    double x = sort_s->heat[*(const int *)a], y = sort_s->heat[*(const int *)b];
    return x < y ? 1 : x > y ? -1 : 0;
}

int tui_scan_order(const tui_session *s, int *out)
{
    int n = 0;
    for (int i = 0; s->heat && i < s->m->n_tensors; i++)
        if (!isnan(s->heat[i])) out[n++] = i;
    sort_s = s;
    qsort(out, (size_t)n, sizeof *out, by_heat);
    sort_s = NULL;
    return n;
}

void tui_scanview_draw(WINDOW *win, const tui_session *s, int cursor)
{
    int H, W;
    getmaxyx(win, H, W);
    werase(win);
    wattron(win, A_BOLD | crt_color(CRT_TITLE));
    mvwprintw(win, 0, 1, "sensitivity (%s), most sensitive first \u2014 Enter jumps, S closes",
              s->heat_label[0] ? s->heat_label : "scan");
    wattroff(win, A_BOLD | crt_color(CRT_TITLE));
    int *order = malloc((size_t)s->m->n_tensors * sizeof *order);
    if (!order) return;
    int n = tui_scan_order(s, order);
    if (n == 0) {
        mvwprintw(win, 2, 1, "No scan yet. A sensitivity scan fills this view; from the command line:");
        mvwprintw(win, 3, 3, ":qb.heat{[\"blk.0.ffn_down.weight\"] = 0.12, ...}");
    }
    double mx = n ? s->heat[order[0]] : 1;
    int top = cursor >= H - 2 ? cursor - (H - 3) : 0;
    int namew = 30, barw = W - namew - 16;
    for (int r = 0; r + top < n && r < H - 2; r++) {
        int i = order[r + top];
        bool cur = r + top == cursor;
        if (cur) wattron(win, crt_color(CRT_SEL));
        mvwprintw(win, 2 + r, 1, "%-*.*s %10.4g ", namew, namew, s->m->tensors[i].name, s->heat[i]);
        if (cur) wattroff(win, crt_color(CRT_SEL));
        int len = mx > 0 && barw > 0 ? (int)(s->heat[i] / mx * barw + 0.5) : 0;
        wattron(win, crt_color(CRT_HEAT));
        for (int k = 0; k < len; k++) waddstr(win, "\u2588");
        wattroff(win, crt_color(CRT_HEAT));
    }
    free(order);
    wnoutrefresh(win);
}
