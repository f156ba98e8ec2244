/* Passes over K, V and Q before the sparse kernel:
 *   key pass   (per key block): sum of K rows (smoothing mean and router
 *              pooling), |V| max per channel, phi(K) and V in fp16,
 *              z = sum phi(K) (per block and in total);
 *   query pool (per query block): mean of Q rows for the router;
 *   key quant  (per key block, after the key pass): INT8 smoothed K with
 *              one scale per block, or raw K split in two fp16 (mode NONE).
 * Each block of 256 threads handles 64 rows; a lane owns channels
 * lane + 32 c, so every warp load is one coalesced row. */
#include "kernels_int8/device_common.cuh"
#include "kernels_int8/sparse_attention.cuh"

namespace sla2k {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

__device__ __forceinline__ int64_t row_offset(const sla2k_tensor &t, int bh, int heads, int64_t row)
{
    return (int64_t)(bh / heads) * t.stride_b + (int64_t)(bh % heads) * t.stride_h + row * t.stride_l;
}

template <int D>
__global__ void __launch_bounds__(kThreads) key_pass_kernel(const sla2k_problem p)
{
    __shared__ double k_part[kWarps][D];
    __shared__ float z_part[kWarps][D];
    __shared__ float v_part[kWarps][D];
    __shared__ float phi_max_part[kWarps];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int j = blockIdx.x, bh = blockIdx.y;
    const bool need_phi = p.use_linear != 0;
    const bool need_v16 = p.v16 != nullptr; /* FP16 P.V or the linear branch */

    double ks[D / 32] = {};
    float zs[D / 32] = {}, vm[D / 32] = {};
    float phi_max = 0.0f;
    /* All of the warp's rows in flight at once. */
    constexpr int kRows = SLA2K_BLOCK_K / kWarps;
    float ks_in[kRows][D / 32], vs_in[kRows][D / 32];
    const int64_t first_row = (int64_t)j * SLA2K_BLOCK_K + warp;
    load_rows(ks_in, p.k.data, p.in_dtype, [&](int rr) {
        const int64_t row = first_row + rr * kWarps;
        return row < p.seq_len ? row_offset(p.k, bh, p.heads, row) : (int64_t)-1;
    }, lane);
    load_rows(vs_in, p.v.data, p.in_dtype, [&](int rr) {
        const int64_t row = first_row + rr * kWarps;
        return row < p.seq_len ? row_offset(p.v, bh, p.heads, row) : (int64_t)-1;
    }, lane);
#pragma unroll
    for (int rr = 0; rr < kRows; ++rr) {
        const int64_t row = (int64_t)j * SLA2K_BLOCK_K + warp + rr * kWarps;
        const bool valid = row < p.seq_len;
        const float *k = ks_in[rr], *v = vs_in[rr];
        const size_t out_row = ((size_t)bh * p.padded_len + row) * D;
#pragma unroll
        for (int c = 0; c < D / 32; ++c) {
            ks[c] += k[c];
            vm[c] = fmaxf(vm[c], fabsf(v[c]));
            if (need_v16)
                p.v16[out_row + lane + 32 * c] = __float2half_rn(v[c]);
        }
        if (need_phi) {
            float phi[D / 32];
            if (p.feature_map == SLA2K_PHI_SOFTMAX) {
                float m = k[0];
#pragma unroll
                for (int c = 1; c < D / 32; ++c)
                    m = fmaxf(m, k[c]);
                m = warp_max(m);
                float s = 0.0f;
#pragma unroll
                for (int c = 0; c < D / 32; ++c) {
                    phi[c] = expf(k[c] - m);
                    s += phi[c];
                }
                s = warp_sum(s);
#pragma unroll
                for (int c = 0; c < D / 32; ++c)
                    phi[c] = phi[c] / s;
            } else if (p.feature_map == SLA2K_PHI_ELU) {
#pragma unroll
                for (int c = 0; c < D / 32; ++c)
                    phi[c] = k[c] > 0.0f ? k[c] + 1.0f : expf(k[c]);
            } else {
#pragma unroll
                for (int c = 0; c < D / 32; ++c)
                    phi[c] = fmaxf(k[c], 0.0f);
            }
#pragma unroll
            for (int c = 0; c < D / 32; ++c) {
                if (!valid)
                    phi[c] = 0.0f;
                zs[c] += phi[c];
                phi_max = fmaxf(phi_max, phi[c]);
                p.phi_k[out_row + lane + 32 * c] = __float2half_rn(phi[c]);
            }
        }
    }
#pragma unroll
    for (int c = 0; c < D / 32; ++c) {
        k_part[warp][lane + 32 * c] = ks[c];
        z_part[warp][lane + 32 * c] = zs[c];
        v_part[warp][lane + 32 * c] = vm[c];
    }
    phi_max = warp_max(phi_max);
    if (lane == 0)
        phi_max_part[warp] = phi_max;
    __syncthreads();
    if (threadIdx.x < D) {
        const int d = threadIdx.x;
        double k_total = 0.0;
        float z_total = 0.0f, v_max = 0.0f;
        for (int w = 0; w < kWarps; ++w) {
            k_total += k_part[w][d];
            z_total += z_part[w][d];
            v_max = fmaxf(v_max, v_part[w][d]);
        }
        atomicAdd(&p.k_sum[(size_t)bh * D + d], k_total);
        atomic_max_nonneg(&p.v_absmax[(size_t)bh * D + d], v_max);
        if (need_phi)
            atomicAdd(&p.phi_k_sum[(size_t)bh * D + d], z_total);
        if (p.phi_k_block_sum)
            p.phi_k_block_sum[((size_t)bh * p.num_k_blocks + j) * D + d] = z_total;
    }
    if (threadIdx.x == 0 && need_phi) {
        float m = 0.0f;
        for (int w = 0; w < kWarps; ++w)
            m = fmaxf(m, phi_max_part[w]);
        atomic_max_nonneg(&p.phi_k_max[bh], m);
    }
}

template <int D>
__global__ void __launch_bounds__(kThreads) query_pool_kernel(const sla2k_problem p)
{
    __shared__ double part[kWarps][D];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int i = blockIdx.x, bh = blockIdx.y;
    const int row0 = i * p.block_q;
    const int rows = min(p.block_q, p.seq_len - row0);
    double s[D / 32] = {};
    for (int first = warp; first < p.block_q; first += 8 * kWarps) {
        float x[8][D / 32];
        load_rows(x, p.q.data, p.in_dtype, [&](int rr) {
            const int r = first + rr * kWarps;
            return r < rows ? row_offset(p.q, bh, p.heads, row0 + r) : (int64_t)-1;
        }, lane);
#pragma unroll
        for (int rr = 0; rr < 8; ++rr)
#pragma unroll
            for (int c = 0; c < D / 32; ++c)
                s[c] += x[rr][c];
    }
#pragma unroll
    for (int c = 0; c < D / 32; ++c)
        part[warp][lane + 32 * c] = s[c];
    __syncthreads();
    if (threadIdx.x < D) {
        double total = 0.0;
        for (int w = 0; w < kWarps; ++w)
            total += part[w][threadIdx.x];
        p.q_block_mean[((size_t)bh * p.num_q_blocks + i) * D + threadIdx.x] = (float)(total / rows);
    }
}

template <int D>
__global__ void __launch_bounds__(kThreads) key_quant_kernel(const sla2k_problem p)
{
    __shared__ float tile[SLA2K_BLOCK_K][D];
    __shared__ float red[kWarps];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int j = blockIdx.x, bh = blockIdx.y;
    float mean[D / 32];
#pragma unroll
    for (int c = 0; c < D / 32; ++c)
        mean[c] = (float)(p.k_sum[(size_t)bh * D + lane + 32 * c] / p.seq_len);

    float m = 0.0f;
    constexpr int kRows = SLA2K_BLOCK_K / kWarps;
    float ks_in[kRows][D / 32];
    load_rows(ks_in, p.k.data, p.in_dtype, [&](int rr) {
        const int64_t row = (int64_t)j * SLA2K_BLOCK_K + warp + rr * kWarps;
        return row < p.seq_len ? row_offset(p.k, bh, p.heads, row) : (int64_t)-1;
    }, lane);
#pragma unroll
    for (int rr = 0; rr < kRows; ++rr) {
        const int r = warp + rr * kWarps;
        const int64_t row = (int64_t)j * SLA2K_BLOCK_K + r;
        const bool valid = row < p.seq_len;
#pragma unroll
        for (int c = 0; c < D / 32; ++c) {
            const float k = ks_in[rr][c];
            const float smooth = valid ? k - mean[c] : 0.0f;
            tile[r][lane + 32 * c] = smooth;
            m = fmaxf(m, fabsf(smooth));
            if (p.qk != SLA2K_QK_INT8) {
                const size_t idx = ((size_t)bh * p.padded_len + row) * D + lane + 32 * c;
                __half hi = __float2half_rn(k);
                p.k16_hi[idx] = hi;
                if (p.qk == SLA2K_QK_F16X3)
                    p.k16_lo[idx] = __float2half_rn(k - __half2float(hi));
            }
        }
    }
    m = warp_max(m);
    if (lane == 0)
        red[warp] = m;
    __syncthreads();
    /* The router's pooled key: mean of the smoothed rows, summed in row order
     * in double and rounded to float, as the CPU reference does. */
    const int rows = min(SLA2K_BLOCK_K, p.seq_len - j * SLA2K_BLOCK_K);
    if (threadIdx.x < D) {
        double s = 0.0;
        for (int r = 0; r < rows; ++r)
            s += tile[r][threadIdx.x];
        p.k_block_mean[((size_t)bh * p.num_k_blocks + j) * D + threadIdx.x] = (float)(s / rows);
    }
    if (p.qk != SLA2K_QK_INT8)
        return;
    float amax = 0.0f;
    for (int w = 0; w < kWarps; ++w)
        amax = fmaxf(amax, red[w]);
    const float scale = amax / SLA2K_INT8_MAX;
    if (threadIdx.x == 0)
        p.k_scale[(size_t)bh * p.num_k_blocks + j] = scale;
    for (int r = warp; r < SLA2K_BLOCK_K; r += kWarps) {
        const size_t out_row = ((size_t)bh * p.padded_len + (size_t)j * SLA2K_BLOCK_K + r) * D;
#pragma unroll
        for (int c = 0; c < D / 32; ++c)
            p.k8[out_row + lane + 32 * c] = scale > 0.0f ? round_int8(tile[r][lane + 32 * c] / scale) : (int8_t)0;
    }
}

} // namespace
} // namespace sla2k

