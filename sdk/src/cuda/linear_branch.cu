/* The linear branch (ARCHITECTURE.md section 2) on the GPU:
 *   S_total = phi(K)^T V per (batch, head) through cuBLASLt (fp16 inputs,
 *   fp32 accumulation and output);
 *   linear_out, one CTA per query block: S_rem = S_total - sum over the
 *   block's kept key blocks of phi(K_j)^T V_j (fp32, on FP16 mma.sync),
 *   z_rem likewise, then O_l = phi(Q).S_rem / (phi(Q).z_rem + eps);
 *   SLA v1's output projection O = O_s + W O_l + b.
 * linear_out runs before the sparse kernel and writes O_l into `out`, where
 * the sparse kernel's epilogue mixes it in (one rounding to out's dtype).
 * Out of the sparse kernel, the linear part's tiles and accumulators no
 * longer cost that kernel registers, shared memory and occupancy. */
#include "cuda_backend.h"

#include "kernels_int8/device_common.cuh"
#include "kernels_int8/feature_map.cuh"
#include "kernels_int8/sparse_attention.cuh"
#include "kernels_int8/wgmma.cuh"

namespace {

using namespace sla2k;

constexpr int kLinearThreads = 256, kLinearWarps = kLinearThreads / 32;

/* Rows of the fp16 tiles (phi(K), V16, phi(Q), S_rem's halves), padded by
 * 16 bytes so that ldmatrix's 8 rows hit distinct banks. A stage holds the
 * phi(K) and V16 tiles of a key block. */
__host__ __device__ constexpr int tile_row_bytes(int D) { return 2 * D + 16; }
__host__ __device__ constexpr int linear_stage_bytes(int D) { return 2 * SLA2K_BLOCK_K * tile_row_bytes(D); }

/* A fragments (rows m0..m0+15, k0..k0+15) of the transpose of a [k][m]
 * fp16 tile (phi(K) read as phi(K)^T), via .trans. */
__device__ __forceinline__ void load_a_trans(uint32_t (&a)[4], const char *base, int row_bytes, int lane, int k0,
                                             int m0)
{
    int row = k0 + (lane & 7) + (lane >> 4) * 8;
    ldmatrix_x4_trans(a, base + row * row_bytes + (m0 + ((lane >> 3) & 1) * 8) * 2);
}

/* acc(16 x 8 N_TILES) += phi(K)^T(rows d0.., 64 keys) . V(64 keys, columns
 * from e_tile0 * 8); phi(K) and V stored [key][d]. */
template <int N_TILES>
__device__ __forceinline__ void kept_sum_tile(float (&acc)[N_TILES][4], const char *phik, const char *v,
                                              int row_bytes, int lane, int d0, int e_tile0)
{
#pragma unroll
    for (int ks = 0; ks < SLA2K_BLOCK_K / 16; ++ks) {
        uint32_t a[4];
        load_a_trans(a, phik, row_bytes, lane, ks * 16, d0);
        uint32_t b[N_TILES / 2][4]; /* all of the step's B fragments in flight before the mma */
#pragma unroll
        for (int np = 0; np < N_TILES / 2; ++np)
            load_b_pair_trans(b[np], v, row_bytes, lane, ks * 16, (e_tile0 + 2 * np) * 8);
#pragma unroll
        for (int np = 0; np < N_TILES / 2; ++np) {
            mma_f16_16816(acc[2 * np], a, b[np][0], b[np][1]);
            mma_f16_16816(acc[2 * np + 1], a, b[np][2], b[np][3]);
        }
    }
}

/* The same product on Hopper's wgmma (D = 128): warpgroup wg takes rows d
 * wg*64.. of phi(K)^T (A, M-major) against all 128 columns of V (B,
 * N-major), both stored [key][d] in wgmma.cuh's swizzled layout (channels
 * wg*64.. are the tile's slice wg; 16 keys are 2048 bytes). The
 * accumulators have KeptSumSplit<128>'s layout. Commits one wgmma group. */
__device__ __forceinline__ void kept_sum_wgmma(float (&acc)[16][4], const char *phik, const char *v, int wg)
{
    const uint64_t a = wgmma_desc_swz<128>(phik + wg * SLA2K_BLOCK_K * 128, SLA2K_BLOCK_K);
    const uint64_t b = wgmma_desc_swz<128>(v, SLA2K_BLOCK_K);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < SLA2K_BLOCK_K / 16; ++ks)
        wgmma_f16_ss_tt(acc, desc_advance(a, ks * 2048), desc_advance(b, ks * 2048));
    wgmma_commit();
}

