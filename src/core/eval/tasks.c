/* tasks.c — scoring HellaSwag, Winogrande and multiple-choice tasks on a model in
 * llama-perplexity's arithmetic (tasks.h). Each task: its choices tokenized with the context,
 * the tokens they all share evaluated once, then each choice's remaining tokens from there
 * (the KV cache is rewound to the shared prefix between choices: a sequence of its own, as
 * llama-perplexity gives each choice). The logits are kept in llama-perplexity's batch order for
 * the task (the prefix's last token, then every token of each choice in turn), so its index
 * arithmetic, Winogrande's off-by-one included, reads the same rows. */
#include "tasks.h"
#include "eval_internal.h"
#include "../infer/infer.h"
#include "../tokenizer/tokenizer.h"
#include "../util/dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHOICES 100

/* compute_logprobs' per-token value, in float: logit - max - log Σ exp(logit_i - max). */
static float logprob_f(const float *l, int n, int tok)
{
    float mx = l[0];
    for (int i = 1; i < n; i++) mx = mx < l[i] ? l[i] : mx;
    float sum = 0.f;
    for (int i = 0; i < n; i++) sum += expf(l[i] - mx);
    return l[tok] - mx - logf(sum);
}

/* softmax()'s probability of tok (float exps summed in double, divided in double, stored as
 * float), as llama-perplexity scores a choice's first token. */
static float softmax_prob(const float *l, int n, int tok)
{
    float mx = l[0];
    for (int i = 0; i < n; i++) mx = mx < l[i] ? l[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += expf(l[i] - mx);
    float e = expf(l[tok] - mx);
    return (float)(e / sum);
}

/* One task being scored: its token sequences and logits. */
typedef struct {
    int n_seq;
    int32_t *seq[MAX_CHOICES];
    int len[MAX_CHOICES];
    int n_base[2];   /* Winogrande: tokens of before + choice */
    int cp;          /* tokens all sequences share */
    int rows;        /* logits rows: 1 + Σ (len - cp) */
    int off[MAX_CHOICES]; /* row of the first token of choice s after the prefix */
} task_tok;

static void tok_free(task_tok *t)
{
    for (int s = 0; s < t->n_seq; s++) free(t->seq[s]);
    memset(t, 0, sizeof *t);
}

static qb_status tokenize_cat(qb_ctx *ctx, const qb_model *m, const char *a, const char *b, const char *c,
                              int32_t **ids, int *n)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    if (!s) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc);
    qb_status st = qb_tokenize(ctx, m->tok, s, la + lb + lc, qb_tokenizer_add_bos(m->tok), ids, n);
    free(s);
    return st;
}

/* Tokenize task t (number k, 1-based in the scored order) and find the shared prefix. */
static qb_status prepare(qb_ctx *ctx, const qb_model *m, const qb_task_set *set, const qb_task *t, int k,
                         task_tok *tt)
{
    memset(tt, 0, sizeof *tt);
    bool wino = set->kind == QB_TASKS_WINOGRANDE;
    if (t->n_choices < 1 || t->n_choices > MAX_CHOICES)
        return qb_fail(ctx, QB_ERR_ARG, "%s: task %d has %d choices", set->path, k, t->n_choices);
    for (int s = 0; s < t->n_choices; s++) {
        qb_status st = wino ? tokenize_cat(ctx, m, t->context, t->choices[s], t->after, &tt->seq[s], &tt->len[s])
                            : tokenize_cat(ctx, m, t->context, " ", t->choices[s], &tt->seq[s], &tt->len[s]);
        tt->n_seq = s + 1;
        if (st != QB_OK) return st;
        if (wino) {
            int32_t *ids;
            if ((st = tokenize_cat(ctx, m, t->context, t->choices[s], "", &ids, &tt->n_base[s])) != QB_OK) return st;
            free(ids);
        }
    }
    int min_len = tt->len[0];
    for (int s = 1; s < tt->n_seq; s++) min_len = tt->len[s] < min_len ? tt->len[s] : min_len;
    int cp = 0;
    for (; cp < min_len; cp++) {
        bool same = true;
        for (int s = 1; s < tt->n_seq && same; s++) same = tt->seq[s][cp] == tt->seq[0][cp];
        if (!same) break;
    }
    tt->cp = cp;
    if (cp == 0)
        return qb_fail(ctx, QB_ERR_ARG,
                       "%s: task %d (line %d): its choices share no first token (no BOS and an empty context?): "
                       "llama-perplexity would read out of bounds",
                       set->path, k, t->line);
    tt->rows = 1;
    for (int s = 0; s < tt->n_seq; s++) {
        if (tt->len[s] == cp)
            return qb_fail(ctx, QB_ERR_ARG,
                           "%s: task %d (line %d): choice %d adds no token after the %d all choices share (a choice "
                           "empty or the prefix of another): llama-perplexity would read out of bounds",
                           set->path, k, t->line, s + 1, cp);
        tt->off[s] = tt->rows;
        tt->rows += tt->len[s] - cp;
    }
    return QB_OK;
}

