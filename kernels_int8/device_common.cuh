/* Device helpers shared by the SLA2 kernels: element loads of any input
 * dtype, warp reductions, cp.async, ldmatrix and the mma.sync wrappers for
 * INT8 and FP16 (the FP8 ones live in kernels_fp8/fp8_common.cuh). */
#pragma once

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>

#include "kernels_int8/exact_arith.h"
#include "kernels_int8/sla2_kernels.h"

namespace sla2k {

__device__ __forceinline__ float load_elem(const void *base, int64_t index, int dtype)
{
    switch (dtype) {
    case SLA2K_F16:
        return __half2float(static_cast<const __half *>(base)[index]);
    case SLA2K_BF16:
        return __bfloat162float(static_cast<const __nv_bfloat16 *>(base)[index]);
    default:
        return static_cast<const float *>(base)[index];
    }
}

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T, int R, int C, typename RowOffset>
__device__ __forceinline__ void load_rows_as(float (&x)[R][C], const void *base, RowOffset row_offset, int lane)
{
    const T *b = static_cast<const T *>(base);
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const int64_t off = row_offset(r);
#pragma unroll
        for (int c = 0; c < C; ++c)
            x[r][c] = off >= 0 ? to_float(b[off + lane + 32 * c]) : 0.0f;
    }
}

/* R rows of C * 32 channels into registers, lane owning channels lane + 32 c;
 * row_offset(r) gives the element offset of row r, or -1 for a row past the
 * end (zeros). The dtype is dispatched once, outside the loads, so that all
 * of them are in flight together (a switch per element serialises them). */
template <int R, int C, typename RowOffset>
__device__ __forceinline__ void load_rows(float (&x)[R][C], const void *base, int dtype, RowOffset row_offset,
                                          int lane)
{
    if (dtype == SLA2K_BF16)
        load_rows_as<__nv_bfloat16>(x, base, row_offset, lane);
    else if (dtype == SLA2K_F16)
        load_rows_as<__half>(x, base, row_offset, lane);
    else
        load_rows_as<float>(x, base, row_offset, lane);
}

/* Branch-free store of one element in any output dtype (predicated
 * stores): the sparse kernel's epilogue stores 64 values per thread, and a
 * switch per store made its straight-line code too large for the
 * instruction cache. */
__device__ __forceinline__ void store_out(void *base, int64_t index, int dtype, float x)
{
    const __half h = __float2half_rn(x);
    const __nv_bfloat16 bf = __float2bfloat16_rn(x);
    const unsigned short bits = dtype == SLA2K_F16 ? *reinterpret_cast<const unsigned short *>(&h)
                                                   : *reinterpret_cast<const unsigned short *>(&bf);
    if (dtype == SLA2K_F32)
        static_cast<float *>(base)[index] = x;
    else
        static_cast<unsigned short *>(base)[index] = bits;
}

/* store_out's counterpart: one element of `out` back as float, without a
 * switch (the epilogue reads back the linear branch's output this way). */
__device__ __forceinline__ float load_out(const void *base, int64_t index, int dtype)
{
    if (dtype == SLA2K_F32)
        return static_cast<const float *>(base)[index];
    const unsigned short bits = static_cast<const unsigned short *>(base)[index];
    return dtype == SLA2K_F16 ? __half2float(__ushort_as_half(bits)) : __bfloat162float(__ushort_as_bfloat16(bits));
}

/* Two adjacent elements (index, index + 1) of `out` where the pair is
 * aligned (sla2k_problem::out_paired): one 4- or 8-byte access. */
__device__ __forceinline__ float2 load_out2(const void *base, int64_t index, int dtype)
{
    if (dtype == SLA2K_F32)
        return *reinterpret_cast<const float2 *>(static_cast<const float *>(base) + index);
    const uint32_t bits = *reinterpret_cast<const uint32_t *>(static_cast<const unsigned short *>(base) + index);
    if (dtype == SLA2K_F16)
        return __half22float2(*reinterpret_cast<const __half2 *>(&bits));
    return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&bits));
}

__device__ __forceinline__ void store_out2(void *base, int64_t index, int dtype, float2 x)
{
    if (dtype == SLA2K_F32) {
        *reinterpret_cast<float2 *>(static_cast<float *>(base) + index) = x;
        return;
    }
    const __half2 h = __float22half2_rn(x);
    const __nv_bfloat162 bf = __float22bfloat162_rn(x);
    *reinterpret_cast<uint32_t *>(static_cast<unsigned short *>(base) + index) =
        dtype == SLA2K_F16 ? *reinterpret_cast<const uint32_t *>(&h) : *reinterpret_cast<const uint32_t *>(&bf);
}

