/* The linear branch's feature map phi (ARCHITECTURE.md section 2: softmax
 * over the head dimension, elu + 1, relu), one definition for phi(K) in the
 * key-value pass and phi(Q) in the linear branch's linear_out kernel
 * (sdk/src/cuda/linear_branch.cu), so that both sides of phi(q).phi(k) round
 * alike. */
#pragma once

#include "kernels_int8/device_common.cuh"

namespace sla2k {

/* phi of one row held by a whole warp, lane owning channels lane + 32 c;
 * every lane of the warp must call it (softmax reduces across the warp). */
template <int C>
__device__ __forceinline__ void feature_map_row(float (&phi)[C], const float (&x)[C], int feature_map)
{
    /* exp2f (one MUFU.EX2) and one reciprocal per row instead of expf's and
     * IEEE division's longer sequences: a few fp32 ulps, far below the fp16
     * that phi is stored in, and fewer instructions in linear_out, which
     * issue limits. */
    constexpr float kLog2e = 1.4426950408889634f;
    if (feature_map == SLA2K_PHI_SOFTMAX) {
        float m = x[0];
#pragma unroll
        for (int c = 1; c < C; ++c)
            m = fmaxf(m, x[c]);
        m = warp_max(m);
        float s = 0.0f;
#pragma unroll
        for (int c = 0; c < C; ++c) {
            phi[c] = exp2f((x[c] - m) * kLog2e);
            s += phi[c];
        }
        const float inv = 1.0f / warp_sum(s);
#pragma unroll
        for (int c = 0; c < C; ++c)
            phi[c] *= inv;
    } else if (feature_map == SLA2K_PHI_ELU) {
#pragma unroll
        for (int c = 0; c < C; ++c)
            phi[c] = x[c] > 0.0f ? x[c] + 1.0f : exp2f(x[c] * kLog2e);
    } else {
#pragma unroll
        for (int c = 0; c < C; ++c)
            phi[c] = fmaxf(x[c], 0.0f);
    }
}

} // namespace sla2k
