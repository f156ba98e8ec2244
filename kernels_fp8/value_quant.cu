/* V to e4m3 for the FP8 P.V: V8 = e4m3(V / sv) with sv = max_tokens |V| / 448
 * per (batch, head, channel) (sv = 0 gives V8 = 0). Written per key block
 * transposed, [d][position], keys in the order of fp8_common.cuh, so that
 * the sparse kernel's ldmatrix yields mma B fragments directly. */
#include "kernels_fp8/fp8_common.cuh"
#include "kernels_int8/device_common.cuh"

namespace sla2k {
namespace {

constexpr int kThreads = 256;

template <int D>
__global__ void __launch_bounds__(kThreads) value_quant_kernel(const sla2k_problem p)
{
    __shared__ float tile[SLA2K_BLOCK_K][D + 1];
    const int j = blockIdx.x, bh = blockIdx.y;
    const int b = bh / p.heads, h = bh % p.heads;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    constexpr int kWarps = kThreads / 32, kRows = SLA2K_BLOCK_K / kWarps;
    float x[kRows][D / 32];
    load_rows(x, p.v.data, p.in_dtype, [&](int rr) {
        const int64_t row = (int64_t)j * SLA2K_BLOCK_K + warp + rr * kWarps;
        return row < p.seq_len ? (int64_t)b * p.v.stride_b + (int64_t)h * p.v.stride_h + row * p.v.stride_l
                               : (int64_t)-1;
    }, lane);
#pragma unroll
    for (int rr = 0; rr < kRows; ++rr)
#pragma unroll
        for (int c = 0; c < D / 32; ++c)
            tile[warp + rr * kWarps][lane + 32 * c] = x[rr][c];
    __syncthreads();
    if (p.pv == SLA2K_PV_FP8_F16) {
        /* row-major [key][d], the e4m3 values as fp16 */
        for (int idx = threadIdx.x; idx < SLA2K_BLOCK_K * D; idx += kThreads) {
            const int r = idx / D, d = idx % D;
            const float sv = p.v_absmax[(size_t)bh * D + d] / SLA2K_FP8_MAX;
            const float x = sv > 0.0f ? tile[r][d] / sv : 0.0f;
            const __half_raw hr = __nv_cvt_fp8_to_halfraw(to_e4m3(x), __NV_E4M3);
            p.v8h[((size_t)bh * p.padded_len + (size_t)j * SLA2K_BLOCK_K + r) * D + d] = __half(hr);
        }
        return;
    }
    uint32_t *out = reinterpret_cast<uint32_t *>(p.v8t + ((size_t)bh * p.num_k_blocks + j) * D * SLA2K_BLOCK_K);
    for (int w = threadIdx.x; w < D * SLA2K_BLOCK_K / 4; w += kThreads) {
        const int d = w / (SLA2K_BLOCK_K / 4), pos0 = (w % (SLA2K_BLOCK_K / 4)) * 4;
        const float sv = p.v_absmax[(size_t)bh * D + d] / SLA2K_FP8_MAX;
        float x[4];
#pragma unroll
        for (int e = 0; e < 4; ++e)
            x[e] = sv > 0.0f ? tile[key_of_position(pos0 + e)][d] / sv : 0.0f;
        out[w] = pack4_e4m3(x[0], x[1], x[2], x[3]);
    }
}

} // namespace
} // namespace sla2k

cudaError_t sla2k_launch_value_quant(const sla2k_problem &p, cudaStream_t stream)
{
    dim3 grid(p.num_k_blocks, p.batch * p.heads);
    if (p.head_dim == 64)
        sla2k::value_quant_kernel<64><<<grid, sla2k::kThreads, 0, stream>>>(p);
    else
        sla2k::value_quant_kernel<128><<<grid, sla2k::kThreads, 0, stream>>>(p);
    return cudaGetLastError();
}
