/* lqb_finetune.c — model:finetune{...}: quantization-aware fine-tuning with distillation, or
 * healing, of the model in place (core/method/finetune.h), for recipes:
 *
 *   local r = m:finetune{plan = "int2-g64" | "Q2_K" | qb.plan, text = "calib.txt",
 *                        teacher = t, steps = 100, batch = 4, seq = 128, lr = 1e-4, kd = 1, ce = 0,
 *                        tau = 1, warmup = 10, clip = 1, weight_decay = 0, seed = 1,
 *                        heal = false, learn_clip = false, clip_lr = 1e-3, recompute = "auto",
 *                        shift_windows = false,
 *                        on_step = function(s) ... end}
 *
 * plan: every matrix it names is quantized by round-to-nearest, then trained through its
 * format's fake quantization (rules with another method are refused); heal = true instead
 * trains only the norms and biases of a model already quantized (then teacher is required).
 * teacher: a qb.model with the same tokenizer; for QAT the model's own file opened again by
 * default. on_step(s) gets {step, loss, kd, ce, grad_norm, lr, seconds, tokens} after each
 * step; returning false stops there without installing the result (a QAT model then holds
 * the plan's round-to-nearest, a healed one is unchanged; r.stopped is true). Returns
 * {steps, loss = {...}, kd = {...}, ce = {...}, seconds, tokens}. */
#include "lqb_internal.h"

#include "core/eval/eval.h"
#include "core/method/finetune.h"
#include "core/method/method.h"
#include "core/quant/apply.h"

#include <stdlib.h>
#include <string.h>

/* What the call owns while it runs, freed however it ends (a __gc'd userdata, so an error
 * raised in a callback leaks nothing). */
typedef struct {
    qb_finetune *ft;
    qb_model *own_teacher;
    int32_t *tokens;
    qb_plan plan;
} ft_call;

static int ft_call_gc(lua_State *L)
{
    ft_call *c = lua_touserdata(L, 1);
    qb_finetune_end(c->ft);
    qb_model_close(c->own_teacher);
    free(c->tokens);
    qb_plan_free(&c->plan);
    memset(c, 0, sizeof *c);
    return 0;
}

/* The plan option as a plan: a format or llama-quantize type name, or a qb.plan. */
static void plan_option(lua_State *L, int o, const qb_model *m, qb_plan *out)
{
    qb_ctx *ctx = &lqb_host_of(L)->ctx;
    int ty = lua_getfield(L, o, "plan");
    if (ty == LUA_TSTRING) {
        if (qb_method_plan(ctx, m, lua_tostring(L, -1), false, out) != QB_OK) luaL_error(L, "finetune: %s", qb_ctx_errmsg(ctx));
    } else if (ty != LUA_TNIL) {
        qb_plan tmp;
        bool owned;
        const qb_plan *p = lqb_to_plan(L, lua_gettop(L), &tmp, &owned);
        if (qb_plan_copy(ctx, p, out) != QB_OK) luaL_error(L, "finetune: %s", qb_ctx_errmsg(ctx));
        if (owned) qb_plan_free(&tmp);
    }
    lua_pop(L, 1);
    for (int k = 0; k < out->n_rules; k++)
        if (out->rules[k].method.kind != QB_METHOD_RTN)
            luaL_error(L, "finetune: plan rule %d ('%s') names method %s; fine-tuning packs its latent weights by "
                       "round-to-nearest (apply %s first, then finetune{heal=true})",
                       k + 1, out->rules[k].pattern, qb_plan_method_name(out->rules[k].method.kind),
                       qb_plan_method_name(out->rules[k].method.kind));
}

static void push_report(lua_State *L, const qb_finetune_report *r)
{
    lua_createtable(L, 0, 8);
    lqb_set_int(L, "step", r->step);
    lqb_set_num(L, "loss", r->loss);
    lqb_set_num(L, "kd", r->kd);
    lqb_set_num(L, "ce", r->ce);
    lqb_set_num(L, "grad_norm", r->grad_norm);
    lqb_set_num(L, "lr", r->lr);
    lqb_set_num(L, "seconds", r->seconds);
    lqb_set_int(L, "tokens", r->tokens);
}

