/* script.c — the command line's Lua (script.h), on a script thread: one sandboxed state per
 * session, created and used only by that thread (created on first use, recreated when another
 * model is opened, since it may hold the old one), the qb module plus session functions bound
 * to the live workbench:
 *   qb.select(name)                       select a tensor; returns its full name
 *   qb.set{method=, bits=, group=, format=}  change the choice (group: "tensor", "channel", n)
 *   qb.apply([scope])                     "tensor" (default), "kind", "layer", "model" (a job)
 *   qb.undo(), qb.redo()
 *   qb.ppl([chunks])                      perplexity + KLD job; figures in the metrics panel
 *   qb.gen([prompt])                      side-by-side generation job
 *   qb.export(path)                       GGUF export job
 *   qb.calib(path [, samples [, ctx]])    calibration job (GPTQ/AWQ read its XᵀX)
 *   qb.model()                            the session's model (borrowed; while the script runs,
 *                                         no job may start on it)
 *   qb.selected()                         name of the selected tensor, and the format name
 *   qb.heat(t [, label])                  heat marks: t maps tensor names to values (a scan)
 *   qb.status(text)                       a line in the status bar
 * The session belongs to the UI thread: each of these functions packs its arguments into a
 * request, posts it to the UI thread's message queue and waits; the UI thread carries it out
 * between frames (so plots keep redrawing and keys keep working while a script runs) and
 * wakes the script with the answer. Printed lines and the script's end (its error, if any) come
 * back as messages too. Ctrl-C sets the script's cancel flag, which the instruction hook turns
 * into a Lua error. A line that is an expression has its values printed to the status line
 * (qb_lua_repl); `:run FILE` runs a recipe file. */
#include "tui/controllers/script.h"
#include "lua/lqb.h"

#include <lauxlib.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { TUI_MSG_SCRIPT_CALL = QB_MSG_USER + 40, TUI_MSG_SCRIPT_PRINT, TUI_MSG_SCRIPT_DONE };

typedef enum { OP_SELECT, OP_SET, OP_APPLY, OP_UNDO, OP_REDO, OP_PPL, OP_GEN, OP_EXPORT, OP_CALIB, OP_MODEL, OP_SELECTED,
               OP_HEAT, OP_STATUS } call_op;

/* One request from the script thread to the UI thread. Reference counted: the script thread
 * and the message each hold one (the script may stop waiting when the session closes). */
typedef struct {
    atomic_int refs;
    unsigned owner;           /* serial of the script thread that asked */
    call_op op;
    char str[1024], str2[64]; /* string arguments */
    bool has_str, has_str2, b0;
    int i0, i1;
    int n_heat;               /* OP_HEAT: names and values */
    char **names;
    double *values;
    /* the answer, written by the UI thread before done */
    bool done, ok;
    char out[512], out2[64];
    qb_model *model;
    int count;
} tui_call;

struct tui_script {
    qb_msg_queue *q;          /* the session's queue (lives as long as the session) */
    unsigned serial;          /* tells this thread's requests from a closed one's */
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *code;               /* under mu: the next line to run (NULL: none) */
    bool is_file;             /* under mu: code is a recipe path */
    bool quit;                /* under mu: the thread ends */
    volatile int cancel;      /* set by the UI thread (Ctrl-C), read by the Lua hook */
    lua_State *L;             /* the script thread's alone */
    char cwd[1024];
    int n_threads;
    /* UI thread only */
    bool busy;                /* a line is running */
    bool model_lent;          /* qb.model() was answered during this run */
    double t0;                /* when it started */
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void call_unref(void *p)
{
    tui_call *c = p;
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1) return;
    for (int i = 0; i < c->n_heat; i++) free(c->names[i]);
    free(c->names);
    free(c->values);
    free(c);
}

/* ---- the script thread's side ----------------------------------------------------------- */

