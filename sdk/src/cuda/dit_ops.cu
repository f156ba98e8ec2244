/* The DiT's operators on the GPU (the CUDA table of dit/dit_backend.h): the
 * linears on cuBLASLt, the small steps (norms, RoPE, activations) as
 * elementwise kernels, cross-attention as one fused kernel
 * (cross_attention.cu: scores and softmax in float32 registers, q, k, v
 * and P in bf16 for the tensor cores). Everything runs on the context's stream; only download
 * waits for it.
 *
 * The block's fused steps save passes over the [tokens x dim] activations:
 * LayerNorm and the modulation in one kernel; RMSNorm and RoPE in one;
 * the gated residuals in the GEMM's epilogue (the residual stream read as
 * C with beta = 1, the gate folded into a copy of the weight rows and the
 * bias); GELU in ffn.0's epilogue, which with BF16 weights writes the
 * hidden activations as bf16 for ffn.2 directly; q, k and v share one
 * rounding of their input to bf16. Where cuBLASLt has no algorithm for a
 * fused epilogue, the plain GEMM plus epilogue_kernel computes the same.
 *
 * Precision: with float32 weights the GEMMs use CUBLAS_COMPUTE_32F_FAST_TF32
 * (float32 in and out, tensor cores with 10-bit mantissa inputs and float32
 * accumulation): about 1e-3 relative error per product against float32,
 * which tests/gpu/dit bounds for the whole forward. With BF16, INT8 or FP8
 * weight storage the blocks' linears are bf16 GEMMs instead (bf16 weights
 * and activations, CUBLAS_COMPUTE_32F, float32 output and bias; INT8 / FP8
 * codes are dequantised to a bf16 copy per call): the activations are
 * rounded to bf16 (8-bit mantissa, 2^-9 relative) right before each GEMM,
 * and a gated linear's or a dequantised weight's rows once more, which the
 * CPU backend does not do (it widens the weights to float32 and keeps
 * float32 activations), so the two differ by that rounding.
 * cuBLASLt's GELU is the tanh form the CPU uses (tests/gpu/dit/fused_ops.c:
 * 1.6e-6 on exact inputs). Norms accumulate in float32; RoPE angles and
 * their sines and cosines are computed in float64 on the device, as the CPU
 * does. */
#include "cuda_backend.h"
#include "cross_attention.h"
#include "kernels_int8/exact_arith.h"

extern "C" {
#include "dit/dit_backend.h"
}

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <type_traits>

namespace {

constexpr int kThreads = 256;
/* Cross-attention scores are computed this many floats at a time (256 MB). */
constexpr int64_t kScoreChunkElems = int64_t(64) << 20;

sla2_cuda_state *state_of(sla2_context *ctx)
{
    return static_cast<sla2_cuda_state *>(ctx->backend_state);
}

/* The context's state with its device made current (a context may live on
 * any device; launches must be on the stream's own). */
sla2_status enter(sla2_context *ctx, sla2_cuda_state **out)
{
    sla2_cuda_state *st = state_of(ctx);
    if (ctx->backend != SLA2_BACKEND_CUDA || !st)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "the CUDA DiT operators need a CUDA context");
    SLA2_CUDA_TRY(ctx, cudaSetDevice(st->device));
    *out = st;
    return SLA2_OK;
}

#define ENTER(ctx, st)                             \
    sla2_cuda_state *st = nullptr;                 \
    do {                                           \
        sla2_status enter_ = enter((ctx), &st);    \
        if (enter_ != SLA2_OK)                     \
            return enter_;                         \
    } while (0)

/* Checks the launch just made. */
#define LAUNCHED(ctx) SLA2_CUDA_TRY(ctx, cudaGetLastError())

/* Returns a failing status. */
#define TRY_STATUS(call)                 \
    do {                                 \
        sla2_status try_ = (call);       \
        if (try_ != SLA2_OK)             \
            return try_;                 \
    } while (0)

#define LT_TRY(ctx, call)                                  \
    do {                                                   \
        sla2_status lt_ = SLA2_CUBLAS_CHECK(ctx, call);    \
        if (lt_ != SLA2_OK)                                \
            return lt_;                                    \
    } while (0)

unsigned grid_for(int64_t n)
{
    int64_t blocks = (n + kThreads - 1) / kThreads;
    return (unsigned)(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

/* ---- GEMMs ---------------------------------------------------------------- */

/* D[m][n] (column-major, batched) = alpha op(A) op(B) (+ bias[m]), the
 * cuBLASLt view; row-major callers swap roles (see dit_linear below). A and
 * B are float32 (a TF32 GEMM), both bf16 (ab_type CUDA_R_16BF: a bf16
 * GEMM with float32 accumulation) or both e4m3 (CUDA_R_8F_E4M3, A
 * transposed: an FP8 GEMM, float32 accumulation, (A B)[i][j] multiplied by
 * a_scale[i] b_scale[j], cuBLASLt's outer-vector scaling; the bias bf16).
 * The fused epilogue of a linear (batch 1 only), in this order:
 *   v = alpha * (A B)[i][j] + bias[i]
 *   v = gelu_tanh(v)                  when gelu
 *   v += D[i][j]                      when accumulate (D read as C)
 * and D is stored as d_type (float32, or bf16 for the FFN's hidden). */
struct Gemm {
    cublasOperation_t trans_a = CUBLAS_OP_N, trans_b = CUBLAS_OP_N;
    cudaDataType_t ab_type = CUDA_R_32F;
    int64_t m = 0, n = 0, k = 0;
    const void *a = nullptr;
    int64_t lda = 0, stride_a = 0;
    const void *b = nullptr;
    int64_t ldb = 0, stride_b = 0;
    void *d = nullptr;
    cudaDataType_t d_type = CUDA_R_32F;
    int64_t ldd = 0, stride_d = 0;
    int batch = 1;
    float alpha = 1.0f;
    const float *a_scale = nullptr, *b_scale = nullptr; /* [m] and [n]: FP8 only */
    const void *bias = nullptr; /* float32, or bf16 (bias_type) for a bf16 D */
    cudaDataType_t bias_type = CUDA_R_32F;
    bool gelu = false, accumulate = false;

    bool fused() const { return gelu || accumulate || d_type != CUDA_R_32F; }
};

__host__ __device__ size_t type_bytes(cudaDataType_t t)
{
    return t == CUDA_R_8F_E4M3 ? 1 : t == CUDA_R_16BF ? 2 : 4;
}

/* p advanced by elems elements of type t */
__host__ __device__ void *advance(void *p, int64_t elems, cudaDataType_t t)
{
    return static_cast<char *>(p) + elems * (int64_t)type_bytes(t);
}

#define GRID_STRIDE(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* Stream-ordered device scratch (sla2_cuda_scratch), released in stream order
 * when it goes out of scope: no synchronisation. */
struct Scratch {
    void *p = nullptr;
    cudaStream_t stream = nullptr;
    ~Scratch()
    {
        if (p)
            cudaFreeAsync(p, stream);
    }
};

sla2_status scratch_alloc(sla2_context *ctx, sla2_cuda_state *st, size_t bytes, Scratch *s)
{
    s->stream = st->stream;
    SLA2_CUDA_TRY(ctx, sla2_cuda_scratch(st, bytes ? bytes : 16, &s->p));
    return SLA2_OK;
}

/* out[i] = bf16(x[i]), round to nearest even; four at a time over the first
 * `quads` x 4 elements (x 16-byte aligned), one at a time after them. */
__global__ void round_to_bf16_kernel(const float *x, int64_t n, int64_t quads, __nv_bfloat16 *out)
{
    GRID_STRIDE(i, quads)
    {
        const float4 v = reinterpret_cast<const float4 *>(x)[i];
        __nv_bfloat162 *pair = reinterpret_cast<__nv_bfloat162 *>(out) + 2 * i;
        pair[0] = __floats2bfloat162_rn(v.x, v.y);
        pair[1] = __floats2bfloat162_rn(v.z, v.w);
    }
    GRID_STRIDE(i, n - 4 * quads) out[4 * quads + i] = __float2bfloat16_rn(x[4 * quads + i]);
}

/* Owns the cuBLASLt descriptors of one call. */
struct LtCall {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    ~LtCall()
    {
        if (pref)
            cublasLtMatmulPreferenceDestroy(pref);
        if (d)
            cublasLtMatrixLayoutDestroy(d);
        if (b)
            cublasLtMatrixLayoutDestroy(b);
        if (a)
            cublasLtMatrixLayoutDestroy(a);
        if (op)
            cublasLtMatmulDescDestroy(op);
    }
};

sla2_status make_layout(sla2_context *ctx, cublasLtMatrixLayout_t *out, cudaDataType_t type, int64_t rows,
                        int64_t cols, int64_t ld, int batch, int64_t stride)
{
    LT_TRY(ctx, cublasLtMatrixLayoutCreate(out, type, (uint64_t)rows, (uint64_t)cols, ld));
    if (batch > 1) {
        int32_t count = batch;
        LT_TRY(ctx, cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count));
        LT_TRY(ctx, cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                     sizeof stride));
    }
    return SLA2_OK;
}

__device__ __forceinline__ float gelu_tanh(float v)
{
    /* the CPU's form: tanh(u) = 1 - 2 / (exp(2u) + 1) */
    const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
    return 0.5f * v * (1.0f + (1.0f - 2.0f / (expf(2.0f * u) + 1.0f)));
}

/* Gemm's epilogue for one output, given acc = (A B)[i][j]. */
__device__ __forceinline__ void epilogue_store(const Gemm &g, void *d, int64_t i, int64_t j, float acc)
{
    float bias = 0.0f;
    if (g.bias)
        bias = g.bias_type == CUDA_R_16BF ? __bfloat162float(static_cast<const __nv_bfloat16 *>(g.bias)[i])
                                          : static_cast<const float *>(g.bias)[i];
    float v = g.alpha * acc + bias;
    if (g.gelu)
        v = gelu_tanh(v);
    const int64_t at = i + j * g.ldd;
    if (g.d_type == CUDA_R_16BF) {
        __nv_bfloat16 *out = static_cast<__nv_bfloat16 *>(d) + at;
        *out = __float2bfloat16_rn(g.accumulate ? v + __bfloat162float(*out) : v);
    } else {
        float *out = static_cast<float *>(d) + at;
        *out = g.accumulate ? v + *out : v;
    }
}

/* The fallback where cuBLASLt offers no algorithm for a shape: one thread
 * per output, float32 arithmetic on A and B's elements (T: float or bf16). */
template <typename T>
__global__ void gemm_fallback_kernel(Gemm g)
{
    const int64_t total = g.m * g.n;
    const int bat = blockIdx.y;
    const T *a = static_cast<const T *>(g.a) + bat * g.stride_a, *b = static_cast<const T *>(g.b) + bat * g.stride_b;
    void *d = advance(g.d, bat * g.stride_d, g.d_type);
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = idx % g.m, j = idx / g.m;
        float acc = 0.0f;
        for (int64_t p = 0; p < g.k; ++p) {
            const float av = (float)(g.trans_a == CUBLAS_OP_N ? a[i + p * g.lda] : a[p + i * g.lda]);
            const float bv = (float)(g.trans_b == CUBLAS_OP_N ? b[p + j * g.ldb] : b[j + p * g.ldb]);
            acc = fmaf(av, bv, acc);
        }
        epilogue_store(g, d, i, j, acc);
    }
}

