/* test_dit_gpu's check of the fused cross-attention kernel
 * (sdk/src/cuda/cross_attention.cu) against op_dense_attention on the CPU
 * (check_cross_attention.c). */
#ifndef SLA2_TEST_CHECK_CROSS_ATTENTION_H
#define SLA2_TEST_CHECK_CROSS_ATTENTION_H

#include "sla2/sla2.h"

/* Prints one row per case; returns the number of failed cases. quick: not
 * the Wan2.1-1.3B shape (its CPU reference takes seconds; for the sanitizer). */
int check_cross_attention(sla2_context *gpu_ctx, int quick);

#endif