/* Winogrande: one choice's mean log-probability over the tokens llama-perplexity scores, its
 * logits read at the batch indices it computes (li), whatever they hold. */
static qb_status wino_score(qb_ctx *ctx, const qb_task_set *set, int k, const qb_task *t, const task_tok *tt,
                            const float *logits, int vocab, int s, bool skip, float *out)
{
    size_t cp = (size_t)tt->cp, sz = (size_t)tt->len[s], sz0 = (size_t)tt->len[0];
    size_t n_base = skip ? (size_t)tt->n_base[s] : cp;
    int last = sz - n_base > 1 ? 1 : 0;
    if (n_base < cp)
        return qb_fail(ctx, QB_ERR_ARG,
                       "%s: task %d (line %d): choice %d alone tokenizes to %zu tokens, fewer than the %zu both "
                       "sentences share: llama-perplexity would read logits out of bounds",
                       set->path, k, t->line, s + 1, n_base, cp);
    size_t li = s == 0 ? n_base - cp : sz0 - cp + n_base - cp;
    float score = 0;
    for (size_t j = n_base - 1; j < sz - 1 - (size_t)last; ++j, ++li) {
        if (li >= (size_t)tt->rows)
            return qb_fail(ctx, QB_ERR_ARG, "%s: task %d (line %d): llama-perplexity would read logits out of bounds",
                           set->path, k, t->line);
        score += logprob_f(logits + li * (size_t)vocab, vocab, tt->seq[s][j + 1]);
    }
    score /= (float)(sz - n_base - (size_t)last);
    *out = score;
    return QB_OK;
}

/* One task's outcome: what scoring it found, before the running totals take it in. */
typedef struct {
    int32_t chosen, correct, n_seq, required;
    double score[MAX_CHOICES];
} task_rec;

/* Score task i of set on m (inf: its inference state; *logits grows to the rows it needs). */
static qb_status score_task(qb_ctx *ctx, const qb_model *m, const qb_task_set *set, int i, qb_infer *inf, int n_ctx,
                            float **logits, size_t *logits_rows, task_tok *tt, task_rec *rec)
{
    int vocab = m->cfg.vocab_size;
    const qb_task *t = &set->tasks[i];
    qb_status st = prepare(ctx, m, set, t, i + 1, tt);
    if (st != QB_OK) return st;
    int required = tt->cp + tt->rows - 1;
    if (required > n_ctx)
        return qb_fail(ctx, QB_ERR_ARG,
                       "%s: task %d (line %d) needs %d tokens (a %d-token shared prefix and its choices), more than "
                       "the %d-token context (--ctx)",
                       set->path, i + 1, t->line, required, tt->cp, n_ctx);
    if ((size_t)tt->rows > *logits_rows) {
        free(*logits);
        *logits_rows = (size_t)tt->rows;
        if (!(*logits = malloc(*logits_rows * (size_t)vocab * sizeof **logits))) {
            *logits_rows = 0;
            return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        }
    }
    float *lg = *logits;
    /* the shared prefix once (logits of its last token: row 0), then each choice from it */
    if ((st = qb_infer_eval(ctx, inf, tt->seq[0], tt->cp, 0, lg, 1)) != QB_OK) return st;
    for (int s = 0; s < tt->n_seq; s++) {
        int n = tt->len[s] - tt->cp;
        if ((st = qb_infer_eval(ctx, inf, tt->seq[s] + tt->cp, n, tt->cp, lg + (size_t)tt->off[s] * vocab, n)) != QB_OK)
            return st;
    }
    rec->required = required;
    rec->n_seq = tt->n_seq;
    double *score = rec->score;
    if (set->kind == QB_TASKS_WINOGRANDE) {
        bool skip = (size_t)tt->len[0] - tt->cp > 3 && (size_t)tt->len[1] - tt->cp > 3;
        float sc[2];
        for (int s = 0; s < 2; s++)
            if ((st = wino_score(ctx, set, i + 1, t, tt, lg, vocab, s, skip, &sc[s])) != QB_OK) return st;
        score[0] = sc[0];
        score[1] = sc[1];
        rec->chosen = sc[0] > sc[1] ? 1 : 2;
        rec->correct = rec->chosen == t->gold;
    } else {
        int best = 0;
        for (int s = 0; s < tt->n_seq; s++) {
            /* the first token from the prefix's softmax, the rest from compute_logprobs */
            float p = softmax_prob(lg, vocab, tt->seq[s][tt->cp]);
            const float *row = lg + (size_t)tt->off[s] * vocab;
            size_t count = 1;
            if (set->kind == QB_TASKS_HELLASWAG) { /* a double sum */
                double lp = logf(p);
                for (int j = tt->cp; j < tt->len[s] - 1; j++, count++, row += vocab)
                    lp += logprob_f(row, vocab, tt->seq[s][j + 1]);
                score[s] = lp / (double)count;
            } else { /* a float sum */
                float lp = logf(p);
                for (int j = tt->cp; j < tt->len[s] - 1; j++, count++, row += vocab)
                    lp += logprob_f(row, vocab, tt->seq[s][j + 1]);
                score[s] = lp / (float)count;
            }
            if (s > 0 && score[s] > score[best]) best = s;
        }
        rec->chosen = best;
        rec->correct = set->kind == QB_TASKS_HELLASWAG ? best == t->gold : t->labels[best] == 1;
    }
    return QB_OK;
}

