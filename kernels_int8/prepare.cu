/* Passes over K, V and Q before the router and the sparse kernel:
 *   key stats  (per key block): sum of K (the smoothing mean) and, for FP8
 *              P.V, |V| max per channel: the token statistics that
 *              quantising needs;
 *   query pass (per query block): mean of Q rows for the router, INT8 Q
 *              with the block's scale, alpha per row;
 *   key-value  (per key block, after key stats): all that is derived from
 *              K and V, so that this pass reads each of them once.
 * Each block of 256 threads handles 64 rows of one tensor (the key passes
 * give K and V of a key block to two blocks); a lane owns channels
 * lane + 32 c, so every warp load is one coalesced row. */
#include "kernels_fp8/value_quant.cuh"
#include "kernels_int8/device_common.cuh"
#include "kernels_int8/feature_map.cuh"
#include "kernels_int8/sparse_attention.cuh"
#include "kernels_int8/sparse_wgmma.cuh"

namespace sla2k {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kRows = SLA2K_BLOCK_K / kWarps; /* rows per warp in the key passes */

/* CTAs per SM that each pass's registers must allow. Left to itself the
 * compiler gave them 54/71/97 registers at head_dim 128 (4/3/2 CTAs per
 * SM); these bounds cost 16-76 bytes of spills and took the three passes
 * from 0.58-0.60 to 0.55 ms (H100, 1.3B shape, same device call; the
 * passes wait on loads, and more CTAs keep more of them in flight). */
constexpr int kKeyStatsCtas = 5, kKeyValueCtas = 4, kQueryCtas = 3;

__device__ __forceinline__ int64_t row_offset(const sla2k_tensor &t, int bh, int heads, int64_t row)
{
    return (int64_t)(bh / heads) * t.stride_b + (int64_t)(bh % heads) * t.stride_h + row * t.stride_l;
}

/* The passes run 1-D grids over (block, head) with the heads varying
 * fastest: in the [B, L, H, D] layout the CTAs that run together then read
 * whole rows of all heads. Head-major order (each CTA of a wave reading
 * 256 bytes of every 3 KB row) held HBM to 1.2-1.7 TB/s (ncu, H100, v8). */
struct BlockOfHead {
    int block, bh;
};
__device__ __forceinline__ BlockOfHead block_of_head(const sla2k_problem &p, int index)
{
    const int bh_count = p.batch * p.heads; /* the grid is below 2^31 (cuda_backend.cu) */
    return {index / bh_count, index % bh_count};
}

/* Offset of row warp + kWarps rr of key block j in t, or -1 past the end. */
__device__ __forceinline__ int64_t key_row_offset(const sla2k_problem &p, const sla2k_tensor &t, int bh, int j,
                                                  int warp, int rr)
{
    const int64_t row = (int64_t)j * SLA2K_BLOCK_K + warp + rr * kWarps;
    return row < p.seq_len ? row_offset(t, bh, p.heads, row) : (int64_t)-1;
}

/* Both key passes give K and V of a block to two CTAs (K at even, V at odd
 * indices, the two side by side): each holds half the rows in registers, so
 * that more CTAs, and more loads, are in flight per SM. */
struct PassItem {
    int block, bh;
    bool value; /* this CTA's tensor: V, else K */
};
__device__ __forceinline__ PassItem pass_item(const sla2k_problem &p, int index, int roles)
{
    const BlockOfHead at = block_of_head(p, index / roles);
    return {at.block, at.bh, roles == 2 && index % 2 == 1};
}

template <int D>
__global__ void __launch_bounds__(kThreads, kKeyStatsCtas) key_stats_kernel(const sla2k_problem p)
{
    __shared__ double part[kWarps][D];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const PassItem it = pass_item(p, blockIdx.x, p.pv != SLA2K_PV_F16 ? 2 : 1);
    const sla2k_tensor &t = it.value ? p.v : p.k;

    /* All of the warp's rows in flight at once. */
    float x[kRows][D / 32];
    load_rows(x, t.data, p.in_dtype, [&](int rr) { return key_row_offset(p, t, it.bh, it.block, warp, rr); }, lane);
    double sum[D / 32] = {}; /* K: sum; V: max |v| */
#pragma unroll
    for (int rr = 0; rr < kRows; ++rr)
#pragma unroll
        for (int c = 0; c < D / 32; ++c)
            sum[c] = it.value ? fmax(sum[c], (double)fabsf(x[rr][c])) : sum[c] + x[rr][c];
#pragma unroll
    for (int c = 0; c < D / 32; ++c)
        part[warp][lane + 32 * c] = sum[c];
    __syncthreads();
    if (threadIdx.x < D) {
        const int d = threadIdx.x;
        double total = 0.0;
        for (int w = 0; w < kWarps; ++w)
            total = it.value ? fmax(total, part[w][d]) : total + part[w][d];
        if (it.value)
            atomic_max_nonneg(&p.v_absmax[(size_t)it.bh * D + d], (float)total);
        else
            atomicAdd(&p.k_sum[(size_t)it.bh * D + d], total);
    }
}

/* The key-value pass, in the reverse block order of key stats: its first
 * reads are the blocks key stats read last, still in L2. */

/* K: smoothed (K - mean), the smoothed block mean for the router, INT8 with
 * one scale per block (or raw K split in two fp16, mode NONE), phi(K) in
 * fp16 and z = sum phi(K) (per block and in total). */
template <int D>
__device__ __forceinline__ void key_part(const sla2k_problem &p, int j, int bh)
{
    __shared__ double pool_part[kWarps][D];
    __shared__ float z_part[kWarps][D];
    __shared__ float k_max_part[kWarps];
    constexpr int C = D / 32;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const bool need_phi = p.use_linear != 0;

    float mean[C];
#pragma unroll
    for (int c = 0; c < C; ++c)
        mean[c] = (float)(p.k_sum[(size_t)bh * D + lane + 32 * c] / p.seq_len);
    float ks[kRows][C];
    load_rows(ks, p.k.data, p.in_dtype, [&](int rr) { return key_row_offset(p, p.k, bh, j, warp, rr); }, lane);

    /* The router's pooled key sums the smoothed rows in double (exact for
     * these floats, so in any order), as the CPU reference does. */
    double pool[C] = {};
    float z[C] = {};
    float k_max = 0.0f;
#pragma unroll
    for (int rr = 0; rr < kRows; ++rr) {
        const int r = warp + rr * kWarps;
        const int64_t row = (int64_t)j * SLA2K_BLOCK_K + r;
        const bool valid = row < p.seq_len;
        const size_t out_row = ((size_t)bh * p.padded_len + row) * D;
        if (need_phi) {
            float phi[C];
            feature_map_row(phi, ks[rr], p.feature_map);
#pragma unroll
            for (int c = 0; c < C; ++c) {
                if (!valid)
                    phi[c] = 0.0f;
                z[c] += phi[c];
                p.phi_k[out_row + lane + 32 * c] = __float2half_rn(phi[c]);
            }
        }
#pragma unroll
        for (int c = 0; c < C; ++c) {
            const size_t idx = out_row + lane + 32 * c;
            const float k = ks[rr][c];
            if (p.qk != SLA2K_QK_INT8) {
                const __half hi = __float2half_rn(k);
                p.k16_hi[idx] = hi;
                if (p.qk == SLA2K_QK_F16X3)
                    p.k16_lo[idx] = __float2half_rn(k - __half2float(hi));
            }
            const float smooth = valid ? k - mean[c] : 0.0f;
            pool[c] += smooth;
            k_max = fmaxf(k_max, fabsf(smooth));
            ks[rr][c] = smooth;
        }
    }
#pragma unroll
    for (int c = 0; c < C; ++c) {
        pool_part[warp][lane + 32 * c] = pool[c];
        z_part[warp][lane + 32 * c] = z[c];
    }
    k_max = warp_max(k_max);
    if (lane == 0)
        k_max_part[warp] = k_max;
    __syncthreads();
    float amax = 0.0f;
    for (int w = 0; w < kWarps; ++w)
        amax = fmaxf(amax, k_max_part[w]);
    const float scale = amax / SLA2K_INT8_MAX;
    const float inv_scale = sla2k_inv_scale(scale);
    if (threadIdx.x < D) {
        const int d = threadIdx.x;
        const int rows = min(SLA2K_BLOCK_K, p.seq_len - j * SLA2K_BLOCK_K);
        double pooled = 0.0;
        float z_block = 0.0f;
        for (int w = 0; w < kWarps; ++w) {
            pooled += pool_part[w][d];
            z_block += z_part[w][d];
        }
        p.k_block_mean[((size_t)bh * p.num_k_blocks + j) * D + d] = (float)(pooled / rows);
        if (need_phi)
            atomicAdd(&p.phi_k_sum[(size_t)bh * D + d], z_block);
        if (p.phi_k_block_sum)
            p.phi_k_block_sum[((size_t)bh * p.num_k_blocks + j) * D + d] = z_block;
    }
    if (threadIdx.x == 0 && p.qk == SLA2K_QK_INT8)
        p.k_scale[(size_t)bh * p.num_k_blocks + j] = scale;
    if (p.qk == SLA2K_QK_INT8) {
#pragma unroll
        for (int rr = 0; rr < kRows; ++rr) {
            const size_t out_row = ((size_t)bh * p.padded_len + (size_t)j * SLA2K_BLOCK_K + warp + rr * kWarps) * D;
#pragma unroll
            for (int c = 0; c < C; ++c)
                p.k8[out_row + lane + 32 * c] = round_int8(sla2k_div_by(ks[rr][c], scale, inv_scale));
        }
    }
}

/* V: fp16 (FP16 P.V, linear branch) and e4m3 (FP8 P.V). */
template <int D>
__device__ __forceinline__ void value_part(const sla2k_problem &p, int j, int bh)
{
    extern __shared__ float v_tile[]; /* [64][D + 1]: V for the transposed e4m3 (PV_FP8 only) */
    constexpr int C = D / 32;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float sv[C], inv_sv[C];
#pragma unroll
    for (int c = 0; c < C; ++c) {
        sv[c] = p.pv != SLA2K_PV_F16 ? value_scale(p, bh, lane + 32 * c) : 0.0f;
        inv_sv[c] = sla2k_inv_scale(sv[c]);
    }
    float vs[kRows][C];
    load_rows(vs, p.v.data, p.in_dtype, [&](int rr) { return key_row_offset(p, p.v, bh, j, warp, rr); }, lane);
#pragma unroll
    for (int rr = 0; rr < kRows; ++rr) {
        const int r = warp + rr * kWarps;
        const size_t out_row = ((size_t)bh * p.padded_len + (size_t)j * SLA2K_BLOCK_K + r) * D;
#pragma unroll
        for (int c = 0; c < C; ++c) {
            const float v = vs[rr][c];
            if (p.v16)
                p.v16[out_row + lane + 32 * c] = __float2half_rn(v);
            if (p.pv == SLA2K_PV_FP8_F16)
                p.v8h[out_row + lane + 32 * c] = e4m3_as_half(v, sv[c], inv_sv[c]);
            if (p.pv == SLA2K_PV_FP8)
                v_tile[r * (D + 1) + lane + 32 * c] = v;
        }
    }
    if (p.pv == SLA2K_PV_FP8) {
        __syncthreads();
        store_v8_transposed<D>(p, v_tile, bh, j);
    }
}

template <int D>
__global__ void __launch_bounds__(kThreads, kKeyValueCtas) key_value_kernel(const sla2k_problem p)
{
    const PassItem it = pass_item(p, (int)(gridDim.x - 1 - blockIdx.x), 2);
    if (it.value)
        value_part<D>(p, it.block, it.bh);
    else
        key_part<D>(p, it.block, it.bh);
}

/* The query pass, one CTA per query block, all of its rows in registers
 * (16 per warp at most): the pooled mean for the router, INT8 Q with the
 * block's scale for the sparse kernel (modes INT8 and INT8_FP8), alpha per
 * row, and the alpha sum for the call's mean. */
template <int D>
__global__ void __launch_bounds__(kThreads, kQueryCtas) query_pool_kernel(const sla2k_problem p)
{
    __shared__ double part[kWarps][D];
    __shared__ float max_part[kWarps];
    __shared__ double alpha_part[kWarps];
    constexpr int C = D / 32, kMaxRows = 128 / kWarps;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const BlockOfHead at = block_of_head(p, blockIdx.x);
    const int i = at.block, bh = at.bh, h = bh % p.heads;
    const int row0 = i * p.block_q;
    const int rows = min(p.block_q, p.seq_len - row0);
    const int rows_per_warp = p.block_q / kWarps;
    float x[kMaxRows][C];
    load_rows(x, p.q.data, p.in_dtype, [&](int rr) {
        const int r = warp + rr * kWarps;
        return rr < rows_per_warp && r < rows ? row_offset(p.q, bh, p.heads, row0 + r) : (int64_t)-1;
    }, lane);
    double s[C] = {};
    float m = 0.0f;
#pragma unroll
    for (int rr = 0; rr < kMaxRows; ++rr)
#pragma unroll
        for (int c = 0; c < C; ++c) {
            s[c] += x[rr][c];
            m = fmaxf(m, fabsf(x[rr][c]));
        }
#pragma unroll
    for (int c = 0; c < C; ++c)
        part[warp][lane + 32 * c] = s[c];
    m = warp_max(m);

    /* alpha per row: sigma(q . w_h + b_h); the sum over valid rows either way */
    double alpha_sum = 0.0;
    if (p.alpha_kind == SLA2K_ALPHA_PER_ROW) {
        float w[C];
#pragma unroll
        for (int c = 0; c < C; ++c)
            w[c] = p.alpha_w[(size_t)h * D + lane + 32 * c];
        const float bias = p.alpha_b[h];
#pragma unroll
        for (int rr = 0; rr < kMaxRows; ++rr) {
            const int r = warp + rr * kWarps;
            float dot = 0.0f;
#pragma unroll
            for (int c = 0; c < C; ++c)
                dot += x[rr][c] * w[c];
            dot = warp_sum(dot);
            const float alpha = sigmoidf(dot + bias);
            if (rr < rows_per_warp && r < rows) {
                alpha_sum += alpha;
                if (lane == 0)
                    p.row_alpha[(size_t)bh * p.seq_len + row0 + r] = alpha;
            }
        }
    }
    if (lane == 0) {
        max_part[warp] = m;
        alpha_part[warp] = alpha_sum;
    }
    __syncthreads();
    if (threadIdx.x < D) {
        double total = 0.0;
        for (int w = 0; w < kWarps; ++w)
            total += part[w][threadIdx.x];
        p.q_block_mean[((size_t)bh * p.num_q_blocks + i) * D + threadIdx.x] = (float)(total / rows);
    }
    if (threadIdx.x == 0 && p.alpha_sum && !p.sla_v1) {
        double a = p.alpha_kind == SLA2K_ALPHA_PER_HEAD ? rows * (double)sigmoidf(p.alpha[h]) : 0.0;
        if (p.alpha_kind == SLA2K_ALPHA_PER_ROW)
            for (int w = 0; w < kWarps; ++w)
                a += alpha_part[w];
        if (p.alpha_kind == SLA2K_ALPHA_ONE)
            a = rows;
        atomicAdd(p.alpha_sum, a);
    }
    if (p.qk != SLA2K_QK_INT8)
        return;
    float amax = 0.0f;
    for (int w = 0; w < kWarps; ++w)
        amax = fmaxf(amax, max_part[w]);
    const float scale = amax / SLA2K_INT8_MAX, inv_scale = sla2k_inv_scale(scale);
    if (threadIdx.x == 0)
        p.q_scale[(size_t)bh * p.num_q_blocks + i] = scale;
    int8_t *q8 = p.q8 + ((size_t)bh * p.num_q_blocks + i) * p.block_q * D;
#pragma unroll
    for (int rr = 0; rr < kMaxRows; ++rr) {
        const int r = warp + rr * kWarps;
        if (rr < rows_per_warp)
#pragma unroll
            for (int c = 0; c < C; ++c)
                q8[(size_t)r * D + lane + 32 * c] = round_int8(sla2k_div_by(x[rr][c], scale, inv_scale));
    }
}

} // namespace
} // namespace sla2k

