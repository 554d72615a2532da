/* crt.h — all curses setup and teardown in one place: UTF-8 locale, colours, keypad, and a
 * terminal that is restored on every exit path (normal return, SIGTERM/SIGHUP, crashes). */
#ifndef QB_CRT_H
#define QB_CRT_H

/* Enter curses mode; installs signal handlers that restore the terminal. Returns 0 on success. */
int crt_init(void);
/* Leave curses mode (idempotent). */
void crt_done(void);

#endif
