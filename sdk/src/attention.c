/* The public attention entry point: validates every argument, resolves the
 * problem's sizes, and hands it to the context's backend. */
#include "internal.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sla2_attention_config_default(sla2_attention_config *config)
{
    if (!config)
        return;
    memset(config, 0, sizeof *config);
    config->size = sizeof *config;
    config->block_q = 128;
    config->block_k = 64;
    config->topk = 0.05f;
    config->quant = SLA2_QUANT_INT8_FP8;
    config->feature_map = SLA2_FEATURE_SOFTMAX;
    config->softmax_scale = 0.0f;
}

void sla2_attention_stats_default(sla2_attention_stats *stats)
{
    if (!stats)
        return;
    memset(stats, 0, sizeof *stats);
    stats->size = sizeof *stats;
}

const char *sla2_quant_mode_name(sla2_quant_mode mode)
{
    switch (mode) {
    case SLA2_QUANT_NONE: return "none";
    case SLA2_QUANT_INT8: return "int8";
    case SLA2_QUANT_INT8_FP8: return "int8_fp8";
    }
    return "unknown";
}

const char *sla2_feature_map_name(sla2_feature_map map)
{
    switch (map) {
    case SLA2_FEATURE_SOFTMAX: return "softmax";
    case SLA2_FEATURE_ELU: return "elu";
    case SLA2_FEATURE_RELU: return "relu";
    }
    return "unknown";
}

int64_t sla2_attention_kept_blocks(int64_t L, int block_k, float topk)
{
    if (L <= 0 || block_k <= 0 || !(topk > 0.0f))
        return 0;
    int64_t num_k_blocks = (L + block_k - 1) / block_k;
    int64_t kept = (int64_t)floor((double)topk * (double)num_k_blocks + 0.5);
    if (kept > num_k_blocks)
        kept = num_k_blocks;
    return kept < 1 ? 1 : kept;
}

static sla2_status check_config(sla2_context *ctx, const sla2_attention_config *cfg)
{
    if (cfg->size != sizeof *cfg)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE,
                         "config.size: not sizeof(sla2_attention_config); call sla2_attention_config_default first");
    if (cfg->block_q != 64 && cfg->block_q != 128)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "config.block_q: expected 64 or 128, got %d", cfg->block_q);
    if (cfg->block_k != 64)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "config.block_k: expected 64, got %d", cfg->block_k);
    if (!(cfg->topk > 0.0f && cfg->topk <= 1.0f))
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "config.topk: expected a value in (0, 1], got %g",
                         (double)cfg->topk);
    if ((unsigned)cfg->quant > SLA2_QUANT_INT8_FP8)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "config.quant: unknown mode %d", (int)cfg->quant);
    if ((unsigned)cfg->feature_map > SLA2_FEATURE_RELU)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "config.feature_map: unknown map %d",
                         (int)cfg->feature_map);
    if (!(cfg->softmax_scale >= 0.0f) || isinf(cfg->softmax_scale))
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE,
                         "config.softmax_scale: expected a finite value >= 0 (0 = 1/sqrt(head_dim)), got %g",
                         (double)cfg->softmax_scale);
    return SLA2_OK;
}

static int dtype_known(sla2_dtype dtype)
{
    return sla2_dtype_size(dtype) != 0;
}

/* A [B, H, L, D] view: known dtype, positive sizes, positive strides, the
 * head dimension contiguous. */
static sla2_status check_qkv_tensor(sla2_context *ctx, const char *name, const sla2_tensor *t)
{
    if (!t)
        return sla2_fail(ctx, SLA2_ERR_NULL_ARGUMENT, "%s: must not be NULL", name);
    if (!t->data)
        return sla2_fail(ctx, SLA2_ERR_NULL_ARGUMENT, "%s.data: must not be NULL", name);
    if (!dtype_known(t->dtype))
        return sla2_fail(ctx, SLA2_ERR_DTYPE, "%s: unknown dtype %d (expected f32, f16 or bf16)", name,
                         (int)t->dtype);
    if (t->ndim != 4)
        return sla2_fail(ctx, SLA2_ERR_SHAPE, "%s: expected 4 dims [B, H, L, D], got %d", name, t->ndim);
    static const char *dim_names[4] = {"B", "H", "L", "D"};
    for (int d = 0; d < 4; d++) {
        if (t->shape[d] < 1 || t->shape[d] > ((int64_t)1 << 31))
            return sla2_fail(ctx, SLA2_ERR_SHAPE, "%s: %s = %lld is out of range [1, 2^31]", name,
                             dim_names[d], (long long)t->shape[d]);
        if (t->stride[d] < 1)
            return sla2_fail(ctx, SLA2_ERR_SHAPE, "%s: stride of %s = %lld, expected >= 1", name, dim_names[d],
                             (long long)t->stride[d]);
    }
    if (t->stride[3] != 1)
        return sla2_fail(ctx, SLA2_ERR_SHAPE, "%s: the head dimension must be contiguous (stride[3] = 1, got %lld)",
                         name, (long long)t->stride[3]);
    if (t->shape[3] != 64 && t->shape[3] != 128)
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "%s: expected head_dim 64 or 128, got %lld", name,
                         (long long)t->shape[3]);
    double elems = (double)t->shape[0] * (double)t->shape[1] * (double)t->shape[2] * (double)t->shape[3];
    if (elems > 9.0e15)
        return sla2_fail(ctx, SLA2_ERR_SHAPE, "%s: too many elements", name);
    return SLA2_OK;
}

