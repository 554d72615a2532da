/* lqb_model.c — the qb.model userdata: qb.open, info, tensors, applying plans and llama.cpp
 * mixes, reset, size, perplexity, KL divergence, generation and GGUF export, each a thin call
 * into core (task accuracy and structured pruning: lqb_tasks.c, lqb_prune.c). Userdata close
 * the model on __gc/__close only when they own it. */
#include "lqb_internal.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/eval/eval.h"
#include "core/infer/generate.h"
#include "core/method/fold.h"
#include "core/method/plan_apply.h"
#include "core/util/gguf.h"
#include "core/method/smoothquant.h"
#include "core/quant/apply.h"
#include "core/tokenizer/tokenizer.h"

qb_model *lqb_check_model(lua_State *L, int idx)
{
    lqb_model *u = luaL_checkudata(L, idx, LQB_MODEL);
    if (!u->m) luaL_argerror(L, idx, "the model is closed");
    return u->m;
}

void qb_lua_push_model(lua_State *L, qb_model *m, bool owned)
{
    lqb_model *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->m = m;
    u->owned = owned;
    u->run = NULL;
    luaL_setmetatable(L, LQB_MODEL);
}

qb_run_config *lqb_model_run(lua_State *L, int idx, bool create)
{
    lqb_model *u = luaL_checkudata(L, idx, LQB_MODEL);
    if (!u->run && create && u->m && qb_run_config_new(&lqb_host_of(L)->ctx, u->m, &u->run) != QB_OK)
        luaL_error(L, "%s", qb_ctx_errmsg(&lqb_host_of(L)->ctx));
    return u->run;
}

/* qb.open(path [, {tokenizer=, no_mmap=}]) */
static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int o = lqb_opt_table(L, 2);
    qb_model_opts mo = {.tokenizer_path = lqb_opt_str(L, o, "tokenizer", NULL), .no_mmap = lqb_opt_bool(L, o, "no_mmap", false)};
    lqb_host *h = lqb_host_of(L);
    lqb_model *u = lua_newuserdatauv(L, sizeof *u, 0); /* first, so an allocation error leaks nothing */
    u->m = NULL;
    u->owned = true;
    u->run = NULL;
    luaL_setmetatable(L, LQB_MODEL);
    qb_model *m = NULL;
    if (qb_model_open(&h->ctx, path, &mo, &m) != QB_OK) return luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
    u->m = m;
    return 1;
}

static int l_close(lua_State *L)
{
    lqb_model *u = luaL_checkudata(L, 1, LQB_MODEL);
    if (u->m && u->owned) qb_model_close(u->m);
    u->m = NULL;
    qb_run_config_free(u->run);
    u->run = NULL;
    return 0;
}

static int l_tostring(lua_State *L)
{
    lqb_model *u = luaL_checkudata(L, 1, LQB_MODEL);
    if (!u->m) lua_pushstring(L, "qb.model (closed)");
    else lua_pushfstring(L, "qb.model %s (%s, %I params)", u->m->path, qb_file_kind_name(u->m->kind),
                         (lua_Integer)qb_model_params(u->m));
    return 1;
}

/* info.recipe: what quantbench recorded when it wrote the GGUF (recipe.h), when it did */
static void push_recipe(lua_State *L, const qb_gguf *g)
{
    qb_ctx scratch;
    qb_ctx_init(&scratch);
    qb_plan p;
    qb_recipe_info ri;
    qb_status st = qb_recipe_get(&scratch, g, "", &p, &ri);
    if (!ri.version[0]) {
        if (st == QB_OK) qb_plan_free(&p);
        return;
    }
    lua_createtable(L, 0, 8);
    lqb_set_str(L, "version", ri.version);
    const char *text = qb_gguf_get_str(g, "quantbench.plan");
    if (text) lqb_set_str(L, "plan", text);
    if (ri.type[0]) lqb_set_str(L, "type", ri.type);
    if (ri.calib_file[0]) {
        lqb_set_str(L, "calib_file", ri.calib_file);
        lqb_set_int(L, "calib_bytes", (lua_Integer)ri.calib_bytes);
        lqb_set_str(L, "calib_sha256", ri.calib_sha256);
    }
    lua_setfield(L, -2, "recipe");
    if (st == QB_OK) qb_plan_free(&p);
}

