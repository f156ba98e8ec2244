/* The CUDA backend's view of the SLA2 kernels: one plain struct describing a
 * forward call and its device workspace, and the launchers. Included by
 * sdk/src/cuda/ and by the kernels; no CUDA types in the interface except
 * cudaStream_t. */
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

enum { SLA2K_F32 = 0, SLA2K_F16 = 1, SLA2K_BF16 = 2 };          /* = sla2_dtype */
enum { SLA2K_PHI_SOFTMAX = 0, SLA2K_PHI_ELU = 1, SLA2K_PHI_RELU = 2 };
enum { SLA2K_ALPHA_ONE = 0, SLA2K_ALPHA_PER_HEAD = 1, SLA2K_ALPHA_PER_ROW = 2 };

/* How the sparse kernel computes Q.K^T and P.V. */
enum sla2k_qk { SLA2K_QK_INT8 = 0, SLA2K_QK_F16 = 1, SLA2K_QK_F16X3 = 2 };
/* FP8_F16: the same e4m3-rounded P and V (exact in fp16), multiplied by
 * FP16 mma.sync: the products and sums equal the e4m3 mma's, and on sm_90
 * mma.sync e4m3 is slower than FP16 (Hopper's fast FP8 path is wgmma). */
enum sla2k_pv { SLA2K_PV_F16 = 0, SLA2K_PV_FP8 = 1, SLA2K_PV_FP8_F16 = 2 };

#define SLA2K_BLOCK_K 64
#define SLA2K_INT8_MAX 127.0f /* = SLA2_INT8_MAX */
#define SLA2K_FP8_MAX 448.0f  /* = SLA2_FP8_MAX */

struct sla2k_tensor {
    const void *data;
    int64_t stride_b, stride_h, stride_l, stride_d; /* elements */
};

struct sla2k_problem {
    int batch, heads, seq_len, head_dim;
    int block_q, num_q_blocks, num_k_blocks, kept;
    int padded_len; /* num_k_blocks * 64: the workspace's rows per head */
    int stages;     /* sparse kernel's shared-memory stages: 2 where they fit, else 1 */
    int wgmma;      /* warpgroup MMA (sm_90a): the sparse kernel (not F32 inputs) and linear_out (D 128) */
    float softmax_scale;
    int in_dtype, out_dtype;
    int qk, pv;        /* sla2k_qk, sla2k_pv */
    int feature_map;   /* SLA2K_PHI_* */
    int alpha_kind;    /* SLA2K_ALPHA_* */
    int sla_v1;        /* O = O_s + proj_l(O_l), O_l over all keys */
    int use_linear;    /* the linear branch contributes (else O_l is not needed) */
    int subtract_kept; /* O_l over the complement of the kept blocks (SLA2) */
    sla2k_tensor q, k, v;
    void *out;
    int64_t out_stride_b, out_stride_h, out_stride_l, out_stride_d;
    int out_paired; /* stride_d 1, the others even, out aligned: channels d, d + 1 in one access */
    int out_quad;   /* stride_d 1, the others multiples of 4, out aligned: channels d..d + 3 in one access */

    const float *router_q, *router_k; /* NULL = identity */
    int router_q_per_head, router_k_per_head;
    const float *alpha, *alpha_w, *alpha_b;
    const float *proj_w, *proj_b;

    /* Workspace (device). BH = batch * heads. */
    double *k_sum;          /* [BH, D] sum of K over tokens */
    /* The router rounds like the CPU reference: pooled means, projections and
     * scores are floats computed from double sums. */
    float *k_block_mean;    /* [BH, Nk, D] mean of smoothed K rows of each key block */
    float *q_block_mean;    /* [BH, Nq, D] */
    float *q_proj;          /* [BH, Nq, D] router projections */
    float *k_proj;          /* [BH, Nk, D] */
    float *v_absmax;        /* [BH, D] */
    float *phi_k_sum;       /* [BH, D] z_total */
    float *phi_k_block_sum; /* [BH, Nk, D] z of each key block (SLA2) */
    __half *phi_k;          /* [BH, Lpad, D] fp16 phi(K), padded rows 0 */
    __half *v16;            /* [BH, Lpad, D] fp16 V, padded rows 0 */
    int8_t *k8;             /* [BH, Lpad, D] INT8 smoothed K, padded rows 0 */
    float *k_scale;         /* [BH, Nk] */
    int8_t *q8;             /* [BH, Nq * block_q, D] INT8 Q (one scale per block), padded rows 0 */
    float *q_scale;         /* [BH, Nq] */
    float *row_alpha;       /* [BH, L] alpha per row (SLA2K_ALPHA_PER_ROW) */
    uint8_t *v8t;           /* [BH, Nk, D, 64] e4m3 V / sv, keys permuted (fp8_common.cuh) */
    __half *v8h;            /* [BH, Lpad, D] the same e4m3 values as fp16 (PV_FP8_F16) */
    __half *k16_hi, *k16_lo;/* [BH, Lpad, D] raw K split in two fp16 (mode NONE) */
    float *s_total;         /* [BH, D, D] stored [e][d]: sum_l phi(k)_d v_e */
    int *kept_blocks;       /* [BH, Nq, kept] ascending */
    double *alpha_sum;      /* [1] */
    float *o_sparse, *o_linear; /* [BH, L, D] fp32, SLA v1 only */
};

