/* The block-sparse SLA2 kernel on Hopper's warpgroup MMA (sm_90a): the
 * same computation as sparse_attention.cuh (whose softmax and epilogue it
 * shares), one warpgroup per 64 query rows. Per kept key block:
 *   S = Q.K^T with Q and K read by wgmma straight from shared memory (INT8,
 *     or FP16 in mode NONE),
 *   online softmax on S in registers,
 *   O += P.V with P from registers and V from shared memory: FP8 e4m3 (V8
 *     transposed, keys permuted as in fp8_common.cuh) or FP16 (V as stored,
 *     [key][d], swizzled, read through the transpose flag).
 * Used for every mode but F32 inputs' (whose three-product Q.K^T stays on
 * mma.sync).
 * wgmma replaces mma.sync's per-warp ldmatrix and 16x8 products, which
 * were most of the instructions the mma.sync kernel issued. */
#pragma once

#include "kernels_int8/sparse_attention.cuh"
#include "kernels_int8/wgmma.cuh"

namespace sla2k {

/* Shared memory: the Q tile, then `stages` buffers of one key block's K
 * and V, in wgmma.cuh's swizzled layouts, from a 1024-byte aligned start
 * (1 KB more). */
struct WgmmaSmem {
    int q_chunks, k_bytes, v_bytes, off_stage, stage_bytes, total;

    __host__ __device__ WgmmaSmem(int D, int qk, int pv, int block_q, int stages)
    {
        const int elem = qk == SLA2K_QK_INT8 ? 1 : 2;
        q_chunks = D * elem / 16;
        k_bytes = SLA2K_BLOCK_K * D * elem;
        v_bytes = SLA2K_BLOCK_K * D * (pv == SLA2K_PV_FP8 ? 1 : 2);
        off_stage = block_q * D * elem;
        stage_bytes = k_bytes + v_bytes;
        total = off_stage + stages * stage_bytes + 1024;
    }
};

/* Mode NONE's prologue: Q rows to fp16 in the core-matrix layout (rows past
 * the end are zeros). */
template <int D>
__device__ void wgmma_prologue_f16(const sla2k_problem &p, char *q_tile, int bh, int row0, int nrows)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t q_off = (int64_t)(bh / p.heads) * p.q.stride_b + (int64_t)(bh % p.heads) * p.q.stride_h;
#pragma unroll 1
    for (int rr = 0; rr < 16; ++rr) {
        const int r = warp * 16 + rr;
        float xr[1][D / 32];
        load_rows(xr, p.q.data, p.in_dtype,
                  [&](int) { return r < nrows ? q_off + (int64_t)(row0 + r) * p.q.stride_l : (int64_t)-1; }, lane);
#pragma unroll
        for (int c = 0; c < D / 32; ++c) {
            const int d = lane + 32 * c;
            *reinterpret_cast<__half *>(q_tile + (r >> 6) * 64 * 2 * D + swz_offset<128>(r & 63, d / 8, 64) +
                                        (d % 8) * 2) =
                __float2half_rn(xr[0][c]);
        }
    }
}