/* S_kept over the CTA's 8 warps: warp w owns rows d (phi's channel)
 * d0..d0+15 and N_TILES 8-column tiles of e (V's channel) from e_tile0. */
template <int D>
struct KeptSumSplit {
    static constexpr int N_TILES = D == 128 ? D / 8 : D / 16;
    int d0, e_tile0;
    __device__ explicit KeptSumSplit(int warp)
        : d0((warp % (D / 16)) * 16), e_tile0(D == 128 ? 0 : (warp / (D / 16)) * N_TILES)
    {
    }
};

/* Shared memory: `stages` stages of [phi(K) | V16] tiles (1 KB more for
 * the wgmma kernel's alignment); after the loop
 * stage 0 takes 64 columns of S_rem as fp16 hi/lo and stage 1 phi(Q)
 * (block_q rows: at most one stage). */
static size_t linear_out_smem(int D, int stages)
{
    return (size_t)stages * linear_stage_bytes(D) + 1024; /* + wgmma's alignment */
}

/* WGMMA (D = 128 on sm_90a): the kept blocks' sum on wgmma, its tiles in the
 * core-matrix layout inside the same stage buffers. */
template <int D, bool WGMMA>
__global__ void __launch_bounds__(kLinearThreads, 2) linear_out_kernel(const sla2k_problem p, int stages)
{
    extern __shared__ __align__(16) char smem_raw[];
    __shared__ float z_rem[D], row_qz[128], red[kLinearWarps];
    constexpr int RB = tile_row_bytes(D), kStage = linear_stage_bytes(D);
    /* wgmma: swizzled tiles, 1024-byte aligned (stages are multiples of 1024) */
    constexpr int kWgmmaV = SLA2K_BLOCK_K * 2 * D; /* the V tile after phi(K)'s */
    char *const smem = WGMMA ? align_1024(smem_raw) : smem_raw;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int qblock = blockIdx.x, bh = blockIdx.y;
    const int row0 = qblock * p.block_q, nrows = min(p.block_q, p.seq_len - row0);
    const int kept = p.subtract_kept ? p.kept : 0; /* SLA v1: O_l over all keys */
    const int *list = kept_blocks_of(p, bh, qblock);
    const size_t head_rows = (size_t)bh * p.padded_len;

    /* S_kept = sum of phi(K_j)^T V_j and z_kept over the kept blocks, with
     * stages - 1 blocks in flight. Every step commits one cp.async group
     * (empty past the list), so that one wait depth serves the whole loop. */
    auto issue = [&](int it) {
        if (it < kept) {
            const size_t row = head_rows + (size_t)list[it] * SLA2K_BLOCK_K;
            char *st = smem + (it % stages) * kStage;
            if (WGMMA) {
                copy_tile_swz_async<SLA2K_BLOCK_K, 2 * D, 128>(st, p.phi_k + row * D);
                copy_tile_swz_async<SLA2K_BLOCK_K, 2 * D, 128>(st + kWgmmaV, p.v16 + row * D);
            } else {
                copy_tile_async<SLA2K_BLOCK_K, 2 * D>(st, RB, p.phi_k + row * D);
                copy_tile_async<SLA2K_BLOCK_K, 2 * D>(st + SLA2K_BLOCK_K * RB, RB, p.v16 + row * D);
            }
        }
        cp_async_commit();
    };
    for (int it = 0; it < stages - 1; ++it)
        issue(it);
    const KeptSumSplit<D> split(warp);
    constexpr int NT = KeptSumSplit<D>::N_TILES;
    float acc[NT][4];
#pragma unroll
    for (int n = 0; n < NT; ++n)
        acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
    float z_kept = 0.0f;
    for (int it = 0; it < kept; ++it) {
        if (stages == 3)
            cp_async_wait<1>();
        else
            cp_async_wait<0>();
        if constexpr (WGMMA) {
            wgmma_wait<0>(); /* block it - 1's products, before its stage is refilled */
            fence_proxy_async();
        }
        __syncthreads(); /* block it has landed; every warp is done with block it - 1 */
        issue(it + stages - 1); /* into block it - 1's stage */
        if (threadIdx.x < D) /* its latency hides behind the block's mma */
            z_kept += p.phi_k_block_sum[((size_t)bh * p.num_k_blocks + list[it]) * D + threadIdx.x];
        const char *st = smem + (it % stages) * kStage;
        if constexpr (WGMMA)
            kept_sum_wgmma(acc, st, st + kWgmmaV, warp >> 2);
        else
            kept_sum_tile<NT>(acc, st, st + SLA2K_BLOCK_K * RB, RB, lane, split.d0, split.e_tile0);
    }
    cp_async_wait<0>();
    if constexpr (WGMMA) {
        wgmma_wait<0>();
        fence_acc(acc);
    }
    if (threadIdx.x < D)
        z_rem[threadIdx.x] = p.phi_k_sum[(size_t)bh * D + threadIdx.x] - z_kept;
    __syncthreads(); /* the stages are free; z_rem is complete */

    /* phi(Q) (fp16, padded rows 0) into stage 1, eight of the warp's rows in
     * flight at once, and phi(q).z_rem per row from the rounded values, as
     * the GEMM below sees them. */
    char *sphiq = smem + kStage;
    const int b = bh / p.heads, h = bh % p.heads;
    const int64_t q_off = (int64_t)b * p.q.stride_b + (int64_t)h * p.q.stride_h;
    const int rows_per_warp = p.block_q / kLinearWarps;
#pragma unroll 1
    for (int first = 0; first < rows_per_warp; first += 8) {
        float x[8][D / 32];
        load_rows(x, p.q.data, p.in_dtype, [&](int rr) {
            const int r = warp * rows_per_warp + first + rr;
            return r < nrows ? q_off + (int64_t)(row0 + r) * p.q.stride_l : (int64_t)-1;
        }, lane);
#pragma unroll
        for (int rr = 0; rr < 8; ++rr) {
            const int r = warp * rows_per_warp + first + rr;
            float phi[D / 32];
            feature_map_row(phi, x[rr], p.feature_map);
            __half *prow = reinterpret_cast<__half *>(sphiq + r * RB);
            float qz = 0.0f;
#pragma unroll
            for (int c = 0; c < D / 32; ++c) {
                const __half ph = __float2half_rn(r < nrows ? phi[c] : 0.0f);
                prow[lane + 32 * c] = ph;
                qz += __half2float(ph) * z_rem[lane + 32 * c];
            }
            qz = warp_sum(qz);
            if (lane == 0)
                row_qz[r] = qz;
        }
    }

    /* S_rem = S_total - S_kept, and a power-of-two scale that keeps it in
     * fp16's range for the split into two fp16 halves. */
    const float *s_total = p.s_total + (size_t)bh * D * D; /* [e][d] */
    float mx = 0.0f;
#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int d = split.d0 + g + (e >> 1) * 8, col = (split.e_tile0 + n) * 8 + 2 * t + (e & 1);
            acc[n][e] = s_total[(size_t)col * D + d] - acc[n][e];
            mx = fmaxf(mx, fabsf(acc[n][e]));
        }
    mx = warp_max(mx);
    if (lane == 0)
        red[warp] = mx;
    __syncthreads(); /* also: phi(Q) and row_qz are complete */
    mx = 0.0f;