using namespace sla2k;

#define SLA2K_LAUNCH_BY_D(kernel, grid, smem, stream)                    \
    do {                                                                 \
        if (p.head_dim == 64)                                            \
            kernel<64><<<(grid), kThreads, (smem), (stream)>>>(p);       \
        else                                                             \
            kernel<128><<<(grid), kThreads, (smem), (stream)>>>(p);      \
        return cudaGetLastError();                                       \
    } while (0)

cudaError_t sla2k_launch_key_stats(const sla2k_problem &p, cudaStream_t stream)
{
    const unsigned roles = p.pv != SLA2K_PV_F16 ? 2 : 1; /* V's max only for FP8 P.V */
    SLA2K_LAUNCH_BY_D(key_stats_kernel, roles * p.num_k_blocks * p.batch * p.heads, 0, stream);
}

cudaError_t sla2k_launch_query_pool(const sla2k_problem &p, cudaStream_t stream)
{
    SLA2K_LAUNCH_BY_D(query_pool_kernel, (unsigned)p.num_q_blocks * p.batch * p.heads, 0, stream);
}

cudaError_t sla2k_launch_key_value(const sla2k_problem &p, cudaStream_t stream)
{
    /* at most 33 KB: under the 48 KB that needs no opt-in */
    const size_t tile_bytes = p.pv == SLA2K_PV_FP8 ? (size_t)SLA2K_BLOCK_K * (p.head_dim + 1) * sizeof(float) : 0;
    SLA2K_LAUNCH_BY_D(key_value_kernel, 2u * p.num_k_blocks * p.batch * p.heads, tile_bytes, stream);
}

