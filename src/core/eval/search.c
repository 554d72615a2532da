/* search.c — mixed-precision search (see search.h): scan every matrix × candidate with model
 * views, greedy multiple-choice knapsack on KLD per byte, then measured swaps. */
#include "search.h"
#include "../quant/apply.h"
#include "../quant/view.h"
#include "sensitivity.h"
#include "fisher.h"
#include "eval_internal.h"

#include <math.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One storable choice for one matrix. */
typedef struct {
    qb_format f;   /* after fallback */
    size_t bytes;
    double kld;    /* scanned, this matrix alone */
    qb_model *view; /* the scan's view holding this matrix in f (owned here) */
} option;

typedef struct {
    int index;     /* in the model's table */
    option *opt;   /* sorted by bytes, ascending */
    int n_opt;
} matrix;

typedef struct {
    int a, a_to, b, b_to; /* matrix a to option a_to, matrix b (or -1) to option b_to */
    double pred;          /* predicted KLD change */
} swap;

void qb_search_result_free(qb_search_result *r)
{
    if (!r) return;
    qb_plan_free(&r->plan);
    memset(r, 0, sizeof *r);
}

int qb_search_default_candidates(qb_format out[QB_SEARCH_MAX_DEFAULTS])
{
    static const qb_type defaults[] = {QB_TYPE_Q2_K, QB_TYPE_Q3_K, QB_TYPE_Q4_K,
                                       QB_TYPE_Q5_K, QB_TYPE_Q6_K, QB_TYPE_Q8_0};
    const int n = (int)(sizeof defaults / sizeof *defaults);
    for (int i = 0; i < n; i++) out[i] = qb_format_ggml(defaults[i]);
    return n;
}

qb_status qb_search_parse_candidates(qb_ctx *ctx, const char *list, qb_format **out, int *n)
{
    *out = NULL;
    *n = 0;
    if (!list || !*list) return qb_fail(ctx, QB_ERR_ARG, "empty candidate list");
    char *copy = strdup(list);
    qb_format *fs = calloc(strlen(list) / 2 + 2, sizeof *fs);
    if (!copy || !fs) {
        free(copy);
        free(fs);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    }
    int k = 0;
    qb_status st = QB_OK;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if ((st = qb_format_parse(ctx, tok, &fs[k])) != QB_OK) {
            char why[sizeof ctx->errmsg];
            snprintf(why, sizeof why, "%s", ctx->errmsg);
            st = qb_fail(ctx, st, "candidate '%.40s': %.400s", tok, why);
            break;
        }
        k++;
    }
    free(copy);
    if (st == QB_OK && k == 0) st = qb_fail(ctx, QB_ERR_ARG, "empty candidate list");
    if (st != QB_OK) {
        free(fs);
        return st;
    }
    *out = fs;
    *n = k;
    return QB_OK;
}

double qb_plan_bpw(const qb_model *m, const qb_plan *plan)
{
    double bits = 0, w = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i];
        if (!qb_tensor_quantizable(t)) continue;
        const qb_format *p = plan ? qb_plan_lookup(plan, t->name) : NULL;
        qb_format f = p ? qb_format_fallback(p, t->ne[0]) : t->fmt;
        size_t b = p ? qb_format_row_bytes(&f, t->ne[0]) * (size_t)qb_tensor_rows(t) : t->nbytes;
        bits += 8.0 * (double)b;
        w += (double)qb_tensor_nelements(t);
    }
    return w > 0 ? bits / w : 0;
}

static int cmp_option(const void *a, const void *b)
{
    const option *x = a, *y = b;
    return (x->bytes > y->bytes) - (x->bytes < y->bytes);
}

static int cmp_swap(const void *a, const void *b)
{
    const swap *x = a, *y = b;
    return (x->pred > y->pred) - (x->pred < y->pred);
}

