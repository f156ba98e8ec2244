/* The DiT's cross-attention, softmax(q k^T / sqrt(d)) v per head, as one
 * fused kernel (cross_attention.cu): the scores never leave the chip.
 * Internal to the CUDA backend; the C-callable entry point below exists for
 * tests/gpu/dit, which include this header from C (so it names no CUDA
 * type). */
#ifndef SLA2_CUDA_CROSS_ATTENTION_H
#define SLA2_CUDA_CROSS_ATTENTION_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "internal.h"

/* cuda_cross_attention on the context's stream, for tests: ctx must be a
 * CUDA context; q, k, v and out are device pointers; q and out bf16 when
 * bf16 is not 0, else float32. */
sla2_status sla2_cuda_cross_attention_for_test(sla2_context *ctx, const void *q, int64_t Lq, const float *k,
                                               const float *v, int64_t Lk, int64_t heads, int64_t head_dim,
                                               void *out, int bf16);
#ifdef __cplusplus
}

struct sla2_cuda_state;

/* out = softmax(q k^T / sqrt(head_dim)) v for every head, on st's stream.
 * q and out are [Lq][heads][head_dim] device arrays, bf16 when bf16 is
 * set (else float32), k and v [Lk][heads][head_dim] float32, all 16-byte
 * aligned. q, k, v and the probabilities are
 * rounded to bf16 for the tensor cores (float32 scores, softmax and
 * accumulation): 3e-3 to 4.5e-3 relative L2 against float32 at score
 * spreads of 1 to 2 (tests/gpu/dit/check_cross_attention.c).
 * Returns SLA2_OK (nothing to do when Lq or heads is 0),
 * SLA2_ERR_INVALID_VALUE (Lk < 1), SLA2_ERR_UNSUPPORTED (head_dim other than
 * 64 or 128, misaligned pointers, too many heads or rows for one launch,
 * too little shared memory: the caller falls back to the GEMM path), or
 * SLA2_ERR_BACKEND / SLA2_ERR_OUT_OF_MEMORY from CUDA. */
sla2_status cuda_cross_attention(sla2_context *ctx, sla2_cuda_state *st, const void *q, int64_t Lq, const float *k,
                                 const float *v, int64_t Lk, int64_t heads, int64_t head_dim, void *out, bool bf16);
#endif

#endif
