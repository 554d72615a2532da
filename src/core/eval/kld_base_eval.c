/* kld_base_eval.c — the two runs around a KL-divergence base file: the base model's
 * log-probabilities written to one (llama-perplexity --kl-divergence-base FILE without
 * --kl-divergence), and a model compared with one (with --kl-divergence). Chunking as
 * llama-perplexity's (eval.h): a chunk's first token replaced by BOS, its second half scored. */
#include "kld_base.h"
#include "kld_base_stats.h"
#include "eval_internal.h"
#include "../infer/infer.h"
#include "../util/atomic_file.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static qb_status write_fail(qb_ctx *ctx, qb_atomic_file *af, const char *path)
{
    int e = errno;
    qb_atomic_abort(af);
    return qb_fail(ctx, QB_ERR_IO, "%s: write failed: %s", path, strerror(e));
}

qb_status qb_kld_base_save(qb_ctx *ctx, const qb_model *m, const int32_t *tokens, int n_tokens,
                           const qb_eval_opts *o, const char *path, qb_ppl_result *out)
{
    memset(out, 0, sizeof *out);
    int n_ctx, n_chunks;
    qb_status st = qb_eval_plan_chunks(ctx, m, n_tokens, o, &n_ctx, &n_chunks);
    if (st != QB_OK) return st;
    const int vocab = m->cfg.vocab_size, first = n_ctx / 2, n_logits = n_ctx - first, rows = n_ctx - 1 - first;
    const int nv = 2 * ((vocab + 1) / 2) + 4;
    for (int i = 0; i < n_chunks * n_ctx; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return qb_fail(ctx, QB_ERR_ARG, "token %d of the text is %d, outside %s's vocabulary of %d", i,
                           (int)tokens[i], m->path, vocab);
    qb_infer *s = NULL;
    qb_atomic_file af;
    bool open = false;
    int32_t *buf = malloc((size_t)n_ctx * sizeof *buf);
    float *logits = malloc((size_t)n_logits * vocab * sizeof *logits);
    uint16_t *enc = malloc((size_t)rows * nv * sizeof *enc);
    double *nll = malloc((size_t)rows * sizeof *nll);
    if (!buf || !logits || !enc || !nll) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = qb_infer_new_run(ctx, m, o ? o->run : NULL, n_ctx, n_ctx, &s)) != QB_OK) goto done;
    if ((st = qb_atomic_begin(ctx, path, &af)) != QB_OK) goto done;
    open = true;
    int32_t head[3] = {n_ctx, vocab, n_chunks};
    if (!qb_atomic_write(&af, QB_KLD_BASE_MAGIC, 8) || !qb_atomic_write(&af, head, sizeof head) ||
        !qb_atomic_write(&af, tokens, (size_t)n_chunks * n_ctx * sizeof *tokens)) {
        open = false;
        st = write_fail(ctx, &af, path);
        goto done;
    }
    qb_ctx_apply_threads(ctx);
    double t0 = qb_eval_now(), sum = 0, sum2 = 0;
    for (int c = 0; c < n_chunks; c++) {
        if (o && o->cancel && *o->cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "%s: cancelled after %d of %d chunks (nothing written)", path, c,
                         n_chunks);
            goto done;
        }
        qb_eval_chunk_tokens(m, tokens, c, n_ctx, buf);
        if ((st = qb_infer_eval(ctx, s, buf, n_ctx, 0, logits, n_logits)) != QB_OK) goto done;
#pragma omp parallel for schedule(static)
        for (int r = 0; r < rows; r++)
            nll[r] = qb_kld_base_encode_row(logits + (size_t)r * vocab, vocab, enc + (size_t)r * nv,
                                            tokens[(size_t)c * n_ctx + first + r + 1]);
        for (int r = 0; r < rows; r++) {
            if (!isfinite(nll[r])) {
                st = qb_fail(ctx, QB_ERR_ARG, "%s: the logits of chunk %d, position %d are not finite (nothing written)",
                             m->path, c + 1, first + r);
                goto done;
            }
            sum += nll[r];
            sum2 += nll[r] * nll[r];
        }
        if (!qb_atomic_write(&af, enc, (size_t)rows * nv * sizeof *enc)) {
            open = false;
            st = write_fail(ctx, &af, path);
            goto done;
        }
        if (o && o->progress) o->progress(o->ud, c + 1, n_chunks);
    }
    open = false;
    if ((st = qb_atomic_commit(ctx, &af)) != QB_OK) goto done;
    qb_eval_finish_ppl(out, sum, sum2, (long)n_chunks * rows);
    out->n_chunks = n_chunks;
    out->n_ctx = n_ctx;
    out->seconds = qb_eval_now() - t0;
