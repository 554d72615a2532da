/* finetune.c — quantization-aware fine-tuning with distillation, and healing (finetune.h),
 * over the training pass (train.h), AdamW (optim.h) and the checkpoint container. */
#include "finetune.h"
#include "../infer/backward.h"
#include "../infer/infer.h"
#include "../infer/optim.h"
#include "../infer/train.h"
#include "../calib/calib.h"
#include "../quant/format.h"
#include "../tokenizer/tokenizer.h"
#include "../util/ckpt_file.h"
#include "fakequant.h"
#include "fold.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One tensor of the model as the run sees it. */
typedef struct {
    qb_tensor *t;
    float **lat;    /* its slot in the latent parameters (the values that train, or stay) */
    float **run;    /* its slot in what the pass runs: the latent array, or the fake quantization */
    float **grad;   /* its slot in the gradients (NULL array when it does not train) */
    float *fq;      /* owned: the fake-quantized values (matrices in a quantized format), else NULL */
    float *m, *v;   /* owned: AdamW's moments, when it trains */
    /* learnable clipping (learn_clip, integer formats with groups): per group α, β, their
       gradients and moments; all owned, NULL otherwise */
    float *clip[2], *clip_g[2], *clip_m[2], *clip_v[2];
    int64_t ng;
    size_t n;
    bool trains, decay;
} ft_slot;

struct qb_finetune {
    qb_model *student;
    const qb_model *teacher;
    qb_finetune_params p;
    qb_adamw_cfg opt;
    qb_train_params *lat, *grad;
    qb_train_params run;       /* shallow: arrays of lat or of the slots' fq; layers owned */
    ft_slot *slots;
    int n_slots;
    qb_train_pass *tp;
    qb_infer *teach;
    int32_t *windows;          /* (n_windows, seq) */
    int32_t *text;             /* shift_windows: the text the windows are cut from (n_text), else NULL */
    int n_text;
    int n_windows;
    int *order;                /* the current epoch's permutation of the windows */
    long order_epoch;
    float *t_logits, *s_logits, *dlogits, *dpart; /* (seq, vocab) */
    int32_t *targets;
    void *packed;              /* scratch: the largest fake-quantized matrix packed */
    size_t packed_bytes;
    int step;
    bool recompute;            /* the pass recomputes activations */
};

/* ---- the tensors ------------------------------------------------------------------------- */

static bool quantized_matrix(const qb_tensor *t)
{
    return t->n_dims >= 2 && !(t->fmt.kind == QB_FMT_GGML && t->fmt.type == QB_TYPE_F32);
}

static void add_slot(qb_finetune *ft, qb_tensor *t, float **lat, float **run, float **grad)
{
    if (!t || !*lat) return;
    ft_slot *s = &ft->slots[ft->n_slots++];
    memset(s, 0, sizeof *s);
    s->t = t;
    s->lat = lat;
    s->run = run;
    s->grad = grad;
    s->n = (size_t)qb_tensor_nelements(t);
}

/* Every tensor of the model once (a tied classifier is the embeddings). */
static void collect_slots(qb_finetune *ft)
{
    qb_model *m = ft->student;
    qb_train_params *L = ft->lat, *R = &ft->run, *G = ft->grad;
    add_slot(ft, m->tok_embd, &L->tok_embd, &R->tok_embd, &G->tok_embd);
    add_slot(ft, m->output_norm, &L->output_norm, &R->output_norm, &G->output_norm);
    if (m->output != m->tok_embd) add_slot(ft, m->output, &L->output, &R->output, &G->output);
    for (int l = 0; l < m->cfg.n_layers; l++) {
#define SLOT(f) add_slot(ft, m->layers[l].f, &L->layers[l].f, &R->layers[l].f, &G->layers[l].f);
        QB_LAYER_TENSORS(SLOT)
#undef SLOT
    }
}

/* The run's values of a fake-quantized slot from its latent values: quantized to its
 * tensor's format and dequantized, the values its packed bytes will hold. */
static qb_status fake_quantize(qb_ctx *ctx, qb_finetune *ft, ft_slot *s)
{
    const qb_tensor *t = s->t;
    const int64_t n = t->ne[0], rows = qb_tensor_rows(t);
    if (s->clip[0]) { /* the format's grid for the learned range: the values its packed bytes hold */
        qb_fq_forward(&t->fmt, *s->lat, rows, n, NULL, s->clip[0], s->clip[1], s->fq);
        return QB_OK;
    }
    qb_status st = qb_quantize_matrix(ctx, &t->fmt, *s->lat, rows, n, ft->packed, NULL);
    if (st != QB_OK) return st;
    const size_t rb = qb_format_row_bytes(&t->fmt, n);
    float *out = s->fq;
    const uint8_t *src = ft->packed;
#pragma omp parallel for schedule(static) if (rows * n > 65536)
    for (int64_t r = 0; r < rows; r++) qb_dequantize_row(&t->fmt, src + (size_t)r * rb, out + r * n, n);
    return QB_OK;
}

