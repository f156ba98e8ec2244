/* The --refine search (see calib_refine.h). */
#include "calib_refine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Every allocation measured so far and its objective. After a move a -> b,
 * the moves out of b and into a lead back to allocations the last round
 * measured (2 (L - 2) + 1 of the L (L - 1) moves), and longer chains of
 * moves can lead back further, so each is looked up before it is measured:
 * a measurement is a batch of whole video generations. Open addressing on
 * a hash of the blocks; it grows at half full. */
typedef struct memo {
    int num_layers;
    size_t capacity, count; /* capacity: a power of two */
    int64_t *keys;          /* [capacity][num_layers] */
    double *values;
    unsigned char *used;
} memo;

static uint64_t hash_blocks(const int64_t *blocks, int n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the values */
    for (int i = 0; i < n; i++) {
        h ^= (uint64_t)blocks[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static int memo_init(memo *m, int num_layers, size_t capacity)
{
    memset(m, 0, sizeof *m);
    m->num_layers = num_layers, m->capacity = capacity;
    m->keys = malloc(capacity * (size_t)num_layers * sizeof *m->keys);
    m->values = malloc(capacity * sizeof *m->values);
    m->used = calloc(capacity, 1);
    return m->keys && m->values && m->used;
}

static void memo_free(memo *m)
{
    free(m->keys), free(m->values), free(m->used);
    memset(m, 0, sizeof *m);
}

/* The slot of blocks: where it is, or the empty slot where it would go. */
static size_t memo_slot(const memo *m, const int64_t *blocks)
{
    size_t mask = m->capacity - 1, i = (size_t)hash_blocks(blocks, m->num_layers) & mask;
    size_t row = (size_t)m->num_layers * sizeof *blocks;
    while (m->used[i] && memcmp(&m->keys[i * (size_t)m->num_layers], blocks, row) != 0)
        i = (i + 1) & mask;
    return i;
}

static int memo_find(const memo *m, const int64_t *blocks, double *value)
{
    size_t i = memo_slot(m, blocks);
    if (!m->used[i])
        return 0;
    *value = m->values[i];
    return 1;
}

static int memo_put(memo *m, const int64_t *blocks, double value)
{
    if (2 * (m->count + 1) > m->capacity) {
        memo bigger;
        if (!memo_init(&bigger, m->num_layers, 2 * m->capacity)) {
            memo_free(&bigger);
            return 0;
        }
        for (size_t i = 0; i < m->capacity; i++)
            if (m->used[i])
                memo_put(&bigger, &m->keys[i * (size_t)m->num_layers], m->values[i]);
        memo_free(m);
        *m = bigger;
    }
    size_t i = memo_slot(m, blocks);
    if (!m->used[i])
        m->count++;
    m->used[i] = 1;
    m->values[i] = value;
    memcpy(&m->keys[i * (size_t)m->num_layers], blocks, (size_t)m->num_layers * sizeof *blocks);
    return 1;
}

/* The objective of blocks, measured once. NaN reads as +inf so that it is
 * never taken and comparisons stay total. */
static int evaluate(const calib_refine_problem *p, memo *m, const int64_t *blocks, double *value,
                    calib_refine_result *r)
{
    if (memo_find(m, blocks, value))
        return 1;
    double v = 0;
    if (!p->objective(p->user, blocks, p->num_layers, &v))
        return 0;
    r->evaluations++;
    *value = isnan(v) ? INFINITY : v;
    return memo_put(m, blocks, *value);
}

static int valid_allocation(const calib_refine_problem *p, const int64_t *blocks)
{
    for (int l = 0; l < p->num_layers; l++)
        if (blocks[l] < 1 || blocks[l] > p->num_k_blocks)
            return 0;
    return 1;
}

/* One round: the move that lowers the objective most from blocks (value f),
 * or *from = -1 when none does. trial is scratch [num_layers]. */
static int best_move(const calib_refine_problem *p, memo *m, const int64_t *blocks, double f, int64_t *trial,
                     int *from, int *to, double *after, calib_refine_result *r)
{
    *from = -1, *after = f;
    int n = p->num_layers;
    for (int a = 0; a < n; a++) {
        if (blocks[a] < 2)
            continue;
        for (int b = 0; b < n; b++) {
            if (b == a || blocks[b] >= p->num_k_blocks)
                continue;
            memcpy(trial, blocks, (size_t)n * sizeof *trial);
            trial[a]--, trial[b]++;
            double v = 0;
            if (!evaluate(p, m, trial, &v, r))
                return 0;
            if (v < *after)
                *after = v, *from = a, *to = b;
        }
    }
    return 1;
}

int calib_refine_search(const calib_refine_problem *p, const int64_t *const *starts, int num_starts, int64_t *blocks,
                        calib_refine_result *result)
{
    memset(result, 0, sizeof *result);
    if (p->num_layers < 1 || p->num_k_blocks < 1 || p->max_rounds < 1 || !p->objective || num_starts < 1 ||
        num_starts > CALIB_REFINE_MAX_STARTS)
        return 0;
    for (int s = 0; s < num_starts; s++)
        if (!valid_allocation(p, starts[s]))
            return 0;
    memo m;
    int64_t *trial = malloc((size_t)p->num_layers * sizeof *trial);
    int ok = memo_init(&m, p->num_layers, 64) && trial;
    result->num_starts = num_starts;
    for (int s = 0; ok && s < num_starts; s++) {
        ok = evaluate(p, &m, starts[s], &result->start_objective[s], result);
        if (ok && result->start_objective[s] < result->start_objective[result->start])
            result->start = s;
    }
    if (ok) {
        memcpy(blocks, starts[result->start], (size_t)p->num_layers * sizeof *blocks);
        result->objective = result->start_objective[result->start];
        if (p->on_start)
            p->on_start(p->user, result);
    }
    for (int round = 1; ok && round <= p->max_rounds; round++) {
        int from = -1, to = -1;
        double after = 0;
        ok = best_move(p, &m, blocks, result->objective, trial, &from, &to, &after, result);
        if (!ok)
            break;
        if (from < 0) {
            result->converged = 1;
            break;
        }
        blocks[from]--, blocks[to]++;
        double before = result->objective;
        result->objective = after;
        result->rounds = round;
        if (p->on_round)
            p->on_round(p->user, round, before, after, from, to, blocks, p->num_layers);
    }
    free(trial);
    memo_free(&m);
    return ok;
}

void calib_refine_uniform(int num_layers, int64_t total, int64_t *blocks)
{
    int64_t each = total / num_layers, remainder = total % num_layers;
    for (int l = 0; l < num_layers; l++)
        blocks[l] = each + (l < remainder);
}
