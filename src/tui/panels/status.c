/* status.c — title bar and status bar (status.h). */
#include "tui/panels/status.h"
#include "tui/widgets/crt.h"
#include "tui/panels/metrics.h"
#include "tui/controllers/script.h"

#include <string.h>

static void job_bar(WINDOW *win, const tui_session *s, int W)
{
    double sel;
    if (!s->job && tui_script_running(s, &sel) && W - 44 >= 40) {
        mvwprintw(win, 0, W - 44, " script: running %.0fs (Ctrl-C stops it) ", sel);
        return;
    }
    if (!s->job) return;
    int done, total;
    qb_job_get_progress(s->job, &done, &total);
    double el = qb_job_elapsed(s->job);
    char eta[32] = "";
    const int bw = 12;
    int fill = total > 0 ? done * bw / total : ((int)(el * 4)) % bw;
    if (total > 0 && done > 0) snprintf(eta, sizeof eta, " ETA %.0fs", el / done * (total - done));
    int x = W - bw - 30;
    if (x < 40) return;
    mvwprintw(win, 0, x, " job: %s ", qb_job_name(s->job));
    wattron(win, crt_color(CRT_BAR));
    for (int i = 0; i < bw; i++) waddstr(win, total > 0 ? (i < fill ? "\u2593" : "\u2591") : (i == fill ? "\u2593" : "\u2591"));
    wattroff(win, crt_color(CRT_BAR));
    if (total > 0) wprintw(win, " %d%%%s", 100 * done / total, eta);
    else wprintw(win, " %.0fs", el);
}

void tui_title_draw(WINDOW *win, const tui_session *s)
{
    int H, W;
    getmaxyx(win, H, W);
    (void)H;
    werase(win);
    char a[32], b[32];
    wattron(win, crt_color(CRT_TITLE) | A_BOLD);
    mvwaddstr(win, 0, 0, " quantbench ");
    wattroff(win, crt_color(CRT_TITLE) | A_BOLD);
    const qb_model *m = s->m;
    wprintw(win, "\u2500 %s (%.1fM params) \u2500 plan: %.2f bpw, %s (F16 %s)%s", m->name[0] ? m->name : m->path,
            qb_model_params(m) / 1e6, s->size.bpw, tui_bytes((double)s->size.bytes, a, sizeof a),
            tui_bytes((double)s->size.bytes_f16, b, sizeof b), s->present ? " \u2500 presentation" : "");
    if (s->imatrix) wprintw(win, " \u2500 imatrix %s", s->imatrix_desc);
    job_bar(win, s, W);
    wnoutrefresh(win);
}

void tui_status_draw(WINDOW *win, const tui_session *s)
{
    int H, W;
    getmaxyx(win, H, W);
    (void)H;
    werase(win);
    if (s->quit_asked) {
        wattron(win, crt_color(CRT_HINT) | A_BOLD);
        mvwprintw(win, 0, 0, " Quit quantbench? y quits, any other key stays.");
        wattroff(win, crt_color(CRT_HINT) | A_BOLD);
    } else if (s->apply_pending) {
        wattron(win, crt_color(CRT_HINT) | A_BOLD);
        mvwprintw(win, 0, 0, " apply to: t this tensor  k every tensor of this kind  l this layer  m the whole model  (Esc: no)");
        wattroff(win, crt_color(CRT_HINT) | A_BOLD);
    } else if (s->status[0]) {
        int attr = s->status_err ? crt_color(CRT_ERROR) | A_BOLD : 0;
        wattron(win, attr);
        mvwprintw(win, 0, 0, " %.*s", W - 2, s->status);
        wattroff(win, attr);
    } else {
        wattron(win, crt_color(CRT_HINT));
        mvwprintw(win, 0, 0, " %.*s", W - 2,
                  s->present ? "space/n next bits  t auto-play  L log  z zoom  P leave  q quit"
                             : "j/k move  / search  m method  b/B bits  g group  a apply  u undo  G generate  p ppl  P present  : command  ? help  q quit");
        wattroff(win, crt_color(CRT_HINT));
    }
    wnoutrefresh(win);
}
