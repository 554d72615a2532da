/* browser.c — the tensor browser panel (browser.h). Draws the model's tensor names and shapes
 * (fixed while the model is open), the formats and bytes from the session's snapshot
 * (tstate: an apply job may be rewriting the tensors themselves) and the heat values;
 * computes nothing. */
#include "tui/panels/browser.h"
#include "tui/widgets/chart.h"
#include "tui/widgets/crt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int tui_browser_rows(const tui_session *s, tui_row *rows, int cap)
{
    /* a layer's header at its first tensor, all its tensors right below it (files do not
       always keep a layer's tensors together) */
    const qb_model *m = s->m;
    int n = 0;
    for (int i = 0; i < m->n_tensors && n < cap; i++) {
        int l = tui_tensor_layer(m->tensors[i].name);
        if (l < 0) {
            rows[n++] = (tui_row){i, -1};
            continue;
        }
        bool first = true;
        for (int k = 0; k < i && first; k++) first = tui_tensor_layer(m->tensors[k].name) != l;
        if (!first) continue;
        rows[n++] = (tui_row){-1, l};
        if (!s->unfolded[l]) continue;
        for (int k = i; k < m->n_tensors && n < cap; k++)
            if (tui_tensor_layer(m->tensors[k].name) == l) rows[n++] = (tui_row){k, l};
    }
    return n;
}

static tui_row *all_rows(const tui_session *s, int *n)
{
    int cap = 2 * s->m->n_tensors + 2;
    tui_row *r = malloc((size_t)cap * sizeof *r);
    *n = r ? tui_browser_rows(s, r, cap) : 0;
    return r;
}

void tui_browser_cursor_to_sel(tui_session *s)
{
    int n;
    tui_row *r = all_rows(s, &n);
    for (int i = 0; i < n; i++)
        if (r[i].tensor == s->sel) s->cursor = i;
    free(r);
}

void tui_browser_move(tui_session *s, int delta)
{
    int n;
    tui_row *r = all_rows(s, &n);
    if (!r || n == 0) {
        free(r);
        return;
    }
    int c = s->cursor + delta;
    c = c < 0 ? 0 : c >= n ? n - 1 : c;
    s->cursor = c;
    int t = r[c].tensor;
    free(r);
    if (t >= 0 && t != s->sel) {
        s->sel = t;
        tui_request_analysis(s);
    }
}

void tui_browser_fold(tui_session *s, int open)
{
    int n;
    tui_row *r = all_rows(s, &n);
    if (!r || s->cursor >= n) {
        free(r);
        return;
    }
    int l = r[s->cursor].layer;
    free(r);
    if (l < 0) return;
    bool now = open < 0 ? !s->unfolded[l] : open;
    s->unfolded[l] = now;
    if (!now) { /* the cursor moves to the header of the folded layer */
        r = all_rows(s, &n);
        for (int i = 0; r && i < n; i++)
            if (r[i].tensor < 0 && r[i].layer == l) s->cursor = i;
        free(r);
    }
}

/* The browser's label of a tensor: the name inside its block without ".weight"; a block's
 * router is "router" and an expert's matrix "KIND eE" (ffn_up_exps.5 -> "up e5"), so the
 * experts stay apart in a narrow column. */
static const char *short_name(const char *name, char *buf, size_t cap)
{
    const char *p = name;
    if (tui_tensor_layer(name) >= 0) p = strchr(name + 4, '.') + 1;
    snprintf(buf, cap, "%s", p);
    size_t n = strlen(buf);
    if (n > 7 && !strcmp(buf + n - 7, ".weight")) buf[n - 7] = 0;
    char kind[16];
    int e, len = 0;
    if (!strcmp(buf, "ffn_gate_inp")) snprintf(buf, cap, "router");
    else if (sscanf(buf, "ffn_%15[a-z]_exps.%d%n", kind, &e, &len) == 2 && !buf[len]) snprintf(buf, cap, "%s e%d", kind, e);
    return buf;
}

static const char *fmt_short(const tui_tensor_state *t, char *buf, size_t cap)
{
    qb_format_name(&t->fmt, buf, cap);
    return buf;
}

