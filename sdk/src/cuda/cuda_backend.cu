/* The CUDA backend: device selection, the context's stream, cuBLASLt handle
 * and workspace, and the attention forward as a sequence of kernels:
 *   quantise: the query pass (pooled mean, INT8 Q, alpha per row), key
 *             statistics, then one key-value pass (smoothed INT8 K, phi(K),
 *             V in fp16 and e4m3)
 *   router:   projections, scores, top-k lists
 *   linear:   S_total = phi(K)^T V (cuBLASLt), then O_l per query block
 *             over the complement of its kept blocks, written into out
 *   sparse:   the block-sparse kernel with the alpha-mix in its epilogue
 *   mix:      SLA v1's output projection (v1 only). */
#include "cuda_backend.h"
#include "sla2_cuda_profile.h"

#include <algorithm>
#include <stdlib.h>
#include <string.h>

sla2_status sla2_cuda_error(sla2_context *ctx, cudaError_t err, const char *call, const char *file, int line)
{
    const char *base = strrchr(file, '/');
    cudaGetLastError(); /* clear a sticky launch error so the context stays usable where possible */
    return sla2_fail(ctx, err == cudaErrorMemoryAllocation ? SLA2_ERR_OUT_OF_MEMORY : SLA2_ERR_BACKEND,
                     "CUDA: %s failed: %s (%s:%d)", call, cudaGetErrorString(err), base ? base + 1 : file, line);
}

sla2_status sla2_cublas_error(sla2_context *ctx, cublasStatus_t st, const char *call, const char *file, int line)
{
    const char *base = strrchr(file, '/');
    return sla2_fail(ctx, st == CUBLAS_STATUS_ALLOC_FAILED ? SLA2_ERR_OUT_OF_MEMORY : SLA2_ERR_BACKEND,
                     "cuBLASLt: %s failed: %s (%s:%d)", call, cublasLtGetStatusString(st), base ? base + 1 : file,
                     line);
}

static sla2_cuda_state *state_of(const sla2_context *ctx)
{
    return static_cast<sla2_cuda_state *>(ctx->backend_state);
}

static void cuda_destroy(sla2_context *ctx)
{
    sla2_cuda_state *st = state_of(ctx);
    if (!st)
        return;
    cudaSetDevice(st->device);
    if (st->stream)
        cudaStreamSynchronize(st->stream);
    for (cudaEvent_t &e : st->events)
        if (e)
            cudaEventDestroy(e);
    cudaFree(st->workspace);
    cudaFree(st->lt_workspace);
    if (st->pool)
        cudaMemPoolDestroy(st->pool);
    if (st->lt)
        cublasLtDestroy(st->lt);
    if (st->stream)
        cudaStreamDestroy(st->stream);
    free(st);
    ctx->backend_state = nullptr;
}

/* ---- Workspace ------------------------------------------------------------ */

