/* prune_structured.c — structured pruning (prune_structured.h): importance from a calibration
 * (output energy of heads and neurons) and from skipping blocks (KLD), the regular choice of
 * what goes, and the rewrite of tensors, names and config, the model bound again. */
#include "prune_structured.h"
#include "fold.h"
#include "../infer/infer.h"
#include "../quant/format.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* round(share * n), the count a share removes */
static int share_count(double share, int n)
{
    return (int)floor(share * (double)n + 0.5);
}

qb_status qb_prune_amount_check(qb_ctx *ctx, const qb_model *m, const qb_prune_amount *a)
{
    const qb_config *c = &m->cfg;
    if (!(a->heads >= 0 && a->heads < 1))
        return qb_fail(ctx, QB_ERR_ARG, "structured pruning: heads share %g is out of range [0, 1)", a->heads);
    if (!(a->ffn >= 0 && a->ffn < 1))
        return qb_fail(ctx, QB_ERR_ARG, "structured pruning: FFN share %g is out of range [0, 1)", a->ffn);
    if (a->layers < 0 || a->layers >= c->n_layers)
        return qb_fail(ctx, QB_ERR_ARG, "structured pruning: %d blocks to remove, %s has %d (at least one must stay)",
                       a->layers, m->path, c->n_layers);
    if (qb_model_is_view(m))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "structured pruning rewrites a loaded model, not a view of one");
    if (c->n_experts > 0)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: structured pruning of expert (MoE) blocks is not supported",
                       m->path);
    if (!qb_model_blocks_plain(m))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                       "%s: fused qkv or gate-up matrices: structured pruning needs separate q/k/v and gate/up/down",
                       m->path);
    if (a->layers > 0 && c->swa_window > 0 && c->swa_period > 1)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                       "%s: removing blocks would shift the sliding-window pattern (%d of every %d blocks slide)",
                       m->path, c->swa_period - 1, c->swa_period);
    if (share_count(a->heads, c->n_heads) >= c->n_heads)
        return qb_fail(ctx, QB_ERR_ARG, "structured pruning: removing %g of %d heads leaves none", a->heads,
                       c->n_heads);
    if (share_count(a->ffn, c->hidden_dim) >= c->hidden_dim)
        return qb_fail(ctx, QB_ERR_ARG, "structured pruning: removing %g of %d FFN neurons leaves none", a->ffn,
                       c->hidden_dim);
    return QB_OK;
}

/* ---- importance ---- */

/* Σ_r w[r][j]² for every column j of t's current values (out: ne[0] doubles). */
static qb_status column_energy(qb_ctx *ctx, const qb_tensor *t, double *out)
{
    int64_t n = t->ne[0], rows = qb_tensor_rows(t);
    memset(out, 0, (size_t)n * sizeof *out);
    bool ok = true;
#pragma omp parallel reduction(&& : ok)
    {
        float *row = malloc((size_t)n * sizeof *row);
        double *acc = calloc((size_t)n, sizeof *acc);
        if (!row || !acc) ok = false;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            if (!row || !acc) continue;
            qb_tensor_current_rows(t, r, 1, row);
            for (int64_t j = 0; j < n; j++) acc[j] += (double)row[j] * row[j];
        }
#pragma omp critical
        if (acc)
            for (int64_t j = 0; j < n; j++) out[j] += acc[j];
        free(row);
        free(acc);
    }
    return ok ? QB_OK : qb_fail(ctx, QB_ERR_NOMEM, "out of memory measuring %s", t->name);
}

/* The full model's side of a window: probabilities in place of the logits, and Σ_i p_i log p_i
 * per row of V. */
static void softmax_rows(float *logits, double *plogp, int T, int V)
{
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *a = logits + (size_t)t * V, ma = a[0];
        for (int i = 1; i < V; i++)
            if (a[i] > ma) ma = a[i];
        double z = 0;
        for (int i = 0; i < V; i++) z += exp((double)a[i] - ma);
        double lse = ma + log(z), s = 0;
        for (int i = 0; i < V; i++) {
            double lp = (double)a[i] - lse, p = exp(lp);
            s += p * lp;
            a[i] = (float)p;
        }
        plogp[t] = s;
    }
}