/* Stage launchers; each returns the launch's cudaError_t. */
/* key_value needs key_stats's k_sum and v_absmax: launch it right after, so
 * that its first reads (the blocks key_stats read last) hit L2. */
cudaError_t sla2k_launch_query_pool(const sla2k_problem &p, cudaStream_t stream);
cudaError_t sla2k_launch_key_stats(const sla2k_problem &p, cudaStream_t stream);
cudaError_t sla2k_launch_key_value(const sla2k_problem &p, cudaStream_t stream);
/* scores: [BH, Nq, Nk] floats of workspace; max_smem: the device's opt-in limit. */
cudaError_t sla2k_launch_router(const sla2k_problem &p, cudaStream_t stream, float *scores, size_t max_smem);
/* The linear branch's output O_l per query block (after the router and
 * S_total): into `out` for SLA2 (the sparse kernel mixes it in), into
 * o_linear for SLA v1. */
size_t sla2k_linear_out_smem_bytes(const sla2k_problem &p, size_t max_smem);
cudaError_t sla2k_launch_linear_out(const sla2k_problem &p, cudaStream_t stream, size_t max_smem);
cudaError_t sla2k_launch_v1_mix(const sla2k_problem &p, cudaStream_t stream);

/* Shared memory the sparse kernel needs with `stages` buffers, in bytes. */
size_t sla2k_sparse_smem_bytes(const sla2k_problem &p, int stages);
cudaError_t sla2k_launch_sparse(const sla2k_problem &p, cudaStream_t stream);

/* Whether this binary holds the sm_90a code of the wgmma kernels for the
 * current device (a build for "90" instead of "90a" has only traps). */
cudaError_t sla2k_wgmma_available(int *available);

/* Per-configuration instantiations (one small .cu each). */
#define SLA2K_DECLARE_SPARSE(D, QK, PV) \
    cudaError_t sla2k_sparse_##D##_##QK##_##PV(const sla2k_problem &p, cudaStream_t stream, size_t smem)
SLA2K_DECLARE_SPARSE(64, 0, 0);
SLA2K_DECLARE_SPARSE(64, 0, 1);
SLA2K_DECLARE_SPARSE(64, 0, 2);
SLA2K_DECLARE_SPARSE(128, 0, 2);
SLA2K_DECLARE_SPARSE(64, 1, 0);
SLA2K_DECLARE_SPARSE(64, 2, 0);
SLA2K_DECLARE_SPARSE(128, 0, 0);
SLA2K_DECLARE_SPARSE(128, 0, 1);
SLA2K_DECLARE_SPARSE(128, 1, 0);
SLA2K_DECLARE_SPARSE(128, 2, 0);
#define SLA2K_DECLARE_SPARSE_WGMMA(D, QK, PV) \
    cudaError_t sla2k_sparse_wgmma_##D##_##QK##_##PV(const sla2k_problem &p, cudaStream_t stream, size_t smem)
SLA2K_DECLARE_SPARSE_WGMMA(64, 0, 0);
SLA2K_DECLARE_SPARSE_WGMMA(64, 0, 1);
SLA2K_DECLARE_SPARSE_WGMMA(64, 1, 0);
SLA2K_DECLARE_SPARSE_WGMMA(128, 0, 0);
SLA2K_DECLARE_SPARSE_WGMMA(128, 0, 1);
SLA2K_DECLARE_SPARSE_WGMMA(128, 1, 0);
