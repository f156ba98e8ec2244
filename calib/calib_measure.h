/* Calibration runs: generates with dense attention and, at the sampled
 * steps, evaluates every candidate (topk, mode) of every layer on that
 * layer's own Q, K, V against exact attention. */
#ifndef SLA2_CALIB_MEASURE_H
#define SLA2_CALIB_MEASURE_H

#include "calib.h"
#include "calib_select.h"

/* Where the time went, and what the layers carried. */
typedef struct calib_run_report {
    double steps_ms, evals_ms; /* sampler steps (dense), candidate evaluations */
    long steps, evals;
    int learned_alpha;         /* some layer mixes with a learned alpha */
} calib_run_report;

/* Runs every (input, seed) and fills table (initialised by the caller).
 * Returns 1, or 0 after printing what failed. */
int calib_measure(const calib_options *opt, sla2_context *ctx, sla2_model *model, const sla2_model_info *info,
                  calib_table *table, calib_run_report *report);

#endif