/* ---- begin / end ------------------------------------------------------------------------- */

void qb_finetune_end(qb_finetune *ft)
{
    if (!ft) return;
    for (int i = 0; ft->slots && i < ft->n_slots; i++) {
        ft_slot *sl = &ft->slots[i];
        free(sl->fq);
        free(sl->m);
        free(sl->v);
        for (int c = 0; c < 2; c++) free(sl->clip[c]), free(sl->clip_g[c]), free(sl->clip_m[c]), free(sl->clip_v[c]);
    }
    free(ft->slots);
    free(ft->run.layers);
    qb_train_params_free(ft->lat);
    qb_train_params_free(ft->grad);
    qb_train_pass_free(ft->tp);
    qb_infer_free(ft->teach);
    free(ft->windows);
    free(ft->text);
    free(ft->order);
    free(ft->t_logits);
    free(ft->s_logits);
    free(ft->dlogits);
    free(ft->dpart);
    free(ft->targets);
    free(ft->packed);
    free(ft);
}

static qb_status defaults(qb_ctx *ctx, const qb_finetune_params *in, qb_finetune_params *p)
{
    *p = *in;
    if (p->steps <= 0) p->steps = 100;
    if (p->batch <= 0) p->batch = 4;
    if (p->seq <= 0) p->seq = 128;
    if (!(p->lr > 0)) p->lr = p->heal ? 1e-3f : 1e-4f;
    if (p->min_lr_ratio < 0) p->min_lr_ratio = 0.1f;
    if (p->warmup < 0) p->warmup = p->steps / 10;
    if (p->clip == 0) p->clip = 1.0f;
    if (p->kd < 0) p->kd = 1.0f;
    if (!(p->tau > 0)) p->tau = 1.0f;
    if (p->seed == 0) p->seed = 0x5eed;
    if (!(p->clip_lr > 0)) p->clip_lr = 1e-3f;
    if (p->heal) p->learn_clip = false;
    if (p->seq < 2) return qb_fail(ctx, QB_ERR_ARG, "fine-tuning sequences of %d tokens (at least 2)", p->seq);
    if (p->min_lr_ratio > 1) return qb_fail(ctx, QB_ERR_ARG, "a learning-rate floor ratio of %g (0..1)", p->min_lr_ratio);
    if (p->warmup > p->steps) return qb_fail(ctx, QB_ERR_ARG, "%d warm-up steps of %d", p->warmup, p->steps);
    if (!(p->weight_decay >= 0 && p->weight_decay < 1))
        return qb_fail(ctx, QB_ERR_ARG, "a weight decay of %g (0..1)", p->weight_decay);
    if (!(p->ce >= 0) || !(p->kd + p->ce > 0))
        return qb_fail(ctx, QB_ERR_ARG, "loss weights kd %g and ce %g: at least one must be positive", p->kd, p->ce);
    if (!isfinite(p->lr) || p->lr > 1) return qb_fail(ctx, QB_ERR_ARG, "a learning rate of %g", p->lr);
    return QB_OK;
}

/* Whether teacher and student tokenize alike: the same vocabulary, every token standing for the
 * same bytes (so "▁t" in a GGUF and " t" in a llama2.c vocabulary agree; control tokens, whose
 * texts vary with the file kind, stand for none). */
static qb_status same_tokenizer(qb_ctx *ctx, const qb_model *s, const qb_model *t)
{
    if (t->cfg.vocab_size != s->cfg.vocab_size)
        return qb_fail(ctx, QB_ERR_ARG, "%s: the teacher's vocabulary has %d tokens, the student's (%s) %d", t->path,
                       t->cfg.vocab_size, s->path, s->cfg.vocab_size);
    if (!s->tok || !t->tok) return QB_OK;
    for (int32_t id = 0; id < s->cfg.vocab_size; id++) {
        char a[256], b[256];
        const size_t la = qb_token_to_bytes(s->tok, -1, id, a, sizeof a), lb = qb_token_to_bytes(t->tok, -1, id, b, sizeof b);
        if (la != lb || memcmp(a, b, la < sizeof a ? la : sizeof a))
            return qb_fail(ctx, QB_ERR_ARG, "%s: the teacher's tokenizer differs from the student's (%s) at token %d",
                           t->path, s->path, (int)id);
    }
    return QB_OK;
}

