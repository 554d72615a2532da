/* lqb_plot.c — qb.plot: line, scatter, histogram and staircase plots from Lua tables, drawn
 * in the terminal (braille, through the print route) or written as PNG/SVG/PDF files inside the
 * output folder. The drawing itself is core's (src/core/plot). */
#include "lqb_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/plot/plot.h"
#include "core/quant/stats.h"

#define MAX_SERIES 16

typedef struct {
    qb_plot p;
    qb_plot_series s[MAX_SERIES];
} plot_build;

/* An array of numbers at idx as C doubles (in a GC-managed userdata pushed on the stack). */
static double *numbers(lua_State *L, int idx, const char *what, int *n)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE) luaL_error(L, "plot: %s must be an array of numbers (got %s)", what, luaL_typename(L, idx));
    lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
    if (len > 1 << 24) luaL_error(L, "plot: %s has too many points (%I)", what, len);
    double *v = lua_newuserdatauv(L, sizeof(double) * (size_t)(len ? len : 1), 0);
    for (lua_Integer i = 1; i <= len; i++) {
        if (lua_rawgeti(L, idx, i) != LUA_TNUMBER)
            luaL_error(L, "plot: %s[%I] is a %s, number expected", what, i, luaL_typename(L, -1));
        v[i - 1] = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    *n = (int)len;
    return v;
}

static qb_plot_style style_of(lua_State *L, int t, qb_plot_style def)
{
    const char *s = lqb_opt_str(L, t, "style", NULL);
    if (!s) return def;
    if (!strcmp(s, "lines") || !strcmp(s, "line")) return QB_PLOT_LINES;
    if (!strcmp(s, "points") || !strcmp(s, "scatter")) return QB_PLOT_POINTS;
    if (!strcmp(s, "steps") || !strcmp(s, "staircase")) return QB_PLOT_STEPS;
    if (!strcmp(s, "bars")) return QB_PLOT_BARS;
    luaL_error(L, "plot: unknown style '%s' (lines, points, steps, bars)", s);
    return def;
}

/* Series from table t: {x=, y=, label=, style=, dashed=}; y alone gets x = 1..n. */
static void add_series(lua_State *L, plot_build *b, int t, qb_plot_style def)
{
    if (b->p.n_series >= MAX_SERIES) luaL_error(L, "plot: at most %d series", MAX_SERIES);
    qb_plot_series *s = &b->s[b->p.n_series];
    memset(s, 0, sizeof *s);
    s->label = lqb_opt_str(L, t, "label", NULL);
    s->style = style_of(L, t, def);
    s->dashed = lqb_opt_bool(L, t, "dashed", false);
    int ny = 0, nx = 0;
    lua_getfield(L, t, "y");
    const double *y = numbers(L, -1, "y", &ny);
    lua_remove(L, -2); /* keep the userdata */
    double *x;
    if (lua_getfield(L, t, "x") == LUA_TNIL) {
        lua_pop(L, 1);
        x = lua_newuserdatauv(L, sizeof(double) * (size_t)(ny ? ny : 1), 0);
        for (int i = 0; i < ny; i++) x[i] = i + 1;
        nx = ny;
    } else {
        x = numbers(L, -1, "x", &nx);
        lua_remove(L, -2);
    }
    if (nx != ny) luaL_error(L, "plot: series %d has %d x values and %d y values", b->p.n_series + 1, nx, ny);
    s->x = x;
    s->y = y;
    s->n = ny;
    b->p.n_series++;
}

static void read_common(lua_State *L, plot_build *b, int o)
{
    b->p.series = b->s;
    b->p.title = lqb_opt_str(L, o, "title", NULL);
    b->p.xlabel = lqb_opt_str(L, o, "xlabel", NULL);
    b->p.ylabel = lqb_opt_str(L, o, "ylabel", NULL);
    b->p.log_y = lqb_opt_bool(L, o, "log_y", false);
    b->p.width = (int)lqb_opt_int(L, o, "width", 0);
    b->p.height = (int)lqb_opt_int(L, o, "height", 0);
}