/* The storable, distinct options of matrix t for the candidates. */
static qb_status make_options(qb_ctx *ctx, const qb_tensor *t, const qb_format *cand, int n_cand, matrix *mx)
{
    mx->opt = calloc((size_t)n_cand, sizeof *mx->opt);
    if (!mx->opt) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    for (int c = 0; c < n_cand; c++) {
        qb_format f = qb_format_fallback(&cand[c], t->ne[0]);
        qb_ctx scratch = *ctx;
        if (qb_format_check(&scratch, &f, t->ne[0]) != QB_OK) continue;
        bool dup = false;
        for (int k = 0; k < mx->n_opt; k++) dup |= qb_format_equal(&mx->opt[k].f, &f);
        if (dup) continue;
        mx->opt[mx->n_opt].f = f;
        mx->opt[mx->n_opt++].bytes = qb_format_row_bytes(&f, t->ne[0]) * (size_t)qb_tensor_rows(t);
    }
    if (mx->n_opt == 0) {
        char name[32];
        qb_format_name(&cand[0], name, sizeof name);
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "tensor %s (rows of %lld): no candidate format can store it (%s…)",
                       t->name, (long long)t->ne[0], name);
    }
    qsort(mx->opt, (size_t)mx->n_opt, sizeof *mx->opt, cmp_option);
    return QB_OK;
}

/* A view of m with every matrix in its chosen option: the scan's bytes, borrowed from the
 * option's view (which outlives every mix view: both live until qb_search_mixed returns), so
 * mixes that share an option share its bytes and the engine sees at once what they share. */
static qb_status mix_view(qb_ctx *ctx, const qb_model *m, const matrix *mx, int n_mx, const int *choice,
                          qb_model **out)
{
    qb_status st = qb_model_view_new(ctx, m, out);
    for (int t = 0; st == QB_OK && t < n_mx; t++) {
        const option *o = &mx[t].opt[choice[t]];
        const qb_tensor *src = &o->view->tensors[mx[t].index];
        if (!qb_model_view_changed(o->view, mx[t].index)) continue; /* the base's own bytes */
        st = qb_model_view_put(ctx, *out, mx[t].index, &o->f, NULL, src->data, src->nbytes);
    }
    if (st != QB_OK) {
        qb_model_view_free(*out);
        *out = NULL;
    }
    return st;
}

static size_t mix_bytes(const matrix *mx, int n_mx, const int *choice)
{
    size_t b = 0;
    for (int t = 0; t < n_mx; t++) b += mx[t].opt[choice[t]].bytes;
    return b;
}

/* Greedy knapsack from the cheapest mix: best KLD drop per added byte while it fits. */
static void greedy(const matrix *mx, int n_mx, size_t budget, int *choice)
{
    for (int t = 0; t < n_mx; t++) choice[t] = 0;
    size_t used = mix_bytes(mx, n_mx, choice);
    for (;;) {
        int bt = -1, bo = -1;
        double best = 0;
        for (int t = 0; t < n_mx; t++) {
            const option *cur = &mx[t].opt[choice[t]];
            for (int o = choice[t] + 1; o < mx[t].n_opt; o++) {
                const option *up = &mx[t].opt[o];
                size_t add = up->bytes - cur->bytes;
                if (used + add > budget || up->kld >= cur->kld) continue;
                double ratio = (cur->kld - up->kld) / (double)(add ? add : 1);
                if (ratio > best) best = ratio, bt = t, bo = o;
            }
        }
        if (bt < 0) break;
        used += mx[bt].opt[bo].bytes - mx[bt].opt[choice[bt]].bytes;
        choice[bt] = bo;
    }
}

