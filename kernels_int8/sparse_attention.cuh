/* The block-sparse SLA2 kernel: one CTA per (query block, batch*head), one
 * warp per 16 query rows. For each kept key block j, in ascending order:
 *   S = Q.K^T (INT8 mma with per-block scales, or FP16 mma in mode NONE),
 *   online softmax, O += P.V (FP8 e4m3 mma on sm_89+, or FP16 mma).
 * The prologue quantises Q and computes alpha; the epilogue mixes
 * O = alpha O_s + (1 - alpha) O_l, with O_l the linear branch's output that
 * linear_out (sdk/src/cuda/linear_branch.cu) wrote into `out` before this
 * kernel ran, and writes the output in its dtype. SLA v1 writes O_s to
 * o_sparse instead, for its projection (v1_mix). */
#pragma once

#include <cfloat>

#include "kernels_fp8/fp8_common.cuh"
#include "kernels_int8/device_common.cuh"
#include "kernels_int8/feature_map.cuh"

namespace sla2k {

/* Shared-memory layout, identical on host and device. Rows are padded by
 * 16 bytes so that ldmatrix's 8 rows hit distinct banks. */
struct SparseSmem {
    int q_row_bytes, k_row_bytes, h_row_bytes, v8_row_bytes;
    int q_bytes, k_bytes, v_bytes;
    int off_q, off_stage, off_k, off_v, stage_bytes, stages, total;

    /* stages: 1, or 2 to load the next kept block while computing this one. */
    __host__ __device__ SparseSmem(int D, int qk, int pv, int block_q, int stages)
    {
        int q_elem = qk == SLA2K_QK_INT8 ? 1 : 2;
        int parts = qk == SLA2K_QK_F16X3 ? 2 : 1;
        q_row_bytes = D * q_elem + 16;
        k_row_bytes = q_row_bytes;
        h_row_bytes = D * 2 + 16;
        v8_row_bytes = SLA2K_BLOCK_K + 16;
        q_bytes = parts * block_q * q_row_bytes;
        k_bytes = parts * SLA2K_BLOCK_K * k_row_bytes;
        v_bytes = pv == SLA2K_PV_FP8 ? D * v8_row_bytes : SLA2K_BLOCK_K * h_row_bytes;
        off_q = 0;
        off_stage = off_q + q_bytes;
        off_k = off_stage;
        off_v = off_k + k_bytes;
        stage_bytes = k_bytes + v_bytes;
        this->stages = stages;
        total = off_stage + stages * stage_bytes;
    }
};

/* Copies rows x row_bytes (a multiple of 16) from contiguous global memory
 * into shared rows of dst_row_bytes. */
template <int ROWS, int ROW_BYTES>
__device__ __forceinline__ void copy_tile_async(char *dst, int dst_row_bytes, const void *src)
{
    constexpr int kChunksPerRow = ROW_BYTES / 16; /* a power of two: shifts, not divisions */
    const char *s = static_cast<const char *>(src);
    for (int c = threadIdx.x; c < ROWS * kChunksPerRow; c += blockDim.x) {
        const int r = c / kChunksPerRow, col = c % kChunksPerRow;
        cp_async16(dst + r * dst_row_bytes + col * 16, s + (size_t)r * ROW_BYTES + col * 16);
    }
}

/* A fragments (16 rows x 16 bytes per k step) of the warp's rows. */
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const char *base, int row_bytes, int lane, int byte_col)
{
    int row = (lane & 7) + ((lane >> 3) & 1) * 8;
    ldmatrix_x4(a, base + row * row_bytes + byte_col + (lane >> 4) * 16);
}

/* B fragments of two 8-row tiles (rows n0..n0+15) stored [n][k]. */
__device__ __forceinline__ void load_b_pair(uint32_t (&b)[4], const char *base, int row_bytes, int lane, int byte_col)
{
    int row = (lane & 7) + (lane >> 4) * 8;
    ldmatrix_x4(b, base + row * row_bytes + byte_col + ((lane >> 3) & 1) * 16);
}

