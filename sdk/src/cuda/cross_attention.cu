/* The DiT's cross-attention, softmax(q k^T / sqrt(d)) v per head, fused in
 * the manner of FlashAttention-2: the scores stay in registers.
 *
 * A prepass rounds k and v to bf16 once, head-major and padded with zero
 * rows to a whole number of key tiles ([heads][Lk_pad][d]: 3 MB at Wan's
 * 512 text positions, 12 heads, which stays in L2 for all the query
 * blocks that read it). Then one CTA of 4 warps takes 128 query rows of one
 * head (32 per warp, read once from float32 and rounded to bf16 into shared
 * memory) and walks the key tiles of 64: S = Q K^T with mma.sync
 * m16n8k16 bf16 (float32 accumulation), the online softmax in float32
 * (running max and sum per row), P rounded to bf16, O += P V with mma.sync.
 * K and V have one shared-memory buffer each, loaded with cp.async so that
 * V_t arrives while S_t is computed and K_{t+1} while P V_t is (the
 * FlashAttention-2 ordering: 68 KB at d = 128, so two CTAs fit an H100
 * multiprocessor and one fits the 99 KB of sm_89 and sm_120).
 *
 * Each warp takes 32 query rows (two m16 tiles), so that every K and V
 * fragment read from shared memory feeds two mma (252 registers a thread,
 * 4 warps a CTA, two CTAs a multiprocessor). Against 8 warps of 16 rows
 * this halves the shared-memory reads (H100, ncu: L1 71% -> 47% busy) but
 * gains only 0-6% (0.52 -> 0.49-0.53 ms at the 1.3B shape, same run): the
 * kernel is latency-bound (SM 42%, DRAM 22%, 1.44 and 1.98 GHz give the
 * same time). Two K/V stages and an L2 prefetch of the next wave's q
 * tiles measured no gain either, so neither is here.
 *
 * Precision: q, k, v and P carry 8 significant bits (2^-9 relative
 * rounding); scores, the softmax and every sum are float32. The sum that
 * normalises the output adds the same rounded P that multiplies V, so each
 * output row is an exact convex combination of the rounded v rows up to
 * float32 rounding. See tests/gpu/dit/check_cross_attention.c. */
#include "cross_attention.h"

#include "cuda_backend.h"
#include "kernels_int8/device_common.cuh"

#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>

namespace {

using sla2k::cp_async16;
using sla2k::cp_async_commit;
using sla2k::cp_async_wait;
using sla2k::ldmatrix_x4;
using sla2k::ldmatrix_x4_trans;
using sla2k::mma_bf16_16816;
using sla2k::pack_bf16x2;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kMTiles = 2;                    /* m16 tiles of query rows per warp */
constexpr int kRowsPerWarp = 16 * kMTiles;
constexpr int kBlockQ = kWarps * kRowsPerWarp;
constexpr int kBlockK = 64;
/* Shared-memory rows are padded by 16 bytes, so the 8 rows one ldmatrix
 * phase reads start 4 banks apart and cover all 32 banks. */
constexpr int kPadElems = 8;
constexpr int kPrepassThreads = 256;

template <int D>
struct Tile {
    static constexpr int stride = D + kPadElems; /* bf16 elements per shared-memory row */
    static constexpr size_t smem_bytes = (size_t)(kBlockQ + 2 * kBlockK) * stride * sizeof(__nv_bfloat16);
};

/* kb, vb [heads][Lk_pad][D] bf16 from k, v [Lk][heads][D] float32; rows
 * Lk..Lk_pad-1 are zero (so padded keys add 0 * finite to the output). One
 * thread converts 8 consecutive elements. */
template <int D>
__global__ void __launch_bounds__(kPrepassThreads)
    kv_to_bf16_kernel(const float *__restrict__ k, const float *__restrict__ v, int64_t Lk, int64_t Lk_pad,
                      int64_t heads, __nv_bfloat16 *__restrict__ kb, __nv_bfloat16 *__restrict__ vb)
{
    constexpr int kGroups = D / 8;
    const int64_t total = heads * Lk_pad * kGroups;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t group = i % kGroups, row = (i / kGroups) % Lk_pad, head = i / (kGroups * Lk_pad);
        uint4 kout = make_uint4(0, 0, 0, 0), vout = kout;
        if (row < Lk) {
            const int64_t src = (row * heads + head) * D + group * 8;
            const float4 k0 = *reinterpret_cast<const float4 *>(k + src);
            const float4 k1 = *reinterpret_cast<const float4 *>(k + src + 4);
            const float4 v0 = *reinterpret_cast<const float4 *>(v + src);
            const float4 v1 = *reinterpret_cast<const float4 *>(v + src + 4);
            kout = make_uint4(pack_bf16x2(k0.x, k0.y), pack_bf16x2(k0.z, k0.w), pack_bf16x2(k1.x, k1.y),
                              pack_bf16x2(k1.z, k1.w));
            vout = make_uint4(pack_bf16x2(v0.x, v0.y), pack_bf16x2(v0.z, v0.w), pack_bf16x2(v1.x, v1.y),
                              pack_bf16x2(v1.z, v1.w));
        }
        reinterpret_cast<uint4 *>(kb)[i] = kout;
        reinterpret_cast<uint4 *>(vb)[i] = vout;
    }
}