namespace {

struct Carver {
    char *base;
    size_t used = 0;
    template <typename T>
    T *take(size_t elems)
    {
        size_t off = (used + 255) & ~(size_t)255;
        used = off + elems * sizeof(T);
        return base ? reinterpret_cast<T *>(base + off) : nullptr;
    }
};

/* Lays the workspace out for p (base NULL: only measures). The accumulators
 * that are zeroed before each call come first, contiguous. */
size_t carve_workspace(sla2k_problem &p, char *base, size_t *zeroed_bytes, float **scores)
{
    Carver c{base};
    const size_t bh = (size_t)p.batch * p.heads, D = p.head_dim;
    const size_t nq = p.num_q_blocks, nk = p.num_k_blocks, rows = bh * p.padded_len;
    p.k_sum = c.take<double>(bh * D);
    p.alpha_sum = c.take<double>(1);
    p.v_absmax = c.take<float>(bh * D);
    p.phi_k_sum = c.take<float>(bh * D);
    *zeroed_bytes = c.used;
    p.k_block_mean = c.take<float>(bh * nk * D);
    p.q_block_mean = c.take<float>(bh * nq * D);
    p.q_proj = c.take<float>(bh * nq * D);
    p.k_proj = c.take<float>(bh * nk * D);
    *scores = c.take<float>(bh * nq * nk);
    p.kept_blocks = c.take<int>(bh * nq * p.kept);
    p.v16 = (p.pv == SLA2K_PV_F16 || p.use_linear) ? c.take<__half>(rows * D) : nullptr;
    p.phi_k = p.use_linear ? c.take<__half>(rows * D) : nullptr;
    p.phi_k_block_sum = p.use_linear && p.subtract_kept ? c.take<float>(bh * nk * D) : nullptr;
    p.k8 = p.qk == SLA2K_QK_INT8 ? c.take<int8_t>(rows * D) : nullptr;
    p.k_scale = c.take<float>(bh * nk);
    p.q8 = p.qk == SLA2K_QK_INT8 ? c.take<int8_t>(bh * nq * p.block_q * D) : nullptr;
    p.q_scale = p.qk == SLA2K_QK_INT8 ? c.take<float>(bh * nq) : nullptr;
    p.row_alpha = p.alpha_kind == SLA2K_ALPHA_PER_ROW ? c.take<float>(bh * p.seq_len) : nullptr;
    p.v8t = p.pv == SLA2K_PV_FP8 ? c.take<uint8_t>(rows * D) : nullptr;
    p.v8h = p.pv == SLA2K_PV_FP8_F16 ? c.take<__half>(rows * D) : nullptr;
    p.k16_hi = p.qk != SLA2K_QK_INT8 ? c.take<__half>(rows * D) : nullptr;
    p.k16_lo = p.qk == SLA2K_QK_F16X3 ? c.take<__half>(rows * D) : nullptr;
    if (p.use_linear)
        p.s_total = c.take<float>(bh * D * D);
    if (p.sla_v1) {
        p.o_sparse = c.take<float>(bh * p.seq_len * D);
        p.o_linear = c.take<float>(bh * p.seq_len * D);
    }
    return c.used;
}

sla2k_tensor view_of(const sla2_tensor *t)
{
    return sla2k_tensor{t->data, t->stride[0], t->stride[1], t->stride[2], t->stride[3]};
}

} // namespace

/* ---- Forward -------------------------------------------------------------- */

/* SLA2_CUDA_STAGES=1 also gives linear_out the opt-in limit of sm_89 and
 * sm_120 (99 KB), so that its two-stage path runs where it is tested. */
static size_t linear_out_smem_limit(const sla2_cuda_state *st)
{
    return st->force_one_stage ? std::min<size_t>(st->smem_optin_bytes, 99 * 1024) : st->smem_optin_bytes;
}