static struct tui_script *script_of(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

static tui_call *call_new(lua_State *L, call_op op)
{
    tui_call *c = calloc(1, sizeof *c);
    if (!c) luaL_error(L, "out of memory");
    atomic_init(&c->refs, 1);
    c->owner = script_of(L)->serial;
    c->op = op;
    return c;
}

/* Post c to the UI thread and wait for its answer; raises the answer's error in Lua (c is
 * released either way). Returns c's answer fields through *out (copied) when ok. */
static void ui_call(lua_State *L, tui_call *c, tui_call *out)
{
    struct tui_script *sc = script_of(L);
    atomic_fetch_add(&c->refs, 1);
    qb_msg m = {.job_id = 0, .tag = TUI_MSG_SCRIPT_CALL, .data = c, .free_data = call_unref};
    if (!qb_msg_queue_post(sc->q, &m)) { /* the queue freed its reference */
        call_unref(c);
        luaL_error(L, "out of memory");
    }
    pthread_mutex_lock(&sc->mu);
    while (!c->done && !sc->quit) pthread_cond_wait(&sc->cv, &sc->mu);
    bool done = c->done;
    pthread_mutex_unlock(&sc->mu);
    if (!done) {
        call_unref(c);
        luaL_error(L, "cancelled");
    }
    out->ok = c->ok;
    memcpy(out->out, c->out, sizeof out->out);
    memcpy(out->out2, c->out2, sizeof out->out2);
    out->model = c->model;
    out->count = c->count;
    call_unref(c);
    if (!out->ok) luaL_error(L, "%s", out->out);
}

static int l_select(lua_State *L)
{
    tui_call *c = call_new(L, OP_SELECT), r;
    snprintf(c->str, sizeof c->str, "%s", luaL_checkstring(L, 1));
    ui_call(L, c, &r);
    lua_pushstring(L, r.out);
    return 1;
}

static int l_set(lua_State *L)
{
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
    tui_call *c = call_new(L, OP_SET), r;
    if ((c->has_str = format != NULL)) snprintf(c->str, sizeof c->str, "%s", format);
    if ((c->has_str2 = method != NULL)) snprintf(c->str2, sizeof c->str2, "%s", method);
    c->i0 = bits;
    c->i1 = group;
    c->b0 = has_group;
    ui_call(L, c, &r);
    return 0;
}

static int l_apply(lua_State *L)
{
    const char *scope = luaL_optstring(L, 1, "tensor");
    char sc = !strcmp(scope, "tensor") ? 't' : !strcmp(scope, "kind") ? 'k' : !strcmp(scope, "layer") ? 'l'
            : !strcmp(scope, "model") ? 'm' : 0;
    if (!sc) return luaL_error(L, "apply: scope must be tensor, kind, layer or model, got '%s'", scope);
    tui_call *c = call_new(L, OP_APPLY), r;
    c->i0 = sc;
    ui_call(L, c, &r);
    return 0;
}

static int simple(lua_State *L, call_op op)
{
    tui_call r;
    ui_call(L, call_new(L, op), &r);
    return 0;
}

static int l_undo(lua_State *L) { return simple(L, OP_UNDO); }
static int l_redo(lua_State *L) { return simple(L, OP_REDO); }

static int l_ppl(lua_State *L)
{
    tui_call *c = call_new(L, OP_PPL), r;
    c->i0 = (int)luaL_optinteger(L, 1, 0);
    ui_call(L, c, &r);
    return 0;
}

static int l_gen(lua_State *L)
{
    const char *p = luaL_optstring(L, 1, NULL);
    tui_call *c = call_new(L, OP_GEN), r;
    if ((c->has_str = p != NULL)) snprintf(c->str, sizeof c->str, "%s", p);
    ui_call(L, c, &r);
    return 0;
}

static int l_export(lua_State *L)
{
    tui_call *c = call_new(L, OP_EXPORT), r;
    snprintf(c->str, sizeof c->str, "%s", luaL_checkstring(L, 1));
    ui_call(L, c, &r);
    return 0;
}

static int l_calib(lua_State *L)
{
    tui_call *c = call_new(L, OP_CALIB), r;
    snprintf(c->str, sizeof c->str, "%s", luaL_checkstring(L, 1));
    c->i0 = (int)luaL_optinteger(L, 2, 0);
    c->i1 = (int)luaL_optinteger(L, 3, 0);
    ui_call(L, c, &r);
    return 0;
}

static int l_model(lua_State *L)
{
    tui_call r;
    ui_call(L, call_new(L, OP_MODEL), &r);
    qb_lua_push_model(L, r.model, false);
    return 1;
}

static int l_selected(lua_State *L)
{
    tui_call r;
    ui_call(L, call_new(L, OP_SELECTED), &r);
    lua_pushstring(L, r.out);
    lua_pushstring(L, r.out2);
    return 2;
}

static int l_heat(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *label = luaL_optstring(L, 2, "scan");
    tui_call *c = call_new(L, OP_HEAT), r;
    snprintf(c->str2, sizeof c->str2, "%s", label);
    int cap = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            if (!lua_isnumber(L, -1)) {
                call_unref(c);
                return luaL_error(L, "heat: the value of '%s' is not a number", lua_tostring(L, -2));
            }
            if (c->n_heat == cap) {
                cap = cap ? 2 * cap : 16;
                char **nn = realloc(c->names, (size_t)cap * sizeof *nn);
                if (nn) c->names = nn;
                double *vv = nn ? realloc(c->values, (size_t)cap * sizeof *vv) : NULL;
                if (vv) c->values = vv;
                if (!nn || !vv) {
                    call_unref(c);
                    return luaL_error(L, "out of memory");
                }
            }
            c->values[c->n_heat] = lua_tonumber(L, -1);
            if (!(c->names[c->n_heat] = strdup(lua_tostring(L, -2)))) {
                call_unref(c);
                return luaL_error(L, "out of memory");
            }
            c->n_heat++;
        }
        lua_pop(L, 1);
    }
    ui_call(L, c, &r);
    lua_pushinteger(L, r.count);
    return 1;
}

