/* metrics.c — the metrics panel (metrics.h). */
#include "tui/panels/metrics.h"
#include "tui/controllers/analysis.h"
#include "tui/controllers/methodan.h"
#include "tui/widgets/crt.h"

#include "core/method/method.h"
#include "core/calib/calib.h"

#include <math.h>
#include <stdio.h>

const char *tui_bytes(double b, char *buf, size_t cap)
{
    if (b >= 1024.0 * 1024 * 1024) snprintf(buf, cap, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024) snprintf(buf, cap, "%.2f MiB", b / (1024.0 * 1024));
    else if (b >= 1024) snprintf(buf, cap, "%.1f KiB", b / 1024);
    else snprintf(buf, cap, "%.0f B", b);
    return buf;
}

static void head(WINDOW *win, int y, const char *text)
{
    wattron(win, crt_color(CRT_TITLE) | A_BOLD);
    mvwaddstr(win, y, 1, text);
    wattroff(win, crt_color(CRT_TITLE) | A_BOLD);
}

void tui_metrics_draw(WINDOW *win, const tui_session *s)
{
    int H, W;
    getmaxyx(win, H, W);
    (void)W;
    werase(win);
    int y = 0;
    char a[32], b[32];
    const bool wv = tui_weighted_shown(s);
    if (wv) head(win, y++, s->an_preview ? "importance-weighted (preview)" : "importance-weighted (w)");
    else if (s->train_an_step > 0) {
        char t[64];
        snprintf(t, sizeof t, "as trained, step %d", s->train_an_step);
        head(win, y++, t);
    } else head(win, y++, s->an_preview ? "this tensor (preview)" : "this tensor at the choice");
    if (s->weighted_view && s->have_an && !s->an.weighted) mvwprintw(win, y++, 1, "(no importance: plain)");
    if (s->have_an) {
        const qb_error_stats *e = wv ? &s->an.wstats : &s->an.stats;
        if (tui_analysis_pending(s)) wattron(win, A_DIM);
        mvwprintw(win, y++, 1, "MSE       %.3e", e->mse);
        mvwprintw(win, y++, 1, "RMSE      %.3e", e->rmse);
        mvwprintw(win, y++, 1, "max err   %.4g", e->max_abs_err);
        if (isinf(e->sqnr_db)) mvwprintw(win, y++, 1, "SQNR      exact");
        else mvwprintw(win, y++, 1, "SQNR      %.2f dB", e->sqnr_db);
        mvwprintw(win, y++, 1, "rel err   %.3e", e->rel_err);
        mvwprintw(win, y++, 1, "cosine    %.6f", e->cosine);
        if (wv) mvwprintw(win, y++, 1, "plain MSE %.3e", s->an.stats.mse);
        mvwprintw(win, y++, 1, "bits/wt   %.3f", e->bpw);
        mvwprintw(win, y++, 1, "bytes     %s \u2192 %s", tui_bytes((double)e->bytes_src / 2, a, sizeof a),
                  tui_bytes((double)e->bytes_quant, b, sizeof b));
        mvwprintw(win, y++, 1, "          (F16 \u2192 choice)");
        if (s->an_method != QB_METHOD_RTN) { /* what calibration methods are about */
            const char *name = tui_method_display(s->an_method);
            mvwprintw(win, y++, 1, "output err \u2016(W\u2212Q)X\u2016\u00b2/\u2016WX\u2016\u00b2");
            mvwprintw(win, y++, 1, "  %-7s %.4e", name, s->an_oerr);
            mvwprintw(win, y++, 1, "  RTN     %.4e", s->an_oerr_rtn);
            if (s->an_method == QB_METHOD_AWQ && !isnan(s->an_alpha))
                mvwprintw(win, y++, 1, "  \u03b1       %.2f", (double)s->an_alpha);
        }
        wattroff(win, A_DIM);
    } else {
        mvwprintw(win, y++, 1, "\u2026");
    }
    y++;
    const qb_model_size *z = &s->size;
    head(win, y++, "model at the plan");
    mvwprintw(win, y++, 1, "size      %s", tui_bytes((double)z->bytes, a, sizeof a));
    mvwprintw(win, y++, 1, "F16       %s", tui_bytes((double)z->bytes_f16, a, sizeof a));
    mvwprintw(win, y++, 1, "F32       %s", tui_bytes((double)z->bytes_f32, a, sizeof a));
    mvwprintw(win, y++, 1, "bits/wt   %.3f", z->bpw);
    mvwprintw(win, y++, 1, "params    %.2fM", z->params / 1e6);
    mvwprintw(win, y++, 1, "rules     %d", s->plan.n_rules);
    if (s->calib) mvwprintw(win, y++, 1, "calib     %d x %d tok", s->calib->n_windows, s->calib->n_ctx);
    int el, ee;
    int64_t etok;
    double eshare;
    if (s->calib && qb_calib_expert_usage(s->calib, s->m, tui_sel(s), &el, &ee, &etok, &eshare))
        mvwprintw(win, y++, 1, "expert    %d/%d: %lld tok (%.1f%%)", ee, s->m->cfg.n_experts, (long long)etok,
                  100.0 * eshare);
    if (s->act_desc[0]) mvwprintw(win, y++, 1, "act       %.*s", W - 12 > 0 ? W - 12 : 0, s->act_desc);
    if (y + 4 < H) {
        y++;
        head(win, y++, "projected at this bpw");
        static const char *names[3] = {" 7B", "13B", "70B"};
        for (int k = 0; k < 3; k++) mvwprintw(win, y++, 1, "%s       %.1f GiB", names[k], z->proj_gib[k]);
    }
    if (s->have_eval && y + 2 < H) {
        const qb_kld_result *r = &s->eval;
        y++;
        head(win, y++, "plan vs base");
        mvwprintw(win, y++, 1, "PPL base  %.3f", r->base.ppl);
        mvwprintw(win, y++, 1, "PPL plan  %.3f (%+.3f)", r->other.ppl, r->dppl);
        mvwprintw(win, y++, 1, "KLD       %.5f", r->kld_mean);
        mvwprintw(win, y++, 1, "top-1     %.1f%%", r->top1_pct);
        mvwprintw(win, y++, 1, "(%d chunks of %d)", r->other.n_chunks, r->other.n_ctx);
    }
    wnoutrefresh(win);
}
