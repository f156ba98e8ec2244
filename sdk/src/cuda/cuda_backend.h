/* The CUDA backend's private state and its error-checking macros. Only
 * files under sdk/src/cuda/ include this. */
#pragma once

extern "C" {
#include "internal.h"
}

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "kernels_int8/sla2_kernels.h"

/* Stages timed when timing is on (sla2_cuda_profile.h). */
enum { SLA2_CUDA_STAGE_QUANTISE, SLA2_CUDA_STAGE_ROUTER, SLA2_CUDA_STAGE_LINEAR, SLA2_CUDA_STAGE_SPARSE,
       SLA2_CUDA_STAGE_MIX, SLA2_CUDA_NUM_STAGES };

/* One remembered cuBLASLt choice of the DiT's GEMMs (dit_ops.cu): the
 * GEMM's description (shape, types, epilogue, alignments) and the
 * algorithm the heuristic gave for it, or that it gave none. */
struct sla2_gemm_algo {
    unsigned char key[128];
    bool used, found;
    cublasLtMatmulAlgo_t algo;
};
enum { SLA2_GEMM_ALGOS = 32 };

struct sla2_cuda_state {
    int device;
    int cc_major, cc_minor;
    size_t smem_optin_bytes;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *lt_workspace;
    size_t lt_workspace_bytes;
    void *workspace; /* grown on demand, owned by the context */
    /* the stream-ordered scratch of the DiT's operators (sla2_cuda_scratch):
     * a pool of the context's own that keeps what it has reserved (up to the
     * largest scratch in use at once) until the context goes, instead of
     * the default pool, which hands it back at every synchronisation (the
     * attention's, once a layer) and maps it again on the next allocation */
    cudaMemPool_t pool;
    size_t workspace_bytes;
    int timing;
    int force_fp8_mma; /* SLA2_CUDA_FP8_MMA=1: e4m3 mma.sync even on sm_90 (for tests and benchmarks) */
    /* SLA2_CUDA_STAGES=1: the single-stage sparse kernel and the two-stage
     * linear_out of small-smem GPUs (for tests) */
    int force_one_stage;
    /* sm_90 with the sm_90a code in the binary, unless SLA2_CUDA_WGMMA=0 or
     * SLA2_CUDA_FP8_MMA=1: the sparse kernel on warpgroup MMA */
    int use_wgmma;
    /* sm_89 and later, unless SLA2_CUDA_FP8_GEMM=0: FP8_GEMM linears run as
     * cuBLASLt FP8 GEMMs (else as bf16 GEMMs on the same quantised values) */
    int fp8_gemm;
    /* the heuristic's answers, reused: a query takes host time on the order
     * of a small GEMM's device time, and a forward asks the same few */
    sla2_gemm_algo gemm_algos[SLA2_GEMM_ALGOS];
    int gemm_algos_next; /* the slot a new answer takes (round robin) */
    cudaEvent_t events[SLA2_CUDA_NUM_STAGES + 1];
    float stage_ms[SLA2_CUDA_NUM_STAGES];
};

/* bytes of stream-ordered scratch from the context's pool (free it with
 * cudaFreeAsync on the same stream); cudaMallocAsync where the device has
 * no memory pools */
inline cudaError_t sla2_cuda_scratch(sla2_cuda_state *st, size_t bytes, void **out)
{
    return st->pool ? cudaMallocFromPoolAsync(out, bytes, st->pool, st->stream)
                    : cudaMallocAsync(out, bytes, st->stream);
}

/* Turns a failed CUDA runtime call into an sla2_status with the call's text. */
sla2_status sla2_cuda_error(sla2_context *ctx, cudaError_t err, const char *call, const char *file, int line);
sla2_status sla2_cublas_error(sla2_context *ctx, cublasStatus_t st, const char *call, const char *file, int line);

#define SLA2_CUDA_CHECK(ctx, call) \
    ({ cudaError_t e_ = (call); e_ == cudaSuccess ? SLA2_OK : sla2_cuda_error((ctx), e_, #call, __FILE__, __LINE__); })
#define SLA2_CUBLAS_CHECK(ctx, call)                                                                       \
    ({ cublasStatus_t s_ = (call);                                                                         \
       s_ == CUBLAS_STATUS_SUCCESS ? SLA2_OK : sla2_cublas_error((ctx), s_, #call, __FILE__, __LINE__); })
/* Returns from the enclosing function on failure. */
#define SLA2_CUDA_TRY(ctx, call)                       \
    do {                                               \
        sla2_status st_ = SLA2_CUDA_CHECK(ctx, call);  \
        if (st_ != SLA2_OK)                            \
            return st_;                                \
    } while (0)

sla2_status sla2_cuda_phik_t_v(sla2_context *ctx, sla2_cuda_state *st, const sla2k_problem &p);
