/* scan_engine.c — qb_sensitivity_kld, the engine under the scan, the search and pruning's
 * comparisons: many model variants scored against one base on the same chunks. Per chunk the
 * base runs once (all threads) and keeps what the variants can reuse exactly: its activations
 * at the points where variants start to differ (checkpoint.c) and its probabilities; then the
 * variants run in parallel, one single-threaded pass each, from their first changed point, the
 * last layer only for the scored rows past their keys and values. What is kept per chunk fits
 * a memory bound; what does not fit is recomputed (scan_cache.c chooses). */
#include "sensitivity.h"
#include "eval_internal.h"
#include "scan_internal.h"
#include "../infer/infer.h"
#include "../infer/sampler.h"
#include "../util/dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The base's view of one chunk: its logits, log Σ exp per row, argmax, NLL of the next token,
 * and (when the cache holds them) its probabilities exp(logit - lse). */
typedef struct {
    float *logits; /* (n_logits, vocab) */
    double *lse;   /* (rows) */
    int32_t *top;  /* (rows) */
    double *nll;   /* (rows) */
    double *prob;  /* (rows, vocab) or NULL */
} base_chunk;

/* One variant's logits for a chunk against the base's: sums into a, KLDs at a->klds + off.
 * The same arithmetic as kld.c's kld_row (log-softmax in double, argmax the first maximum),
 * with the maximum and argmax found in one sweep and the base's exp taken from bc->prob. */
static void score_variant(const base_chunk *bc, const float *lo, int rows, int vocab, const int32_t *next, qb_kld_acc *a,
                          long off)
{
    for (int r = 0; r < rows; r++) {
        const float *b = bc->logits + (size_t)r * vocab, *o = lo + (size_t)r * vocab;
        const double *pb = bc->prob ? bc->prob + (size_t)r * vocab : NULL;
        float mx = o[0];
        int32_t top = 0;
        for (int i = 1; i < vocab; i++)
            if (o[i] > mx) mx = o[i], top = i;
        double sum = 0;
        for (int i = 0; i < vocab; i++) sum += exp((double)o[i] - mx);
        double lse_o = mx + log(sum), lse_b = bc->lse[r];
        double nll_o = -(o[next[r]] - lse_o);
        double kl = 0;
        if (pb) {
            for (int i = 0; i < vocab; i++) {
                double lb = b[i] - lse_b;
                kl += pb[i] * (lb - (o[i] - lse_o));
            }
        } else {
            for (int i = 0; i < vocab; i++) {
                double lb = b[i] - lse_b;
                kl += exp(lb) * (lb - (o[i] - lse_o));
            }
        }
        if (kl < 0) kl = 0;
        a->klds[off + r] = kl;
        a->nb += bc->nll[r];
        a->nb2 += bc->nll[r] * bc->nll[r];
        a->no += nll_o;
        a->no2 += nll_o * nll_o;
        a->k += kl;
        a->k2 += kl * kl;
        a->agree += top == bc->top[r];
    }
}

/* The base's per-row figures of a chunk (its logits already in bc), and its perplexity sums. */
static void base_rows(base_chunk *bc, const int32_t *buf, int first, int rows, int vocab, double *nll, double *nll2)
{
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *b = bc->logits + (size_t)r * vocab;
        bc->nll[r] = -qb_eval_log_prob(b, vocab, buf[first + r + 1], &bc->lse[r]);
        bc->top[r] = qb_argmax(b, vocab);
        if (bc->prob)
            for (int i = 0; i < vocab; i++) {
                double lb = b[i] - bc->lse[r];
                bc->prob[(size_t)r * vocab + i] = exp(lb);
            }
    }
    for (int r = 0; r < rows; r++) {
        *nll += bc->nll[r];
        *nll2 += bc->nll[r] * bc->nll[r];
    }
}

/* Per-thread state of the variants' passes. */
typedef struct {
    qb_infer *s;   /* made for the base, rebound to each variant (NULL: none could be made) */
    float *lo;     /* (n_logits, vocab) */
} worker;

