/* plots.c — the three live plots (plots.h). */
#include "tui/panels/plots.h"
#include "tui/controllers/analysis.h"
#include "tui/widgets/chart.h"
#include "tui/widgets/crt.h"
#include "tui/controllers/methods.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *tui_choice_text(const tui_session *s, char *buf, size_t cap)
{
    char fname[64], gname[64];
    qb_format_name(&s->fmt, fname, sizeof fname);
    if (s->custom) {
        snprintf(buf, cap, "format %s", fname);
        return buf;
    }
    int n;
    const tui_method *m = tui_methods(&n);
    snprintf(buf, cap, "%s \u00b7 %d bit \u00b7 %s (%s)", m[s->method].name, s->bits,
             tui_group_name(s->method, s->group, gname, sizeof gname), fname);
    return buf;
}

int tui_plots_bins(int w)
{
    int b = 2 * (w - 9);
    return b < 16 ? 16 : b > 512 ? 512 : b;
}

static uint64_t hmax(const qb_histogram *h)
{
    uint64_t m = 0;
    for (int i = 0; i < h->bins; i++)
        if (h->counts[i] > m) m = h->counts[i];
    return m;
}

static double bin_center(const qb_histogram *h, int i) { return h->lo + (i + 0.5) * (h->hi - h->lo) / h->bins; }

static void hist_bars(tui_chart *c, const qb_histogram *h, int color)
{
    for (int i = 0; i < h->bins; i++) {
        if (!h->counts[i]) continue;
        int x = tui_chart_dx(c, bin_center(h, i));
        qb_canvas_line(&c->cv, x, 0, x, tui_chart_dy(c, (double)h->counts[i]), color, 1, 0);
    }
}

static void hist_outline(tui_chart *c, const qb_histogram *h, int color)
{
    int px = -1, py = 0;
    for (int i = 0; i < h->bins; i++) {
        int x = tui_chart_dx(c, bin_center(h, i)), y = h->counts[i] ? tui_chart_dy(c, (double)h->counts[i]) : 0;
        if (px >= 0 && (y > 0 || py > 0)) qb_canvas_line(&c->cv, px, py, x, y, color, 1, 0);
        else if (y > 0) qb_canvas_dot(&c->cv, x, y, color);
        px = x, py = y;
    }
}

static void values_plot(WINDOW *win, const tui_session *s, int y, int x, int h, int w)
{
    const qb_analysis *a = &s->an;
    uint64_t mo = hmax(&a->hist_orig), mq = hmax(&a->hist_deq);
    double top = s->log_hist ? (double)(mo > mq ? mo : mq) : 1.15 * (double)mo;
    bool clipped = !s->log_hist && (double)mq > top;
    tui_legend lg[2] = {{"original", CRT_ORIG}, {"dequantized", CRT_QUANT}};
    tui_chart c;
    const char *title = clipped ? "values (spikes clipped, L: log)" : "values";
    if (!tui_chart_begin(&c, win, y, x, h, w, title, lg, 2, a->hist_orig.lo, a->hist_orig.hi, 0, top > 0 ? top : 1,
                         s->log_hist))
        return;
    hist_bars(&c, &a->hist_orig, CRT_ORIG);
    hist_outline(&c, &a->hist_deq, CRT_QUANT);
    tui_chart_end(&c, win);
}

static void mapping_plot(WINDOW *win, const tui_session *s, int y, int x, int h, int w)
{
    const qb_analysis *a = &s->an;
    double lo = a->hist_orig.lo, hi = a->hist_orig.hi;
    if (s->zoom_map) {
        double r = fmax(fabs(lo), fabs(hi)) / 8;
        lo = -r, hi = r;
    }
    tui_legend lg[2] = {{"quantized", CRT_QUANT}, {"y = x", CRT_IDEAL}};
    tui_chart c;
    if (!tui_chart_begin(&c, win, y, x, h, w, s->zoom_map ? "mapping, zoom \u00d78 (z)" : "mapping: original \u2192 quantized",
                         lg, 2, lo, hi, lo, hi, false))
        return;
    qb_canvas_line(&c.cv, tui_chart_dx(&c, lo), tui_chart_dy(&c, lo), tui_chart_dx(&c, hi), tui_chart_dy(&c, hi),
                   CRT_IDEAL, 2, 2);
    for (int i = 0; i < a->n_map; i++) {
        double mx = a->map_x[i], my = a->map_y[i];
        if (mx < lo || mx > hi) continue;
        int dx = tui_chart_dx(&c, mx), dy = tui_chart_dy(&c, my);
        qb_canvas_dot(&c.cv, dx, dy, CRT_QUANT);
        if (i + 1 < a->n_map && a->map_y[i + 1] == my && a->map_x[i + 1] <= hi)
            qb_canvas_line(&c.cv, dx, dy, tui_chart_dx(&c, a->map_x[i + 1]), dy, CRT_QUANT, 1, 0);
    }
    tui_chart_end(&c, win);
}