static int l_status(lua_State *L)
{
    tui_call *c = call_new(L, OP_STATUS), r;
    snprintf(c->str, sizeof c->str, "%s", luaL_checkstring(L, 1));
    ui_call(L, c, &r);
    return 0;
}

static void on_print(void *ud, const char *line)
{
    struct tui_script *sc = ud;
    qb_msg m = {.tag = TUI_MSG_SCRIPT_PRINT, .text = strdup(line)};
    if (m.text) qb_msg_queue_post(sc->q, &m);
}

static lua_State *state(struct tui_script *sc)
{
    if (sc->L) return sc->L;
    qb_lua_opts o = {.write_dir = sc->cwd[0] ? sc->cwd : NULL, .cancel = &sc->cancel, .n_threads = sc->n_threads};
    lua_State *L = qb_lua_new(&o);
    if (!L) return NULL;
    qb_lua_set_print(L, on_print, sc);
    static const luaL_Reg fns[] = {
        {"select", l_select}, {"set", l_set},     {"apply", l_apply},       {"undo", l_undo},
        {"redo", l_redo},     {"ppl", l_ppl},     {"gen", l_gen},           {"export", l_export}, {"calib", l_calib},
        {"model", l_model},   {"selected", l_selected}, {"heat", l_heat},   {"status", l_status},
        {NULL, NULL},
    };
    lua_getglobal(L, "qb");
    lua_pushlightuserdata(L, sc);
    luaL_setfuncs(L, fns, 1);
    lua_pop(L, 1);
    sc->L = L;
    return L;
}

