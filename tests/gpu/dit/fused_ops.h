/* test_dit_gpu's check of the CUDA table's fused block steps against the
 * CPU table (fused_ops.c). */
#ifndef SLA2_TEST_FUSED_OPS_H
#define SLA2_TEST_FUSED_OPS_H

#include "sla2/sla2.h"

/* Prints one row per case; returns the number of failed cases. */
int check_fused_ops(sla2_context *cpu_ctx, sla2_context *gpu_ctx);

#endif
