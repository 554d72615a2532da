/* present.c — presentation mode (present.h): big labels from a 3×5 dot font drawn with
 * half-block characters, and the plots filling the screen. */
#include "tui/panels/present.h"
#include "tui/controllers/analysis.h"
#include "tui/widgets/crt.h"
#include "tui/panels/plots.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int tui_present_next_bits(int bits)
{
    static const int seq[5] = {8, 6, 4, 3, 2};
    for (int i = 0; i < 5; i++)
        if (bits > seq[i]) return seq[i];
    return seq[0];
}

/* 3×5 glyphs, one row per 3 bits (MSB left) */
static const char *glyph_chars = "0123456789.-";
static const unsigned char glyphs[][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1}, {7, 4, 7, 1, 7},
    {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}, {0, 0, 0, 0, 2}, {0, 0, 7, 0, 0},
};

/* Big text (3 rows tall); characters without a glyph are written normally on the middle row.
 * Returns the columns used. */
static int big(WINDOW *win, int y, int x, const char *text, int attr)
{
    int x0 = x;
    wattron(win, attr);
    for (const char *p = text; *p; p++) {
        const char *g = strchr(glyph_chars, *p);
        if (!g || !*p) {
            mvwaddch(win, y + 1, x, (chtype)(unsigned char)*p);
            x += 1;
            continue;
        }
        const unsigned char *b = glyphs[g - glyph_chars];
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++) {
                int up = (b[2 * r] >> (2 - c)) & 1, dn = r < 2 ? (b[2 * r + 1] >> (2 - c)) & 1 : 0;
                mvwaddstr(win, y + r, x + c, up && dn ? "\u2588" : up ? "\u2580" : dn ? "\u2584" : " ");
            }
        x += 4;
    }
    wattroff(win, attr);
    return x - x0;
}

void tui_present_draw(WINDOW *win, const tui_session *s)
{
    int H, W;
    getmaxyx(win, H, W);
    werase(win);
    char b[64], cb[160];
    int x = 2;
    snprintf(b, sizeof b, "%d", s->custom ? s->fmt.bits : s->bits);
    x += big(win, 0, x, b, crt_color(CRT_QUANT) | A_BOLD);
    mvwaddstr(win, 1, x, " bit   ");
    x += 7;
    if (s->have_an) {
        mvwaddstr(win, 1, x, "SQNR ");
        x += 5;
        if (isinf(s->an.stats.sqnr_db)) snprintf(b, sizeof b, "99");
        else snprintf(b, sizeof b, "%.1f", s->an.stats.sqnr_db);
        x += big(win, 0, x, b, crt_color(CRT_TITLE) | A_BOLD);
        mvwaddstr(win, 1, x, " dB   ");
        x += 6;
        mvwprintw(win, 1, x, "RMSE %.2e", s->an.stats.rmse);
    }
    mvwprintw(win, 3, 2, "%s \u2014 %s%s", tui_sel(s)->name, tui_choice_text(s, cb, sizeof cb),
              s->autoplay ? "   \u25b6 auto-play" : "");
    if (tui_analysis_pending(s)) waddstr(win, " \u2026");
    tui_plots_area(win, s, 4, 0, H - 4, W);
    wnoutrefresh(win);
}