static sla2_status check_same_shape(sla2_context *ctx, const char *name, const sla2_tensor *t,
                                    const sla2_tensor *q)
{
    static const char *dim_names[4] = {"B", "H", "L", "D"};
    for (int d = 0; d < 4; d++)
        if (t->shape[d] != q->shape[d])
            return sla2_fail(ctx, SLA2_ERR_SHAPE, "%s: %s = %lld disagrees with q's %s = %lld", name,
                             dim_names[d], (long long)t->shape[d], dim_names[d], (long long)q->shape[d]);
    return SLA2_OK;
}

/* Byte range [lo, hi) a view touches. */
static void byte_extent(const sla2_tensor *t, uintptr_t *lo, uintptr_t *hi)
{
    uintptr_t last = 0;
    for (int d = 0; d < t->ndim; d++)
        last += (uintptr_t)((t->shape[d] - 1) * t->stride[d]);
    *lo = (uintptr_t)t->data;
    *hi = *lo + (last + 1) * sla2_dtype_size(t->dtype);
}

static int overlaps(const sla2_tensor *a, const sla2_tensor *b)
{
    uintptr_t a_lo, a_hi, b_lo, b_hi;
    byte_extent(a, &a_lo, &a_hi);
    byte_extent(b, &b_lo, &b_hi);
    return a_lo < b_hi && b_lo < a_hi;
}

/* An optional F32 contiguous parameter of one of two allowed shapes. Returns
 * which shape matched in *which (0 or 1). */
static sla2_status check_param(sla2_context *ctx, const char *name, const sla2_tensor *t, int ndim0,
                               const int64_t *shape0, int ndim1, const int64_t *shape1, int *which)
{
    if (!t->data)
        return sla2_fail(ctx, SLA2_ERR_NULL_ARGUMENT, "params.%s.data: must not be NULL", name);
    if (t->dtype != SLA2_DTYPE_F32)
        return sla2_fail(ctx, SLA2_ERR_DTYPE, "params.%s: expected dtype f32, got %s", name,
                         sla2_dtype_name(t->dtype));
    for (int option = 0; option < 2; option++) {
        int ndim = option ? ndim1 : ndim0;
        const int64_t *shape = option ? shape1 : shape0;
        if (ndim == 0 || t->ndim != ndim)
            continue;
        int ok = 1;
        int64_t stride = 1;
        for (int d = ndim - 1; d >= 0; d--) {
            ok = ok && t->shape[d] == shape[d] && t->stride[d] == stride;
            stride *= shape[d];
        }
        if (ok) {
            *which = option;
            return SLA2_OK;
        }
    }
    char expected[96];
    if (ndim1)
        snprintf(expected, sizeof expected, "[%lld, %lld] or [%lld, %lld, %lld]", (long long)shape0[0],
                 (long long)shape0[1], (long long)shape1[0], (long long)shape1[1], (long long)shape1[2]);
    else if (ndim0 == 1)
        snprintf(expected, sizeof expected, "[%lld]", (long long)shape0[0]);
    else
        snprintf(expected, sizeof expected, "[%lld, %lld]", (long long)shape0[0], (long long)shape0[1]);
    return sla2_fail(ctx, SLA2_ERR_SHAPE, "params.%s: expected a contiguous f32 tensor of shape %s", name,
                     expected);
}

