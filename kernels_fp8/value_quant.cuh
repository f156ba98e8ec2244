/* V to e4m3 for the FP8 P.V: V8 = e4m3(V / sv) with sv = max_tokens |V| / 448
 * per (batch, head, channel) (sv = 0 gives V8 = 0), as the key-value pass
 * writes it:
 *   PV_FP8_F16: row-major [key][d], each e4m3 value stored as fp16;
 *   PV_FP8:     per key block transposed, [d][position], keys in the order
 *               of fp8_common.cuh, so that the sparse kernel's ldmatrix
 *               yields mma B fragments directly. */
#pragma once

#include "kernels_fp8/fp8_common.cuh"
#include "kernels_int8/device_common.cuh"
#include "kernels_int8/sla2_kernels.h"

namespace sla2k {

/* sv of channel d; the quantised value is v / sv (sv = 0: V8 = 0), taken
 * as sla2k_div_by(v, sv, sla2k_inv_scale(sv)). */
__device__ __forceinline__ float value_scale(const sla2k_problem &p, int bh, int d)
{
    return p.v_absmax[(size_t)bh * p.head_dim + d] / SLA2K_FP8_MAX;
}

__device__ __forceinline__ __half e4m3_as_half(float v, float sv, float inv_sv)
{
    const __half_raw hr = __nv_cvt_fp8_to_halfraw(to_e4m3(sla2k_div_by(v, sv, inv_sv)), __NV_E4M3);
    return __half(hr);
}

/* Writes key block j's V8 transposed (PV_FP8) from tile[key][d] (rows of
 * D + 1 floats, padded keys 0); all threads of the block take part. */
template <int D>
__device__ __forceinline__ void store_v8_transposed(const sla2k_problem &p, const float *tile, int bh, int j)
{
    uint32_t *out = reinterpret_cast<uint32_t *>(p.v8t + ((size_t)bh * p.num_k_blocks + j) * D * SLA2K_BLOCK_K);
    for (int w = threadIdx.x; w < D * SLA2K_BLOCK_K / 4; w += blockDim.x) {
        const int d = w / (SLA2K_BLOCK_K / 4), pos0 = (w % (SLA2K_BLOCK_K / 4)) * 4;
        const float sv = value_scale(p, bh, d), inv_sv = sla2k_inv_scale(sv);
        float x[4];
#pragma unroll
        for (int e = 0; e < 4; ++e)
            x[e] = sla2k_div_by(tile[key_of_position(pos0 + e) * (D + 1) + d], sv, inv_sv);
        out[w] = pack4_e4m3(x[0], x[1], x[2], x[3]);
    }
}

} // namespace sla2k