static int l_info(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    const qb_config *c = &m->cfg;
    lua_createtable(L, 0, 20);
    lqb_set_str(L, "path", m->path);
    lqb_set_str(L, "kind", qb_file_kind_name(m->kind));
    lqb_set_str(L, "arch", m->arch);
    lqb_set_str(L, "name", m->name);
    lqb_set_int(L, "dim", c->dim);
    lqb_set_int(L, "hidden_dim", c->hidden_dim);
    lqb_set_int(L, "n_layers", c->n_layers);
    lqb_set_int(L, "n_heads", c->n_heads);
    lqb_set_int(L, "n_kv_heads", c->n_kv_heads);
    lqb_set_int(L, "head_dim", c->head_dim);
    lqb_set_int(L, "vocab_size", c->vocab_size);
    lqb_set_int(L, "seq_len", c->seq_len);
    lqb_set_num(L, "rope_theta", c->rope_theta);
    lqb_set_num(L, "norm_eps", c->norm_eps);
    lua_pushboolean(L, c->tied_output);
    lua_setfield(L, -2, "tied_output");
    char desc[512];
    qb_config_describe(c, desc, sizeof desc);
    lqb_set_str(L, "block", desc);
    lqb_set_int(L, "n_experts", c->n_experts);
    lqb_set_int(L, "n_experts_used", c->n_experts_used);
    lqb_set_int(L, "params", qb_model_params(m));
    lqb_set_int(L, "bytes", (lua_Integer)qb_model_bytes(m));
    lqb_set_int(L, "n_tensors", m->n_tensors);
    if (m->tok) lqb_set_str(L, "tokenizer", qb_tokenizer_describe(m->tok));
    if (m->gguf) push_recipe(L, m->gguf);
    return 1;
}

/* Push the tensor userdata for t, whose user value keeps the model userdata at midx alive. */
static void push_tensor(lua_State *L, int midx, qb_tensor *t)
{
    lqb_tensor *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->t = t;
    lua_pushvalue(L, midx);
    lua_setiuservalue(L, -2, 1);
    luaL_setmetatable(L, LQB_TENSOR);
}

static int tensors_iter(lua_State *L)
{
    lqb_model *u = lua_touserdata(L, lua_upvalueindex(1));
    if (!u->m) return luaL_error(L, "the model was closed during tensors()");
    qb_model *m = u->m;
    const char *pat = lua_tostring(L, lua_upvalueindex(2));
    lua_Integer i = lua_tointeger(L, lua_upvalueindex(3));
    for (; i < m->n_tensors; i++) {
        if (pat && fnmatch(pat, m->tensors[i].name, 0) != 0) continue;
        lua_pushinteger(L, i + 1);
        lua_replace(L, lua_upvalueindex(3));
        push_tensor(L, lua_upvalueindex(1), &m->tensors[i]);
        return 1;
    }
    lua_pushinteger(L, i);
    lua_replace(L, lua_upvalueindex(3));
    return 0;
}

/* model:tensors([pattern]) — iterator over tensors (shell glob on the name) */
static int l_tensors(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    if (!lua_isnoneornil(L, 2)) { /* a glob that names nothing is a mistake, not an empty loop */
        const char *pat = luaL_checkstring(L, 2);
        int i = 0;
        while (i < m->n_tensors && fnmatch(pat, m->tensors[i].name, 0) != 0) i++;
        if (i == m->n_tensors)
            return luaL_error(L, "tensors: pattern '%s' matches no tensor (patterns are shell globs: \"blk.*\")", pat);
    }
    lua_pushvalue(L, 1);
    if (lua_isnoneornil(L, 2)) lua_pushnil(L);
    else lua_pushvalue(L, 2);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, tensors_iter, 3);
    return 1;
}

/* model:tensor(name) — the tensor or nil */
static int l_tensor(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    const char *name = luaL_checkstring(L, 2);
    qb_tensor *t = qb_model_find_tensor(m, name);
    if (!t) {
        lua_pushnil(L);
        return 1;
    }
    push_tensor(L, 1, t);
    return 1;
}