#pragma unroll
    for (int w = 0; w < kLinearWarps; ++w)
        mx = fmaxf(mx, red[w]);
    const float s_scale = pow2_scale_for(mx, 14), s_unscale = 1.0f / s_scale;

    /* O_l = phi(Q).S_rem / (phi(q).z_rem + eps), 64 columns e at a time:
     * S_rem's columns as fp16 hi/lo rows [e][d] in stage 0. A warp takes 16
     * rows and, with block_q 64, half of the chunk's columns. */
    char *ss_hi = smem, *ss_lo = smem + 64 * RB;
    const int row_tiles = p.block_q / 16, col_groups = kLinearWarps / row_tiles;
    const int rt = warp % row_tiles, cg = warp / row_tiles;
    const int np_count = 4 / col_groups, np0 = cg * np_count;
#pragma unroll /* compile-time chunk: the S_rem writes below select their tiles statically */
    for (int c = 0; c < D / 64; ++c) {
        __syncthreads(); /* the previous chunk is read */
#pragma unroll
        for (int n = 0; n < NT; ++n)
            if ((split.e_tile0 + n) / 8 == c)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int d = split.d0 + g + (e >> 1) * 8, col = (split.e_tile0 + n) * 8 + 2 * t + (e & 1);
                    const float x = acc[n][e] * s_scale;
                    const __half hi = __float2half_rn(x);
                    const int off = (col - 64 * c) * RB + d * 2;
                    *reinterpret_cast<__half *>(ss_hi + off) = hi;
                    *reinterpret_cast<__half *>(ss_lo + off) = __float2half_rn(x - __half2float(hi));
                }
        __syncthreads();
        const char *a_base = sphiq + rt * 16 * RB;
        const int r_local[2] = {rt * 16 + g, rt * 16 + g + 8};
        float inv_den[2]; /* with S_rem's unscaling */
