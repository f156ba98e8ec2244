/* Hopper warpgroup MMA (wgmma.mma_async, sm_90a only): the shared-memory
 * tile layout its descriptors read, the descriptors, and the few shapes the
 * sparse kernel uses. Everything here compiles to a trap on other targets;
 * the dispatcher selects these kernels only where sla2k_wgmma_available()
 * says the sm_90a code is in the binary.
 *
 * Tiles are swizzled (swz_offset), the layouts Hopper's wgmma reads at full
 * speed: the same M/N-major operands in the plain core-matrix layout made
 * linear_out 1.04 ms against 0.64 swizzled (0.75 on mma.sync). A K-major
 * tile (Q, K, V8) has rows = M or N with K along the row: 128-byte rows
 * use the 128-byte swizzle, 64-byte rows (INT8 at D = 64, V8's 64
 * positions) the 64-byte one. A 16-bit tile stored M/N-major ([key][d],
 * read as phi(K)^T or V) has rows = keys, the 128-byte swizzle, and the
 * instruction's transpose flag. */
#pragma once

#include <stdint.h>

#include "kernels_int8/device_common.cuh"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SLA2K_WGMMA_DEVICE 1
#endif

namespace sla2k {

/* Swizzled tiles: rows of ATOM bytes (128 or 64) per slab, slab s (the
 * 16-byte chunks s * ATOM/16.. of each row) at s * rows * ATOM; within a
 * row the chunks are XOR-permuted by the row (Hopper's 128- and 64-byte
 * swizzles: chunk bits ^= address bits 7-9, or 7-8). */
template <int ATOM>
__host__ __device__ __forceinline__ int swz_offset(int r, int c, int rows)
{
    constexpr int kPerAtom = ATOM / 16, kShift = ATOM == 128 ? 0 : 1;
    return (c / kPerAtom) * rows * ATOM + r * ATOM + (((c % kPerAtom) ^ ((r >> kShift) & (kPerAtom - 1))) << 4);
}

/* ROWS rows of ROW_BYTES into the swizzled layout; the threads that fill
 * one 128-byte line write it whole (no bank conflicts). */
template <int ROWS, int ROW_BYTES, int ATOM>
__device__ __forceinline__ void copy_tile_swz_async(char *dst, const void *src)
{
    constexpr int kChunks = ROW_BYTES / 16;
    const char *s = static_cast<const char *>(src);
    for (int i = threadIdx.x; i < ROWS * kChunks; i += blockDim.x) {
        const int r = i / kChunks, c = i % kChunks;
        cp_async16(dst + swz_offset<ATOM>(r, c, ROWS), s + (size_t)r * ROW_BYTES + c * 16);
    }
}

/* The first 1024-byte aligned address at or after p (swizzled tiles start
 * at a multiple of their 8-row period). */
__device__ __forceinline__ char *align_1024(char *p)
{
    const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(p));
    return p + ((1024u - (addr & 1023u)) & 1023u);
}

/* Matrix descriptor: start address, leading and stride byte offsets (all
 * in 16-byte units), swizzle mode 0 (none). */
__device__ __forceinline__ uint64_t wgmma_desc(const void *smem, uint32_t leading_bytes, uint32_t stride_bytes)
{
    const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    return (uint64_t)((addr & 0x3FFFFu) >> 4) | ((uint64_t)(leading_bytes >> 4) << 16) |
           ((uint64_t)(stride_bytes >> 4) << 32);
}

/* A swizzled tile of `rows` rows: K-major (rows = M or N) or M/N-major
 * (rows = K); leading offset = the next slab, stride offset = the next 8
 * rows, swizzle mode 1 (128 bytes) or 2 (64). A K step inside a slab
 * advances the start address (the hardware swizzles the full address). */
template <int ATOM>
__device__ __forceinline__ uint64_t wgmma_desc_swz(const void *smem, int rows)
{
    return wgmma_desc(smem, rows * ATOM, 8 * ATOM) | ((ATOM == 128 ? 1ull : 2ull) << 62);
}

/* The same descriptor `bytes` further on (a K step inside the tile). */
__device__ __forceinline__ uint64_t desc_advance(uint64_t desc, uint32_t bytes) { return desc + (bytes >> 4); }

#ifdef SLA2K_WGMMA_DEVICE
#define SLA2K_WG_ASM(...) asm volatile(__VA_ARGS__)
#else
#define SLA2K_WG_ASM(...) __trap()
#endif