/* Decide what every slot does, and give the trained ones their moments. */
static qb_status plan_slots(qb_ctx *ctx, qb_finetune *ft)
{
    size_t largest = 0;
    int n_fq = 0;
    for (int i = 0; i < ft->n_slots; i++) {
        ft_slot *s = &ft->slots[i];
        const qb_tensor *t = s->t;
        const bool matrix = t->n_dims >= 2;
        if (ft->p.heal) {
            s->trains = !matrix;
            if (matrix) /* the matrices run as the student holds them */
                for (int64_t r = 0; r < qb_tensor_rows(t); r += 64) {
                    int64_t nr = qb_tensor_rows(t) - r < 64 ? qb_tensor_rows(t) - r : 64;
                    qb_tensor_current_rows(t, r, nr, *s->lat + r * t->ne[0]);
                }
        } else {
            s->trains = t != ft->student->tok_embd;
            if (quantized_matrix(t)) {
                if (!(s->fq = malloc(s->n * sizeof(float)))) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
                *s->run = s->fq;
                n_fq++;
                s->ng = ft->p.learn_clip && s->trains ? qb_fq_groups(&t->fmt, qb_tensor_rows(t), t->ne[0]) : 0;
                for (int c = 0; c < 2 && s->ng; c++) {
                    s->clip[c] = malloc((size_t)s->ng * sizeof(float));
                    s->clip_g[c] = calloc((size_t)s->ng, sizeof(float));
                    s->clip_m[c] = calloc((size_t)s->ng, sizeof(float));
                    s->clip_v[c] = calloc((size_t)s->ng, sizeof(float));
                    if (!s->clip[c] || !s->clip_g[c] || !s->clip_m[c] || !s->clip_v[c])
                        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory for the clip factors");
                    for (int64_t k = 0; k < s->ng; k++) s->clip[c][k] = 1.0f;
                }
                size_t bytes = (size_t)qb_tensor_rows(t) * qb_format_row_bytes(&t->fmt, t->ne[0]);
                if (bytes > largest) largest = bytes;
            }
        }
        s->decay = matrix;
        if (s->trains) {
            s->m = calloc(s->n, sizeof(float));
            s->v = calloc(s->n, sizeof(float));
            if (!s->m || !s->v) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory for the optimizer's moments");
        } else if (*s->grad) { /* no gradient for what stays (the tied classifier's is the embeddings') */
            free(*s->grad);
            if (t == ft->student->tok_embd && ft->student->output == t) ft->grad->output = NULL;
            *s->grad = NULL;
        }
    }
    if (!ft->p.heal && n_fq == 0)
        return qb_fail(ctx, QB_ERR_ARG, "%s: the plan quantizes nothing: every matrix is F32 (quantization-aware "
                       "fine-tuning needs matrices in a quantized format)", ft->student->path);
    if (largest && !(ft->packed = malloc(largest))) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    ft->packed_bytes = largest;
    for (int i = 0; i < ft->n_slots; i++) {
        qb_status st = ft->slots[i].fq ? fake_quantize(ctx, ft, &ft->slots[i]) : QB_OK;
        if (st != QB_OK) return st;
    }
    return QB_OK;
}

