/* scan_cache.c — the reuse cache of the sensitivity engine (scan_internal.h): where each
 * variant starts to differ from the model it resumes from, which of those points the memory
 * bound lets the capture pass keep (greedy: the most work saved per byte first), and the
 * pointers a variant resumes with. */
#include "scan_internal.h"
#include "../quant/format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BUF_IN, BUF_ATTN, BUF_MID, BUF_HB, BUF_PER_LAYER }; /* buffers of a layer; the head's is BUF_PER_LAYER * L */

static bool same_tensor(const qb_tensor *a, const qb_tensor *b)
{
    if (a->type != b->type || a->nbytes != b->nbytes || !qb_format_equal(&a->fmt, &b->fmt)) return false;
    return a->data == b->data || memcmp(a->data, b->data, a->nbytes) == 0;
}

static const qb_model *root_of(const qb_model *m) { return qb_model_is_view(m) ? qb_model_view_base(m) : m; }

/* The first point (table index) where v reads a tensor other than src's: the head's index when
 * none differs, -1 when v is not a view of the same model (a whole pass of its own). */
static int start_point(const qb_model *src, const qb_model *v)
{
    int L = src->cfg.n_layers, best = qb_checkpoint_index(L, QB_STAGE_IN);
    if (root_of(v) != root_of(src) || v->n_tensors != src->n_tensors) return -1;
    for (int i = 0; i < v->n_tensors && best > 0; i++) {
        if (same_tensor(&src->tensors[i], &v->tensors[i])) continue;
        int l;
        qb_stage st;
        qb_infer_point_of(v, i, &l, &st);
        int p = qb_checkpoint_index(l, st);
        if (p < best) best = p;
    }
    return best;
}

/* Estimated multiply-adds per token of the part of a layer after stage st (to the next stage). */
static double part_work(const qb_config *c, int n_ctx, qb_stage st)
{
    double dim = c->dim, q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    bool moe = c->n_experts > 0;
    double ffn = moe ? (double)c->n_experts_used * 3 * c->expert_hidden_dim * dim + c->n_experts * dim
                     : 3.0 * c->hidden_dim * dim;
    switch (st) {
    case QB_STAGE_IN: return (q + 2 * kv) * dim + (double)n_ctx * c->head_dim * c->n_heads; /* + attention */
    case QB_STAGE_ATTN_OUT: return q * dim;
    case QB_STAGE_FFN_IN: return moe ? ffn : ffn * 2 / 3;
    default: return moe ? 0 : ffn / 3;
    }
}

/* Estimated work of a pass resumed at point p (the embedding: p = 0). */
static double work_from(const qb_config *c, int n_ctx, int n_logits, int p)
{
    double w = (double)n_logits * c->vocab_size * c->dim;
    for (int q = p; q < qb_checkpoint_index(c->n_layers, QB_STAGE_IN); q++)
        w += (double)n_ctx * part_work(c, n_ctx, (qb_stage)(q % QB_STAGE_COUNT));
    return w;
}

/* The buffers point p needs (ids, up to 2) and their sizes in bytes. */
static int point_bufs(const qb_config *c, int n_ctx, int n_logits, int p, int ids[2], size_t sz[2])
{
    int L = c->n_layers, l = p / QB_STAGE_COUNT;
    size_t row = sizeof(float), n = (size_t)n_ctx;
    if (l >= L) {
        ids[0] = BUF_PER_LAYER * L;
        sz[0] = (size_t)n_logits * c->dim * row;
        return 1;
    }
    int base = BUF_PER_LAYER * l;
    switch ((qb_stage)(p % QB_STAGE_COUNT)) {
    case QB_STAGE_IN: ids[0] = base + BUF_IN, sz[0] = n * c->dim * row; return 1;
    case QB_STAGE_ATTN_OUT:
        ids[0] = base + BUF_IN, sz[0] = n * c->dim * row;
        ids[1] = base + BUF_ATTN, sz[1] = n * c->n_heads * c->head_dim * row;
        return 2;
    case QB_STAGE_FFN_IN: ids[0] = base + BUF_MID, sz[0] = n * c->dim * row; return 1;
    default:
        ids[0] = base + BUF_MID, sz[0] = n * c->dim * row;
        ids[1] = base + BUF_HB, sz[1] = n * c->hidden_dim * row;
        return 2;
    }
}