/* Evaluate variant v on the chunk in buf (its own single-threaded pass, resumed from the cache
 * where it can) and score it; *work gets the multiply-adds done. */
static qb_status variant_pass(qb_ctx *tctx, worker *w, const qb_model *v, const qb_scan_cache *cache, int j,
                              const int32_t *buf, int n_ctx, int vocab, const base_chunk *bc, qb_kld_acc *a, long off,
                              int64_t *work)
{
    int first = n_ctx / 2, n_logits = n_ctx - first, rows = n_ctx - 1 - first;
    qb_infer *own = NULL, *s = w->s;
    qb_status st = s ? qb_infer_rebind(tctx, s, v) : QB_ERR_ARG;
    if (st != QB_OK) { /* not a view of the base: a run state of its own, a whole pass */
        if ((st = qb_infer_new(tctx, v, n_ctx, n_ctx, &own)) != QB_OK) return st;
        s = own;
    }
    qb_infer_reset_work(s);
    qb_infer_set_trim(s, cache->trim);
    qb_checkpoint cp;
    int layer;
    qb_stage stage;
    if (!own && qb_scan_cache_resume(cache, j, s, &layer, &stage, &cp))
        st = qb_infer_resume(tctx, s, layer, stage, &cp, n_ctx, w->lo, n_logits);
    else
        st = qb_infer_eval(tctx, s, buf, n_ctx, 0, w->lo, n_logits);
    *work = qb_infer_work(s);
    qb_infer_free(own);
    if (st == QB_OK) score_variant(bc, w->lo, rows, vocab, buf + first + 1, a, off);
    return st;
}

/* The variants of one chunk in parallel, one per thread. */
static qb_status variants_chunk(qb_ctx *ctx, const qb_model *const *variants, int n_variants, const qb_scan_cache *cache,
                                worker *ws, int nt, const int32_t *buf, int n_ctx, int vocab, const base_chunk *bc,
                                qb_kld_acc *accs, long off, int64_t *work, int skip, const qb_scan_opts *o,
                                int *done_count, int total)
{
    qb_status first_err = QB_OK;
    char errmsg[sizeof ctx->errmsg] = "";
#pragma omp parallel num_threads(nt)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        qb_ctx tctx = *ctx;
        tctx.n_threads = 1; /* one single-threaded forward pass per thread */
#pragma omp for schedule(dynamic, 1)
        for (int j = 0; j < n_variants; j++) {
            if (j == skip || !qb_dist_owns(j) || (o && o->cancel && *o->cancel) || first_err != QB_OK) continue;
            int64_t wk = 0;
            qb_status s = variant_pass(&tctx, &ws[tid], variants[j], cache, j, buf, n_ctx, vocab, bc, &accs[j], off, &wk);
            work[j] += wk;
            if (s != QB_OK) {
#pragma omp critical(qb_sens_err)
                if (first_err == QB_OK) {
                    first_err = s;
                    snprintf(errmsg, sizeof errmsg, "%s", tctx.errmsg);
                }
            }
            int d;
#pragma omp atomic capture
            d = ++*done_count;
            if (tid == 0 && o && o->progress) o->progress(o->ud, d, total);
        }
    }
    return first_err != QB_OK ? qb_fail(ctx, first_err, "%s", errmsg) : QB_OK;
}