qb_status qb_finetune_begin(qb_ctx *ctx, qb_model *student, const qb_model *teacher, const int32_t *tokens,
                            int n_tokens, const qb_finetune_params *params, qb_finetune **out)
{
    *out = NULL;
    qb_finetune_params p;
    qb_status st = defaults(ctx, params, &p);
    if (st != QB_OK) return st;
    if (teacher != student && (st = same_tokenizer(ctx, student, teacher)) != QB_OK) return st;
    qb_finetune *ft = calloc(1, sizeof *ft);
    if (!ft) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    ft->student = student;
    ft->teacher = teacher;
    ft->p = p;
    ft->opt = (qb_adamw_cfg){.lr = p.lr, .min_lr_ratio = p.min_lr_ratio, .warmup = p.warmup, .steps = p.steps,
                             .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = p.weight_decay};
    ft->order_epoch = -1;
    const int V = student->cfg.vocab_size, T = p.seq;
    st = qb_calib_windows(ctx, tokens, n_tokens, T, 0, qb_tokenizer_bos(student->tok), &ft->windows, &ft->n_windows);
    if (st == QB_OK && p.shift_windows && n_tokens >= 2 * T) { /* every offset leaves the same count */
        ft->n_windows = (n_tokens - T + 1) / T;
        ft->n_text = n_tokens;
        if (!(ft->text = malloc((size_t)n_tokens * sizeof *ft->text))) st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        else memcpy(ft->text, tokens, (size_t)n_tokens * sizeof *tokens);
    }
    if (st == QB_OK) st = qb_train_params_new(ctx, student, true, &ft->lat);
    if (st == QB_OK) st = qb_train_params_new(ctx, student, false, &ft->grad);
    if (st == QB_OK) {
        ft->run = *ft->lat;
        ft->run.layers = malloc((size_t)student->cfg.n_layers * sizeof *ft->run.layers);
        ft->slots = calloc((size_t)student->n_tensors + 3, sizeof *ft->slots);
        ft->order = malloc((size_t)ft->n_windows * sizeof *ft->order);
        const size_t tv = (size_t)T * V;
        ft->t_logits = malloc(tv * sizeof(float));
        ft->s_logits = malloc(tv * sizeof(float));
        ft->dlogits = malloc(tv * sizeof(float));
        ft->dpart = malloc(tv * sizeof(float));
        ft->targets = malloc((size_t)T * sizeof *ft->targets);
        if (!ft->run.layers || !ft->slots || !ft->order || !ft->t_logits || !ft->s_logits || !ft->dlogits ||
            !ft->dpart || !ft->targets)
            st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory for fine-tuning");
    }
    if (st == QB_OK) {
        memcpy(ft->run.layers, ft->lat->layers, (size_t)student->cfg.n_layers * sizeof *ft->run.layers);
        collect_slots(ft);
        st = plan_slots(ctx, ft);
        if (student->output == student->tok_embd) ft->run.output = ft->run.tok_embd; /* tied: one array */
    }
    if (st == QB_OK) {
        if (p.recompute == 0) { /* auto: the blocks' activations against a quarter of the memory */
            const double mem = qb_physical_memory();
            ft->recompute = mem > 0 && (double)qb_train_acts_bytes(student, T, false) > mem / 4;
        } else ft->recompute = p.recompute > 0;
        st = qb_train_pass_new_ex(ctx, student, T, ft->recompute, &ft->tp);
    }
    if (st == QB_OK && p.kd > 0) st = qb_infer_new(ctx, teacher, T, T, &ft->teach);
    if (st != QB_OK) {
        qb_finetune_end(ft);
        return st;
    }
    *out = ft;
    return QB_OK;
}

/* ---- steps ------------------------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The k-th window of the data order: epochs of a permutation drawn from (seed, epoch), so the
 * order depends on the step count alone and a resumed run draws what the first would have. */
static const int32_t *window_at(qb_finetune *ft, long k)
{
    const long epoch = k / ft->n_windows;
    if (epoch != ft->order_epoch) {
        uint64_t s = ft->p.seed ^ ((uint64_t)epoch * 0xd1b54a32d192ed03ull);
        for (int i = 0; i < ft->n_windows; i++) ft->order[i] = i;
        for (int i = ft->n_windows - 1; i > 0; i--) {
            int j = (int)(splitmix(&s) % (uint64_t)(i + 1));
            int x = ft->order[i];
            ft->order[i] = ft->order[j];
            ft->order[j] = x;
        }
        ft->order_epoch = epoch;
        if (ft->text) { /* this epoch's cut: windows from an offset of its own, BOS first */
            const int T = ft->p.seq, off = epoch ? (int)(splitmix(&s) % (uint64_t)T) : 0;
            for (int i = 0; i < ft->n_windows; i++) {
                int32_t *w = ft->windows + (size_t)i * T;
                memcpy(w, ft->text + off + (size_t)i * T, (size_t)T * sizeof *w);
                if (qb_tokenizer_bos(ft->student->tok) >= 0) w[0] = qb_tokenizer_bos(ft->student->tok);
            }
        }
    }
    return ft->windows + (size_t)ft->order[k % ft->n_windows] * ft->p.seq;
}

static void add_scaled(float *dst, const float *src, size_t n, float a)
{
    for (size_t i = 0; i < n; i++) dst[i] += a * src[i];
}