/* The fused epilogue applied to a plain product (A B) held in tmp [m][n]
 * (column-major, leading dimension m): where cuBLASLt has no algorithm for
 * the fused form. */
__global__ void epilogue_kernel(Gemm g, const float *tmp)
{
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < g.m * g.n;
         idx += (int64_t)gridDim.x * blockDim.x)
        epilogue_store(g, g.d, idx % g.m, idx / g.m, tmp[idx]);
}

/* The largest power of two up to 256 that divides the address of every
 * matrix of a batch: cuBLASLt assumes 256-byte alignment unless told. */
uint32_t alignment_of(const void *p, size_t elem_bytes, int64_t batch_stride_elems, int batch)
{
    uintptr_t bits = reinterpret_cast<uintptr_t>(p);
    if (batch > 1)
        bits |= (uintptr_t)(batch_stride_elems * (int64_t)elem_bytes);
    uint32_t align = 256;
    while (align > elem_bytes && (bits & (align - 1)))
        align >>= 1;
    return align;
}

/* What cuBLASLt's choice of algorithm for a Gemm depends on: everything but
 * its pointers (their alignments instead) and alpha. */
struct GemmKey {
    int32_t trans_a, trans_b, ab_type, d_type, bias_type, batch;
    int64_t m, n, k, lda, ldb, ldd, stride_a, stride_b, stride_d;
    uint32_t align_a, align_b, align_d;
    uint8_t bias, gelu, accumulate, scaled;
};
static_assert(sizeof(GemmKey) <= sizeof(sla2_gemm_algo::key), "GemmKey fits sla2_gemm_algo's key");

GemmKey gemm_key(const Gemm &g, uint32_t align_a, uint32_t align_b, uint32_t align_d)
{
    GemmKey k;
    memset(&k, 0, sizeof k); /* the padding too: keys compare as bytes */
    k.trans_a = g.trans_a, k.trans_b = g.trans_b, k.ab_type = g.ab_type, k.d_type = g.d_type;
    k.bias_type = g.bias_type, k.batch = g.batch;
    k.m = g.m, k.n = g.n, k.k = g.k, k.lda = g.lda, k.ldb = g.ldb, k.ldd = g.ldd;
    k.stride_a = g.stride_a, k.stride_b = g.stride_b, k.stride_d = g.stride_d;
    k.align_a = align_a, k.align_b = align_b, k.align_d = align_d;
    k.bias = g.bias != nullptr, k.gelu = g.gelu, k.accumulate = g.accumulate, k.scaled = g.a_scale != nullptr;
    return k;
}

sla2_gemm_algo *find_algo(sla2_cuda_state *st, const GemmKey &key)
{
    for (sla2_gemm_algo &a : st->gemm_algos)
        if (a.used && !memcmp(a.key, &key, sizeof key))
            return &a;
    return nullptr;
}

sla2_gemm_algo *remember_algo(sla2_cuda_state *st, const GemmKey &key, bool found, const cublasLtMatmulAlgo_t &algo)
{
    sla2_gemm_algo *a = &st->gemm_algos[st->gemm_algos_next];
    st->gemm_algos_next = (st->gemm_algos_next + 1) % SLA2_GEMM_ALGOS;
    memset(a->key, 0, sizeof a->key);
    memcpy(a->key, &key, sizeof key);
    a->used = true, a->found = found, a->algo = algo;
    return a;
}

/* Runs g on cuBLASLt; *ran = false (and nothing launched) when cuBLASLt
 * has no algorithm for it. The heuristic's answer for g's description is
 * asked once per context (sla2_cuda_state::gemm_algos). */
sla2_status gemm_lt(sla2_context *ctx, sla2_cuda_state *st, const Gemm &g, bool *ran)
{
    *ran = false;
    LtCall c;
    const bool fp8 = g.ab_type == CUDA_R_8F_E4M3, tf32 = g.ab_type == CUDA_R_32F;
    const size_t ab_bytes = type_bytes(g.ab_type);
    LT_TRY(ctx, cublasLtMatmulDescCreate(&c.op, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F));
    if (fp8) {
        const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
        LT_TRY(ctx, cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode));
        LT_TRY(ctx, cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode));
        LT_TRY(ctx, cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &g.a_scale,
                                                   sizeof g.a_scale));
        LT_TRY(ctx, cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &g.b_scale,
                                                   sizeof g.b_scale));
    }
    LT_TRY(ctx, cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_TRANSA, &g.trans_a, sizeof g.trans_a));
    LT_TRY(ctx, cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_TRANSB, &g.trans_b, sizeof g.trans_b));
    const cublasLtEpilogue_t epilogue = g.gelu ? (g.bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
                                               : (g.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
    LT_TRY(ctx, cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
    if (g.bias) {
        const int32_t bias_type = g.bias_type;
        LT_TRY(ctx, cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof g.bias));
        LT_TRY(ctx, cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                   sizeof bias_type));
    }
    const bool ta = g.trans_a != CUBLAS_OP_N, tb = g.trans_b != CUBLAS_OP_N;
    sla2_status s = make_layout(ctx, &c.a, g.ab_type, ta ? g.k : g.m, ta ? g.m : g.k, g.lda, g.batch, g.stride_a);
    if (s == SLA2_OK)
        s = make_layout(ctx, &c.b, g.ab_type, tb ? g.n : g.k, tb ? g.k : g.n, g.ldb, g.batch, g.stride_b);
    if (s == SLA2_OK)
        s = make_layout(ctx, &c.d, g.d_type, g.m, g.n, g.ldd, g.batch, g.stride_d);
    if (s != SLA2_OK)
        return s;
    LT_TRY(ctx, cublasLtMatmulPreferenceCreate(&c.pref));
    LT_TRY(ctx, cublasLtMatmulPreferenceSetAttribute(c.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                     &st->lt_workspace_bytes, sizeof st->lt_workspace_bytes));
    const uint32_t align_a = alignment_of(g.a, ab_bytes, g.stride_a, g.batch),
                   align_b = alignment_of(g.b, ab_bytes, g.stride_b, g.batch),
                   align_d = alignment_of(g.d, type_bytes(g.d_type), g.stride_d, g.batch);
    LT_TRY(ctx, cublasLtMatmulPreferenceSetAttribute(c.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a,
                                                     sizeof align_a));
    LT_TRY(ctx, cublasLtMatmulPreferenceSetAttribute(c.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b,
                                                     sizeof align_b));
    LT_TRY(ctx, cublasLtMatmulPreferenceSetAttribute(c.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_d,
                                                     sizeof align_d));
    LT_TRY(ctx, cublasLtMatmulPreferenceSetAttribute(c.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_d,
                                                     sizeof align_d));
    const GemmKey key = gemm_key(g, align_a, align_b, align_d);
    sla2_gemm_algo *known = find_algo(st, key);
    if (!known) {
        cublasLtMatmulHeuristicResult_t heuristic = {};
        int found = 0;
        cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(st->lt, c.op, c.a, c.b, c.d, c.d, c.pref, 1, &heuristic,
                                                           &found);
        /* INVALID_VALUE: an epilogue this build of cuBLASLt rejects for these types */
        const bool none = hs == CUBLAS_STATUS_NOT_SUPPORTED || hs == CUBLAS_STATUS_INVALID_VALUE ||
                          (hs == CUBLAS_STATUS_SUCCESS && found == 0);
        if (hs != CUBLAS_STATUS_SUCCESS && !none)
            return SLA2_CUBLAS_CHECK(ctx, hs);
        known = remember_algo(st, key, !none, heuristic.algo);
    }
    if (!known->found)
        return SLA2_OK;
    const float beta = g.accumulate ? 1.0f : 0.0f;
    LT_TRY(ctx, cublasLtMatmul(st->lt, c.op, &g.alpha, g.a, c.a, g.b, c.b, &beta, g.d, c.d, g.d, c.d, &known->algo,
                               st->lt_workspace, st->lt_workspace_bytes, st->stream));
    *ran = true;
    return SLA2_OK;
}

/* g on cuBLASLt where it can; a fused g it cannot run becomes the plain
 * product into scratch plus epilogue_kernel, and a plain one it cannot run
 * goes to gemm_fallback_kernel. */
sla2_status gemm(sla2_context *ctx, sla2_cuda_state *st, const Gemm &g)
{
    bool ran = false;
    sla2_status s = gemm_lt(ctx, st, g, &ran);
    if (s != SLA2_OK || ran)
        return s;
    if (g.ab_type == CUDA_R_8F_E4M3) /* fp8_linears asks gemm_lt itself and has its own way out */
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "DiT GEMM: cuBLASLt has no FP8 GEMM for %lld x %lld x %lld",
                         (long long)g.m, (long long)g.n, (long long)g.k);
    if (g.bias && g.bias_type == CUDA_R_32F && g.d_type == CUDA_R_16BF) {
        /* cuBLASLt wants a bf16 D's bias in bf16 */
        Scratch bias16;
        s = scratch_alloc(ctx, st, (size_t)g.m * sizeof(__nv_bfloat16), &bias16);
        if (s != SLA2_OK)
            return s;
        round_to_bf16_kernel<<<grid_for(g.m), kThreads, 0, st->stream>>>(static_cast<const float *>(g.bias), g.m, 0,
                                                                         static_cast<__nv_bfloat16 *>(bias16.p));
        SLA2_CUDA_TRY(ctx, cudaGetLastError());
        Gemm g16 = g;
        g16.bias = bias16.p, g16.bias_type = CUDA_R_16BF;
        return gemm(ctx, st, g16);
    }
    if (g.fused()) {
        if (g.batch != 1)
            return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "DiT GEMM: a fused epilogue on a batched GEMM");
        Gemm plain = g;
        plain.alpha = 1.0f, plain.bias = nullptr;
        plain.gelu = plain.accumulate = false;
        plain.d_type = CUDA_R_32F, plain.ldd = g.m;
        SLA2_CUDA_TRY(ctx, sla2_cuda_scratch(st, (size_t)(g.m * g.n) * sizeof(float), &plain.d));
        s = gemm(ctx, st, plain);
        if (s == SLA2_OK) {
            epilogue_kernel<<<grid_for(g.m * g.n), kThreads, 0, st->stream>>>(g, static_cast<const float *>(plain.d));
            s = SLA2_CUDA_CHECK(ctx, cudaGetLastError());
        }
        sla2_status freed = SLA2_CUDA_CHECK(ctx, cudaFreeAsync(plain.d, st->stream));
        return s != SLA2_OK ? s : freed;
    }
    dim3 grid(grid_for(g.m * g.n), (unsigned)g.batch);
    if (g.ab_type == CUDA_R_16BF)
        gemm_fallback_kernel<__nv_bfloat16><<<grid, kThreads, 0, st->stream>>>(g);
    else
        gemm_fallback_kernel<float><<<grid, kThreads, 0, st->stream>>>(g);
    LAUNCHED(ctx);
    return SLA2_OK;
}