static size_t default_bound(void)
{
    const double mem = qb_physical_memory();
    size_t cap = (size_t)1024 << 20, quarter = mem > 0 ? (size_t)(mem / 4) : cap;
    return quarter < cap ? quarter : cap;
}

/* Keep points greedily (largest estimated work saved per added byte) while they fit in
 * c->bound; fills kept, c->from, the buffers' sizes in sz (0: not kept) and c->used. */
static void choose(qb_scan_cache *c, const qb_config *cf, const int *start, bool *cand, bool *kept, size_t *sz)
{
    int P = qb_checkpoint_index(c->n_layers, QB_STAGE_IN) + 1;
    double *cur = malloc((size_t)c->n_variants * sizeof *cur);
    if (!cur) return;
    for (int j = 0; j < c->n_variants; j++) cur[j] = work_from(cf, c->n_ctx, c->n_logits, 0);
    for (;;) {
        int best = -1;
        double best_ratio = 0;
        for (int p = 1; p < P; p++) {
            if (!cand[p]) continue;
            int ids[2];
            size_t s[2], need = 0;
            int k = point_bufs(cf, c->n_ctx, c->n_logits, p, ids, s);
            for (int i = 0; i < k; i++) need += sz[ids[i]] ? 0 : s[i];
            if (c->used + need > c->bound) continue;
            double wp = work_from(cf, c->n_ctx, c->n_logits, p), gain = 0;
            for (int j = 0; j < c->n_variants; j++)
                if (start[j] >= p && cur[j] > wp) gain += cur[j] - wp;
            double ratio = gain / (double)(need ? need : 1);
            if (gain > 0 && ratio > best_ratio) best_ratio = ratio, best = p;
        }
        if (best < 0) break;
        int ids[2];
        size_t s[2];
        int k = point_bufs(cf, c->n_ctx, c->n_logits, best, ids, s);
        for (int i = 0; i < k; i++)
            if (!sz[ids[i]]) sz[ids[i]] = s[i], c->used += s[i];
        cand[best] = false;
        c->n_kept++;
        double wp = work_from(cf, c->n_ctx, c->n_logits, best);
        for (int j = 0; j < c->n_variants; j++)
            if (start[j] >= best && cur[j] > wp) cur[j] = wp, c->from[j] = best;
        kept[best] = true;
    }
    free(cur);
}