#pragma unroll
        for (int half = 0; half < 2; ++half)
            inv_den[half] = s_unscale / (row_qz[r_local[half]] + 1e-6f);
#pragma unroll 1
        for (int np = np0; np < np0 + np_count; ++np) {
            float num[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
            for (int ks = 0; ks < D / 16; ++ks) {
                uint32_t a[4], b_hi[4], b_lo[4];
                load_a(a, a_base, RB, lane, ks * 32);
                load_b_pair(b_hi, ss_hi + np * 16 * RB, RB, lane, ks * 32);
                load_b_pair(b_lo, ss_lo + np * 16 * RB, RB, lane, ks * 32);
                mma_f16_16816(num[0], a, b_hi[0], b_hi[1]);
                mma_f16_16816(num[0], a, b_lo[0], b_lo[1]);
                mma_f16_16816(num[1], a, b_hi[2], b_hi[3]);
                mma_f16_16816(num[1], a, b_lo[2], b_lo[3]);
            }
            if (p.out_quad && !p.sla_v1) { /* four consecutive channels per access, whole sectors per row */
#pragma unroll
                for (int half = 0; half < 2; ++half) {
                    const float f = inv_den[half];
                    int ch;
                    const float4 ol = quad_of_tiles(make_float2(num[0][2 * half] * f, num[0][2 * half + 1] * f),
                                                    make_float2(num[1][2 * half] * f, num[1][2 * half + 1] * f),
                                                    lane, &ch);
                    const int r = r_local[half];
                    if (r < nrows)
                        store_out4(p.out,
                                   (int64_t)b * p.out_stride_b + (int64_t)h * p.out_stride_h +
                                       (row0 + r) * p.out_stride_l + c * 64 + np * 16 + ch,
                                   p.out_dtype, ol);
                }
                continue;
            }
            /* else channels d, d + 1 of two rows: paired accesses where out allows */
#pragma unroll
            for (int q = 0; q < 2; ++q)
#pragma unroll
                for (int half = 0; half < 2; ++half) {
                    const int r = r_local[half];
                    if (r >= nrows)
                        continue;
                    const int d = c * 64 + (np * 2 + q) * 8 + 2 * t;
                    const float f = inv_den[half];
                    const float2 ol = make_float2(num[q][2 * half] * f, num[q][2 * half + 1] * f);
                    const int64_t row = row0 + r;
                    if (p.sla_v1) {
                        *reinterpret_cast<float2 *>(p.o_linear + ((size_t)bh * p.seq_len + row) * D + d) = ol;
                        continue;
                    }
                    const int64_t at = (int64_t)b * p.out_stride_b + (int64_t)h * p.out_stride_h + row * p.out_stride_l;
                    if (p.out_paired) {
                        store_out2(p.out, at + d, p.out_dtype, ol);
                    } else {
                        store_out(p.out, at + (int64_t)d * p.out_stride_d, p.out_dtype, ol.x);
                        store_out(p.out, at + (int64_t)(d + 1) * p.out_stride_d, p.out_dtype, ol.y);
                    }
                }
        }
    }
}

/* SLA v1: out[r][e] = O_s[r][e] + sum_d W[e][d] O_l[r][d] + b[e]. */
constexpr int kMixRows = 16;
__global__ void __launch_bounds__(128) v1_mix_kernel(const sla2k_problem p)
{
    __shared__ float ol[kMixRows][128];
    const int bh = blockIdx.y, D = p.head_dim;
    const int b = bh / p.heads, h = bh % p.heads;
    const int row0 = blockIdx.x * kMixRows;
    const int rows = min(kMixRows, p.seq_len - row0);
    for (int i = threadIdx.x; i < rows * D; i += blockDim.x)
        ol[i / D][i % D] = p.o_linear[((size_t)bh * p.seq_len + row0 + i / D) * D + i % D];
    __syncthreads();
    for (int i = threadIdx.x; i < rows * D; i += blockDim.x) {
        const int r = i / D, e = i % D;
        float y = p.proj_b ? p.proj_b[e] : 0.0f;
        for (int d = 0; d < D; ++d)
            y += p.proj_w[(size_t)e * D + d] * ol[r][d];
        const int64_t row = row0 + r;
        const float out = p.o_sparse[((size_t)bh * p.seq_len + row) * D + e] + y;
        sla2k::store_elem(p.out,
                          (int64_t)b * p.out_stride_b + (int64_t)h * p.out_stride_h + row * p.out_stride_l +
                              (int64_t)e * p.out_stride_d,
                          p.out_dtype, out);
    }
}

} // namespace