/* ---- Reductions ----------------------------------------------------------- */

/* op(v) over the block (blockDim.x a multiple of 32, at most 1024; 0 is
 * op's identity). */
template <typename Op>
__device__ float block_reduce(float v, float *shared32, Op op)
{
    for (int o = 16; o > 0; o >>= 1)
        v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    __syncthreads(); /* shared32 may still be read from the previous call */
    if (lane == 0)
        shared32[warp] = v;
    __syncthreads();
    v = lane < warps ? shared32[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1)
        v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ float block_sum(float v, float *shared32)
{
    return block_reduce(v, shared32, [](float a, float b) { return a + b; });
}

__device__ float block_max(float v, float *shared32)
{
    return block_reduce(v, shared32, [](float a, float b) { return fmaxf(a, b); });
}

constexpr int kNormThreads = 256;

/* op_quantise_activations' rule for one row: s = max|x| / 448 (1 for a row
 * of zeros), code = e4m3(x / s), nearest even, saturating; x / s through
 * one reciprocal (sla2k_div_by: bit-identical to the division). A row
 * below 448 x FLT_MIN has a subnormal s, whose reciprocal overflows: there
 * x and s are both taken times 2^64 (one multiply per element; a select of
 * x / s cost what the division costs and doubled the 1536-wide pass). */
struct E4m3RowScale {
    float s, pre, s_n, inv_s;
    __device__ explicit E4m3RowScale(float max_abs)
    {
        s = max_abs / 448.0f;
        s = s > 0.0f ? s : 1.0f;
        pre = s < FLT_MIN ? 0x1p64f : 1.0f;
        s_n = s * pre;
        inv_s = 1.0f / s_n;
    }
    __device__ uint8_t code(float x) const
    {
        return __nv_cvt_float_to_fp8(sla2k_div_by(x * pre, s_n, inv_s), __NV_SATFINITE, __NV_E4M3);
    }
};

/* A norm's rows as e4m3 codes with a scale each (DIT_ACT_E4M3_ROWS). */
struct E4m3Rows {
    uint8_t *codes;
    float *scales;
};

/* LayerNorm's last step: the optional affine, then the optional modulation:
 * ((x - mean) inv * weight + bias) * (1 + scale) + shift. */
struct NormOut {
    const float *weight, *bias, *shift, *scale;
    __device__ float operator()(float centred_scaled, int64_t d) const
    {
        float v = centred_scaled;
        if (weight)
            v = v * weight[d] + (bias ? bias[d] : 0.0f);
        if (scale)
            v = v * (1.0f + scale[d]) + shift[d];
        return v;
    }
};

/* One block per row; two passes over the row (mean, then the centred sum of
 * squares) as the CPU reference does, re-reading the row from memory (any
 * width). */
template <typename T>
__global__ void __launch_bounds__(kNormThreads)
    layer_norm_kernel(const float *x, int64_t dim, float eps, NormOut post, T *y)
{
    __shared__ float shared32[32];
    const float *in = x + blockIdx.x * dim;
    T *out = y + blockIdx.x * dim;
    float sum = 0.0f;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
        sum += in[d];
    const float mean = block_sum(sum, shared32) / (float)dim;
    float sq = 0.0f;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
        const float c = in[d] - mean;
        sq += c * c;
    }
    const float inv = rsqrtf(block_sum(sq, shared32) / (float)dim + eps);
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
        out[d] = (T)post((in[d] - mean) * inv, d);
}

/* The same with the row read once into registers (dim <= kPer x
 * blockDim.x): each thread sums the same elements in the same order, so
 * the result is bit-identical; one read of the row instead of three. */
template <int kPer, typename T>
__global__ void __launch_bounds__(kNormThreads)
    layer_norm_held_kernel(const float *x, int64_t dim, float eps, NormOut post, T *y)
{
    __shared__ float shared32[32];
    const float *in = x + blockIdx.x * dim;
    T *out = y + blockIdx.x * dim;
    float held[kPer];
    float sum = 0.0f;
#pragma unroll
    for (int e = 0; e < kPer; e++) {
        const int64_t d = threadIdx.x + (int64_t)e * blockDim.x;
        held[e] = d < dim ? in[d] : 0.0f;
        sum += held[e];
    }
    const float mean = block_sum(sum, shared32) / (float)dim;
    float sq = 0.0f;
#pragma unroll
    for (int e = 0; e < kPer; e++)
        if (threadIdx.x + (int64_t)e * blockDim.x < dim) {
            const float c = held[e] - mean;
            sq += c * c;
        }
    const float inv = rsqrtf(block_sum(sq, shared32) / (float)dim + eps);
#pragma unroll
    for (int e = 0; e < kPer; e++) {
        const int64_t d = threadIdx.x + (int64_t)e * blockDim.x;
        if (d < dim)
            out[d] = (T)post((held[e] - mean) * inv, d);
    }
}

__device__ __forceinline__ float warp_sum_all(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ void store4(float *p, float a, float b, float c, float d)
{
    *reinterpret_cast<float4 *>(p) = make_float4(a, b, c, d);
}
__device__ __forceinline__ void store4(__nv_bfloat16 *p, float a, float b, float c, float d)
{
    __nv_bfloat162 lo = __floats2bfloat162_rn(a, b), hi = __floats2bfloat162_rn(c, d);
    *reinterpret_cast<uint2 *>(p) =
        make_uint2(*reinterpret_cast<const uint32_t *>(&lo), *reinterpret_cast<const uint32_t *>(&hi));
}

/* One warp per row for rows of at most kWarpRowVecs x 128 floats (dim a
 * multiple of 128, 16-byte aligned rows): the row held as float4 with all
 * of its loads in flight, warp reductions only. The block-per-row kernels
 * spent their time in two block-wide reductions per row (latency, not
 * bytes): 0.21 ms for a [32760 x 1536] LayerNorm against a 0.1 ms floor. */
constexpr int kWarpRowVecs = 16;
constexpr int kWarpRowsPerBlock = 8;

/* A warp's row (lane's float4 j at 4 (lane + 32 j)), normalised and post
 * applied as it is stored into y. */
template <typename T>
__device__ __forceinline__ void store_warp_row(T *y, int64_t row, int64_t dim, const float4 (&v)[kWarpRowVecs],
                                               int vecs, int lane, float mean, float inv, const NormOut &post)
{
    T *out = y + row * dim;
#pragma unroll
    for (int j = 0; j < kWarpRowVecs; j++)
        if (j < vecs) {
            const int64_t d = 4 * (int64_t)(lane + 32 * j);
            store4(out + d, post((v[j].x - mean) * inv, d), post((v[j].y - mean) * inv, d + 1),
                   post((v[j].z - mean) * inv, d + 2), post((v[j].w - mean) * inv, d + 3));
        }
}

/* ... or quantised from the registers that hold it (no pass of its own). */
__device__ __forceinline__ void store_warp_row(E4m3Rows y, int64_t row, int64_t dim, float4 (&v)[kWarpRowVecs],
                                               int vecs, int lane, float mean, float inv, const NormOut &post)
{
    float max_abs = 0.0f;
#pragma unroll
    for (int j = 0; j < kWarpRowVecs; j++)
        if (j < vecs) {
            const int64_t d = 4 * (int64_t)(lane + 32 * j);
            v[j] = make_float4(post((v[j].x - mean) * inv, d), post((v[j].y - mean) * inv, d + 1),
                               post((v[j].z - mean) * inv, d + 2), post((v[j].w - mean) * inv, d + 3));
            max_abs = fmaxf(max_abs, fmaxf(fmaxf(fabsf(v[j].x), fabsf(v[j].y)), fmaxf(fabsf(v[j].z), fabsf(v[j].w))));
        }
    for (int o = 16; o > 0; o >>= 1)
        max_abs = fmaxf(max_abs, __shfl_xor_sync(0xffffffffu, max_abs, o));
    const E4m3RowScale q(max_abs);
    uint8_t *out = y.codes + row * dim;
#pragma unroll
    for (int j = 0; j < kWarpRowVecs; j++)
        if (j < vecs)
            *reinterpret_cast<uint32_t *>(out + 4 * (int64_t)(lane + 32 * j)) =
                (uint32_t)q.code(v[j].x) | (uint32_t)q.code(v[j].y) << 8 | (uint32_t)q.code(v[j].z) << 16 |
                (uint32_t)q.code(v[j].w) << 24;
    if (lane == 0)
        y.scales[row] = q.s;
}

template <typename Out>
__global__ void __launch_bounds__(32 * kWarpRowsPerBlock)
    layer_norm_warp_kernel(const float *x, int64_t rows, int64_t dim, float eps, NormOut post, Out y)
{
    const int lane = threadIdx.x & 31;
    const int64_t row = (int64_t)blockIdx.x * kWarpRowsPerBlock + (threadIdx.x >> 5);
    if (row >= rows)
        return;
    const int vecs = (int)(dim / 128);
    const float4 *in = reinterpret_cast<const float4 *>(x + row * dim);
    float4 v[kWarpRowVecs];
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kWarpRowVecs; j++)
        if (j < vecs) {
            v[j] = in[lane + 32 * j];
            sum += (v[j].x + v[j].y) + (v[j].z + v[j].w);
        }
    const float mean = warp_sum_all(sum) / (float)dim;
    float sq = 0.0f;
#pragma unroll
    for (int j = 0; j < kWarpRowVecs; j++)
        if (j < vecs) {
            const float a = v[j].x - mean, b = v[j].y - mean, c = v[j].z - mean, d = v[j].w - mean;
            sq += (a * a + b * b) + (c * c + d * d);
        }
    const float inv = rsqrtf(warp_sum_all(sq) / (float)dim + eps);
    store_warp_row(y, row, dim, v, vecs, lane, mean, inv, post);
}

/* Rows the warp-per-row kernel takes: dim a multiple of 128 up to 2048
 * (Wan2.1-1.3B's 1536), x and y 16-byte aligned. */
bool warp_rows(const float *x, const void *y, int64_t dim)
{
    return (reinterpret_cast<uintptr_t>(x) & 15) == 0 && (reinterpret_cast<uintptr_t>(y) & 15) == 0 &&
           dim % 128 == 0 && dim <= 128 * kWarpRowVecs;
}

/* The warp-per-row kernel on rows that warp_rows admits; y: float or bf16
 * rows, or E4m3Rows. */
template <typename Out>
void launch_layer_norm_warp(cudaStream_t stream, const float *x, int64_t rows, int64_t dim, float eps,
                            NormOut post, Out y)
{
    layer_norm_warp_kernel<<<(unsigned)((rows + kWarpRowsPerBlock - 1) / kWarpRowsPerBlock), 32 * kWarpRowsPerBlock,
                             0, stream>>>(x, rows, dim, eps, post, y);
}

