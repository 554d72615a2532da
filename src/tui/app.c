/* app.c — `quantbench [MODEL]`: the workbench screen. For now a summary screen of the opened
 * model (or of the built-in demo when no model is given) while the full workbench (tensor
 * browser, plots, metrics) is built; q quits, the terminal is always restored. */
#include "crt.h"
#include "../app/cli.h"
#include "core/tokenizer/tokenizer.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

#define MIN_COLS 60
#define MIN_ROWS 12

static void draw(const qb_model *m)
{
    erase();
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    if (cols < MIN_COLS || rows < MIN_ROWS) {
        mvprintw(0, 0, "Terminal too small (%dx%d):", cols, rows);
        mvprintw(1, 0, "make the window larger (at least %dx%d).", MIN_COLS, MIN_ROWS);
        mvprintw(2, 0, "q quits.");
        refresh();
        return;
    }
    attron(A_BOLD | COLOR_PAIR(1));
    mvprintw(0, 0, " quantbench ");
    attroff(A_BOLD | COLOR_PAIR(1));
    if (m) {
        const qb_config *c = &m->cfg;
        printw("- %s (%.1fM params, %s)", m->name[0] ? m->name : m->path, qb_model_params(m) / 1e6,
               qb_file_kind_name(m->kind));
        mvprintw(2, 2, "dim %d  ffn %d  layers %d  heads %d/%d  vocab %d  context %d", c->dim, c->hidden_dim,
                 c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len);
        if (m->tok) mvprintw(3, 2, "tokenizer: %s", qb_tokenizer_describe(m->tok));
        int y = 5;
        for (int i = 0; i < m->n_tensors && y < rows - 3; i++, y++) {
            const qb_tensor *t = &m->tensors[i];
            const qb_type_info *ti = qb_type_get(t->src_type);
            mvprintw(y, 2, "%-30.30s %6lld x %-6lld %-5s", t->name, (long long)t->ne[1], (long long)t->ne[0],
                     ti ? ti->name : "?");
        }
    } else {
        printw("- built-in demo");
        mvprintw(2, 2, "No model given. Open one with: quantbench MODEL");
        mvprintw(3, 2, "(a GGUF file, a llama2.c .bin, or a Hugging Face directory)");
    }
    attron(COLOR_PAIR(2));
    mvprintw(rows - 1, 0, " q quit   the tensor browser, plots and metrics arrive with the workbench issue");
    attroff(COLOR_PAIR(2));
    refresh();
}

int cmd_tui(int argc, char **argv)
{
    const char *path = argc > 0 ? argv[0] : NULL;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (path && !(m = cli_open_model(&ctx, path, NULL))) return 1;
    if (crt_init() != 0) {
        qb_model_close(m);
        return cli_error("cannot initialise the terminal (is TERM set?)");
    }
    draw(m);
    for (;;) {
        int ch = getch();
        if (ch == 'q' || ch == 'Q') break;
        if (ch == KEY_RESIZE || ch != ERR) draw(m);
    }
    crt_done();
    qb_model_close(m);
    return 0;
}
