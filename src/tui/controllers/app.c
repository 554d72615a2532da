/* app.c — `quantbench [MODEL]`: the workbench. Lays the panels out, reads keys (50 ms
 * timeout), routes them through the key table, drains the jobs' message queue, and draws
 * with wnoutrefresh + one doupdate per frame. QB_TUI_TRACE=FILE logs, per key, the time
 * from reading it to the doupdate that shows its result (scripts/bench-tui.sh). */
#include "tui/controllers/analysis.h"
#include "tui/panels/browser.h"
#include "tui/widgets/cmdline.h"
#include "tui/controllers/commands.h"
#include "tui/widgets/crt.h"
#include "tui/panels/genpane.h"
#include "tui/panels/help.h"
#include "tui/panels/hit.h"
#include "tui/widgets/keymap.h"
#include "tui/controllers/methods.h"
#include "tui/panels/metrics.h"
#include "tui/panels/plots.h"
#include "tui/panels/present.h"
#include "tui/panels/scanview.h"
#include "tui/controllers/script.h"
#include "tui/panels/status.h"
#include "tui/tui.h"

#include <curses.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIN_COLS 80
#define MIN_ROWS 20
#define BROWSER_W 40
#define METRICS_W 30
#define GEN_H 3

typedef struct {
    WINDOW *title, *browser, *plots, *metrics, *gen, *status, *cmd, *present;
    int rows, cols;
    bool small;
} layout;

typedef struct {
    int key;
    double t;
    int serial; /* the analysis this key waits for (0: none) */
    bool first; /* its first screen (a preview, or the full analysis) was logged */
} trace_entry;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void free_layout(layout *L)
{
    WINDOW **w[] = {&L->title, &L->browser, &L->plots, &L->metrics, &L->gen, &L->status, &L->cmd, &L->present};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        if (*w[i]) delwin(*w[i]);
        *w[i] = NULL;
    }
}

static void make_layout(layout *L, tui_session *s, tui_cmdline *cl)
{
    free_layout(L);
    getmaxyx(stdscr, L->rows, L->cols);
    L->small = L->cols < MIN_COLS || L->rows < MIN_ROWS;
    cl->win = NULL;
    if (L->small) return;
    int R = L->rows, C = L->cols;
    L->title = newwin(1, C, 0, 0);
    L->status = newwin(1, C, R - 2, 0);
    L->cmd = newwin(1, C, R - 1, 0);
    cl->win = L->cmd;
    int bw = C >= 140 ? BROWSER_W : 34, mw = C >= 140 ? METRICS_W + 4 : METRICS_W;
    int body = R - 3 - GEN_H;
    L->browser = newwin(body, bw, 1, 0);
    L->plots = newwin(body, C - bw - mw, 1, bw);
    L->metrics = newwin(body, mw, 1, C - mw);
    L->gen = newwin(GEN_H, C, 1 + body, 0);
    L->present = newwin(R - 3, C, 1, 0);
    int bins = tui_plots_bins(s->present ? C : C - bw - mw);
    if (bins != s->hist_bins) {
        s->hist_bins = bins;
        tui_request_analysis(s);
    }
}

static void draw(layout *L, tui_session *s, tui_cmdline *cl)
{
    if (L->small) {
        erase();
        mvprintw(0, 0, "Terminal too small (%dx%d):", L->cols, L->rows);
        mvprintw(1, 0, "enlarge the window");
        mvprintw(2, 0, "(at least %dx%d); q quits.", MIN_COLS, MIN_ROWS);
        wnoutrefresh(stdscr);
        doupdate();
        return;
    }
    tui_title_draw(L->title, s);
    if (s->present) {
        tui_present_draw(L->present, s);
    } else {
        tui_browser_draw(L->browser, s);
        if (s->scan_view) tui_scanview_draw(L->plots, s, s->scan_cursor);
        else tui_plots_draw(L->plots, s);
        tui_metrics_draw(L->metrics, s);
        tui_genpane_draw(L->gen, s);
    }
    tui_status_draw(L->status, s);
    if (cl->matches[0] && cl->active) {
        werase(L->status);
        mvwprintw(L->status, 0, 1, "%.*s", L->cols - 2, cl->matches);
        wnoutrefresh(L->status);
    }
    if (s->help) tui_help_draw(s, L->rows, L->cols);
    if (cl->active) {
        curs_set(1);
        tui_cmdline_draw(cl);
    } else {
        curs_set(0);
        werase(L->cmd);
        wnoutrefresh(L->cmd);
    }
    doupdate();
}