int lqb_model_finetune(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    int o = lqb_opt_table(L, 2);
    if (!o) return luaL_error(L, "finetune: give options: {plan=..., text=..., teacher=...}");
    lqb_host *h = lqb_host_of(L);
    qb_ctx *ctx = &h->ctx;
    ft_call *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    qb_plan_init(&c->plan);
    lua_newtable(L); /* its metatable: __gc */
    lua_pushcfunction(L, ft_call_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    const int call = lua_gettop(L);

    qb_finetune_params p = {.steps = (int)lqb_opt_int(L, o, "steps", 100), .batch = (int)lqb_opt_int(L, o, "batch", 4),
                            .seq = (int)lqb_opt_int(L, o, "seq", 128), .lr = (float)lqb_opt_num(L, o, "lr", 0),
                            .min_lr_ratio = (float)lqb_opt_num(L, o, "min_lr_ratio", -1),
                            .warmup = (int)lqb_opt_int(L, o, "warmup", -1), .clip = (float)lqb_opt_num(L, o, "clip", 0),
                            .weight_decay = (float)lqb_opt_num(L, o, "weight_decay", 0),
                            .kd = (float)lqb_opt_num(L, o, "kd", -1), .ce = (float)lqb_opt_num(L, o, "ce", 0),
                            .tau = (float)lqb_opt_num(L, o, "tau", 0), .heal = lqb_opt_bool(L, o, "heal", false),
                            .seed = (uint64_t)lqb_opt_int(L, o, "seed", 0),
                            .learn_clip = lqb_opt_bool(L, o, "learn_clip", false),
                            .clip_lr = (float)lqb_opt_num(L, o, "clip_lr", 0)};
    p.shift_windows = lqb_opt_bool(L, o, "shift_windows", false);
    const char *rec = lqb_opt_str(L, o, "recompute", "auto");
    p.recompute = !strcmp(rec, "on") ? 1 : !strcmp(rec, "off") ? -1 : 0;
    if (p.recompute == 0 && strcmp(rec, "auto"))
        return luaL_error(L, "bad option 'recompute' to 'finetune' (\"auto\", \"on\" or \"off\", got '%s')", rec);
    if (p.steps < 1 || p.batch < 1 || p.seq < 2 || p.steps > 10000000 || p.batch > 100000 || p.seq > (1 << 20))
        return luaL_error(L, "bad option 'steps'/'batch'/'seq' to 'finetune' (steps, batch >= 1, seq >= 2)");
    const qb_model *teacher = NULL;
    if (lua_getfield(L, o, "teacher") != LUA_TNIL) teacher = lqb_check_model(L, lua_gettop(L));
    lua_pop(L, 1);
    if (p.heal && teacher == NULL)
        return luaL_error(L, "finetune{heal=true}: give teacher= (the unquantized model %s came from)", m->path);
    if (teacher == m) return luaL_error(L, "finetune: the teacher must be another model (open the file again)");
    const char *text = lqb_opt_str(L, o, "text", NULL);
    if (!text) return luaL_error(L, "finetune: give text= (a file or the text itself)");
    int cb = 0;
    if (lua_getfield(L, o, "on_step") == LUA_TFUNCTION) cb = lua_gettop(L);
    else if (!lua_isnil(L, -1)) return luaL_error(L, "bad option 'on_step' to 'finetune' (function expected)");
    else lua_pop(L, 1);

    if (!p.heal) {
        plan_option(L, o, m, &c->plan);
        if (c->plan.n_rules == 0) return luaL_error(L, "finetune: give plan= (a format, a type or a qb.plan) or heal=true");
        if (!teacher) {
            if (qb_model_open(ctx, m->path, NULL, &c->own_teacher) != QB_OK) return luaL_error(L, "finetune: %s", qb_ctx_errmsg(ctx));
            teacher = c->own_teacher;
        }
    }
    lua_pushstring(L, text);
    int n = 0;
    c->tokens = lqb_eval_tokens(L, m, lua_gettop(L), &n);
    lua_pop(L, 1);
    lqb_check_stop(L, 1);
    if (!p.heal) {
        char msg[400];
        if (qb_plan_unmatched(&c->plan, m, 0, msg, sizeof msg) >= 0) return luaL_error(L, "finetune: %s", msg);
        if (qb_plan_apply_rtn(ctx, m, &c->plan, &(qb_apply_opts){.cancel = lqb_cancel_ptr(L)}) != QB_OK)
            return luaL_error(L, "finetune: %s", qb_ctx_errmsg(ctx));
    }
    if (qb_finetune_begin(ctx, m, teacher, c->tokens, n, &p, &c->ft) != QB_OK) return luaL_error(L, "finetune: %s", qb_ctx_errmsg(ctx));

    lua_createtable(L, 0, 6);
    const int res = lua_gettop(L);
    lua_newtable(L);
    lua_newtable(L);
    lua_newtable(L);
    const int t_loss = res + 1, t_kd = res + 2, t_ce = res + 3;
    double seconds = 0;
    long tokens = 0;
    bool stopped = false;
    while (qb_finetune_steps_done(c->ft) < qb_finetune_get_params(c->ft)->steps) {
        qb_finetune_report r;
        qb_status st = qb_finetune_step(ctx, c->ft, &r, lqb_cancel_ptr(L));
        if (st != QB_OK) return lqb_fail(L, st);
        seconds += r.seconds;
        tokens += r.tokens;
        lua_pushnumber(L, r.loss);
        lua_rawseti(L, t_loss, r.step);
        lua_pushnumber(L, r.kd);
        lua_rawseti(L, t_kd, r.step);
        lua_pushnumber(L, r.ce);
        lua_rawseti(L, t_ce, r.step);
        if (cb) {
            lua_pushvalue(L, cb);
            push_report(L, &r);
            lua_call(L, 1, 1); /* an error propagates; the userdata's __gc frees the run */
            stopped = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
            lua_pop(L, 1);
        }
        lqb_check_stop(L, 1);
        if (stopped) break;
    }
    if (!stopped && qb_finetune_finish(ctx, c->ft) != QB_OK) return luaL_error(L, "finetune: %s", qb_ctx_errmsg(ctx));
    lua_pushvalue(L, t_loss);
    lua_setfield(L, res, "loss");
    lua_pushvalue(L, t_kd);
    lua_setfield(L, res, "kd");
    lua_pushvalue(L, t_ce);
    lua_setfield(L, res, "ce");
    lua_pushvalue(L, res);
    lqb_set_int(L, "steps", qb_finetune_steps_done(c->ft));
    lqb_set_num(L, "seconds", seconds);
    lqb_set_int(L, "tokens", tokens);
    lqb_set_str(L, "mode", p.heal ? "heal" : "qat");
    lua_pushboolean(L, stopped);
    lua_setfield(L, -2, "stopped");
    /* free the run now, while the models it borrowed are surely open (a recipe may close them
       before the collector gets to the call's userdata) */
    lua_pushcfunction(L, ft_call_gc);
    lua_pushvalue(L, call);
    lua_call(L, 1, 0);
    return 1;
}