/* model:apply(plan or rules [, {fallback=, method=, calib=, allow_unmatched=, progress=}]):
 * one qb_plan_apply call (staged: on error the model is as it was). A rule that matches no
 * tensor is an error unless allow_unmatched. Returns the model and the tensors fallback left. */
static int l_apply(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    int o = lqb_opt_table(L, 3);
    qb_plan tmp;
    bool owned;
    const qb_plan *p = lqb_to_plan(L, 2, &tmp, &owned);
    char msg[400];
    if (!lqb_opt_bool(L, o, "allow_unmatched", false) && qb_plan_unmatched(p, m, 0, msg, sizeof msg) >= 0)
        return luaL_error(L, "apply: %s", msg);
    lua_newtable(L); /* tensors left as they were (fallback) */
    int skipped = lua_gettop(L);
    if (lqb_opt_bool(L, o, "fallback", false)) {
        /* one exact rule per tensor: ggml types fall back as llama-quantize does; other formats
         * that cannot store the tensor's rows leave it unchanged and are listed */
        qb_plan *fb = lua_newuserdatauv(L, sizeof *fb, 0);
        qb_plan_init(fb);
        luaL_setmetatable(L, LQB_PLAN);
        qb_ctx scratch;
        qb_ctx_init(&scratch);
        for (int i = 0; i < m->n_tensors; i++) {
            const qb_tensor *t = &m->tensors[i];
            int k = qb_tensor_quantizable(t) ? qb_plan_lookup_rule(p, t->name) : -1;
            if (k < 0) continue;
            qb_format ff = qb_format_fallback(&p->rules[k].fmt, t->ne[0]);
            if (qb_format_check(&scratch, &ff, t->ne[0]) != QB_OK) {
                lua_pushstring(L, t->name);
                lua_rawseti(L, skipped, (lua_Integer)lua_rawlen(L, skipped) + 1);
                continue;
            }
            if (qb_plan_add_rule(&lqb_host_of(L)->ctx, fb, t->name, &ff, &p->rules[k].method, 0) != QB_OK)
                return lqb_fail(L, QB_ERR_NOMEM);
        }
        p = fb;
    }
    lqb_apply_plan(L, m, p, o);
    if (owned) qb_plan_free(&tmp);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, skipped);
    return 2;
}

/* model:apply_ftype("Q4_K_M" [, {pure=, imatrix=, progress=}]): with an imatrix, the mix
 * llama-quantize --imatrix chooses, applied by qb_plan_apply with the importance weights */
static int l_apply_ftype(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    const char *ft = luaL_checkstring(L, 2);
    int o = lqb_opt_table(L, 3);
    bool pure = lqb_opt_bool(L, o, "pure", false);
    qb_importance imp;
    if (lqb_opt_importance(L, o, "apply_ftype", &imp)) {
        qb_plan *p = lua_newuserdatauv(L, sizeof *p, 0); /* collected with the stack on errors */
        qb_plan_init(p);
        luaL_setmetatable(L, LQB_PLAN);
        if (qb_method_plan_im(&lqb_host_of(L)->ctx, m, ft, pure, true, p) != QB_OK) return lqb_fail(L, QB_ERR_ARG);
        lqb_apply_plan(L, m, p, o);
        lua_settop(L, 1);
        return 1;
    }
    lqb_progress pr;
    lqb_progress_begin(L, &pr, "apply", o);
    qb_apply_opts ao = {lqb_progress_cb, &pr, lqb_cancel_ptr(L)};
    qb_status st = qb_ftype_apply(&lqb_host_of(L)->ctx, m, ft, pure, &ao);
    lqb_progress_end(L, &pr, st);
    lua_settop(L, 1);
    return 1;
}