static sla2_status describe(sla2_context *ctx, const sla2_cuda_state *st, const sla2_attention_problem *pr,
                            sla2k_problem *p, sla2_quant_mode *used)
{
    memset(p, 0, sizeof *p);
    p->batch = (int)pr->batch;
    p->heads = (int)pr->heads;
    p->seq_len = (int)pr->seq_len;
    p->head_dim = (int)pr->head_dim;
    p->block_q = pr->block_q;
    p->num_q_blocks = (int)pr->num_q_blocks;
    p->num_k_blocks = (int)pr->num_k_blocks;
    p->kept = (int)pr->kept_per_q_block;
    p->padded_len = p->num_k_blocks * SLA2K_BLOCK_K;
    p->softmax_scale = pr->softmax_scale;
    p->in_dtype = pr->q->dtype;
    p->out_dtype = pr->out->dtype;
    if (pr->block_k != SLA2K_BLOCK_K || (pr->block_q != 64 && pr->block_q != 128) ||
        (pr->head_dim != 64 && pr->head_dim != 128))
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "CUDA backend: block_q %d, block_k %d, head_dim %lld not supported",
                         pr->block_q, pr->block_k, (long long)pr->head_dim);
    /* the passes before the sparse kernel run 1-D grids of num_k_blocks * batch * heads */
    if (pr->seq_len > INT32_MAX / 2 || pr->batch * pr->heads > 65535 ||
        pr->num_k_blocks * pr->batch * pr->heads > INT32_MAX)
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "CUDA backend: seq_len %lld or batch*heads %lld too large",
                         (long long)pr->seq_len, (long long)(pr->batch * pr->heads));

    const bool has_fp8 = st->cc_major > 8 || (st->cc_major == 8 && st->cc_minor >= 9);
    switch (pr->quant) {
    case SLA2_QUANT_NONE:
        p->qk = pr->q->dtype == SLA2_DTYPE_F32 ? SLA2K_QK_F16X3 : SLA2K_QK_F16;
        p->pv = SLA2K_PV_F16;
        *used = SLA2_QUANT_NONE;
        break;
    case SLA2_QUANT_INT8:
        p->qk = SLA2K_QK_INT8;
        p->pv = SLA2K_PV_F16;
        *used = SLA2_QUANT_INT8;
        break;
    default:
        p->qk = SLA2K_QK_INT8;
        /* sm_90: e4m3 wgmma, or without it e4m3-rounded operands on FP16
         * mma.sync (the same numbers; faster there than e4m3 mma.sync,
         * which SLA2_CUDA_FP8_MMA=1 forces). */
        if (!has_fp8)
            p->pv = SLA2K_PV_F16;
        else if (st->cc_major == 9 && !st->use_wgmma && !st->force_fp8_mma)
            p->pv = SLA2K_PV_FP8_F16;
        else
            p->pv = SLA2K_PV_FP8;
        *used = has_fp8 ? SLA2_QUANT_INT8_FP8 : SLA2_QUANT_INT8;
        break;
    }
    p->feature_map = pr->feature_map;
    p->sla_v1 = pr->proj_l_weight != nullptr;
    p->alpha_kind = p->sla_v1 ? SLA2K_ALPHA_ONE : (int)pr->alpha_kind;
    p->use_linear = p->sla_v1 || (p->alpha_kind != SLA2K_ALPHA_ONE && p->kept < p->num_k_blocks);
    p->subtract_kept = !p->sla_v1;
    p->q = view_of(pr->q);
    p->k = view_of(pr->k);
    p->v = view_of(pr->v);
    p->out = pr->out->data;
    p->out_stride_b = pr->out->stride[0];
    p->out_stride_h = pr->out->stride[1];
    p->out_stride_l = pr->out->stride[2];
    p->out_stride_d = pr->out->stride[3];
    const size_t pair_bytes = 2 * sla2_dtype_size(pr->out->dtype);
    p->out_paired = p->out_stride_d == 1 && p->out_stride_b % 2 == 0 && p->out_stride_h % 2 == 0 &&
                    p->out_stride_l % 2 == 0 && (uintptr_t)p->out % pair_bytes == 0;
    p->out_quad = p->out_stride_d == 1 && p->out_stride_b % 4 == 0 && p->out_stride_h % 4 == 0 &&
                  p->out_stride_l % 4 == 0 && (uintptr_t)p->out % (2 * pair_bytes) == 0;
    p->router_q = pr->router_q;
    p->router_k = pr->router_k;
    p->router_q_per_head = pr->router_q_per_head;
    p->router_k_per_head = pr->router_k_per_head;
    p->alpha = pr->alpha;
    p->alpha_w = pr->alpha_w;
    p->alpha_b = pr->alpha_b;
    p->proj_w = pr->proj_l_weight;
    p->proj_b = pr->proj_l_bias;

    p->wgmma = st->use_wgmma;
    p->stages = sla2k_sparse_smem_bytes(*p, 2) <= st->smem_optin_bytes && !st->force_one_stage ? 2 : 1;
    const size_t smem = sla2k_sparse_smem_bytes(*p, p->stages);
    if (smem > st->smem_optin_bytes)
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED,
                         "CUDA backend: this configuration (head_dim %d, block_q %d, mode %s) needs %zu bytes of "
                         "shared memory per block, the device allows %zu",
                         p->head_dim, p->block_q, sla2_quant_mode_name(pr->quant), smem, st->smem_optin_bytes);
    if (p->use_linear && sla2k_linear_out_smem_bytes(*p, st->smem_optin_bytes) > st->smem_optin_bytes)
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED,
                         "CUDA backend: the linear branch needs %zu bytes of shared memory per block, the device "
                         "allows %zu",
                         sla2k_linear_out_smem_bytes(*p, st->smem_optin_bytes), st->smem_optin_bytes);
    if ((size_t)p->num_k_blocks * 4 * 8 > st->smem_optin_bytes)
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "CUDA backend: %d key blocks exceed the router's shared memory",
                         p->num_k_blocks);
    return SLA2_OK;
}

