/* script.c — the command line's Lua (script.h): one sandboxed state per session (created on
 * first use, recreated when another model is opened, since it may hold the old one), the qb
 * module plus session functions bound to the live workbench:
 *   qb.select(name)                       select a tensor; returns its full name
 *   qb.set{method=, bits=, group=, format=}  change the choice (group: "tensor", "channel", n)
 *   qb.apply([scope])                     "tensor" (default), "kind", "layer", "model" (a job)
 *   qb.undo(), qb.redo()
 *   qb.ppl([chunks])                      perplexity + KLD job; figures in the metrics panel
 *   qb.gen([prompt])                      side-by-side generation job
 *   qb.export(path)                       GGUF export job
 *   qb.model()                            the session's model (borrowed)
 *   qb.selected()                         name of the selected tensor, and the format name
 *   qb.heat(t [, label])                  heat marks: t maps tensor names to values (a scan)
 *   qb.status(text)                       a line in the status bar
 * Lua runs on the UI thread; Ctrl-C stops it (the cancel flag is the pending-interrupt
 * count). Long work it starts through these functions runs as jobs, so the UI stays live.
 * A line that is an expression has its values printed to the status line (qb_lua_repl). */
#include "script.h"
#include "lua/lqb.h"

#include <lauxlib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

static tui_session *sess(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* Raise the status line's message as a Lua error when ok is false; no values otherwise (the
 * console prints an expression's values, and the status line already says what happened). */
static int check(lua_State *L, tui_session *s, bool ok)
{
    if (!ok) {
        char msg[sizeof s->status];
        memcpy(msg, s->status, sizeof msg);
        return luaL_error(L, "%s", msg);
    }
    return 0;
}

static int l_select(lua_State *L)
{
    tui_session *s = sess(L);
    const char *name = luaL_checkstring(L, 1);
    if (!tui_select_name(s, name, true)) return luaL_error(L, "no tensor matches '%s'", name);
    lua_pushstring(L, tui_sel(s)->name);
    return 1;
}

static int l_set(lua_State *L)
{
    tui_session *s = sess(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "format");
    const char *format = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    lua_getfield(L, 1, "method");
    const char *method = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    lua_getfield(L, 1, "bits");
    int bits = lua_isnil(L, -1) ? 0 : (int)luaL_checkinteger(L, -1);
    lua_getfield(L, 1, "group");
    int group = 0;
    bool has_group = !lua_isnil(L, -1);
    if (has_group) {
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *g = lua_tostring(L, -1);
            if (!strcmp(g, "tensor")) group = QB_GROUP_TENSOR;
            else if (!strcmp(g, "channel")) group = QB_GROUP_CHANNEL;
            else return luaL_error(L, "group: want \"tensor\", \"channel\" or a size, got '%s'", g);
        } else {
            group = (int)luaL_checkinteger(L, -1);
        }
    }
    return check(L, s, tui_set_choice(s, method, bits, group, has_group, format));
}

static int l_apply(lua_State *L)
{
    tui_session *s = sess(L);
    const char *scope = luaL_optstring(L, 1, "tensor");
    char sc = !strcmp(scope, "tensor") ? 't' : !strcmp(scope, "kind") ? 'k' : !strcmp(scope, "layer") ? 'l'
            : !strcmp(scope, "model") ? 'm' : 0;
    if (!sc) return luaL_error(L, "apply: scope must be tensor, kind, layer or model, got '%s'", scope);
    return check(L, s, tui_apply(s, sc));
}

static int l_undo(lua_State *L) { return check(L, sess(L), tui_undo(sess(L))); }
static int l_redo(lua_State *L) { return check(L, sess(L), tui_redo(sess(L))); }
static int l_ppl(lua_State *L) { return check(L, sess(L), tui_perplexity(sess(L), (int)luaL_optinteger(L, 1, 0))); }
static int l_gen(lua_State *L) { return check(L, sess(L), tui_generate(sess(L), luaL_optstring(L, 1, NULL))); }
static int l_export(lua_State *L) { return check(L, sess(L), tui_export(sess(L), luaL_checkstring(L, 1))); }

static int l_model(lua_State *L)
{
    tui_session *s = sess(L);
    if (s->job) /* the job reads (or changes) the model: Lua must not change it meanwhile */
        return luaL_error(L, "qb.model(): the %s job is using the model (wait, or Ctrl-C it)", qb_job_name(s->job));
    qb_lua_push_model(L, s->m, false);
    return 1;
}

static int l_selected(lua_State *L)
{
    tui_session *s = sess(L);
    char f[64];
    qb_format_name(&s->fmt, f, sizeof f);
    lua_pushstring(L, tui_sel(s)->name);
    lua_pushstring(L, f);
    return 2;
}

static int l_heat(lua_State *L)
{
    tui_session *s = sess(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    snprintf(s->heat_label, sizeof s->heat_label, "%s", luaL_optstring(L, 2, "scan"));
    for (int i = 0; i < s->m->n_tensors; i++) s->heat[i] = NAN;
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        for (int i = 0; name && i < s->m->n_tensors; i++)
            if (!strcmp(s->m->tensors[i].name, name)) {
                s->heat[i] = luaL_checknumber(L, -1);
                n++;
            }
        lua_pop(L, 1);
    }
    lua_pushinteger(L, n);
    return 1;
}

static int l_status(lua_State *L)
{
    tui_status(sess(L), false, "%s", luaL_checkstring(L, 1));
    return 0;
}

static void on_print(void *ud, const char *line) { tui_status(ud, false, "%s", line); }

static lua_State *state(tui_session *s)
{
    if (s->lua) return s->lua;
    char cwd[1024];
    qb_lua_opts o = {.write_dir = getcwd(cwd, sizeof cwd) ? cwd : NULL, .cancel = s->interrupt,
                     .n_threads = s->ctx.n_threads};
    lua_State *L = qb_lua_new(&o);
    if (!L) return NULL;
    qb_lua_set_print(L, on_print, s);
    static const luaL_Reg fns[] = {
        {"select", l_select}, {"set", l_set},     {"apply", l_apply},       {"undo", l_undo},
        {"redo", l_redo},     {"ppl", l_ppl},     {"gen", l_gen},           {"export", l_export},
        {"model", l_model},   {"selected", l_selected}, {"heat", l_heat},   {"status", l_status},
        {NULL, NULL},
    };
    lua_getglobal(L, "qb");
    lua_pushlightuserdata(L, s);
    luaL_setfuncs(L, fns, 1);
    lua_pop(L, 1);
    s->lua = L;
    return L;
}

void tui_script_run(tui_session *s, const char *code)
{
    lua_State *L = state(s);
    if (!L) {
        tui_status(s, true, "Lua: out of memory");
        return;
    }
    char err[1024];
    s->status[0] = 0;
    if (qb_lua_repl(L, code, "=cmdline", err, sizeof err) != 0) {
        char *nl = strchr(err, '\n'); /* the first line; the traceback does not fit a status bar */
        if (nl) *nl = 0;
        tui_status(s, true, "Lua: %s", err);
    }
    /* Lua may have changed the model directly (m:apply …) */
    tui_session_sync(s);
    tui_request_analysis(s);
}

void tui_script_close(tui_session *s)
{
    qb_lua_close(s->lua);
    s->lua = NULL;
}