/* model:reset([pattern]) — back to the original weights; returns the number of tensors reset */
static int l_reset(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    const char *pat = luaL_optstring(L, 2, NULL);
    lqb_host *h = lqb_host_of(L);
    lua_Integer n = 0;
    if (!pat) { /* everything: activation settings, folded norms (AWQ, SmoothQuant) and matrices */
        for (int i = 0; i < m->n_tensors; i++) {
            const qb_tensor *t = &m->tensors[i];
            n += qb_tensor_quantizable(t) && qb_format_storage_type(&t->fmt) != t->src_type;
        }
        if (qb_w8a8_clear(&h->ctx, m, lqb_model_run(L, 1, false)) != QB_OK || qb_fold_reset(&h->ctx, m) != QB_OK) return lqb_fail(L, QB_ERR_ARG);
        lua_pushinteger(L, n);
        return 1;
    }
    for (int i = 0; i < m->n_tensors; i++) {
        qb_tensor *t = &m->tensors[i];
        if (pat && fnmatch(pat, t->name, 0) != 0) continue;
        if (!qb_tensor_quantizable(t)) continue;
        if (qb_format_storage_type(&t->fmt) == t->src_type) continue;
        if (qb_tensor_restore(&h->ctx, t) != QB_OK) return lqb_fail(L, QB_ERR_ARG);
        n++;
    }
    lua_pushinteger(L, n);
    return 1;
}

/* model:size() — bytes now, F16/F32 equivalents, bpw, projections */
static int l_size(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    qb_model_size s;
    qb_quant_size_compute(m, &s);
    lua_createtable(L, 0, 8);
    lqb_set_int(L, "bytes", (lua_Integer)s.bytes);
    lqb_set_int(L, "bytes_f16", (lua_Integer)s.bytes_f16);
    lqb_set_int(L, "bytes_f32", (lua_Integer)s.bytes_f32);
    lqb_set_int(L, "params", s.params);
    lqb_set_num(L, "bpw", s.bpw);
    lqb_set_num(L, "gib_7b", s.proj_gib[0]);
    lqb_set_num(L, "gib_13b", s.proj_gib[1]);
    lqb_set_num(L, "gib_70b", s.proj_gib[2]);
    return 1;
}

/* Tokens of the evaluation text: a readable file path, else the string itself as text.
 * Returns malloc'd tokens (caller frees) or raises. */
int32_t *lqb_eval_tokens(lua_State *L, qb_model *m, int idx, int *n)
{
    lqb_host *h = lqb_host_of(L);
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    if (!m->tok) luaL_error(L, "%s: the model has no tokenizer", m->path);
    int32_t *toks = NULL;
    bool is_file = len < 4096 && !memchr(s, '\n', len);
    FILE *f = is_file ? fopen(s, "rb") : NULL;
    qb_status st;
    if (f) {
        fclose(f);
        st = qb_eval_load_text(&h->ctx, m, s, &toks, n);
    } else {
        if (is_file && !memchr(s, ' ', len))
            luaL_error(L, "%s: cannot open the evaluation text (pass a readable file or the text itself)", s);
        st = qb_tokenize(&h->ctx, m->tok, s, len, qb_tokenizer_add_bos(m->tok), &toks, n);
    }
    if (st != QB_OK) {
        free(toks);
        lqb_fail(L, st);
    }
    return toks;
}

void lqb_push_ppl(lua_State *L, const qb_ppl_result *r)
{
    lua_createtable(L, 0, 8);
    lqb_set_num(L, "ppl", r->ppl);
    lqb_set_num(L, "ppl_err", r->ppl_err);
    lqb_set_num(L, "nll", r->nll_mean);
    lqb_set_int(L, "chunks", r->n_chunks);
    lqb_set_int(L, "ctx", r->n_ctx);
    lqb_set_int(L, "tokens", r->n_scored);
    lqb_set_num(L, "seconds", r->seconds);
}

/* model:perplexity(text_or_path [, {ctx=, chunks=, progress=}]) */
static int l_perplexity(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    luaL_checkstring(L, 2);
    int o = lqb_opt_table(L, 3);
    int n_ctx = (int)lqb_opt_int(L, o, "ctx", 0), chunks = (int)lqb_opt_int(L, o, "chunks", 0);
    lqb_progress pr;
    lqb_progress_begin(L, &pr, "perplexity", o);
    int n = 0;
    int32_t *toks = lqb_eval_tokens(L, m, 2, &n);
    qb_eval_opts eo = {n_ctx, chunks, lqb_progress_cb, &pr, lqb_cancel_ptr(L), lqb_model_run(L, 1, false), NULL, NULL};
    qb_ppl_result r;
    qb_status st = qb_eval_perplexity(&lqb_host_of(L)->ctx, m, toks, n, &eo, &r);
    free(toks);
    lqb_progress_end(L, &pr, st);
    lqb_push_ppl(L, &r);
    return 1;
}

