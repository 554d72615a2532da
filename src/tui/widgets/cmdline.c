/* cmdline.c — readline inside curses (cmdline.h). readline's callback interface keeps its
 * state in its own globals and calls back without a user pointer, so the one line being
 * edited is reached through `editing` below; the UI thread is the only caller. */
#include "tui/widgets/cmdline.h"

#include <errno.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static tui_cmdline *editing; /* readline's callbacks carry no user data */

static const char *words[] = {
    "open", "quit", "help", "w", "load", "export", "gen", "ppl", "tasks", "select", "set", "method", "bits", "group",
    "apply", "undo", "redo", "plot", "present", "heat", "calib", "act", "gptq", "awq", "smoothquant",
    "qb.select(", "qb.set{", "qb.apply(", "qb.ppl(", "qb.model(", "qb.generate(", "qb.export(", "qb.tensors(",
    "qb.undo(", "qb.redo(", "qb.status(", "qb.open(", "qb.heat(", "qb.calib(", NULL};

static int getc_hook(FILE *f)
{
    (void)f;
    if (!editing || editing->i_pend >= editing->n_pend) return EOF;
    return editing->pend[editing->i_pend++];
}

static int input_available(void) { return editing && editing->i_pend < editing->n_pend; }

static void on_line(char *line)
{
    if (!editing) {
        free(line);
        return;
    }
    if (!line) {
        editing->cancelled = true;
    } else {
        if (*line) {
            add_history(line);
            if (editing->history[0]) append_history(1, editing->history);
        }
        editing->line = line;
    }
    editing->active = false;
    rl_callback_handler_remove();
}

static void redisplay(void)
{
    if (editing) tui_cmdline_draw(editing);
}

static char *generator(const char *text, int state)
{
    static int i, j; /* readline's generator protocol: state 0 restarts the walk */
    if (!state) i = j = 0;
    size_t n = strlen(text);
    while (words[i]) {
        const char *w = words[i++];
        if (!strncmp(w, text, n)) return strdup(w);
    }
    if (editing && editing->names)
        for (const char *w; (w = editing->names(editing->names_ud, j)) != NULL;) {
            j++;
            if (!strncmp(w, text, n)) return strdup(w);
        }
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)start, (void)end;
    rl_attempted_completion_over = 1;
    return rl_completion_matches(text, generator);
}

static void show_matches(char **matches, int n, int maxlen)
{
    (void)maxlen;
    if (!editing) return;
    editing->matches[0] = 0;
    for (int i = 1; i <= n; i++) {
        size_t l = strlen(editing->matches);
        snprintf(editing->matches + l, sizeof editing->matches - l, "%s%s", i > 1 ? "  " : "", matches[i]);
    }
}

static void mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0700);
            *p = '/';
        }
}

void tui_cmdline_init(tui_cmdline *c)
{
    memset(c, 0, sizeof *c);
    rl_readline_name = "quantbench";
    rl_change_environment = 0; /* LINES/COLUMNS in the environment would pin curses' size */
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_prep_term_function = NULL;
    rl_deprep_term_function = NULL;
    rl_getc_function = getc_hook;
    rl_input_available_hook = input_available;
    rl_redisplay_function = redisplay;
    rl_attempted_completion_function = complete;
    rl_completion_display_matches_hook = show_matches;
    rl_completer_word_break_characters = " \t\"'(,={";
    rl_outstream = fopen("/dev/null", "w");
    const char *st = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (st && *st) snprintf(c->history, sizeof c->history, "%s/quantbench/history", st);
    else if (home && *home) snprintf(c->history, sizeof c->history, "%s/.local/state/quantbench/history", home);
    if (c->history[0]) {
        mkdirs(c->history);
        FILE *f = fopen(c->history, "a"); /* create it, so append_history works */
        if (f) fclose(f);
        using_history();
        read_history(c->history);
    }
}

void tui_cmdline_done(tui_cmdline *c)
{
    if (c->active) rl_callback_handler_remove();
    if (c->history[0]) history_truncate_file(c->history, 1000);
    if (rl_outstream && rl_outstream != stdout) fclose(rl_outstream);
    rl_outstream = NULL;
    free(c->line);
    c->line = NULL;
    c->active = false;
    if (editing == c) editing = NULL;
}

void tui_cmdline_open(tui_cmdline *c, char kind)
{
    editing = c;
    c->active = true;
    c->kind = kind;
    c->cancelled = false;
    c->matches[0] = 0;
    free(c->line);
    c->line = NULL;
    c->n_pend = c->i_pend = 0;
    rl_callback_handler_install("", on_line);
    tui_cmdline_draw(c);
}

#undef CTRL
#define CTRL(x) ((x) & 0x1f)

bool tui_cmdline_key(tui_cmdline *c, int key)
{
    if (!c->active) return true;
    if (key == 27 || key == CTRL('c') || key == CTRL('g')) { /* Esc, ^C: leave the line */
        rl_callback_handler_remove();
        c->active = false;
        c->cancelled = true;
        return true;
    }
    int k;
    switch (key) { /* curses keys to readline's emacs bindings: no escape sequences to time */
    case KEY_UP: k = CTRL('p'); break;
    case KEY_DOWN: k = CTRL('n'); break;
    case KEY_LEFT: k = CTRL('b'); break;
    case KEY_RIGHT: k = CTRL('f'); break;
    case KEY_HOME: k = CTRL('a'); break;
    case KEY_END: k = CTRL('e'); break;
    case KEY_BACKSPACE: case 8: k = 127; break;
    case KEY_DC: k = CTRL('d'); break;
    case KEY_ENTER: case '\n': k = '\r'; break;
    default: k = key; break;
    }
    if (k < 0 || k > 255) return false;
    if (k == CTRL('d') && rl_end > 0 && rl_point >= rl_end) return false; /* not EOF mid-line */
    editing = c;
    c->n_pend = c->i_pend = 0;
    c->pend[c->n_pend++] = (unsigned char)k;
    c->matches[0] = k == '\t' ? c->matches[0] : 0;
    while (c->active && c->i_pend < c->n_pend) rl_callback_read_char();
    return !c->active;
}

void tui_cmdline_draw(tui_cmdline *c)
{
    if (!c->win || !c->active) return;
    int H, W;
    getmaxyx(c->win, H, W);
    (void)H;
    werase(c->win);
    const char *buf = rl_line_buffer ? rl_line_buffer : "";
    int point = rl_point;
    /* keep the cursor visible: scroll the line left when it is longer than the window */
    int avail = W - 2, off = point > avail - 1 ? point - (avail - 1) : 0;
    mvwaddch(c->win, 0, 0, (chtype)c->kind);
    mvwaddnstr(c->win, 0, 1, buf + off, avail);
    wmove(c->win, 0, 1 + point - off);
    wnoutrefresh(c->win);
}