/* Σ over the T rows of KL(p ‖ softmax(b)) = Σ_i p_i log p_i − Σ_i p_i b_i + log Σ_i exp(b_i). */
static double window_kld(const float *p, const double *plogp, const float *other, int T, int V)
{
    double sum = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum)
    for (int t = 0; t < T; t++) {
        const float *pa = p + (size_t)t * V, *b = other + (size_t)t * V;
        float mb = b[0];
        for (int i = 1; i < V; i++)
            if (b[i] > mb) mb = b[i];
        double zb = 0, cross = 0;
        for (int i = 0; i < V; i++) {
            zb += exp((double)b[i] - mb);
            cross += (double)pa[i] * b[i];
        }
        double kl = plogp[t] - cross + mb + log(zb);
        sum += kl > 0 ? kl : 0;
    }
    return sum;
}

/* The mean KLD of the model with block l skipped (for every l) from the full model over c's
 * windows: the full run captures the residual entering every block; the skipped run starts at
 * block l + 1 from the residual that entered block l. */
static qb_status block_influence(qb_ctx *ctx, const qb_model *m, const qb_calib *c, const qb_prune_structured_opts *o,
                                 double *out)
{
    const qb_config *cf = &m->cfg;
    int L = cf->n_layers, T = c->n_ctx, V = cf->vocab_size, dim = cf->dim;
    memset(out, 0, (size_t)L * sizeof *out);
    if (c->n_windows <= 0 || !c->windows)
        return qb_fail(ctx, QB_ERR_ARG, "structured pruning: the calibration kept no token windows");
    qb_infer *s = NULL;
    qb_status st = qb_infer_new(ctx, m, T, T, &s);
    if (st != QB_OK) return st;
    float *resid = malloc((size_t)(L + 1) * T * dim * sizeof *resid);
    float *base = malloc((size_t)T * V * sizeof *base), *skip = malloc((size_t)T * V * sizeof *skip);
    double *plogp = malloc((size_t)T * sizeof *plogp);
    if (!resid || !base || !skip || !plogp) st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory measuring block influence");
    for (int w = 0; w < c->n_windows && st == QB_OK; w++) {
        if (o && o->cancel && *o->cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "structured pruning cancelled");
            break;
        }
        qb_infer_capture_residuals(s, resid);
        st = qb_infer_eval(ctx, s, c->windows + (size_t)w * T, T, 0, base, T);
        qb_infer_capture_residuals(s, NULL);
        if (st == QB_OK) softmax_rows(base, plogp, T, V);
        for (int l = 0; l < L && st == QB_OK; l++) {
            st = qb_infer_eval_from(ctx, s, l + 1, resid + (size_t)l * T * dim, T, skip, T);
            if (st == QB_OK) out[l] += window_kld(base, plogp, skip, T, V);
        }
        if (st == QB_OK && o && o->progress) o->progress(o->ud, "block influence", w + 1, c->n_windows);
    }
    for (int l = 0; l < L; l++) out[l] /= (double)c->n_windows * T;
    free(resid);
    free(base);
    free(skip);
    free(plogp);
    qb_infer_free(s);
    return st;
}

void qb_prune_importance_free(qb_prune_importance *imp)
{
    if (!imp) return;
    free(imp->head);
    free(imp->neuron);
    free(imp->layer);
    memset(imp, 0, sizeof *imp);
}

