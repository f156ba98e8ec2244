/* The per-layer choice under an error budget (see calib_select.h). */
#include "calib_select.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int64_t kept_blocks(int64_t tokens, int block_k, float topk)
{
    /* the operator's rule (sla2.h, sla2_attention_kept_blocks), restated here
     * so this file stays free of SDK calls for its unit test */
    int64_t nk = (tokens + block_k - 1) / block_k;
    int64_t k = (int64_t)floor((double)topk * (double)nk + 0.5);
    return k < 1 ? 1 : k > nk ? nk : k;
}

int calib_table_init(calib_table *t, int num_layers, int num_heads, const float *topks, int num_topks,
                     const sla2_quant_mode *modes, int num_modes, int64_t tokens, int block_k)
{
    memset(t, 0, sizeof *t);
    t->num_layers = num_layers, t->num_heads = num_heads, t->num_topks = num_topks, t->num_modes = num_modes;
    t->topks = topks, t->modes = modes;
    t->num_k_blocks = (tokens + block_k - 1) / block_k;
    size_t n = (size_t)num_layers * (size_t)num_topks * (size_t)num_modes;
    t->kept = calloc((size_t)num_topks, sizeof *t->kept);
    t->worst = calloc(n, sizeof *t->worst);
    t->sum = calloc(n, sizeof *t->sum);
    t->count = calloc(n, sizeof *t->count);
    t->head_worst = calloc(n * (size_t)num_heads, sizeof *t->head_worst);
    if (!t->kept || !t->worst || !t->sum || !t->count || !t->head_worst) {
        calib_table_free(t);
        return 0;
    }
    for (int i = 0; i < num_topks; i++)
        t->kept[i] = kept_blocks(tokens, block_k, topks[i]);
    return 1;
}

void calib_table_free(calib_table *t)
{
    free(t->kept), free(t->worst), free(t->sum), free(t->count), free(t->head_worst);
    memset(t, 0, sizeof *t);
}

size_t calib_table_index(const calib_table *t, int layer, int topk, int mode)
{
    return ((size_t)layer * (size_t)t->num_topks + (size_t)topk) * (size_t)t->num_modes + (size_t)mode;
}

/* NaN counts as the worst possible error: a candidate that produced NaN must
 * never be chosen. */
static double worse(double a, double b)
{
    if (isnan(a) || isnan(b))
        return INFINITY;
    return a > b ? a : b;
}

void calib_table_add(calib_table *t, int layer, int topk, int mode, double badness, const double *head_badness)
{
    size_t i = calib_table_index(t, layer, topk, mode);
    t->worst[i] = t->count[i] ? worse(t->worst[i], badness) : worse(badness, badness);
    t->sum[i] += badness;
    t->count[i]++;
    for (int h = 0; h < t->num_heads && head_badness; h++) {
        double *w = &t->head_worst[i * (size_t)t->num_heads + (size_t)h];
        *w = t->count[i] > 1 ? worse(*w, head_badness[h]) : worse(head_badness[h], head_badness[h]);
    }
}

/* The badness selection looks at: the layer's worst, or with per_head the
 * worst of its worst head. A candidate never measured counts as failing. */
static double candidate_worst(const calib_table *t, int layer, int ti, int mi, int per_head)
{
    size_t i = calib_table_index(t, layer, ti, mi);
    if (t->count[i] == 0)
        return INFINITY;
    if (!per_head)
        return t->worst[i];
    double w = 0;
    for (int h = 0; h < t->num_heads; h++)
        w = worse(w, t->head_worst[i * (size_t)t->num_heads + (size_t)h]);
    return w;
}

double calib_best_worst(const calib_table *t, int layer, int ti, int per_head)
{
    double best = INFINITY;
    for (int mi = 0; mi < t->num_modes; mi++) {
        double w = candidate_worst(t, layer, ti, mi, per_head);
        if (w < best)
            best = w;
    }
    return best;
}

static calib_choice dense_choice(void)
{
    return (calib_choice){.topk_index = -1, .mode_index = -1, .topk = 1.0f, .quant = SLA2_QUANT_NONE,
                          .worst = 0, .mean = 0, .kept_share = 1.0};
}

static calib_choice choose(const calib_table *t, int layer, double budget, int per_head, int head)
{
    for (int ti = 0; ti < t->num_topks; ti++) {
        for (int mi = 0; mi < t->num_modes; mi++) {
            size_t i = calib_table_index(t, layer, ti, mi);
            double w = head >= 0 ? (t->count[i] ? t->head_worst[i * (size_t)t->num_heads + (size_t)head] : INFINITY)
                                 : candidate_worst(t, layer, ti, mi, per_head);
            if (!(w <= budget))
                continue;
            return (calib_choice){.topk_index = ti, .mode_index = mi, .topk = t->topks[ti], .quant = t->modes[mi],
                                  .worst = w, .mean = t->sum[i] / t->count[i],
                                  .kept_share = (double)t->kept[ti] / (double)t->num_k_blocks};
        }
    }
    return dense_choice();
}

int calib_select(const calib_table *t, double budget, int per_head, calib_choice *choices)
{
    int dense = 0;
    for (int l = 0; l < t->num_layers; l++) {
        choices[l] = choose(t, l, budget, per_head, -1);
        dense += choices[l].topk_index < 0;
    }
    return dense;
}

calib_choice calib_select_head(const calib_table *t, int layer, int head, double budget)
{
    return choose(t, layer, budget, 1, head);
}

double calib_model_kept_share(const calib_choice *choices, int num_layers)
{
    double s = 0;
    for (int l = 0; l < num_layers; l++)
        s += choices[l].kept_share;
    return num_layers > 0 ? s / num_layers : 0;
}