/* Task i's outcome into the running totals, and to the caller's on_task. */
static void take_task(const qb_task_set *set, int i, const task_rec *rec, const qb_tasks_opts *o, int *n_correct,
                      int *n_tot_answers, qb_tasks_result *out)
{
    out->n_tokens += rec->required;
    qb_task_score ts = {.index = i + 1, .n_choices = rec->n_seq, .score = rec->score, .chosen = rec->chosen,
                        .correct = rec->correct};
    *n_correct += ts.correct;
    *n_tot_answers += rec->n_seq;
    ts.n_correct = *n_correct;
    ts.n_done = i + 1;
    ts.running = set->kind == QB_TASKS_HELLASWAG ? (double)*n_correct / (double)(i + 1) * 100.0
                                                 : 100.0 * *n_correct / (i + 1);
    if (o && o->on_task) o->on_task(o->task_ud, &ts);
}

qb_status qb_tasks_score(qb_ctx *ctx, const qb_model *m, const qb_task_set *set, const qb_tasks_opts *o,
                         qb_tasks_result *out)
{
    memset(out, 0, sizeof *out);
    out->kind = set->kind;
    if (!m->tok) return qb_fail(ctx, QB_ERR_ARG, "%s: the model has no tokenizer", m->path);
    if (set->n <= 0) return qb_fail(ctx, QB_ERR_ARG, "%s: no tasks", set->path);
    int n_ctx = o && o->n_ctx > 0 ? o->n_ctx : 512;
    if (n_ctx < 4 || n_ctx > m->cfg.seq_len * 64)
        return qb_fail(ctx, QB_ERR_ARG, "context %d is out of range", n_ctx);
    qb_infer *inf = NULL;
    float *logits = NULL;
    size_t logits_rows = 0;
    task_tok tt = {0};
    /* one rank: each task taken in as it is scored; several (dist.h): each scores its share,
     * then all outcomes are gathered and taken in, in order */
    bool many = qb_dist_size() > 1;
    task_rec one, *recs = many ? calloc((size_t)set->n, sizeof *recs) : NULL;
    double t0 = qb_eval_now();
    int n_correct = 0, n_tot_answers = 0, n_own = qb_dist_share(set->n, qb_dist_rank()), k = 0;
    qb_status st = many && !recs ? qb_fail(ctx, QB_ERR_NOMEM, "out of memory") : QB_OK;
    if (st == QB_OK) st = qb_infer_new_run(ctx, m, o ? o->run : NULL, n_ctx, 512, &inf);
    if (st == QB_OK && many && o && o->divided) o->divided(o->ud, set->n);
    for (int i = 0; st == QB_OK && i < set->n; i++) {
        if (!qb_dist_owns(i)) continue;
        if (o && o->cancel && *o->cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "%s: cancelled after %d of %d tasks", set->path, k, n_own);
            break;
        }
        task_rec *rec = many ? &recs[i] : &one;
        st = score_task(ctx, m, set, i, inf, n_ctx, &logits, &logits_rows, &tt, rec);
        tok_free(&tt);
        if (st != QB_OK) break;
        if (!many) take_task(set, i, rec, o, &n_correct, &n_tot_answers, out);
        if (o && o->progress) o->progress(o->ud, ++k, n_own);
    }
    if (many && (st = qb_dist_merge(ctx, st, recs, sizeof *recs, set->n)) == QB_OK)
        for (int i = 0; i < set->n; i++) take_task(set, i, &recs[i], o, &n_correct, &n_tot_answers, out);
    if (st != QB_OK) goto done;
    int n = set->n;
    out->n_done = n;
    out->n_correct = n_correct;
    if (set->kind == QB_TASKS_HELLASWAG) {
        double p = (double)n_correct / n;
        out->acc = (double)n_correct / (double)n * 100.0;
        out->acc_err = n > 1 ? 100.0 * sqrt(p * (1 - p) / (n - 1)) : 0;
        out->final_line = false;
    } else {
        /* float arithmetic as llama-perplexity's final lines */
        float p = 1.f * n_correct / n;
        if (set->kind == QB_TASKS_WINOGRANDE) {
            float sigma = 100.f * sqrtf(p * (1 - p) / (n - 1));
            out->acc = 100 * p;
            out->acc_err = sigma;
            out->final_line = n >= 100;
        } else {
            float sigma = sqrtf(p * (1 - p) / (n - 1));
            out->acc = 100.f * p;
            out->acc_err = 100.f * sigma;
            p = 1.f * n / n_tot_answers;
            sigma = sqrtf(p * (1 - p) / (n - 1));
            out->chance = 100.f * p;
            out->chance_err = 100.f * sigma;
            out->final_line = !(n < 100 && n < set->n_file);
        }
    }
    out->seconds = qb_eval_now() - t0;
done:
    tok_free(&tt);
    free(recs);
    free(logits);
    qb_infer_free(inf);
    return st;
}
