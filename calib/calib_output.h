/* What a calibration hands back: the stdout table and the runtime YAML. */
#ifndef SLA2_CALIB_OUTPUT_H
#define SLA2_CALIB_OUTPUT_H

#include "calib.h"
#include "calib_refine_video.h"
#include "calib_select.h"

#include <stdio.h>

/* The per-layer table, the whole model's kept share, and the worst error
 * of every measured topk per layer; with refined (NULL: no --refine) the
 * objectives of the uniform, DP and refined allocations. */
void calib_print_table(FILE *to, const calib_options *opt, const calib_table *t, const calib_choice *choices,
                       const sla2_model_info *info, const calib_refine_report *refined);

/* Writes the runtime YAML to opt->out: to a temporary file beside it, which
 * sla2_pipeline_create must load (so a file sla2-gen cannot read is never
 * put in place), then renamed over opt->out. Returns 1, or 0 after printing
 * why (opt->out untouched). */
int calib_write_yaml(const calib_options *opt, const calib_table *t, const calib_choice *choices,
                     const sla2_model_info *info, sla2_context *ctx, sla2_model *model,
                     const calib_refine_report *refined);

#endif