qb_status qb_prune_importance_measure(qb_ctx *ctx, const qb_model *m, const qb_calib *c, bool with_layers,
                                      const qb_prune_structured_opts *o, qb_prune_importance *out)
{
    memset(out, 0, sizeof *out);
    const qb_config *cf = &m->cfg;
    int L = cf->n_layers, H = cf->n_heads, hd = cf->head_dim, F = cf->hidden_dim;
    if (!qb_model_blocks_plain(m) || cf->n_experts > 0)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: structured pruning needs separate dense block matrices", m->path);
    if (!c || c->n_layers != L)
        return qb_fail(ctx, QB_ERR_ARG, "structured pruning: the calibration is of a model with %d blocks, %s has %d",
                       c ? c->n_layers : 0, m->path, L);
    for (int l = 0; l < L; l++) {
        const qb_calib_stat *sa = qb_calib_get(c, l, QB_OBS_ATTN_OUT), *sf = qb_calib_get(c, l, QB_OBS_FFN_DOWN_IN);
        if (!sa || sa->width != H * hd || !sf || sf->width != F || sa->n <= 0 || sf->n <= 0)
            return qb_fail(ctx, QB_ERR_ARG,
                           "structured pruning: the calibration lacks the inputs of block %d's wo / w_down (or has "
                           "other widths)",
                           l);
    }
    int wmax = H * hd > F ? H * hd : F;
    double *col = malloc((size_t)wmax * sizeof *col);
    out->n_layers = L;
    out->n_heads = H;
    out->hidden_dim = F;
    out->n_windows = c->n_windows;
    out->n_ctx = c->n_ctx;
    out->head = calloc((size_t)L * H, sizeof *out->head);
    out->neuron = calloc((size_t)L * F, sizeof *out->neuron);
    qb_status st = QB_OK;
    if (!col || !out->head || !out->neuron) st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory measuring importance");
    for (int l = 0; l < L && st == QB_OK; l++) {
        const qb_layer_weights *W = &m->layers[l];
        const qb_calib_stat *sa = qb_calib_get(c, l, QB_OBS_ATTN_OUT), *sf = qb_calib_get(c, l, QB_OBS_FFN_DOWN_IN);
        if ((st = column_energy(ctx, W->wo, col)) != QB_OK) break;
        for (int h = 0; h < H; h++)
            for (int i = h * hd; i < (h + 1) * hd; i++) out->head[(size_t)l * H + h] += sa->sumsq[i] / (double)sa->n * col[i];
        if ((st = column_energy(ctx, W->w_down, col)) != QB_OK) break;
        for (int i = 0; i < F; i++) out->neuron[(size_t)l * F + i] = sf->sumsq[i] / (double)sf->n * col[i];
    }
    free(col);
    if (st == QB_OK && with_layers) {
        if (!(out->layer = calloc((size_t)L, sizeof *out->layer)))
            st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory measuring block influence");
        else
            st = block_influence(ctx, m, c, o, out->layer);
    }
    if (st != QB_OK) qb_prune_importance_free(out);
    return st;
}

/* ---- choice ---- */

void qb_prune_selection_free(qb_prune_selection *s)
{
    if (!s) return;
    free(s->keep_layer);
    free(s->keep_head);
    free(s->keep_kv);
    free(s->keep_neuron);
    memset(s, 0, sizeof *s);
}

qb_status qb_prune_selection_all(qb_ctx *ctx, const qb_model *m, qb_prune_selection *out)
{
    const qb_config *c = &m->cfg;
    memset(out, 0, sizeof *out);
    out->n_layers = c->n_layers;
    out->n_heads = c->n_heads;
    out->n_kv_heads = c->n_kv_heads;
    out->hidden_dim = c->hidden_dim;
    size_t L = (size_t)c->n_layers;
    out->keep_layer = malloc(L);
    out->keep_head = malloc(L * (size_t)c->n_heads);
    out->keep_kv = malloc(L * (size_t)c->n_kv_heads);
    out->keep_neuron = malloc(L * (size_t)c->hidden_dim);
    if (!out->keep_layer || !out->keep_head || !out->keep_kv || !out->keep_neuron) {
        qb_prune_selection_free(out);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    }
    memset(out->keep_layer, 1, L);
    memset(out->keep_head, 1, L * (size_t)c->n_heads);
    memset(out->keep_kv, 1, L * (size_t)c->n_kv_heads);
    memset(out->keep_neuron, 1, L * (size_t)c->hidden_dim);
    return QB_OK;
}

typedef struct {
    double score;
    int index;
} ranked;

/* higher score first; equal scores: the earlier index first */
static int by_score_desc(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->index - b->index;
}