/* Up to max_swaps swaps of choice that fit the budget, best predicted first. */
static int make_swaps(const matrix *mx, int n_mx, const int *choice, size_t budget, swap *sw, int max_swaps)
{
    size_t used = mix_bytes(mx, n_mx, choice);
    int n = 0, cap = n_mx * (n_mx + 1);
    swap *all = malloc((size_t)cap * sizeof *all);
    if (!all) return 0;
    for (int a = 0; a < n_mx; a++) {
        int up = choice[a] + 1;
        if (up >= mx[a].n_opt) continue;
        double da = mx[a].opt[up].kld - mx[a].opt[choice[a]].kld;
        size_t add = mx[a].opt[up].bytes - mx[a].opt[choice[a]].bytes;
        if (used + add <= budget) all[n++] = (swap){a, up, -1, 0, da};
        for (int b = 0; b < n_mx; b++) {
            int down = choice[b] - 1;
            if (b == a || down < 0) continue;
            size_t freed = mx[b].opt[choice[b]].bytes - mx[b].opt[down].bytes;
            if (used + add - freed > budget) continue;
            all[n++] = (swap){a, up, b, down, da + mx[b].opt[down].kld - mx[b].opt[choice[b]].kld};
        }
    }
    qsort(all, (size_t)n, sizeof *all, cmp_swap);
    if (n > max_swaps) n = max_swaps;
    memcpy(sw, all, (size_t)n * sizeof *sw);
    free(all);
    return n;
}

/* Scan every matrix × option alone; fills option.kld and keeps the views. */
static qb_status scan_options(qb_ctx *ctx, const qb_model *m, matrix *mx, int n_mx, const int32_t *tokens,
                              int n_tokens, const qb_scan_opts *so, int *n_variants, double *cost)
{
    int n = 0;
    for (int t = 0; t < n_mx; t++) n += mx[t].n_opt;
    const qb_model **vs = calloc((size_t)n, sizeof *vs);
    qb_kld_result *res = calloc((size_t)n, sizeof *res);
    qb_status st = vs && res ? QB_OK : qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    int k = 0;
    for (int t = 0; st == QB_OK && t < n_mx; t++)
        for (int o = 0; st == QB_OK && o < mx[t].n_opt; o++) {
            option *op = &mx[t].opt[o];
            if ((st = qb_model_view_new(ctx, m, &op->view)) == QB_OK)
                st = qb_view_quantize(ctx, op->view, mx[t].index, &op->f, so->cancel);
            if (st == QB_OK) vs[k++] = op->view;
        }
    qb_scan_stats stats;
    qb_scan_opts o = *so;
    o.stats = &stats;
    if (st == QB_OK) st = qb_sensitivity_kld(ctx, m, vs, n, tokens, n_tokens, &o, res, NULL);
    if (st == QB_OK) *cost = stats.cost_mean;
    k = 0;
    for (int t = 0; st == QB_OK && t < n_mx; t++)
        for (int o = 0; o < mx[t].n_opt; o++) mx[t].opt[o].kld = res[k++].kld_mean;
    *n_variants += n;
    free(vs);
    free(res);
    return st;
}

/* Every matrix × option quantized alone (the views kept) and its KLD estimated from fisher. */
static qb_status estimate_options(qb_ctx *ctx, const qb_model *m, matrix *mx, int n_mx, const qb_fisher *fisher,
                                  const volatile int *cancel)
{
    qb_status st = QB_OK;
    for (int t = 0; st == QB_OK && t < n_mx; t++)
        for (int o = 0; st == QB_OK && o < mx[t].n_opt; o++) {
            option *op = &mx[t].opt[o];
            if ((st = qb_model_view_new(ctx, m, &op->view)) == QB_OK)
                st = qb_view_quantize(ctx, op->view, mx[t].index, &op->f, cancel);
            if (st == QB_OK)
                st = qb_fisher_tensor_cost(ctx, fisher, &m->tensors[mx[t].index], &op->f,
                                           op->view->tensors[mx[t].index].data, &op->kld);
        }
    return st;
}

/* Measure the current mix (its KLD into *mix_kld, and *cur_kld when that is < 0) and its best
 * predicted swaps; apply the best swap if it measures lower (*cur_kld then is the new mix's
 * KLD). The swaps resume the mix's pass (qb_scan_opts.prefix) where they differ from it, so the
 * mix is measured again each round (the same number: the same arithmetic) and each swap costs
 * only the layers from its first swapped matrix on. */