/* The loss of one sequence and its gradient into g (accumulated), weighted 1/batch. */
static qb_status sequence(qb_ctx *ctx, qb_finetune *ft, const int32_t *seq, int batch, double *kd, double *ce)
{
    const int T = ft->p.seq, V = ft->student->cfg.vocab_size;
    const size_t tv = (size_t)T * V;
    qb_status st = qb_train_forward(ctx, ft->tp, &ft->run, seq, T, ft->s_logits);
    if (st != QB_OK) return st;
    memset(ft->dlogits, 0, tv * sizeof(float));
    *kd = *ce = 0;
    if (ft->p.kd > 0) {
        if ((st = qb_infer_eval(ctx, ft->teach, seq, T, 0, ft->t_logits, T)) != QB_OK) return st;
        if (!qb_bw_distill_kl(ft->t_logits, ft->s_logits, T, V, ft->p.tau, ft->dpart, kd))
            return qb_fail(ctx, QB_ERR_NOMEM, "out of memory in the distillation loss");
        add_scaled(ft->dlogits, ft->dpart, tv, ft->p.kd / (float)batch);
    }
    if (ft->p.ce > 0) {
        for (int t = 0; t < T; t++) ft->targets[t] = t + 1 < T ? seq[t + 1] : -1;
        *ce = qb_bw_cross_entropy(ft->s_logits, ft->targets, T, V, ft->dpart);
        add_scaled(ft->dlogits, ft->dpart, tv, ft->p.ce / (float)batch);
    }
    return qb_train_backward(ctx, ft->tp, &ft->run, ft->dlogits, ft->grad);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The optimizer step after the gradients of a batch: clip, AdamW, fake quantization again. */
static qb_status update(qb_ctx *ctx, qb_finetune *ft, qb_finetune_report *r)
{
    const int cap = 3 * (ft->n_slots > 0 ? ft->n_slots : 1);
    float *g[cap];
    size_t n[cap];
    int k = 0;
    for (int i = 0; i < ft->n_slots; i++) {
        ft_slot *s = &ft->slots[i];
        if (!s->trains) continue;
        g[k] = *s->grad;
        n[k++] = s->n;
        if (!s->clip[0]) continue;
        /* the clip factors' gradients through the rounding, from the accumulated gradient of
           the fake-quantized values (the factors were fixed over the step's sequences) */
        const qb_tensor *t = s->t;
        for (int c = 0; c < 2; c++) memset(s->clip_g[c], 0, (size_t)s->ng * sizeof(float));
        qb_fq_backward(&t->fmt, *s->lat, qb_tensor_rows(t), t->ne[0], NULL, s->clip[0], s->clip[1], *s->grad, NULL,
                       s->clip_g[0], s->clip_g[1]);
        for (int c = 0; c < 2; c++) {
            g[k] = s->clip_g[c];
            n[k++] = (size_t)s->ng;
        }
    }
    const double norm = qb_grad_norm(g, n, k);
    if (!isfinite(norm))
        return qb_fail(ctx, QB_ERR_ARG, "the gradient is not finite at step %d (lower the learning rate)", ft->step + 1);
    if (ft->p.clip > 0) qb_grad_clip(g, n, k, norm, ft->p.clip);
    const float lr = qb_lr_at(&ft->opt, ft->step);
    /* the clip factors on the same schedule from their own peak, without decay, kept in [0.5, 1] */
    const float clip_lr = (float)((double)ft->p.clip_lr * lr / ft->p.lr);
    for (int i = 0; i < ft->n_slots; i++) {
        ft_slot *s = &ft->slots[i];
        if (!s->trains) continue;
        qb_adamw_update(&ft->opt, lr, ft->step + 1, s->decay, *s->lat, *s->grad, s->m, s->v, s->n);
        for (int c = 0; c < 2 && s->clip[c]; c++) {
            qb_adamw_update(&ft->opt, clip_lr, ft->step + 1, false, s->clip[c], s->clip_g[c], s->clip_m[c],
                            s->clip_v[c], (size_t)s->ng);
            for (int64_t j = 0; j < s->ng; j++) s->clip[c][j] = fminf(fmaxf(s->clip[c][j], 0.5f), 1.0f);
        }
    }
    ft->step++;
    for (int i = 0; i < ft->n_slots; i++) {
        qb_status st = ft->slots[i].fq && ft->slots[i].trains ? fake_quantize(ctx, ft, &ft->slots[i]) : QB_OK;
        if (st != QB_OK) return st;
    }
    if (r) {
        r->step = ft->step;
        r->grad_norm = norm;
        r->lr = lr;
    }
    return QB_OK;
}

static void zero_grads(qb_finetune *ft)
{
    for (int i = 0; i < ft->n_slots; i++)
        if (ft->slots[i].trains) memset(*ft->slots[i].grad, 0, ft->slots[i].n * sizeof(float));
}

static qb_status run_step(qb_ctx *ctx, qb_finetune *ft, const int32_t *seqs, int n, bool from_order,
                          qb_finetune_report *r, const volatile int *cancel)
{
    if (ft->step >= ft->p.steps) return qb_fail(ctx, QB_ERR_ARG, "the run's %d steps are done", ft->p.steps);
    const double t0 = now();
    zero_grads(ft);
    double kd = 0, ce = 0;
    for (int i = 0; i < n; i++) {
        if (cancel && *cancel) return qb_fail(ctx, QB_ERR_CANCELLED, "fine-tuning stopped at step %d", ft->step);
        const int32_t *seq = from_order ? window_at(ft, (long)ft->step * ft->p.batch + i) : seqs + (size_t)i * ft->p.seq;
        double k1, c1;
        qb_status st = sequence(ctx, ft, seq, n, &k1, &c1);
        if (st != QB_OK) return st;
        kd += k1 / n;
        ce += c1 / n;
    }
    qb_finetune_report rep = {0};
    qb_status st = update(ctx, ft, &rep);
    if (st != QB_OK) return st;
    rep.kd = kd;
    rep.ce = ce;
    rep.loss = ft->p.kd * kd + ft->p.ce * ce;
    rep.tokens = n * ft->p.seq;
    rep.seconds = now() - t0;
    if (r) *r = rep;
    return QB_OK;
}

/* run_step, on one thread when the model's operations are too small for a thread team
 * (qb_work_is_small); the caller's thread count is restored after. */
static qb_status step_threads(qb_ctx *ctx, qb_finetune *ft, const int32_t *seqs, int n, bool from_order,
                              qb_finetune_report *r, const volatile int *cancel)
{
    const qb_config *c = &ft->student->cfg;
    if (!qb_work_is_small((size_t)ft->p.seq, c->dim, c->hidden_dim))
        return run_step(ctx, ft, seqs, n, from_order, r, cancel);
    qb_ctx one;
    const int saved = qb_ctx_one_thread(ctx, &one);
    qb_status st = run_step(&one, ft, seqs, n, from_order, r, cancel);
    qb_threads_restore(saved);
    if (st != QB_OK) qb_fail(ctx, st, "%s", qb_ctx_errmsg(&one));
    return st;
}

qb_status qb_finetune_step(qb_ctx *ctx, qb_finetune *ft, qb_finetune_report *r, const volatile int *cancel)
{
    return step_threads(ctx, ft, NULL, ft->p.batch, true, r, cancel);
}

qb_status qb_finetune_step_on(qb_ctx *ctx, qb_finetune *ft, const int32_t *seqs, int n, qb_finetune_report *r)
{
    if (n < 1) return qb_fail(ctx, QB_ERR_ARG, "a step on %d sequences", n);
    return step_threads(ctx, ft, seqs, n, false, r, NULL);
}

int qb_finetune_steps_done(const qb_finetune *ft) { return ft->step; }
const qb_finetune_params *qb_finetune_get_params(const qb_finetune *ft) { return &ft->p; }

bool qb_finetune_recomputes(const qb_finetune *ft, size_t *acts_bytes)
{
    if (acts_bytes) *acts_bytes = qb_train_acts_bytes(ft->student, ft->p.seq, ft->recompute);
    return ft->recompute;
}

const float *qb_finetune_latent(const qb_finetune *ft, const char *name, size_t *n)
{
    const char *hash = strchr(name, '#');
    const size_t len = hash ? (size_t)(hash - name) : strlen(name);
    const int c = !hash ? -1 : !strcmp(hash, "#alpha") ? 0 : !strcmp(hash, "#beta") ? 1 : !strcmp(hash, "#run") ? 2 : -2;
    if (c == -2) return NULL;
    for (int i = 0; i < ft->n_slots; i++) {
        const ft_slot *s = &ft->slots[i];
        if (!s->trains || strlen(s->t->name) != len || strncmp(s->t->name, name, len)) continue;
        if (c < 0 || c == 2) {
            *n = s->n;
            return c < 0 ? *s->lat : *s->run;
        }
        if (!s->clip[c]) return NULL;
        *n = (size_t)s->ng;
        return s->clip[c];
    }
    return NULL;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

/* A float parameter as the description holds it: its shortest decimal spelling (0.002, not
 * 0.0020000000949949026), which is also what a message shows. */
static double dec(float x)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)x);
    return strtod(buf, NULL);
}