/* keep[i] = 1 for the k highest of the n scores, 0 for the others; returns their sum. */
static double keep_top(const double *score, int n, int k, uint8_t *keep, ranked *tmp)
{
    for (int i = 0; i < n; i++) tmp[i] = (ranked){score[i], i};
    qsort(tmp, (size_t)n, sizeof *tmp, by_score_desc);
    double kept = 0;
    for (int i = 0; i < n; i++) {
        keep[tmp[i].index] = i < k;
        if (i < k) kept += tmp[i].score;
    }
    return kept;
}

/* Heads of one block kept as kvk KV groups of gk heads (the gk best of each group, then the
 * kvk groups keeping the most): masks into keep_head / keep_kv when not NULL; returns the
 * importance kept. */
static double choose_heads(const double *imp, int H, int KV, int kvk, int gk, uint8_t *keep_head, uint8_t *keep_kv,
                           ranked *tmp)
{
    int G = H / KV;
    double group_kept[1024] = {0};
    uint8_t in_group[1024] = {0}, groups[1024] = {0};
    for (int g = 0; g < KV; g++) group_kept[g] = keep_top(imp + (size_t)g * G, G, gk, in_group + g * G, tmp);
    double kept = keep_top(group_kept, KV, kvk, groups, tmp);
    if (keep_head && keep_kv)
        for (int g = 0; g < KV; g++) {
            keep_kv[g] = groups[g];
            for (int i = 0; i < G; i++) keep_head[g * G + i] = groups[g] && in_group[g * G + i];
        }
    return kept;
}

qb_status qb_prune_select(qb_ctx *ctx, const qb_model *m, const qb_prune_importance *imp, const qb_prune_amount *a,
                          qb_prune_selection *out)
{
    memset(out, 0, sizeof *out);
    qb_status st = qb_prune_amount_check(ctx, m, a);
    if (st != QB_OK) return st;
    const qb_config *c = &m->cfg;
    int L = c->n_layers, H = c->n_heads, KV = c->n_kv_heads, G = H / KV, F = c->hidden_dim;
    if (imp->n_layers != L || imp->n_heads != H || imp->hidden_dim != F || !imp->head || !imp->neuron)
        return qb_fail(ctx, QB_ERR_ARG, "structured pruning: the importance was measured on a model of another shape");
    if (a->layers > 0 && !imp->layer)
        return qb_fail(ctx, QB_ERR_ARG, "structured pruning: removing blocks needs their measured influence");
    if ((st = qb_prune_selection_all(ctx, m, out)) != QB_OK) return st;
    int nmax = F > H ? F : H;
    if (L > nmax) nmax = L;
    ranked *tmp = malloc((size_t)nmax * sizeof *tmp);
    if (!tmp) {
        qb_prune_selection_free(out);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    }
    if (a->layers > 0) keep_top(imp->layer, L, L - a->layers, out->keep_layer, tmp);
    int fk = F - share_count(a->ffn, F);
    for (int l = 0; l < L; l++) keep_top(imp->neuron + (size_t)l * F, F, fk, out->keep_neuron + (size_t)l * F, tmp);
    /* the regular head shape nearest the asked count, keeping the most importance */
    int target = share_count(a->heads, H), best_kv = KV, best_g = G, best_d = H + 1;
    double best_kept = -1;
    for (int kvk = 1; kvk <= KV; kvk++)
        for (int gk = 1; gk <= G; gk++) {
            int d = abs(H - kvk * gk - target);
            if (d > best_d) continue;
            double kept = 0;
            for (int l = 0; l < L; l++)
                if (out->keep_layer[l]) kept += choose_heads(imp->head + (size_t)l * H, H, KV, kvk, gk, NULL, NULL, tmp);
            if (d < best_d || kept > best_kept) {
                best_d = d;
                best_kept = kept;
                best_kv = kvk;
                best_g = gk;
            }
        }
    for (int l = 0; l < L; l++)
        choose_heads(imp->head + (size_t)l * H, H, KV, best_kv, best_g, out->keep_head + (size_t)l * H,
                     out->keep_kv + (size_t)l * KV, tmp);
    free(tmp);
    return QB_OK;
}

