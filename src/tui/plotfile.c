/* plotfile.c — SVG export of the three plots (plotfile.h): the same histograms and mapping
 * points the screen draws, as vector graphics 900 × 960 for slides. */
#include "plotfile.h"
#include "plots.h"

#include "core/util/atomic_file.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PW 820.0 /* plot area width */
#define PH 230.0 /* plot area height */
#define PX 60.0  /* plot area left */

typedef struct {
    double x0, x1, y0, y1; /* data ranges */
    double top;            /* svg y of the area's top */
    bool logy;
} frame;

static double fx(const frame *f, double v) { return PX + (v - f->x0) / (f->x1 - f->x0) * PW; }
static double fy(const frame *f, double v)
{
    double lo = f->logy ? log10(1 + f->y0) : f->y0, hi = f->logy ? log10(1 + f->y1) : f->y1;
    double t = ((f->logy ? log10(1 + fmax(v, 0)) : v) - lo) / (hi > lo ? hi - lo : 1);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return f->top + PH - t * PH;
}

static void axes(FILE *o, const frame *f, const char *title, const char *legend)
{
    fprintf(o, "<rect x='%.0f' y='%.0f' width='%.0f' height='%.0f' fill='none' stroke='#444'/>\n", PX, f->top, PW, PH);
    fprintf(o, "<text x='%.0f' y='%.0f' font-size='16' font-weight='bold'>%s</text>\n", PX, f->top - 8, title);
    fprintf(o, "<text x='%.0f' y='%.0f' font-size='13' text-anchor='end'>%s</text>\n", PX + PW, f->top - 8, legend);
    for (int k = 0; k <= 4; k++) {
        double v = f->x0 + k * (f->x1 - f->x0) / 4;
        fprintf(o, "<text x='%.1f' y='%.0f' font-size='12' text-anchor='middle'>%.3g</text>\n", fx(f, v), f->top + PH + 16, v);
    }
    fprintf(o, "<text x='%.0f' y='%.0f' font-size='12' text-anchor='end'>%.3g</text>\n", PX - 4, f->top + 10, f->y1);
    fprintf(o, "<text x='%.0f' y='%.0f' font-size='12' text-anchor='end'>%.3g</text>\n", PX - 4, f->top + PH, f->y0);
}

static void hist(FILE *o, const frame *f, const qb_histogram *h, const char *fill, const char *stroke)
{
    fprintf(o, "<polyline fill='%s' fill-opacity='0.45' stroke='%s' stroke-width='1.2' points='", fill, stroke);
    double w = (h->hi - h->lo) / h->bins;
    fprintf(o, "%.1f,%.1f ", fx(f, h->lo), fy(f, 0));
    for (int i = 0; i < h->bins; i++) {
        double y = fy(f, (double)h->counts[i]);
        fprintf(o, "%.1f,%.1f %.1f,%.1f ", fx(f, h->lo + i * w), y, fx(f, h->lo + (i + 1) * w), y);
    }
    fprintf(o, "%.1f,%.1f'/>\n", fx(f, h->hi), fy(f, 0));
}

static uint64_t hmax(const qb_histogram *h)
{
    uint64_t m = 0;
    for (int i = 0; i < h->bins; i++) m = h->counts[i] > m ? h->counts[i] : m;
    return m;
}

static void svg(FILE *o, const tui_session *s)
{
    const qb_analysis *a = &s->an;
    char cb[200];
    fprintf(o, "<svg xmlns='http://www.w3.org/2000/svg' width='900' height='960' font-family='sans-serif'>\n"
               "<rect width='100%%' height='100%%' fill='white'/>\n");
    fprintf(o, "<text x='%.0f' y='26' font-size='18' font-weight='bold'>%s: %s</text>\n", PX, tui_sel(s)->name,
            tui_choice_text(s, cb, sizeof cb));
    fprintf(o, "<text x='%.0f' y='46' font-size='14'>SQNR %.2f dB, RMSE %.3e, max error %.3g, %.3f bits/weight</text>\n",
            PX, a->stats.sqnr_db, a->stats.rmse, a->stats.max_abs_err, a->stats.bpw);
    uint64_t mo = hmax(&a->hist_orig), mq = hmax(&a->hist_deq);
    frame f = {a->hist_orig.lo, a->hist_orig.hi, 0, (double)(mo > mq ? mo : mq), 90, s->log_hist};
    axes(o, &f, "values", "original (blue), dequantized (magenta)");
    hist(o, &f, &a->hist_orig, "#3b82f6", "#1d4ed8");
    hist(o, &f, &a->hist_deq, "none", "#c026d3");
    frame g = {a->hist_orig.lo, a->hist_orig.hi, a->hist_orig.lo, a->hist_orig.hi, 390, false};
    if (s->zoom_map) {
        double r = fmax(fabs(g.x0), fabs(g.x1)) / 8;
        g.x0 = g.y0 = -r, g.x1 = g.y1 = r;
    }
    axes(o, &g, "mapping: original \u2192 quantized", "quantized (magenta), y = x (dashed)");
    fprintf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#666' stroke-dasharray='6,5'/>\n", fx(&g, g.x0),
            fy(&g, g.y0), fx(&g, g.x1), fy(&g, g.y1));
    for (int i = 0; i < a->n_map; i++)
        if (a->map_x[i] >= g.x0 && a->map_x[i] <= g.x1)
            fprintf(o, "<circle cx='%.1f' cy='%.1f' r='1.3' fill='#c026d3'/>\n", fx(&g, a->map_x[i]), fy(&g, a->map_y[i]));
    frame e = {a->hist_err.lo, a->hist_err.hi, 0, (double)hmax(&a->hist_err), 690, s->log_hist};
    axes(o, &e, "error: original \u2212 dequantized", "");
    hist(o, &e, &a->hist_err, "#ef4444", "#b91c1c");
    fprintf(o, "</svg>\n");
}

bool tui_plot_export(tui_session *s, const char *path)
{
    size_t n = strlen(path);
    if (n < 4 || strcmp(path + n - 4, ".svg")) {
        tui_status(s, true, "plot: %s: only .svg is written", path);
        return false;
    }
    if (!s->have_an) {
        tui_status(s, true, "plot: no analysis to draw yet");
        return false;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    if (!o) return false;
    svg(o, s);
    fclose(o);
    qb_atomic_file f;
    qb_status st = qb_atomic_begin(&s->ctx, path, &f);
    if (st == QB_OK && !qb_atomic_write(&f, buf, len)) {
        qb_atomic_abort(&f);
        st = qb_fail(&s->ctx, QB_ERR_IO, "%s: write failed", path);
    } else if (st == QB_OK) st = qb_atomic_commit(&s->ctx, &f);
    free(buf);
    if (st != QB_OK) tui_status(s, true, "plot: %s", qb_ctx_errmsg(&s->ctx));
    else tui_status(s, false, "plots written to %s", path);
    return st == QB_OK;
}