/* The sparse kernel on wgmma: all but F32 inputs' three-product Q.K^T. */
static bool sparse_on_wgmma(const sla2k_problem &p)
{
    return p.wgmma && p.qk != SLA2K_QK_F16X3 && p.pv != SLA2K_PV_FP8_F16;
}

size_t sla2k_sparse_smem_bytes(const sla2k_problem &p, int stages)
{
    if (sparse_on_wgmma(p))
        return (size_t)WgmmaSmem(p.head_dim, p.qk, p.pv, p.block_q, stages).total;
    return (size_t)SparseSmem(p.head_dim, p.qk, p.pv, p.block_q, stages).total;
}

static cudaError_t launch_sparse_wgmma(const sla2k_problem &p, cudaStream_t stream, size_t smem)
{
    const bool d64 = p.head_dim == 64;
    if (p.qk == SLA2K_QK_INT8 && p.pv == SLA2K_PV_FP8)
        return d64 ? sla2k_sparse_wgmma_64_0_1(p, stream, smem) : sla2k_sparse_wgmma_128_0_1(p, stream, smem);
    if (p.qk == SLA2K_QK_INT8)
        return d64 ? sla2k_sparse_wgmma_64_0_0(p, stream, smem) : sla2k_sparse_wgmma_128_0_0(p, stream, smem);
    return d64 ? sla2k_sparse_wgmma_64_1_0(p, stream, smem) : sla2k_sparse_wgmma_128_1_0(p, stream, smem);
}

cudaError_t sla2k_launch_sparse(const sla2k_problem &p, cudaStream_t stream)
{
    const size_t smem = sla2k_sparse_smem_bytes(p, p.stages);
    if (sparse_on_wgmma(p))
        return launch_sparse_wgmma(p, stream, smem);
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

static __global__ void wgmma_available_kernel(int *available)
{
#ifdef SLA2K_WGMMA_DEVICE
    *available = 1;
#else
    *available = 0;
#endif
}

cudaError_t sla2k_wgmma_available(int *available)
{
    *available = 0;
    int *flag = nullptr;
    cudaError_t err = cudaMalloc(&flag, sizeof *flag);
    if (err != cudaSuccess)
        return err;
    wgmma_available_kernel<<<1, 1>>>(flag);
    err = cudaGetLastError();
    if (err == cudaSuccess)
        err = cudaMemcpy(available, flag, sizeof *flag, cudaMemcpyDeviceToHost);
    cudaFree(flag);
    return err;
}
