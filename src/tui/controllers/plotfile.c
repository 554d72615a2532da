/* plotfile.c — plots of the selection as SVG/PNG/PDF files through core/plot (plotfile.h). */
#include "tui/controllers/plotfile.h"
#include "tui/panels/plots.h"
#include "tui/controllers/analysis.h"

#include "core/plot/plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bin centres and counts of a histogram as doubles (malloc'd pair, caller frees x). */
static bool hist_xy(const qb_histogram *h, double **x, double **y)
{
    *x = malloc(2 * (size_t)h->bins * sizeof **x);
    if (!*x) return false;
    *y = *x + h->bins;
    double w = (h->hi - h->lo) / h->bins;
    for (int i = 0; i < h->bins; i++) (*x)[i] = h->lo + (i + 0.5) * w, (*y)[i] = (double)h->counts[i];
    return true;
}

static qb_status write_one(tui_session *s, const qb_plot *p, const char *stem, const char *what, const char *ext)
{
    char path[1200];
    snprintf(path, sizeof path, "%s-%s%s", stem, what, ext);
    return qb_plot_write(&s->ctx, p, path);
}

bool tui_plot_export(tui_session *s, const char *path)
{
    const char *ext = strrchr(path, '.');
    if (!ext || (strcmp(ext, ".svg") && strcmp(ext, ".png") && strcmp(ext, ".pdf"))) {
        tui_status(s, true, "plot: %s: name a .svg, .png or .pdf file", path);
        return false;
    }
    if (!s->have_an) {
        tui_status(s, true, "plot: no analysis to draw yet");
        return false;
    }
    char stem[1024], choice[160], title[400];
    snprintf(stem, sizeof stem, "%.*s", (int)(ext - path), path);
    tui_choice_text(s, choice, sizeof choice);
    const qb_analysis *a = &s->an;
    double *ox = NULL, *oy, *qx = NULL, *qy, *ex = NULL, *ey, *mx = NULL, *my;
    qb_status st = QB_ERR_NOMEM;
    int n = a->n_map;
    const bool wv = tui_weighted_shown(s); /* the error plot as the screen shows it */
    const qb_histogram *he = wv ? &a->hist_werr : &a->hist_err;
    if (!hist_xy(&a->hist_orig, &ox, &oy) || !hist_xy(&a->hist_deq, &qx, &qy) || !hist_xy(he, &ex, &ey) ||
        !(mx = malloc(2 * (size_t)(n + 2) * sizeof *mx)))
        goto out;
    my = mx + n + 2;
    for (int i = 0; i < n; i++) mx[i] = a->map_x[i], my[i] = a->map_y[i];
    double lo = a->hist_orig.lo, hi = a->hist_orig.hi;
    double idx[2] = {lo, hi};
    snprintf(title, sizeof title, "%s, %s", tui_sel(s)->name, choice);
    qb_plot_series vs[2] = {{"original", QB_PLOT_BARS, false, a->hist_orig.bins, ox, oy},
                            {"dequantized", QB_PLOT_LINES, false, a->hist_deq.bins, qx, qy}};
    qb_plot p = {title, "value", "count", vs, 2, s->log_hist, 1000, 520};
    if ((st = write_one(s, &p, stem, "values", ext)) != QB_OK) goto out;
    snprintf(title, sizeof title, "mapping: original \u2192 quantized, %s", choice);
    qb_plot_series ms[2] = {{"quantized", QB_PLOT_STEPS, false, n, mx, my}, {"y = x", QB_PLOT_LINES, true, 2, idx, idx}};
    p = (qb_plot){title, "original", "quantized", ms, 2, false, 1000, 520};
    if ((st = write_one(s, &p, stem, "mapping", ext)) != QB_OK) goto out;
    if (wv) snprintf(title, sizeof title, "error, importance-weighted, SQNR %.2f dB, %s", a->wstats.sqnr_db, choice);
    else snprintf(title, sizeof title, "error, SQNR %.2f dB, %s", a->stats.sqnr_db, choice);
    qb_plot_series es[1] = {{wv ? "\u221a(w/w\u0304)\u00b7(original \u2212 dequantized)" : "original \u2212 dequantized",
                             QB_PLOT_BARS, false, he->bins, ex, ey}};
    p = (qb_plot){title, "error", "count", es, 1, s->log_hist, 1000, 520};
    st = write_one(s, &p, stem, "error", ext);
out:
    free(ox);
    free(qx);
    free(ex);
    free(mx);
    if (st == QB_ERR_NOMEM && !s->ctx.errmsg[0]) tui_status(s, true, "plot: out of memory");
    else if (st != QB_OK) tui_status(s, true, "plot: %s", qb_ctx_errmsg(&s->ctx));
    else tui_status(s, false, "plots written: %s-{values,mapping,error}%s", stem, ext);
    return st == QB_OK;
}