/* B fragments of two 8-col tiles of a [k][n] fp16 tile (V), via .trans. */
__device__ __forceinline__ void load_b_pair_trans(uint32_t (&b)[4], const char *base, int row_bytes, int lane,
                                                  int k0, int n0)
{
    int row = k0 + (lane & 7) + ((lane >> 3) & 1) * 8;
    ldmatrix_x4_trans(b, base + row * row_bytes + (n0 + (lane >> 4) * 8) * 2);
}

/* acc(16x64) += A(16 x D, fp16 rows) . B(64 x D, fp16 rows)^T */
template <int D>
__device__ __forceinline__ void gemm_f16_nt(float (&acc)[8][4], const char *a_base, const char *b_base,
                                            int row_bytes, int lane)
{
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
        uint32_t a[4];
        load_a(a, a_base, row_bytes, lane, ks * 32);
#pragma unroll
        for (int np = 0; np < 4; ++np) {
            uint32_t b[4];
            load_b_pair(b, b_base + np * 16 * row_bytes, row_bytes, lane, ks * 32);
            mma_f16_16816(acc[2 * np], a, b[0], b[1]);
            mma_f16_16816(acc[2 * np + 1], a, b[2], b[3]);
        }
    }
}

/* P (accumulator layout, 16 rows x 64 keys per warp) as the A fragment of
 * key chunk c: 16 keys in fp16 (m16n8k16), or 32 in e4m3 (m16n8k32, keys in
 * the order of fp8_common.cuh). wgmma's register A operand has the same
 * layout per warp. */
__device__ __forceinline__ void p_fragment_f16(uint32_t (&a)[4], const float (&p)[8][4], int c)
{
    a[0] = pack_half2(p[2 * c][0], p[2 * c][1]);
    a[1] = pack_half2(p[2 * c][2], p[2 * c][3]);
    a[2] = pack_half2(p[2 * c + 1][0], p[2 * c + 1][1]);
    a[3] = pack_half2(p[2 * c + 1][2], p[2 * c + 1][3]);
}
__device__ __forceinline__ void p_fragment_e4m3(uint32_t (&a)[4], const float (&p)[8][4], int c)
{
    a[0] = pack4_e4m3(p[4 * c][0], p[4 * c][1], p[4 * c + 1][0], p[4 * c + 1][1]);
    a[1] = pack4_e4m3(p[4 * c][2], p[4 * c][3], p[4 * c + 1][2], p[4 * c + 1][3]);
    a[2] = pack4_e4m3(p[4 * c + 2][0], p[4 * c + 2][1], p[4 * c + 3][0], p[4 * c + 3][1]);
    a[3] = pack4_e4m3(p[4 * c + 2][2], p[4 * c + 2][3], p[4 * c + 3][2], p[4 * c + 3][3]);
}

/* out(16 x D) += f16(P)(16x64, accumulator layout) . V(64 x D fp16) */
template <int D>
__device__ __forceinline__ void gemm_pv_f16(float (&out)[D / 8][4], const float (&p)[8][4], const char *v_base,
                                            int row_bytes, int lane)
{
#pragma unroll
    for (int c = 0; c < 4; ++c) {
        uint32_t a[4];
        p_fragment_f16(a, p, c);
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
            uint32_t b[4];
            load_b_pair_trans(b, v_base, row_bytes, lane, c * 16, dp * 16);
            mma_f16_16816(out[2 * dp], a, b[0], b[1]);
            mma_f16_16816(out[2 * dp + 1], a, b[2], b[3]);
        }
    }
}

/* out(16 x D) += e4m3(P)(16x64) . V8(64 x D), V8 stored [d][position]; P
 * comes already scaled by 448 (the softmax's exponent carries log2 448). */
template <int D>
__device__ __forceinline__ void gemm_pv_fp8(float (&out)[D / 8][4], const float (&p)[8][4], const char *v_base,
                                            int row_bytes, int lane)
{
#pragma unroll
    for (int c = 0; c < 2; ++c) {
        uint32_t a[4];
        p_fragment_e4m3(a, p, c);
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
            uint32_t b[4];
            load_b_pair(b, v_base + dp * 16 * row_bytes, row_bytes, lane, c * 32);
            mma_e4m3_16832(out[2 * dp], a, b[0], b[1]);
            mma_e4m3_16832(out[2 * dp + 1], a, b[2], b[3]);
        }
    }
}