/* A 16-byte vector of q (8 bf16, or 4 floats rounded here) into shared memory as bf16. */
__device__ __forceinline__ void store_q_vec(__nv_bfloat16 *dst, uint4 x, const __nv_bfloat16 *)
{
    *reinterpret_cast<uint4 *>(dst) = x;
}
__device__ __forceinline__ void store_q_vec(__nv_bfloat16 *dst, uint4 x, const float *)
{
    const float4 f = *reinterpret_cast<const float4 *>(&x);
    *reinterpret_cast<uint2 *>(dst) = make_uint2(pack_bf16x2(f.x, f.y), pack_bf16x2(f.z, f.w));
}

/* The CTA's query rows [kBlockQ][D] (T: float or bf16) into shared memory as
 * bf16; rows past the end are zero. Read once: streaming loads keep them
 * from evicting the bf16 k and v from L2. */
template <int D, typename T>
__device__ __forceinline__ void load_q_tile(__nv_bfloat16 *sq, const T *q_block, int64_t rows_left,
                                            int64_t row_stride, int tid)
{
    constexpr int kPerVec = 16 / sizeof(T); /* elements per 16-byte load */
    constexpr int kVecsPerRow = D / kPerVec;
    constexpr int kVecs = kBlockQ * kVecsPerRow;
    constexpr int kBatch = 32 / kPerVec; /* 128 bytes in flight per thread */
    static_assert(kVecs % (kThreads * kBatch) == 0, "whole batches");
#pragma unroll
    for (int base = 0; base < kVecs; base += kThreads * kBatch) {
        uint4 x[kBatch];
#pragma unroll
        for (int b = 0; b < kBatch; b++) {
            const int i = base + b * kThreads + tid, row = i / kVecsPerRow, col = (i % kVecsPerRow) * kPerVec;
            x[b] = row < rows_left ? __ldcs(reinterpret_cast<const uint4 *>(q_block + row * row_stride + col))
                                   : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int b = 0; b < kBatch; b++) {
            const int i = base + b * kThreads + tid, row = i / kVecsPerRow, col = (i % kVecsPerRow) * kPerVec;
            store_q_vec(sq + row * Tile<D>::stride + col, x[b], q_block);
        }
    }
}

