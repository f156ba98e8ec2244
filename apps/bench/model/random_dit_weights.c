#include "random_dit_weights.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum value_kind { LINEAR_WEIGHT, BIAS, NORM_WEIGHT, MODULATION, ROUTER, ALPHA_LOGIT, EMBEDDING } value_kind;

typedef struct tensor_spec {
    char name[96];
    int ndim;
    int64_t shape[5];
    value_kind kind;
} tensor_spec;

typedef struct spec_list {
    tensor_spec *items;
    size_t count, capacity;
    int failed;
} spec_list;

static void add(spec_list *l, value_kind kind, int ndim, const int64_t *shape, const char *fmt, ...)
    SLA2_PRINTF(5, 6);

static void add(spec_list *l, value_kind kind, int ndim, const int64_t *shape, const char *fmt, ...)
{
    if (l->failed)
        return;
    if (l->count == l->capacity) {
        size_t cap = l->capacity ? 2 * l->capacity : 64;
        tensor_spec *items = realloc(l->items, cap * sizeof *items);
        if (!items) {
            l->failed = 1;
            return;
        }
        l->items = items, l->capacity = cap;
    }
    tensor_spec *t = &l->items[l->count++];
    va_list args;
    va_start(args, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, args);
    va_end(args);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->kind = kind;
}

static void add_linear(spec_list *l, const char *prefix, int64_t in, int64_t out)
{
    add(l, LINEAR_WEIGHT, 2, (int64_t[]){out, in}, "%s.weight", prefix);
    add(l, BIAS, 1, (int64_t[]){out}, "%s.bias", prefix);
}

static void add_attention(spec_list *l, const sla2_model_config *c, const char *prefix)
{
    char name[96];
    const char *parts[4] = {"q", "k", "v", "o"};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, parts[i]);
        add_linear(l, name, c->dim, c->dim);
    }
    if (c->qk_norm) {
        add(l, NORM_WEIGHT, 1, (int64_t[]){c->dim}, "%s.norm_q.weight", prefix);
        add(l, NORM_WEIGHT, 1, (int64_t[]){c->dim}, "%s.norm_k.weight", prefix);
    }
}

/* The tensors dit_weights_load reads for c (sdk/src/dit/dit_weights.c). */
static void list_tensors(const sla2_model_config *c, spec_list *l)
{
    int64_t H = c->num_heads, D = c->dim / c->num_heads, dim = c->dim;
    const int *p = c->patch_size;
    add(l, LINEAR_WEIGHT, 5, (int64_t[]){dim, c->in_channels, p[0], p[1], p[2]}, "patch_embedding.weight");
    add(l, BIAS, 1, (int64_t[]){dim}, "patch_embedding.bias");
    add_linear(l, "text_embedding.0", c->text_dim, dim);
    add_linear(l, "text_embedding.2", dim, dim);
    add_linear(l, "time_embedding.0", c->freq_dim, dim);
    add_linear(l, "time_embedding.2", dim, dim);
    add_linear(l, "time_projection.1", dim, 6 * dim);
    char prefix[96];
    for (int i = 0; i < c->num_layers; i++) {
        add(l, MODULATION, 3, (int64_t[]){1, 6, dim}, "blocks.%d.modulation", i);
        snprintf(prefix, sizeof prefix, "blocks.%d.self_attn", i);
        add_attention(l, c, prefix);
        snprintf(prefix, sizeof prefix, "blocks.%d.cross_attn", i);
        add_attention(l, c, prefix);
        if (c->cross_attn_norm) {
            add(l, NORM_WEIGHT, 1, (int64_t[]){dim}, "blocks.%d.norm3.weight", i);
            add(l, BIAS, 1, (int64_t[]){dim}, "blocks.%d.norm3.bias", i);
        }
        snprintf(prefix, sizeof prefix, "blocks.%d.ffn.0", i);
        add_linear(l, prefix, dim, c->ffn_dim);
        snprintf(prefix, sizeof prefix, "blocks.%d.ffn.2", i);
        add_linear(l, prefix, c->ffn_dim, dim);
        if (c->formulation == SLA2_FORMULATION_SLA_V1) {
            add(l, ROUTER, 2, (int64_t[]){D, D}, "blocks.%d.self_attn.attn_op.local_attn.proj_l.weight", i);
            add(l, BIAS, 1, (int64_t[]){D}, "blocks.%d.self_attn.attn_op.local_attn.proj_l.bias", i);
            continue;
        }
        if (c->router == SLA2_ROUTER_PER_HEAD) {
            add(l, ROUTER, 3, (int64_t[]){H, D, D}, "blocks.%d.self_attn.sla2.router_q", i);
            add(l, ROUTER, 3, (int64_t[]){H, D, D}, "blocks.%d.self_attn.sla2.router_k", i);
        } else if (c->router == SLA2_ROUTER_SHARED) {
            add(l, ROUTER, 2, (int64_t[]){D, D}, "blocks.%d.self_attn.sla2.router_q", i);
            add(l, ROUTER, 2, (int64_t[]){D, D}, "blocks.%d.self_attn.sla2.router_k", i);
        }
        if (c->alpha == SLA2_ALPHA_PER_HEAD)
            add(l, ALPHA_LOGIT, 1, (int64_t[]){H}, "blocks.%d.self_attn.sla2.alpha", i);
        if (c->alpha == SLA2_ALPHA_PER_ROW) {
            add(l, ROUTER, 2, (int64_t[]){H, D}, "blocks.%d.self_attn.sla2.alpha_w", i);
            add(l, BIAS, 1, (int64_t[]){H}, "blocks.%d.self_attn.sla2.alpha_b", i);
        }
    }
    add(l, MODULATION, 3, (int64_t[]){1, 2, dim}, "head.modulation");
    add_linear(l, "head.head", dim, (int64_t)c->out_channels * p[0] * p[1] * p[2]);
    if (c->vocabulary_size > 0)
        add(l, EMBEDDING, 2, (int64_t[]){(int64_t)c->vocabulary_size, c->text_dim}, "vocab_embedding.weight");
}

