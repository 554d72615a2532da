/* chart.c — framed braille plots with axes, ticks and legends (chart.h). */
#include "tui/widgets/chart.h"
#include "tui/widgets/crt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define YLAB 8 /* width of the y tick labels */

const char *tui_num(double v, char *buf, size_t cap)
{
    double a = fabs(v);
    if (v == 0) snprintf(buf, cap, "0");
    else if (a >= 1e6) snprintf(buf, cap, "%.3gM", v / 1e6);
    else if (a >= 1e3) snprintf(buf, cap, "%.3gk", v / 1e3);
    else if (a >= 0.01) snprintf(buf, cap, "%.3g", v);
    else snprintf(buf, cap, "%.1e", v);
    return buf;
}

static double ymap(const tui_chart *c, double v)
{
    if (c->logy) return log10(1 + fmax(v, 0));
    return v;
}

int tui_chart_dx(const tui_chart *c, double v)
{
    int W = 2 * c->cv.w;
    double t = c->xhi > c->xlo ? (v - c->xlo) / (c->xhi - c->xlo) : 0.5;
    int d = (int)lround(t * (W - 1));
    return d < 0 ? 0 : d >= W ? W - 1 : d;
}

int tui_chart_dy(const tui_chart *c, double v)
{
    int H = 4 * c->cv.h;
    double lo = ymap(c, c->ylo), hi = ymap(c, c->yhi);
    double t = hi > lo ? (ymap(c, v) - lo) / (hi - lo) : 0;
    int d = (int)lround(t * (H - 1));
    return d < 0 ? 0 : d >= H ? H - 1 : d;
}

static void frame(WINDOW *win, int y, int x, int h, int w)
{
    mvwaddch(win, y, x, ACS_ULCORNER);
    mvwaddch(win, y, x + w - 1, ACS_URCORNER);
    mvwaddch(win, y + h - 1, x, ACS_LLCORNER);
    mvwaddch(win, y + h - 1, x + w - 1, ACS_LRCORNER);
    mvwhline(win, y, x + 1, ACS_HLINE, w - 2);
    mvwhline(win, y + h - 1, x + 1, ACS_HLINE, w - 2);
    mvwvline(win, y + 1, x, ACS_VLINE, h - 2);
    mvwvline(win, y + 1, x + w - 1, ACS_VLINE, h - 2);
}

bool tui_chart_begin(tui_chart *c, WINDOW *win, int y, int x, int h, int w, const char *title, const tui_legend *legend,
                     int n_legend, double xlo, double xhi, double ylo, double yhi, bool logy)
{
    memset(c, 0, sizeof *c);
    if (h < 5 || w < YLAB + 12) return false;
    c->xlo = xlo, c->xhi = xhi, c->ylo = ylo, c->yhi = yhi, c->logy = logy;
    frame(win, y, x, h, w);
    wattron(win, A_BOLD);
    mvwprintw(win, y, x + 2, " %.*s ", w - 6, title);
    wattroff(win, A_BOLD);
    /* legend at the right of the top edge */
    int lw = 0;
    for (int i = 0; i < n_legend; i++) lw += (int)strlen(legend[i].label) + 3;
    int lx = x + w - 2 - lw;
    if (lx > x + 4 + (int)strlen(title) + 2)
        for (int i = 0; i < n_legend; i++) {
            wattron(win, crt_color(legend[i].color) | A_BOLD);
            mvwaddstr(win, y, lx, " \u2501 ");
            wattroff(win, crt_color(legend[i].color) | A_BOLD);
            waddstr(win, legend[i].label);
            lx += (int)strlen(legend[i].label) + 3;
        }
    c->py = y + 1;
    c->px = x + 1 + YLAB;
    if (!qb_canvas_init(&c->cv, w - 2 - YLAB, h - 3)) return false;
    /* y ticks: top, middle, bottom */
    char b[32];
    for (int k = 0; k < 3; k++) {
        int row = k == 0 ? 0 : k == 1 ? (c->cv.h - 1) / 2 : c->cv.h - 1;
        double t = 1.0 - (double)row / (c->cv.h > 1 ? c->cv.h - 1 : 1);
        double v;
        if (logy) v = pow(10, t * log10(1 + fmax(yhi, 0))) - 1;
        else v = ylo + t * (yhi - ylo);
        mvwprintw(win, c->py + row, x + 1, "%*.*s\u2524", YLAB - 1, YLAB - 1, tui_num(v, b, sizeof b));
    }
    /* x ticks: lo, 0 (when inside), hi */
    int ty = y + h - 2, cw = c->cv.w;
    mvwprintw(win, ty, c->px, "%s", tui_num(xlo, b, sizeof b));
    tui_num(xhi, b, sizeof b);
    mvwprintw(win, ty, c->px + cw - (int)strlen(b), "%s", b);
    if (xlo < 0 && xhi > 0) {
        int zx = c->px + tui_chart_dx(c, 0) / 2;
        if (zx > c->px + 6 && zx < c->px + cw - 8) mvwaddstr(win, ty, zx, "0");
    }
    if (logy) mvwaddstr(win, ty, x + 1, "log");
    return true;
}

void tui_chart_end(tui_chart *c, WINDOW *win)
{
    tui_canvas_render(&c->cv, win, c->py, c->px);
    qb_canvas_free(&c->cv);
}
