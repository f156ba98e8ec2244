#include "dit/dit_ops.h"
#include "numeric.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Output channels dequantised (or widened from bf16) per GEMM: 256 x in
 * floats (5 MB at in = 5120) keeps the scratch small and the GEMM wide
 * enough for OpenBLAS. The activations stay float32: with BF16 storage the
 * CPU differs from the CUDA backend, which rounds them to bf16 too. */
enum { DEQUANT_ROWS = 256 };

size_t op_linear_scratch_elems(const dit_linear *lin, int64_t rows)
{
    if (lin->storage == DIT_WEIGHTS_F32)
        return 0;
    size_t elems = (size_t)(lin->out < DEQUANT_ROWS ? lin->out : DEQUANT_ROWS) * (size_t)lin->in;
    if (lin->storage == DIT_WEIGHTS_FP8_GEMM) /* the quantised activations */
        elems += (size_t)rows * (size_t)lin->in;
    return elems;
}

void op_quantise_activations(const float *x, int64_t rows, int in, float *out)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * in;
        float max_abs = 0.0f;
        for (int i = 0; i < in; i++)
            max_abs = fmaxf(max_abs, fabsf(row[i]));
        float scale = max_abs / SLA2_FP8_MAX;
        scale = scale > 0.0f ? scale : 1.0f;
        for (int i = 0; i < in; i++)
            out[r * in + i] = sla2_round_e4m3(row[i] / scale) * scale; /* e4m3(x / s), decoded, times s */
    }
}

void op_dequantise_rows(const dit_linear *lin, int o0, int count, float *out)
{
    if (lin->storage == DIT_WEIGHTS_BF16) {
        const uint16_t *codes = (const uint16_t *)lin->codes + (size_t)o0 * (size_t)lin->in;
        for (size_t i = 0; i < (size_t)count * (size_t)lin->in; i++)
            out[i] = sla2_bf16_to_float(codes[i]);
        return;
    }
    float code_value[256]; /* what each code byte stands for */
    for (int c = 0; c < 256; c++)
        code_value[c] = dit_codes_e4m3(lin->storage) ? sla2_e4m3_to_float((uint8_t)c) : (float)(int8_t)c;
    for (int o = o0; o < o0 + count; o++) {
        const uint8_t *codes = (const uint8_t *)lin->codes + (size_t)o * (size_t)lin->in;
        float scale = lin->scale[o], *dst = out + (size_t)(o - o0) * (size_t)lin->in;
        for (int i = 0; i < lin->in; i++)
            dst[i] = code_value[codes[i]] * scale;
    }
}

void op_linear(const float *x, int64_t rows, const dit_linear *lin, float *y, float *scratch)
{
    if (lin->storage == DIT_WEIGHTS_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, lin->out, lin->in, 1.0f, x, lin->in,
                    lin->weight, lin->in, 0.0f, y, lin->out);
    } else {
        float *weights = scratch; /* then, for FP8_GEMM, the quantised activations */
        if (lin->storage == DIT_WEIGHTS_FP8_GEMM) {
            float *quantised = scratch + op_linear_scratch_elems(lin, 0);
            op_quantise_activations(x, rows, lin->in, quantised);
            x = quantised;
        }
        for (int o0 = 0; o0 < lin->out; o0 += DEQUANT_ROWS) {
            int count = lin->out - o0 < DEQUANT_ROWS ? lin->out - o0 : DEQUANT_ROWS;
            op_dequantise_rows(lin, o0, count, weights);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, count, lin->in, 1.0f, x, lin->in,
                        weights, lin->in, 0.0f, y + o0, lin->out);
        }
    }
    if (!lin->bias)
        return;
    for (int64_t r = 0; r < rows; r++)
        for (int o = 0; o < lin->out; o++)
            y[r * lin->out + o] += lin->bias[o];
}

void op_layer_norm(const float *x, int64_t rows, int64_t dim, double eps, const float *weight, const float *bias,
                   float *y)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *in = x + r * dim;
        float *o = y + r * dim;
        double mean = 0.0, var = 0.0;
        for (int64_t d = 0; d < dim; d++)
            mean += in[d];
        mean /= (double)dim;
        for (int64_t d = 0; d < dim; d++)
            var += (in[d] - mean) * (in[d] - mean);
        float inv = (float)(1.0 / sqrt(var / (double)dim + eps));
        for (int64_t d = 0; d < dim; d++) {
            float v = (float)(in[d] - mean) * inv;
            o[d] = weight ? v * weight[d] + (bias ? bias[d] : 0.0f) : v;
        }
    }
}