void qb_prune_selection_counts(const qb_prune_selection *s, int *layers, int *heads, int *kv_heads, int *neurons)
{
    int nl = 0, first = -1;
    for (int l = 0; l < s->n_layers; l++)
        if (s->keep_layer[l]) {
            nl++;
            if (first < 0) first = l;
        }
    int nh = 0, nkv = 0, nf = 0;
    if (first >= 0) {
        for (int h = 0; h < s->n_heads; h++) nh += s->keep_head[(size_t)first * s->n_heads + h];
        for (int k = 0; k < s->n_kv_heads; k++) nkv += s->keep_kv[(size_t)first * s->n_kv_heads + k];
        for (int i = 0; i < s->hidden_dim; i++) nf += s->keep_neuron[(size_t)first * s->hidden_dim + i];
    }
    if (layers) *layers = nl;
    if (heads) *heads = nh;
    if (kv_heads) *kv_heads = nkv;
    if (neurons) *neurons = nf;
}

/* A selection matching m and regular (see prune_structured.h); the kept counts into *kept. */
static qb_status check_selection(qb_ctx *ctx, const qb_model *m, const qb_prune_selection *s, qb_config *kept)
{
    const qb_config *c = &m->cfg;
    int L = c->n_layers, H = c->n_heads, KV = c->n_kv_heads, G = H / KV, F = c->hidden_dim;
    if (s->n_layers != L || s->n_heads != H || s->n_kv_heads != KV || s->hidden_dim != F || !s->keep_layer ||
        !s->keep_head || !s->keep_kv || !s->keep_neuron)
        return qb_fail(ctx, QB_ERR_ARG, "structured pruning: the selection is for a model of another shape than %s",
                       m->path);
    int nl, nh, nkv, nf;
    qb_prune_selection_counts(s, &nl, &nh, &nkv, &nf);
    if (nl == 0) return qb_fail(ctx, QB_ERR_ARG, "structured pruning: the selection removes every block");
    if (nl < L && c->swa_window > 0 && c->swa_period > 1)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: removing blocks would shift the sliding-window pattern", m->path);
    if (nkv == 0 || nh == 0) return qb_fail(ctx, QB_ERR_ARG, "structured pruning: the selection removes every head");
    if (nf == 0) return qb_fail(ctx, QB_ERR_ARG, "structured pruning: the selection removes every FFN neuron");
    if (nh % nkv != 0)
        return qb_fail(ctx, QB_ERR_ARG, "structured pruning: %d heads on %d KV heads is not regular", nh, nkv);
    int gk = nh / nkv;
    for (int l = 0; l < L; l++) {
        if (!s->keep_layer[l]) continue;
        int lkv = 0, lf = 0;
        for (int k = 0; k < KV; k++) {
            int in = 0;
            for (int i = 0; i < G; i++) in += s->keep_head[(size_t)l * H + k * G + i];
            bool kv_kept = s->keep_kv[(size_t)l * KV + k];
            lkv += kv_kept;
            if (kv_kept ? in != gk : in != 0)
                return qb_fail(ctx, QB_ERR_ARG,
                               "structured pruning: block %d: KV head %d %s with %d query heads (every kept KV head "
                               "must keep %d, a removed one none)",
                               l, k, kv_kept ? "kept" : "removed", in, gk);
        }
        for (int i = 0; i < F; i++) lf += s->keep_neuron[(size_t)l * F + i];
        if (lkv != nkv || lf != nf)
            return qb_fail(ctx, QB_ERR_ARG,
                           "structured pruning: block %d keeps %d KV heads and %d neurons, others %d and %d (every "
                           "block must keep the same)",
                           l, lkv, lf, nkv, nf);
    }
    *kept = *c;
    kept->n_layers = nl;
    kept->n_heads = nh;
    kept->n_kv_heads = nkv;
    kept->hidden_dim = nf;
    return QB_OK;
}

/* ---- rewrite ---- */

/* Whether bind would leave t's representation as it is (it converts others to F32 in place):
 * the rewrite binds a table that shares buffers with the model's, so nothing may convert. */
static bool runs_as_is(const qb_tensor *t)
{
    if (t->n_dims < 2) return t->type == QB_TYPE_F32;
    return t->type == QB_TYPE_F32 || t->type == QB_TYPE_F16 || t->type == QB_TYPE_BF16 ||
           qb_type_runs_packed(t->type);
}

