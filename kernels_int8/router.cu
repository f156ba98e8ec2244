/* The router (ARCHITECTURE.md section 2): pooled block means projected by
 * Wq / Wk, scores s_ij = (qbar_i Wq).(kbar_j Wk) / sqrt(D), and the kept
 * top-k key blocks of each query block (ties to the lower index), written as
 * an ascending list. Every step rounds as the CPU reference does (float
 * values from double sums), so that both select the same blocks: a
 * selection flips on the last bit of a score. */
#include "kernels_int8/device_common.cuh"

namespace sla2k {
namespace {

/* One block per pooled vector: y_e = sum_d x_d W[d*D + e] (identity when W is NULL). */
template <int D>
__global__ void __launch_bounds__(D) project_kernel(const sla2k_problem p)
{
    __shared__ float x[D];
    const int which = blockIdx.z, index = blockIdx.x, bh = blockIdx.y, h = bh % p.heads;
    const int count = which == 0 ? p.num_q_blocks : p.num_k_blocks;
    if (index >= count)
        return;
    const int d = threadIdx.x;
    if (which == 0)
        x[d] = p.q_block_mean[((size_t)bh * p.num_q_blocks + index) * D + d];
    else
        x[d] = p.k_block_mean[((size_t)bh * p.num_k_blocks + index) * D + d];
    __syncthreads();
    const float *w = which == 0 ? p.router_q : p.router_k;
    const int per_head = which == 0 ? p.router_q_per_head : p.router_k_per_head;
    float y = x[d];
    if (w) {
        const float *wh = w + (per_head ? (size_t)h * D * D : 0);
        double acc = 0.0;
        for (int k = 0; k < D; ++k)
            acc += (double)x[k] * wh[k * D + d];
        y = (float)acc;
    }
    float *out = which == 0 ? p.q_proj + ((size_t)bh * p.num_q_blocks + index) * D
                             : p.k_proj + ((size_t)bh * p.num_k_blocks + index) * D;
    out[d] = y;
}

/* scores[bh][i][j] = q_proj[bh][i] . k_proj[bh][j], 64x64 tiles, 256 threads. */
template <int D>
__global__ void __launch_bounds__(256) scores_kernel(const sla2k_problem p, float *scores)
{
    constexpr int T = 64, KC = 16;
    __shared__ double a[T][KC + 1], b[T][KC + 1];
    const int bh = blockIdx.z;
    const int i0 = blockIdx.y * T, j0 = blockIdx.x * T;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const float *qp = p.q_proj + (size_t)bh * p.num_q_blocks * D;
    const float *kp = p.k_proj + (size_t)bh * p.num_k_blocks * D;
    const double inv_sqrt_d = 1.0 / sqrt((double)D);
    double acc[4][4] = {};
    for (int k0 = 0; k0 < D; k0 += KC) {
        for (int idx = threadIdx.x; idx < T * KC; idx += 256) {
            int r = idx / KC, c = idx % KC;
            a[r][c] = i0 + r < p.num_q_blocks ? qp[(size_t)(i0 + r) * D + k0 + c] : 0.0;
            b[r][c] = j0 + r < p.num_k_blocks ? kp[(size_t)(j0 + r) * D + k0 + c] : 0.0;
        }
        __syncthreads();
#pragma unroll
        for (int c = 0; c < KC; ++c)
#pragma unroll
            for (int u = 0; u < 4; ++u)
#pragma unroll
                for (int v = 0; v < 4; ++v)
                    acc[u][v] += a[ty + 16 * u][c] * b[tx + 16 * v][c];
        __syncthreads();
    }
#pragma unroll
    for (int u = 0; u < 4; ++u)
#pragma unroll
        for (int v = 0; v < 4; ++v) {
            int i = i0 + ty + 16 * u, j = j0 + tx + 16 * v;
            if (i < p.num_q_blocks && j < p.num_k_blocks)
                scores[((size_t)bh * p.num_q_blocks + i) * p.num_k_blocks + j] = (float)(acc[u][v] * inv_sqrt_d);
        }
}

/* Unsigned keys in the order of the floats; NaN counts as the lowest (as in
 * the CPU reference). */
__device__ __forceinline__ unsigned order_key(float x)
{
    if (isnan(x))
        return 0u;
    unsigned u = __float_as_uint(x);
    return (u >> 31) ? ~u : (u | 0x80000000u);
}

constexpr int kTopkWarps = 8;

/* One warp per query block: the k-th largest key by a radix select over the
 * 32 bits (ballots and popcounts, no block barriers), then the kept list in
 * ascending index order: every key above it and the first of those equal to
 * it (ties to the lower index). */
__global__ void __launch_bounds__(kTopkWarps * 32) topk_kernel(const sla2k_problem p, const float *scores)
{
    extern __shared__ unsigned keys_all[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int i = blockIdx.x * kTopkWarps + warp, bh = blockIdx.y;
    if (i >= p.num_q_blocks)
        return;
    const int nk = p.num_k_blocks, k = p.kept;
    unsigned *keys = keys_all + (size_t)warp * nk;
    const float *row = scores + ((size_t)bh * p.num_q_blocks + i) * nk;
    for (int j = lane; j < nk; j += 32)
        keys[j] = order_key(row[j]);
    __syncwarp();

    unsigned thr = 0;
    for (int bit = 31; bit >= 0; --bit) {
        const unsigned cand = thr | (1u << bit);
        int c = 0;
        for (int j = lane; j < nk; j += 32)
            c += keys[j] >= cand;
        if (__reduce_add_sync(0xffffffffu, c) >= k)
            thr = cand;
    }
    int c = 0;
    for (int j = lane; j < nk; j += 32)
        c += keys[j] > thr;
    const int need_equal = k - (int)__reduce_add_sync(0xffffffffu, c);

    int *out = p.kept_blocks + ((size_t)bh * p.num_q_blocks + i) * k;
    int written = 0, equal_taken = 0;
    const unsigned lower = (1u << lane) - 1u;
    for (int j0 = 0; j0 < nk; j0 += 32) {
        const int j = j0 + lane;
        const unsigned key = j < nk ? keys[j] : 0u;
        const bool equal = j < nk && key == thr;
        const unsigned equal_mask = __ballot_sync(0xffffffffu, equal);
        const bool keep = (j < nk && key > thr) || (equal && equal_taken + __popc(equal_mask & lower) < need_equal);
        const unsigned keep_mask = __ballot_sync(0xffffffffu, keep);
        if (keep)
            out[written + __popc(keep_mask & lower)] = j;
        written += __popc(keep_mask);
        equal_taken += __popc(equal_mask);
    }
}

} // namespace
} // namespace sla2k

cudaError_t sla2k_launch_router(const sla2k_problem &p, cudaStream_t stream, float *scores, size_t max_smem)
{
    using namespace sla2k;
    const int bh = p.batch * p.heads;
    dim3 pgrid(p.num_q_blocks > p.num_k_blocks ? p.num_q_blocks : p.num_k_blocks, bh, 2);
    if (p.head_dim == 64)
        project_kernel<64><<<pgrid, 64, 0, stream>>>(p);
    else
        project_kernel<128><<<pgrid, 128, 0, stream>>>(p);
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess)
        return err;
    dim3 sgrid((p.num_k_blocks + 63) / 64, (p.num_q_blocks + 63) / 64, bh);
    if (p.head_dim == 64)
        scores_kernel<64><<<sgrid, 256, 0, stream>>>(p, scores);
    else
        scores_kernel<128><<<sgrid, 256, 0, stream>>>(p, scores);
    if ((err = cudaGetLastError()) != cudaSuccess)
        return err;
    const size_t smem = (size_t)kTopkWarps * p.num_k_blocks * sizeof(unsigned);
    if (smem > max_smem)
        return cudaErrorInvalidConfiguration;
    if (smem > 48 * 1024 &&
        (err = cudaFuncSetAttribute(topk_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)) !=
            cudaSuccess)
        return err;
    dim3 grid((p.num_q_blocks + kTopkWarps - 1) / kTopkWarps, bh);
    topk_kernel<<<grid, kTopkWarps * 32, smem, stream>>>(p, scores);
    return cudaGetLastError();
}