done:
    if (open) qb_atomic_abort(&af);
    qb_infer_free(s);
    free(buf);
    free(logits);
    free(enc);
    free(nll);
    return st;
}

qb_status qb_eval_kld_base(qb_ctx *ctx, const qb_kld_base *b, const qb_model *m, const qb_eval_opts *o,
                           qb_kld_stats *out)
{
    memset(out, 0, sizeof *out);
    qb_status st = qb_kld_base_check(ctx, b, m, NULL, 0, NULL);
    if (st != QB_OK) return st;
    const int n_ctx = b->n_ctx, vocab = b->n_vocab, first = n_ctx / 2, n_logits = n_ctx - first, rows = b->rows;
    if (o && o->n_ctx > 0 && o->n_ctx != n_ctx)
        return qb_fail(ctx, QB_ERR_ARG, "%s: made with a context of %d tokens, not the %d asked for", b->path, n_ctx,
                       o->n_ctx);
    if (o && o->n_chunks > b->n_chunk)
        return qb_fail(ctx, QB_ERR_ARG, "%s: holds %d chunks, %d asked for", b->path, b->n_chunk, o->n_chunks);
    const int n_chunks = o && o->n_chunks > 0 ? o->n_chunks : b->n_chunk;
    const long n = (long)n_chunks * rows;
    qb_infer *s = NULL;
    int32_t *buf = malloc((size_t)n_ctx * sizeof *buf);
    float *logits = malloc((size_t)n_logits * vocab * sizeof *logits);
    qb_kldb_sums sums = {0}, *part = malloc((size_t)rows * sizeof *part);
    float *klds = malloc((size_t)n * sizeof *klds), *p_diffs = malloc((size_t)n * sizeof *p_diffs);
    if (!buf || !logits || !part || !klds || !p_diffs) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = qb_infer_new_run(ctx, m, o ? o->run : NULL, n_ctx, n_ctx, &s)) != QB_OK) goto done;
    qb_ctx_apply_threads(ctx);
    double t0 = qb_eval_now();
    for (int c = 0; c < n_chunks; c++) {
        if (o && o->cancel && *o->cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "KL divergence cancelled after %d of %d chunks", c, n_chunks);
            goto done;
        }
        qb_eval_chunk_tokens(m, b->tokens, c, n_ctx, buf);
        if ((st = qb_infer_eval(ctx, s, buf, n_ctx, 0, logits, n_logits)) != QB_OK) goto done;
        const long at = (long)c * rows;
#pragma omp parallel for schedule(static)
        for (int r = 0; r < rows; r++) {
            memset(&part[r], 0, sizeof part[r]);
            qb_kldb_row(logits + (size_t)r * vocab, vocab, qb_kld_base_row(b, c, r), buf[first + r + 1], &part[r],
                        &klds[at + r], &p_diffs[at + r]);
        }
        for (int r = 0; r < rows; r++) { /* in order: the sums do not depend on the thread count */
            if (!isfinite(part[r].sum_nll) || !isfinite(part[r].sum_kld)) {
                st = qb_fail(ctx, QB_ERR_ARG, "%s: the logits of chunk %d, position %d are not finite", m->path, c + 1,
                             first + r);
                goto done;
            }
            qb_kldb_add(&sums, &part[r]);
        }
        if (o && o->progress) o->progress(o->ud, c + 1, n_chunks);
    }
    qb_kldb_finish(&sums, klds, p_diffs, out);
    out->n_ctx = n_ctx;
    out->n_chunks = n_chunks;
    out->n_vocab = vocab;
    out->seconds = qb_eval_now() - t0;
done:
    qb_infer_free(s);
    free(buf);
    free(logits);
    free(part);
    free(klds);
    free(p_diffs);
    return st;
}