/* The FP8 product computed exactly on FP16 tensor cores: e4m3(P) (P
 * scaled by 448 as in gemm_pv_fp8) converted to fp16 (exact), times V8
 * stored as fp16 (exact). */
template <int D>
__device__ __forceinline__ void gemm_pv_fp8_as_f16(float (&out)[D / 8][4], const float (&p)[8][4],
                                                   const char *v_base, int row_bytes, int lane)
{
#pragma unroll
    for (int c = 0; c < 4; ++c) {
        uint32_t a[4];
        a[0] = e4m3_pair_as_half2(p[2 * c][0], p[2 * c][1]);
        a[1] = e4m3_pair_as_half2(p[2 * c][2], p[2 * c][3]);
        a[2] = e4m3_pair_as_half2(p[2 * c + 1][0], p[2 * c + 1][1]);
        a[3] = e4m3_pair_as_half2(p[2 * c + 1][2], p[2 * c + 1][3]);
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
            uint32_t b[4];
            load_b_pair_trans(b, v_base, row_bytes, lane, c * 16, dp * 16);
            mma_f16_16816(out[2 * dp], a, b[0], b[1]);
            mma_f16_16816(out[2 * dp + 1], a, b[2], b[3]);
        }
    }
}

__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* The scores of one kept block, before the softmax: PV_F16 scales them here
 * (the one-fma form below measured slower for those kernels) and returns
 * factor 1; keys past seq_len become -inf. Thread (g, t) holds columns
 * n * 8 + 2t + (e & 1) of the accumulator layout. */
template <int PV>
__device__ __forceinline__ float mask_and_scale(float (&s)[8][4], float factor, int key0, int seq_len, int t)
{
    if (PV == SLA2K_PV_F16) {
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e)
                s[n][e] *= factor;
        factor = 1.0f;
    }
    if (key0 + SLA2K_BLOCK_K > seq_len) {
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e)
                if (key0 + n * 8 + 2 * t + (e & 1) >= seq_len)
                    s[n][e] = -INFINITY;
    }
    return factor;
}

/* The online softmax's start for a thread's two rows: a zero output
 * accumulator (D / 8 tiles of four), running maxima -inf, sums 0. */
template <int D>
__device__ __forceinline__ void online_softmax_start(float (&o)[D / 8][4], float (&m_run)[2], float (&l_run)[2])
{
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e)
            o[n][e] = 0.0f;
    m_run[0] = m_run[1] = -INFINITY;
    l_run[0] = l_run[1] = 0.0f;
}

/* The kept key blocks of query block qblock of head bh, in the router's order. */
__device__ __forceinline__ const int *kept_blocks_of(const sla2k_problem &p, int bh, int qblock)
{
    return p.kept_blocks + ((size_t)bh * p.num_q_blocks + qblock) * p.kept;
}

/* Online softmax in base 2 over one block's scores: rows g (e = 0, 1) and
 * g + 8 (e = 2, 3); P replaces the scores, O is rescaled by the correction.
 * FP8 P.V: the max is taken before the scaling (factor > 0 keeps the
 * order), so that each score costs one fma, p = 2^(s * factor - bias), and
 * P * 448 (e4m3's range) costs nothing: log2 448 comes off the bias, and l
 * carries the same factor, which the epilogue's division cancels. */