__device__ __forceinline__ void wgmma_fence() { SLA2K_WG_ASM("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { SLA2K_WG_ASM("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait()
{
    SLA2K_WG_ASM("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/* cp.async and st.shared write through the generic proxy, wgmma reads
 * through the async one: each writer fences before the barrier. */
__device__ __forceinline__ void fence_proxy_async() { SLA2K_WG_ASM("fence.proxy.async.shared::cta;\n" ::: "memory"); }

/* Keeps the compiler from moving accumulator reads above wgmma_wait. */
template <int N>
__device__ __forceinline__ void fence_acc(float (&d)[N][4])
{
#pragma unroll
    for (int n = 0; n < N; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e)
            asm volatile("" : "+f"(d[n][e])::"memory");
}
template <int N>
__device__ __forceinline__ void fence_acc(int (&d)[N][4])
{
#pragma unroll
    for (int n = 0; n < N; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e)
            asm volatile("" : "+r"(d[n][e])::"memory");
}

/* Accumulator operands: d[n][e] is row g (e < 2) or g + 8 of the warp's 16
 * rows, column n * 8 + 2t + (e & 1), the mma.sync m16n8 layout. */
#define SLA2K_D4(c, d, n) c(d[n][0]), c(d[n][1]), c(d[n][2]), c(d[n][3])
#define SLA2K_D32(c, d)                                                                                  \
    SLA2K_D4(c, d, 0), SLA2K_D4(c, d, 1), SLA2K_D4(c, d, 2), SLA2K_D4(c, d, 3), SLA2K_D4(c, d, 4), \
        SLA2K_D4(c, d, 5), SLA2K_D4(c, d, 6), SLA2K_D4(c, d, 7)
#define SLA2K_D32_HI(c, d)                                                                                   \
    SLA2K_D4(c, d, 8), SLA2K_D4(c, d, 9), SLA2K_D4(c, d, 10), SLA2K_D4(c, d, 11), SLA2K_D4(c, d, 12),    \
        SLA2K_D4(c, d, 13), SLA2K_D4(c, d, 14), SLA2K_D4(c, d, 15)
#define SLA2K_F(x) "+f"(x)
#define SLA2K_R(x) "+r"(x)
#define SLA2K_REGS32                                                                           \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
    "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define SLA2K_REGS64                                                                                    \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, "        \
    "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, " \
    "%39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, " \
    "%58, %59, %60, %61, %62, %63}"

/* S(64x64, s32) += A(64x32 s8) . B(64x32 s8)^T, both K-major in shared memory. */
__device__ __forceinline__ void wgmma_s8_n64(int (&d)[8][4], uint64_t a, uint64_t b)
{
    SLA2K_WG_ASM("wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8 " SLA2K_REGS32 ", %32, %33, 1;\n"
                 : SLA2K_D32(SLA2K_R, d)
                 : "l"(a), "l"(b));
}

/* S(64x64, f32) += A(64x16 f16) . B(64x16 f16)^T, both K-major in shared memory. */
__device__ __forceinline__ void wgmma_f16_n64(float (&d)[8][4], uint64_t a, uint64_t b)
{
    SLA2K_WG_ASM("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " SLA2K_REGS32 ", %32, %33, 1, 1, 1, 0, 0;\n"
                 : SLA2K_D32(SLA2K_F, d)
                 : "l"(a), "l"(b));
}

/* O(64xN, f32) += P(64x32 e4m3, registers: the m16n8k32 A fragment of each
 * warp's 16 rows) . B(32xN e4m3, K-major in shared memory). */
__device__ __forceinline__ void wgmma_e4m3_rs(float (&d)[8][4], const uint32_t (&a)[4], uint64_t b)
{
    SLA2K_WG_ASM("wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 " SLA2K_REGS32
                 ", {%32, %33, %34, %35}, %36, 1, 1, 1;\n"
                 : SLA2K_D32(SLA2K_F, d)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
__device__ __forceinline__ void wgmma_e4m3_rs(float (&d)[16][4], const uint32_t (&a)[4], uint64_t b)
{
    SLA2K_WG_ASM("wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 " SLA2K_REGS64
                 ", {%64, %65, %66, %67}, %68, 1, 1, 1;\n"
                 : SLA2K_D32(SLA2K_F, d), SLA2K_D32_HI(SLA2K_F, d)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}

/* O(64xN, f32) += P(64x16 f16, registers: the m16n8k16 A fragment) .
 * B(16xN f16, N-major in shared memory: the transpose flag). */
__device__ __forceinline__ void wgmma_f16_rs_tn(float (&d)[8][4], const uint32_t (&a)[4], uint64_t b)
{
    SLA2K_WG_ASM("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " SLA2K_REGS32
                 ", {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"
                 : SLA2K_D32(SLA2K_F, d)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
__device__ __forceinline__ void wgmma_f16_rs_tn(float (&d)[16][4], const uint32_t (&a)[4], uint64_t b)
{
    SLA2K_WG_ASM("wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 " SLA2K_REGS64
                 ", {%64, %65, %66, %67}, %68, 1, 1, 1, 1;\n"
                 : SLA2K_D32(SLA2K_F, d), SLA2K_D32_HI(SLA2K_F, d)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}

/* D(64x128, f32) += A(64x16 f16) . B(16x128 f16), both from shared memory
 * and both stored M/N-major (the transpose flags): the linear branch's
 * phi(K_j)^T V_j with phi(K) and V stored [key][d]. */
__device__ __forceinline__ void wgmma_f16_ss_tt(float (&d)[16][4], uint64_t a, uint64_t b)
{
    SLA2K_WG_ASM("wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 " SLA2K_REGS64 ", %64, %65, 1, 1, 1, 1, 1;\n"
                 : SLA2K_D32(SLA2K_F, d), SLA2K_D32_HI(SLA2K_F, d)
                 : "l"(a), "l"(b));
}

#undef SLA2K_WG_ASM

} // namespace sla2k