/* Step the choice: bits/method/granularity keys. */
static void change(tui_session *s, tui_action a)
{
    int n;
    tui_methods(&n);
    if (s->custom && (a == ACT_BITS_LESS || a == ACT_BITS_MORE || a == ACT_GROUP_NEXT || a == ACT_GROUP_PREV))
        s->custom = false; /* back to the method table from a direct format */
    switch (a) {
    case ACT_METHOD_NEXT: s->method = (s->method + 1) % n, s->custom = false; break;
    case ACT_METHOD_PREV: s->method = (s->method + n - 1) % n, s->custom = false; break;
    case ACT_BITS_LESS: s->bits = tui_method_step_bits(s->method, s->bits, -1); break;
    case ACT_BITS_MORE: s->bits = tui_method_step_bits(s->method, s->bits, +1); break;
    case ACT_GROUP_NEXT: s->group = tui_method_step_group(s->method, s->group, +1); break;
    case ACT_GROUP_PREV: s->group = tui_method_step_group(s->method, s->group, -1); break;
    default: return;
    }
    tui_choice_changed(s);
}

static void present_step(tui_session *s)
{
    s->custom = false;
    s->bits = tui_present_next_bits(s->bits);
    /* a method without this width (NF4, MXFP4 …) steps within what it offers */
    s->bits = tui_method_nearest_bits(s->method, s->bits);
    tui_choice_changed(s);
}

/* Keys of the sensitivity view: move its cursor, Enter jumps to the tensor (a layer's row:
 * its most sensitive tensor), l / h cycle the grouping (tensor, layer sum, layer max). True
 * if used. */
static bool scan_key(tui_session *s, tui_action a)
{
    tui_scan_row *rows = malloc((size_t)s->m->n_tensors * sizeof *rows);
    if (!rows) return false;
    int n = tui_scan_rows(s, rows), c = s->scan_cursor;
    bool used = true;
    switch (a) {
    case ACT_DOWN: c++; break;
    case ACT_UP: c--; break;
    case ACT_PGDN: c += 10; break;
    case ACT_PGUP: c -= 10; break;
    case ACT_UNFOLD:
    case ACT_FOLD:
        s->scan_agg = (s->scan_agg + (a == ACT_UNFOLD ? 1 : TUI_SCAN_MODES - 1)) % TUI_SCAN_MODES;
        c = 0;
        n = tui_scan_rows(s, rows);
        break;
    case ACT_FOLD_TOGGLE:
        if (c < n) {
            int t = tui_scan_target(s, &rows[c]);
            if (t >= 0) tui_select(s, t);
        }
        s->scan_view = false;
        break;
    default: used = false;
    }
    s->scan_cursor = c < 0 ? 0 : c >= n ? (n ? n - 1 : 0) : c;
    free(rows);
    return used;
}

/* A mouse event: a click on a browser row selects that tensor (on a layer's row: folds or
 * unfolds it), a click on a row of the sensitivity view jumps there, the wheel moves through
 * the list under the pointer. */
