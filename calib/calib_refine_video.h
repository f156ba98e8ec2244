/* --refine N on the model: the --kept-share allocation improved against the
 * real objective, the final video's error against the dense video on the
 * calibration inputs (inputs x seeds), by the search of calib_refine.h. */
#ifndef SLA2_CALIB_REFINE_VIDEO_H
#define SLA2_CALIB_REFINE_VIDEO_H

#include "calib.h"
#include "calib_select.h"

/* What refinement did, for the table and the YAML's header. Objectives:
 * mean over the calibration videos of ||video - dense video|| / ||dense
 * video|| (+inf where a video had NaN). */
typedef struct calib_refine_report {
    double uniform, dp, refined;
    const char *start;   /* "uniform" or "DP": the better start, the search's origin */
    int64_t total_blocks; /* kept by the refined allocation over all layers (the start's total) */
    int max_rounds, rounds, converged;
    long evaluations;    /* allocations measured (each: every calibration video) */
    int videos;
    double seconds;
} calib_refine_report;

/* choices: the --kept-share allocation (calib_select_kept_share), replaced by
 * the refined one: a layer whose block count some candidate keeps gets that
 * candidate (the sparsest such, with its measured errors), any other
 * CALIB_CHOICE_REFINED. Progress (each round: objective before and after, the
 * move) on stderr. Returns 1, or 0 after printing what failed (choices
 * then unchanged). */
int calib_refine(const calib_options *opt, sla2_context *ctx, sla2_model *model, const sla2_model_info *info,
                 const calib_table *t, calib_choice *choices, calib_refine_report *report);

#endif