/* y (T: float or bf16) = the normalised rows of x, then post */
template <typename T>
void launch_layer_norm(cudaStream_t stream, const float *x, int64_t rows, int64_t dim, float eps, NormOut post,
                       T *y)
{
    if (warp_rows(x, y, dim))
        launch_layer_norm_warp(stream, x, rows, dim, eps, post, y);
    else if (dim <= 8 * kNormThreads)
        layer_norm_held_kernel<8, T><<<(unsigned)rows, kNormThreads, 0, stream>>>(x, dim, eps, post, y);
    else if (dim <= 24 * kNormThreads) /* 14B's 5120 */
        layer_norm_held_kernel<24, T><<<(unsigned)rows, kNormThreads, 0, stream>>>(x, dim, eps, post, y);
    else
        layer_norm_kernel<T><<<(unsigned)rows, kNormThreads, 0, stream>>>(x, dim, eps, post, y);
}

/* In place on a row of x (float or bf16), computed in float. */
template <typename T>
__global__ void __launch_bounds__(kNormThreads) rms_norm_kernel(T *x, int64_t dim, float eps, const float *weight)
{
    __shared__ float shared32[32];
    T *v = x + blockIdx.x * dim;
    float sq = 0.0f;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
        const float e = (float)v[d];
        sq += e * e;
    }
    const float inv = rsqrtf(block_sum(sq, shared32) / (float)dim + eps);
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
        v[d] = (T)((float)v[d] * inv * weight[d]);
}

__global__ void widen_bf16_kernel(const __nv_bfloat16 *x, int64_t n, float *out)
{
    GRID_STRIDE(i, n) out[i] = __bfloat162float(x[i]);
}

/* ---- Elementwise ---------------------------------------------------------- */

__global__ void gelu_tanh_kernel(float *x, int64_t n)
{
    GRID_STRIDE(i, n) x[i] = gelu_tanh(x[i]);
}

__global__ void silu_kernel(const float *x, int64_t n, float *y)
{
    GRID_STRIDE(i, n) y[i] = x[i] / (1.0f + expf(-x[i]));
}

__global__ void add_kernel(const float *a, const float *b, int64_t b_elems, float *out, int64_t n)
{
    GRID_STRIDE(i, n) out[i] = a[i] + b[i % b_elems];
}

/* ---- RoPE ----------------------------------------------------------------- */

struct RopeGrid {
    int64_t frames, height, width; /* the token grid */
    int64_t pairs, f_pairs, hw_pairs, f_dim, hw_dim;
    int64_t heads, head_dim;
};

/* v times (c + i s) in float: op_rope_3d multiplies in double, which the
 * GPUs this SDK targets besides Hopper run at 1/64 of the float rate
 * (about 0.2 G double operations per Wan2.1-1.3B call: some 5 ms on a
 * Jetson Orin against 1 ms of memory traffic); float is within an ulp or
 * two of it, far below the bf16 rounding of the activations. */
__device__ __forceinline__ float2 rotate(float2 v, float c, float s)
{
    return make_float2(fmaf(v.x, c, -v.y * s), fmaf(v.x, s, v.y * c));
}

/* Entries of the RoPE table: one (cos, sin) per position along each axis
 * and pair of that axis, [frames][f_pairs] | [height][hw_pairs] |
 * [width][hw_pairs]. */
__host__ __device__ int64_t rope_table_entries(const RopeGrid &g)
{
    return g.frames * g.f_pairs + (g.height + g.width) * g.hw_pairs;
}

/* The table, the angles and their cosines and sines in double as op_rope_3d. */
__global__ void rope_table_kernel(RopeGrid g, double2 *table)
{
    const int64_t f_end = g.frames * g.f_pairs, h_end = f_end + g.height * g.hw_pairs;
    GRID_STRIDE(idx, rope_table_entries(g))
    {
        int64_t pos, j, n;
        if (idx < f_end)
            pos = idx / g.f_pairs, j = idx % g.f_pairs, n = g.f_dim;
        else if (idx < h_end)
            pos = (idx - f_end) / g.hw_pairs, j = (idx - f_end) % g.hw_pairs, n = g.hw_dim;
        else
            pos = (idx - h_end) / g.hw_pairs, j = (idx - h_end) % g.hw_pairs, n = g.hw_dim;
        double s, c;
        sincos((double)pos / pow(10000.0, (double)(2 * j) / (double)n), &s, &c);
        table[idx] = make_double2(c, s);
    }
}

/* A pair of adjacent elements as floats, loaded and stored as one access. */
__device__ __forceinline__ float2 load_pair(const float *p)
{
    return *reinterpret_cast<const float2 *>(p);
}
__device__ __forceinline__ float2 load_pair(const __nv_bfloat16 *p)
{
    return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(p));
}
__device__ __forceinline__ void store_pair(float *p, float2 v)
{
    *reinterpret_cast<float2 *>(p) = v;
}
__device__ __forceinline__ void store_pair(__nv_bfloat16 *p, float2 v)
{
    *reinterpret_cast<__nv_bfloat162 *>(p) = __float22bfloat162_rn(v);
}

/* RMSNorm over a token's full width (weight not NULL), then RoPE, in one
 * pass over x (T: float or bf16, computed in float): one block per token,
 * each thread taking whole pairs of any head, rotated with the table's
 * (cos, sin), computed in double as op_rope_3d (the table keeps the
 * double-precision transcendentals out of the kernel, whose latency bound
 * it when each block computed its own), rounded to float. */
template <typename T>
__global__ void __launch_bounds__(kNormThreads)
    norm_rope_kernel(T *x, RopeGrid g, const double2 *table, float eps, const float *weight)
{
    __shared__ float shared32[32];
    extern __shared__ float2 cos_sin[]; /* the token's pairs, gathered once from the table */
    /* 32-bit indices inside a row: 64-bit division is slow, and a row is small */
    const int dim = (int)(g.heads * g.head_dim), pairs = (int)g.pairs, f_pairs = (int)g.f_pairs,
              hw_pairs = (int)g.hw_pairs;
    const int64_t token = blockIdx.x;
    const int64_t f = token / (g.height * g.width), h = (token / g.width) % g.height, w = token % g.width;
    const double2 *f_row = table + f * f_pairs;
    const double2 *h_row = table + g.frames * f_pairs + h * hw_pairs;
    const double2 *w_row = table + g.frames * f_pairs + g.height * hw_pairs + w * hw_pairs;
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
        const double2 cs = i < f_pairs ? f_row[i] : i < f_pairs + hw_pairs ? h_row[i - f_pairs]
                                                                          : w_row[i - f_pairs - hw_pairs];
        cos_sin[i] = make_float2((float)cs.x, (float)cs.y);
    }
    T *row = x + token * dim;
    float sq = 0.0f;
    for (int p = threadIdx.x; p < dim / 2 && weight; p += blockDim.x) {
        const float2 v = load_pair(row + 2 * p);
        sq += v.x * v.x + v.y * v.y;
    }
    const float inv = weight ? rsqrtf(block_sum(sq, shared32) / (float)dim + eps) : 1.0f;
    if (!weight)
        __syncthreads(); /* else block_sum's barriers publish cos_sin */
    for (int p = threadIdx.x; p < dim / 2; p += blockDim.x) {
        float2 v = load_pair(row + 2 * p);
        if (weight)
            v.x = v.x * inv * weight[2 * p], v.y = v.y * inv * weight[2 * p + 1];
        const float2 cs = cos_sin[p % pairs];
        store_pair(row + 2 * p, rotate(v, cs.x, cs.y));
    }
}

/* ---- Cross-attention ------------------------------------------------------ */

/* In-place softmax of each row of scores [rows][cols]: one warp per row. */
__global__ void softmax_rows_kernel(float *scores, int64_t rows, int64_t cols)
{
    const int64_t row = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= rows)
        return;
    float *r = scores + row * cols;
    float max_v = -INFINITY;
    for (int64_t c = lane; c < cols; c += 32)
        max_v = fmaxf(max_v, r[c]);
    for (int o = 16; o > 0; o >>= 1)
        max_v = fmaxf(max_v, __shfl_xor_sync(0xffffffffu, max_v, o));
    float sum = 0.0f;
    for (int64_t c = lane; c < cols; c += 32) {
        const float e = expf(r[c] - max_v);
        r[c] = e;
        sum += e;
    }
    for (int o = 16; o > 0; o >>= 1)
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
    const float inv = 1.0f / sum;
    for (int64_t c = lane; c < cols; c += 32)
        r[c] *= inv;
}

/* ---- The table ------------------------------------------------------------ */

sla2_status cuda_alloc(sla2_context *ctx, size_t bytes, void **out)
{
    ENTER(ctx, st);
    (void)st;
    void *ptr = nullptr;
    SLA2_CUDA_TRY(ctx, cudaMalloc(&ptr, bytes ? bytes : 256));
    *out = ptr;
    return SLA2_OK;
}

void cuda_release(sla2_context *ctx, void *ptr)
{
    sla2_cuda_state *st = state_of(ctx);
    if (!ptr)
        return;
    if (st)
        cudaSetDevice(st->device);
    cudaFree(ptr); /* waits for the device: buffers are released after their last use */
}

/* Pageable source: cudaMemcpyAsync returns once the bytes are staged, so
 * src may be reused or freed at once. */
sla2_status cuda_upload(sla2_context *ctx, void *dst, const void *src, size_t bytes)
{
    ENTER(ctx, st);
    SLA2_CUDA_TRY(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st->stream));
    return SLA2_OK;
}

sla2_status cuda_download(sla2_context *ctx, void *dst, const void *src, size_t bytes)
{
    ENTER(ctx, st);
    SLA2_CUDA_TRY(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st->stream));
    SLA2_CUDA_TRY(ctx, cudaStreamSynchronize(st->stream));
    return SLA2_OK;
}

/* e4m3 ("FN": bias 7, no infinities, 0x7f/0xff NaN), as sla2_e4m3_to_float. */
__device__ float e4m3_to_float(uint8_t bits)
{
    const int exponent = (bits >> 3) & 15, mantissa = bits & 7;
    float v = exponent == 0 ? ldexpf((float)mantissa, -9) : ldexpf(1.0f + (float)mantissa * 0.125f, exponent - 7);
    if (exponent == 15 && mantissa == 7)
        v = __int_as_float(0x7fc00000);
    return bits & 0x80 ? -v : v;
}

/* out[o][i] = bf16(code[o][i] * scale[o] (* gate[o])): a weight-only INT8 or
 * FP8 weight as the bf16 operand of its GEMM, or FP8_GEMM's quantised rows
 * as theirs where FP8 GEMMs are out (the same values, one rounding more) */
__global__ void dequantise_kernel(const uint8_t *codes, const float *scale, int64_t in, int64_t n, bool fp8,
                                  const float *gate, __nv_bfloat16 *out)
{
    /* each code's value, decoded once per block (per element, e4m3 made the
     * fp8 forward 15 ms slower than the int8 one) */
    __shared__ float value[256];
    for (int c = threadIdx.x; c < 256; c += blockDim.x)
        value[c] = fp8 ? e4m3_to_float((uint8_t)c) : (float)(int8_t)c;
    __syncthreads();
    GRID_STRIDE(i, n) out[i] = __float2bfloat16_rn(value[codes[i]] * scale[i / in] * (gate ? gate[i / in] : 1.0f));
}