/* The description a checkpoint carries: what must agree for a resume to continue the run. */
static json_t *describe(const qb_finetune *ft, bool with_step)
{
    const qb_finetune_params *p = &ft->p;
    char seed[24];
    snprintf(seed, sizeof seed, "%016llx", (unsigned long long)p->seed);
    json_t *par = json_pack("{s:i, s:i, s:i, s:f, s:f, s:i, s:f, s:f, s:f, s:f, s:f, s:b, s:s, s:b, s:f}", "steps", p->steps,
                            "batch", p->batch, "seq", p->seq, "lr", dec(p->lr), "min_lr_ratio",
                            dec(p->min_lr_ratio), "warmup", p->warmup, "clip", dec(p->clip), "weight_decay",
                            dec(p->weight_decay), "kd", dec(p->kd), "ce", dec(p->ce), "tau", dec(p->tau),
                            "heal", p->heal, "seed", seed, "learn_clip", p->learn_clip, "clip_lr", dec(p->clip_lr));
    if (p->shift_windows) json_object_set_new(par, "shift_windows", json_true()); /* older checkpoints lack it */
    json_t *tensors = json_array();
    for (int i = 0; i < ft->n_slots; i++) {
        const qb_tensor *t = ft->slots[i].t;
        char fmt[64];
        qb_format_name(&t->fmt, fmt, sizeof fmt);
        json_array_append_new(tensors, json_pack("[s, I, I, s, b]", t->name, (json_int_t)t->ne[0],
                                                 (json_int_t)qb_tensor_rows(t), fmt, ft->slots[i].trains));
    }
    json_t *d = json_pack("{s:s, s:o, s:o, s:i}", "kind", "quantbench finetune checkpoint", "params", par, "tensors",
                          tensors, "windows", ft->n_windows);
    if (with_step) json_object_set_new(d, "step", json_integer(ft->step));
    return d;
}

