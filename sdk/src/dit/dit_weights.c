/* Loading a Wan2.1 checkpoint (plus SLA2's parameters) into float32. */
#include "dit/dit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct loader {
    const sla2_safetensors *st;
    dit_weights *w;
    char *err;
    size_t err_size;
    sla2_status status;
} loader;

/* Reads tensor `name` of the given shape (ndim dims) into a new float
 * array. optional: a missing tensor gives NULL without error. */
static float *load(loader *ld, int optional, const char *name, int ndim, const int64_t *shape)
{
    if (ld->status != SLA2_OK)
        return NULL;
    const sla2_st_tensor *t = sla2_safetensors_find(ld->st, name);
    if (!t) {
        if (!optional) {
            snprintf(ld->err, ld->err_size, "tensor '%s': missing from the checkpoint", name);
            ld->status = SLA2_ERR_FORMAT;
        }
        return NULL;
    }
    int64_t elems = 1;
    int same = t->ndim == ndim;
    for (int d = 0; d < ndim; d++) {
        elems *= shape[d];
        same = same && t->shape[d] == shape[d];
    }
    if (!same) {
        char want[128] = "", got[128] = "";
        for (int d = 0; d < ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "", (long long)shape[d]);
        for (int d = 0; d < t->ndim && d < SLA2_ST_MAX_DIMS; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        snprintf(ld->err, ld->err_size, "tensor '%s': expected shape [%s], got [%s]", name, want, got);
        ld->status = SLA2_ERR_FORMAT;
        return NULL;
    }
    float *data = malloc((size_t)elems * sizeof *data);
    if (!data) {
        snprintf(ld->err, ld->err_size, "tensor '%s': out of memory for %lld floats", name, (long long)elems);
        ld->status = SLA2_ERR_OUT_OF_MEMORY;
        return NULL;
    }
    sla2_status s = sla2_safetensors_read_f32(ld->st, t, data, (size_t)elems, ld->err, ld->err_size);
    if (s != SLA2_OK) {
        free(data);
        ld->status = s;
        return NULL;
    }
    ld->w->total_floats += (size_t)elems;
    return data;
}

static float *loadf(loader *ld, int optional, int ndim, const int64_t *shape, const char *fmt, ...)
{
    char name[160];
    va_list args;
    va_start(args, fmt);
    vsnprintf(name, sizeof name, fmt, args);
    va_end(args);
    return load(ld, optional, name, ndim, shape);
}

static void load_linear(loader *ld, dit_linear *lin, int in, int out, const char *prefix)
{
    lin->in = in, lin->out = out;
    lin->weight = loadf(ld, 0, 2, (int64_t[]){out, in}, "%s.weight", prefix);
    lin->bias = loadf(ld, 0, 1, (int64_t[]){out}, "%s.bias", prefix);
}

static void load_attention(loader *ld, const sla2_model_config *c, dit_attention_weights *a, int in_kv,
                           const char *prefix)
{
    char name[128];
    const char *parts[4] = {"q", "k", "v", "o"};
    dit_linear *lins[4] = {&a->q, &a->k, &a->v, &a->o};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, parts[i]);
        load_linear(ld, lins[i], (i == 1 || i == 2) ? in_kv : c->dim, c->dim, name);
    }
    if (c->qk_norm) {
        a->norm_q = loadf(ld, 0, 1, (int64_t[]){c->dim}, "%s.norm_q.weight", prefix);
        a->norm_k = loadf(ld, 0, 1, (int64_t[]){c->dim}, "%s.norm_k.weight", prefix);
    }
}

static void load_sla2(loader *ld, const sla2_model_config *c, dit_block_weights *b, int layer)
{
    int64_t H = c->num_heads, D = c->dim / c->num_heads;
    const char *p = "blocks.%d.self_attn.sla2";
    if (c->formulation == SLA2_FORMULATION_SLA_V1) {
        b->proj_l_weight = loadf(ld, 0, 2, (int64_t[]){D, D}, "blocks.%d.self_attn.attn_op.local_attn.proj_l.weight", layer);
        b->proj_l_bias = loadf(ld, 0, 1, (int64_t[]){D}, "blocks.%d.self_attn.attn_op.local_attn.proj_l.bias", layer);
        return;
    }
    char name[96];
    if (c->router != SLA2_ROUTER_NONE) {
        b->router_per_head = c->router == SLA2_ROUTER_PER_HEAD;
        int ndim = b->router_per_head ? 3 : 2;
        const int64_t *shape = b->router_per_head ? (int64_t[]){H, D, D} : (int64_t[]){D, D};
        snprintf(name, sizeof name, p, layer);
        b->router_q = loadf(ld, 0, ndim, shape, "%s.router_q", name);
        b->router_k = loadf(ld, 0, ndim, shape, "%s.router_k", name);
    }
    snprintf(name, sizeof name, p, layer);
    if (c->alpha == SLA2_ALPHA_PER_HEAD)
        b->alpha = loadf(ld, 0, 1, (int64_t[]){H}, "%s.alpha", name);
    if (c->alpha == SLA2_ALPHA_PER_ROW) {
        b->alpha_w = loadf(ld, 0, 2, (int64_t[]){H, D}, "%s.alpha_w", name);
        b->alpha_b = loadf(ld, 0, 1, (int64_t[]){H}, "%s.alpha_b", name);
    }
}