/* out[o][i] = gate[o] * w[o][i]: a gated linear's weight (T: float or bf16, rounded back to T) */
template <typename T>
__global__ void scale_rows_kernel(const T *w, const float *gate, int64_t in, int64_t n, T *out)
{
    GRID_STRIDE(i, n) out[i] = (T)((float)w[i] * gate[i / in]);
}

/* Activation rows rounded to bf16 per GEMM (128 MB of scratch at most: at
 * Wan2.1-1.3B's 32760 tokens every linear but ffn.2, whose input is 8960
 * wide, takes all its rows at once). */
constexpr int64_t kBf16ChunkElems = int64_t(64) << 20;

__global__ void scale_kernel(const float *a, const float *b, int64_t n, float *out)
{
    GRID_STRIDE(i, n) out[i] = a[i] * b[i];
}

/* Where a linear writes y [rows][lin->out] and its fused epilogue (Gemm's):
 * y = [gelu](x W^T + b), or with accumulate y += gate * (x W^T + b). */
struct LinearOut {
    void *y = nullptr;
    cudaDataType_t type = CUDA_R_32F; /* float32, or bf16 (the FFN's hidden) */
    bool gelu = false, accumulate = false;
    const float *gate = nullptr;
};

/* What a linear reads: rows of float32, bf16, or e4m3 codes
 * (CUDA_R_8F_E4M3) with a scale per row (DIT_ACT_E4M3_ROWS). */
struct LinearIn {
    const void *x = nullptr;
    cudaDataType_t type = CUDA_R_32F;
    const float *scales = nullptr; /* e4m3 codes only */
    /* bf16 rows of ffn.0's bare products: the input is their
     * GeluBiasPre(gelu_bias) (FP8_GEMM linears only, which quantise it) */
    bool gelu = false;
    const float *gelu_bias = nullptr;

    LinearIn(const void *x_, cudaDataType_t type_, int64_t rows, int64_t in) : x(x_), type(type_)
    {
        if (type == CUDA_R_8F_E4M3)
            scales = dit_e4m3_row_scales(const_cast<void *>(x), rows, in);
    }
    /* the rows from r0 on */
    LinearIn from_row(int64_t r0, int64_t in) const
    {
        LinearIn part = *this;
        part.x = advance(const_cast<void *>(x), r0 * in, type);
        if (scales)
            part.scales = scales + r0;
        return part;
    }
};

/* The row-major linear in cuBLASLt's column-major view:
 * y^T [out x rows] = W [in x out]^T x^T [in x rows], the bias along y^T's
 * rows (o.gate is applied to the weight and bias beforehand: gemm_operand). */
Gemm linear_gemm(const dit_linear *lin, const void *w, const void *x, int64_t rows, const LinearOut &o,
                 const float *bias)
{
    Gemm g;
    g.trans_a = CUBLAS_OP_T;
    g.m = lin->out, g.n = rows, g.k = lin->in;
    g.a = w, g.lda = lin->in;
    g.b = x, g.ldb = lin->in;
    g.d = o.y, g.d_type = o.type, g.ldd = lin->out;
    g.bias = bias;
    g.gelu = o.gelu, g.accumulate = o.accumulate;
    return g;
}

/* Rows of x per chunk of a linear's converted input: near-equal chunks of
 * a multiple of 64 rows, so that each chunk of x and y is as aligned as x
 * and y, of kBf16ChunkElems elements at most where 64 rows allow. */
int64_t row_chunk(int64_t rows, int64_t in)
{
    const int64_t max_rows = kBf16ChunkElems / in > 64 ? kBf16ChunkElems / in : 64;
    const int64_t chunks = (rows + max_rows - 1) / max_rows;
    const int64_t chunk = ((rows + chunks - 1) / chunks + 63) / 64 * 64;
    return chunk > rows ? rows : chunk;
}

/* BF16 linears on float32 input: a chunk of x's rows at a time is rounded
 * to bf16 into scratch once, then each linear's bf16 GEMM writes its rows. */
sla2_status bf16_linears(sla2_context *ctx, sla2_cuda_state *st, const float *x, int64_t rows, int count,
                         const dit_linear *const *lins, const LinearOut *outs)
{
    const int64_t in = lins[0]->in, chunk = row_chunk(rows, in);
    Scratch rounded;
    sla2_status s = scratch_alloc(ctx, st, (size_t)(chunk * in) * sizeof(__nv_bfloat16), &rounded);
    for (int64_t r0 = 0; r0 < rows && s == SLA2_OK; r0 += chunk) {
        const int64_t count_rows = rows - r0 < chunk ? rows - r0 : chunk, n = count_rows * in;
        const float *src = x + r0 * in;
        const int64_t quads = reinterpret_cast<uintptr_t>(src) % 16 ? 0 : n / 4;
        round_to_bf16_kernel<<<grid_for(quads > 0 ? quads : n), kThreads, 0, st->stream>>>(
            src, n, quads, static_cast<__nv_bfloat16 *>(rounded.p));
        s = SLA2_CUDA_CHECK(ctx, cudaGetLastError());
        for (int i = 0; i < count && s == SLA2_OK; i++) {
            LinearOut part = outs[i];
            part.y = advance(outs[i].y, r0 * lins[i]->out, outs[i].type);
            Gemm g = linear_gemm(lins[i], lins[i]->codes, rounded.p, count_rows, part, lins[i]->bias);
            g.ab_type = CUDA_R_16BF;
            s = gemm(ctx, st, g);
        }
    }
    return s;
}

constexpr int kMaxLinears = 4;

/* The linear as its GEMM runs it, with the gate of a gated linear
 * (y += gate * (x W^T + b)) folded into its weight rows and bias (what
 * cuBLASLt does with a per-row alpha vector, but 1.5x slower on the H100):
 * float32 and bf16 weights as they are (or a gated copy); INT8 / FP8
 * weights dequantised to a bf16 copy (scale, then gate, then one rounding),
 * so that they run as bf16 GEMMs too. Copies live in `weight` and `bias`
 * (stream-ordered scratch). */
sla2_status gemm_operand(sla2_context *ctx, sla2_cuda_state *st, const dit_linear *lin, const float *gate,
                         dit_linear *out, Scratch *weight, Scratch *bias)
{
    *out = *lin;
    if (gate && lin->bias) {
        sla2_status s = scratch_alloc(ctx, st, (size_t)lin->out * sizeof(float), bias);
        if (s != SLA2_OK)
            return s;
        scale_kernel<<<grid_for(lin->out), kThreads, 0, st->stream>>>(gate, lin->bias, lin->out,
                                                                     static_cast<float *>(bias->p));
        SLA2_CUDA_TRY(ctx, cudaGetLastError());
        out->bias = static_cast<float *>(bias->p);
    }
    const bool quantised = lin->storage == DIT_WEIGHTS_INT8 || dit_codes_e4m3(lin->storage);
    if (!gate && !quantised)
        return SLA2_OK;
    const int64_t n = (int64_t)lin->in * lin->out;
    const bool f32 = lin->storage == DIT_WEIGHTS_F32;
    sla2_status s = scratch_alloc(ctx, st, (size_t)n * (f32 ? sizeof(float) : sizeof(__nv_bfloat16)), weight);
    if (s != SLA2_OK)
        return s;
    if (quantised) {
        dequantise_kernel<<<grid_for(n), kThreads, 0, st->stream>>>(
            static_cast<const uint8_t *>(lin->codes), lin->scale, lin->in, n, dit_codes_e4m3(lin->storage), gate,
            static_cast<__nv_bfloat16 *>(weight->p));
        out->storage = DIT_WEIGHTS_BF16, out->codes = weight->p, out->scale = nullptr;
    } else if (!f32) {
        scale_rows_kernel<__nv_bfloat16><<<grid_for(n), kThreads, 0, st->stream>>>(
            static_cast<const __nv_bfloat16 *>(lin->codes), gate, lin->in, n, static_cast<__nv_bfloat16 *>(weight->p));
        out->codes = weight->p;
    } else {
        scale_rows_kernel<float><<<grid_for(n), kThreads, 0, st->stream>>>(lin->weight, gate, lin->in, n,
                                                                          static_cast<float *>(weight->p));
        out->weight = static_cast<float *>(weight->p);
    }
    LAUNCHED(ctx);
    return SLA2_OK;
}

/* ---- FP8 GEMMs (storage FP8_GEMM) ------------------------------------------ */

/* What the quantiser applies to an input element (column col) before it
 * quantises: nothing, or, for the FFN's hidden activations held as ffn.0's
 * bare products, gelu_tanh(x + bias[col]) rounded to bf16, what ffn.0's
 * GELU epilogue wrote before (moved here: that epilogue made ffn.0's FP8
 * GEMM 0.995 ms instead of 0.754 in session 5's probe, and this pass reads
 * the row anyway). GELU as v sigmoid(2u), the CPU's tanh form rewritten,
 * on the fast exponential: bf16's rounding (2^-9) is far above its error. */
struct NoPre {
    __device__ float operator()(float v, int64_t) const { return v; }
};
struct GeluBiasPre {
    const float *bias; /* NULL: no bias */
    __device__ float operator()(float v, int64_t col) const
    {
        v += bias ? bias[col] : 0.0f;
        const float u = fmaxf(0.7978845608028654f * (v + 0.044715f * v * v * v), -40.0f);
        return __bfloat162float(__float2bfloat16_rn(v * __fdividef(1.0f, 1.0f + __expf(-2.0f * u))));
    }
};

/* An FP8_GEMM linear's input, one block per row, by op_quantise_activations'
 * rule (E4m3RowScale) after pre: any width and alignment. */
template <typename T, typename Pre>
__global__ void __launch_bounds__(kNormThreads)
    quantise_activations_kernel(const T *x, int64_t rows, int64_t in, uint8_t *codes, float *scales, Pre pre)
{
    __shared__ float shared32[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *row = x + r * in;
        float max_abs = 0.0f;
        for (int64_t i = threadIdx.x; i < in; i += blockDim.x)
            max_abs = fmaxf(max_abs, fabsf(pre((float)row[i], i)));
        const E4m3RowScale q(block_max(max_abs, shared32));
        for (int64_t i = threadIdx.x; i < in; i += blockDim.x)
            codes[r * in + i] = q.code(pre((float)row[i], i));
        if (threadIdx.x == 0)
            scales[r] = q.s;
    }
}

/* The same with the row held in registers: 16-byte loads (kVec elements),
 * kHeld of them per thread at most, every load of the row in flight at
 * once, one read of it. A warp takes a row of up to 32 x kHeld vectors
 * (kWarpRow: no block-wide reduction, which made 1536-wide rows take
 * 0.2 ms instead of 0.05), else the block takes one of up to blockDim.x x
 * kHeld. Rows of in % kVec == 0 elements, 16-byte aligned (as x is). */