static char *array_name(const char *tensor, const char *part)
{
    size_t n = strlen(tensor) + strlen(part) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", tensor, *part ? "#" : "", part);
    return s;
}

/* The arrays a checkpoint keeps of a trained slot: its latent values and moments, and its clip
 * factors and their moments when it learns them; returns how many (at most 9). */
typedef struct {
    const char *part; /* "" for the values, "m", "v", "alpha", "alpha.m", … */
    float *data;
    size_t n;
} state_array;

static int slot_state(const ft_slot *s, state_array out[9])
{
    static const char *parts[2][3] = {{"alpha", "alpha.m", "alpha.v"}, {"beta", "beta.m", "beta.v"}};
    int k = 0;
    out[k++] = (state_array){"", *s->lat, s->n};
    out[k++] = (state_array){"m", s->m, s->n};
    out[k++] = (state_array){"v", s->v, s->n};
    for (int c = 0; c < 2 && s->clip[c]; c++) {
        out[k++] = (state_array){parts[c][0], s->clip[c], (size_t)s->ng};
        out[k++] = (state_array){parts[c][1], s->clip_m[c], (size_t)s->ng};
        out[k++] = (state_array){parts[c][2], s->clip_v[c], (size_t)s->ng};
    }
    return k;
}

qb_status qb_finetune_save(qb_ctx *ctx, const qb_finetune *ft, const char *path)
{
    json_t *d = describe(ft, true);
    char *meta = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    int k = 0;
    state_array sa[9];
    for (int i = 0; i < ft->n_slots; i++) k += ft->slots[i].trains ? slot_state(&ft->slots[i], sa) : 0;
    qb_ckpt_array *a = calloc((size_t)(k ? k : 1), sizeof *a);
    qb_status st = meta && a ? QB_OK : qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
    int j = 0;
    for (int i = 0; st == QB_OK && i < ft->n_slots; i++) {
        const ft_slot *s = &ft->slots[i];
        if (!s->trains) continue;
        const int ns = slot_state(s, sa);
        for (int q = 0; q < ns && st == QB_OK; q++, j++) {
            a[j] = (qb_ckpt_array){.name = array_name(s->t->name, sa[q].part), .data = sa[q].data, .count = sa[q].n};
            if (!a[j].name) st = qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    if (st == QB_OK) st = qb_ckpt_write(ctx, path, meta, a, (uint32_t)k);
    for (int i = 0; a && i < k; i++) free(a[i].name);
    free(a);
    free(meta);
    return st;
}

/* Where the checkpoint's description and this run's differ, as "params.lr 0.0001 / 0.0002";
 * empty when they agree. */
static void first_difference(json_t *a, json_t *b, const char *at, char *out, size_t cap)
{
    if (out[0] || json_equal(a, b)) return;
    if (json_is_object(a) && json_is_object(b)) {
        const char *key;
        json_t *va;
        json_object_foreach(a, key, va) {
            char sub[200];
            snprintf(sub, sizeof sub, "%s%s%s", at, *at ? "." : "", key);
            json_t *vb = json_object_get(b, key);
            if (!vb) {
                snprintf(out, cap, "%s is not in this run", sub);
                return;
            }
            first_difference(va, vb, sub, out, cap);
        }
        if (!out[0]) snprintf(out, cap, "%s has other keys", *at ? at : "the description");
        return;
    }
    if (json_is_array(a) && json_is_array(b) && json_array_size(a) == json_array_size(b)) {
        for (size_t i = 0; i < json_array_size(a) && !out[0]; i++) {
            char sub[200];
            snprintf(sub, sizeof sub, "%s[%zu]", at, i);
            first_difference(json_array_get(a, i), json_array_get(b, i), sub, out, cap);
        }
        return;
    }
    char *x = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY), *y = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(out, cap, "%s: %.60s in the checkpoint, %.60s in this run", at, x ? x : "?", y ? y : "?");
    free(x);
    free(y);
}

qb_status qb_finetune_resume(qb_ctx *ctx, qb_finetune *ft, const char *path)
{
    qb_ckpt *c;
    qb_status st = qb_ckpt_read(ctx, path, &c);
    if (st != QB_OK) return st;
    json_error_t jerr;
    json_t *theirs = json_loads(c->meta, 0, &jerr), *ours = describe(ft, false);
    json_t *step = theirs ? json_object_get(theirs, "step") : NULL;
    char diff[300] = "";
    if (!theirs || !json_is_object(theirs) || !json_is_integer(step)) {
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: the checkpoint's description is not a fine-tuning run's", path);
    } else {
        const json_int_t s = json_integer_value(step);
        json_object_del(theirs, "step");
        first_difference(theirs, ours, "", diff, sizeof diff);
        if (diff[0])
            st = qb_fail(ctx, QB_ERR_ARG, "%s: a checkpoint of another run (%s)", path, diff);
        else if (s < 0 || s > ft->p.steps)
            st = qb_fail(ctx, QB_ERR_FORMAT, "%s: step %lld of a %d-step run", path, (long long)s, ft->p.steps);
        /* every array present and of its size before anything changes */
        state_array sa[9];
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; st == QB_OK && i < ft->n_slots; i++) {
                if (!ft->slots[i].trains) continue;
                const int ns = slot_state(&ft->slots[i], sa);
                for (int q = 0; q < ns && st == QB_OK; q++) {
                    char *nm = array_name(ft->slots[i].t->name, sa[q].part);
                    const qb_ckpt_array *a = nm ? qb_ckpt_find(c, nm) : NULL;
                    if (pass == 0 && (!a || a->count != sa[q].n))
                        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: array %s is %s", path, nm ? nm : "?",
                                     a ? "of another size" : "missing");
                    else if (pass == 1) memcpy(sa[q].data, a->data, sa[q].n * sizeof(float));
                    free(nm);
                }
            }
        if (st == QB_OK) {
            ft->step = (int)s;
            for (int i = 0; st == QB_OK && i < ft->n_slots; i++)
                if (ft->slots[i].fq && ft->slots[i].trains) st = fake_quantize(ctx, ft, &ft->slots[i]);
        }
    }
    json_decref(theirs);
    json_decref(ours);
    qb_ckpt_free(c);
    return st;
}

