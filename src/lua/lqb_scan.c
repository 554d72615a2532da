/* lqb_scan.c — the sensitivity scan, the mixed-precision search and pruning from Lua:
 * qb.sensitivity(model, {text=, format=, per=, …}) → ranked rows; qb.search{model=, text=,
 * bpw=, candidates=, …} → a plan and what it achieves; model:prune / tensor:prune. */
#include "lqb_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/eval/sensitivity.h"
#include "core/eval/fisher.h"
#include "core/calib/imatrix.h"
#include "core/method/prune.h"
#include "core/eval/search.h"

/* The evaluation tokens of option `key` (a file path or the text itself); malloc'd. */
static int32_t *opt_tokens(lua_State *L, qb_model *m, int o, const char *key, int *n)
{
    if (!o || lua_getfield(L, o, key) != LUA_TSTRING)
        luaL_error(L, "option '%s' (an evaluation text or its path) is required", key);
    int32_t *t = lqb_eval_tokens(L, m, lua_gettop(L), n);
    lua_pop(L, 1);
    return t;
}

/* layers = N (one block) or {FIRST, LAST} (inclusive): only those blocks' matrices. */
static void opt_layers(lua_State *L, int o, qb_scan_opts *so)
{
    int ty = lua_getfield(L, o, "layers");
    bool ok = ty == LUA_TNIL;
    if (ty == LUA_TNUMBER && lua_isinteger(L, -1)) {
        so->layer_first = so->layer_last = (int)lua_tointeger(L, -1);
        ok = true;
    } else if (ty == LUA_TTABLE && lua_rawlen(L, -1) == 2) {
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        ok = lua_isinteger(L, -2) && lua_isinteger(L, -1);
        so->layer_first = (int)lua_tointeger(L, -2);
        so->layer_last = (int)lua_tointeger(L, -1);
        lua_pop(L, 2);
    }
    so->layers_only = ty != LUA_TNIL;
    if (!ok) luaL_error(L, "bad option 'layers' to 'sensitivity' (a block number or {first, last} expected)");
    lua_pop(L, 1);
}

/* qb.sensitivity(model, {text=, format="q4_k", per="tensor"|"layer", ctx=, tokens=,
 * blocks_only=, layers=N | {FIRST, LAST}, imatrix=, progress=}) → {rows={…}, base={ppl=…},
 * format=, skipped=, skipped_why=, seconds=}. With imatrix= (qb.load_imatrix / qb.imatrix)
 * and no text: the estimate alone (rows carry est_err / est_rel, ranked by est_err); with
 * both: the exact scan, its rows with the estimate's figures too, and spearman = {err=,
 * rel=, n=} (each estimate's rank correlation with the measured KLD). With estimate="fisher"
 * and calib= (a text or its path; calib_tokens=, labels=, positions=, samples=, seed=, see
 * lqb_opt_fisher) instead of imatrix=: the Fisher estimate (est_err: the estimated KLD),
 * refine=K measuring its top K units on the calibration text (rows refined=true, kld set,
 * spearman.ranked: the refined order's rank correlation). */
