/* FP8 (OCP e4m3fn) helpers: conversion with round-to-nearest-even and
 * saturation to +-448 (what sla2_float_to_e4m3 simulates), the e4m3
 * mma.sync wrapper (sm_89 and later), and the key order of the V tiles.
 *
 * Key order: an m16n8k32 A fragment holds, in thread (g = lane/4, t = lane%4),
 * the 4 consecutive k positions 4t..4t+3 (and 16+4t..), while the Q.K^T
 * accumulator it is made from holds columns 2t, 2t+1 of each 8-wide tile.
 * Instead of shuffling P between threads we permute the keys: position q of
 * a 32-key chunk holds key key_of_position(q), in both P and V. The sum over
 * keys does not care about their order. */
#pragma once

#include <cuda_fp8.h>
#include <stdint.h>

namespace sla2k {

__host__ __device__ __forceinline__ int key_of_position(int q)
{
    int chunk = q & ~31, p = q & 31;
    return chunk + (p >> 4) * 16 + ((p & 3) >> 1) * 8 + 2 * ((p & 15) >> 2) + (p & 1);
}

__device__ __forceinline__ uint8_t to_e4m3(float x)
{
    return static_cast<uint8_t>(__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3));
}

/* Four floats to four e4m3 bytes, x0 in the lowest byte. */
__device__ __forceinline__ uint32_t pack4_e4m3(float x0, float x1, float x2, float x3)
{
    uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(x0, x1), __NV_SATFINITE, __NV_E4M3);
    uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(x2, x3), __NV_SATFINITE, __NV_E4M3);
    return (lo & 0xffffu) | (hi << 16);
}

/* Two floats rounded to e4m3 (RNE, saturating) and returned as an fp16
 * pair, x0 in the low half: e4m3 values are exact in fp16. */
__device__ __forceinline__ uint32_t e4m3_pair_as_half2(float x0, float x1)
{
    const __nv_fp8x2_storage_t q = __nv_cvt_float2_to_fp8x2(make_float2(x0, x1), __NV_SATFINITE, __NV_E4M3);
    const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(q, __NV_E4M3);
    return (uint32_t)h.x | ((uint32_t)h.y << 16);
}

/* D = A(16x32 e4m3, row) * B(32x8 e4m3, col) + D, FP32 accumulation. */
__device__ __forceinline__ void mma_e4m3_16832(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
    asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    __trap(); /* the dispatcher never selects FP8 P.V below sm_89 */
#endif
}

} // namespace sla2k