/* ---- the result -------------------------------------------------------------------------- */

qb_status qb_finetune_finish(qb_ctx *ctx, qb_finetune *ft)
{
    /* pack everything first, install after: an error leaves the student as it was */
    typedef struct {
        qb_tensor *t;
        void *buf;
        size_t bytes;
    } staged;
    staged *stg = calloc((size_t)ft->n_slots + 1, sizeof *stg);
    if (!stg) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    int k = 0;
    qb_status st = QB_OK;
    for (int i = 0; st == QB_OK && i < ft->n_slots; i++) {
        ft_slot *s = &ft->slots[i];
        if (!s->trains) continue;
        qb_tensor *t = s->t;
        if (s->fq) {
            const int64_t n = t->ne[0], rows = qb_tensor_rows(t);
            const size_t bytes = (size_t)rows * qb_format_row_bytes(&t->fmt, n);
            void *buf = malloc(bytes);
            if (!buf) st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory packing %s", t->name);
            else if ((st = s->clip[0] ? qb_fq_pack(ctx, &t->fmt, *s->lat, rows, n, NULL, s->clip[0], s->clip[1], buf)
                                      : qb_quantize_matrix(ctx, &t->fmt, *s->lat, rows, n, buf, NULL)) != QB_OK)
                free(buf);
            else stg[k++] = (staged){t, buf, bytes};
        } else {
            float *buf = malloc(s->n * sizeof(float));
            if (!buf) st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory for %s", t->name);
            else {
                memcpy(buf, *s->lat, s->n * sizeof(float));
                stg[k++] = (staged){t, buf, 0};
            }
        }
    }
    for (int i = 0; i < k; i++) {
        if (st == QB_OK && stg[i].bytes) {
            qb_format f = stg[i].t->fmt;
            qb_tensor_install(stg[i].t, stg[i].buf, stg[i].bytes, &f);
        } else if (st == QB_OK) {
            qb_format f = qb_format_ggml(QB_TYPE_F32);
            qb_tensor_install(stg[i].t, stg[i].buf, qb_tensor_nelements(stg[i].t) * sizeof(float), &f);
        } else {
            free(stg[i].buf);
        }
    }
    free(stg);
    return st;
}