qb_status qb_sensitivity_kld(qb_ctx *ctx, const qb_model *base, const qb_model *const *variants, int n_variants,
                             const int32_t *tokens, int n_tokens, const qb_scan_opts *o, qb_kld_result *out,
                             qb_ppl_result *base_out)
{
    if (n_variants <= 0) return qb_fail(ctx, QB_ERR_ARG, "no model variants to evaluate");
    memset(out, 0, (size_t)n_variants * sizeof *out);
    if (base_out) memset(base_out, 0, sizeof *base_out);
    if (o && o->stats) memset(o->stats, 0, sizeof *o->stats);
    for (int j = 0; j < n_variants; j++)
        if (base->cfg.vocab_size != variants[j]->cfg.vocab_size)
            return qb_fail(ctx, QB_ERR_ARG, "%s and %s have different vocabularies (%d vs %d tokens)", base->path,
                           variants[j]->path, base->cfg.vocab_size, variants[j]->cfg.vocab_size);
    qb_eval_opts eo = {.n_ctx = o ? o->n_ctx : 0};
    int n_ctx0 = eo.n_ctx > 0 ? eo.n_ctx : 256;
    if (o && o->n_tokens > 0) eo.n_chunks = o->n_tokens / n_ctx0 > 0 ? o->n_tokens / n_ctx0 : 1;
    int n_ctx, n_chunks;
    qb_status st = qb_eval_plan_chunks(ctx, base, n_tokens, &eo, &n_ctx, &n_chunks);
    if (st != QB_OK) return st;
    int vocab = base->cfg.vocab_size, first = n_ctx / 2, n_logits = n_ctx - first, rows = n_ctx - 1 - first;
    int nt = 1;
#ifdef _OPENMP
    nt = ctx->n_threads > 0 ? ctx->n_threads : omp_get_max_threads();
#endif
    /* in a job of several ranks each evaluates its share of the variants (dist.h); all results
     * are gathered at the end */
    const int n_own = qb_dist_share(n_variants, qb_dist_rank());
    if (nt > n_own) nt = n_own > 0 ? n_own : 1;
    /* the model the variants resume from, and whether it is one of them */
    const qb_model *src = o && o->prefix ? o->prefix : base;
    int src_j = -1;
    for (int j = 0; src != base && j < n_variants; j++)
        if (variants[j] == src) src_j = j;
    qb_scan_cache cache;
    qb_infer *sb = NULL, *sp = NULL;
    int32_t *buf = NULL;
    base_chunk bc = {0};
    worker *ws = NULL;
    qb_kld_acc *accs = NULL;
    int64_t *work = NULL;
    float *lsrc = NULL;
    int64_t work_full = 0, work_extra = 0;
    double t0 = qb_eval_now(), nll = 0, nll2 = 0;
    int total = n_chunks * n_own, done_count = 0;
    if ((st = qb_scan_cache_plan(ctx, src, variants, n_variants, n_ctx, n_logits, vocab, rows, o, &cache)) != QB_OK)
        goto gather;
    buf = malloc((size_t)n_ctx * sizeof *buf);
    bc = (base_chunk){malloc((size_t)n_logits * vocab * sizeof(float)), malloc((size_t)rows * sizeof(double)),
                      malloc((size_t)rows * sizeof(int32_t)), malloc((size_t)rows * sizeof(double)), cache.prob};
    ws = calloc((size_t)nt, sizeof *ws);
    accs = calloc((size_t)n_variants, sizeof *accs);
    work = calloc((size_t)n_variants, sizeof *work);
    lsrc = src != base ? malloc((size_t)n_logits * vocab * sizeof(float)) : NULL;
    bool ok = buf && bc.logits && bc.lse && bc.top && bc.nll && ws && accs && work && (src == base || lsrc);
    for (int t = 0; ok && t < nt; t++) ok = (ws[t].lo = malloc((size_t)n_logits * vocab * sizeof(float))) != NULL;
    for (int j = 0; ok && j < n_variants; j++)
        if (qb_dist_owns(j) || j == src_j) ok = (accs[j].klds = malloc((size_t)n_chunks * rows * sizeof(double))) != NULL;
    if (!ok) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory for %d model variants", n_variants);
        goto gather;
    }
    if ((st = qb_infer_new(ctx, base, n_ctx, n_ctx, &sb)) != QB_OK) goto gather;
    if (src != base && (st = qb_infer_new(ctx, src, n_ctx, n_ctx, &sp)) != QB_OK) goto gather;
    qb_infer_set_checkpoints(src != base ? sp : sb, cache.table);
    for (int t = 0; t < nt; t++) { /* a failure here only costs speed: that thread makes states per variant */
        qb_ctx scratch = *ctx;
        scratch.n_threads = 1;
        if (qb_infer_new(&scratch, base, n_ctx, n_ctx, &ws[t].s) != QB_OK) ws[t].s = NULL;
    }
    if (qb_dist_size() > 1 && o && o->divided) o->divided(o->ud, n_variants);
    t0 = qb_eval_now();
    for (int c = 0; c < n_chunks && st == QB_OK; c++) {
        if (o && o->cancel && *o->cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "sensitivity evaluation cancelled after %d of %d chunks", c, n_chunks);
            break;
        }
        qb_eval_chunk_tokens(base, tokens, c, n_ctx, buf);
        qb_ctx_apply_threads(ctx);
        qb_infer_reset_work(sb);
        if ((st = qb_infer_eval(ctx, sb, buf, n_ctx, 0, bc.logits, n_logits)) != QB_OK) break;
        work_full += qb_infer_work(sb);
        base_rows(&bc, buf, first, rows, vocab, &nll, &nll2);
        if (sp) { /* the prefix's whole pass (all threads), kept in the cache; scored when it is a variant */
            qb_infer_reset_work(sp);
            if ((st = qb_infer_eval(ctx, sp, buf, n_ctx, 0, lsrc, n_logits)) != QB_OK) break;
            if (src_j >= 0) { /* every rank runs the prefix; its owner counts it */
                score_variant(&bc, lsrc, rows, vocab, buf + first + 1, &accs[src_j], (long)c * rows);
                work[src_j] += qb_infer_work(sp);
                if (qb_dist_owns(src_j)) done_count++;
            } else {
                work_extra += qb_infer_work(sp);
            }
        }
        st = variants_chunk(ctx, variants, n_variants, &cache, ws, nt, buf, n_ctx, vocab, &bc, accs, (long)c * rows,
                            work, src_j, o, &done_count, total);
    }
    if (st == QB_OK && o && o->cancel && *o->cancel)
        st = qb_fail(ctx, QB_ERR_CANCELLED, "sensitivity evaluation cancelled");
    if (st == QB_OK) {
        long count = (long)n_chunks * rows;
        double secs = qb_eval_now() - t0;
        for (int j = 0; j < n_variants; j++) {
            if (!qb_dist_owns(j)) continue;
            qb_eval_kld_finish(&out[j], &accs[j], count, n_chunks, n_ctx, secs);
            out[j].cost = work_full > 0 ? (double)work[j] / (double)work_full : 0;
        }
        if (base_out) {
            qb_eval_finish_ppl(base_out, nll, nll2, count);
            base_out->n_chunks = n_chunks;
            base_out->n_ctx = n_ctx;
            base_out->seconds = secs;
        }
        if (o && o->progress) o->progress(o->ud, total, total);
    }