sla2_status dit_weights_load(const sla2_model_config *c, const sla2_safetensors *st, dit_weights *out, char *err,
                             size_t err_size)
{
    dit_weights w;
    memset(&w, 0, sizeof w);
    loader ld = {st, &w, err, err_size, SLA2_OK};
    int64_t patch_out = (int64_t)c->out_channels * c->patch_size[0] * c->patch_size[1] * c->patch_size[2];
    w.patch_weight = load(&ld, 0, "patch_embedding.weight", 5,
                          (int64_t[]){c->dim, c->in_channels, c->patch_size[0], c->patch_size[1], c->patch_size[2]});
    w.patch_bias = load(&ld, 0, "patch_embedding.bias", 1, (int64_t[]){c->dim});
    load_linear(&ld, &w.text0, c->text_dim, c->dim, "text_embedding.0");
    load_linear(&ld, &w.text2, c->dim, c->dim, "text_embedding.2");
    load_linear(&ld, &w.time0, c->freq_dim, c->dim, "time_embedding.0");
    load_linear(&ld, &w.time2, c->dim, c->dim, "time_embedding.2");
    load_linear(&ld, &w.time_proj, c->dim, 6 * c->dim, "time_projection.1");
    w.blocks = calloc((size_t)c->num_layers, sizeof *w.blocks);
    if (!w.blocks) {
        snprintf(err, err_size, "out of memory for %d blocks", c->num_layers);
        return SLA2_ERR_OUT_OF_MEMORY;
    }
    char prefix[64];
    for (int i = 0; i < c->num_layers && ld.status == SLA2_OK; i++) {
        dit_block_weights *b = &w.blocks[i];
        b->modulation = loadf(&ld, 0, 3, (int64_t[]){1, 6, c->dim}, "blocks.%d.modulation", i);
        snprintf(prefix, sizeof prefix, "blocks.%d.self_attn", i);
        load_attention(&ld, c, &b->self_attn, c->dim, prefix);
        snprintf(prefix, sizeof prefix, "blocks.%d.cross_attn", i);
        load_attention(&ld, c, &b->cross_attn, c->dim, prefix);
        if (c->cross_attn_norm) {
            b->norm3_weight = loadf(&ld, 0, 1, (int64_t[]){c->dim}, "blocks.%d.norm3.weight", i);
            b->norm3_bias = loadf(&ld, 0, 1, (int64_t[]){c->dim}, "blocks.%d.norm3.bias", i);
        }
        snprintf(prefix, sizeof prefix, "blocks.%d.ffn.0", i);
        load_linear(&ld, &b->ffn0, c->dim, c->ffn_dim, prefix);
        snprintf(prefix, sizeof prefix, "blocks.%d.ffn.2", i);
        load_linear(&ld, &b->ffn2, c->ffn_dim, c->dim, prefix);
        load_sla2(&ld, c, b, i);
    }
    w.head_modulation = load(&ld, 0, "head.modulation", 3, (int64_t[]){1, 2, c->dim});
    load_linear(&ld, &w.head, c->dim, (int)patch_out, "head.head");
    if (c->vocabulary_size > 0)
        w.vocab_embedding = load(&ld, 0, "vocab_embedding.weight", 2, (int64_t[]){(int64_t)c->vocabulary_size, c->text_dim});
    if (ld.status != SLA2_OK) {
        dit_weights_free(&w, c->num_layers);
        return ld.status;
    }
    *out = w;
    return SLA2_OK;
}

static void free_linear(dit_linear *lin)
{
    free(lin->weight);
    free(lin->bias);
}

static void free_attention(dit_attention_weights *a)
{
    free_linear(&a->q), free_linear(&a->k), free_linear(&a->v), free_linear(&a->o);
    free(a->norm_q), free(a->norm_k);
}

void dit_weights_free(dit_weights *w, int num_layers)
{
    if (!w)
        return;
    free(w->patch_weight), free(w->patch_bias);
    free_linear(&w->text0), free_linear(&w->text2), free_linear(&w->time0), free_linear(&w->time2);
    free_linear(&w->time_proj);
    for (int i = 0; w->blocks && i < num_layers; i++) {
        dit_block_weights *b = &w->blocks[i];
        free(b->modulation);
        free_attention(&b->self_attn), free_attention(&b->cross_attn);
        free(b->norm3_weight), free(b->norm3_bias);
        free_linear(&b->ffn0), free_linear(&b->ffn2);
        free(b->router_q), free(b->router_k), free(b->alpha), free(b->alpha_w), free(b->alpha_b);
        free(b->proj_l_weight), free(b->proj_l_bias);
    }
    free(w->blocks);
    free(w->head_modulation);
    free_linear(&w->head);
    free(w->vocab_embedding);
    memset(w, 0, sizeof *w);
}
