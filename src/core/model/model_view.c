/* model_view.c — shallow variants of a loaded model (declared in model.h): the tensor table is
 * copied with borrowed data, the layer bindings re-pointed into the copy, and only the tensors
 * the view changes get buffers of their own. */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIEW_MAGIC 0x71627677u /* "qbvw" */

/* The view: a qb_model first, so a qb_model * to it is a pointer to the whole. Views own no
 * mappings; n_maps == -1 marks a qb_model as a view before the magic is read. */
typedef struct {
    qb_model m;
    unsigned magic;
    const qb_model *base;
} view_t;

static view_t *as_view(const qb_model *m)
{
    if (!m || m->n_maps != -1) return NULL;
    view_t *v = (view_t *)(void *)m;
    return v->magic == VIEW_MAGIC ? v : NULL;
}

bool qb_model_is_view(const qb_model *m) { return as_view(m) != NULL; }

const qb_model *qb_model_view_base(const qb_model *view)
{
    view_t *v = as_view(view);
    return v ? v->base : NULL;
}

int qb_model_tensor_index(const qb_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return i;
    return -1;
}

/* The copy's tensor for a base tensor pointer (NULL stays NULL). */
static qb_tensor *repoint(const qb_model *base, qb_tensor *copy, const qb_tensor *t)
{
    return t ? copy + (t - base->tensors) : NULL;
}

qb_status qb_model_view_new(qb_ctx *ctx, const qb_model *base, qb_model **out)
{
    *out = NULL;
    if (!base || qb_model_is_view(base))
        return qb_fail(ctx, QB_ERR_ARG, "a model view needs a loaded model as its base (not a view)");
    view_t *v = calloc(1, sizeof *v);
    qb_tensor *ts = calloc((size_t)(base->n_tensors ? base->n_tensors : 1), sizeof *ts);
    qb_layer_weights *ls = calloc((size_t)(base->cfg.n_layers ? base->cfg.n_layers : 1), sizeof *ls);
    char *path = malloc(strlen(base->path) + 8);
    if (!v || !ts || !ls || !path) {
        free(v);
        free(ts);
        free(ls);
        free(path);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory making a view of %s", base->path);
    }
    v->m = *base; /* config, names, tokenizer and GGUF handle borrowed */
    sprintf(path, "%s (view)", base->path);
    v->m.path = path;
    v->m.maps = NULL;
    v->m.n_maps = -1;
    memcpy(ts, base->tensors, (size_t)base->n_tensors * sizeof *ts);
    for (int i = 0; i < base->n_tensors; i++) ts[i].owned = NULL; /* data still points at the base's buffer */
    v->m.tensors = ts;
    v->m.tok_embd = repoint(base, ts, base->tok_embd);
    v->m.output_norm = repoint(base, ts, base->output_norm);
    v->m.output = repoint(base, ts, base->output);
    v->m.rope_freqs = repoint(base, ts, base->rope_freqs);
    for (int l = 0; l < base->cfg.n_layers; l++) {
        const qb_layer_weights *b = &base->layers[l];
        qb_layer_weights *L = &ls[l];
#define REPOINT(f) L->f = repoint(base, ts, b->f);
        QB_LAYER_TENSORS(REPOINT)
#undef REPOINT
    }
    v->m.expert_slots = NULL;
    if (base->expert_slots) {
        size_t ne = (size_t)base->cfg.n_experts, n = (size_t)base->cfg.n_layers * 3 * ne;
        if (!(v->m.expert_slots = malloc(n * sizeof *v->m.expert_slots))) {
            free(v);
            free(ts);
            free(ls);
            free(path);
            return qb_fail(ctx, QB_ERR_NOMEM, "out of memory making a view of %s", base->path);
        }
        for (size_t i = 0; i < n; i++) v->m.expert_slots[i] = repoint(base, ts, base->expert_slots[i]);
        for (int l = 0; l < base->cfg.n_layers; l++) {
            qb_tensor **e = v->m.expert_slots + (size_t)l * 3 * ne;
            ls[l].exp_gate = e;
            ls[l].exp_up = e + ne;
            ls[l].exp_down = e + 2 * ne;
        }
    }
    v->m.layers = ls;
    v->magic = VIEW_MAGIC;
    v->base = base;
    *out = &v->m;
    return QB_OK;
}

void qb_model_view_free(qb_model *view)
{
    view_t *v = as_view(view);
    if (!v) return;
    for (int i = 0; i < v->m.n_tensors; i++) free(v->m.tensors[i].owned); /* only the view's own */
    free(v->m.tensors);
    free(v->m.layers);
    free(v->m.expert_slots);
    free(v->m.path);
    v->magic = 0;
    free(v);
}

static qb_status check_index(qb_ctx *ctx, const qb_model *view, int i, view_t **out)
{
    view_t *v = as_view(view);
    if (!v) return qb_fail(ctx, QB_ERR_ARG, "not a model view");
    if (i < 0 || i >= v->m.n_tensors)
        return qb_fail(ctx, QB_ERR_ARG, "tensor index %d out of range 0..%d", i, v->m.n_tensors - 1);
    *out = v;
    return QB_OK;
}

static void put(qb_tensor *t, void *buf, const void *data, size_t nbytes, const qb_format *fmt)
{
    free(t->owned);
    t->owned = buf;
    t->data = data;
    t->nbytes = nbytes;
    t->fmt = *fmt;
    t->type = qb_format_storage_type(fmt);
}

qb_status qb_model_view_reset(qb_ctx *ctx, qb_model *view, int i)
{
    view_t *v = NULL;
    qb_status st = check_index(ctx, view, i, &v);
    if (st != QB_OK) return st;
    const qb_tensor *b = &v->base->tensors[i];
    put(&v->m.tensors[i], NULL, b->data, b->nbytes, &b->fmt);
    return QB_OK;
}

bool qb_model_view_changed(const qb_model *view, int i)
{
    view_t *v = as_view(view);
    return v && i >= 0 && i < v->m.n_tensors && v->m.tensors[i].data != v->base->tensors[i].data;
}

qb_status qb_model_view_put(qb_ctx *ctx, qb_model *view, int i, const qb_format *fmt, void *buf, const void *data,
                            size_t nbytes)
{
    view_t *v = NULL;
    qb_status st = check_index(ctx, view, i, &v);
    if (st != QB_OK) {
        free(buf);
        return st;
    }
    put(&v->m.tensors[i], buf, data, nbytes, fmt);
    return QB_OK;
}