/* Four adjacent elements (index..index + 3) of `out` where they are aligned
 * (sla2k_problem::out_quad): one 8- or 16-byte access. */
__device__ __forceinline__ float4 load_out4(const void *base, int64_t index, int dtype)
{
    if (dtype == SLA2K_F32)
        return *reinterpret_cast<const float4 *>(static_cast<const float *>(base) + index);
    const uint2 bits = *reinterpret_cast<const uint2 *>(static_cast<const unsigned short *>(base) + index);
    const float2 lo = load_out2(&bits.x, 0, dtype), hi = load_out2(&bits.y, 0, dtype);
    return make_float4(lo.x, lo.y, hi.x, hi.y);
}

__device__ __forceinline__ void store_out4(void *base, int64_t index, int dtype, float4 x)
{
    if (dtype == SLA2K_F32) {
        *reinterpret_cast<float4 *>(static_cast<float *>(base) + index) = x;
        return;
    }
    uint2 bits;
    store_out2(&bits.x, 0, dtype, make_float2(x.x, x.y));
    store_out2(&bits.y, 0, dtype, make_float2(x.z, x.w));
    *reinterpret_cast<uint2 *>(static_cast<unsigned short *>(base) + index) = bits;
}

/* An mma accumulator row's values of two adjacent 8-channel tiles (lane t
 * = lane % 4 holds channels 2t, 2t + 1 of each: `tile0`, `tile1`) as four
 * consecutive channels per lane, swapped between lanes t and t ^ 1: even
 * lanes take tile 0's 2t..2t + 3, odd lanes tile 1's 2t - 2..2t + 1, so
 * the row's four lanes cover its 16 channels with whole 32-byte sectors
 * instead of half ones. Every lane of the warp must call it; *channel is
 * the first channel's offset from tile 0's first. */
__device__ __forceinline__ float4 quad_of_tiles(float2 tile0, float2 tile1, int lane, int *channel)
{
    const int t = lane & 3;
    const bool odd = t & 1;
    const float2 send = odd ? tile0 : tile1;
    const float2 got = make_float2(__shfl_xor_sync(0xffffffffu, send.x, 1), __shfl_xor_sync(0xffffffffu, send.y, 1));
    *channel = odd ? 8 + 2 * (t - 1) : 2 * t;
    return odd ? make_float4(got.x, got.y, tile1.x, tile1.y) : make_float4(tile0.x, tile0.y, got.x, got.y);
}

__device__ __forceinline__ void store_elem(void *base, int64_t index, int dtype, float x)
{
    switch (dtype) {
    case SLA2K_F16:
        static_cast<__half *>(base)[index] = __float2half_rn(x);
        break;
    case SLA2K_BF16:
        static_cast<__nv_bfloat16 *>(base)[index] = __float2bfloat16_rn(x);
        break;
    default:
        static_cast<float *>(base)[index] = x;
    }
}

__device__ __forceinline__ float warp_sum(float x)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

__device__ __forceinline__ float warp_max(float x)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

/* INT8 round-to-nearest-even with saturation; NaN -> 0 (sla2_round_int8). */
__device__ __forceinline__ int8_t round_int8(float x)
{
    int r;
    asm("cvt.rni.sat.s8.f32 %0, %1;" : "=r"(r) : "f"(x));
    return static_cast<int8_t>(r);
}

/* Non-negative floats compare like their bit patterns. */
__device__ __forceinline__ void atomic_max_nonneg(float *address, float value)
{
    atomicMax(reinterpret_cast<int *>(address), __float_as_int(value));
}

__device__ __forceinline__ uint32_t smem_addr(const void *p)
{
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(smem)), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

/* D = A(16x32 s8, row) * B(32x8 s8, col) + D, INT32 accumulation. */
__device__ __forceinline__ void mma_s8_16832(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* D = A(16x16 f16, row) * B(16x8 f16, col) + D, FP32 accumulation. */
__device__ __forceinline__ void mma_f16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi)
{
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&h);
}

/* D = A(16x16 bf16, row) * B(16x8 bf16, col) + D, float32 accumulation. */
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi)
{
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&h);
}

/* The fp16 feature maps and the linear branch's running sums are kept in
 * range by power-of-two scales (exact), chosen from a bound of the values. */
__device__ __forceinline__ float pow2_scale_for(float bound, int target_exponent)
{
    if (!(bound > 0.0f) || !isfinite(bound))
        return 1.0f;
    int e;
    frexpf(bound, &e); /* bound < 2^e */
    int s = target_exponent - e;
    s = max(-100, min(100, s));
    return ldexpf(1.0f, s);
}

} // namespace sla2k