template <int D, int PV>
__device__ __forceinline__ void online_softmax(float (&s)[8][4], float factor, float (&m_run)[2], float (&l_run)[2],
                                               float (&o)[D / 8][4])
{
    constexpr float kLog2Fp8Max = 8.807354922057604f; /* log2(448) */
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        float mx = -INFINITY;
#pragma unroll
        for (int n = 0; n < 8; ++n)
            mx = fmaxf(mx, fmaxf(s[n][2 * half], s[n][2 * half + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m_run[half], mx * factor);
        const float corr = exp2f(m_run[half] - m_new);
        m_run[half] = m_new;
        const float bias = PV == SLA2K_PV_F16 ? m_new : m_new - kLog2Fp8Max;
        float sum = 0.0f;
#pragma unroll
        for (int n = 0; n < 8; ++n) {
            s[n][2 * half] = exp2f(fmaf(s[n][2 * half], factor, -bias));
            s[n][2 * half + 1] = exp2f(fmaf(s[n][2 * half + 1], factor, -bias));
            sum += s[n][2 * half] + s[n][2 * half + 1];
        }
        l_run[half] = l_run[half] * corr + sum;
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
            o[n][2 * half] *= corr;
            o[n][2 * half + 1] *= corr;
        }
    }
}

/* Epilogue: normalise, mix with O_l (already in `out`), store. Warp `warp`
 * of the CTA holds rows warp * 16 + g and + 8 of the query block, in the
 * accumulator layout. */
template <int D, int PV>
__device__ __forceinline__ void sparse_epilogue(const sla2k_problem &p, float (&o)[D / 8][4], float (&l_run)[2],
                                                int bh, int row0, int nrows, int warp, int lane)
{
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        l_run[half] += __shfl_xor_sync(0xffffffffu, l_run[half], 1);
        l_run[half] += __shfl_xor_sync(0xffffffffu, l_run[half], 2);
    }
    const float inv_l[2] = {1.0f / l_run[0], 1.0f / l_run[1]}; /* one division per row, not per value */
    const int b = bh / p.heads, h = bh % p.heads;
    const int r_local[2] = {warp * 16 + g, warp * 16 + g + 8};
    const bool mix_linear = p.use_linear && !p.sla_v1;
    /* alpha: per row from the query pass, or sigma(a_h) per head */
    float alpha[2];
#pragma unroll
    for (int half = 0; half < 2; ++half)
        alpha[half] = p.alpha_kind == SLA2K_ALPHA_PER_ROW
                          ? p.row_alpha[(size_t)bh * p.seq_len + min(row0 + r_local[half], p.seq_len - 1)]
                          : p.alpha_kind == SLA2K_ALPHA_PER_HEAD ? sigmoidf(p.alpha[bh % p.heads]) : 1.0f;
    /* V's per-channel scale (FP8 P.V; P's is in l) and 1 / l */
    auto scaled = [&](int n, int half) {
        const int d = n * 8 + 2 * t;
        float os[2] = {o[n][2 * half], o[n][2 * half + 1]};
#pragma unroll
        for (int u = 0; u < 2; ++u) {
            if (PV != SLA2K_PV_F16)
                os[u] *= p.v_absmax[(size_t)bh * D + d + u] * (1.0f / SLA2K_FP8_MAX);
            os[u] *= inv_l[half];
        }
        return make_float2(os[0], os[1]);
    };
    if (p.out_quad && !p.sla_v1) { /* four consecutive channels per access, whole sectors per row */
#pragma unroll
        for (int n = 0; n < D / 8; n += 2)
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                int c;
                const float4 os = quad_of_tiles(scaled(n, half), scaled(n + 1, half), lane, &c);
                const int r = r_local[half];
                if (r >= nrows)
                    continue;
                const int64_t at = (int64_t)b * p.out_stride_b + (int64_t)h * p.out_stride_h +
                                   (row0 + r) * p.out_stride_l + n * 8 + c;
                const float a = alpha[half];
                const float4 ol = mix_linear ? load_out4(p.out, at, p.out_dtype) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                store_out4(p.out, at, p.out_dtype,
                           make_float4(a * os.x + (1.0f - a) * ol.x, a * os.y + (1.0f - a) * ol.y,
                                       a * os.z + (1.0f - a) * ol.z, a * os.w + (1.0f - a) * ol.w));
            }
        return;
    }
    /* Else a thread holds channels d, d + 1 of its two rows: one paired
     * access each where out allows it. */
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int r = r_local[half];
            if (r >= nrows)
                continue;
            const int d = n * 8 + 2 * t;
            const float2 scaled_pair = scaled(n, half);
            const float os[2] = {scaled_pair.x, scaled_pair.y};
            const int64_t row = row0 + r;
            if (p.sla_v1) {
                *reinterpret_cast<float2 *>(p.o_sparse + ((size_t)bh * p.seq_len + row) * D + d) =
                    make_float2(os[0], os[1]);
                continue;
            }
            const int64_t at = (int64_t)b * p.out_stride_b + (int64_t)h * p.out_stride_h + row * p.out_stride_l;
            const float a = alpha[half];
            if (p.out_paired) {
                float2 ol = mix_linear ? load_out2(p.out, at + d, p.out_dtype) : make_float2(0.0f, 0.0f);
                store_out2(p.out, at + d, p.out_dtype,
                           make_float2(a * os[0] + (1.0f - a) * ol.x, a * os[1] + (1.0f - a) * ol.y));
            } else {
#pragma unroll
                for (int u = 0; u < 2; ++u) {
                    const int64_t at_u = at + (int64_t)(d + u) * p.out_stride_d;
                    const float ol = mix_linear ? load_out(p.out, at_u, p.out_dtype) : 0.0f;
                    store_out(p.out, at_u, p.out_dtype, a * os[u] + (1.0f - a) * ol);
                }
            }
        }
}

