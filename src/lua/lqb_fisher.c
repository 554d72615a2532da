/* lqb_fisher.c — the Fisher estimate's options for qb.sensitivity and qb.search
 * (estimate="fisher", its calibration text and how it is gathered): the diagonal and its
 * calibration tokens held by a userdata on the stack, freed by its __gc whatever is raised. */
#include "lqb_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/eval/fisher.h"

#define LQB_FISHER_BOX "qb.fisher_box"

static int box_gc(lua_State *L)
{
    lqb_fisher_box *b = luaL_checkudata(L, 1, LQB_FISHER_BOX);
    qb_fisher_free(b->f);
    free(b->tokens);
    b->f = NULL;
    b->tokens = NULL;
    return 0;
}

lqb_fisher_box *lqb_opt_fisher(lua_State *L, qb_model *m, int o, const char *text_key, const qb_format *price,
                               int n_price)
{
    const char *est = lqb_opt_str(L, o, "estimate", NULL);
    if (!est) return NULL;
    if (strcmp(est, "fisher")) return luaL_error(L, "bad option 'estimate' (\"fisher\" expected, not \"%s\")", est), NULL;
    const char *labels = lqb_opt_str(L, o, "labels", "sampled"), *positions = lqb_opt_str(L, o, "positions", "half");
    if (strcmp(labels, "sampled") && strcmp(labels, "data"))
        luaL_error(L, "bad option 'labels' (\"sampled\" or \"data\" expected)");
    if (strcmp(positions, "half") && strcmp(positions, "all"))
        luaL_error(L, "bad option 'positions' (\"half\" or \"all\" expected)");
    qb_fisher_opts fo = {.n_ctx = (int)lqb_opt_int(L, o, "ctx", 0),
                         .n_tokens = (int)lqb_opt_int(L, o, "calib_tokens", lqb_opt_int(L, o, "tokens", 0)),
                         .labels = strcmp(labels, "data") ? QB_FISHER_SAMPLED : QB_FISHER_DATA,
                         .all_positions = !strcmp(positions, "all"),
                         .samples = (int)lqb_opt_int(L, o, "samples", 0),
                         .seed = (uint64_t)lqb_opt_int(L, o, "seed", 0)};
    if (fo.samples < 0 || fo.samples > 64) luaL_error(L, "bad option 'samples' (1..64 expected)");
    const char *stream = lqb_opt_str(L, o, "stream", "auto");
    if (!strcmp(stream, "on")) fo.stream = QB_FISHER_STREAM_ON;
    else if (!strcmp(stream, "off")) fo.stream = QB_FISHER_STREAM_OFF;
    else if (!strcmp(stream, "recompute")) fo.stream = QB_FISHER_STREAM_RECOMPUTE;
    else if (strcmp(stream, "auto"))
        luaL_error(L, "bad option 'stream' (\"auto\", \"on\", \"off\" or \"recompute\" expected)");
    fo.price = price;
    fo.n_price = n_price;
    lqb_fisher_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    if (luaL_newmetatable(L, LQB_FISHER_BOX)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    if (lua_getfield(L, o, text_key) != LUA_TSTRING)
        luaL_error(L, "option '%s' (the calibration text or its path) is required with estimate=\"fisher\"", text_key);
    b->tokens = lqb_eval_tokens(L, m, lua_gettop(L), &b->n_tokens);
    lua_pop(L, 1);
    lqb_progress pr;
    lqb_progress_begin(L, &pr, "fisher", o);
    fo.progress = lqb_progress_cb;
    fo.ud = &pr;
    fo.cancel = lqb_cancel_ptr(L);
    qb_status st = qb_fisher_compute(&lqb_host_of(L)->ctx, m, b->tokens, b->n_tokens, &fo, &b->f);
    lqb_progress_end(L, &pr, st);
    return b;
}
