/* The CPU backend: its function table, tensor access, and the per-head work
 * both CPU paths share. */
#include "cpu_attention.h"
#include "numeric.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float element_to_float(const void *base, sla2_dtype dtype, int64_t index)
{
    switch (dtype) {
    case SLA2_DTYPE_F32: return ((const float *)base)[index];
    case SLA2_DTYPE_F16: return sla2_f16_to_float(((const uint16_t *)base)[index]);
    case SLA2_DTYPE_BF16: return sla2_bf16_to_float(((const uint16_t *)base)[index]);
    }
    return 0.0f;
}

static void float_to_element(void *base, sla2_dtype dtype, int64_t index, float x)
{
    switch (dtype) {
    case SLA2_DTYPE_F32: ((float *)base)[index] = x; break;
    case SLA2_DTYPE_F16: ((uint16_t *)base)[index] = sla2_float_to_f16(x); break;
    case SLA2_DTYPE_BF16: ((uint16_t *)base)[index] = sla2_float_to_bf16(x); break;
    }
}

void head_load(const sla2_tensor *t, int64_t b, int64_t h, float *dst)
{
    int64_t L = t->shape[2], D = t->shape[3];
    int64_t base = b * t->stride[0] + h * t->stride[1];
    for (int64_t r = 0; r < L; r++)
        for (int64_t d = 0; d < D; d++)
            dst[r * D + d] = element_to_float(t->data, t->dtype, base + r * t->stride[2] + d);
}

void head_store(const sla2_tensor *t, int64_t b, int64_t h, const float *src)
{
    int64_t L = t->shape[2], D = t->shape[3];
    int64_t base = b * t->stride[0] + h * t->stride[1];
    for (int64_t r = 0; r < L; r++)
        for (int64_t d = 0; d < D; d++)
            float_to_element(t->data, t->dtype, base + r * t->stride[2] + d, src[r * D + d]);
}

int head_work_alloc(const sla2_attention_problem *p, head_work *w)
{
    size_t elems = (size_t)(p->seq_len * p->head_dim);
    memset(w, 0, sizeof *w);
    w->L = p->seq_len;
    w->D = p->head_dim;
    float *q = malloc(elems * sizeof(float)), *k = malloc(elems * sizeof(float));
    float *v = malloc(elems * sizeof(float));
    w->q = q, w->k = k, w->v = v;
    w->k_smooth = malloc(elems * sizeof(float));
    w->kept = malloc((size_t)(p->num_q_blocks * p->kept_per_q_block) * sizeof(int32_t));
    w->mask = malloc((size_t)(p->num_q_blocks * p->num_k_blocks));
    int ok = q && k && v && w->k_smooth && w->kept && w->mask;
    if (p->quant != SLA2_QUANT_NONE) {
        w->q_int8 = malloc(elems * sizeof(float));
        w->k_int8 = malloc(elems * sizeof(float));
        w->q_scale = malloc((size_t)p->num_q_blocks * sizeof(float));
        w->k_scale = malloc((size_t)p->num_k_blocks * sizeof(float));
        w->v_rounded = malloc(elems * sizeof(float));
        w->v_scale = malloc((size_t)p->head_dim * sizeof(float));
        ok = ok && w->q_int8 && w->k_int8 && w->q_scale && w->k_scale && w->v_rounded && w->v_scale;
    }
    if (!ok)
        head_work_free(w);
    return ok;
}

void head_work_free(head_work *w)
{
    free((void *)w->q);
    free((void *)w->k);
    free((void *)w->v);
    free(w->k_smooth);
    free(w->kept);
    free(w->mask);
    free(w->q_int8);
    free(w->k_int8);
    free(w->q_scale);
    free(w->k_scale);
    free(w->v_rounded);
    free(w->v_scale);
    memset(w, 0, sizeof *w);
}

void head_prepare(const sla2_attention_problem *p, int64_t b, int64_t h, head_work *w, float *router_scratch,
                  double *phase_ms)
{
    int64_t L = p->seq_len, D = p->head_dim;
    double mark = phase_ms ? cpu_clock_ms() : 0.0;
    head_load(p->q, b, h, (float *)w->q);
    head_load(p->k, b, h, (float *)w->k);
    head_load(p->v, b, h, (float *)w->v);
    cpu_lap(phase_ms, CPU_UNTIMED, &mark);
    router_smooth_keys(w->k, L, D, w->k_smooth);
    router_route_head(p, h, w->q, w->k_smooth, router_scratch, w->kept, w->mask);
    cpu_lap(phase_ms, SLA2_PHASE_ROUTER, &mark);
    if (p->quant != SLA2_QUANT_NONE) {
        /* Q's INT8 values do not depend on the softmax scale (it is folded
         * into the dequantisation factor); K is quantised smoothed. */
        sparse_quantize_blocks(w->q, L, D, p->block_q, w->q_int8, w->q_scale);
        sparse_quantize_blocks(w->k_smooth, L, D, p->block_k, w->k_int8, w->k_scale);
        sparse_round_values(p->quant, w->v, L, D, w->v_rounded, w->v_scale);
        cpu_lap(phase_ms, SLA2_PHASE_QUANTISE, &mark);
    }
}

static sla2_status cpu_attention_forward(sla2_context *ctx, const sla2_attention_problem *p,
                                         sla2_attention_result *result)
{
    result->quant_used = p->quant; /* the CPU simulates every mode */
    double start = cpu_clock_ms();
    sla2_status s = ctx->cpu_reference ? cpu_attention_reference(ctx, p, result) : cpu_attention_fast(ctx, p, result);
    if (result->time_phases)
        result->total_ms = cpu_clock_ms() - start;
    return s;
}

static void cpu_destroy(sla2_context *ctx)
{
    cpu_scratch_cache_free(ctx->backend_state);
    ctx->backend_state = NULL;
}

static const sla2_backend_ops cpu_ops = {
    .name = "cpu",
    .attention_forward = cpu_attention_forward,
    .destroy = cpu_destroy,
};

sla2_status sla2_cpu_backend_init(sla2_context *ctx)
{
    ctx->backend = SLA2_BACKEND_CPU;
    ctx->ops = &cpu_ops;
    if (ctx->num_threads == 0)
        ctx->num_threads = omp_get_num_procs();
    snprintf(ctx->device_name, sizeof ctx->device_name, "CPU (%d threads%s)", ctx->num_threads,
             ctx->cpu_reference ? ", reference" : "");
    return SLA2_OK;
}
