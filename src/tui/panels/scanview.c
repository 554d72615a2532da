/* scanview.c — the sensitivity view (scanview.h). */
#include "tui/panels/scanview.h"
#include "tui/widgets/crt.h"
#include "tui/panels/hit.h"

#include <math.h>
#include <stdlib.h>

static int by_value(const void *a, const void *b, void *ud)
{
    (void)ud;
    const tui_scan_row *x = a, *y = b;
    if (x->value != y->value) return x->value < y->value ? 1 : -1;
    int kx = x->tensor >= 0 ? x->tensor : x->layer, ky = y->tensor >= 0 ? y->tensor : y->layer;
    return (kx > ky) - (kx < ky);
}

int tui_scan_rows(const tui_session *s, tui_scan_row *out)
{
    int n = 0;
    if (!s->heat) return 0;
    const bool per_layer = s->scan_agg == TUI_SCAN_LAYER_SUM || s->scan_agg == TUI_SCAN_LAYER_MAX;
    for (int i = 0; i < s->m->n_tensors; i++) {
        const double h = s->heat[i];
        if (isnan(h)) continue;
        const int l = per_layer ? tui_tensor_layer(s->m->tensors[i].name) : -1;
        if (l < 0) {
            out[n++] = (tui_scan_row){i, -1, h};
            continue;
        }
        int k = 0;
        while (k < n && !(out[k].tensor < 0 && out[k].layer == l)) k++;
        if (k == n) out[n++] = (tui_scan_row){-1, l, h};
        else if (s->scan_agg == TUI_SCAN_LAYER_SUM) out[k].value += h;
        else if (h > out[k].value) out[k].value = h;
    }
    qsort_r(out, (size_t)n, sizeof *out, by_value, NULL);
    return n;
}

int tui_scan_target(const tui_session *s, const tui_scan_row *r)
{
    if (r->tensor >= 0) return r->tensor;
    int best = -1;
    for (int i = 0; s->heat && i < s->m->n_tensors; i++)
        if (!isnan(s->heat[i]) && tui_tensor_layer(s->m->tensors[i].name) == r->layer &&
            (best < 0 || s->heat[i] > s->heat[best]))
            best = i;
    return best;
}

int tui_scanview_top(int H, int cursor) { return tui_list_top(H - 2, cursor); }

void tui_scanview_draw(WINDOW *win, const tui_session *s, int cursor)
{
    static const char *mode[TUI_SCAN_MODES] = {"per tensor", "per layer, sum", "per layer, max"};
    int H, W;
    getmaxyx(win, H, W);
    werase(win);
    wattron(win, A_BOLD | crt_color(CRT_TITLE));
    mvwprintw(win, 0, 1, "sensitivity (%s), %s, most sensitive first \u2014 Enter jumps, l groups, S closes",
              s->heat_label[0] ? s->heat_label : "scan", mode[s->scan_agg % TUI_SCAN_MODES]);
    wattroff(win, A_BOLD | crt_color(CRT_TITLE));
    tui_scan_row *rows = malloc((size_t)s->m->n_tensors * sizeof *rows);
    if (!rows) return;
    int n = tui_scan_rows(s, rows);
    if (n == 0) {
        mvwprintw(win, 2, 1, "No scan yet. A sensitivity scan fills this view; from the command line:");
        mvwprintw(win, 3, 3, ":qb.heat{[\"blk.0.ffn_down.weight\"] = 0.12, ...}");
    }
    double mx = n ? rows[0].value : 1;
    int top = tui_scanview_top(H, cursor);
    int namew = 30, barw = W - namew - 16;
    char lname[32];
    for (int r = 0; r + top < n && r < H - 2; r++) {
        const tui_scan_row *row = &rows[r + top];
        bool cur = r + top == cursor;
        const char *name = row->tensor >= 0 ? s->m->tensors[row->tensor].name : lname;
        if (row->tensor < 0) snprintf(lname, sizeof lname, "blk.%d (layer)", row->layer);
        if (cur) wattron(win, crt_color(CRT_SEL));
        mvwprintw(win, 2 + r, 1, "%-*.*s %10.4g ", namew, namew, name, row->value);
        if (cur) wattroff(win, crt_color(CRT_SEL));
        int len = mx > 0 && barw > 0 ? (int)(row->value / mx * barw + 0.5) : 0;
        wattron(win, crt_color(CRT_HEAT));
        for (int k = 0; k < len; k++) waddstr(win, "\u2588");
        wattroff(win, crt_color(CRT_HEAT));
    }
    free(rows);
    wnoutrefresh(win);
}
