/* crt.c — curses initialisation, colours, Ctrl-C and terminal restoration on exit and on
 * signals. The two statics below are the only process-wide state of the TUI: a signal
 * handler can reach nothing else. */
#include "tui/widgets/crt.h"

#include <curses.h>
#include <locale.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t active;
static volatile sig_atomic_t interrupts;

static void restore_and_reraise(int sig)
{
    if (active) {
        endwin();
        active = 0;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_sigint(int sig)
{
    (void)sig;
    interrupts = interrupts + 1;
}

int crt_init(void)
{
    setlocale(LC_ALL, "");
    if (!newterm(NULL, stdout, stdin)) return -1;
    active = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = restore_and_reraise;
    int sigs[] = {SIGTERM, SIGHUP, SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGQUIT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
    sa.sa_handler = on_sigint; /* Ctrl-C cancels jobs inside the UI; it never kills the program */
    sigaction(SIGINT, &sa, NULL);
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    /* clicks select rows, the wheel scrolls (hit.h); Shift+drag still selects text in most
       terminals */
    mousemask(BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL);
    mouseinterval(0);
    curs_set(0);
    timeout(50);
    set_escdelay(25);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(CRT_TITLE, COLOR_CYAN, -1);
        init_pair(CRT_HINT, COLOR_YELLOW, -1);
        init_pair(CRT_ERROR, COLOR_RED, -1);
        init_pair(CRT_ORIG, COLOR_CYAN, -1);
        init_pair(CRT_QUANT, COLOR_MAGENTA, -1);
        init_pair(CRT_IDEAL, COLOR_WHITE, -1);
        init_pair(CRT_ERR, COLOR_RED, -1);
        init_pair(CRT_SEL, COLOR_BLACK, COLOR_CYAN);
        init_pair(CRT_HEAT, COLOR_RED, -1);
        init_pair(CRT_GOOD, COLOR_GREEN, -1);
        init_pair(CRT_DIVERGE, COLOR_WHITE, COLOR_RED);
        init_pair(CRT_BAR, COLOR_GREEN, -1);
    }
    return 0;
}

int crt_color(int p) { return has_colors() ? COLOR_PAIR(p) : (p == CRT_SEL || p == CRT_DIVERGE ? A_REVERSE : 0); }

bool crt_take_interrupt(void)
{
    if (!interrupts) return false;
    interrupts = interrupts - 1;
    return true;
}

const volatile int *crt_interrupt_flag(void) { return (const volatile int *)&interrupts; }

void crt_suspend(void)
{
    if (active) endwin();
}

void crt_resume(void)
{
    if (active) doupdate();
}

void crt_done(void)
{
    if (active) {
        endwin();
        active = 0;
    }
}