static qb_status refine_round(qb_ctx *ctx, const qb_model *m, const matrix *mx, int n_mx, int *choice, size_t budget,
                              int max_swaps, const int32_t *tokens, int n_tokens, const qb_scan_opts *so,
                              double *cur_kld, double *mix_kld, bool *improved, int *n_variants, double *cost)
{
    *improved = false;
    swap *sw = calloc((size_t)max_swaps + 1, sizeof *sw);
    qb_model **vs = calloc((size_t)max_swaps + 2, sizeof *vs);
    qb_kld_result *res = calloc((size_t)max_swaps + 2, sizeof *res);
    int *alt = malloc((size_t)n_mx * sizeof *alt);
    qb_status st = sw && vs && res && alt ? QB_OK : qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    int n_sw = st == QB_OK ? make_swaps(mx, n_mx, choice, budget, sw, max_swaps) : 0;
    int nv = 0;
    const int first_swap = 1; /* res[0] is the mix, res[1 + s] swap s */
    if (st == QB_OK) st = mix_view(ctx, m, mx, n_mx, choice, &vs[nv++]);
    for (int s = 0; st == QB_OK && s < n_sw; s++) {
        memcpy(alt, choice, (size_t)n_mx * sizeof *alt);
        alt[sw[s].a] = sw[s].a_to;
        if (sw[s].b >= 0) alt[sw[s].b] = sw[s].b_to;
        st = mix_view(ctx, m, mx, n_mx, alt, &vs[nv++]);
    }
    qb_scan_opts po = *so;
    po.prefix = nv > 0 ? vs[0] : NULL;
    if (st == QB_OK && nv > 0)
        st = qb_sensitivity_kld(ctx, m, (const qb_model *const *)vs, nv, tokens, n_tokens, &po, res, NULL);
    if (st == QB_OK) {
        *n_variants += nv;
        for (int v = 0; v < nv; v++) *cost += res[v].cost;
        if (*cur_kld < 0) *cur_kld = res[0].kld_mean;
        *mix_kld = *cur_kld;
        int best = -1;
        for (int s = 0; s < n_sw; s++)
            if (res[first_swap + s].kld_mean < *cur_kld && (best < 0 || res[first_swap + s].kld_mean <
                                                                             res[first_swap + best].kld_mean))
                best = s;
        if (best >= 0) {
            choice[sw[best].a] = sw[best].a_to;
            if (sw[best].b >= 0) choice[sw[best].b] = sw[best].b_to;
            *cur_kld = res[first_swap + best].kld_mean;
            *improved = true;
        }
    }
    for (int v = 0; v < nv; v++) qb_model_view_free(vs[v]);
    free(sw);
    free(vs);
    free(res);
    free(alt);
    return st;
}