/* splitmix64: a tensor's stream depends on the seed and its name only. */
static uint64_t next_u64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even (no NaNs here) */
    return (uint16_t)(u >> 16);
}

static void fill(const tensor_spec *t, sla2_st_dtype dtype, uint64_t seed, size_t elems, void *data)
{
    int64_t fan_in = 1;
    for (int d = 1; d < t->ndim; d++)
        fan_in *= t->shape[d];
    float scale = 1.0f, offset = 0.0f;
    switch (t->kind) {
    case LINEAR_WEIGHT: scale = sqrtf(3.0f / (float)fan_in); break;
    case BIAS: scale = 0.02f; break;
    case NORM_WEIGHT: scale = 0.1f, offset = 1.0f; break;
    case MODULATION: scale = 0.1f; break;
    case ROUTER: scale = sqrtf(3.0f / (float)t->shape[t->ndim - 1]); break;
    case ALPHA_LOGIT: scale = 1.0f, offset = 2.0f; break;
    case EMBEDDING: scale = 1.0f; break;
    }
    uint64_t state = seed ^ name_hash(t->name);
    for (size_t i = 0; i < elems; i++) {
        float u = (float)((double)(next_u64(&state) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
        float v = offset + scale * u;
        if (dtype == SLA2_ST_BF16)
            ((uint16_t *)data)[i] = to_bf16(v);
        else
            ((float *)data)[i] = v;
    }
}

sla2_status dit_random_weights_write(const sla2_model_config *c, const char *path, sla2_st_dtype dtype,
                                     uint64_t seed, char *err, size_t err_size)
{
    if (dtype != SLA2_ST_F32 && dtype != SLA2_ST_BF16) {
        snprintf(err, err_size, "random DiT weights: dtype %s not supported (F32 or BF16)", sla2_st_dtype_name(dtype));
        return SLA2_ERR_UNSUPPORTED;
    }
    spec_list list = {0};
    list_tensors(c, &list);
    sla2_st_write_tensor *tensors = list.failed ? NULL : calloc(list.count, sizeof *tensors);
    sla2_status s = tensors ? SLA2_OK : SLA2_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < list.count && s == SLA2_OK; i++) {
        const tensor_spec *t = &list.items[i];
        size_t elems = 1;
        for (int d = 0; d < t->ndim; d++)
            elems *= (size_t)t->shape[d];
        void *data = malloc(elems * sla2_st_dtype_size(dtype));
        if (!data) {
            s = SLA2_ERR_OUT_OF_MEMORY;
            break;
        }
        fill(t, dtype, seed, elems, data);
        tensors[i] = (sla2_st_write_tensor){t->name, dtype, t->ndim, t->shape, data};
    }
    if (s == SLA2_OK)
        s = sla2_safetensors_write(path, tensors, list.count, NULL, NULL, 0, err, err_size);
    else
        snprintf(err, err_size, "random DiT weights: out of host memory");
    if (tensors)
        for (size_t i = 0; i < list.count; i++)
            free((void *)tensors[i].data);
    free(tensors);
    free(list.items);
    return s;
}