static void *script_main(void *p)
{
    struct tui_script *sc = p;
    for (;;) {
        pthread_mutex_lock(&sc->mu);
        while (!sc->quit && !sc->code) pthread_cond_wait(&sc->cv, &sc->mu);
        if (sc->quit) {
            pthread_mutex_unlock(&sc->mu);
            break;
        }
        char *code = sc->code;
        bool is_file = sc->is_file;
        sc->code = NULL;
        pthread_mutex_unlock(&sc->mu);
        char err[1024] = "";
        int rc = 1;
        lua_State *L = state(sc);
        if (!L) snprintf(err, sizeof err, "out of memory");
        else if (is_file) rc = qb_lua_exec_file(L, code, 0, NULL, err, sizeof err);
        else rc = qb_lua_repl(L, code, "=cmdline", err, sizeof err);
        free(code);
        char *nl = strchr(err, '\n'); /* the first line; the traceback does not fit a status bar */
        if (nl) *nl = 0;
        qb_msg m = {.tag = TUI_MSG_SCRIPT_DONE, .i0 = rc, .i1 = (int)sc->serial, .text = rc ? strdup(err) : NULL};
        qb_msg_queue_post(sc->q, &m);
    }
    qb_lua_close(sc->L);
    sc->L = NULL;
    return NULL;
}

/* ---- the UI thread's side --------------------------------------------------------------- */

static struct tui_script *script_get(tui_session *s)
{
    if (s->script) return s->script;
    struct tui_script *sc = calloc(1, sizeof *sc);
    if (!sc) return NULL;
    sc->q = s->q;
    sc->serial = ++s->script_serial;
    sc->n_threads = s->ctx.n_threads;
    if (!getcwd(sc->cwd, sizeof sc->cwd)) sc->cwd[0] = 0;
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cv, NULL);
    if (pthread_create(&sc->th, NULL, script_main, sc) != 0) {
        pthread_mutex_destroy(&sc->mu);
        pthread_cond_destroy(&sc->cv);
        free(sc);
        return NULL;
    }
    sc->started = true;
    s->script = sc;
    return sc;
}

