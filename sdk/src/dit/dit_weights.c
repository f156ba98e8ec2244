/* Loading a Wan2.1 checkpoint (plus SLA2's parameters) into float32, the
 * blocks' linears optionally stored as weight-only INT8 / FP8 or as BF16.
 *
 * Pre-quantised checkpoints: any linear's `<prefix>.weight` may be I8 or
 * F8_E4M3 codes beside a scale, the weight being code * scale:
 * `<prefix>.scale_weight` (ComfyUI's fp8_scaled checkpoints, Kijai's Wan
 * ones among them) or `<prefix>.weight_scale` (vLLM / compressed-tensors,
 * NVIDIA ModelOpt, ComfyUI's newer format); F32, F16 or BF16; a scalar ([]
 * or [1]) or one per output channel ([out] or [out, 1]). Codes that match
 * the storage asked for (I8 into INT8, F8_E4M3 into FP8 or FP8_GEMM) are kept bit for
 * bit with their scales; otherwise they are dequantised to float32 and
 * converted as a float checkpoint would be. Refused (SLA2_ERR_FORMAT, naming
 * the tensor): I8 / F8 codes without a scale or with both names, with a zero
 * point (asymmetric), or with a NaN code; a scale of another dtype or shape
 * (block- and group-wise scales included), not finite, negative, or zero for
 * a row with a non-zero code; a scale other than exactly 1 beside a float
 * weight (is it applied or not? either guess could be wrong); I8 for a
 * tensor that is not a linear weight (norms, modulation, embeddings,
 * router, alpha: codes without a meaning). Those may be F8_E4M3, read as
 * the values they are, unless a scale sits beside them. Other tensors
 * (input scales, ComfyUI's `scaled_fp8` marker) are not read. A checkpoint
 * whose every key starts with ComfyUI's "model.diffusion_model." is read
 * under that prefix (messages name tensors by their Wan names). */
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
    const char *key_prefix; /* "" or ComfyUI's "model.diffusion_model." before every Wan name */
} loader;

static const char comfyui_prefix[] = "model.diffusion_model.";

/* Tensor `name` (a Wan name) under the checkpoint's key prefix. */
static const sla2_st_tensor *find(const loader *ld, const char *name)
{
    char key[sizeof comfyui_prefix + 384];
    snprintf(key, sizeof key, "%s%s", ld->key_prefix, name);
    return sla2_safetensors_find(ld->st, key);
}

static void fail(loader *ld, sla2_status status, const char *fmt, ...) SLA2_PRINTF(3, 4);

static void fail(loader *ld, sla2_status status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(ld->err, ld->err_size, fmt, args);
    va_end(args);
    ld->status = status;
}