void op_rms_norm(float *x, int64_t rows, int64_t dim, double eps, const float *weight)
{
    for (int64_t r = 0; r < rows; r++) {
        float *v = x + r * dim;
        double sum = 0.0;
        for (int64_t d = 0; d < dim; d++)
            sum += (double)v[d] * v[d];
        float inv = (float)(1.0 / sqrt(sum / (double)dim + eps));
        for (int64_t d = 0; d < dim; d++)
            v[d] = v[d] * inv * weight[d];
    }
}

void op_gelu_tanh(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        /* tanh(u) = 1 - 2 / (exp(2u) + 1): expf is several times faster than tanhf */
        float v = x[i], u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        float t = 1.0f - 2.0f / (expf(2.0f * u) + 1.0f);
        x[i] = 0.5f * v * (1.0f + t);
    }
}

void op_silu(const float *x, int64_t n, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] / (1.0f + expf(-x[i]));
}

void op_modulate(float *x, int64_t rows, int64_t dim, const float *shift, const float *scale)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t d = 0; d < dim; d++)
            x[r * dim + d] = x[r * dim + d] * (1.0f + scale[d]) + shift[d];
}

void op_gated_residual(float *x, const float *y, int64_t rows, int64_t dim, const float *gate)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t d = 0; d < dim; d++)
            x[r * dim + d] += gate ? y[r * dim + d] * gate[d] : y[r * dim + d];
}

/* rope_params(1024, n): angle(pos, i) = pos / 10000^(2i / n), i < n / 2 */
static double rope_angle(int64_t pos, int64_t i, int64_t n)
{
    return (double)pos / pow(10000.0, (double)(2 * i) / (double)n);
}

void op_rope_3d(float *x, const int grid[3], int64_t heads, int64_t head_dim)
{
    /* Wan splits the head_dim/2 complex pairs into frames | height | width:
     * c - 2 (c / 3), c / 3, c / 3, each with its own rope_params table. */
    int64_t pairs = head_dim / 2, hw_pairs = pairs / 3, f_pairs = pairs - 2 * hw_pairs;
    int64_t f_dim = head_dim - 4 * (head_dim / 6), hw_dim = 2 * (head_dim / 6);
    int64_t L = (int64_t)grid[0] * grid[1] * grid[2];
    for (int64_t token = 0; token < L; token++) {
        int64_t f = token / ((int64_t)grid[1] * grid[2]), h = (token / grid[2]) % grid[1], w = token % grid[2];
        for (int64_t i = 0; i < pairs; i++) {
            double angle = i < f_pairs              ? rope_angle(f, i, f_dim)
                           : i < f_pairs + hw_pairs ? rope_angle(h, i - f_pairs, hw_dim)
                                                    : rope_angle(w, i - f_pairs - hw_pairs, hw_dim);
            double c = cos(angle), s = sin(angle);
            for (int64_t head = 0; head < heads; head++) {
                float *pair = x + (token * heads + head) * head_dim + 2 * i;
                double re = pair[0], im = pair[1];
                pair[0] = (float)(re * c - im * s);
                pair[1] = (float)(re * s + im * c);
            }
        }
    }
}

int op_dense_attention(const float *q, int64_t Lq, const float *k, const float *v, int64_t Lk, int64_t heads,
                       int64_t head_dim, float *out)
{
    float *scores = malloc((size_t)(Lq * Lk) * sizeof *scores);
    if (!scores)
        return 0;
    int64_t stride = heads * head_dim;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int64_t h = 0; h < heads; h++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Lq, (int)Lk, (int)head_dim, scale, q + h * head_dim,
                    (int)stride, k + h * head_dim, (int)stride, 0.0f, scores, (int)Lk);
        for (int64_t r = 0; r < Lq; r++) {
            float *row = scores + r * Lk, max_v = -INFINITY;
            double sum = 0.0;
            for (int64_t c = 0; c < Lk; c++)
                max_v = fmaxf(max_v, row[c]);
            for (int64_t c = 0; c < Lk; c++)
                sum += (row[c] = expf(row[c] - max_v));
            for (int64_t c = 0; c < Lk; c++)
                row[c] = (float)(row[c] / sum);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Lq, (int)head_dim, (int)Lk, 1.0f, scores, (int)Lk,
                    v + h * head_dim, (int)stride, 0.0f, out + h * head_dim, (int)stride);
    }
    free(scores);
    return 1;
}

void op_timestep_embedding(double t, int dim, float *out)
{
    int half = dim / 2;
    for (int i = 0; i < half; i++) {
        double angle = t * pow(10000.0, -(double)i / (double)half);
        out[i] = (float)cos(angle);
        out[half + i] = (float)sin(angle);
    }
}
