/* Dense CPU operators of the DiT: GEMMs on OpenBLAS, the small elementwise
 * steps as plain loops. Rows are contiguous. */
#ifndef SLA2_DIT_OPS_H
#define SLA2_DIT_OPS_H

#include "dit/dit.h"

/* y = x W^T + b. A quantised or bf16 weight is widened to float32 a block
 * of output channels at a time into scratch (held by the caller, at least
 * op_linear_scratch_elems(lin, rows) floats) for the same float32 GEMM;
 * with FP8_GEMM storage x goes through op_quantise_activations first. */
void op_linear(const float *x, int64_t rows, const dit_linear *lin, float *y, float *scratch);
size_t op_linear_scratch_elems(const dit_linear *lin, int64_t rows);
/* FP8_GEMM's activations: each row of x [rows][in] as e4m3 codes times one
 * scale, out = e4m3(x / s) * s with s = max|x| / 448 (1 for a row of
 * zeros), e4m3 rounded to nearest even and saturating (sla2_float_to_e4m3);
 * the CUDA backend's FP8 GEMMs take the same codes and scales. */
void op_quantise_activations(const float *x, int64_t rows, int in, float *out);
/* rows [o0, o0 + count) of a quantised or bf16 weight as float32 */
void op_dequantise_rows(const dit_linear *lin, int o0, int count, float *out);
void op_layer_norm(const float *x, int64_t rows, int64_t dim, double eps, const float *weight, const float *bias,
                   float *y);
void op_rms_norm(float *x, int64_t rows, int64_t dim, double eps, const float *weight);
void op_gelu_tanh(float *x, int64_t n);
void op_silu(const float *x, int64_t n, float *y);
/* y = x * (1 + scale) + shift, broadcast over rows. */
void op_modulate(float *x, int64_t rows, int64_t dim, const float *shift, const float *scale);
/* x += y * gate, broadcast over rows. */
void op_gated_residual(float *x, const float *y, int64_t rows, int64_t dim, const float *gate); /* NULL gate = 1 */
/* Wan's 3-D RoPE on [L][heads][head_dim], tokens ordered (f, h, w); angles
 * in double as rope_params does. */
void op_rope_3d(float *x, const int grid[3], int64_t heads, int64_t head_dim);
/* Dense softmax attention of q [Lq][H][d] over k, v [Lk][H][d]. */
int op_dense_attention(const float *q, int64_t Lq, const float *k, const float *v, int64_t Lk, int64_t heads,
                       int64_t head_dim, float *out);
/* Wan's sinusoidal_embedding_1d in double: [cos(t w_i), sin(t w_i)]. */
void op_timestep_embedding(double t, int dim, float *out);

#endif