/* Draw or write: opts.file → file (returns its path); opts.text → returns the text; else print. */
static int finish(lua_State *L, plot_build *b, int o)
{
    lqb_host *h = lqb_host_of(L);
    if (qb_plot_check(&h->ctx, &b->p) != QB_OK) return luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
    const char *file = lqb_opt_str(L, o, "file", NULL);
    if (file) {
        char *full = lqb_output_path(L, file);
        qb_status st = qb_plot_write(&h->ctx, &b->p, full);
        free(full);
        if (st != QB_OK) return lqb_fail(L, st);
        lua_pushstring(L, file);
        return 1;
    }
    int cols = (int)lqb_opt_int(L, o, "cols", 72), rows = (int)lqb_opt_int(L, o, "rows", 12);
    if (cols > 1000 || rows > 500) return luaL_error(L, "plot: cols/rows too large");
    char *txt = qb_plot_text(&b->p, cols, rows);
    if (!txt) return luaL_error(L, "plot: out of memory");
    lua_pushstring(L, txt);
    free(txt);
    if (lqb_opt_bool(L, o, "text", false)) return 1;
    lqb_print(L, lua_tostring(L, -1));
    return 0;
}

/* qb.plot.line{series={...} | x=, y=, title=, xlabel=, ylabel=, log_y=, file=, cols=, rows=} */
static int plot_generic(lua_State *L, qb_plot_style def)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    plot_build *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    read_common(L, b, 1);
    if (lua_getfield(L, 1, "series") == LUA_TTABLE) {
        int st = lua_gettop(L);
        for (lua_Integer i = 1, n = (lua_Integer)lua_rawlen(L, st); i <= n; i++) {
            if (lua_rawgeti(L, st, i) != LUA_TTABLE) return luaL_error(L, "plot: series[%I] must be a table", i);
            add_series(L, b, lua_gettop(L), def);
        }
    } else {
        lua_pop(L, 1);
        add_series(L, b, 1, def);
    }
    return finish(L, b, 1);
}

static int l_line(lua_State *L) { return plot_generic(L, QB_PLOT_LINES); }
static int l_scatter(lua_State *L) { return plot_generic(L, QB_PLOT_POINTS); }

/* Bars of a histogram table {lo=, hi=, counts={...}} at idx as a series. */
static void add_hist(lua_State *L, plot_build *b, int idx, const char *label)
{
    idx = lua_absindex(L, idx);
    double lo = lqb_opt_num(L, idx, "lo", 0), hi = lqb_opt_num(L, idx, "hi", 1);
    lua_getfield(L, idx, "counts");
    int n = 0;
    double *y = numbers(L, -1, "counts", &n);
    lua_remove(L, -2);
    if (n < 1) luaL_error(L, "plot: histogram without counts");
    double *x = lua_newuserdatauv(L, sizeof(double) * (size_t)n, 0);
    double w = (hi - lo) / n;
    for (int i = 0; i < n; i++) x[i] = lo + (i + 0.5) * w;
    if (b->p.n_series >= MAX_SERIES) luaL_error(L, "plot: at most %d series", MAX_SERIES);
    b->s[b->p.n_series++] = (qb_plot_series){label, QB_PLOT_BARS, false, n, x, y};
}

/* qb.plot.histogram(h [, opts]) — h: a histogram table (from tensor:stats), a list of them,
 * or an array of numbers (binned here by core: opts.bins, default 40). opts.labels names them. */
