/* keymap.h — which key does what: one table the main loop dispatches from and the help
 * screen lists, so the two never disagree. */
#ifndef QB_TUI_KEYMAP_H
#define QB_TUI_KEYMAP_H

typedef enum {
    ACT_NONE,
    ACT_DOWN, ACT_UP, ACT_PGDN, ACT_PGUP, ACT_HOME, ACT_END,
    ACT_FOLD_TOGGLE, ACT_FOLD, ACT_UNFOLD,
    ACT_SEARCH, ACT_SEARCH_NEXT,
    ACT_METHOD_NEXT, ACT_METHOD_PREV, ACT_BITS_LESS, ACT_BITS_MORE, ACT_GROUP_NEXT, ACT_GROUP_PREV,
    ACT_LOG, ACT_ZOOM, ACT_WEIGHTED,
    ACT_APPLY, ACT_UNDO, ACT_REDO,
    ACT_GENERATE, ACT_PPL,
    ACT_PRESENT, ACT_STEP, ACT_AUTOPLAY,
    ACT_SCAN, ACT_COMMAND, ACT_HELP, ACT_QUIT,
} tui_action;

typedef struct {
    int key;           /* curses key code */
    const char *label; /* as shown in the help: "j ↓" */
    tui_action action;
    const char *help;  /* NULL: same action as the row before (listed once) */
} tui_binding;

/* The bindings (static table). */
const tui_binding *tui_keymap(int *count);
/* The action of key (ACT_NONE when unbound). */
tui_action tui_key_action(int key);

#endif
