/* The linear branch's dense parts: S_total = phi(K)^T V per (batch, head)
 * through cuBLASLt (fp16 inputs, fp32 accumulation and output), its split
 * into two fp16 halves for the sparse kernel's epilogue, z_total minus the
 * kept blocks' z per query block, and SLA v1's output projection
 * O = O_s + W O_l + b. */
#include "cuda_backend.h"

#include "kernels_int8/device_common.cuh"

namespace {

/* s_hi + s_lo = S * f to about 22 bits, with f a power of two that keeps
 * S * f below 2^14 (so that fp16 neither overflows nor loses small values). */
__global__ void __launch_bounds__(256) split_s_kernel(const sla2k_problem p)
{
    __shared__ float red[8];
    const int bh = blockIdx.x, D = p.head_dim;
    const size_t base = (size_t)bh * D * D;
    float m = 0.0f;
    for (int i = threadIdx.x; i < D * D; i += 256)
        m = fmaxf(m, fabsf(p.s_total[base + i]));
    m = sla2k::warp_max(m);
    if ((threadIdx.x & 31) == 0)
        red[threadIdx.x >> 5] = m;
    __syncthreads();
    m = 0.0f;
    for (int w = 0; w < 8; ++w)
        m = fmaxf(m, red[w]);
    const float f = sla2k::pow2_scale_for(m, 14);
    for (int i = threadIdx.x; i < D * D; i += 256) {
        float x = p.s_total[base + i] * f;
        __half hi = __float2half_rn(x);
        p.s_hi[base + i] = hi;
        p.s_lo[base + i] = __float2half_rn(x - __half2float(hi));
    }
    if (threadIdx.x == 0)
        p.s_scale[bh] = 1.0f / f;
}

/* z_rem[bh][i][d] = z_total[d] - sum over query block i's kept key blocks j
 * of z_j[d]: the denominator's complement for the sparse kernel's kept-sum
 * path. One thread per channel. */
__global__ void z_rem_kernel(const sla2k_problem p)
{
    const int i = blockIdx.x, bh = blockIdx.y, D = p.head_dim, d = threadIdx.x;
    const int *kept = p.kept_blocks + ((size_t)bh * p.num_q_blocks + i) * p.kept;
    const float *zb = p.phi_k_block_sum + (size_t)bh * p.num_k_blocks * D + d;
    float z4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    int it = 0;
    for (; it + 4 <= p.kept; it += 4)
#pragma unroll
        for (int u = 0; u < 4; ++u)
            z4[u] += zb[(size_t)kept[it + u] * D];
    for (; it < p.kept; ++it)
        z4[0] += zb[(size_t)kept[it] * D];
    p.z_rem[((size_t)bh * p.num_q_blocks + i) * D + d] =
        p.phi_k_sum[(size_t)bh * D + d] - ((z4[0] + z4[1]) + (z4[2] + z4[3]));
}

/* SLA v1: out[r][e] = O_s[r][e] + sum_d W[e][d] O_l[r][d] + b[e]. */
constexpr int kMixRows = 16;
__global__ void __launch_bounds__(128) v1_mix_kernel(const sla2k_problem p)
{
    __shared__ float ol[kMixRows][128];
    const int bh = blockIdx.y, D = p.head_dim;
    const int b = bh / p.heads, h = bh % p.heads;
    const int row0 = blockIdx.x * kMixRows;
    const int rows = min(kMixRows, p.seq_len - row0);
    for (int i = threadIdx.x; i < rows * D; i += blockDim.x)
        ol[i / D][i % D] = p.o_linear[((size_t)bh * p.seq_len + row0 + i / D) * D + i % D];
    __syncthreads();
    for (int i = threadIdx.x; i < rows * D; i += blockDim.x) {
        const int r = i / D, e = i % D;
        float y = p.proj_b ? p.proj_b[e] : 0.0f;
        for (int d = 0; d < D; ++d)
            y += p.proj_w[(size_t)e * D + d] * ol[r][d];
        const int64_t row = row0 + r;
        const float out = p.o_sparse[((size_t)bh * p.seq_len + row) * D + e] + y;
        sla2k::store_elem(p.out,
                          (int64_t)b * p.out_stride_b + (int64_t)h * p.out_stride_h + row * p.out_stride_l +
                              (int64_t)e * p.out_stride_d,
                          p.out_dtype, out);
    }
}

} // namespace

cudaError_t sla2k_launch_split_s(const sla2k_problem &p, cudaStream_t stream)
{
    split_s_kernel<<<p.batch * p.heads, 256, 0, stream>>>(p);
    return cudaGetLastError();
}

cudaError_t sla2k_launch_z_rem(const sla2k_problem &p, cudaStream_t stream)
{
    z_rem_kernel<<<dim3(p.num_q_blocks, p.batch * p.heads), p.head_dim, 0, stream>>>(p);
    return cudaGetLastError();
}

cudaError_t sla2k_launch_v1_mix(const sla2k_problem &p, cudaStream_t stream)
{
    dim3 grid((p.seq_len + kMixRows - 1) / kMixRows, p.batch * p.heads);
    v1_mix_kernel<<<grid, 128, 0, stream>>>(p);
    return cudaGetLastError();
}

sla2_status sla2_cuda_phik_t_v(sla2_context *ctx, sla2_cuda_state *st, const sla2k_problem &p)
{
    const int D = p.head_dim;
    const int64_t L = p.padded_len;
    const int batch = p.batch * p.heads;
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    sla2_status status = SLA2_OK;
    const cublasOperation_t trans_b = CUBLAS_OP_T;
    const int64_t stride_ab = L * D, stride_c = (int64_t)D * D;
    const float one = 1.0f, zero = 0.0f;
    cublasLtMatmulHeuristicResult_t heuristic = {};
    int found = 0;

#define LT(call)                                                  \
    do {                                                          \
        status = SLA2_CUBLAS_CHECK(ctx, call);                    \
        if (status != SLA2_OK)                                    \
            goto done;                                            \
    } while (0)
    /* C (D x D, column-major) = A (D x L: phi(K) rows) . B^T (B: D x L: V rows). */
    LT(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    LT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof trans_b));
    LT(cublasLtMatrixLayoutCreate(&la, CUDA_R_16F, D, L, D));
    LT(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16F, D, L, D));
    LT(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, D, D, D));
    for (cublasLtMatrixLayout_t l : {la, lb, lc}) {
        const int64_t stride = l == lc ? stride_c : stride_ab;
        LT(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch));
        LT(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
    }
    LT(cublasLtMatmulPreferenceCreate(&pref));
    LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &st->lt_workspace_bytes,
                                            sizeof st->lt_workspace_bytes));
    LT(cublasLtMatmulAlgoGetHeuristic(st->lt, op, la, lb, lc, lc, pref, 1, &heuristic, &found));
    if (found == 0) {
        status = sla2_fail(ctx, SLA2_ERR_BACKEND, "cuBLASLt: no algorithm for phi(K)^T V (D %d, L %lld)", D,
                           (long long)L);
        goto done;
    }
    LT(cublasLtMatmul(st->lt, op, &one, p.phi_k, la, p.v16, lb, &zero, p.s_total, lc, p.s_total, lc,
                      &heuristic.algo, st->lt_workspace, st->lt_workspace_bytes, st->stream));
#undef LT
done:
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    if (lc)
        cublasLtMatrixLayoutDestroy(lc);
    if (lb)
        cublasLtMatrixLayoutDestroy(lb);
    if (la)
        cublasLtMatrixLayoutDestroy(la);
    if (op)
        cublasLtMatmulDescDestroy(op);
    return status;
}
