/* The error table of a calibration and the choice it leads to. Plain data
 * and pure functions (no SDK calls), so the rule is unit-tested directly. */
#ifndef SLA2_CALIB_SELECT_H
#define SLA2_CALIB_SELECT_H

#include <sla2/sla2.h>

#include <stdint.h>

/* Errors as "badness" (lower is better) of every candidate (topk t, mode m)
 * of every layer, over the samples seen so far: worst, sum and count for
 * the whole layer output, worst per head. */
typedef struct calib_table {
    int num_layers, num_heads, num_topks, num_modes;
    const float *topks;           /* [num_topks], ascending; borrowed */
    const sla2_quant_mode *modes; /* [num_modes], cheapest first; borrowed */
    int64_t num_k_blocks;         /* of the model's sequence at block_k 64 */
    int64_t *kept;                /* [num_topks]: key blocks kept per query block */
    double *worst, *sum;          /* [layer][topk][mode] */
    int *count;
    double *head_worst;           /* [layer][topk][mode][head] */
} calib_table;

int calib_table_init(calib_table *t, int num_layers, int num_heads, const float *topks, int num_topks,
                     const sla2_quant_mode *modes, int num_modes, int64_t tokens, int block_k);
void calib_table_free(calib_table *t);
size_t calib_table_index(const calib_table *t, int layer, int topk, int mode);
/* Adds one sample's badness (layer level, and per head: head_badness [H]). */
void calib_table_add(calib_table *t, int layer, int topk, int mode, double badness, const double *head_badness);

/* What a layer runs with. topk_index is the candidate's, or
 * CALIB_CHOICE_DENSE: no candidate met the budget and the layer stays dense
 * (topk 1, quant none); or CALIB_CHOICE_REFINED: --refine gave the layer a
 * whole number of key blocks (`blocks`) that no candidate keeps, so it was
 * never measured alone (worst and mean NaN). */
#define CALIB_CHOICE_DENSE (-1)
#define CALIB_CHOICE_REFINED (-2)

typedef struct calib_choice {
    int topk_index, mode_index;
    int64_t blocks;       /* with CALIB_CHOICE_REFINED: key blocks kept per query block */
    float topk;
    sla2_quant_mode quant;
    double worst, mean;   /* badness of the chosen candidate (0 when dense) */
    double kept_share;    /* share of the layer's attention FLOPs (key blocks) kept */
} calib_choice;

/* The rule: the smallest topk that some mode meets in the worst sample
 * (worst <= budget), then the cheapest mode that meets it there.
 * per_head: every head's own worst must meet the budget, not just the whole
 * layer's. Returns the number of layers that stay dense. */
int calib_select(const calib_table *t, double budget, int per_head, calib_choice *choices);
/* The same rule for one head of one layer (for --per-head's report). */
calib_choice calib_select_head(const calib_table *t, int layer, int head, double budget);
/* The candidate's worst badness over modes at topk index ti: the curve the
 * plot draws (what topk selection sees). */
double calib_best_worst(const calib_table *t, int layer, int ti, int per_head);
/* The kept-share rule (--kept-share): per layer a topk, in the table's first
 * (cheapest) mode, that together minimise the sum over layers of each
 * layer's worst badness, subject to the total kept key blocks (t->kept, the
 * operator's count) being at most max_total_blocks. Exact, by dynamic
 * programming over layers x total blocks. Ties: the fewest total blocks,
 * then the sparser topk in the earlier layer. A candidate never measured or
 * with NaN is never chosen. Returns 1, or 0 when no allocation fits
 * (choices untouched). */
int calib_select_kept_share(const calib_table *t, int64_t max_total_blocks, calib_choice *choices);
/* The total kept blocks that --kept-share S allows: floor(S x key blocks x
 * layers), less a rounding hair, so 6/64 of 64 blocks is 6 per layer. */
int64_t calib_kept_share_blocks(const calib_table *t, double share);
/* The least total the sparsest candidates keep (every layer at topks[0]). */
int64_t calib_min_total_blocks(const calib_table *t);
/* Key blocks a choice keeps per query block (all of them when dense). */
int64_t calib_choice_blocks(const calib_table *t, const calib_choice *c);

/* Mean kept share over layers (layers have equal attention cost). */
double calib_model_kept_share(const calib_choice *choices, int num_layers);

#endif