static bool plain_float(qb_type t)
{
    return t == QB_TYPE_F32 || t == QB_TYPE_F16 || t == QB_TYPE_BF16;
}

/* New storage of t with only the kept rows (cols false) or columns (cols true; a vector's
 * elements), kept in units of `unit` consecutive rows / columns (head_dim for heads, 1 for
 * neurons): the current type where it allows, else F32. The result is both current and source. */
static qb_status slice(qb_ctx *ctx, const qb_tensor *t, const uint8_t *keep, int unit, bool cols, qb_tensor *nt)
{
    int64_t n = t->ne[0], rows = qb_tensor_rows(t), along = cols ? n : rows, kept = 0;
    for (int64_t i = 0; i < along; i++) kept += keep[i / unit] != 0;
    qb_type type = t->type;
    if (!plain_float(type) && (cols || !qb_type_runs_packed(type))) type = QB_TYPE_F32;
    int64_t nn = cols ? kept : n, nrows = cols ? rows : kept;
    qb_format fmt = qb_format_ggml(type);
    size_t rb = qb_format_row_bytes(&fmt, nn), nbytes = rb * (size_t)nrows;
    uint8_t *buf = malloc(nbytes ? nbytes : 1);
    float *row = malloc((size_t)n * sizeof *row);
    if (!buf || !row) {
        free(buf);
        free(row);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory pruning %s", t->name);
    }
    size_t src_rb = qb_format_row_bytes(&t->fmt, n);
    const uint8_t *src = t->data;
    if (!cols && type == t->type) { /* whole rows, same storage */
        int64_t o = 0;
        for (int64_t r = 0; r < rows; r++)
            if (keep[r / unit]) memcpy(buf + (size_t)(o++) * rb, src + (size_t)r * src_rb, rb);
    } else if (cols && type == t->type) { /* elements of a plain float type */
        size_t es = qb_format_row_bytes(&fmt, 1);
        for (int64_t r = 0; r < rows; r++) {
            uint8_t *d = buf + (size_t)r * rb;
            for (int64_t j = 0; j < n; j++)
                if (keep[j / unit]) {
                    memcpy(d, src + (size_t)r * src_rb + (size_t)j * es, es);
                    d += es;
                }
        }
    } else { /* through f32 */
        float *d = (float *)buf;
        for (int64_t r = 0; r < rows; r++) {
            if (!cols && !keep[r / unit]) continue;
            qb_tensor_current_rows(t, r, 1, row);
            for (int64_t j = 0; j < n; j++)
                if (!cols || keep[j / unit]) *d++ = row[j];
        }
    }
    free(row);
    nt->ne[0] = nn;
    if (t->n_dims >= 2) nt->ne[1] = nrows;
    nt->type = nt->src_type = type;
    nt->fmt = fmt;
    nt->data = nt->src_data = buf;
    nt->nbytes = nt->src_nbytes = nbytes;
    nt->owned = NULL;
    nt->src_owned = buf;
    return QB_OK;
}

/* What the rewrite does to one tensor of a kept block. */
typedef struct {
    const uint8_t *keep; /* NULL: unchanged */
    int unit;
    bool cols;
} cut;

/* The cut of tensor t (a slot of block W) under selection s at block l. */
static cut cut_of(const qb_model *m, const qb_layer_weights *W, const qb_tensor *t, const qb_prune_selection *s, int l)
{
    const qb_config *c = &m->cfg;
    int hd = c->head_dim, H = c->n_heads, KV = c->n_kv_heads, F = c->hidden_dim;
    const uint8_t *kh = s->keep_head + (size_t)l * H, *kk = s->keep_kv + (size_t)l * KV,
                  *kn = s->keep_neuron + (size_t)l * F;
    int nh = 0, nk = 0, nf = 0;
    for (int h = 0; h < H; h++) nh += kh[h];
    for (int k = 0; k < KV; k++) nk += kk[k];
    for (int i = 0; i < F; i++) nf += kn[i];
    if (nh < H && (t == W->wq || t == W->bq)) return (cut){kh, hd, t == W->bq};
    if (nh < H && t == W->wo) return (cut){kh, hd, true};
    if (nk < KV && (t == W->wk || t == W->wv)) return (cut){kk, hd, false};
    if (nk < KV && (t == W->bk || t == W->bv)) return (cut){kk, hd, true};
    if (nf < F && (t == W->w_gate || t == W->w_up)) return (cut){kn, 1, false};
    if (nf < F && t == W->w_down) return (cut){kn, 1, true};
    return (cut){NULL, 0, false};
}