static void on_mouse(tui_session *s, layout *L)
{
    MEVENT ev;
    if (getmouse(&ev) != OK) return;
    const bool up = ev.bstate & BUTTON4_PRESSED, down = ev.bstate & BUTTON5_PRESSED;
    const bool click = ev.bstate & BUTTON1_PRESSED;
    int y = ev.y, x = ev.x;
    if (s->scan_view && L->plots && wenclose(L->plots, y, x)) {
        wmouse_trafo(L->plots, &y, &x, FALSE);
        for (int k = 0; (up || down) && k < TUI_WHEEL_ROWS; k++) scan_key(s, up ? ACT_UP : ACT_DOWN);
        if (!click) return;
        tui_scan_row *rows = malloc((size_t)s->m->n_tensors * sizeof *rows);
        if (!rows) return;
        const int n = tui_scan_rows(s, rows), H = getmaxy(L->plots);
        free(rows);
        const int r = tui_hit_row(y, 2, tui_scanview_top(H, s->scan_cursor), n, H - 2);
        if (r < 0) return;
        s->scan_cursor = r;
        scan_key(s, ACT_FOLD_TOGGLE); /* jump, as Enter does */
        return;
    }
    if (!L->browser || !wenclose(L->browser, y, x)) return;
    wmouse_trafo(L->browser, &y, &x, FALSE);
    if (up || down) {
        tui_browser_move(s, up ? -TUI_WHEEL_ROWS : TUI_WHEEL_ROWS);
        return;
    }
    if (!click) return;
    const int cap = 2 * s->m->n_tensors + 2;
    tui_row *rows = malloc((size_t)cap * sizeof *rows);
    if (!rows) return;
    const int n = tui_browser_rows(s, rows, cap);
    const int r = tui_hit_row(y, 1, s->top, n, getmaxy(L->browser) - 1);
    const bool header = r >= 0 && rows[r].tensor < 0;
    free(rows);
    if (r < 0) return;
    tui_browser_move(s, r - s->cursor); /* on a tensor's row: selects it */
    if (header) tui_browser_fold(s, -1);
}

/* One key outside the command line. Returns false when the key was not for us. */
static void on_key(tui_session *s, tui_cmdline *cl, layout *L, int key)
{
    if (s->help) { /* j/k, arrows and pages scroll the help; any other key closes it */
        const int max_top = tui_help_max_top(L->rows, L->cols), page = L->rows > 8 ? L->rows - 6 : 1;
        int top = s->help_top;
        switch (key) {
        case 'j': case KEY_DOWN: top++; break;
        case 'k': case KEY_UP: top--; break;
        case ' ': case KEY_NPAGE: top += page; break;
        case KEY_PPAGE: top -= page; break;
        default: s->help = false; top = 0; break;
        }
        s->help_top = top < 0 ? 0 : top > max_top ? max_top : top;
        return;
    }
    if (s->quit_asked) {
        s->quit_asked = false;
        if (key == 'y' || key == 'Y') s->quit = true;
        else tui_status(s, false, "staying");
        return;
    }
    if (s->apply_pending) {
        s->apply_pending = 0;
        if (key == 't' || key == 'k' || key == 'l' || key == 'm') tui_apply(s, (char)key);
        else tui_status(s, false, "apply: nothing done");
        return;
    }
    if (L->small) {
        if (key == 'q') s->quit = true;
        return;
    }
    if (key == KEY_MOUSE) {
        on_mouse(s, L);
        return;
    }
    int page = L->browser ? getmaxy(L->browser) - 2 : 10;
    tui_action a = tui_key_action(key);
    if (s->scan_view && scan_key(s, a)) return;
    if (s->present && key == 'n') a = ACT_STEP;
    switch (a) {
    case ACT_DOWN: tui_browser_move(s, 1); break;
    case ACT_UP: tui_browser_move(s, -1); break;
    case ACT_PGDN: tui_browser_move(s, page); break;
    case ACT_PGUP: tui_browser_move(s, -page); break;
    case ACT_HOME: tui_browser_move(s, -1000000); break;
    case ACT_END: tui_browser_move(s, 1000000); break;
    case ACT_FOLD_TOGGLE: tui_browser_fold(s, -1); break;
    case ACT_FOLD: tui_browser_fold(s, 0); break;
    case ACT_UNFOLD: tui_browser_fold(s, 1); break;
    case ACT_SEARCH: tui_cmdline_open(cl, '/'); break;
    case ACT_SEARCH_NEXT: tui_search(s, s->search); break;
    case ACT_METHOD_NEXT: case ACT_METHOD_PREV: case ACT_BITS_LESS: case ACT_BITS_MORE:
    case ACT_GROUP_NEXT: case ACT_GROUP_PREV: change(s, a); break;
    case ACT_LOG: s->log_hist = !s->log_hist; break;
    case ACT_ZOOM: s->zoom_map = !s->zoom_map; break;
    case ACT_WEIGHTED: tui_weighted_toggle(s); break;
    case ACT_APPLY: s->apply_pending = 1; break;
    case ACT_UNDO: tui_undo(s); break;
    case ACT_REDO: tui_redo(s); break;
    case ACT_GENERATE: tui_generate(s, NULL); break;
    case ACT_PPL: tui_perplexity(s, 0); break;
    case ACT_PRESENT:
        s->present = !s->present;
        s->autoplay = false;
        make_layout(L, s, cl);
        break;
    case ACT_STEP: present_step(s); break;
    case ACT_AUTOPLAY:
        s->autoplay = !s->autoplay;
        s->autoplay_next = now() + TUI_AUTOPLAY_SECONDS;
        break;
    case ACT_SCAN:
        s->scan_view = !s->scan_view;
        s->scan_cursor = 0;
        break;
    case ACT_COMMAND: tui_cmdline_open(cl, ':'); break;
    case ACT_HELP: s->help = true; break;
    case ACT_QUIT: s->quit = true; break;
    default: break;
    }
}

