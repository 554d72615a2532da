/* hit.h — where a mouse event lands in a scrolled list: the arithmetic the browser and the
 * sensitivity view share with their drawing (header-only and curses-free, so a unit test can
 * check it without a terminal). */
#ifndef QB_TUI_HIT_H
#define QB_TUI_HIT_H

/* The list row under window line y, for a list drawn from window line first_y, showing
 * `visible` lines starting at row `top`, of n rows; -1 when y is above, below, or past the end. */
static inline int tui_hit_row(int y, int first_y, int top, int n, int visible)
{
    if (y < first_y || y >= first_y + visible || top < 0) return -1;
    const int r = top + (y - first_y);
    return r < n ? r : -1;
}

/* The first row shown when the cursor is on row cursor and `visible` lines are shown (the
 * cursor sits on the last line once it goes past the first screen). */
static inline int tui_list_top(int visible, int cursor)
{
    if (visible < 1) visible = 1;
    return cursor >= visible ? cursor - (visible - 1) : 0;
}

/* Rows to scroll for one wheel step. */
#define TUI_WHEEL_ROWS 3

#endif