/* One key tile [kBlockK][D] of kb or vb into shared memory (asynchronous). */
template <int D>
__device__ __forceinline__ void load_kv_tile(__nv_bfloat16 *s, const __nv_bfloat16 *g, int tid)
{
    constexpr int kChunksPerRow = D / 8; /* 16-byte chunks */
    constexpr int kChunks = kBlockK * kChunksPerRow;
    static_assert(kChunks % kThreads == 0, "whole chunks per thread");
#pragma unroll
    for (int i = tid; i < kChunks; i += kThreads) {
        const int row = i / kChunksPerRow, col = (i % kChunksPerRow) * 8;
        cp_async16(s + row * Tile<D>::stride + col, g + row * D + col);
    }
    cp_async_commit();
}

/* s[mt][j] = the warp's query rows 16mt..16mt+15 against keys 8j..8j+7 of
 * the tile (accumulator layout: s[mt][j][0..1] row lane/4, [2..3] row
 * lane/4 + 8, keys 8j + 2 (lane%4) + {0,1}). */
template <int D>
__device__ __forceinline__ void tile_scores(float (&s)[kMTiles][kBlockK / 8][4], const __nv_bfloat16 *sq_warp,
                                            const __nv_bfloat16 *sk, int lane)
{
    constexpr int stride = Tile<D>::stride;
#pragma unroll
    for (int mt = 0; mt < kMTiles; mt++)
#pragma unroll
        for (int j = 0; j < kBlockK / 8; j++)
            s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.0f;
    /* ldmatrix addresses: A from rows lane%16, column half lane/16; B (K
     * rows are B's columns) from keys lane%8 + 8 (lane/16), column half (lane/8)%2. */
    const __nv_bfloat16 *a_row = sq_warp + (lane % 16) * stride + (lane / 16) * 8;
    const __nv_bfloat16 *b_row = sk + (lane % 8 + (lane / 16) * 8) * stride + ((lane / 8) % 2) * 8;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        uint32_t a[kMTiles][4];
#pragma unroll
        for (int mt = 0; mt < kMTiles; mt++)
            ldmatrix_x4(a[mt], a_row + mt * 16 * stride + kk * 16);
#pragma unroll
        for (int j = 0; j < kBlockK / 8; j += 2) {
            uint32_t b[4];
            ldmatrix_x4(b, b_row + j * 8 * stride + kk * 16);
#pragma unroll
            for (int mt = 0; mt < kMTiles; mt++) {
                mma_bf16_16816(s[mt][j], a[mt], b[0], b[1]);
                mma_bf16_16816(s[mt][j + 1], a[mt], b[2], b[3]);
            }
        }
    }
}

/* The online softmax over one tile for one m16 tile's two rows of this
 * thread (half 0: row lane/4, half 1: row lane/4 + 8): updates the running
 * max m (in score units) and sum l, rescales o, and returns P in bf16 as
 * the A operands of P V (p[kk] for keys 16kk..16kk+15). valid_keys <
 * kBlockK masks the tail. */