/* Adds a host allocation to the slot table (it owns it from now on). */
static int add_slot(loader *ld, void **slot, size_t bytes, const char *name)
{
    dit_tensor_slot *slots = realloc(ld->w->slots, (ld->w->num_slots + 1) * sizeof *slots);
    if (!slots) {
        fail(ld, SLA2_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory", name);
        return 0;
    }
    ld->w->slots = slots;
    ld->w->slots[ld->w->num_slots++] = (dit_tensor_slot){slot, bytes};
    ld->w->resident_bytes += bytes;
    return 1;
}

static void format_shape(char *out, size_t size, int ndim, const int64_t *shape)
{
    out[0] = '\0';
    for (int d = 0; d < ndim && d < SLA2_ST_MAX_DIMS; d++)
        snprintf(out + strlen(out), size - strlen(out), "%s%lld", d ? ", " : "", (long long)shape[d]);
}

/* Tensor `name` if it has the given shape; NULL otherwise, with an error
 * unless it is missing and optional. */
static const sla2_st_tensor *find_shaped(loader *ld, int optional, const char *name, int ndim, const int64_t *shape)
{
    if (ld->status != SLA2_OK)
        return NULL;
    const sla2_st_tensor *t = find(ld, name);
    if (!t) {
        if (!optional)
            fail(ld, SLA2_ERR_FORMAT, "tensor '%s': missing from the checkpoint", name);
        return NULL;
    }
    int same = t->ndim == ndim;
    for (int d = 0; d < ndim && same; d++)
        same = t->shape[d] == shape[d];
    if (!same) {
        char want[128], got[128];
        format_shape(want, sizeof want, ndim, shape);
        format_shape(got, sizeof got, t->ndim, t->shape);
        fail(ld, SLA2_ERR_FORMAT, "tensor '%s': expected shape [%s], got [%s]", name, want, got);
        return NULL;
    }
    return t;
}

static const char *const scale_suffixes[2] = {"scale_weight", "weight_scale"};

/* The scale tensor beside `<prefix>.weight` (NULL when there is none);
 * returns 0 (an error) when there are two. */
static int find_scale(loader *ld, const char *prefix, const sla2_st_tensor **out)
{
    char names[2][192];
    const sla2_st_tensor *found[2];
    for (int i = 0; i < 2; i++) {
        snprintf(names[i], sizeof names[i], "%s.%s", prefix, scale_suffixes[i]);
        found[i] = find(ld, names[i]);
    }
    if (found[0] && found[1]) {
        fail(ld, SLA2_ERR_FORMAT, "tensor '%s.weight': has two scales, '%s' and '%s'; keep one", prefix, names[0],
             names[1]);
        return 0;
    }
    *out = found[0] ? found[0] : found[1];
    return 1;
}

/* Reads a float tensor into a new array that its slot owns. */
static void read_floats(loader *ld, const sla2_st_tensor *t, float **slot)
{
    size_t elems = (size_t)t->num_elems;
    float *data = malloc((elems ? elems : 1) * sizeof *data);
    if (!data) {
        fail(ld, SLA2_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory for %zu floats", t->name, elems);
        return;
    }
    sla2_status s = sla2_safetensors_read_f32(ld->st, t, data, elems, ld->err, ld->err_size);
    if (s != SLA2_OK) {
        free(data);
        ld->status = s;
        return;
    }
    if (!add_slot(ld, (void **)slot, elems * sizeof *data, t->name)) {
        free(data);
        return;
    }
    ld->w->total_floats += elems;
    *slot = data;
}

/* Reads tensor `name` of the given shape (ndim dims) into a new float
 * array. optional: a missing tensor gives NULL without error. Not a linear
 * weight: I8 codes mean nothing here, and F8_E4M3 is read as its values
 * unless a scale beside it says that they are codes. */
static void load(loader *ld, float **slot, int optional, const char *name, int ndim, const int64_t *shape)
{
    *slot = NULL;
    const sla2_st_tensor *t = find_shaped(ld, optional, name, ndim, shape);
    if (!t)
        return;
    if (t->dtype == SLA2_ST_I8) {
        fail(ld, SLA2_ERR_FORMAT,
             "tensor '%s': I8 is read only for linear weights (with a scale); store this one as F32, F16, BF16 "
             "or F8_E4M3", name);
        return;
    }
    size_t len = strlen(name);
    if (t->dtype == SLA2_ST_F8_E4M3 && len > 7 && !strcmp(name + len - 7, ".weight")) {
        char prefix[160];
        const sla2_st_tensor *scale = NULL;
        snprintf(prefix, sizeof prefix, "%.*s", (int)(len - 7), name);
        if (!find_scale(ld, prefix, &scale))
            return;
        if (scale) {
            fail(ld, SLA2_ERR_FORMAT,
                 "tensor '%s': scaled F8_E4M3 (a scale '%s') is read only for linear weights; store this one "
                 "dequantised", name, scale->name);
            return;
        }
    }
    read_floats(ld, t, slot);
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

/* A scale tensor read and broadcast to [out] floats, each finite and >= 0;
 * NULL on error. */
static float *read_scale(loader *ld, const sla2_st_tensor *s, const sla2_st_tensor *weight)
{
    const int out = (int)weight->shape[0];
    if (s->dtype != SLA2_ST_F32 && s->dtype != SLA2_ST_F16 && s->dtype != SLA2_ST_BF16) {
        fail(ld, SLA2_ERR_FORMAT, "tensor '%s': a scale must be F32, F16 or BF16, got %s", s->name,
             sla2_st_dtype_name(s->dtype));
        return NULL;
    }
    int scalar = s->ndim == 0 || (s->ndim == 1 && s->shape[0] == 1);
    int per_channel = (s->ndim == 1 || (s->ndim == 2 && s->shape[1] == 1)) && s->shape[0] == out;
    if (!scalar && !per_channel) {
        char got[128];
        format_shape(got, sizeof got, s->ndim, s->shape);
        fail(ld, SLA2_ERR_FORMAT,
             "tensor '%s': scale of shape [%s] for '%s' [%d, %lld]: expected [] or [1] (per tensor), [%d] or "
             "[%d, 1] (per output channel); block- and group-wise scales are not supported", s->name, got,
             weight->name, out, (long long)weight->shape[1], out, out);
        return NULL;
    }
    float *scale = malloc((size_t)out * sizeof *scale);
    if (!scale) {
        fail(ld, SLA2_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory", s->name);
        return NULL;
    }
    sla2_status status = sla2_safetensors_read_f32(ld->st, s, scale, (size_t)out, ld->err, ld->err_size);
    for (int o = 1; o < out && s->num_elems == 1; o++)
        scale[o] = scale[0];
    for (int o = 0; o < out && status == SLA2_OK; o++) {
        if (!isfinite(scale[o]) || scale[o] < 0.0f) {
            fail(ld, SLA2_ERR_FORMAT, "tensor '%s': scale[%d] is %g; scales must be finite and not negative",
                 s->name, s->num_elems == 1 ? 0 : o, scale[o]);
            status = ld->status;
        }
    }
    if (status != SLA2_OK) {
        ld->status = status;
        free(scale);
        return NULL;
    }
    return scale;
}

/* I8 / F8_E4M3 codes that, with their scale, make weights: no NaN code
 * (e4m3fn's 0x7f / 0xff), no non-zero code of a row whose scale is 0 (a
 * zero scale makes sense only for a row of zeros). */
static int check_codes(loader *ld, const sla2_st_tensor *t, const float *scale)
{
    const uint8_t *codes = t->data;
    const size_t out = (size_t)t->shape[0], in = (size_t)t->shape[1];
    const int fp8 = t->dtype == SLA2_ST_F8_E4M3;
    for (size_t o = 0; o < out; o++) {
        for (size_t i = 0; i < in; i++) {
            uint8_t c = codes[o * in + i];
            if (fp8 && (c & 0x7f) == 0x7f) {
                fail(ld, SLA2_ERR_FORMAT, "tensor '%s': [%zu][%zu] is a NaN code (0x%02x)", t->name, o, i, c);
                return 0;
            }
            if (scale[o] == 0.0f && c != 0 && !(fp8 && c == 0x80)) { /* 0x80: e4m3's -0, INT8's -128 */
                fail(ld, SLA2_ERR_FORMAT, "tensor '%s': row %zu has a zero scale but non-zero codes", t->name, o);
                return 0;
            }
        }
    }
    return 1;
}

/* Codes kept as the checkpoint has them; the scale array becomes
 * lin->scale (owned by its slot from here, or freed on error). */
static void keep_codes(loader *ld, dit_linear *lin, const sla2_st_tensor *t, float *scale,
                       dit_weight_storage storage)
{
    size_t elems = (size_t)t->num_elems;
    void *codes = malloc(elems);
    if (!codes) {
        free(scale);
        fail(ld, SLA2_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory for its %zu codes", t->name, elems);
        return;
    }
    memcpy(codes, t->data, elems);
    if (!add_slot(ld, &lin->codes, elems, t->name)) {
        free(codes), free(scale);
        return;
    }
    lin->codes = codes;
    lin->storage = storage;
    ld->w->total_floats += elems;
    if (!add_slot(ld, (void **)&lin->scale, (size_t)lin->out * sizeof *scale, t->name)) {
        free(scale);
        return;
    }
    lin->scale = scale;
}

/* lin->weight = code * scale per row, in float32: the product the backends'
 * dequantisation (op_dequantise_rows) makes of kept codes. */
static void dequantise(loader *ld, dit_linear *lin, const sla2_st_tensor *t, const float *scale)
{
    size_t elems = (size_t)t->num_elems;
    float *weight = malloc(elems * sizeof *weight);
    if (!weight) {
        fail(ld, SLA2_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory for %zu floats", t->name, elems);
        return;
    }
    const uint8_t *codes = t->data;
    for (size_t o = 0; o < (size_t)lin->out; o++)
        for (size_t i = o * (size_t)lin->in; i < (o + 1) * (size_t)lin->in; i++)
            weight[i] = (t->dtype == SLA2_ST_I8 ? (float)(int8_t)codes[i] : sla2_e4m3_to_float(codes[i])) * scale[o];
    if (!add_slot(ld, (void **)&lin->weight, elems * sizeof *weight, t->name)) {
        free(weight);
        return;
    }
    ld->w->total_floats += elems;
    lin->weight = weight;
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
        fail(ld, SLA2_ERR_OUT_OF_MEMORY, "tensor '%s.weight': out of memory for its %zu codes", prefix, elems);
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

/* `<prefix>.weight` [out, in] and `<prefix>.bias` [out], the weight held as
 * storage: float weights converted to it, I8 / F8_E4M3 codes kept when they
 * are its codes and dequantised otherwise (the top of this file). */
static void load_linear(loader *ld, dit_linear *lin, int in, int out, dit_weight_storage storage,
                        const char *prefix)
{
    lin->in = in, lin->out = out;
    char name[160], zero_point[192];
    snprintf(name, sizeof name, "%s.weight", prefix);
    const sla2_st_tensor *t = find_shaped(ld, 0, name, 2, (int64_t[]){out, in}), *scale_tensor = NULL;
    if (!t || !find_scale(ld, prefix, &scale_tensor))
        return;
    const int quantised = t->dtype == SLA2_ST_I8 || t->dtype == SLA2_ST_F8_E4M3;
    snprintf(zero_point, sizeof zero_point, "%s.weight_zero_point", prefix);
    if (quantised && !scale_tensor) {
        fail(ld, SLA2_ERR_FORMAT,
             "tensor '%s': %s codes without a scale ('%s.scale_weight' or '%s.weight_scale'; the weight is code "
             "* scale, and an unscaled F8_E4M3 weight takes a scale of 1)", name, sla2_st_dtype_name(t->dtype),
             prefix, prefix);
        return;
    }
    if (quantised && find(ld, zero_point)) {
        fail(ld, SLA2_ERR_FORMAT, "tensor '%s': has a zero point '%s'; only symmetric quantisation is supported",
             name, zero_point);
        return;
    }
    float *scale = scale_tensor ? read_scale(ld, scale_tensor, t) : NULL;
    if (scale_tensor && !scale)
        return;
    if (!quantised) {
        for (int o = 0; o < out && scale; o++)
            if (scale[o] != 1.0f) {
                fail(ld, SLA2_ERR_FORMAT,
                     "tensor '%s': %s, yet with a scale '%s' of %g; scales go with I8 / F8_E4M3 codes only (a "
                     "scale of 1 is ignored)", name, sla2_st_dtype_name(t->dtype), scale_tensor->name, scale[o]);
                break;
            }
        free(scale);
        if (ld->status == SLA2_OK)
            read_floats(ld, t, &lin->weight);
        quantise_linear(ld, lin, storage, prefix);
    } else if (!check_codes(ld, t, scale)) {
        free(scale);
    } else if ((t->dtype == SLA2_ST_I8 && storage == DIT_WEIGHTS_INT8) ||
               (t->dtype == SLA2_ST_F8_E4M3 && dit_codes_e4m3(storage))) {
        keep_codes(ld, lin, t, scale, storage);
    } else {
        dequantise(ld, lin, t, scale);
        free(scale);
        quantise_linear(ld, lin, storage, prefix);
    }
    loadf(ld, &lin->bias, 0, 1, (int64_t[]){out}, "%s.bias", prefix);
}

static void load_attention(loader *ld, const sla2_model_config *c, dit_attention_weights *a, int in_kv,
                           dit_weight_storage storage, const char *prefix)
{
    char name[128];
    const char *parts[4] = {"q", "k", "v", "o"};
    dit_linear *lins[4] = {&a->q, &a->k, &a->v, &a->o};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, parts[i]);
        load_linear(ld, lins[i], (i == 1 || i == 2) ? in_kv : c->dim, c->dim, storage, name);
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
    loader ld = {st, wp, err, err_size, SLA2_OK, ""};
    if (!find(&ld, "patch_embedding.weight")) {
        ld.key_prefix = comfyui_prefix;
        if (!find(&ld, "patch_embedding.weight"))
            ld.key_prefix = "";
    }
    w.storage = storage;
    int64_t patch_out = (int64_t)c->out_channels * c->patch_size[0] * c->patch_size[1] * c->patch_size[2];
    load(&ld, &w.patch_weight, 0, "patch_embedding.weight", 5,
                          (int64_t[]){c->dim, c->in_channels, c->patch_size[0], c->patch_size[1], c->patch_size[2]});
    load(&ld, &w.patch_bias, 0, "patch_embedding.bias", 1, (int64_t[]){c->dim});
    load_linear(&ld, &w.text0, c->text_dim, c->dim, DIT_WEIGHTS_F32, "text_embedding.0");
    load_linear(&ld, &w.text2, c->dim, c->dim, DIT_WEIGHTS_F32, "text_embedding.2");
    load_linear(&ld, &w.time0, c->freq_dim, c->dim, DIT_WEIGHTS_F32, "time_embedding.0");
    load_linear(&ld, &w.time2, c->dim, c->dim, DIT_WEIGHTS_F32, "time_embedding.2");
    load_linear(&ld, &w.time_proj, c->dim, 6 * c->dim, DIT_WEIGHTS_F32, "time_projection.1");
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
        load_linear(&ld, &b->ffn0, c->dim, c->ffn_dim, storage, prefix);
        snprintf(prefix, sizeof prefix, "blocks.%d.ffn.2", i);
        load_linear(&ld, &b->ffn2, c->ffn_dim, c->dim, storage, prefix);
        load_sla2(&ld, c, b, i);
    }
    load(&ld, &w.head_modulation, 0, "head.modulation", 3, (int64_t[]){1, 2, c->dim});
    load_linear(&ld, &w.head, c->dim, (int)patch_out, DIT_WEIGHTS_F32, "head.head");
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