static void on_interrupt(tui_session *s, tui_cmdline *cl)
{
    if (cl->active) {
        tui_cmdline_key(cl, 3);
        return;
    }
    if (tui_script_cancel(s)) return;
    if (tui_cancel(s)) return;
    if (tui_analysis_cancel(s)) return;
    if (s->quit_asked) { /* a third Ctrl-C while asked: quit */
        s->quit = true;
        return;
    }
    s->quit_asked = true;
}

static const char *names(void *ud, int i)
{
    const tui_session *s = ud;
    return i < s->m->n_tensors ? s->m->tensors[i].name : NULL;
}

static void trace_key(tui_session *s, trace_entry *pend, int *n_pend, int key, double t, int serial_before)
{
    if (!s->trace) return;
    if (*n_pend == 64) return;
    pend[(*n_pend)++] = (trace_entry){key, t, s->serial != serial_before ? s->serial : 0, false};
}

static void trace_flush(tui_session *s, trace_entry *pend, int *n_pend)
{
    if (!s->trace || !*n_pend) return;
    double t = now();
    char fname[64];
    qb_format_name(&s->fmt, fname, sizeof fname);
    int k = 0;
    for (int i = 0; i < *n_pend; i++) {
        trace_entry *e = &pend[i];
        if (e->serial && s->shown_serial < e->serial) {
            pend[k++] = *e; /* still waiting for its analysis */
            continue;
        }
        const char *kn = keyname(e->key);
        bool preview = e->serial && s->shown_serial == e->serial && s->an_preview;
        /* stage: first = the first screen showing the key's effect (a preview on large
           tensors), full = the complete analysis; keys that need none log "first" only */
        if (!e->first)
            fprintf(s->trace, "key=%s fmt=%s tensor=%s analysis=%d stage=first ms=%.2f\n", kn ? kn : "?", fname,
                    tui_sel(s)->name, e->serial != 0, (t - e->t) * 1e3);
        if (preview) {
            e->first = true;
            pend[k++] = *e;
            continue;
        }
        if (e->serial)
            fprintf(s->trace, "key=%s fmt=%s tensor=%s analysis=1 stage=full ms=%.2f\n", kn ? kn : "?", fname,
                    tui_sel(s)->name, (t - e->t) * 1e3);
    }
    *n_pend = k;
    fflush(s->trace);
}