/* model:kld(base, text_or_path [, {ctx=, chunks=, progress=}]) — KL(base ‖ model); a string
 * base is a KL-divergence base file (lqb_kld.c) */
static int l_kld(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING) return lqb_kld_with_base(L);
    qb_model *m = lqb_check_model(L, 1);
    qb_model *base = lqb_check_model(L, 2);
    luaL_checkstring(L, 3);
    int o = lqb_opt_table(L, 4);
    int n_ctx = (int)lqb_opt_int(L, o, "ctx", 0), chunks = (int)lqb_opt_int(L, o, "chunks", 0);
    lqb_progress pr;
    lqb_progress_begin(L, &pr, "kld", o);
    int n = 0;
    int32_t *toks = lqb_eval_tokens(L, base, 3, &n);
    qb_eval_opts eo = {n_ctx, chunks, lqb_progress_cb, &pr, lqb_cancel_ptr(L), lqb_model_run(L, 1, false),
                       lqb_model_run(L, 2, false), NULL};
    qb_kld_result r;
    qb_status st = qb_eval_kld(&lqb_host_of(L)->ctx, base, m, toks, n, &eo, &r);
    free(toks);
    lqb_progress_end(L, &pr, st);
    lua_createtable(L, 0, 12);
    lqb_push_ppl(L, &r.base);
    lua_setfield(L, -2, "base");
    lqb_push_ppl(L, &r.other);
    lua_setfield(L, -2, "other");
    lqb_set_num(L, "ppl_base", r.base.ppl);
    lqb_set_num(L, "ppl", r.other.ppl);
    lqb_set_num(L, "dppl", r.dppl);
    lqb_set_num(L, "kld", r.kld_mean);
    lqb_set_num(L, "kld_err", r.kld_err);
    lqb_set_num(L, "kld_median", r.kld_median);
    lqb_set_num(L, "kld_p99", r.kld_p99);
    lqb_set_num(L, "kld_max", r.kld_max);
    lqb_set_num(L, "top1", r.top1_pct);
    return 1;
}

typedef struct {
    lua_State *L;
    const qb_model *m;
    luaL_Buffer *b;
    int cb_ref;
    int failed, err_ref;
} gen_state;

static bool on_token(void *ud, int32_t prev, int32_t id)
{
    gen_state *g = ud;
    lqb_host *h = lqb_host_of(g->L);
    if ((h->cancel && *h->cancel) || (h->deadline > 0 && lqb_now() > h->deadline)) h->stop = 1;
    if (g->cb_ref == LUA_NOREF || g->failed) return !h->stop;
    char buf[256];
    size_t n = qb_token_to_bytes(g->m->tok, prev, id, buf, sizeof buf);
    if (n > sizeof buf) n = sizeof buf;
    lua_rawgeti(g->L, LUA_REGISTRYINDEX, g->cb_ref);
    lua_pushlstring(g->L, buf, n);
    lua_pushinteger(g->L, id);
    if (lua_pcall(g->L, 2, 1, 0) != LUA_OK) {
        g->failed = 1;
        g->err_ref = luaL_ref(g->L, LUA_REGISTRYINDEX);
        return false;
    }
    bool go = !(lua_type(g->L, -1) == LUA_TBOOLEAN && !lua_toboolean(g->L, -1));
    lua_pop(g->L, 1);
    return go && !h->stop;
}

