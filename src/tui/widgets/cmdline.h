/* cmdline.h — the command line at the bottom of the screen: GNU readline driven through its
 * callback interface (keys fed one at a time from the curses loop, the line drawn into a
 * curses window by our redisplay hook, readline's own terminal handling and signal handling
 * off), with history kept in $XDG_STATE_HOME/quantbench/history and completion of commands,
 * qb functions and tensor names. Used for `:` commands and `/` searches. */
#ifndef QB_TUI_CMDLINE_H
#define QB_TUI_CMDLINE_H

#include <curses.h>
#include <stdbool.h>

typedef struct tui_cmdline {
    bool active;
    char kind;              /* ':' command, '/' search */
    char *line;             /* the accepted line (malloc'd) once Enter was pressed, else NULL */
    bool cancelled;         /* Esc / Ctrl-C / Ctrl-D on an empty line */
    WINDOW *win;            /* where the line is drawn (borrowed from the layout) */
    char history[1024];     /* history file ("" when there is no state directory) */
    unsigned char pend[16]; /* bytes waiting for readline's getc hook */
    int n_pend, i_pend;
    /* completion candidates beyond the built-in words (tensor names): returns the i-th name
       or NULL; set by the owner */
    const char *(*names)(void *ud, int i);
    void *names_ud;
    char matches[256];      /* the last completion's candidates, shown above the line */
} tui_cmdline;

/* Set up readline for the callback interface and load the history. */
void tui_cmdline_init(tui_cmdline *c);
/* Save the history, remove the handler. */
void tui_cmdline_done(tui_cmdline *c);
/* Start editing a line of kind ':' or '/'. */
void tui_cmdline_open(tui_cmdline *c, char kind);
/* Feed one curses key. Returns true when editing ended: c->line holds the accepted line
 * (caller frees it and sets it NULL) or c->cancelled is set. */
bool tui_cmdline_key(tui_cmdline *c, int key);
/* Draw the line (when active) into c->win. */
void tui_cmdline_draw(tui_cmdline *c);

#endif