static int l_sensitivity(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    int o = lqb_opt_table(L, 2);
    if (!o) return luaL_argerror(L, 2, "options table with text= and format= expected");
    qb_format f;
    lua_getfield(L, o, "format");
    if (lua_isnil(L, -1)) return luaL_error(L, "bad option 'format' to 'sensitivity' (a format is required)");
    lqb_check_format(L, -1, &f);
    lua_pop(L, 1);
    static const char *pers[] = {"tensor", "layer", NULL};
    const char *per = lqb_opt_str(L, o, "per", "tensor");
    int per_i = -1;
    for (int i = 0; pers[i]; i++)
        if (!strcmp(per, pers[i])) per_i = i;
    if (per_i < 0) return luaL_error(L, "bad option 'per' to 'sensitivity' (\"tensor\" or \"layer\" expected)");
    qb_scan_opts so = {0};
    so.per = (qb_scan_unit)per_i;
    so.n_ctx = (int)lqb_opt_int(L, o, "ctx", 0);
    so.n_tokens = (int)lqb_opt_int(L, o, "tokens", 0);
    so.blocks_only = lqb_opt_bool(L, o, "blocks_only", false);
    so.no_reuse = lqb_opt_bool(L, o, "no_reuse", false);
    lua_Integer cmb = lqb_opt_int(L, o, "cache_mb", LUA_MININTEGER); /* absent: the default; 0: keep nothing */
    if (cmb != LUA_MININTEGER && (cmb < 0 || cmb > (1 << 24)))
        return luaL_error(L, "bad option 'cache_mb' to 'sensitivity' (0 .. 16777216 MiB expected)");
    so.cache_mb = cmb == LUA_MININTEGER ? 0 : cmb == 0 ? QB_SCAN_NO_CACHE : (int)cmb;
    opt_layers(L, o, &so);
    const int refine = (int)lqb_opt_int(L, o, "refine", 0);
    if (lua_getfield(L, o, "imatrix") != LUA_TNIL && lqb_opt_str(L, o, "estimate", NULL))
        return luaL_error(L, "bad options to 'sensitivity' (imatrix= and estimate=: one estimate at a time)");
    lua_pop(L, 1);
    lqb_fisher_box *fb = lqb_opt_fisher(L, m, o, "calib", &f, 1); /* pushed, when asked */
    if (refine < 0 || (refine > 0 && !fb))
        return luaL_error(L, "bad option 'refine' to 'sensitivity' (a count of units, with estimate=\"fisher\")");
    lqb_progress pr;
    lqb_progress_begin(L, &pr, "sensitivity", o);
    so.progress = lqb_progress_cb;
    so.ud = &pr;
    so.cancel = lqb_cancel_ptr(L);
    qb_imatrix *im = NULL;
    if (lua_getfield(L, o, "imatrix") != LUA_TNIL) im = lqb_check_imatrix(L, -1);
    lua_pop(L, 1); /* the options table keeps it alive */
    lua_getfield(L, o, "text");
    bool has_text = !lua_isnil(L, -1);
    lua_pop(L, 1);
    qb_ctx *ctx = &lqb_host_of(L)->ctx;
    qb_scan_result r = {0}, est = {0};
    qb_status st = QB_OK;
    if (im && (st = qb_imatrix_match(ctx, im, m)) == QB_OK) st = qb_scan_estimate(ctx, m, &f, im, &so, &est);
    if (fb) st = qb_scan_estimate_fisher(ctx, m, &f, fb->f, &so, &est);
    if (fb && st == QB_OK && refine > 0) st = qb_scan_refine(ctx, m, &f, &est, refine, fb->tokens, fb->n_tokens, &so);
    int n_joined = 0, n_ranked = 0;
    double rho_err = 0, rho_rel = 0, rho_ranked = 0;
    if (st == QB_OK && (has_text || (!im && !fb))) {
        int n = 0;
        int32_t *toks = opt_tokens(L, m, o, "text", &n);
        st = qb_sensitivity_scan(ctx, m, &f, toks, n, &so, &r);
        free(toks);
        if (st == QB_OK && fb) rho_ranked = qb_scan_rank_rho(&r, &est, &n_ranked);
        if (st == QB_OK && (im || fb)) qb_scan_join_estimate(&r, &est, &n_joined, &rho_err, &rho_rel);
        qb_scan_result_free(&est);
    } else {
        r = est;
    }
    if (st != QB_OK) qb_scan_result_free(&r);
    lqb_progress_end(L, &pr, st);
    lua_createtable(L, 0, 8);
    lua_createtable(L, r.n_rows, 0);
    for (int i = 0; i < r.n_rows; i++) {
        const qb_scan_row *w = &r.rows[i];
        lua_createtable(L, 0, 14);
        lqb_set_str(L, "name", w->name);
        lqb_set_str(L, "tensor", w->name);
        lqb_set_str(L, "format", w->format);
        lqb_set_int(L, "layer", w->layer);
        lqb_set_int(L, "n_tensors", w->n_tensors);
        lqb_set_int(L, "params", w->params);
        lqb_set_int(L, "bytes", (lua_Integer)w->bytes);
        lqb_set_int(L, "bytes_base", (lua_Integer)w->bytes_base);
        lqb_set_num(L, "bpw", w->bpw);
        lqb_set_num(L, "kld", w->kld.kld_mean);
        lqb_set_num(L, "kld_p99", w->kld.kld_p99);
        lqb_set_num(L, "top1", w->kld.top1_pct);
        lqb_set_num(L, "dppl", w->kld.dppl);
        lqb_set_num(L, "ppl", w->kld.other.ppl);
        if (w->kld.cost > 0) lqb_set_num(L, "cost", w->kld.cost);
        if (w->has_est) {
            lqb_set_num(L, "est_err", w->est_err);
            lqb_set_num(L, "est_rel", w->est_rel);
        }
        if (w->refined) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "refined");
        }
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "rows");
    lua_createtable(L, 0, 3);
    lqb_set_num(L, "ppl", r.base.ppl);
    lqb_set_num(L, "ppl_err", r.base.ppl_err);
    lqb_set_int(L, "chunks", r.base.n_chunks);
    lua_setfield(L, -2, "base");
    lqb_set_str(L, "format", r.format);
    lqb_set_int(L, "skipped", r.n_skipped);
    lqb_set_str(L, "skipped_why", r.skipped_why);
    lqb_set_num(L, "seconds", r.seconds);
    if (r.stats.cost_mean > 0) {
        lua_createtable(L, 0, 4);
        lqb_set_num(L, "mean", r.stats.cost_mean);
        lqb_set_num(L, "all", r.stats.cost_all);
        lqb_set_int(L, "cache_bytes", (lua_Integer)r.stats.cache_used);
        lqb_set_str(L, "note", r.stats.note);
        lua_setfield(L, -2, "cost");
    }
    if (n_joined >= 2) {
        lua_createtable(L, 0, 3);
        lqb_set_num(L, "err", rho_err);
        lqb_set_num(L, "rel", rho_rel);
        lqb_set_int(L, "n", n_joined);
        if (fb && refine > 0 && n_ranked >= 2) lqb_set_num(L, "ranked", rho_ranked);
        lua_setfield(L, -2, "spearman");
    }
    qb_scan_result_free(&r);
    return 1;
}