static sla2_status ensure_workspace(sla2_context *ctx, sla2_cuda_state *st, size_t bytes)
{
    if (bytes <= st->workspace_bytes)
        return SLA2_OK;
    SLA2_CUDA_TRY(ctx, cudaStreamSynchronize(st->stream));
    cudaFree(st->workspace);
    st->workspace = nullptr;
    st->workspace_bytes = 0;
    SLA2_CUDA_TRY(ctx, cudaMalloc(&st->workspace, bytes));
    st->workspace_bytes = bytes;
    return SLA2_OK;
}

/* Records the event that starts stage `stage` (or ends the last) when the call is timed. */
static cudaError_t mark(const sla2_cuda_state *st, bool timed, int stage)
{
    return timed ? cudaEventRecord(st->events[stage], st->stream) : cudaSuccess;
}

#define LAUNCH(call) SLA2_CUDA_TRY(ctx, call)

static sla2_status forward_on_device(sla2_context *ctx, const sla2_attention_problem *pr,
                                     sla2_attention_result *result);

/* Runs on the context's device and gives the calling thread its current
 * device back, so that the call does not change the caller's CUDA state. */
static sla2_status cuda_attention_forward(sla2_context *ctx, const sla2_attention_problem *pr,
                                          sla2_attention_result *result)
{
    sla2_cuda_state *st = state_of(ctx);
    int previous = -1;
    if (cudaGetDevice(&previous) != cudaSuccess)
        previous = -1;
    SLA2_CUDA_TRY(ctx, cudaSetDevice(st->device));
    sla2_status status = forward_on_device(ctx, pr, result);
    if (previous >= 0 && previous != st->device)
        cudaSetDevice(previous);
    return status;
}