/* "blk.<l>.<rest>": l (or -1 for a tensor outside the blocks) and where <rest> starts. */
static int block_of(const char *name, const char **rest)
{
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end;
    long l = strtol(name + 4, &end, 10);
    if (end == name + 4 || *end != '.') return -1;
    *rest = end + 1;
    return (int)l;
}

qb_status qb_prune_structured_apply(qb_ctx *ctx, qb_model *m, const qb_prune_selection *s)
{
    if (qb_model_is_view(m))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "structured pruning rewrites a loaded model, not a view of one");
    if (m->cfg.n_experts > 0 || !qb_model_blocks_plain(m))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: structured pruning needs separate dense block matrices", m->path);
    qb_config nc;
    qb_status st = check_selection(ctx, m, s, &nc);
    if (st != QB_OK) return st;
    const qb_config *c = &m->cfg;
    for (int i = 0; i < m->n_tensors; i++)
        if (!runs_as_is(&m->tensors[i])) {
            char f[32];
            qb_format_name(&m->tensors[i].fmt, f, sizeof f);
            return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                           "structured pruning: %s is held as %s; prune before quantizing (restore it first)",
                           m->tensors[i].name, f);
        }
    int L = c->n_layers, *renum = malloc((size_t)L * sizeof *renum);
    qb_tensor *nt = calloc((size_t)m->n_tensors + 1, sizeof *nt);
    uint8_t *fresh = calloc((size_t)m->n_tensors + 1, 1); /* nt[j] has buffers of its own */
    uint8_t *gone = calloc((size_t)m->n_tensors + 1, 1);  /* tensors[i]'s buffers are not carried over */
    int n = 0;
    if (!renum || !nt || !fresh || !gone) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory pruning %s", m->path);
        goto fail;
    }
    for (int l = 0, k = 0; l < L; l++) renum[l] = s->keep_layer[l] ? k++ : -1;
    bool changed = nc.n_layers != c->n_layers || nc.n_heads != c->n_heads || nc.n_kv_heads != c->n_kv_heads ||
                   nc.hidden_dim != c->hidden_dim;
    for (int i = 0; i < m->n_tensors && st == QB_OK; i++) {
        const qb_tensor *t = &m->tensors[i];
        const char *rest = NULL;
        int l = block_of(t->name, &rest);
        if (l >= L) {
            st = qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor %s names block %d of %d", m->path, t->name, l, L);
            break;
        }
        if (l >= 0 && renum[l] < 0) {
            gone[i] = 1;
            continue;
        }
        qb_tensor *d = &nt[n];
        *d = *t;
        char name[256];
        if (l >= 0) snprintf(name, sizeof name, "blk.%d.%s", renum[l], rest);
        else snprintf(name, sizeof name, "%s", t->name);
        if (!(d->name = strdup(name))) {
            st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory pruning %s", m->path);
            break;
        }
        n++;
        cut k = l >= 0 ? cut_of(m, &m->layers[l], t, s, l) : (cut){NULL, 0, false};
        if (!k.keep) continue;
        if ((st = slice(ctx, t, k.keep, k.unit, k.cols, d)) != QB_OK) break;
        fresh[n - 1] = 1;
        gone[i] = 1;
    }
    if (st != QB_OK) goto fail;
    /* bind the new table on a copy of the model, so a failure changes nothing */
    qb_model tmp = *m;
    tmp.tensors = nt;
    tmp.n_tensors = n;
    tmp.cfg = nc;
    tmp.layers = NULL;
    tmp.expert_slots = NULL;
    tmp.tok_embd = tmp.output_norm = tmp.output = tmp.rope_freqs = NULL;
    if ((st = qb_model_bind(ctx, &tmp)) != QB_OK) {
        free(tmp.layers);
        goto fail;
    }
    for (int i = 0; i < m->n_tensors; i++) {
        qb_tensor *t = &m->tensors[i];
        free(t->name);
        if (gone[i]) {
            free(t->owned);
            free(t->src_owned);
        }
    }
    free(m->tensors);
    free(m->layers);
    tmp.reshaped = m->reshaped || changed;
    *m = tmp;
    free(renum);
    free(fresh);
    free(gone);
    return QB_OK;