using namespace sla2k;

#define SLA2K_LAUNCH_BY_D(kernel, grid, stream)                          \
    do {                                                                 \
        if (p.head_dim == 64)                                            \
            kernel<64><<<(grid), kThreads, 0, (stream)>>>(p);            \
        else                                                             \
            kernel<128><<<(grid), kThreads, 0, (stream)>>>(p);           \
        return cudaGetLastError();                                       \
    } while (0)

cudaError_t sla2k_launch_key_pass(const sla2k_problem &p, cudaStream_t stream)
{
    SLA2K_LAUNCH_BY_D(key_pass_kernel, dim3(p.num_k_blocks, p.batch * p.heads), stream);
}

cudaError_t sla2k_launch_query_pool(const sla2k_problem &p, cudaStream_t stream)
{
    SLA2K_LAUNCH_BY_D(query_pool_kernel, dim3(p.num_q_blocks, p.batch * p.heads), stream);
}

cudaError_t sla2k_launch_key_quant(const sla2k_problem &p, cudaStream_t stream)
{
    SLA2K_LAUNCH_BY_D(key_quant_kernel, dim3(p.num_k_blocks, p.batch * p.heads), stream);
}

size_t sla2k_sparse_smem_bytes(const sla2k_problem &p, int stages)
{
    return (size_t)SparseSmem(p.head_dim, p.qk, p.pv, p.block_q, p.use_linear, stages).total;
}

cudaError_t sla2k_launch_sparse(const sla2k_problem &p, cudaStream_t stream)
{
    const size_t smem = sla2k_sparse_smem_bytes(p, p.stages);
    const bool d64 = p.head_dim == 64;
    if (p.qk == SLA2K_QK_INT8 && p.pv == SLA2K_PV_FP8_F16)
        return d64 ? sla2k_sparse_64_0_2(p, stream, smem) : sla2k_sparse_128_0_2(p, stream, smem);
    if (p.qk == SLA2K_QK_INT8 && p.pv == SLA2K_PV_FP8)
        return d64 ? sla2k_sparse_64_0_1(p, stream, smem) : sla2k_sparse_128_0_1(p, stream, smem);
    if (p.qk == SLA2K_QK_INT8)
        return d64 ? sla2k_sparse_64_0_0(p, stream, smem) : sla2k_sparse_128_0_0(p, stream, smem);
    if (p.qk == SLA2K_QK_F16)
        return d64 ? sla2k_sparse_64_1_0(p, stream, smem) : sla2k_sparse_128_1_0(p, stream, smem);
    return d64 ? sla2k_sparse_64_2_0(p, stream, smem) : sla2k_sparse_128_2_0(p, stream, smem);
}