static sla2_status forward_on_device(sla2_context *ctx, const sla2_attention_problem *pr,
                                     sla2_attention_result *result)
{
    sla2_cuda_state *st = state_of(ctx);
    sla2k_problem p;
    sla2_quant_mode used = pr->quant;
    sla2_status status = describe(ctx, st, pr, &p, &used);
    if (status != SLA2_OK)
        return status;

    size_t zeroed = 0;
    float *scores = nullptr;
    const size_t bytes = carve_workspace(p, nullptr, &zeroed, &scores);
    if ((status = ensure_workspace(ctx, st, bytes)) != SLA2_OK)
        return status;
    carve_workspace(p, static_cast<char *>(st->workspace), &zeroed, &scores);
    cudaStream_t s = st->stream;
    /* sla2-bench's switch, or the caller's stats.time_phases */
    const bool timed = st->timing || result->time_phases;

    LAUNCH(mark(st, timed, 0));
    LAUNCH(cudaMemsetAsync(st->workspace, 0, zeroed, s));
    LAUNCH(sla2k_launch_query_pool(p, s));
    LAUNCH(sla2k_launch_key_stats(p, s));
    LAUNCH(sla2k_launch_key_value(p, s));
    LAUNCH(mark(st, timed, 1));
    LAUNCH(sla2k_launch_router(p, s, scores, st->smem_optin_bytes));
    LAUNCH(mark(st, timed, 2));
    if (p.use_linear) {
        if ((status = sla2_cuda_phik_t_v(ctx, st, p)) != SLA2_OK)
            return status;
        LAUNCH(sla2k_launch_linear_out(p, s, linear_out_smem_limit(st)));
    }
    LAUNCH(mark(st, timed, 3));
    LAUNCH(sla2k_launch_sparse(p, s));
    LAUNCH(mark(st, timed, 4));
    if (p.sla_v1)
        LAUNCH(sla2k_launch_v1_mix(p, s));
    LAUNCH(mark(st, timed, 5));

    double alpha_sum = 0.0;
    LAUNCH(cudaMemcpyAsync(&alpha_sum, p.alpha_sum, sizeof alpha_sum, cudaMemcpyDeviceToHost, s));
    const size_t bh = (size_t)p.batch * p.heads;
    const size_t list_elems = bh * p.num_q_blocks * p.kept;
    int *lists = nullptr;
    if (result->block_mask) {
        lists = static_cast<int *>(malloc(list_elems * sizeof(int)));
        if (!lists)
            return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "CUDA backend: %zu bytes for the block lists",
                             list_elems * sizeof(int));
        status = SLA2_CUDA_CHECK(ctx, cudaMemcpyAsync(lists, p.kept_blocks, list_elems * sizeof(int),
                                                      cudaMemcpyDeviceToHost, s));
    }
    if (status == SLA2_OK)
        status = SLA2_CUDA_CHECK(ctx, cudaStreamSynchronize(s));
    if (status == SLA2_OK && lists) {
        const size_t nq = p.num_q_blocks, nk = p.num_k_blocks;
        memset(result->block_mask, 0, bh * nq * nk);
        for (size_t row = 0; row < bh * nq; ++row)
            for (int e = 0; e < p.kept; ++e)
                result->block_mask[row * nk + lists[row * p.kept + e]] = 1;
    }
    free(lists);
    if (status != SLA2_OK)
        return status;

    if (timed) {
        /* the stream was synchronised above: every event has completed */
        for (int i = 0; i < SLA2_CUDA_NUM_STAGES; ++i)
            SLA2_CUDA_TRY(ctx, cudaEventElapsedTime(&st->stage_ms[i], st->events[i], st->events[i + 1]));
        float total_ms = 0.0f;
        SLA2_CUDA_TRY(ctx, cudaEventElapsedTime(&total_ms, st->events[0], st->events[SLA2_CUDA_NUM_STAGES]));
        result->total_ms = total_ms;
        result->phase_ms[SLA2_PHASE_QUANTISE] = st->stage_ms[SLA2_CUDA_STAGE_QUANTISE];
        result->phase_ms[SLA2_PHASE_ROUTER] = st->stage_ms[SLA2_CUDA_STAGE_ROUTER];
        result->phase_ms[SLA2_PHASE_LINEAR] = st->stage_ms[SLA2_CUDA_STAGE_LINEAR];
        result->phase_ms[SLA2_PHASE_SPARSE] = st->stage_ms[SLA2_CUDA_STAGE_SPARSE];
        result->phase_ms[SLA2_PHASE_MIX] = st->stage_ms[SLA2_CUDA_STAGE_MIX];
    }
    result->quant_used = used;
    result->mean_alpha = p.alpha_kind == SLA2K_ALPHA_ONE ? 1.0 : alpha_sum / ((double)bh * p.seq_len);
    return SLA2_OK;
}

static const sla2_backend_ops cuda_ops = {"cuda", cuda_attention_forward, cuda_destroy};

/* ---- Initialisation -------------------------------------------------------- */