static int l_histogram(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int o = lqb_opt_table(L, 2);
    lua_settop(L, 2);
    plot_build *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    read_common(L, b, o);
    int labels = 0;
    if (o && lua_getfield(L, o, "labels") == LUA_TTABLE) labels = lua_gettop(L);
    else if (o) lua_pop(L, 1);
    lua_getfield(L, 1, "counts");
    bool single = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (single) {
        const char *lab = NULL;
        if (labels && lua_rawgeti(L, labels, 1) == LUA_TSTRING) lab = lua_tostring(L, -1); /* kept by labels */
        add_hist(L, b, 1, lab);
    } else if (lua_rawgeti(L, 1, 1) == LUA_TTABLE) {
        lua_pop(L, 1);
        for (lua_Integer i = 1, n = (lua_Integer)lua_rawlen(L, 1); i <= n; i++) {
            const char *lab = NULL;
            if (labels && lua_rawgeti(L, labels, i) == LUA_TSTRING) lab = lua_tostring(L, -1);
            else if (labels) lua_pop(L, 1);
            lua_rawgeti(L, 1, i);
            add_hist(L, b, -1, lab);
        }
    } else {
        lua_pop(L, 1);
        int n = 0;
        double *v = numbers(L, 1, "values", &n);
        if (n < 1) return luaL_argerror(L, 1, "no values");
        double lo = v[0], hi = v[0];
        for (int i = 1; i < n; i++) lo = v[i] < lo ? v[i] : lo, hi = v[i] > hi ? v[i] : hi;
        if (hi <= lo) hi = lo + 1;
        int bins = (int)lqb_opt_int(L, o, "bins", 40);
        if (bins < 1 || bins > 4096) return luaL_error(L, "bad option 'bins' (1..4096 expected)");
        lqb_host *h = lqb_host_of(L);
        float *fv = lua_newuserdatauv(L, sizeof(float) * (size_t)n, 0);
        for (int i = 0; i < n; i++) fv[i] = (float)v[i];
        qb_histogram hist;
        if (qb_histogram_init(&h->ctx, &hist, bins, lo, hi) != QB_OK) return luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
        qb_histogram_add(&hist, fv, n);
        double *x = lua_newuserdatauv(L, sizeof(double) * (size_t)bins, 0);
        double *y = lua_newuserdatauv(L, sizeof(double) * (size_t)bins, 0);
        for (int i = 0; i < bins; i++) {
            x[i] = lo + (i + 0.5) * (hi - lo) / bins;
            y[i] = (double)hist.counts[i];
        }
        qb_histogram_free(&hist);
        const char *lab = NULL;
        if (labels && lua_rawgeti(L, labels, 1) == LUA_TSTRING) lab = lua_tostring(L, -1);
        b->s[b->p.n_series++] = (qb_plot_series){lab, QB_PLOT_BARS, false, bins, x, y};
    }
    return finish(L, b, o);
}

/* qb.plot.staircase(map [, opts]) — map {x=, y=} (from stats.map) as steps with the y = x line */
static int l_staircase(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int o = lqb_opt_table(L, 2);
    lua_settop(L, 2);
    plot_build *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    read_common(L, b, o);
    if (!b->p.xlabel) b->p.xlabel = "original";
    if (!b->p.ylabel) b->p.ylabel = "quantized";
    lua_pushvalue(L, 1);
    int t = lua_gettop(L);
    if (lua_getfield(L, t, "label") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushliteral(L, "quantized");
        lua_setfield(L, t, "label");
    } else lua_pop(L, 1);
    add_series(L, b, t, QB_PLOT_STEPS);
    const qb_plot_series *s = &b->s[0];
    if (s->n > 0) {
        double *d = lua_newuserdatauv(L, sizeof(double) * 2, 0);
        d[0] = s->x[0];
        d[1] = s->x[s->n - 1];
        b->s[b->p.n_series++] = (qb_plot_series){"y = x", QB_PLOT_LINES, true, 2, d, d};
    }
    return finish(L, b, o);
}

void lqb_open_plot(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"line", l_line}, {"scatter", l_scatter}, {"histogram", l_histogram}, {"staircase", l_staircase}, {NULL, NULL},
    };
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "plot");
}