template <int D>
__device__ __forceinline__ void online_softmax(float (&s)[kBlockK / 8][4], int valid_keys, float scale_log2,
                                               float (&m)[2], float (&l)[2], float (&o)[D / 8][4],
                                               uint32_t (&p)[kBlockK / 16][4], int lane)
{
    if (valid_keys < kBlockK) {
#pragma unroll
        for (int j = 0; j < kBlockK / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                if (j * 8 + 2 * (lane % 4) + (e % 2) >= valid_keys)
                    s[j][e] = -INFINITY;
    }
#pragma unroll
    for (int half = 0; half < 2; half++) {
        float tile_max = -INFINITY;
#pragma unroll
        for (int j = 0; j < kBlockK / 8; j++)
            tile_max = fmaxf(tile_max, fmaxf(s[j][2 * half], s[j][2 * half + 1]));
        /* the four lanes of a quad hold one row */
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
        /* every tile has a valid key, so new_max is finite; exp2(-inf) = 0 on the first tile */
        const float new_max = fmaxf(m[half], tile_max);
        const float correction = exp2f((m[half] - new_max) * scale_log2);
        m[half] = new_max;
        l[half] *= correction;
#pragma unroll
        for (int n = 0; n < D / 8; n++)
            o[n][2 * half] *= correction, o[n][2 * half + 1] *= correction;
        const float offset = new_max * scale_log2;
#pragma unroll
        for (int j = 0; j < kBlockK / 8; j++) {
            const float p0 = exp2f(fmaf(s[j][2 * half], scale_log2, -offset));
            const float p1 = exp2f(fmaf(s[j][2 * half + 1], scale_log2, -offset));
            const uint32_t packed = pack_bf16x2(p0, p1);
            const __nv_bfloat162 rounded = *reinterpret_cast<const __nv_bfloat162 *>(&packed);
            l[half] += __low2float(rounded) + __high2float(rounded);
            /* A layout: a[0] row g keys 0-7 half, a[1] row g+8, a[2] row g keys 8-15, a[3] row g+8 */
            p[j / 2][(j % 2) * 2 + half] = packed;
        }
    }
}

/* o[mt] += P[mt] V over one tile. */
template <int D>
__device__ __forceinline__ void tile_pv(float (&o)[kMTiles][D / 8][4], const uint32_t (&p)[kMTiles][kBlockK / 16][4],
                                        const __nv_bfloat16 *sv, int lane)
{
    constexpr int stride = Tile<D>::stride;
    /* ldmatrix.trans: keys lane%8 + 8 ((lane/8)%2), columns 8 (lane/16) of each 16-column pair */
    const __nv_bfloat16 *b_row = sv + (lane % 8 + ((lane / 8) % 2) * 8) * stride + (lane / 16) * 8;
#pragma unroll
    for (int kk = 0; kk < kBlockK / 16; kk++) {
#pragma unroll
        for (int n = 0; n < D / 8; n += 2) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, b_row + kk * 16 * stride + n * 8);
#pragma unroll
            for (int mt = 0; mt < kMTiles; mt++) {
                mma_bf16_16816(o[mt][n], p[mt][kk], b[0], b[1]);
                mma_bf16_16816(o[mt][n + 1], p[mt][kk], b[2], b[3]);
            }
        }
    }
}

__device__ __forceinline__ void store_pair(float *dst, float a, float b) { __stcs(reinterpret_cast<float2 *>(dst), make_float2(a, b)); }
__device__ __forceinline__ void store_pair(__nv_bfloat16 *dst, float a, float b)
{
    __stcs(reinterpret_cast<unsigned *>(dst), pack_bf16x2(a, b));
}

/* The normalised output rows of one m16 tile (rows relative to the CTA's first). */
template <int D, typename T>
__device__ __forceinline__ void store_rows(T *out_block, int64_t rows_left, int64_t row_stride, int first_row,
                                           int lane, const float (&o)[D / 8][4], const float (&l)[2])
{
#pragma unroll
    for (int half = 0; half < 2; half++) {
        float sum = l[half];
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        const float inv = 1.0f / sum; /* sum >= 1: the row's max key contributes exp2(0) */
        const int row = first_row + lane / 4 + 8 * half;
        if (row >= rows_left)
            continue;
        T *dst = out_block + row * row_stride + 2 * (lane % 4);
#pragma unroll
        for (int n = 0; n < D / 8; n++)
            store_pair(dst + n * 8, o[n][2 * half] * inv, o[n][2 * half + 1] * inv);
    }
}

/* grid (query blocks, heads); see the top of the file. T: q's and out's
 * type, float or bf16. */