template <typename T, int kHeld, bool kWarpRow, typename Pre>
__global__ void __launch_bounds__(kNormThreads, 2) /* two blocks per SM: their loads in flight */
    quantise_activations_held_kernel(const T *x, int64_t rows, int64_t in, uint8_t *codes, float *scales, Pre pre)
{
    constexpr int kVec = 16 / sizeof(T);
    __shared__ float shared32[32];
    const int64_t vectors = in / kVec;
    const int group = kWarpRow ? threadIdx.x / 32 : 0, groups = kWarpRow ? blockDim.x / 32 : 1;
    const int t = kWarpRow ? threadIdx.x % 32 : threadIdx.x, stride = kWarpRow ? 32 : blockDim.x;
    for (int64_t r = (int64_t)blockIdx.x * groups + group; r < rows; r += (int64_t)gridDim.x * groups) {
        const uint4 *row = reinterpret_cast<const uint4 *>(x + r * in);
        uint4 held[kHeld];
        float max_abs = 0.0f;
#pragma unroll
        for (int h = 0; h < kHeld; h++) {
            const int64_t v = t + (int64_t)h * stride;
            held[h] = v < vectors ? row[v] : make_uint4(0, 0, 0, 0);
        }
        if constexpr (!std::is_same<Pre, NoPre>::value) {
#pragma unroll
            for (int h = 0; h < kHeld; h++) {
                const int64_t v = t + (int64_t)h * stride;
                T *e = reinterpret_cast<T *>(&held[h]);
#pragma unroll
                for (int k = 0; k < kVec; k++)
                    if (v < vectors) /* the padding stays 0 (and reads no bias past the row) */
                        e[k] = (T)pre((float)e[k], v * kVec + k);
            }
        }
#pragma unroll
        for (int h = 0; h < kHeld; h++) {
            const T *e = reinterpret_cast<const T *>(&held[h]);
#pragma unroll
            for (int k = 0; k < kVec; k++)
                max_abs = fmaxf(max_abs, fabsf((float)e[k]));
        }
        if (kWarpRow)
            for (int o = 16; o > 0; o >>= 1)
                max_abs = fmaxf(max_abs, __shfl_xor_sync(0xffffffffu, max_abs, o));
        else
            max_abs = block_max(max_abs, shared32);
        const E4m3RowScale q(max_abs);
#pragma unroll
        for (int h = 0; h < kHeld; h++) {
            const int64_t v = t + (int64_t)h * stride;
            if (v >= vectors)
                break;
            const T *e = reinterpret_cast<const T *>(&held[h]);
            uint8_t out[kVec];
#pragma unroll
            for (int k = 0; k < kVec; k++)
                out[k] = q.code((float)e[k]);
            if constexpr (kVec == 8)
                *reinterpret_cast<uint2 *>(codes + r * in + v * kVec) = *reinterpret_cast<const uint2 *>(out);
            else
                *reinterpret_cast<uint32_t *>(codes + r * in + v * kVec) = *reinterpret_cast<const uint32_t *>(out);
        }
        if (t == 0)
            scales[r] = q.s;
    }
}

template <typename T, typename Pre = NoPre>
void launch_quantise_activations(cudaStream_t stream, const void *x, int64_t rows, int64_t in, uint8_t *codes,
                                 float *scales, Pre pre = Pre())
{
    constexpr int kVec = 16 / sizeof(T), kWarpHeld = 8, kBlockHeld = 8;
    const T *src = static_cast<const T *>(x);
    const int64_t vectors = in / kVec;
    const bool held = in % kVec == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
    const int64_t warp_blocks = (rows + kNormThreads / 32 - 1) / (kNormThreads / 32);
    const unsigned row_blocks = (unsigned)(rows < 65536 ? rows : 65536);
    if (held && vectors <= 32 * kWarpHeld)
        quantise_activations_held_kernel<T, kWarpHeld, true, Pre>
            <<<(unsigned)(warp_blocks < 65536 ? warp_blocks : 65536), kNormThreads, 0, stream>>>(src, rows, in, codes,
                                                                                               scales, pre);
    else if (held && vectors <= kNormThreads * kBlockHeld)
        quantise_activations_held_kernel<T, kBlockHeld, false, Pre>
            <<<row_blocks, kNormThreads, 0, stream>>>(src, rows, in, codes, scales, pre);
    else
        quantise_activations_kernel<T, Pre><<<row_blocks, kNormThreads, 0, stream>>>(src, rows, in, codes, scales, pre);
}

/* An FP8 GEMM's per-output-channel factors: scale[o] (* gate[o]) for
 * cuBLASLt's A scale, and bias[o] (* gate[o]) in bf16, the bias type it
 * takes beside e4m3 inputs. */
__global__ void fp8_channel_factors_kernel(const float *scale, const float *bias, const float *gate, int64_t out,
                                           float *scale_out, __nv_bfloat16 *bias_out)
{
    GRID_STRIDE(o, out)
    {
        const float g = gate ? gate[o] : 1.0f;
        scale_out[o] = scale[o] * g;
        if (bias)
            bias_out[o] = __float2bfloat16_rn(bias[o] * g);
    }
}

/* One FP8_GEMM linear on a chunk's quantised rows (codes, one scale each):
 * *ran = false when cuBLASLt offers no FP8 GEMM for it. */
sla2_status fp8_linear(sla2_context *ctx, sla2_cuda_state *st, const dit_linear *lin, const uint8_t *codes,
                       const float *row_scales, int64_t rows, const LinearOut &o, bool *ran)
{
    Scratch factors;
    const int64_t out = lin->out;
    TRY_STATUS(scratch_alloc(ctx, st, (size_t)out * (sizeof(float) + sizeof(__nv_bfloat16)), &factors));
    float *a_scale = static_cast<float *>(factors.p);
    __nv_bfloat16 *bias16 = reinterpret_cast<__nv_bfloat16 *>(a_scale + out);
    fp8_channel_factors_kernel<<<grid_for(out), kThreads, 0, st->stream>>>(lin->scale, lin->bias, o.gate, out,
                                                                          a_scale, bias16);
    LAUNCHED(ctx);
    Gemm g = linear_gemm(lin, lin->codes, codes, rows, o, nullptr);
    g.ab_type = CUDA_R_8F_E4M3;
    if (lin->bias)
        g.bias = bias16, g.bias_type = CUDA_R_16BF;
    g.a_scale = a_scale, g.b_scale = row_scales;
    return gemm_lt(ctx, st, g, ran);
}

/* FP8_GEMM linears of one input x: float32 or bf16, quantised a chunk of
 * rows at a time (launch_quantise_activations), or e4m3 rows as a norm
 * wrote them; then each linear's FP8 GEMM writes its rows. Where FP8
 * GEMMs are out (before sm_89, SLA2_CUDA_FP8_GEMM=0, widths that are not
 * multiples of 16, or no cuBLASLt algorithm) the codes go as bf16 values
 * (code x scale) into the bf16 GEMM of the dequantised weight. */
sla2_status fp8_linears(sla2_context *ctx, sla2_cuda_state *st, const LinearIn &x, int64_t rows, int count,
                        const dit_linear *const *lins, const LinearOut *outs)
{
    const int64_t in = lins[0]->in, chunk = row_chunk(rows, in);
    const bool given = x.type == CUDA_R_8F_E4M3, native = st->fp8_gemm && in % 16 == 0;
    Scratch codes, row_scales, values;
    if (!given) {
        TRY_STATUS(scratch_alloc(ctx, st, (size_t)(chunk * in), &codes));
        TRY_STATUS(scratch_alloc(ctx, st, (size_t)chunk * sizeof(float), &row_scales));
    }
    sla2_status s = SLA2_OK;
    for (int64_t r0 = 0; r0 < rows && s == SLA2_OK; r0 += chunk) {
        const int64_t count_rows = rows - r0 < chunk ? rows - r0 : chunk;
        const LinearIn src = x.from_row(r0, in);
        const uint8_t *chunk_codes = static_cast<const uint8_t *>(given ? src.x : codes.p);
        const float *chunk_scales = given ? src.scales : static_cast<const float *>(row_scales.p);
        uint8_t *to_codes = static_cast<uint8_t *>(codes.p);
        float *to_scales = static_cast<float *>(row_scales.p);
        if (x.type == CUDA_R_16BF && x.gelu)
            launch_quantise_activations<__nv_bfloat16>(st->stream, src.x, count_rows, in, to_codes, to_scales,
                                                       GeluBiasPre{x.gelu_bias});
        else if (x.type == CUDA_R_16BF)
            launch_quantise_activations<__nv_bfloat16>(st->stream, src.x, count_rows, in, to_codes, to_scales);
        else if (x.type == CUDA_R_32F)
            launch_quantise_activations<float>(st->stream, src.x, count_rows, in, to_codes, to_scales);
        s = SLA2_CUDA_CHECK(ctx, cudaGetLastError());
        bool values_ready = false;
        for (int i = 0; i < count && s == SLA2_OK; i++) {
            LinearOut part = outs[i];
            part.y = advance(outs[i].y, r0 * lins[i]->out, outs[i].type);
            bool ran = false;
            if (native && lins[i]->out % 16 == 0)
                s = fp8_linear(ctx, st, lins[i], chunk_codes, chunk_scales, count_rows, part, &ran);
            if (s != SLA2_OK || ran)
                continue;
            if (!values.p)
                s = scratch_alloc(ctx, st, (size_t)(chunk * in) * sizeof(__nv_bfloat16), &values);
            if (s == SLA2_OK && !values_ready) {
                dequantise_kernel<<<grid_for(count_rows * in), kThreads, 0, st->stream>>>(
                    chunk_codes, chunk_scales, in, count_rows * in, true, nullptr,
                    static_cast<__nv_bfloat16 *>(values.p));
                s = SLA2_CUDA_CHECK(ctx, cudaGetLastError());
            }
            values_ready = s == SLA2_OK;
            dit_linear operand;
            Scratch weight, bias;
            if (s == SLA2_OK)
                s = gemm_operand(ctx, st, lins[i], part.gate, &operand, &weight, &bias);
            if (s == SLA2_OK) {
                Gemm g = linear_gemm(&operand, operand.codes, values.p, count_rows, part, operand.bias);
                g.ab_type = CUDA_R_16BF;
                s = gemm(ctx, st, g);
            }
        }
    }
    return s;
}

/* y_i = x lins[i]^T + b_i with outs[i]'s epilogue, for linears of the same
 * input width; x is float32, bf16 for weights other than float32, or e4m3
 * rows for FP8_GEMM weights. Float32 weights run TF32 GEMMs; FP8_GEMM ones
 * FP8 GEMMs (fp8_linears); the others bf16 GEMMs (gemm_operand), their
 * float32 input rounded to bf16 once for all of them. */