/* Three stages where they fit beside the kernel's static arrays (sm_90,
 * two CTAs per SM), else two (sm_89, sm_120 at head_dim 128). */
static int linear_out_stages(const sla2k_problem &p, size_t max_smem)
{
    const size_t static_bytes = (p.head_dim + 128 + kLinearWarps) * sizeof(float);
    return linear_out_smem(p.head_dim, 3) + static_bytes <= max_smem ? 3 : 2;
}

size_t sla2k_linear_out_smem_bytes(const sla2k_problem &p, size_t max_smem)
{
    return linear_out_smem(p.head_dim, linear_out_stages(p, max_smem));
}

cudaError_t sla2k_launch_linear_out(const sla2k_problem &p, cudaStream_t stream, size_t max_smem)
{
    const int stages = linear_out_stages(p, max_smem);
    const size_t smem = linear_out_smem(p.head_dim, stages);
    const dim3 grid(p.num_q_blocks, p.batch * p.heads); /* query blocks of a head together: its tiles stay in L2 */
    const auto kernel = p.head_dim == 64 ? linear_out_kernel<64, false>
                        : p.wgmma        ? linear_out_kernel<128, true>
                                         : linear_out_kernel<128, false>;
    cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (err != cudaSuccess)
        return err;
    kernel<<<grid, kLinearThreads, smem, stream>>>(p, stages);
    return cudaGetLastError();
}

cudaError_t sla2k_launch_v1_mix(const sla2k_problem &p, cudaStream_t stream)
{
    dim3 grid((p.seq_len + kMixRows - 1) / kMixRows, p.batch * p.heads);
    v1_mix_kernel<<<grid, 128, 0, stream>>>(p);
    return cudaGetLastError();
}

sla2_status sla2_cuda_phik_t_v(sla2_context *ctx, sla2_cuda_state *st, const sla2k_problem &p)
{
    const int D = p.head_dim;
    const int64_t L = p.padded_len;
    const int batch = p.batch * p.heads;
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    sla2_status status = SLA2_OK;
    const cublasOperation_t trans_b = CUBLAS_OP_T;
    const int64_t stride_ab = L * D, stride_c = (int64_t)D * D;
    const float one = 1.0f, zero = 0.0f;
    cublasLtMatmulHeuristicResult_t heuristic = {};
    int found = 0;

#define LT(call)                                                  \
    do {                                                          \
        status = SLA2_CUBLAS_CHECK(ctx, call);                    \
        if (status != SLA2_OK)                                    \
            goto done;                                            \
    } while (0)
    /* C (D x D, column-major) = A (D x L: phi(K) rows) . B^T (B: D x L: V rows). */
    LT(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    LT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof trans_b));
    LT(cublasLtMatrixLayoutCreate(&la, CUDA_R_16F, D, L, D));
    LT(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16F, D, L, D));
    LT(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, D, D, D));
    for (cublasLtMatrixLayout_t l : {la, lb, lc}) {
        const int64_t stride = l == lc ? stride_c : stride_ab;
        LT(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch));
        LT(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
    }
    LT(cublasLtMatmulPreferenceCreate(&pref));
    LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &st->lt_workspace_bytes,
                                            sizeof st->lt_workspace_bytes));
    LT(cublasLtMatmulAlgoGetHeuristic(st->lt, op, la, lb, lc, lc, pref, 1, &heuristic, &found));
    if (found == 0) {
        status = sla2_fail(ctx, SLA2_ERR_BACKEND, "cuBLASLt: no algorithm for phi(K)^T V (D %d, L %lld)", D,
                           (long long)L);
        goto done;
    }
    LT(cublasLtMatmul(st->lt, op, &one, p.phi_k, la, p.v16, lb, &zero, p.s_total, lc, p.s_total, lc,
                      &heuristic.algo, st->lt_workspace, st->lt_workspace_bytes, st->stream));
#undef LT
done:
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    if (lc)
        cublasLtMatrixLayoutDestroy(lc);
    if (lb)
        cublasLtMatrixLayoutDestroy(lb);
    if (la)
        cublasLtMatrixLayoutDestroy(la);
    if (op)
        cublasLtMatmulDescDestroy(op);
    return status;
}