template <int D, typename T>
__global__ void __launch_bounds__(kThreads, 2)
    cross_attention_kernel(const T *__restrict__ q, const __nv_bfloat16 *__restrict__ kb,
                           const __nv_bfloat16 *__restrict__ vb, T *__restrict__ out, int64_t Lq, int Lk,
                           int Lk_pad, float scale_log2)
{
    extern __shared__ uint4 smem[];
    __nv_bfloat16 *sq = reinterpret_cast<__nv_bfloat16 *>(smem);
    __nv_bfloat16 *sk = sq + kBlockQ * Tile<D>::stride;
    __nv_bfloat16 *sv = sk + kBlockK * Tile<D>::stride;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int head = blockIdx.y;
    const int64_t row0 = (int64_t)blockIdx.x * kBlockQ, row_stride = (int64_t)gridDim.y * D;
    const int64_t tile_elems = (int64_t)kBlockK * D;
    const __nv_bfloat16 *kh = kb + (int64_t)head * Lk_pad * D, *vh = vb + (int64_t)head * Lk_pad * D;

    load_kv_tile<D>(sk, kh, tid);
    load_q_tile<D, T>(sq, q + row0 * row_stride + head * D, Lq - row0, row_stride, tid);

    float o[kMTiles][D / 8][4];
    float m[kMTiles][2], l[kMTiles][2];
#pragma unroll
    for (int mt = 0; mt < kMTiles; mt++) {
#pragma unroll
        for (int n = 0; n < D / 8; n++)
            o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0.0f;
        m[mt][0] = m[mt][1] = -INFINITY;
        l[mt][0] = l[mt][1] = 0.0f;
    }
    const __nv_bfloat16 *sq_warp = sq + warp * kRowsPerWarp * Tile<D>::stride;
    const int num_tiles = Lk_pad / kBlockK;
    for (int t = 0; t < num_tiles; t++) {
        cp_async_wait<0>(); /* K_t is here (and, at t = 0, every thread's Q stores are done) */
        __syncthreads();    /* ... for all threads; and every warp is done with V_{t-1} */
        load_kv_tile<D>(sv, vh + t * tile_elems, tid);
        float s[kMTiles][kBlockK / 8][4];
        tile_scores<D>(s, sq_warp, sk, lane);
        uint32_t p[kMTiles][kBlockK / 16][4];
#pragma unroll
        for (int mt = 0; mt < kMTiles; mt++)
            online_softmax<D>(s[mt], Lk - t * kBlockK, scale_log2, m[mt], l[mt], o[mt], p[mt], lane);
        cp_async_wait<0>(); /* V_t is here */
        __syncthreads();    /* ... for all threads; and every warp is done with K_t */
        if (t + 1 < num_tiles)
            load_kv_tile<D>(sk, kh + (t + 1) * tile_elems, tid);
        tile_pv<D>(o, p, sv, lane);
    }
#pragma unroll
    for (int mt = 0; mt < kMTiles; mt++)
        store_rows<D, T>(out + row0 * row_stride + head * D, Lq - row0, row_stride, warp * kRowsPerWarp + mt * 16, lane,
                      o[mt], l[mt]);
}