/* model:generate(prompt [, {n=, temp=, top_p=, top_k=, seed=, on_token=}]) → text, stats */
static int l_generate(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    size_t plen;
    const char *prompt = luaL_checklstring(L, 2, &plen);
    int o = lqb_opt_table(L, 3);
    qb_generate_opts go;
    qb_generate_defaults(&go);
    go.n_predict = (int)lqb_opt_int(L, o, "n", 64);
    go.sampling.temperature = (float)lqb_opt_num(L, o, "temp", 0.0);
    go.sampling.top_p = (float)lqb_opt_num(L, o, "top_p", 1.0);
    go.sampling.top_k = (int)lqb_opt_int(L, o, "top_k", 0);
    go.sampling.seed = (uint64_t)lqb_opt_int(L, o, "seed", 42);
    if (go.n_predict < 0) luaL_error(L, "bad option 'n' to 'generate' (must be >= 0)");
    if (!m->tok) return luaL_error(L, "%s: the model has no tokenizer", m->path);
    gen_state gs = {L, m, NULL, LUA_NOREF, 0, LUA_NOREF};
    if (o) {
        int ty = lua_getfield(L, o, "on_token");
        if (ty == LUA_TFUNCTION) gs.cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        else if (ty != LUA_TNIL) return luaL_error(L, "bad option 'on_token' to 'generate' (function expected)");
        else lua_pop(L, 1);
    }
    lqb_host *h = lqb_host_of(L);
    lqb_check_stop(L, 1);
    h->stop = 0;
    go.on_token = on_token;
    go.ud = &gs;
    go.cancel = lqb_cancel_ptr(L);
    go.run = lqb_model_run(L, 1, false);
    qb_generate_result r;
    qb_status st = qb_generate_text(&h->ctx, m, prompt, plen, &go, &r);
    char *text = st == QB_OK ? qb_detokenize(m->tok, r.ids, r.n_generated) : NULL;
    int n_prompt = r.n_prompt, n_gen = r.n_generated, hit_eos = r.hit_eos;
    double prompt_tps = r.prompt_seconds > 0 ? r.n_prompt / r.prompt_seconds : 0;
    double gen_tps = r.gen_seconds > 0 ? r.n_generated / r.gen_seconds : 0;
    qb_generate_result_free(&r);
    if (gs.cb_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, gs.cb_ref);
    h->stop = 0;
    if (gs.failed) {
        free(text);
        lua_rawgeti(L, LUA_REGISTRYINDEX, gs.err_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, gs.err_ref);
        return lua_error(L);
    }
    if (st != QB_OK) return lqb_fail(L, st);
    lua_pushstring(L, text ? text : "");
    free(text);
    lua_createtable(L, 0, 6);
    lqb_set_int(L, "n_prompt", n_prompt);
    lqb_set_int(L, "n_generated", n_gen);
    lqb_set_num(L, "prompt_tps", prompt_tps);
    lqb_set_num(L, "gen_tps", gen_tps);
    lua_pushboolean(L, hit_eos);
    lua_setfield(L, -2, "hit_eos");
    return 2;
}

/* model:export_gguf(path [, plan [, {calib=c}]]) — path inside the output folder; the recipe
 * (plan, the calibration text's size and sha256, version) recorded with the file */
static int l_export(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    const char *path = luaL_checkstring(L, 2);
    const qb_plan *p = lua_isnoneornil(L, 3) ? NULL : lqb_check_plan(L, 3);
    int o = lqb_opt_table(L, 4);
    const struct qb_calib *cal = NULL;
    if (o && lua_getfield(L, o, "calib") != LUA_TNIL) {
        bool given;
        cal = lqb_opt_calib(L, -1, m, &given);
        if (!given) return luaL_error(L, "bad option 'calib' to 'export_gguf' (qb.calib expected, got %s)",
                                      luaL_typename(L, -1));
    }
    qb_recipe rec;
    qb_recipe_from(&rec, p, cal);
    char *full = lqb_output_path(L, path);
    lqb_check_stop(L, 1);
    lqb_host *h = lqb_host_of(L);
    qb_status st = qb_export_gguf_recipe(&h->ctx, m, full, &rec, h->cancel);
    free(full);
    if (st != QB_OK) return lqb_fail(L, st);
    lua_pushstring(L, path);
    return 1;
}

void lqb_open_model(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"info", l_info},         {"tensors", l_tensors},   {"tensor", l_tensor},
        {"apply", l_apply},       {"apply_ftype", l_apply_ftype}, {"reset", l_reset},
        {"size", l_size},         {"perplexity", l_perplexity}, {"kld", l_kld},
        {"tasks", lqb_model_tasks},       {"finetune", lqb_model_finetune},
        {"prune_structured", lqb_model_prune_structured},
        {"generate", l_generate}, {"export_gguf", l_export}, {"close", l_close},
        {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__gc", l_close}, {"__close", l_close}, {"__tostring", l_tostring}, {NULL, NULL},
    };
    luaL_newmetatable(L, LQB_MODEL);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_open);
    lua_setfield(L, -2, "open");
}