/* qb.search{model=, text=, bpw=, candidates={"q3_k","q4_k",…} or "q3_k,q4_k", ctx=, tokens=,
 * rounds=, swaps=, estimate="fisher" (the costs from the Fisher estimate on text=, see
 * lqb_opt_fisher; then kld and kld_greedy are NaN unless rounds= asks), progress=} → plan,
 * {bpw=, bytes=, budget_bpw=, kld=, kld_greedy=, kld_predicted=, swaps=, variants=, seconds=} */
static int l_search(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "model");
    qb_model *m = lqb_check_model(L, 2);
    qb_search_opts so = {0};
    so.bpw = lqb_opt_num(L, 1, "bpw", 0);
    if (!(so.bpw > 0)) return luaL_error(L, "bad option 'bpw' to 'search' (a positive budget is required)");
    so.n_ctx = (int)lqb_opt_int(L, 1, "ctx", 0);
    so.n_tokens = (int)lqb_opt_int(L, 1, "tokens", 0);
    so.rounds = (int)lqb_opt_int(L, 1, "rounds", 0);
    so.swaps = (int)lqb_opt_int(L, 1, "swaps", 0);
    qb_format *cands = NULL;
    int nc = 0;
    int ty = lua_getfield(L, 1, "candidates");
    if (ty == LUA_TTABLE) {
        nc = (int)lua_rawlen(L, -1);
        if (nc < 1 || nc > 64) return luaL_error(L, "bad option 'candidates' to 'search' (1..64 formats expected)");
        cands = lua_newuserdatauv(L, sizeof *cands * (size_t)nc, 0);
        for (int i = 0; i < nc; i++) {
            lua_rawgeti(L, -2, i + 1);
            lqb_check_format(L, -1, &cands[i]);
            lua_pop(L, 1);
        }
    } else if (ty == LUA_TSTRING) {
        qb_format *tmp = NULL;
        lqb_host *h = lqb_host_of(L);
        if (qb_search_parse_candidates(&h->ctx, lua_tostring(L, -1), &tmp, &nc) != QB_OK)
            return luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
        cands = lua_newuserdatauv(L, sizeof *cands * (size_t)(nc ? nc : 1), 0);
        memcpy(cands, tmp, sizeof *cands * (size_t)nc);
        free(tmp);
    } else if (ty != LUA_TNIL) {
        return luaL_error(L, "bad option 'candidates' to 'search' (list or comma-separated string expected)");
    }
    so.candidates = cands;
    so.n_candidates = nc;
    lqb_progress pr;
    lqb_progress_begin(L, &pr, "search", 1);
    so.progress = lqb_progress_cb;
    so.ud = &pr;
    so.cancel = lqb_cancel_ptr(L);
    qb_format def[QB_SEARCH_MAX_DEFAULTS];
    const int n_def = qb_search_default_candidates(def);
    /* pushed, when asked */
    lqb_fisher_box *fb = lqb_opt_fisher(L, m, 1, "text", cands ? cands : def, cands ? nc : n_def);
    so.fisher = fb ? fb->f : NULL;
    int n = 0;
    int32_t *toks = opt_tokens(L, m, 1, "text", &n);
    qb_search_result r;
    memset(&r, 0, sizeof r);
    qb_status st = qb_search_mixed(&lqb_host_of(L)->ctx, m, toks, n, &so, &r);
    free(toks);
    if (st != QB_OK) qb_search_result_free(&r);
    lqb_progress_end(L, &pr, st);
    lqb_push_plan(L, &r.plan); /* takes the plan */
    lua_createtable(L, 0, 10);
    lqb_set_num(L, "bpw", r.bpw);
    lqb_set_int(L, "bytes", (lua_Integer)r.bytes);
    lqb_set_num(L, "budget_bpw", r.budget_bpw);
    lqb_set_num(L, "kld", r.kld);
    lqb_set_num(L, "kld_greedy", r.kld_greedy);
    lqb_set_num(L, "kld_predicted", r.kld_predicted);
    lqb_set_int(L, "swaps", r.n_swaps);
    lqb_set_int(L, "variants", r.n_variants);
    lqb_set_num(L, "seconds", r.seconds);
    qb_search_result_free(&r);
    return 2;
}