gather: /* every rank gets every variant's result (or the first failing rank's error) */
    st = qb_dist_merge(ctx, st, out, sizeof *out, n_variants);
    if (st == QB_OK && o && o->stats) { /* from the gathered costs: the same numbers on any number of ranks */
        qb_scan_stats *S = o->stats;
        double sum = 0;
        for (int j = 0; j < n_variants; j++) sum += out[j].cost;
        qb_scan_cache_stats(&cache, S);
        S->cost_mean = sum / n_variants;
        S->cost_all = work_full > 0 ? ((double)work_full + (double)work_extra) / ((double)work_full * n_variants) +
                                          S->cost_mean
                                    : 0;
        S->work_full = n_chunks > 0 ? (double)work_full / n_chunks : 0;
    }
    qb_infer_free(sb);
    qb_infer_free(sp);
    for (int t = 0; ws && t < nt; t++) {
        qb_infer_free(ws[t].s);
        free(ws[t].lo);
    }
    free(ws);
    for (int j = 0; accs && j < n_variants; j++) free(accs[j].klds);
    free(accs);
    free(work);
    free(lsrc);
    free(buf);
    free(bc.logits);
    free(bc.lse);
    free(bc.top);
    free(bc.nll);
    qb_scan_cache_free(&cache);
    return st;
}