/* The kept blocks' loads, at kept block `it` (after a barrier: every warp
 * is done with the buffer refilled here). issue(i, stage) loads block i
 * into a stage buffer as one cp.async group; with two stages the next
 * block's load is issued before waiting for this one's. Returns the stage
 * that holds block it. */
template <typename Issue>
__device__ __forceinline__ int load_kept_block(int it, int kept, bool two_stages, Issue &issue)
{
    if (!two_stages) {
        issue(it, 0);
        cp_async_wait<0>();
        return 0;
    }
    if (it + 1 < kept) {
        issue(it + 1, (it + 1) & 1);
        cp_async_wait<1>();
    } else {
        cp_async_wait<0>();
    }
    return it & 1;
}

/* Prologue: the Q block's operand tile(s). INT8: the query pass quantised
 * it (q8, q_scale): one cp.async group, which the first kept block's wait
 * covers. FP16: rows converted here (F32 inputs as two fp16 parts). */
template <int D, int QK>
__device__ void sparse_prologue(const sla2k_problem &p, char *smem, const SparseSmem &L, int bh, int qblock,
                                int nrows)
{
    if (QK == SLA2K_QK_INT8) {
        const int8_t *q8 = p.q8 + ((size_t)bh * p.num_q_blocks + qblock) * p.block_q * D;
        for (int half = 0; half < p.block_q / 64; ++half)
            copy_tile_async<64, D>(smem + L.off_q + half * 64 * L.q_row_bytes, L.q_row_bytes, q8 + half * 64 * D);
        cp_async_commit();
        return;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t q_off = (int64_t)(bh / p.heads) * p.q.stride_b + (int64_t)(bh % p.heads) * p.q.stride_h;
    const int row0 = qblock * p.block_q;
#pragma unroll 1
    for (int rr = 0; rr < 16; ++rr) {
        const int r = warp * 16 + rr;
        float xr[1][D / 32];
        load_rows(xr, p.q.data, p.in_dtype,
                  [&](int) { return r < nrows ? q_off + (int64_t)(row0 + r) * p.q.stride_l : (int64_t)-1; }, lane);
        char *qrow = smem + L.off_q + r * L.q_row_bytes;
#pragma unroll
        for (int c = 0; c < D / 32; ++c) {
            const int d = lane + 32 * c;
            const __half hi = __float2half_rn(xr[0][c]);
            reinterpret_cast<__half *>(qrow)[d] = hi;
            if (QK == SLA2K_QK_F16X3) {
                char *qlo = smem + L.off_q + (p.block_q + r) * L.q_row_bytes;
                reinterpret_cast<__half *>(qlo)[d] = __float2half_rn(xr[0][c] - __half2float(hi));
            }
        }
    }
}

template <int D, int QK, int PV>
__device__ __forceinline__ void sparse_attention_body(const sla2k_problem &p)
{
    extern __shared__ __align__(16) char smem[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int t = lane & 3;
    const int qblock = blockIdx.x, bh = blockIdx.y;
    const int row0 = qblock * p.block_q;
    const int nrows = min(p.block_q, p.seq_len - row0);
    const SparseSmem L(D, QK, PV, p.block_q, p.stages);

    sparse_prologue<D, QK>(p, smem, L, bh, qblock, nrows);
    const float scale_q = QK == SLA2K_QK_INT8 ? p.q_scale[(size_t)bh * p.num_q_blocks + qblock] : 0.0f;
    /* exp(x) = exp2(x log2 e): the scores are scaled by log2 e once, and the
     * softmax runs on exp2f (one MUFU.EX2) instead of expf's longer sequence */
    const float scale_log2 = p.softmax_scale * 1.4426950408889634f;

    const char *sq = smem + L.off_q + warp * 16 * L.q_row_bytes;
    const char *sq_lo = smem + L.off_q + (p.block_q + warp * 16) * L.q_row_bytes;

    float o[D / 8][4], m_run[2], l_run[2];
    online_softmax_start<D>(o, m_run, l_run);
    const int *kept = kept_blocks_of(p, bh, qblock);
    const size_t head_rows = (size_t)bh * p.padded_len;

    /* Loads key block kept[it] into stage buffer `stage` (one cp.async group). */
    auto issue = [&](int it, int stage) {
        const int j = kept[it];
        const size_t row = head_rows + (size_t)j * SLA2K_BLOCK_K;
        char *sk = smem + L.off_k + stage * L.stage_bytes, *sv = smem + L.off_v + stage * L.stage_bytes;
        if (QK == SLA2K_QK_INT8) {
            copy_tile_async<SLA2K_BLOCK_K, D>(sk, L.k_row_bytes, p.k8 + row * D);
        } else {
            copy_tile_async<SLA2K_BLOCK_K, 2 * D>(sk, L.k_row_bytes, p.k16_hi + row * D);
            if (QK == SLA2K_QK_F16X3)
                copy_tile_async<SLA2K_BLOCK_K, 2 * D>(sk + SLA2K_BLOCK_K * L.k_row_bytes, L.k_row_bytes,
                                                      p.k16_lo + row * D);
        }
        if (PV == SLA2K_PV_FP8)
            copy_tile_async<D, SLA2K_BLOCK_K>(sv, L.v8_row_bytes,
                                              p.v8t + ((size_t)bh * p.num_k_blocks + j) * D * SLA2K_BLOCK_K);
        else if (PV == SLA2K_PV_FP8_F16)
            copy_tile_async<SLA2K_BLOCK_K, 2 * D>(sv, L.h_row_bytes, p.v8h + row * D);
        else
            copy_tile_async<SLA2K_BLOCK_K, 2 * D>(sv, L.h_row_bytes, p.v16 + row * D);
        cp_async_commit();
    };

    const bool two_stages = p.stages == 2;
    if (two_stages && p.kept > 0)
        issue(0, 0);
    for (int it = 0; it < p.kept; ++it) {
        const int j = kept[it];
        __syncthreads(); /* every warp is done with the buffer refilled next */
        const int stage = load_kept_block(it, p.kept, two_stages, issue);
        __syncthreads();
        const char *sk = smem + L.off_k + stage * L.stage_bytes, *sv = smem + L.off_v + stage * L.stage_bytes;

        /* S = Q.K^T, the base-2 scores being s * factor (log2 e folded in) */
        float s[8][4];
        float factor = fmaxf(scale_log2, FLT_MIN);
        if (QK == SLA2K_QK_INT8) {
            /* biased accumulators: the float sums with one fadd each (exact_arith.h) */
            int acc[8][4];
#pragma unroll
            for (int n = 0; n < 8; ++n)
                acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = SLA2K_SUM_BIAS;
#pragma unroll
            for (int ks = 0; ks < D / 32; ++ks) {
                uint32_t a[4];
                load_a(a, sq, L.q_row_bytes, lane, ks * 32);
#pragma unroll
                for (int np = 0; np < 4; ++np) {
                    uint32_t b[4];
                    load_b_pair(b, sk + np * 16 * L.k_row_bytes, L.k_row_bytes, lane, ks * 32);
                    mma_s8_16832(acc[2 * np], a, b[0], b[1]);
                    mma_s8_16832(acc[2 * np + 1], a, b[2], b[3]);
                }
            }
            /* at least FLT_MIN, so that a masked key's -inf never meets 0 */
            factor = fmaxf(scale_q * p.k_scale[(size_t)bh * p.num_k_blocks + j] * scale_log2, FLT_MIN);
#pragma unroll
            for (int n = 0; n < 8; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e)
                    s[n][e] = sla2k_biased_sum_to_float(acc[n][e]);
        } else {
#pragma unroll
            for (int n = 0; n < 8; ++n)
                s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
            gemm_f16_nt<D>(s, sq, sk, L.q_row_bytes, lane);
            if (QK == SLA2K_QK_F16X3) {
                gemm_f16_nt<D>(s, sq, sk + SLA2K_BLOCK_K * L.k_row_bytes, L.q_row_bytes, lane);
                gemm_f16_nt<D>(s, sq_lo, sk, L.q_row_bytes, lane);
            }
        }
        factor = mask_and_scale<PV>(s, factor, j * SLA2K_BLOCK_K, p.seq_len, t);
        online_softmax<D, PV>(s, factor, m_run, l_run, o);
        if (PV == SLA2K_PV_FP8)
            gemm_pv_fp8<D>(o, s, sv, L.v8_row_bytes, lane);
        else if (PV == SLA2K_PV_FP8_F16)
            gemm_pv_fp8_as_f16<D>(o, s, sv, L.h_row_bytes, lane);
        else
            gemm_pv_f16<D>(o, s, sv, L.h_row_bytes, lane);
    }

    sparse_epilogue<D, PV>(p, o, l_run, bh, row0, nrows, warp, lane);
}

/* The dispatcher uses PV_FP8_F16 only on sm_90 and PV_FP8 only on sm_89+;
 * other targets get a trap instead of the body, which keeps the build short.
 * Two CTAs per SM (at most 128 registers; a few dozen bytes spill at
 * head_dim 128), so that one CTA's prologue and epilogue overlap another's
 * main loop; F32 inputs' three-product kernel keeps one (it would spill ~1 KB). */
template <int D, int QK, int PV>
__global__ void __launch_bounds__(256, QK == SLA2K_QK_F16X3 ? 1 : 2) sparse_attention_kernel(const sla2k_problem p)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ != 900
    if constexpr (PV == SLA2K_PV_FP8_F16)
        __trap();
    else
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 890
    if constexpr (PV == SLA2K_PV_FP8)
        __trap();
    else
#endif
        sparse_attention_body<D, QK, PV>(p);
}

/* One CTA per (query block, batch * head), two threads per query row (a
 * warp per 16 rows, or a warpgroup per 64), `smem` bytes of dynamic shared
 * memory: the launch of both sparse kernels. */
template <typename Kernel>
cudaError_t launch_per_query_block(Kernel kernel, const sla2k_problem &p, cudaStream_t stream, size_t smem)
{
    cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (err != cudaSuccess)
        return err;
    dim3 grid(p.num_q_blocks, p.batch * p.heads);
    kernel<<<grid, p.block_q * 2, smem, stream>>>(p);
    return cudaGetLastError();
}

template <int D, int QK, int PV>
cudaError_t launch_sparse(const sla2k_problem &p, cudaStream_t stream, size_t smem)
{
    return launch_per_query_block(sparse_attention_kernel<D, QK, PV>, p, stream, smem);
}

} // namespace sla2k

#define SLA2K_DEFINE_SPARSE(D, QK, PV)                                                      \
    cudaError_t sla2k_sparse_##D##_##QK##_##PV(const sla2k_problem &p, cudaStream_t stream, \
                                               size_t smem)                                  \
    {                                                                                        \
        return sla2k::launch_sparse<D, QK, PV>(p, stream, smem);                             \
    }
