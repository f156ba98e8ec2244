/* Loading a Wan2.1 checkpoint (plus SLA2's parameters) into float32, the
 * blocks' linears optionally stored as weight-only INT8 / FP8 or as BF16. */
#include "dit/dit.h"
#include "dit/dit_backend.h"
#include "numeric.h"

#include <math.h>
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

/* Adds a host allocation to the slot table (it owns it from now on). */
static int add_slot(loader *ld, void **slot, size_t bytes, const char *name)
{
    dit_tensor_slot *slots = realloc(ld->w->slots, (ld->w->num_slots + 1) * sizeof *slots);
    if (!slots) {
        snprintf(ld->err, ld->err_size, "tensor '%s': out of memory", name);
        ld->status = SLA2_ERR_OUT_OF_MEMORY;
        return 0;
    }
    ld->w->slots = slots;
    ld->w->slots[ld->w->num_slots++] = (dit_tensor_slot){slot, bytes};
    ld->w->resident_bytes += bytes;
    return 1;
}

/* Reads tensor `name` of the given shape (ndim dims) into a new float
 * array. optional: a missing tensor gives NULL without error. */
static void load(loader *ld, float **slot, int optional, const char *name, int ndim, const int64_t *shape)
{
    *slot = NULL;
    if (ld->status != SLA2_OK)
        return;
    const sla2_st_tensor *t = sla2_safetensors_find(ld->st, name);
    if (!t) {
        if (!optional) {
            snprintf(ld->err, ld->err_size, "tensor '%s': missing from the checkpoint", name);
            ld->status = SLA2_ERR_FORMAT;
        }
        return;
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
        return;
    }
    float *data = malloc((size_t)elems * sizeof *data);
    if (!data) {
        snprintf(ld->err, ld->err_size, "tensor '%s': out of memory for %lld floats", name, (long long)elems);
        ld->status = SLA2_ERR_OUT_OF_MEMORY;
        return;
    }
    sla2_status s = sla2_safetensors_read_f32(ld->st, t, data, (size_t)elems, ld->err, ld->err_size);
    if (s != SLA2_OK) {
        free(data);
        ld->status = s;
        return;
    }
    if (!add_slot(ld, (void **)slot, (size_t)elems * sizeof *data, name)) {
        free(data);
        return;
    }
    ld->w->total_floats += (size_t)elems;
    *slot = data;
}

static void loadf(loader *ld, float **slot, int optional, int ndim, const int64_t *shape, const char *fmt, ...)
{
    char name[160];
    va_list args;
    va_start(args, fmt);
    vsnprintf(name, sizeof name, fmt, args);
    va_end(args);
    load(ld, slot, optional, name, ndim, shape);
}

static void load_linear(loader *ld, dit_linear *lin, int in, int out, const char *prefix)
{
    lin->in = in, lin->out = out;
    loadf(ld, &lin->weight, 0, 2, (int64_t[]){out, in}, "%s.weight", prefix);
    loadf(ld, &lin->bias, 0, 1, (int64_t[]){out}, "%s.bias", prefix);
}

/* Per output channel: scale = max|w| / code_max (1 for an all-zero row, so
 * that dequantising gives its zeros), code = w / scale rounded the way the
 * format rounds (INT8: nearest even; e4m3: nearest even, saturating). */
static void quantise_rows(const float *w, int out, int in, dit_weight_storage storage, uint8_t *codes, float *scale)
{
    float code_max = storage == DIT_WEIGHTS_INT8 ? SLA2_INT8_MAX : SLA2_FP8_MAX;
    for (int o = 0; o < out; o++) {
        const float *row = w + (size_t)o * (size_t)in;
        float max_abs = 0.0f;
        for (int i = 0; i < in; i++)
            max_abs = fmaxf(max_abs, fabsf(row[i]));
        scale[o] = max_abs > 0.0f ? max_abs / code_max : 1.0f;
        uint8_t *dst = codes + (size_t)o * (size_t)in;
        for (int i = 0; i < in; i++)
            dst[i] = storage == DIT_WEIGHTS_INT8 ? (uint8_t)sla2_round_int8(row[i] / scale[o])
                                                 : sla2_float_to_e4m3(row[i] / scale[o]);
    }
}

/* lin->weight's float32 gives way to codes (dit_code_bytes each), which take
 * over its slot; INT8 / FP8 scales get a slot of their own. BF16 has none:
 * its codes are the weights rounded to nearest even, exact for a weight
 * read from a bf16 checkpoint. */
