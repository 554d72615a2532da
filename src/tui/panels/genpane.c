/* genpane.c — the generation pane (genpane.h). */
#include "tui/panels/genpane.h"
#include "tui/widgets/crt.h"

#include <string.h>

/* Print text[0..len) on one row from column x, at most w cells, control bytes as spaces;
 * returns the column reached. */
static int put(WINDOW *win, int y, int x, int w, const char *text, int len, int attr)
{
    char buf[4096];
    int n = 0;
    for (int i = 0; i < len && n < (int)sizeof buf - 1; i++)
        buf[n++] = (unsigned char)text[i] < 32 ? ' ' : text[i];
    buf[n] = 0;
    wattron(win, attr);
    mvwaddnstr(win, y, x, buf, -1);
    wattroff(win, attr);
    int cy, cx;
    getyx(win, cy, cx);
    (void)w;
    return cy == y ? cx : x + w;
}

static void side(WINDOW *win, int y, int W, const char *label, const tui_gen_side *g)
{
    wattron(win, A_BOLD);
    mvwprintw(win, y, 0, " %-5s\u2502", label);
    wattroff(win, A_BOLD);
    int x = 7, tail = 14, w = W - x - tail;
    if (w < 10) return;
    /* the tail of the text that fits (streaming keeps the newest tokens visible) */
    const char *t = g->text;
    int len = (int)strlen(t), start = len > w ? len - w : 0;
    if (g->div_byte >= 0 && g->div_byte < start) start = g->div_byte > w / 3 ? g->div_byte - w / 3 : 0;
    while (start > 0 && start < len && (t[start] & 0xC0) == 0x80) start++;
    WINDOW *sub = derwin(win, 1, w, y, x);
    if (!sub) return;
    if (g->div_byte >= 0 && g->div_byte >= start) {
        int cx = put(sub, 0, 0, w, t + start, g->div_byte - start, 0);
        /* the diverging token: up to the next token's offset */
        int end = len;
        for (int i = 0; i < g->n_ids; i++)
            if (g->off[i] == g->div_byte && i + 1 < g->n_ids) end = g->off[i + 1];
        cx = put(sub, 0, cx, w, t + g->div_byte, end - g->div_byte, crt_color(CRT_DIVERGE) | A_BOLD);
        put(sub, 0, cx, w, t + end, len - end, 0);
    } else {
        put(sub, 0, 0, w, t + start, len - start, 0);
    }
    wnoutrefresh(sub);
    delwin(sub);
    if (g->done) mvwprintw(win, y, W - tail, "%8.1f t/s", g->tps);
    else if (g->n_ids) mvwprintw(win, y, W - tail, "%8s", "\u2026");
}

void tui_genpane_draw(WINDOW *win, const tui_session *s)
{
    int H, W;
    getmaxyx(win, H, W);
    werase(win);
    mvwhline(win, 0, 0, ACS_HLINE, W);
    wattron(win, A_BOLD);
    mvwprintw(win, 0, 1, " generation ");
    wattroff(win, A_BOLD);
    wprintw(win, "prompt \"%.*s\" (G runs, :gen TEXT)", W - 40 > 0 ? W - 40 : 0, s->prompt);
    if (H < 3) {
        wnoutrefresh(win);
        return;
    }
    if (s->demo) {
        mvwprintw(win, 1, 1, "generation needs a real model with a tokenizer: the demo only has synthetic tensors.");
        mvwprintw(win, 2, 1, "Open one with :open PATH (GGUF, llama2.c .bin, or a Hugging Face directory).");
    } else if (!s->gen_shown) {
        mvwprintw(win, 1, 1, "G: the full-precision model and the plan continue the prompt side by side.");
    } else {
        side(win, 1, W, "base", &s->gen[0]);
        side(win, 2, W, "plan", &s->gen[1]);
    }
    wnoutrefresh(win);
}