fail:
    for (int j = 0; j < n; j++) {
        free(nt[j].name);
        if (fresh[j]) free(nt[j].src_owned);
    }
    free(nt);
    free(renum);
    free(fresh);
    free(gone);
    return st;
}

/* ---- the whole job ---- */

typedef struct {
    const qb_prune_structured_opts *o;
} calib_bridge;

static void calib_progress(void *ud, int done, int total)
{
    const calib_bridge *b = ud;
    b->o->progress(b->o->ud, "calibration", done, total);
}

static qb_status run_job(qb_ctx *ctx, qb_model *m, const char *calib_path, const qb_prune_amount *a,
                         const qb_prune_structured_opts *o, qb_prune_importance *imp_out, qb_prune_selection *sel_out)
{
    qb_status st;
    int L = m->cfg.n_layers;
    uint8_t *want = calloc((size_t)L * QB_OBS_COUNT, 1);
    if (!want) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    for (int l = 0; l < L; l++) want[l * QB_OBS_COUNT + QB_OBS_ATTN_OUT] = want[l * QB_OBS_COUNT + QB_OBS_FFN_DOWN_IN] = 1;
    calib_bridge br = {o};
    qb_calib_opts co = {.n_samples = o->n_samples, .n_ctx = o->n_ctx, .want = want, .cancel = o->cancel,
                        .progress = o->progress ? calib_progress : NULL, .ud = &br};
    qb_calib *c = NULL;
    st = qb_calib_run_file(ctx, m, calib_path, &co, &c);
    free(want);
    if (st != QB_OK) return st;
    qb_prune_importance imp;
    qb_prune_selection sel = {0};
    st = qb_prune_importance_measure(ctx, m, c, a->layers > 0, o, &imp);
    qb_calib_free(c);
    if (st != QB_OK) return st;
    if ((st = qb_prune_select(ctx, m, &imp, a, &sel)) == QB_OK) st = qb_prune_structured_apply(ctx, m, &sel);
    if (st == QB_OK && imp_out) *imp_out = imp;
    else qb_prune_importance_free(&imp);
    if (st == QB_OK && sel_out) *sel_out = sel;
    else qb_prune_selection_free(&sel);
    return st;
}

qb_status qb_prune_structured(qb_ctx *ctx, qb_model *m, const char *calib_path, const qb_prune_amount *a,
                              const qb_prune_structured_opts *o, qb_prune_importance *imp_out,
                              qb_prune_selection *sel_out)
{
    static const qb_prune_structured_opts none;
    if (!o) o = &none;
    if (imp_out) memset(imp_out, 0, sizeof *imp_out);
    if (sel_out) memset(sel_out, 0, sizeof *sel_out);
    qb_status st = qb_prune_amount_check(ctx, m, a);
    if (st != QB_OK) return st;
    /* a model whose matrices are too small for a thread team runs on one thread
       (qb_work_is_small); the caller's thread count is restored after */
    const qb_config *c = &m->cfg;
    if (!qb_work_is_small(o->n_ctx > 0 ? (size_t)o->n_ctx : 256, c->dim, c->hidden_dim))
        return run_job(ctx, m, calib_path, a, o, imp_out, sel_out);
    qb_ctx one;
    const int saved = qb_ctx_one_thread(ctx, &one);
    st = run_job(&one, m, calib_path, a, o, imp_out, sel_out);
    qb_threads_restore(saved);
    if (st != QB_OK) qb_fail(ctx, st, "%s", qb_ctx_errmsg(&one));
    return st;
}
