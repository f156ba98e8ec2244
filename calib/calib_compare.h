/* --compare: does calibration pay off? Generates, for each prompt and seed,
 * the dense video, the calibrated one (the YAML just written) and videos
 * with one uniform topk for every layer at (at least) the same mean kept
 * share, and prints each one's error against the dense video and its prompt
 * adherence (sla2_video_analyse). */
#ifndef SLA2_CALIB_COMPARE_H
#define SLA2_CALIB_COMPARE_H

#include "calib.h"
#include "calib_select.h"

int calib_compare(const calib_options *opt, sla2_context *ctx, sla2_model *model, const sla2_model_info *info,
                  const calib_table *t, const calib_choice *choices);

#endif