qb_status qb_scan_cache_plan(qb_ctx *ctx, const qb_model *src, const qb_model *const *variants, int n_variants,
                             int n_ctx, int n_logits, int vocab, int rows, const qb_scan_opts *o, qb_scan_cache *c)
{
    memset(c, 0, sizeof *c);
    const qb_config *cf = &src->cfg;
    int L = cf->n_layers, P = qb_checkpoint_index(L, QB_STAGE_IN) + 1, NB = BUF_PER_LAYER * L + 1;
    bool no_reuse = o && o->no_reuse;
    c->n_variants = n_variants;
    c->n_layers = L;
    c->n_ctx = n_ctx;
    c->n_logits = n_logits;
    /* bit-identical logits need ≥ 2 rows on both sides of the trim (infer.h) */
    c->trim = !no_reuse && n_logits >= 2 && n_ctx - n_logits >= 2;
    int cmb = o ? o->cache_mb : 0;
    c->bound = no_reuse || cmb < 0 ? 0 : cmb > 0 ? (size_t)cmb << 20 : default_bound();
    c->table = calloc((size_t)P, sizeof *c->table);
    c->from = malloc((size_t)n_variants * sizeof *c->from);
    c->bufs = calloc((size_t)NB, sizeof *c->bufs);
    int *start = malloc((size_t)n_variants * sizeof *start);
    bool *cand = calloc((size_t)P, sizeof *cand), *kept = calloc((size_t)P, sizeof *kept);
    size_t *sz = calloc((size_t)NB, sizeof *sz), *want = calloc((size_t)NB, sizeof *want);
    qb_status st = QB_OK;
    if (!c->table || !c->from || !c->bufs || !start || !cand || !kept || !sz || !want) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    c->n_bufs = NB;
    size_t prob_bytes = (size_t)rows * vocab * sizeof(double);
    for (int j = 0; j < n_variants; j++) {
        c->from[j] = -1;
        start[j] = no_reuse ? -1 : start_point(src, variants[j]);
        if (start[j] > 0 && !cand[start[j]]) {
            cand[start[j]] = true;
            c->n_points++;
            int ids[2];
            size_t s[2];
            int k = point_bufs(cf, n_ctx, n_logits, start[j], ids, s);
            for (int i = 0; i < k; i++) want[ids[i]] = s[i];
        }
    }
    for (int b = 0; b < NB; b++) c->want += want[b];
    if (!no_reuse) c->want += prob_bytes;
    choose(c, cf, start, cand, kept, sz);
    for (int b = 0; b < NB; b++) /* a buffer malloc refuses: its points are dropped below */
        if (sz[b] && !(c->bufs[b] = malloc(sz[b]))) c->used -= sz[b];
    for (int p = 1; p < P; p++) {
        if (!kept[p]) continue;
        int ids[2];
        size_t s[2];
        int k = point_bufs(cf, n_ctx, n_logits, p, ids, s);
        bool have = true;
        for (int i = 0; i < k; i++) have = have && c->bufs[ids[i]];
        c->table[p].res = have ? c->bufs[ids[0]] : NULL;
        c->table[p].act = have && k > 1 ? c->bufs[ids[1]] : NULL;
        if (!have) c->n_kept--;
    }
    for (int j = 0; j < n_variants; j++)
        if (c->from[j] >= 0 && !c->table[c->from[j]].res) c->from[j] = -1; /* its buffer is missing: a whole pass */
    if (!no_reuse && c->used + prob_bytes <= c->bound && (c->prob = malloc(prob_bytes))) c->used += prob_bytes;
    if (!no_reuse && c->used < c->want)
        snprintf(c->note, sizeof c->note,
                 "reuse cache bound %.1f MiB < the %.1f MiB it wants: %d of %d resume points kept%s; the rest recomputed",
                 (double)c->bound / 1048576, (double)c->want / 1048576, c->n_kept, c->n_points,
                 c->prob ? "" : ", the base's probabilities recomputed per variant");
done:
    free(start);
    free(cand);
    free(kept);
    free(sz);
    free(want);
    return st;
}

bool qb_scan_cache_resume(const qb_scan_cache *c, int j, const qb_infer *s, int *layer, qb_stage *stage,
                          qb_checkpoint *cp)
{
    int p = c->from ? c->from[j] : -1;
    if (p < 0 || !c->table[p].res) return false;
    *layer = p / QB_STAGE_COUNT;
    *stage = (qb_stage)(p % QB_STAGE_COUNT);
    /* the capture pass ran untrimmed: n rows stored in the layers, n_logits at the head */
    int stored = *layer >= c->n_layers ? c->n_logits : c->n_ctx;
    int skip = stored - qb_infer_point_rows(s, *layer, *stage, c->n_ctx, c->n_logits);
    const qb_config *cf = &qb_infer_model(s)->cfg;
    int aw = *stage == QB_STAGE_ATTN_OUT ? cf->n_heads * cf->head_dim : cf->hidden_dim;
    cp->res = c->table[p].res + (size_t)skip * cf->dim;
    cp->act = c->table[p].act ? c->table[p].act + (size_t)skip * aw : NULL;
    return true;
}

void qb_scan_cache_stats(const qb_scan_cache *c, qb_scan_stats *out)
{
    out->cache_want = c->want;
    out->cache_used = c->used;
    out->cache_bound = c->bound;
    out->n_points = c->n_points;
    out->n_kept = c->n_kept;
    snprintf(out->note, sizeof out->note, "%s", c->note);
}

void qb_scan_cache_free(qb_scan_cache *c)
{
    if (!c) return;
    for (int b = 0; c->bufs && b < c->n_bufs; b++) free(c->bufs[b]);
    free(c->bufs);
    free(c->table);
    free(c->from);
    free(c->prob);
    memset(c, 0, sizeof *c);
}