static void quantise_linear(loader *ld, dit_linear *lin, dit_weight_storage storage, const char *prefix)
{
    if (ld->status != SLA2_OK || storage == DIT_WEIGHTS_F32)
        return;
    const int has_scale = storage != DIT_WEIGHTS_BF16;
    size_t elems = (size_t)lin->out * (size_t)lin->in, code_bytes = elems * dit_code_bytes(storage);
    void *codes = malloc(code_bytes);
    float *scale = has_scale ? malloc((size_t)lin->out * sizeof *scale) : NULL;
    if (!codes || (has_scale && !scale)) {
        free(codes), free(scale);
        snprintf(ld->err, ld->err_size, "%s.weight: out of memory for its %zu codes", prefix, elems);
        ld->status = SLA2_ERR_OUT_OF_MEMORY;
        return;
    }
    if (has_scale) {
        quantise_rows(lin->weight, lin->out, lin->in, storage, codes, scale);
    } else {
        uint16_t *bf16 = codes;
        for (size_t i = 0; i < elems; i++)
            bf16[i] = sla2_float_to_bf16(lin->weight[i]);
    }
    dit_tensor_slot *weight_slot = NULL;
    for (size_t i = 0; i < ld->w->num_slots; i++)
        if (ld->w->slots[i].slot == (void **)&lin->weight)
            weight_slot = &ld->w->slots[i];
    ld->w->resident_bytes -= weight_slot->bytes;
    free(lin->weight);
    lin->weight = NULL;
    lin->codes = codes; /* the weight's slot now holds the codes */
    *weight_slot = (dit_tensor_slot){&lin->codes, code_bytes};
    ld->w->resident_bytes += code_bytes;
    lin->storage = storage;
    if (!has_scale)
        return;
    if (!add_slot(ld, (void **)&lin->scale, (size_t)lin->out * sizeof *scale, prefix)) {
        free(scale);
        return;
    }
    lin->scale = scale;
}

static void load_attention(loader *ld, const sla2_model_config *c, dit_attention_weights *a, int in_kv,
                           dit_weight_storage storage, const char *prefix)
{
    char name[128];
    const char *parts[4] = {"q", "k", "v", "o"};
    dit_linear *lins[4] = {&a->q, &a->k, &a->v, &a->o};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, parts[i]);
        load_linear(ld, lins[i], (i == 1 || i == 2) ? in_kv : c->dim, c->dim, name);
        quantise_linear(ld, lins[i], storage, name);
    }
    if (c->qk_norm) {
        loadf(ld, &a->norm_q, 0, 1, (int64_t[]){c->dim}, "%s.norm_q.weight", prefix);
        loadf(ld, &a->norm_k, 0, 1, (int64_t[]){c->dim}, "%s.norm_k.weight", prefix);
    }
}

static void load_sla2(loader *ld, const sla2_model_config *c, dit_block_weights *b, int layer)
{
    int64_t H = c->num_heads, D = c->dim / c->num_heads;
    const char *p = "blocks.%d.self_attn.sla2";
    if (c->formulation == SLA2_FORMULATION_SLA_V1) {
        loadf(ld, &b->proj_l_weight, 0, 2, (int64_t[]){D, D}, "blocks.%d.self_attn.attn_op.local_attn.proj_l.weight", layer);
        loadf(ld, &b->proj_l_bias, 0, 1, (int64_t[]){D}, "blocks.%d.self_attn.attn_op.local_attn.proj_l.bias", layer);
        return;
    }
    char name[96];
    if (c->router != SLA2_ROUTER_NONE) {
        b->router_per_head = c->router == SLA2_ROUTER_PER_HEAD;
        int ndim = b->router_per_head ? 3 : 2;
        const int64_t *shape = b->router_per_head ? (int64_t[]){H, D, D} : (int64_t[]){D, D};
        snprintf(name, sizeof name, p, layer);
        loadf(ld, &b->router_q, 0, ndim, shape, "%s.router_q", name);
        loadf(ld, &b->router_k, 0, ndim, shape, "%s.router_k", name);
    }
    snprintf(name, sizeof name, p, layer);
    if (c->alpha == SLA2_ALPHA_PER_HEAD)
        loadf(ld, &b->alpha, 0, 1, (int64_t[]){H}, "%s.alpha", name);
    if (c->alpha == SLA2_ALPHA_PER_ROW) {
        loadf(ld, &b->alpha_w, 0, 2, (int64_t[]){H, D}, "%s.alpha_w", name);
        loadf(ld, &b->alpha_b, 0, 1, (int64_t[]){H}, "%s.alpha_b", name);
    }
}

sla2_status dit_weights_load(const sla2_model_config *c, const sla2_safetensors *st, dit_weights *out, char *err,
                             size_t err_size)
{
    return dit_weights_load_as(c, st, DIT_WEIGHTS_F32, out, err, err_size);
}

