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
    return (calib_choice){.topk_index = CALIB_CHOICE_DENSE, .mode_index = -1, .topk = 1.0f, .quant = SLA2_QUANT_NONE,
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

int64_t calib_kept_share_blocks(const calib_table *t, double share)
{
    return (int64_t)floor(share * (double)t->num_k_blocks * t->num_layers + 1e-9);
}

int64_t calib_min_total_blocks(const calib_table *t)
{
    return t->num_topks > 0 ? t->kept[0] * t->num_layers : 0;
}

int64_t calib_choice_blocks(const calib_table *t, const calib_choice *c)
{
    return c->topk_index == CALIB_CHOICE_REFINED ? c->blocks
           : c->topk_index < 0                    ? t->num_k_blocks
                                                   : t->kept[c->topk_index];
}

/* One cell of the allocation: the least summed badness of layers l.. with
 * at most b blocks, the blocks that uses, and layer l's topk index there
 * (-1: nothing fits). */
typedef struct allocation {
    double cost;
    int64_t blocks;
    int topk_index;
} allocation;

int calib_select_kept_share(const calib_table *t, int64_t max_total_blocks, calib_choice *choices)
{
    if (max_total_blocks < 0 || t->num_layers < 1 || t->num_topks < 1)
        return 0;
    size_t width = (size_t)max_total_blocks + 1, layers = (size_t)t->num_layers;
    /* row l: layers l.. ; row num_layers: no layer left, cost 0 whatever the budget */
    allocation *cell = malloc((layers + 1) * width * sizeof *cell);
    if (!cell)
        return 0;
    for (size_t b = 0; b < width; b++)
        cell[layers * width + b] = (allocation){0, 0, -1};
    for (int l = t->num_layers - 1; l >= 0; l--)
        for (size_t b = 0; b < width; b++) {
            allocation best = {INFINITY, 0, -1};
            for (int ti = 0; ti < t->num_topks; ti++) {
                int64_t k = t->kept[ti];
                double w = candidate_worst(t, l, ti, 0, 0);
                if ((size_t)k > b || !isfinite(w))
                    continue;
                const allocation *rest = &cell[(size_t)(l + 1) * width + b - (size_t)k];
                if (!isfinite(rest->cost))
                    continue;
                double cost = w + rest->cost;
                int64_t blocks = k + rest->blocks;
                if (cost < best.cost || (cost == best.cost && blocks < best.blocks))
                    best = (allocation){cost, blocks, ti};
            }
            cell[(size_t)l * width + b] = best;
        }
    int fits = cell[max_total_blocks].topk_index >= 0;
    int64_t b = max_total_blocks;
    for (int l = 0; fits && l < t->num_layers; l++) {
        int ti = cell[(size_t)l * width + (size_t)b].topk_index;
        size_t i = calib_table_index(t, l, ti, 0);
        choices[l] = (calib_choice){.topk_index = ti, .mode_index = 0, .topk = t->topks[ti], .quant = t->modes[0],
                                    .worst = t->worst[i], .mean = t->sum[i] / t->count[i],
                                    .kept_share = (double)t->kept[ti] / (double)t->num_k_blocks};
        b -= t->kept[ti];
    }
    free(cell);
    return fits;
}
