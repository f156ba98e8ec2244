/* --refine: local search over the per-layer kept key blocks at a constant
 * total, against an objective the caller measures (calib_refine_video.c:
 * the final video's error against the dense video). Plain data and a
 * callback, no SDK calls, so the search is unit-tested on objectives whose
 * optimum is known. */
#ifndef SLA2_CALIB_REFINE_H
#define SLA2_CALIB_REFINE_H

#include <stdint.h>

/* The objective of an allocation (blocks[layer], each in 1..num_k_blocks):
 * *value, lower is better; NaN counts as worse than anything. Returns 1, or
 * 0 on a failure that stops the search (the callback says why). */
typedef int (*calib_refine_objective)(void *user, const int64_t *blocks, int num_layers, double *value);

/* Called once the starts are measured (result: their objectives and the
 * start taken), before the first round. */
struct calib_refine_result;
typedef void (*calib_refine_on_start)(void *user, const struct calib_refine_result *result);

/* Called after each round that moved: the round (1-based), the objective
 * before and after, the move (from_layer gave one block to to_layer) and
 * the allocation after it. */
typedef void (*calib_refine_on_round)(void *user, int round, double before, double after, int from_layer,
                                      int to_layer, const int64_t *blocks, int num_layers);

typedef struct calib_refine_problem {
    int num_layers;
    int64_t num_k_blocks; /* the most a layer keeps; the least is 1 */
    int max_rounds;       /* >= 1 */
    calib_refine_objective objective;
    calib_refine_on_start on_start; /* may be NULL */
    calib_refine_on_round on_round; /* may be NULL */
    void *user;
} calib_refine_problem;

#define CALIB_REFINE_MAX_STARTS 4

typedef struct calib_refine_result {
    int num_starts;
    double start_objective[CALIB_REFINE_MAX_STARTS];
    int start;         /* the start the search went from: the best (ties: the first given) */
    double objective;  /* of the final allocation (NaN read as +inf) */
    int rounds;        /* rounds that moved */
    int converged;     /* 1: stopped because no move lowers the objective; 0: after max_rounds */
    long evaluations;  /* objective calls: an allocation seen before is not measured again */
} calib_refine_result;

/* Evaluates each start (starts[i]: [num_layers], each layer in
 * 1..num_k_blocks; starts may differ in total), then from the best, rounds
 * of: try every move "layer a gives one key block to layer b" (a != b, a
 * keeps >= 1, b <= num_k_blocks) and take the one that lowers the objective
 * most (ties: the first in (a, b) order); stop when no move lowers it or
 * after max_rounds. So the objective never rises and the start's total
 * kept blocks is kept. blocks [num_layers] receives the final allocation.
 * Returns 1, or 0 when the objective failed, memory ran out, or the problem
 * or a start is invalid (blocks and result then undefined). */
int calib_refine_search(const calib_refine_problem *p, const int64_t *const *starts, int num_starts, int64_t *blocks,
                        calib_refine_result *result);

/* The uniform allocation of total blocks over num_layers: floor(total /
 * num_layers) each, the remainder one each to the first layers. */
void calib_refine_uniform(int num_layers, int64_t total, int64_t *blocks);

#endif
