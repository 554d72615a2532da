/* keymap.c — the key table (keymap.h). */
#include "tui/widgets/keymap.h"

#include <curses.h>

#undef CTRL
#define CTRL(c) ((c) & 0x1f)

static const tui_binding keys[] = {
    {'j', "j \u2193", ACT_DOWN, "next row"},
    {KEY_DOWN, NULL, ACT_DOWN, NULL},
    {'k', "k \u2191", ACT_UP, "previous row"},
    {KEY_UP, NULL, ACT_UP, NULL},
    {KEY_NPAGE, "PgDn", ACT_PGDN, "page down"},
    {KEY_PPAGE, "PgUp", ACT_PGUP, "page up"},
    {KEY_HOME, "Home", ACT_HOME, "first row"},
    {KEY_END, "End", ACT_END, "last row"},
    {'\r', "Enter", ACT_FOLD_TOGGLE, "fold / unfold a layer"},
    {KEY_ENTER, NULL, ACT_FOLD_TOGGLE, NULL},
    {'h', "h \u2190", ACT_FOLD, "fold the layer"},
    {KEY_LEFT, NULL, ACT_FOLD, NULL},
    {'l', "l \u2192", ACT_UNFOLD, "unfold the layer"},
    {KEY_RIGHT, NULL, ACT_UNFOLD, NULL},
    {'/', "/", ACT_SEARCH, "search a tensor by name"},
    {'n', "n", ACT_SEARCH_NEXT, "next match (presentation: next bits)"},
    {'m', "m", ACT_METHOD_NEXT, "next method"},
    {'M', "M", ACT_METHOD_PREV, "previous method"},
    {'b', "b", ACT_BITS_LESS, "fewer bits"},
    {'B', "B", ACT_BITS_MORE, "more bits"},
    {'g', "g", ACT_GROUP_NEXT, "next granularity"},
    {'v', "v", ACT_GROUP_PREV, "previous granularity"},
    {'L', "L", ACT_LOG, "log scale for the histograms"},
    {'z', "z", ACT_ZOOM, "zoom the mapping around zero"},
    {'w', "w", ACT_WEIGHTED, "importance-weighted error (metrics, error plot) on/off; needs :imatrix FILE"},
    {'a', "a", ACT_APPLY, "apply: then t tensor, k kind, l layer, m model"},
    {'u', "u", ACT_UNDO, "undo"},
    {'U', "U ^R", ACT_REDO, "redo"},
    {CTRL('r'), NULL, ACT_REDO, NULL},
    {'G', "G", ACT_GENERATE, "generate: base and plan side by side"},
    {'p', "p", ACT_PPL, "perplexity + KLD of the plan against the base"},
    {'P', "P", ACT_PRESENT, "presentation mode"},
    {' ', "space", ACT_STEP, "presentation: 8\u21926\u21924\u21923\u21922 bits"},
    {'t', "t", ACT_AUTOPLAY, "presentation: auto-play timer"},
    {'S', "S", ACT_SCAN, "sensitivity view: tensors by scan value, Enter jumps, l groups by layer"},
    {':', ":", ACT_COMMAND, "command line (Lua, :help)"},
    {'?', "?", ACT_HELP, "this help"},
    {KEY_F(1), NULL, ACT_HELP, NULL},
    {'q', "q", ACT_QUIT, "quit"},
};

const tui_binding *tui_keymap(int *count)
{
    *count = (int)(sizeof keys / sizeof keys[0]);
    return keys;
}

tui_action tui_key_action(int key)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (keys[i].key == key) return keys[i].action;
    return ACT_NONE;
}
