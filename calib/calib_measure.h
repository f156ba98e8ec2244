/* Calibration runs. Dense generations give the noisy video x_t at every
 * sampled step; then each candidate (topk, mode) of each layer is measured
 * at the DiT's output: the conditional prediction at that step with only
 * that layer at the candidate and every other layer exact-dense, against
 * the all-dense prediction. So a layer's error includes what the layers
 * after it make of it. */
#ifndef SLA2_CALIB_MEASURE_H
#define SLA2_CALIB_MEASURE_H

#include "calib.h"
#include "calib_select.h"

/* Where the time went. */
typedef struct calib_run_report {
    double steps_ms, evals_ms; /* dense sampler steps and reference predictions; candidate predictions */
    long steps, references, evals;
} calib_run_report;

/* Runs every (input, seed), measures every layer and fills table
 * (initialised by the caller). Returns 1, or 0 after printing what failed. */
int calib_measure(const calib_options *opt, sla2_context *ctx, sla2_model *model, const sla2_model_info *info,
                  calib_table *table, calib_run_report *report);

#endif