qb_status tui_run(qb_ctx *ctx, qb_model *m, const tui_opts *o)
{
    tui_session *s = calloc(1, sizeof *s);
    if (!s) {
        qb_model_close(m);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    }
    qb_status st = tui_session_init(s, m);
    if (st != QB_OK) {
        qb_fail(ctx, st, "%s", qb_ctx_errmsg(&s->ctx));
        free(s);
        return st;
    }
    s->present = o->present;
    if (o->trace_path && *o->trace_path && !(s->trace = fopen(o->trace_path, "w"))) {
        tui_session_free(s);
        free(s);
        return qb_fail(ctx, QB_ERR_IO, "QB_TUI_TRACE: cannot write %s", o->trace_path);
    }
    if (crt_init() != 0) {
        tui_session_free(s);
        free(s);
        return qb_fail(ctx, QB_ERR_IO, "cannot initialise the terminal (is TERM set?)");
    }
    s->interrupt = crt_interrupt_flag();
    tui_cmdline cl;
    tui_cmdline_init(&cl);
    cl.names = names;
    cl.names_ud = s;
    layout L = {0};
    make_layout(&L, s, &cl);
    timeout(0); /* the loop sleeps in poll() instead (keys and job messages wake it) */
    if (!m) tui_status(s, false, "built-in demo: synthetic tensors (:open PATH for a model, ? for help)");
    trace_entry pend[64];
    int n_pend = 0;
    double last_tick = 0;
    draw(&L, s, &cl);
    while (!s->quit) {
        int key = getch(); /* timeout 0: what curses has buffered comes first */
        if (key == ERR) { /* sleep until a key, a job's message, a signal, or 50 ms */
            struct pollfd fds[2] = {{0, POLLIN, 0}, {qb_msg_queue_fd(s->q), POLLIN, 0}};
            poll(fds, fds[1].fd >= 0 ? 2 : 1, 50);
            key = getch();
        }
        double t = now();
        bool dirty = false;
        while (crt_take_interrupt()) on_interrupt(s, &cl), dirty = true;
        if (key == KEY_RESIZE) {
            make_layout(&L, s, &cl);
            clearok(curscr, TRUE); /* repaint everything: nothing of the old size survives */
            dirty = true;
        } else if (key != ERR) {
            int before = s->serial;
            if (cl.active) {
                if (tui_cmdline_key(&cl, key)) {
                    if (cl.line) {
                        char *line = cl.line;
                        bool was_present = s->present;
                        cl.line = NULL;
                        if (cl.kind == '/') tui_search(s, line);
                        else tui_command_run(s, line);
                        free(line);
                        if (s->present != was_present) make_layout(&L, s, &cl); /* plot widths change */
                    }
                }
            } else if (key == 3) {
                on_interrupt(s, &cl);
            } else {
                on_key(s, &cl, &L, key);
            }
            trace_key(s, pend, &n_pend, key, t, before);
            dirty = true;
        }
        if (tui_drain(s)) dirty = true;
        if (s->autoplay && s->present && t >= s->autoplay_next) {
            present_step(s);
            s->autoplay_next = t + TUI_AUTOPLAY_SECONDS;
            dirty = true;
        }
        if (s->job && t - last_tick > 0.25) dirty = true; /* progress bar, ETA */
        if (dirty && !s->quit) {
            last_tick = t;
            draw(&L, s, &cl);
            trace_flush(s, pend, &n_pend);
        }
    }
    tui_cmdline_done(&cl);
    free_layout(&L);
    crt_done();
    tui_script_close(s);
    tui_session_free(s);
    free(s);
    return QB_OK;
}
