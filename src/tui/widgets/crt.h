/* crt.h — all curses setup and teardown in one place: UTF-8 locale, colours, keypad, the
 * input timeout, Ctrl-C delivered as a flag instead of a kill, and a terminal that is
 * restored on every exit path (normal return, errors, SIGTERM/SIGHUP, crashes). */
#ifndef QB_CRT_H
#define QB_CRT_H

#include <stdbool.h>

/* Colour pairs (0 when the terminal has no colours). */
enum {
    CRT_TITLE = 1, /* title bar, headings */
    CRT_HINT,      /* key hints */
    CRT_ERROR,     /* error messages */
    CRT_ORIG,      /* original values */
    CRT_QUANT,     /* quantized / dequantized values */
    CRT_IDEAL,     /* y = x */
    CRT_ERR,       /* error histogram */
    CRT_SEL,       /* selected row */
    CRT_HEAT,      /* sensitivity heat mark */
    CRT_GOOD,      /* finished, matching */
    CRT_DIVERGE,   /* first diverging token */
    CRT_BAR,       /* progress bar */
};

/* Enter curses mode; installs signal handlers that restore the terminal. Returns 0 on success. */
int crt_init(void);
/* Leave curses mode (idempotent). */
void crt_done(void);
/* Attribute for colour pair p (plain when there are no colours). */
int crt_color(int p);
/* True once per Ctrl-C since the last call (SIGINT is caught, never fatal in the UI). */
bool crt_take_interrupt(void);
/* The pending Ctrl-C count as a cancel flag for code that runs on the UI thread (Lua). */
const volatile int *crt_interrupt_flag(void);
/* Suspend curses for a moment (an external command) and come back. */
void crt_suspend(void);
void crt_resume(void);

#endif