sla2_status dit_weights_load_as(const sla2_model_config *c, const sla2_safetensors *st, dit_weight_storage storage,
                                dit_weights *out, char *err, size_t err_size)
{
    /* Loaded in place: the slot table points into *out and its blocks. */
    dit_weights *wp = out;
    memset(wp, 0, sizeof *wp);
#define w (*wp)
    loader ld = {st, wp, err, err_size, SLA2_OK};
    w.storage = storage;
    int64_t patch_out = (int64_t)c->out_channels * c->patch_size[0] * c->patch_size[1] * c->patch_size[2];
    load(&ld, &w.patch_weight, 0, "patch_embedding.weight", 5,
                          (int64_t[]){c->dim, c->in_channels, c->patch_size[0], c->patch_size[1], c->patch_size[2]});
    load(&ld, &w.patch_bias, 0, "patch_embedding.bias", 1, (int64_t[]){c->dim});
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
        loadf(&ld, &b->modulation, 0, 3, (int64_t[]){1, 6, c->dim}, "blocks.%d.modulation", i);
        snprintf(prefix, sizeof prefix, "blocks.%d.self_attn", i);
        load_attention(&ld, c, &b->self_attn, c->dim, storage, prefix);
        snprintf(prefix, sizeof prefix, "blocks.%d.cross_attn", i);
        load_attention(&ld, c, &b->cross_attn, c->dim, storage, prefix);
        if (c->cross_attn_norm) {
            loadf(&ld, &b->norm3_weight, 0, 1, (int64_t[]){c->dim}, "blocks.%d.norm3.weight", i);
            loadf(&ld, &b->norm3_bias, 0, 1, (int64_t[]){c->dim}, "blocks.%d.norm3.bias", i);
        }
        snprintf(prefix, sizeof prefix, "blocks.%d.ffn.0", i);
        load_linear(&ld, &b->ffn0, c->dim, c->ffn_dim, prefix);
        quantise_linear(&ld, &b->ffn0, storage, prefix);
        snprintf(prefix, sizeof prefix, "blocks.%d.ffn.2", i);
        load_linear(&ld, &b->ffn2, c->ffn_dim, c->dim, prefix);
        quantise_linear(&ld, &b->ffn2, storage, prefix);
        load_sla2(&ld, c, b, i);
    }
    load(&ld, &w.head_modulation, 0, "head.modulation", 3, (int64_t[]){1, 2, c->dim});
    load_linear(&ld, &w.head, c->dim, (int)patch_out, "head.head");
    if (c->vocabulary_size > 0)
        load(&ld, &w.vocab_embedding, 0, "vocab_embedding.weight", 2, (int64_t[]){(int64_t)c->vocabulary_size, c->text_dim});
#undef w
    if (ld.status != SLA2_OK) {
        dit_weights_free(wp, NULL, c->num_layers);
        return ld.status;
    }
    return SLA2_OK;
}

void dit_weights_free(dit_weights *w, sla2_context *ctx, int num_layers)
{
    (void)num_layers;
    if (!w)
        return;
    for (size_t i = 0; i < w->num_slots; i++) {
        if (w->backend && w->slots[i].slot != (void **)&w->vocab_embedding)
            w->backend->release(ctx, *w->slots[i].slot);
        else
            free(*w->slots[i].slot);
    }
    free(w->slots);
    free(w->blocks);
    memset(w, 0, sizeof *w);
}

sla2_status dit_weights_to_backend(sla2_context *ctx, const dit_backend *backend, dit_weights *w)
{
    if (backend == dit_backend_cpu())
        return SLA2_OK; /* host memory already */
    size_t moved = 0;
    sla2_status s = SLA2_OK;
    for (; moved < w->num_slots && s == SLA2_OK; moved++) {
        void **slot = w->slots[moved].slot, *host = *slot;
        if (slot == (void **)&w->vocab_embedding) {
            w->resident_bytes -= w->slots[moved].bytes; /* the text context is built on the host */
            continue;
        }
        void *device = NULL;
        size_t bytes = w->slots[moved].bytes;
        s = backend->alloc(ctx, bytes, &device);
        if (s == SLA2_OK && (s = backend->upload(ctx, device, host, bytes)) != SLA2_OK)
            backend->release(ctx, device);
        if (s == SLA2_OK) {
            *slot = device;
            free(host);
        }
    }
    if (s != SLA2_OK) {
        /* slots before the failed one hold device memory, the rest host memory */
        for (size_t i = 0; i < w->num_slots; i++) {
            if (i + 1 < moved && w->slots[i].slot != (void **)&w->vocab_embedding)
                backend->release(ctx, *w->slots[i].slot);
            else
                free(*w->slots[i].slot);
        }
        free(w->slots);
        free(w->blocks);
        memset(w, 0, sizeof *w);
        return s;
    }
    w->backend = backend;
    return SLA2_OK;
}
