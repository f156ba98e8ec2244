/* Stage timings of the CUDA backend, for sla2-bench (not public API: link
 * the static library to use it). With timing on, each forward call records
 * CUDA events between its stages; the times are those of the last call. */
#ifndef SLA2_CUDA_PROFILE_H
#define SLA2_CUDA_PROFILE_H

#include "sla2/sla2.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLA2_CUDA_PROFILE_STAGES 5 /* quantise, router, linear, sparse, mix */

/* SLA2_ERR_INVALID_VALUE when ctx is not a CUDA context. */
sla2_status sla2_cuda_set_timing(sla2_context *ctx, int on);
sla2_status sla2_cuda_stage_times(const sla2_context *ctx, float ms[SLA2_CUDA_PROFILE_STAGES]);

#ifdef __cplusplus
}
#endif
#endif