sla2_status run_linears(sla2_context *ctx, sla2_cuda_state *st, const LinearIn &x, int64_t rows, int count,
                        const dit_linear *const *lins, const LinearOut *outs)
{
    if (rows <= 0 || count <= 0)
        return SLA2_OK;
    if (count > kMaxLinears)
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "DiT linears: %d at once (at most %d)", count, kMaxLinears);
    Scratch weights[kMaxLinears], biases[kMaxLinears];
    dit_linear operand[kMaxLinears];
    const dit_linear *bf16[kMaxLinears], *fp8[kMaxLinears];
    LinearOut bf16_outs[kMaxLinears], fp8_outs[kMaxLinears];
    int num_bf16 = 0, num_fp8 = 0;
    sla2_status s = SLA2_OK;
    for (int i = 0; i < count && s == SLA2_OK; i++) {
        if (lins[i]->in != lins[0]->in)
            return sla2_fail(ctx, SLA2_ERR_SHAPE, "DiT linears: input widths %d and %d", lins[0]->in, lins[i]->in);
        if (x.type == CUDA_R_16BF && lins[i]->storage == DIT_WEIGHTS_F32)
            return sla2_fail(ctx, SLA2_ERR_DTYPE, "DiT linears: bf16 input for a float32 weight");
        if (x.gelu && x.type != CUDA_R_16BF)
            return sla2_fail(ctx, SLA2_ERR_DTYPE, "DiT linears: pre-GELU rows must be bf16");
        if ((x.type == CUDA_R_8F_E4M3 || x.gelu) && lins[i]->storage != DIT_WEIGHTS_FP8_GEMM)
            return sla2_fail(ctx, SLA2_ERR_DTYPE, "DiT linears: %s as the input of a weight not stored as fp8_gemm",
                             x.gelu ? "pre-GELU rows" : "e4m3 rows");
        if (lins[i]->storage == DIT_WEIGHTS_FP8_GEMM) {
            fp8[num_fp8] = lins[i], fp8_outs[num_fp8++] = outs[i];
            continue;
        }
        s = gemm_operand(ctx, st, lins[i], outs[i].gate, &operand[i], &weights[i], &biases[i]);
        const dit_linear *lin = &operand[i];
        if (s != SLA2_OK)
            break;
        if (lin->storage == DIT_WEIGHTS_F32) {
            s = gemm(ctx, st, linear_gemm(lin, lin->weight, x.x, rows, outs[i], lin->bias));
        } else if (x.type == CUDA_R_32F) {
            bf16[num_bf16] = lin, bf16_outs[num_bf16++] = outs[i];
        } else {
            Gemm g = linear_gemm(lin, lin->codes, x.x, rows, outs[i], lin->bias);
            g.ab_type = CUDA_R_16BF;
            s = gemm(ctx, st, g);
        }
    }
    if (s == SLA2_OK && num_bf16 > 0)
        s = bf16_linears(ctx, st, static_cast<const float *>(x.x), rows, num_bf16, bf16, bf16_outs);
    if (s == SLA2_OK && num_fp8 > 0)
        s = fp8_linears(ctx, st, x, rows, num_fp8, fp8, fp8_outs);
    return s;
}

sla2_status cuda_linear(sla2_context *ctx, const float *x, int64_t rows, const dit_linear *lin, float *y)
{
    ENTER(ctx, st);
    LinearOut o;
    o.y = y;
    return run_linears(ctx, st, LinearIn(x, CUDA_R_32F, rows, lin->in), rows, 1, &lin, &o);
}

/* the cuBLASLt type of a DiT activation dtype (float32 or bf16) */
sla2_status act_type(sla2_context *ctx, sla2_dtype act, cudaDataType_t *out)
{
    if (act != SLA2_DTYPE_F32 && act != SLA2_DTYPE_BF16)
        return sla2_fail(ctx, SLA2_ERR_DTYPE, "DiT activations: %s (expected f32 or bf16)",
                         act == DIT_ACT_E4M3_ROWS ? "e4m3 rows" : sla2_dtype_name(act));
    *out = act == SLA2_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    return SLA2_OK;
}

/* act_type, and e4m3 rows (DIT_ACT_E4M3_ROWS) as CUDA_R_8F_E4M3: for the
 * norms' outputs and the linears' inputs, the only places they go */
sla2_status act_or_rows_type(sla2_context *ctx, sla2_dtype act, cudaDataType_t *out)
{
    if (act != DIT_ACT_E4M3_ROWS)
        return act_type(ctx, act, out);
    *out = CUDA_R_8F_E4M3;
    return SLA2_OK;
}

sla2_status cuda_linears(sla2_context *ctx, const void *x, sla2_dtype act, int64_t rows, int count,
                         const dit_linear *const *lins, void *const *ys)
{
    ENTER(ctx, st);
    if (count < 0 || count > kMaxLinears)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "DiT linears: %d at once (0 to %d)", count, kMaxLinears);
    cudaDataType_t type = CUDA_R_32F;
    TRY_STATUS(act_or_rows_type(ctx, act, &type));
    if (count == 0)
        return SLA2_OK;
    LinearOut outs[kMaxLinears];
    for (int i = 0; i < count; i++)
        outs[i].y = ys[i], outs[i].type = type == CUDA_R_8F_E4M3 ? CUDA_R_16BF : type;
    return run_linears(ctx, st, LinearIn(x, type, rows, lins[0]->in), rows, count, lins, outs);
}

/* acc += gate * (x W^T + b) in the GEMM's epilogue (acc read as C, the gate
 * applied to a copy of the weight: gemm_operand): no pass over y, which is
 * not needed. */
sla2_status cuda_linear_residual(sla2_context *ctx, const void *x, sla2_dtype act, int64_t rows,
                                 const dit_linear *lin, const float *gate, float *y, float *acc)
{
    ENTER(ctx, st);
    (void)y;
    cudaDataType_t x_type = CUDA_R_32F;
    TRY_STATUS(act_or_rows_type(ctx, act, &x_type));
    LinearOut o;
    o.y = acc, o.accumulate = true, o.gate = gate;
    return run_linears(ctx, st, LinearIn(x, x_type, rows, lin->in), rows, 1, &lin, &o);
}

/* The FFN with GELU in ffn.0's epilogue. With bf16 GEMMs (weights other
 * than float32) ffn.0 writes the hidden activations as bf16 straight into
 * `hidden` (what ffn.2's bf16 GEMM reads: the rounding the unfused path
 * does, without its passes); with float32 weights they stay float32 for
 * ffn.2's TF32 GEMM (a GELU pass of its own instead measured no faster).
 * With FP8_GEMM weights ffn.0 writes its bare products (bf16) and the bias
 * and GELU go into the pass that quantises ffn.2's input (GeluBiasPre).
 * ffn.2 adds gate * (...) to acc in its epilogue. */
sla2_status cuda_ffn_residual(sla2_context *ctx, const void *x, sla2_dtype act, int64_t rows,
                              const dit_linear *ffn0, const dit_linear *ffn2, const float *gate, float *hidden,
                              float *y, float *acc)
{
    ENTER(ctx, st);
    (void)y;
    cudaDataType_t x_type = CUDA_R_32F;
    TRY_STATUS(act_or_rows_type(ctx, act, &x_type));
    if (ffn0->out != ffn2->in)
        return sla2_fail(ctx, SLA2_ERR_SHAPE, "DiT FFN: ffn.0 gives %d features, ffn.2 takes %d", ffn0->out,
                         ffn2->in);
    const bool bf16_hidden = ffn0->storage != DIT_WEIGHTS_F32 && ffn2->storage != DIT_WEIGHTS_F32;
    const bool gelu_in_quantiser =
        ffn0->storage == DIT_WEIGHTS_FP8_GEMM && ffn2->storage == DIT_WEIGHTS_FP8_GEMM;
    dit_linear bare = *ffn0;
    LinearOut h;
    h.y = hidden, h.gelu = !gelu_in_quantiser, h.type = bf16_hidden ? CUDA_R_16BF : CUDA_R_32F;
    if (gelu_in_quantiser)
        bare.bias = nullptr;
    const dit_linear *first = &bare;
    sla2_status s = run_linears(ctx, st, LinearIn(x, x_type, rows, ffn0->in), rows, 1, &first, &h);
    LinearIn hidden_in(hidden, h.type, rows, ffn2->in);
    hidden_in.gelu = gelu_in_quantiser, hidden_in.gelu_bias = ffn0->bias;
    LinearOut o;
    o.y = acc, o.accumulate = true, o.gate = gate;
    if (s == SLA2_OK)
        s = run_linears(ctx, st, hidden_in, rows, 1, &ffn2, &o);
    return s;
}

/* The normalised rows of x, then post, into y of dtype act: float32, bf16,
 * or e4m3 rows (DIT_ACT_E4M3_ROWS), which the warp-per-row kernel
 * quantises from the registers that hold the row; at other widths the rows
 * go through float32 scratch and the activations' quantiser. */
sla2_status layer_norm_into(sla2_context *ctx, sla2_cuda_state *st, const float *x, int64_t rows, int64_t dim,
                            double eps, const NormOut &post, void *y, sla2_dtype act)
{
    cudaDataType_t type = CUDA_R_32F;
    TRY_STATUS(act_or_rows_type(ctx, act, &type));
    if (rows <= 0)
        return SLA2_OK;
    if (type == CUDA_R_16BF) {
        launch_layer_norm(st->stream, x, rows, dim, (float)eps, post, static_cast<__nv_bfloat16 *>(y));
    } else if (type == CUDA_R_32F) {
        launch_layer_norm(st->stream, x, rows, dim, (float)eps, post, static_cast<float *>(y));
    } else if (warp_rows(x, y, dim)) {
        const E4m3Rows out{static_cast<uint8_t *>(y), dit_e4m3_row_scales(y, rows, dim)};
        launch_layer_norm_warp(st->stream, x, rows, dim, (float)eps, post, out);
    } else {
        Scratch normed;
        TRY_STATUS(scratch_alloc(ctx, st, (size_t)(rows * dim) * sizeof(float), &normed));
        launch_layer_norm(st->stream, x, rows, dim, (float)eps, post, static_cast<float *>(normed.p));
        LAUNCHED(ctx);
        launch_quantise_activations<float>(st->stream, normed.p, rows, dim, static_cast<uint8_t *>(y),
                                           dit_e4m3_row_scales(y, rows, dim));
    }
    LAUNCHED(ctx);
    return SLA2_OK;
}

sla2_status cuda_layer_norm(sla2_context *ctx, const float *x, int64_t rows, int64_t dim, double eps,
                            const float *weight, const float *bias, void *y, sla2_dtype act)
{
    ENTER(ctx, st);
    return layer_norm_into(ctx, st, x, rows, dim, eps, NormOut{weight, bias, nullptr, nullptr}, y, act);
}

sla2_status cuda_norm_modulate(sla2_context *ctx, const float *x, int64_t rows, int64_t dim, double eps,
                               const float *shift, const float *scale, void *y, sla2_dtype act)
{
    ENTER(ctx, st);
    return layer_norm_into(ctx, st, x, rows, dim, eps, NormOut{nullptr, nullptr, shift, scale}, y, act);
}