static sla2_status resolve_params(sla2_context *ctx, const sla2_attention_params *params, int64_t H,
                                  int64_t D, sla2_attention_problem *p)
{
    p->alpha_kind = SLA2_ALPHA_ONE;
    if (!params)
        return SLA2_OK;
    const int64_t dd[2] = {D, D}, hdd[3] = {H, D, D}, h[1] = {H}, hd[2] = {H, D}, d1[1] = {D};
    int which = 0;
    sla2_status s;
    if (params->router_q) {
        if ((s = check_param(ctx, "router_q", params->router_q, 2, dd, 3, hdd, &which)) != SLA2_OK)
            return s;
        p->router_q = params->router_q->data;
        p->router_q_per_head = which;
    }
    if (params->router_k) {
        if ((s = check_param(ctx, "router_k", params->router_k, 2, dd, 3, hdd, &which)) != SLA2_OK)
            return s;
        p->router_k = params->router_k->data;
        p->router_k_per_head = which;
    }
    if (params->alpha && params->alpha_w)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE,
                         "params: alpha (per head) and alpha_w (per row) are exclusive; give one");
    if (params->alpha) {
        if ((s = check_param(ctx, "alpha", params->alpha, 1, h, 0, NULL, &which)) != SLA2_OK)
            return s;
        p->alpha_kind = SLA2_ALPHA_PER_HEAD;
        p->alpha = params->alpha->data;
    }
    if (!params->alpha_w != !params->alpha_b)
        return sla2_fail(ctx, SLA2_ERR_NULL_ARGUMENT, "params: alpha_w and alpha_b come together; %s is NULL",
                         params->alpha_w ? "alpha_b" : "alpha_w");
    if (params->alpha_w) {
        if ((s = check_param(ctx, "alpha_w", params->alpha_w, 2, hd, 0, NULL, &which)) != SLA2_OK)
            return s;
        if ((s = check_param(ctx, "alpha_b", params->alpha_b, 1, h, 0, NULL, &which)) != SLA2_OK)
            return s;
        p->alpha_kind = SLA2_ALPHA_PER_ROW;
        p->alpha_w = params->alpha_w->data;
        p->alpha_b = params->alpha_b->data;
    }
    if (params->proj_l_bias && !params->proj_l_weight)
        return sla2_fail(ctx, SLA2_ERR_NULL_ARGUMENT, "params: proj_l_bias given without proj_l_weight");
    if (params->proj_l_weight) {
        if (p->alpha_kind != SLA2_ALPHA_ONE)
            return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE,
                             "params: proj_l_weight (SLA v1) cannot be combined with alpha parameters (SLA2)");
        if ((s = check_param(ctx, "proj_l_weight", params->proj_l_weight, 2, dd, 0, NULL, &which)) != SLA2_OK)
            return s;
        p->proj_l_weight = params->proj_l_weight->data;
        if (params->proj_l_bias) {
            if ((s = check_param(ctx, "proj_l_bias", params->proj_l_bias, 1, d1, 0, NULL, &which)) != SLA2_OK)
                return s;
            p->proj_l_bias = params->proj_l_bias->data;
        }
    }
    return SLA2_OK;
}

static sla2_status build_problem(sla2_context *ctx, const sla2_attention_config *cfg,
                                 const sla2_attention_params *params, const sla2_tensor *q,
                                 const sla2_tensor *k, const sla2_tensor *v, const sla2_tensor *out,
                                 sla2_attention_problem *p)
{
    sla2_status s;
    if (!cfg)
        return sla2_fail(ctx, SLA2_ERR_NULL_ARGUMENT, "config: must not be NULL");
    if ((s = check_config(ctx, cfg)) != SLA2_OK)
        return s;
    if ((s = check_qkv_tensor(ctx, "q", q)) != SLA2_OK || (s = check_qkv_tensor(ctx, "k", k)) != SLA2_OK ||
        (s = check_qkv_tensor(ctx, "v", v)) != SLA2_OK || (s = check_qkv_tensor(ctx, "out", out)) != SLA2_OK)
        return s;
    if (k->dtype != q->dtype)
        return sla2_fail(ctx, SLA2_ERR_DTYPE, "k: dtype %s differs from q's %s", sla2_dtype_name(k->dtype),
                         sla2_dtype_name(q->dtype));
    if (v->dtype != q->dtype)
        return sla2_fail(ctx, SLA2_ERR_DTYPE, "v: dtype %s differs from q's %s", sla2_dtype_name(v->dtype),
                         sla2_dtype_name(q->dtype));
    if ((s = check_same_shape(ctx, "k", k, q)) != SLA2_OK || (s = check_same_shape(ctx, "v", v, q)) != SLA2_OK ||
        (s = check_same_shape(ctx, "out", out, q)) != SLA2_OK)
        return s;
    if (overlaps(out, q) || overlaps(out, k) || overlaps(out, v))
        return sla2_fail(ctx, SLA2_ERR_SHAPE, "out: its memory overlaps q, k or v; give it a buffer of its own");

    memset(p, 0, sizeof *p);
    p->batch = q->shape[0];
    p->heads = q->shape[1];
    p->seq_len = q->shape[2];
    p->head_dim = q->shape[3];
    p->block_q = cfg->block_q;
    p->block_k = cfg->block_k;
    p->num_q_blocks = (p->seq_len + p->block_q - 1) / p->block_q;
    p->num_k_blocks = (p->seq_len + p->block_k - 1) / p->block_k;
    p->kept_per_q_block = sla2_attention_kept_blocks(p->seq_len, p->block_k, cfg->topk);
    p->softmax_scale = cfg->softmax_scale > 0.0f ? cfg->softmax_scale : 1.0f / sqrtf((float)p->head_dim);
    p->quant = cfg->quant;
    p->feature_map = cfg->feature_map;
    p->q = q, p->k = k, p->v = v, p->out = out;
    return resolve_params(ctx, params, p->heads, p->head_dim, p);
}

