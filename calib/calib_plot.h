/* --plot: worst-case error against topk per layer, the chosen points marked,
 * drawn into an RGB buffer (axes, lines, a built-in 5x7 font) and written
 * with sla2_image_write_png. */
#ifndef SLA2_CALIB_PLOT_H
#define SLA2_CALIB_PLOT_H

#include "calib.h"
#include "calib_select.h"

/* Returns 1, or 0 after printing why. */
int calib_plot(const char *path, const calib_options *opt, const calib_table *t, const calib_choice *choices,
               const char *model_name);

#endif
