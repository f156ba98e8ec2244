/* The operators the DiT's model code calls, one table per backend
 * (ggml-backend's shape): the CPU runs them on host arrays, the CUDA
 * backend on device arrays. Every float pointer lives in the backend's
 * memory; the model code never touches it directly. */
#ifndef SLA2_DIT_BACKEND_H
#define SLA2_DIT_BACKEND_H

#include "dit/dit.h"

/* Activations a norm hands straight to FP8_GEMM linears, on a backend with
 * e4m3_rows set: each row's e4m3 codes by op_quantise_activations' rule,
 * [rows][dim] bytes, then one float scale per row from the next 16-byte
 * boundary on (dit_e4m3_row_scales). An internal form, not a public dtype
 * (sla2_dtype_size gives 0 for it; tests/test_dit.c checks that no public
 * dtype takes its value): the norms write it, linears, linear_residual and
 * ffn_residual read it (their outputs in bf16), nothing else takes it. */
#define DIT_ACT_E4M3_ROWS ((sla2_dtype)3)

static inline size_t dit_e4m3_scales_offset(int64_t rows, int64_t dim)
{
    return ((size_t)rows * (size_t)dim + 15) / 16 * 16;
}

static inline size_t dit_e4m3_rows_bytes(int64_t rows, int64_t dim)
{
    return dit_e4m3_scales_offset(rows, dim) + (size_t)rows * sizeof(float);
}

static inline float *dit_e4m3_row_scales(void *codes, int64_t rows, int64_t dim)
{
    return (float *)((char *)codes + dit_e4m3_scales_offset(rows, dim));
}

typedef struct dit_backend {
    const char *name;
    sla2_status (*alloc)(sla2_context *ctx, size_t bytes, void **out);
    void (*release)(sla2_context *ctx, void *ptr);
    sla2_status (*upload)(sla2_context *ctx, void *dst, const void *src, size_t bytes);
    sla2_status (*download)(sla2_context *ctx, void *dst, const void *src, size_t bytes);
    /* y[rows][out] = x[rows][in] W^T + b */
    sla2_status (*linear)(sla2_context *ctx, const float *x, int64_t rows, const dit_linear *lin, float *y);
    /* y (of dtype act, below) = layer_norm(x), weight and bias NULL: no affine */
    sla2_status (*layer_norm)(sla2_context *ctx, const float *x, int64_t rows, int64_t dim, double eps,
                              const float *weight, const float *bias, void *y, sla2_dtype act);
    /* in place on x of dtype act */
    sla2_status (*rms_norm)(sla2_context *ctx, void *x, sla2_dtype act, int64_t rows, int64_t dim, double eps,
                            const float *weight);
    sla2_status (*gelu_tanh)(sla2_context *ctx, float *x, int64_t n);
    sla2_status (*silu)(sla2_context *ctx, const float *x, int64_t n, float *y);
    /* out[i] = a[i] + b[i % b_elems] */
    sla2_status (*add)(sla2_context *ctx, const float *a, const float *b, int64_t b_elems, float *out, int64_t n);
    /* softmax(q k^T / sqrt(d)) v per head; q and out [Lq][H][d] of dtype
     * act, k and v [Lk][H][d] float32 */
    sla2_status (*dense_attention)(sla2_context *ctx, const void *q, int64_t Lq, const float *k, const float *v,
                                   int64_t Lk, int64_t heads, int64_t head_dim, void *out, sla2_dtype act);

    /* The fused steps of a block. Each is the sequence its comment names
     * (operators above, or dit_ops.h's op_modulate / op_gated_residual); the
     * CPU runs exactly that sequence, a backend may fuse it to save passes
     * over the activations, within the rounding of its own operators. */
    /* The activations between the norms and the blocks' linears and of
     * both attentions (the `act` arguments) may be bf16
     * (SLA2_DTYPE_BF16) on a backend with bf16_activations set and weights
     * other than float32 (whose GEMMs take bf16 anyway), to halve their
     * passes; float32 (SLA2_DTYPE_F32) everywhere else. */
    int bf16_activations;
    /* The norms write DIT_ACT_E4M3_ROWS (above), for FP8_GEMM linears
     * whose input would otherwise be quantised in a pass of its own. */
    int e4m3_rows;
    /* y (of dtype act) = layer_norm(x) * (1 + scale) + shift: layer_norm without affine, op_modulate */
    sla2_status (*norm_modulate)(sla2_context *ctx, const float *x, int64_t rows, int64_t dim, double eps,
                                 const float *shift, const float *scale, void *y, sla2_dtype act);
    /* ys[i] = x lins[i]^T + b_i for count (at most 4) linears of the same
     * input width; x and ys of dtype act (ys bf16 for DIT_ACT_E4M3_ROWS) */
    sla2_status (*linears)(sla2_context *ctx, const void *x, sla2_dtype act, int64_t rows, int count,
                           const dit_linear *const *lins, void *const *ys);
    /* rms_norm over the full width (when weight is not NULL), then Wan's
     * 3-D RoPE (op_rope_3d: angles in double), in place on x
     * [L][heads][head_dim] of dtype act */
    sla2_status (*norm_rope)(sla2_context *ctx, void *x, sla2_dtype act, const int grid[3], int64_t heads,
                             int64_t head_dim, double eps, const float *weight);
    /* acc += gate * (x lin^T + b) (NULL gate = 1), x of dtype act: linear
     * into y [rows][lin->out] (scratch, which a fusing backend may leave
     * alone), op_gated_residual */
    sla2_status (*linear_residual)(sla2_context *ctx, const void *x, sla2_dtype act, int64_t rows,
                                   const dit_linear *lin, const float *gate, float *y, float *acc);
    /* acc += gate * (gelu_tanh(x ffn0^T + b0) ffn2^T + b2), x of dtype act:
     * linear into hidden [rows][ffn0->out] (scratch), gelu_tanh,
     * linear_residual through y */
    sla2_status (*ffn_residual)(sla2_context *ctx, const void *x, sla2_dtype act, int64_t rows,
                                const dit_linear *ffn0, const dit_linear *ffn2, const float *gate, float *hidden,
                                float *y, float *acc);
} dit_backend;

const dit_backend *dit_backend_cpu(void);
#ifdef SLA2_HAVE_CUDA_DIT
const dit_backend *sla2_cuda_dit_backend(void);
#endif
/* The table for ctx's backend; NULL (with a message on ctx) when the DiT
 * cannot run there. */
const dit_backend *dit_backend_for(sla2_context *ctx);

#endif