static void check_prune(lua_State *L, int idx, qb_prune *p, qb_format *f, const qb_format **fp)
{
    lqb_host *h = lqb_host_of(L);
    if (qb_prune_parse(&h->ctx, luaL_checkstring(L, idx), p) != QB_OK) luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
    int o = lqb_opt_table(L, idx + 1);
    *fp = NULL;
    if (o && lua_getfield(L, o, "format") != LUA_TNIL) {
        lqb_check_format(L, -1, f);
        *fp = f;
    }
    if (o) lua_pop(L, 1);
}

/* model:prune("0.5" | "2:4" [, {format=}]) — every block matrix, from the original values */
static int l_model_prune(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    qb_prune p;
    qb_format f;
    const qb_format *fp;
    check_prune(L, 2, &p, &f, &fp);
    lqb_check_stop(L, 1);
    lqb_host *h = lqb_host_of(L);
    qb_status st = qb_prune_apply(&h->ctx, m, &p, fp, h->cancel);
    if (st != QB_OK) return lqb_fail(L, st);
    lua_settop(L, 1);
    return 1;
}

void lqb_open_scan(lua_State *L)
{
    lua_pushcfunction(L, l_sensitivity);
    lua_setfield(L, -2, "sensitivity");
    lua_pushcfunction(L, l_search);
    lua_setfield(L, -2, "search");
    luaL_getmetatable(L, LQB_MODEL);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, l_model_prune);
    lua_setfield(L, -2, "prune");
    lua_pop(L, 2);
}
