/* demo_model.c — synthetic tensors for the workbench's built-in demo (demo_model.h). */
#include "demo_model.h"
#include "format.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEMO_ROWS 512
#define DEMO_COLS 1024

typedef struct {
    uint64_t s;
} rng;

static double uniform01(rng *r)
{
    r->s ^= r->s << 13; /* xorshift64 */
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return ((r->s >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double gauss(rng *r)
{
    return sqrt(-2.0 * log(uniform01(r))) * cos(2.0 * M_PI * uniform01(r));
}

static double student_t3(rng *r)
{
    double z = gauss(r), chi = 0;
    for (int k = 0; k < 3; k++) {
        double g = gauss(r);
        chi += g * g;
    }
    return z / sqrt(chi / 3.0);
}

typedef enum { GAUSS_OUTLIERS, OUTLIER_CHANNELS, UNIFORM, HEAVY } kind;

static void fill(kind k, rng *r, float *v, int rows, int cols)
{
    bool *hot = NULL;
    if (k == OUTLIER_CHANNELS) {
        hot = calloc((size_t)cols, 1);
        for (int c = 0; c < cols && hot; c++) hot[c] = uniform01(r) < 0.01;
    }
    for (int i = 0; i < rows; i++)
        for (int c = 0; c < cols; c++) {
            double x;
            switch (k) {
            case GAUSS_OUTLIERS: x = uniform01(r) < 0.05 ? 0.8 * gauss(r) : 0.3 * gauss(r); break;
            case OUTLIER_CHANNELS: x = 0.02 * gauss(r) * (hot && hot[c] ? 25.0 : 1.0); break;
            case UNIFORM: x = 2.0 * uniform01(r) - 1.0; break;
            default: x = 0.05 * student_t3(r); break;
            }
            v[(size_t)i * cols + c] = (float)x;
        }
    free(hot);
}

static qb_status add(qb_ctx *ctx, qb_model *m, const char *name, kind k, rng *r)
{
    qb_tensor *t = qb_model_add_tensor(ctx, m, name);
    if (!t) return QB_ERR_NOMEM;
    size_t n = (size_t)DEMO_ROWS * DEMO_COLS;
    float *v = malloc(n * sizeof *v);
    uint16_t *h = malloc(n * sizeof *h);
    if (!v || !h) {
        free(v);
        free(h);
        return qb_fail(ctx, QB_ERR_NOMEM, "demo: out of memory");
    }
    fill(k, r, v, DEMO_ROWS, DEMO_COLS);
    for (size_t i = 0; i < n; i++) h[i] = qb_f32_to_f16(v[i]);
    free(v);
    t->n_dims = 2;
    t->ne[0] = DEMO_COLS;
    t->ne[1] = DEMO_ROWS;
    t->type = t->src_type = QB_TYPE_F16;
    t->fmt = qb_format_ggml(QB_TYPE_F16);
    t->src_owned = h;
    t->data = t->src_data = h;
    t->nbytes = t->src_nbytes = n * sizeof *h;
    return QB_OK;
}

qb_status qb_demo_model(qb_ctx *ctx, qb_model **out)
{
    *out = NULL;
    qb_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup("built-in demo"))) {
        free(m);
        return qb_fail(ctx, QB_ERR_NOMEM, "demo: out of memory");
    }
    snprintf(m->name, sizeof m->name, "built-in demo");
    snprintf(m->arch, sizeof m->arch, "demo");
    rng r = {0x9e3779b97f4a7c15ull};
    static const struct {
        const char *name;
        kind k;
    } spec[] = {{"gauss_outliers.weight", GAUSS_OUTLIERS},
                {"outlier_channels.weight", OUTLIER_CHANNELS},
                {"uniform.weight", UNIFORM},
                {"heavy_tailed.weight", HEAVY}};
    for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++) {
        qb_status st = add(ctx, m, spec[i].name, spec[i].k, &r);
        if (st != QB_OK) {
            qb_model_close(m);
            return st;
        }
    }
    *out = m;
    return QB_OK;
}