qb_status qb_search_mixed(qb_ctx *ctx, const qb_model *m, const int32_t *tokens, int n_tokens,
                          const qb_search_opts *o, qb_search_result *out)
{
    memset(out, 0, sizeof *out);
    qb_plan_init(&out->plan);
    qb_format def[QB_SEARCH_MAX_DEFAULTS];
    const int n_def = qb_search_default_candidates(def);
    const qb_format *cand = o && o->candidates ? o->candidates : def;
    int n_cand = o && o->candidates ? o->n_candidates : n_def;
    if (n_cand <= 0) return qb_fail(ctx, QB_ERR_ARG, "no candidate format for the search");
    double bpw = o ? o->bpw : 0;
    if (!(bpw > 0 && bpw <= 32)) return qb_fail(ctx, QB_ERR_ARG, "budget %.3f bits per weight is out of range", bpw);
    double t0 = qb_eval_now();
    int n_mx = 0;
    for (int i = 0; i < m->n_tensors; i++) n_mx += qb_tensor_quantizable(&m->tensors[i]);
    if (n_mx == 0) return qb_fail(ctx, QB_ERR_ARG, "%s: no quantizable weight matrix", m->path);
    matrix *mx = calloc((size_t)n_mx, sizeof *mx);
    int *choice = calloc((size_t)n_mx, sizeof *choice);
    qb_status st = mx && choice ? QB_OK : qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    double weights = 0;
    for (int i = 0, t = 0; st == QB_OK && i < m->n_tensors; i++) {
        if (!qb_tensor_quantizable(&m->tensors[i])) continue;
        mx[t].index = i;
        weights += (double)qb_tensor_nelements(&m->tensors[i]);
        st = make_options(ctx, &m->tensors[i], cand, n_cand, &mx[t++]);
    }
    size_t budget = (size_t)(bpw * weights / 8.0);
    out->budget_bpw = bpw;
    if (st == QB_OK) {
        double min_bpw = 8.0 * (double)mix_bytes(mx, n_mx, choice) / weights; /* choice is all 0: cheapest */
        if (mix_bytes(mx, n_mx, choice) > budget)
            st = qb_fail(ctx, QB_ERR_ARG, "budget %.3f bpw is below the cheapest mix of the candidates (%.3f bpw)", bpw,
                         min_bpw);
    }
    qb_scan_opts so = {.n_ctx = o ? o->n_ctx : 0, .n_tokens = o && o->n_tokens > 0 ? o->n_tokens : 4096,
                       .progress = o ? o->progress : NULL, .ud = o ? o->ud : NULL, .cancel = o ? o->cancel : NULL,
                       .divided = o ? o->divided : NULL};
    const qb_fisher *fisher = o ? o->fisher : NULL;
    if (st == QB_OK && fisher) st = estimate_options(ctx, m, mx, n_mx, fisher, so.cancel);
    else if (st == QB_OK) st = scan_options(ctx, m, mx, n_mx, tokens, n_tokens, &so, &out->n_variants, &out->cost_scan);
    int scanned = out->n_variants;
    double round_cost = 0;
    if (st == QB_OK) greedy(mx, n_mx, budget, choice);
    int rounds = o && o->rounds ? o->rounds : (fisher ? -2 : 2), swaps = o && o->swaps > 0 ? o->swaps : 6;
    bool measure = rounds != -2;
    if (rounds < 0) rounds = 0, swaps = 0; /* measure the greedy mix only */
    double cur = -1;
    out->kld = out->kld_greedy = NAN;
    for (int r = 0; measure && st == QB_OK && r < (rounds ? rounds : 1); r++) {
        bool improved;
        double before = cur;
        st = refine_round(ctx, m, mx, n_mx, choice, budget, swaps, tokens, n_tokens, &so, &cur, &before, &improved,
                          &out->n_variants, &round_cost);
        if (r == 0) out->kld_greedy = before;
        if (st != QB_OK || !improved) break;
        out->n_swaps++;
    }
    if (out->n_variants > scanned) out->cost_rounds = round_cost / (out->n_variants - scanned);
    if (st == QB_OK) {
        if (measure) out->kld = cur;
        out->bytes = mix_bytes(mx, n_mx, choice);
        out->bpw = 8.0 * (double)out->bytes / weights;
        for (int t = 0; t < n_mx; t++) {
            out->kld_predicted += mx[t].opt[choice[t]].kld;
            if (st == QB_OK) st = qb_plan_add(ctx, &out->plan, m->tensors[mx[t].index].name, &mx[t].opt[choice[t]].f);
        }
    }
    out->seconds = qb_eval_now() - t0;
    for (int t = 0; mx && t < n_mx; t++) {
        for (int k = 0; k < mx[t].n_opt; k++) qb_model_view_free(mx[t].opt[k].view);
        free(mx[t].opt);
    }
    free(mx);
    free(choice);
    if (st != QB_OK) qb_search_result_free(out);
    return st;
}
