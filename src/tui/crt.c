/* crt.c — curses initialisation, colours and terminal restoration on exit and on signals. */
#include "crt.h"

#include <curses.h>
#include <locale.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t active;

static void restore_and_reraise(int sig)
{
    if (active) {
        endwin();
        active = 0;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

int crt_init(void)
{
    setlocale(LC_ALL, "");
    if (!initscr()) return -1;
    active = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = restore_and_reraise;
    int sigs[] = {SIGTERM, SIGHUP, SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGQUIT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
    signal(SIGINT, SIG_IGN); /* Ctrl-C cancels jobs inside the UI; it never kills the program */
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    timeout(50);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(1, COLOR_CYAN, -1);
        init_pair(2, COLOR_YELLOW, -1);
        init_pair(3, COLOR_RED, -1);
    }
    return 0;
}

void crt_done(void)
{
    if (active) {
        endwin();
        active = 0;
    }
}