bool aligned16(const void *p)
{
    return (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}

template <int D, typename T>
sla2_status launch(sla2_context *ctx, sla2_cuda_state *st, const T *q, int64_t Lq, const float *k, const float *v,
                   int64_t Lk, int64_t heads, T *out)
{
    const size_t smem_bytes = Tile<D>::smem_bytes;
    if (smem_bytes > st->smem_optin_bytes)
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED,
                         "cross-attention: needs %zu bytes of shared memory per block, the device has %zu",
                         smem_bytes, st->smem_optin_bytes);
    const int64_t Lk_pad = (Lk + kBlockK - 1) / kBlockK * kBlockK;
    const size_t kv_elems = (size_t)(heads * Lk_pad * D);
    __nv_bfloat16 *kv = nullptr;
    SLA2_CUDA_TRY(ctx, sla2_cuda_scratch(st, 2 * kv_elems * sizeof(__nv_bfloat16), (void **)&kv));
    const int64_t groups = (int64_t)kv_elems / 8;
    const int64_t prepass_blocks = (groups + kPrepassThreads - 1) / kPrepassThreads;
    kv_to_bf16_kernel<D><<<(unsigned)(prepass_blocks < 65536 ? prepass_blocks : 65536), kPrepassThreads, 0,
                           st->stream>>>(k, v, Lk, Lk_pad, heads, kv, kv + kv_elems);
    sla2_status s = SLA2_CUDA_CHECK(ctx, cudaGetLastError());
    if (s == SLA2_OK)
        s = SLA2_CUDA_CHECK(ctx, cudaFuncSetAttribute(cross_attention_kernel<D, T>,
                                                      cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_bytes));
    if (s == SLA2_OK) {
        const dim3 grid((unsigned)((Lq + kBlockQ - 1) / kBlockQ), (unsigned)heads);
        cross_attention_kernel<D, T><<<grid, kThreads, smem_bytes, st->stream>>>(
            q, kv, kv + kv_elems, out, Lq, (int)Lk, (int)Lk_pad, (float)(M_LOG2E / sqrt((double)D)));
        s = SLA2_CUDA_CHECK(ctx, cudaGetLastError());
    }
    /* stream-ordered: freed once the kernels are done, no wait here */
    const sla2_status freed = SLA2_CUDA_CHECK(ctx, cudaFreeAsync(kv, st->stream));
    return s != SLA2_OK ? s : freed;
}

} // namespace

sla2_status cuda_cross_attention(sla2_context *ctx, sla2_cuda_state *st, const void *q, int64_t Lq, const float *k,
                                 const float *v, int64_t Lk, int64_t heads, int64_t head_dim, void *out, bool bf16)
{
    if (Lq <= 0 || heads <= 0)
        return SLA2_OK;
    if (Lk <= 0)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "cross-attention: no keys");
    if (head_dim != 64 && head_dim != 128)
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "cross-attention: head_dim %lld (the fused kernel has 64 and 128)",
                         (long long)head_dim);
    if (heads > 65535 || Lk > (1 << 30) || (Lq + kBlockQ - 1) / kBlockQ > INT32_MAX)
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "cross-attention: %lld queries, %lld keys, %lld heads: too large "
                         "for one launch", (long long)Lq, (long long)Lk, (long long)heads);
    if (!aligned16(q) || !aligned16(k) || !aligned16(v) || !aligned16(out))
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "cross-attention: q, k, v and out must be 16-byte aligned");
    if (bf16) {
        const auto *qb = static_cast<const __nv_bfloat16 *>(q);
        auto *ob = static_cast<__nv_bfloat16 *>(out);
        return head_dim == 64 ? launch<64>(ctx, st, qb, Lq, k, v, Lk, heads, ob)
                              : launch<128>(ctx, st, qb, Lq, k, v, Lk, heads, ob);
    }
    const auto *qf = static_cast<const float *>(q);
    auto *of = static_cast<float *>(out);
    return head_dim == 64 ? launch<64>(ctx, st, qf, Lq, k, v, Lk, heads, of)
                          : launch<128>(ctx, st, qf, Lq, k, v, Lk, heads, of);
}

extern "C" sla2_status sla2_cuda_cross_attention_for_test(sla2_context *ctx, const void *q, int64_t Lq, const float *k,
                                                          const float *v, int64_t Lk, int64_t heads, int64_t head_dim,
                                                          void *out, int bf16)
{
    sla2_cuda_state *st = static_cast<sla2_cuda_state *>(ctx ? ctx->backend_state : nullptr);
    if (!ctx || ctx->backend != SLA2_BACKEND_CUDA || !st)
        return ctx ? sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "cross-attention: needs a CUDA context")
                   : SLA2_ERR_INVALID_VALUE;
    SLA2_CUDA_TRY(ctx, cudaSetDevice(st->device));
    return cuda_cross_attention(ctx, st, q, Lq, k, v, Lk, heads, head_dim, out, bf16 != 0);
}