template <int D, int QK, int PV>
__device__ __forceinline__ void sparse_wgmma_body(const sla2k_problem &p)
{
    static_assert(QK == SLA2K_QK_INT8 || QK == SLA2K_QK_F16, "wgmma kernel: INT8 or FP16 Q.K^T");
    static_assert(PV == SLA2K_PV_FP8 || PV == SLA2K_PV_F16, "wgmma kernel: e4m3 or FP16 P.V");
    extern __shared__ __align__(16) char smem_raw[];
    char *const smem = align_1024(smem_raw);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wg = warp >> 2;
    const int t = lane & 3;
    const int qblock = blockIdx.x, bh = blockIdx.y;
    const int row0 = qblock * p.block_q;
    const int nrows = min(p.block_q, p.seq_len - row0);
    const WgmmaSmem L(D, QK, PV, p.block_q, p.stages);
    constexpr int kRowBytes = D * (QK == SLA2K_QK_INT8 ? 1 : 2); /* a Q or K row */
    constexpr int kAtom = kRowBytes >= 128 ? 128 : 64;             /* its swizzle */
    /* Q (each warpgroup's 64 rows) and K are 64-row swizzled tiles: a K step
     * of 32 bytes (k32 INT8, k16 FP16) moves inside a slab, or to the next */
    auto k_step = [](int ks) { return (ks * 32 / kAtom) * 64 * kAtom + ks * 32 % kAtom; };

    if (QK == SLA2K_QK_INT8) {
        const int8_t *q8 = p.q8 + ((size_t)bh * p.num_q_blocks + qblock) * p.block_q * D;
        for (int half = 0; half < p.block_q / 64; ++half)
            copy_tile_swz_async<64, D, kAtom>(smem + half * 64 * D, q8 + half * 64 * D);
        cp_async_commit();
    } else {
        wgmma_prologue_f16<D>(p, smem, bh, row0, nrows);
    }
    const float scale_q = QK == SLA2K_QK_INT8 ? p.q_scale[(size_t)bh * p.num_q_blocks + qblock] : 0.0f;
    const float scale_log2 = p.softmax_scale * 1.4426950408889634f; /* base-2 softmax */
    const uint64_t q_desc = wgmma_desc_swz<kAtom>(smem + wg * 64 * kRowBytes, 64);

    float o[D / 8][4], m_run[2], l_run[2];
    online_softmax_start<D>(o, m_run, l_run);
    const int *kept = kept_blocks_of(p, bh, qblock);
    const size_t head_rows = (size_t)bh * p.padded_len;

    auto issue = [&](int it, int stage) {
        const int j = kept[it];
        const size_t row = head_rows + (size_t)j * SLA2K_BLOCK_K;
        char *sk = smem + L.off_stage + stage * L.stage_bytes, *sv = sk + L.k_bytes;
        if (QK == SLA2K_QK_INT8)
            copy_tile_swz_async<SLA2K_BLOCK_K, D, kAtom>(sk, p.k8 + row * D);
        else
            copy_tile_swz_async<SLA2K_BLOCK_K, 2 * D, kAtom>(sk, p.k16_hi + row * D);
        if (PV == SLA2K_PV_FP8)
            copy_tile_swz_async<D, SLA2K_BLOCK_K, 64>(sv, p.v8t + ((size_t)bh * p.num_k_blocks + j) * D * SLA2K_BLOCK_K);
        else
            copy_tile_swz_async<SLA2K_BLOCK_K, 2 * D, 128>(sv, p.v16 + row * D);
        cp_async_commit();
    };

    const bool two_stages = p.stages == 2;
    if (two_stages && p.kept > 0)
        issue(0, 0);
    for (int it = 0; it < p.kept; ++it) {
        const int j = kept[it];
        __syncthreads(); /* every warpgroup's wgmma is done with the buffer refilled next */
        const int stage = load_kept_block(it, p.kept, two_stages, issue);
        fence_proxy_async();
        __syncthreads();
        const char *sk = smem + L.off_stage + stage * L.stage_bytes, *sv = sk + L.k_bytes;
        const uint64_t k_desc = wgmma_desc_swz<kAtom>(sk, SLA2K_BLOCK_K);

        float s[8][4];
        float factor = fmaxf(scale_log2, FLT_MIN);
        if (QK == SLA2K_QK_INT8) {
            int acc[8][4];
#pragma unroll
            for (int n = 0; n < 8; ++n)
                acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = SLA2K_SUM_BIAS;
            wgmma_fence();
#pragma unroll
            for (int ks = 0; ks < D / 32; ++ks)
                wgmma_s8_n64(acc, desc_advance(q_desc, k_step(ks)), desc_advance(k_desc, k_step(ks)));
            wgmma_commit();
            /* at least FLT_MIN, so that a masked key's -inf never meets 0 */
            factor = fmaxf(scale_q * p.k_scale[(size_t)bh * p.num_k_blocks + j] * scale_log2, FLT_MIN);
            wgmma_wait<0>();
            fence_acc(acc);
#pragma unroll
            for (int n = 0; n < 8; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e)
                    s[n][e] = sla2k_biased_sum_to_float(acc[n][e]);
        } else {
#pragma unroll
            for (int n = 0; n < 8; ++n)
                s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
            wgmma_fence();
#pragma unroll
            for (int ks = 0; ks < D / 16; ++ks)
                wgmma_f16_n64(s, desc_advance(q_desc, k_step(ks)), desc_advance(k_desc, k_step(ks)));
            wgmma_commit();
            wgmma_wait<0>();
            fence_acc(s);
        }
        factor = mask_and_scale<PV>(s, factor, j * SLA2K_BLOCK_K, p.seq_len, t);
        online_softmax<D, PV>(s, factor, m_run, l_run, o);

        if (PV == SLA2K_PV_FP8) {
            /* V8 tile [d][position]: K-major, 64-byte rows; 32 positions a step */
            uint32_t a[2][4];
            p_fragment_e4m3(a[0], s, 0);
            p_fragment_e4m3(a[1], s, 1);
            const uint64_t v_desc = wgmma_desc_swz<64>(sv, D);
            wgmma_fence();
            wgmma_e4m3_rs(o, a[0], v_desc);
            wgmma_e4m3_rs(o, a[1], desc_advance(v_desc, 32));
        } else {
            /* V tile [key][d]: N-major, swizzled; a K step of 16 keys is 2048 bytes */
            uint32_t a[4][4];
#pragma unroll
            for (int c = 0; c < 4; ++c)
                p_fragment_f16(a[c], s, c);
            const uint64_t v_desc = wgmma_desc_swz<128>(sv, SLA2K_BLOCK_K);
            wgmma_fence();
#pragma unroll
            for (int c = 0; c < 4; ++c)
                wgmma_f16_rs_tn(o, a[c], desc_advance(v_desc, c * 2048));
        }
        wgmma_commit();
        wgmma_wait<0>();
        fence_acc(o);
    }
    sparse_epilogue<D, PV>(p, o, l_run, bh, row0, nrows, warp, lane);
}

/* Compiled for sm_90a only; elsewhere a trap that the dispatcher never
 * reaches (sla2k_wgmma_available). Two CTAs per SM, as the mma.sync kernel. */
template <int D, int QK, int PV>
__global__ void __launch_bounds__(256, 2) sparse_wgmma_kernel(const sla2k_problem p)
{
#ifdef SLA2K_WGMMA_DEVICE
    sparse_wgmma_body<D, QK, PV>(p);
#else
    __trap();
#endif
}

template <int D, int QK, int PV>
cudaError_t launch_sparse_wgmma(const sla2k_problem &p, cudaStream_t stream, size_t smem)
{
    return launch_per_query_block(sparse_wgmma_kernel<D, QK, PV>, p, stream, smem);
}

} // namespace sla2k

#define SLA2K_DEFINE_SPARSE_WGMMA(D, QK, PV)                                                      \
    cudaError_t sla2k_sparse_wgmma_##D##_##QK##_##PV(const sla2k_problem &p, cudaStream_t stream, \
                                                     size_t smem)                                  \
    {                                                                                              \
        return sla2k::launch_sparse_wgmma<D, QK, PV>(p, stream, smem);                             \
    }