extern "C" sla2_status sla2_cuda_backend_init(sla2_context *ctx, int device)
{
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
        cudaGetLastError();
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "CUDA: no usable device (%s)",
                         err != cudaSuccess ? cudaGetErrorString(err) : "none found");
    }
    if (device < 0 || device >= count)
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "CUDA: device %d does not exist (%d found)", device, count);
    cudaDeviceProp prop;
    SLA2_CUDA_TRY(ctx, cudaGetDeviceProperties(&prop, device));
    if (prop.major < 8)
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "CUDA: %s is sm_%d%d; the SLA2 kernels need sm_80 or newer",
                         prop.name, prop.major, prop.minor);

    sla2_cuda_state *st = static_cast<sla2_cuda_state *>(calloc(1, sizeof *st));
    if (!st)
        return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "CUDA backend state");
    ctx->backend_state = st;
    ctx->ops = &cuda_ops;
    st->device = device;
    st->cc_major = prop.major;
    st->cc_minor = prop.minor;
    st->smem_optin_bytes = prop.sharedMemPerBlockOptin;
    st->lt_workspace_bytes = 32u << 20;
    const char *force = getenv("SLA2_CUDA_FP8_MMA");
    st->force_fp8_mma = force && force[0] == '1';
    const char *stages = getenv("SLA2_CUDA_STAGES");
    st->force_one_stage = stages && stages[0] == '1';
    sla2_status status = SLA2_CUDA_CHECK(ctx, cudaSetDevice(device));
    const char *fp8_gemm = getenv("SLA2_CUDA_FP8_GEMM");
    st->fp8_gemm = (prop.major > 8 || (prop.major == 8 && prop.minor >= 9)) && !(fp8_gemm && fp8_gemm[0] == '0');
    const char *wgmma = getenv("SLA2_CUDA_WGMMA");
    if (status == SLA2_OK && prop.major == 9 && prop.minor == 0 && !st->force_fp8_mma && !(wgmma && wgmma[0] == '0')) {
        int available = 0;
        if (sla2k_wgmma_available(&available) != cudaSuccess) {
            (void)cudaGetLastError(); /* no sm_90a code loads here: the mma.sync kernels run */
            available = 0;
        }
        st->use_wgmma = available;
    }
    if (status == SLA2_OK)
        status = SLA2_CUDA_CHECK(ctx, cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking));
    int pools = 0; /* a device without memory pools keeps the default allocator (sla2_cuda_scratch) */
    if (status == SLA2_OK)
        status = SLA2_CUDA_CHECK(ctx, cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device));
    if (status == SLA2_OK && pools) {
        cudaMemPoolProps props = {};
        props.allocType = cudaMemAllocationTypePinned;
        props.location.type = cudaMemLocationTypeDevice;
        props.location.id = device;
        status = SLA2_CUDA_CHECK(ctx, cudaMemPoolCreate(&st->pool, &props));
        uint64_t keep_all = UINT64_MAX;
        if (status == SLA2_OK)
            status = SLA2_CUDA_CHECK(ctx, cudaMemPoolSetAttribute(st->pool, cudaMemPoolAttrReleaseThreshold,
                                                                  &keep_all));
    }
    if (status == SLA2_OK)
        status = SLA2_CUBLAS_CHECK(ctx, cublasLtCreate(&st->lt));
    if (status == SLA2_OK)
        status = SLA2_CUDA_CHECK(ctx, cudaMalloc(&st->lt_workspace, st->lt_workspace_bytes));
    for (cudaEvent_t &e : st->events)
        if (status == SLA2_OK)
            status = SLA2_CUDA_CHECK(ctx, cudaEventCreate(&e));
    if (status != SLA2_OK) {
        cuda_destroy(ctx);
        ctx->ops = nullptr;
        return status;
    }
    snprintf(ctx->device_name, sizeof ctx->device_name, "%.140s (sm_%d%d)", prop.name, prop.major, prop.minor);
    return SLA2_OK;
}

/* ---- Profiling hooks (sla2_cuda_profile.h) ------------------------------------ */

extern "C" sla2_status sla2_cuda_set_timing(sla2_context *ctx, int on)
{
    if (!ctx || ctx->ops != &cuda_ops)
        return SLA2_ERR_INVALID_VALUE;
    state_of(ctx)->timing = on != 0;
    return SLA2_OK;
}

extern "C" sla2_status sla2_cuda_stage_times(const sla2_context *ctx, float ms[SLA2_CUDA_PROFILE_STAGES])
{
    if (!ctx || ctx->ops != &cuda_ops || !ms)
        return SLA2_ERR_INVALID_VALUE;
    memcpy(ms, state_of(ctx)->stage_ms, sizeof(float) * SLA2_CUDA_PROFILE_STAGES);
    return SLA2_OK;
}