static void submit(tui_session *s, const char *code, bool is_file)
{
    struct tui_script *sc = script_get(s);
    char *copy = strdup(code);
    if (!sc || !copy) {
        free(copy);
        tui_status(s, true, "Lua: out of memory");
        return;
    }
    if (sc->busy) {
        free(copy);
        tui_status(s, true, "Lua: a script is running (Ctrl-C stops it)");
        return;
    }
    sc->busy = true;
    sc->model_lent = false;
    sc->cancel = 0;
    sc->t0 = mono();
    s->status[0] = 0;
    pthread_mutex_lock(&sc->mu);
    sc->code = copy;
    sc->is_file = is_file;
    pthread_cond_broadcast(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
}

void tui_script_run(tui_session *s, const char *code) { submit(s, code, false); }

void tui_script_run_file(tui_session *s, const char *path) { submit(s, path, true); }

bool tui_script_running(const tui_session *s, double *elapsed)
{
    const struct tui_script *sc = s->script;
    if (!sc || !sc->busy) return false;
    if (elapsed) *elapsed = mono() - sc->t0;
    return true;
}

bool tui_script_holds_model(const tui_session *s) { return s->script && s->script->busy && s->script->model_lent; }

bool tui_script_cancel(tui_session *s)
{
    struct tui_script *sc = s->script;
    if (!sc || !sc->busy) return false;
    sc->cancel = 1;
    tui_status(s, false, "cancelling the script…");
    return true;
}

/* Carry out a request on the UI thread; the answer goes into c. */
static void serve(tui_session *s, tui_call *c)
{
    bool ok = true;
    s->status_err = false;
    switch (c->op) {
    case OP_SELECT:
        ok = tui_select_name(s, c->str, true);
        if (ok) snprintf(c->out, sizeof c->out, "%s", tui_sel(s)->name);
        else snprintf(c->out, sizeof c->out, "no tensor matches '%.400s'", c->str);
        c->ok = ok;
        return;
    case OP_SET:
        ok = tui_set_choice(s, c->has_str2 ? c->str2 : NULL, c->i0, c->i1, c->b0, c->has_str ? c->str : NULL);
        break;
    case OP_APPLY: ok = tui_apply(s, (char)c->i0); break;
    case OP_UNDO: ok = tui_undo(s); break;
    case OP_REDO: ok = tui_redo(s); break;
    case OP_PPL: ok = tui_perplexity(s, c->i0); break;
    case OP_GEN: ok = tui_generate(s, c->has_str ? c->str : NULL); break;
    case OP_EXPORT: ok = tui_export(s, c->str); break;
    case OP_CALIB: ok = tui_calibrate(s, c->str, c->i0, c->i1); break;
    case OP_MODEL:
        if (s->job) { /* the job reads (or changes) the model: Lua must not change it meanwhile */
            snprintf(c->out, sizeof c->out, "qb.model(): the %s job is using the model (wait, or Ctrl-C it)",
                     qb_job_name(s->job));
            c->ok = false;
            return;
        }
        s->script->model_lent = true;
        c->model = s->m;
        c->ok = true;
        return;
    case OP_SELECTED:
        snprintf(c->out, sizeof c->out, "%s", tui_sel(s)->name);
        qb_format_name(&s->fmt, c->out2, sizeof c->out2);
        c->ok = true;
        return;
    case OP_HEAT:
        snprintf(s->heat_label, sizeof s->heat_label, "%.31s", c->str2);
        for (int i = 0; i < s->m->n_tensors; i++) s->heat[i] = NAN;
        for (int k = 0; k < c->n_heat; k++)
            for (int i = 0; i < s->m->n_tensors; i++)
                if (!strcmp(s->m->tensors[i].name, c->names[k])) {
                    s->heat[i] = c->values[k];
                    c->count++;
                }
        c->ok = true;
        return;
    case OP_STATUS:
        tui_status(s, false, "%s", c->str);
        c->ok = true;
        return;
    }
    c->ok = ok;
    if (!ok) snprintf(c->out, sizeof c->out, "%s", s->status); /* the status line says why */
}

bool tui_script_message(tui_session *s, const qb_msg *m)
{
    struct tui_script *sc = s->script;
    switch (m->tag) {
    case TUI_MSG_SCRIPT_CALL: {
        tui_call *c = m->data;
        const bool mine = sc && sc->busy && c->owner == sc->serial; /* else: a closed script's */
        if (mine) serve(s, c);
        else snprintf(c->out, sizeof c->out, "cancelled");
        if (!mine) sc = NULL; /* nobody waits on it any more */
        if (sc) pthread_mutex_lock(&sc->mu);
        c->done = true;
        if (sc) {
            pthread_cond_broadcast(&sc->cv);
            pthread_mutex_unlock(&sc->mu);
        }
        return true;
    }
    case TUI_MSG_SCRIPT_PRINT: tui_status(s, false, "%s", m->text ? m->text : ""); return true;
    case TUI_MSG_SCRIPT_DONE:
        if (sc && m->i1 != (int)sc->serial) return true; /* a closed script's end */
        if (sc) {
            sc->busy = false;
            sc->model_lent = false;
        }
        if (m->i0) tui_status(s, true, "Lua: %s", m->text ? m->text : "error");
        /* Lua may have changed the model directly (m:apply …) */
        tui_session_sync(s);
        tui_request_analysis(s);
        return true;
    default: return false;
    }
}

void tui_script_close(tui_session *s)
{
    struct tui_script *sc = s->script;
    if (!sc) return;
    sc->cancel = 1;
    pthread_mutex_lock(&sc->mu);
    sc->quit = true;
    pthread_cond_broadcast(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
    if (sc->started) pthread_join(sc->th, NULL);
    free(sc->code);
    pthread_mutex_destroy(&sc->mu);
    pthread_cond_destroy(&sc->cv);
    free(sc);
    s->script = NULL;
}