sla2_status sla2_attention_forward(sla2_context *ctx, const sla2_attention_config *config,
                                   const sla2_attention_params *params, const sla2_tensor *q,
                                   const sla2_tensor *k, const sla2_tensor *v, sla2_tensor *out,
                                   sla2_attention_stats *stats)
{
    if (!ctx)
        return SLA2_ERR_NULL_ARGUMENT;
    sla2_clear_error(ctx);
    sla2_attention_problem problem;
    sla2_status s = build_problem(ctx, config, params, q, k, v, out, &problem);
    if (s != SLA2_OK)
        return s;

    size_t mask_elems = (size_t)(problem.batch * problem.heads * problem.num_q_blocks * problem.num_k_blocks);
    /* A caller built against an sla2.h without the timing fields passes their
     * offset as size: it is served, and those fields are neither read nor written. */
    const size_t stats_without_timing = offsetof(sla2_attention_stats, time_phases);
    if (stats) {
        if (stats->size != sizeof *stats && stats->size != stats_without_timing)
            return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE,
                             "stats.size: not sizeof(sla2_attention_stats); call sla2_attention_stats_default first");
        if (stats->size == sizeof *stats && stats->time_phases != 0 && stats->time_phases != 1)
            return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "stats.time_phases: expected 0 or 1, got %d",
                             stats->time_phases);
        if (stats->block_mask && stats->block_mask_elems < mask_elems)
            return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE,
                             "stats.block_mask_elems: %zu is too small, the mask needs B*H*Nq*Nk = %zu",
                             stats->block_mask_elems, mask_elems);
        size_t alpha_elems = (size_t)(problem.batch * problem.heads * problem.num_q_blocks);
        if (stats->alpha_blocks && stats->alpha_blocks_elems < alpha_elems)
            return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE,
                             "stats.alpha_blocks_elems: %zu is too small, alpha per query block needs B*H*Nq = %zu",
                             stats->alpha_blocks_elems, alpha_elems);
    }
    /* The mask goes to a buffer of our own first, so that a failure leaves the
     * caller's stats untouched. */
    sla2_attention_result result;
    memset(&result, 0, sizeof result);
    if (stats && stats->block_mask) {
        result.block_mask = malloc(mask_elems);
        if (!result.block_mask)
            return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for the block mask (%zu bytes)",
                             mask_elems);
    }
    size_t alpha_elems = (size_t)(problem.batch * problem.heads * problem.num_q_blocks);
    if (stats && stats->alpha_blocks) {
        result.alpha_blocks = malloc(alpha_elems * sizeof(float));
        if (!result.alpha_blocks) {
            free(result.block_mask);
            return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for alpha per query block");
        }
    }
    result.time_phases = stats && stats->size == sizeof *stats && stats->time_phases;
    s = ctx->ops->attention_forward(ctx, &problem, &result);
    if (s == SLA2_OK && stats) {
        int64_t per_head = problem.num_q_blocks * problem.kept_per_q_block;
        stats->num_q_blocks = problem.num_q_blocks;
        stats->num_k_blocks = problem.num_k_blocks;
        stats->kept_per_q_block = problem.kept_per_q_block;
        stats->kept_blocks_total = per_head * problem.batch * problem.heads;
        stats->mean_alpha = result.mean_alpha;
        stats->quant_used = result.quant_used;
        if (stats->kept_blocks)
            for (int64_t i = 0; i < problem.batch * problem.heads; i++)
                stats->kept_blocks[i] = per_head;
        if (stats->block_mask)
            memcpy(stats->block_mask, result.block_mask, mask_elems);
        /* a backend that cannot report alpha per block reports its mean */
        for (size_t i = 0; stats->alpha_blocks && i < alpha_elems; i++)
            stats->alpha_blocks[i] = result.alpha_blocks_written ? result.alpha_blocks[i] : (float)result.mean_alpha;
        if (result.time_phases) {
            stats->total_ms = result.total_ms;
            stats->router_ms = result.phase_ms[SLA2_PHASE_ROUTER];
            stats->quantise_ms = result.phase_ms[SLA2_PHASE_QUANTISE];
            stats->sparse_ms = result.phase_ms[SLA2_PHASE_SPARSE];
            stats->linear_ms = result.phase_ms[SLA2_PHASE_LINEAR];
            stats->mix_ms = result.phase_ms[SLA2_PHASE_MIX];
        }
    }
    free(result.block_mask);
    free(result.alpha_blocks);
    return s;
}