sla2_status cuda_rms_norm(sla2_context *ctx, void *x, sla2_dtype act, int64_t rows, int64_t dim, double eps,
                          const float *weight)
{
    ENTER(ctx, st);
    cudaDataType_t type = CUDA_R_32F;
    TRY_STATUS(act_type(ctx, act, &type));
    if (rows <= 0)
        return SLA2_OK;
    if (type == CUDA_R_16BF)
        rms_norm_kernel<<<(unsigned)rows, kNormThreads, 0, st->stream>>>(static_cast<__nv_bfloat16 *>(x), dim,
                                                                         (float)eps, weight);
    else
        rms_norm_kernel<<<(unsigned)rows, kNormThreads, 0, st->stream>>>(static_cast<float *>(x), dim, (float)eps,
                                                                         weight);
    LAUNCHED(ctx);
    return SLA2_OK;
}

sla2_status cuda_gelu(sla2_context *ctx, float *x, int64_t n)
{
    ENTER(ctx, st);
    if (n <= 0)
        return SLA2_OK;
    gelu_tanh_kernel<<<grid_for(n), kThreads, 0, st->stream>>>(x, n);
    LAUNCHED(ctx);
    return SLA2_OK;
}

sla2_status cuda_silu(sla2_context *ctx, const float *x, int64_t n, float *y)
{
    ENTER(ctx, st);
    if (n <= 0)
        return SLA2_OK;
    silu_kernel<<<grid_for(n), kThreads, 0, st->stream>>>(x, n, y);
    LAUNCHED(ctx);
    return SLA2_OK;
}

sla2_status cuda_add(sla2_context *ctx, const float *a, const float *b, int64_t b_elems, float *out, int64_t n)
{
    ENTER(ctx, st);
    if (n <= 0)
        return SLA2_OK;
    if (b_elems <= 0)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "DiT add: b has %lld elements", (long long)b_elems);
    add_kernel<<<grid_for(n), kThreads, 0, st->stream>>>(a, b, b_elems, out, n);
    LAUNCHED(ctx);
    return SLA2_OK;
}

/* Wan's split of the head_dim / 2 pairs into frames | height | width. */
sla2_status rope_grid(sla2_context *ctx, const int grid[3], int64_t heads, int64_t head_dim, RopeGrid *g)
{
    if (head_dim % 2)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "DiT RoPE: head_dim %lld is odd", (long long)head_dim);
    g->frames = grid[0], g->height = grid[1], g->width = grid[2];
    g->pairs = head_dim / 2, g->hw_pairs = g->pairs / 3, g->f_pairs = g->pairs - 2 * g->hw_pairs;
    g->f_dim = head_dim - 4 * (head_dim / 6), g->hw_dim = 2 * (head_dim / 6);
    g->heads = heads, g->head_dim = head_dim;
    return SLA2_OK;
}

sla2_status cuda_norm_rope(sla2_context *ctx, void *x, sla2_dtype act, const int grid[3], int64_t heads,
                           int64_t head_dim, double eps, const float *weight)
{
    ENTER(ctx, st);
    if (act != SLA2_DTYPE_F32 && act != SLA2_DTYPE_BF16)
        return sla2_fail(ctx, SLA2_ERR_DTYPE, "DiT norm_rope: %s activations", sla2_dtype_name(act));
    RopeGrid g;
    sla2_status s = rope_grid(ctx, grid, heads, head_dim, &g);
    const int64_t tokens = g.frames * g.height * g.width;
    if (s != SLA2_OK || tokens <= 0)
        return s;
    Scratch table;
    const int64_t entries = rope_table_entries(g);
    TRY_STATUS(scratch_alloc(ctx, st, (size_t)entries * sizeof(double2), &table));
    const double2 *t = static_cast<const double2 *>(table.p);
    rope_table_kernel<<<grid_for(entries), kThreads, 0, st->stream>>>(g, static_cast<double2 *>(table.p));
    LAUNCHED(ctx);
    const size_t smem = (size_t)g.pairs * sizeof(float2);
    if (act == SLA2_DTYPE_BF16)
        norm_rope_kernel<__nv_bfloat16><<<(unsigned)tokens, kNormThreads, smem, st->stream>>>(
            static_cast<__nv_bfloat16 *>(x), g, t, (float)eps, weight);
    else
        norm_rope_kernel<float><<<(unsigned)tokens, kNormThreads, smem, st->stream>>>(static_cast<float *>(x), g, t,
                                                                                     (float)eps, weight);
    LAUNCHED(ctx);
    return SLA2_OK;
}

static sla2_status dense_attention_f32(sla2_context *ctx, sla2_cuda_state *st, const float *q, int64_t Lq,
                                       const float *k, const float *v, int64_t Lk, int64_t heads, int64_t head_dim,
                                       float *out);

/* softmax(q k^T / sqrt(d)) v per head, q and out [Lq][H][d] (float32 or
 * bf16), k and v [Lk][H][d] float32: the fused bf16 kernel of
 * cross_attention.cu where it applies (head_dim 64 and 128, aligned
 * pointers); else the float32 GEMM path below, with bf16 q widened into
 * scratch and its output rounded back. */
sla2_status cuda_dense_attention(sla2_context *ctx, const void *q, int64_t Lq, const float *k, const float *v,
                                 int64_t Lk, int64_t heads, int64_t head_dim, void *out, sla2_dtype act)
{
    ENTER(ctx, st);
    cudaDataType_t type = CUDA_R_32F;
    TRY_STATUS(act_type(ctx, act, &type));
    if (Lq <= 0 || heads <= 0)
        return SLA2_OK;
    if (Lk <= 0)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "DiT cross-attention: no keys");
    sla2_status fused = cuda_cross_attention(ctx, st, q, Lq, k, v, Lk, heads, head_dim, out, type == CUDA_R_16BF);
    if (fused != SLA2_ERR_UNSUPPORTED)
        return fused;
    sla2_clear_error(ctx); /* another head_dim, or misaligned pointers: the GEMM path */
    if (type == CUDA_R_32F)
        return dense_attention_f32(ctx, st, static_cast<const float *>(q), Lq, k, v, Lk, heads, head_dim,
                                   static_cast<float *>(out));
    const int64_t n = Lq * heads * head_dim;
    Scratch wide;
    TRY_STATUS(scratch_alloc(ctx, st, 2 * (size_t)n * sizeof(float), &wide));
    float *q32 = static_cast<float *>(wide.p), *out32 = q32 + n;
    widen_bf16_kernel<<<grid_for(n), kThreads, 0, st->stream>>>(static_cast<const __nv_bfloat16 *>(q), n, q32);
    SLA2_CUDA_TRY(ctx, cudaGetLastError());
    TRY_STATUS(dense_attention_f32(ctx, st, q32, Lq, k, v, Lk, heads, head_dim, out32));
    round_to_bf16_kernel<<<grid_for(n), kThreads, 0, st->stream>>>(out32, n, 0, static_cast<__nv_bfloat16 *>(out));
    LAUNCHED(ctx);
    return SLA2_OK;
}

/* The float32 path: per chunk of queries, scores [H][rows][Lk] = one
 * batched GEMM over the heads, a row softmax, then out = scores v, another
 * batched GEMM. The scores live in stream-ordered scratch
 * (sla2_cuda_scratch), so no synchronisation is needed to free them. */
static sla2_status dense_attention_f32(sla2_context *ctx, sla2_cuda_state *st, const float *q, int64_t Lq,
                                       const float *k, const float *v, int64_t Lk, int64_t heads, int64_t head_dim,
                                       float *out)
{
    const int64_t stride = heads * head_dim;
    int64_t chunk = kScoreChunkElems / (heads * Lk);
    chunk = chunk < 1 ? 1 : (chunk > Lq ? Lq : chunk);
    float *scores = nullptr;
    SLA2_CUDA_TRY(ctx, sla2_cuda_scratch(st, (size_t)(heads * chunk * Lk) * sizeof(float), (void **)&scores));
    sla2_status s = SLA2_OK;
    for (int64_t row0 = 0; row0 < Lq && s == SLA2_OK; row0 += chunk) {
        const int64_t rows = Lq - row0 < chunk ? Lq - row0 : chunk;
        /* scores^T [Lk x rows] = K_h [d x Lk]^T Q_h [d x rows] (column-major views) */
        Gemm sc;
        sc.trans_a = CUBLAS_OP_T;
        sc.m = Lk, sc.n = rows, sc.k = head_dim;
        sc.a = k, sc.lda = stride, sc.stride_a = head_dim;
        sc.b = q + row0 * stride, sc.ldb = stride, sc.stride_b = head_dim;
        sc.d = scores, sc.ldd = Lk, sc.stride_d = rows * Lk;
        sc.batch = (int)heads;
        sc.alpha = 1.0f / sqrtf((float)head_dim);
        s = gemm(ctx, st, sc);
        if (s != SLA2_OK)
            break;
        const int64_t total_rows = heads * rows, rows_per_block = kThreads / 32;
        softmax_rows_kernel<<<(unsigned)((total_rows + rows_per_block - 1) / rows_per_block), kThreads, 0,
                              st->stream>>>(scores, total_rows, Lk);
        s = SLA2_CUDA_CHECK(ctx, cudaGetLastError());
        if (s != SLA2_OK)
            break;
        /* out_h^T [d x rows] = V_h [d x Lk] P^T [Lk x rows] */
        Gemm pv;
        pv.m = head_dim, pv.n = rows, pv.k = Lk;
        pv.a = v, pv.lda = stride, pv.stride_a = head_dim;
        pv.b = scores, pv.ldb = Lk, pv.stride_b = rows * Lk;
        pv.d = out + row0 * stride, pv.ldd = stride, pv.stride_d = head_dim;
        pv.batch = (int)heads;
        s = gemm(ctx, st, pv);
    }
    sla2_status freed = SLA2_CUDA_CHECK(ctx, cudaFreeAsync(scores, st->stream));
    return s != SLA2_OK ? s : freed;
}

const dit_backend cuda_table = {
    "cuda",
    cuda_alloc,
    cuda_release,
    cuda_upload,
    cuda_download,
    cuda_linear,
    cuda_layer_norm,
    cuda_rms_norm,
    cuda_gelu,
    cuda_silu,
    cuda_add,
    cuda_dense_attention,
    1, /* bf16_activations */
    1, /* e4m3_rows */
    cuda_norm_modulate,
    cuda_linears,
    cuda_norm_rope,
    cuda_linear_residual,
    cuda_ffn_residual,
};

} // namespace

extern "C" const dit_backend *sla2_cuda_dit_backend(void)
{
    return &cuda_table;
}

/* The context's stream (a cudaStream_t), so that a benchmark can put CUDA
 * events between the operators; NULL for a context of another backend. */
extern "C" void *sla2_cuda_dit_stream(sla2_context *ctx)
{
    if (!ctx || ctx->backend != SLA2_BACKEND_CUDA || !ctx->backend_state)
        return nullptr;
    return static_cast<void *>(state_of(ctx)->stream);
}
