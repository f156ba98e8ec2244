/* The DiT's operators on the CPU: host arrays, OpenBLAS GEMMs. */
#include "dit/dit_backend.h"
#include "dit/dit_ops.h"

#include <stdlib.h>
#include <string.h>

static sla2_status cpu_alloc(sla2_context *ctx, size_t bytes, void **out)
{
    *out = malloc(bytes ? bytes : 1);
    return *out ? SLA2_OK : sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory (%zu bytes)", bytes);
}

static void cpu_release(sla2_context *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

static sla2_status cpu_copy(sla2_context *ctx, void *dst, const void *src, size_t bytes)
{
    (void)ctx;
    memmove(dst, src, bytes);
    return SLA2_OK;
}

static sla2_status cpu_linear(sla2_context *ctx, const float *x, int64_t rows, const dit_linear *lin, float *y)
{
    size_t scratch_elems = op_linear_scratch_elems(lin, rows);
    float *scratch = scratch_elems ? malloc(scratch_elems * sizeof *scratch) : NULL;
    if (scratch_elems && !scratch)
        return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory to dequantise a %d x %d weight", lin->out,
                         lin->in);
    op_linear(x, rows, lin, y, scratch);
    free(scratch);
    return SLA2_OK;
}

/* The CPU keeps every activation float32 (bf16_activations is 0). */
static sla2_status check_f32(sla2_context *ctx, sla2_dtype act)
{
    if (act == SLA2_DTYPE_F32)
        return SLA2_OK;
    return sla2_fail(ctx, SLA2_ERR_DTYPE, "the CPU DiT operators take float32 activations, not %s",
                     act == DIT_ACT_E4M3_ROWS ? "e4m3 rows" : sla2_dtype_name(act));
}

static sla2_status cpu_layer_norm(sla2_context *ctx, const float *x, int64_t rows, int64_t dim, double eps,
                                  const float *weight, const float *bias, void *y, sla2_dtype act)
{
    sla2_status s = check_f32(ctx, act);
    if (s == SLA2_OK)
        op_layer_norm(x, rows, dim, eps, weight, bias, y);
    return s;
}

static sla2_status cpu_rms_norm(sla2_context *ctx, void *x, sla2_dtype act, int64_t rows, int64_t dim, double eps,
                                const float *w)
{
    sla2_status s = check_f32(ctx, act);
    if (s == SLA2_OK)
        op_rms_norm(x, rows, dim, eps, w);
    return s;
}

static sla2_status cpu_gelu(sla2_context *ctx, float *x, int64_t n)
{
    (void)ctx;
    op_gelu_tanh(x, n);
    return SLA2_OK;
}

static sla2_status cpu_silu(sla2_context *ctx, const float *x, int64_t n, float *y)
{
    (void)ctx;
    op_silu(x, n, y);
    return SLA2_OK;
}

static sla2_status cpu_add(sla2_context *ctx, const float *a, const float *b, int64_t b_elems, float *out, int64_t n)
{
    (void)ctx;
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i % b_elems];
    return SLA2_OK;
}

static sla2_status cpu_dense_attention(sla2_context *ctx, const void *q, int64_t Lq, const float *k, const float *v,
                                       int64_t Lk, int64_t heads, int64_t head_dim, void *out, sla2_dtype act)
{
    sla2_status s = check_f32(ctx, act);
    if (s != SLA2_OK)
        return s;
    if (!op_dense_attention(q, Lq, k, v, Lk, heads, head_dim, out))
        return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for cross-attention scores");
    return SLA2_OK;
}

/* ---- The fused steps: exactly the sequences dit_backend.h names ---------- */

static sla2_status cpu_norm_modulate(sla2_context *ctx, const float *x, int64_t rows, int64_t dim, double eps,
                                     const float *shift, const float *scale, void *y, sla2_dtype act)
{
    sla2_status s = check_f32(ctx, act);
    if (s != SLA2_OK)
        return s;
    op_layer_norm(x, rows, dim, eps, NULL, NULL, y);
    op_modulate(y, rows, dim, shift, scale);
    return SLA2_OK;
}


static sla2_status cpu_linears(sla2_context *ctx, const void *x, sla2_dtype act, int64_t rows, int count,
                               const dit_linear *const *lins, void *const *ys)
{
    sla2_status s = check_f32(ctx, act);
    for (int i = 0; i < count && s == SLA2_OK; i++)
        s = cpu_linear(ctx, x, rows, lins[i], ys[i]);
    return s;
}

static sla2_status cpu_norm_rope(sla2_context *ctx, void *x, sla2_dtype act, const int grid[3], int64_t heads,
                                 int64_t head_dim, double eps, const float *weight)
{
    sla2_status s = check_f32(ctx, act);
    if (s != SLA2_OK)
        return s;
    if (weight)
        op_rms_norm(x, (int64_t)grid[0] * grid[1] * grid[2], heads * head_dim, eps, weight);
    op_rope_3d(x, grid, heads, head_dim);
    return SLA2_OK;
}

static sla2_status cpu_linear_residual(sla2_context *ctx, const void *x, sla2_dtype act, int64_t rows,
                                       const dit_linear *lin, const float *gate, float *y, float *acc)
{
    sla2_status s = check_f32(ctx, act);
    if (s == SLA2_OK)
        s = cpu_linear(ctx, x, rows, lin, y);
    if (s == SLA2_OK)
        op_gated_residual(acc, y, rows, lin->out, gate);
    return s;
}

static sla2_status cpu_ffn_residual(sla2_context *ctx, const void *x, sla2_dtype act, int64_t rows,
                                    const dit_linear *ffn0, const dit_linear *ffn2, const float *gate, float *hidden,
                                    float *y, float *acc)
{
    sla2_status s = check_f32(ctx, act);
    if (s == SLA2_OK)
        s = cpu_linear(ctx, x, rows, ffn0, hidden);
    if (s != SLA2_OK)
        return s;
    op_gelu_tanh(hidden, rows * ffn0->out);
    return cpu_linear_residual(ctx, hidden, SLA2_DTYPE_F32, rows, ffn2, gate, y, acc);
}

static const dit_backend cpu_table = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_copy,
    .download = cpu_copy,
    .linear = cpu_linear,
    .layer_norm = cpu_layer_norm,
    .rms_norm = cpu_rms_norm,
    .gelu_tanh = cpu_gelu,
    .silu = cpu_silu,
    .add = cpu_add,
    .dense_attention = cpu_dense_attention,
    .norm_modulate = cpu_norm_modulate,
    .linears = cpu_linears,
    .norm_rope = cpu_norm_rope,
    .linear_residual = cpu_linear_residual,
    .ffn_residual = cpu_ffn_residual,
};

const dit_backend *dit_backend_cpu(void)
{
    return &cpu_table;
}

const dit_backend *dit_backend_for(sla2_context *ctx)
{
    if (ctx->backend == SLA2_BACKEND_CPU)
        return &cpu_table;
#ifdef SLA2_HAVE_CUDA_DIT
    if (ctx->backend == SLA2_BACKEND_CUDA)
        return sla2_cuda_dit_backend();
#endif
    sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "the DiT runtime has no %s implementation in this build; use a CPU context",
              ctx->backend == SLA2_BACKEND_CUDA ? "CUDA" : "such");
    return NULL;
}