static void error_plot(WINDOW *win, const tui_session *s, int y, int x, int h, int w)
{
    const bool wv = tui_weighted_shown(s);
    const qb_histogram *he = wv ? &s->an.hist_werr : &s->an.hist_err;
    tui_legend lg[1] = {{wv ? "\u221a(w/w\u0304)\u00b7(original \u2212 dequantized)" : "original \u2212 dequantized", CRT_ERR}};
    tui_chart c;
    uint64_t m = hmax(he);
    if (!tui_chart_begin(&c, win, y, x, h, w, wv ? "error, importance-weighted (w)" : "error", lg, 1, he->lo, he->hi, 0,
                         m ? 1.1 * (double)m : 1, s->log_hist))
        return;
    hist_bars(&c, he, CRT_ERR);
    tui_chart_end(&c, win);
}

/* The loss per step of the last training (:finetune) or learned-rounding analysis, a live
 * curve while it runs. */
static void loss_plot(WINDOW *win, const tui_session *s, int y, int x, int h, int w)
{
    double lo = s->train_loss[0], hi = lo;
    for (int i = 1; i < s->train_n; i++) {
        if (s->train_loss[i] < lo) lo = s->train_loss[i];
        if (s->train_loss[i] > hi) hi = s->train_loss[i];
    }
    if (hi <= lo) hi = lo + 1e-6;
    char title[240];
    snprintf(title, sizeof title, "training loss: %.160s, step %d/%d", s->train_desc, s->train_n, s->train_steps);
    tui_legend lg[1] = {{s->train_legend ? s->train_legend : "loss (per step)", CRT_QUANT}};
    tui_chart c;
    if (!tui_chart_begin(&c, win, y, x, h, w, title, lg, 1, 1, s->train_steps > 1 ? s->train_steps : 2, lo, hi, false))
        return;
    for (int i = 0; i < s->train_n; i++) {
        const int dx = tui_chart_dx(&c, i + 1), dy = tui_chart_dy(&c, s->train_loss[i]);
        if (i + 1 < s->train_n)
            qb_canvas_line(&c.cv, dx, dy, tui_chart_dx(&c, i + 2), tui_chart_dy(&c, s->train_loss[i + 1]), CRT_QUANT, 1, 0);
        else qb_canvas_line(&c.cv, dx, dy, dx, dy, CRT_QUANT, 1, 0);
    }
    tui_chart_end(&c, win);
}

void tui_plots_area(WINDOW *win, const tui_session *s, int y, int x, int h, int w)
{
    if (s->train_show && s->train_n > 0 && h >= 12) { /* the loss curve above the tensor's plots */
        const int lh = h / 3;
        loss_plot(win, s, y, x, lh, w);
        y += lh;
        h -= lh;
    }
    bool pending_err = s->an_err[0] && !tui_analysis_pending(s);
    if (pending_err || !s->have_an) {
        if (pending_err && s->an_hint) {
            wattron(win, A_BOLD);
            mvwprintw(win, y + 1, x + 1, "%.*s", w - 2, s->an_err);
            wattroff(win, A_BOLD);
        } else if (pending_err) {
            wattron(win, crt_color(CRT_ERROR));
            mvwprintw(win, y + 1, x + 1, "%.*s", w - 2, s->an_err);
            wattroff(win, crt_color(CRT_ERROR));
            mvwprintw(win, y + 2, x + 1, "choose another granularity (g), bits (b) or method (m)");
        } else {
            mvwprintw(win, y + 1, x + 1, "analysing %s\u2026", tui_sel(s)->name);
        }
        return;
    }
    if (w >= 150 && h < 30) { /* wide and short: side by side */
        int pw = w / 3;
        values_plot(win, s, y, x, h, pw);
        mapping_plot(win, s, y, x + pw, h, pw);
        error_plot(win, s, y, x + 2 * pw, h, w - 2 * pw);
        return;
    }
    int ph = h / 3;
    values_plot(win, s, y, x, ph, w);
    mapping_plot(win, s, y + ph, x, ph, w);
    error_plot(win, s, y + 2 * ph, x, h - 2 * ph, w);
}

void tui_plots_draw(WINDOW *win, const tui_session *s)
{
    int H, W;
    getmaxyx(win, H, W);
    werase(win);
    const qb_tensor *t = tui_sel(s);
    char cb[160];
    wattron(win, A_BOLD);
    mvwprintw(win, 0, 1, "%.*s", W - 2, t->name);
    wattroff(win, A_BOLD);
    wprintw(win, "  %lld\u00d7%lld", (long long)qb_tensor_rows(t), (long long)t->ne[0]);
    wattron(win, crt_color(CRT_QUANT) | A_BOLD);
    mvwprintw(win, 1, 1, "%.*s", W - 2, tui_choice_text(s, cb, sizeof cb));
    wattroff(win, crt_color(CRT_QUANT) | A_BOLD);
    if (s->an_preview) waddstr(win, " (preview on a sample of rows\u2026)");
    else if (tui_analysis_pending(s)) waddstr(win, " \u2026");
    tui_plots_area(win, s, 2, 0, H - 2, W);
    wnoutrefresh(win);
}