/* A bar of height h / hmax (a blank for NaN). */
static void heat_mark(WINDOW *win, double h, double hmax)
{
    static const char *lv[8] = {"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
    if (isnan(h) || hmax <= 0) {
        waddstr(win, " ");
        return;
    }
    int k = (int)(h / hmax * 7.999);
    k = k < 0 ? 0 : k > 7 ? 7 : k;
    wattron(win, crt_color(CRT_HEAT));
    waddstr(win, lv[k]);
    wattroff(win, crt_color(CRT_HEAT));
}

void tui_browser_draw(WINDOW *win, tui_session *s)
{
    int H, W;
    getmaxyx(win, H, W);
    werase(win);
    wattron(win, A_BOLD);
    mvwprintw(win, 0, 0, " %-*s %-12s %5s %6s", W - 29 > 6 ? W - 29 : 6, "TENSORS", "format", "bpw", "bytes");
    wattroff(win, A_BOLD);
    int n;
    tui_row *r = all_rows(s, &n);
    if (!r) return;
    int vis = H - 1;
    if (s->cursor < s->top) s->top = s->cursor;
    if (s->cursor >= s->top + vis) s->top = s->cursor - vis + 1;
    if (s->top > 0 && s->top > n - vis) s->top = n - vis > 0 ? n - vis : 0;
    double hmax = 0;
    for (int i = 0; s->heat && i < s->m->n_tensors; i++)
        if (!isnan(s->heat[i]) && s->heat[i] > hmax) hmax = s->heat[i];
    int namew = W - 29 > 6 ? W - 29 : 6;
    char nb[96], fb[48], bb[24];
    for (int k = 0; k < vis && s->top + k < n; k++) {
        const tui_row *row = &r[s->top + k];
        bool cur = s->top + k == s->cursor;
        wmove(win, 1 + k, 0);
        if (cur) wattron(win, crt_color(CRT_SEL));
        if (row->tensor < 0) {
            /* layer header: summary of its tensors' formats and bytes */
            size_t bytes = 0;
            char f0[48] = "", fi[48];
            bool mixed = false;
            double lheat = NAN; /* the layer's most sensitive tensor */
            for (int i = 0; i < s->m->n_tensors; i++) {
                const qb_tensor *t = &s->m->tensors[i];
                if (tui_tensor_layer(t->name) != row->layer) continue;
                bytes += s->tstate[i].nbytes;
                if (s->heat && !isnan(s->heat[i]) && !(s->heat[i] <= lheat)) lheat = s->heat[i];
                if (!qb_tensor_quantizable(t)) continue;
                fmt_short(&s->tstate[i], fi, sizeof fi);
                if (!f0[0]) memcpy(f0, fi, sizeof fi);
                else if (strcmp(f0, fi)) mixed = true;
            }
            snprintf(nb, sizeof nb, "%s blk.%d", s->unfolded[row->layer] ? "\u25be" : "\u25b8", row->layer);
            wprintw(win, " %-*s %-12.12s %5s %6s ", namew + 2, nb, mixed ? "mixed" : f0, "", tui_num((double)bytes, bb, sizeof bb));
            heat_mark(win, lheat, hmax);
        } else {
            const qb_tensor *t = &s->m->tensors[row->tensor];
            const tui_tensor_state *ts = &s->tstate[row->tensor];
            short_name(t->name, nb, sizeof nb);
            double bpw = 8.0 * (double)ts->nbytes / (double)qb_tensor_nelements(t);
            bool mark = row->tensor == s->sel;
            wprintw(win, "%s%s%-*.*s %-12.12s %5.2f %6s ", mark ? "\u25b6" : " ", row->layer >= 0 ? "  " : "",
                    namew - (row->layer >= 0 ? 2 : 0), namew - (row->layer >= 0 ? 2 : 0), nb,
                    fmt_short(ts, fb, sizeof fb), bpw, tui_num((double)ts->nbytes, bb, sizeof bb));
            heat_mark(win, s->heat ? s->heat[row->tensor] : NAN, hmax);
        }
        if (cur) wattroff(win, crt_color(CRT_SEL));
    }
    free(r);
    wnoutrefresh(win);
}
