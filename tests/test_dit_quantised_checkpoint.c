/* Pre-quantised checkpoints (sdk/src/dit/dit_weights.c): linear weights
 * stored as I8 or F8_E4M3 codes beside a scale (`.weight_scale` or
 * `.scale_weight`, per tensor or per output channel). A model loaded from
 * one holds the checkpoint's codes bit for bit (when the storage matches)
 * and computes what the same model loaded from its dequantised float32
 * checkpoint computes; every malformed layout is refused with
 * SLA2_ERR_FORMAT and a message naming the tensor. The checkpoints are
 * made here from the DiT fixture (tests/fixtures/dit). */
#include "dit/dit.h"
#include "numeric.h"
#include "sla2/pipeline.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FIXTURE_DIR
#error "FIXTURE_DIR must point at tests/fixtures"
#endif

enum { MAX_TENSORS = 256 };

/* A checkpoint to write: entries refer to data owned elsewhere (the fixture
 * file, or `owned`). */
typedef struct checkpoint {
    sla2_st_write_tensor tensors[MAX_TENSORS];
    int64_t shapes[MAX_TENSORS][SLA2_ST_MAX_DIMS];
    size_t count;
    void *owned[2 * MAX_TENSORS];
    size_t num_owned;
} checkpoint;

/* What the test quantised a linear weight to, for comparing with the loader. */
typedef struct quantised_linear {
    char name[64]; /* the linear's prefix */
    int out, in;
    uint8_t *codes;
    float *scale;       /* [out], broadcast when per tensor */
    float *dequantised; /* code * scale */
} quantised_linear;

/* How a checkpoint's linears are quantised. */
typedef struct recipe {
    const char *label;
    sla2_st_dtype dtype; /* I8 or F8_E4M3 */
    const char *scale_suffix;
    int scale_ndim;      /* 0: [], 1: [1] or [out], 2: [out, 1] */
    int per_channel;
    sla2_st_dtype scale_dtype;
} recipe;

typedef struct fixture {
    sla2_model_config config;
    sla2_safetensors *weights_file;
    float *x, *context;
    double timestep;
    size_t video_elems;
    quantised_linear linears[64];
    int num_linears;
    checkpoint quantised, dequantised;
    char path[256];
} fixture;

static void *own(checkpoint *c, void *p)
{
    ck_assert(p != NULL && c->num_owned < 2 * MAX_TENSORS);
    return c->owned[c->num_owned++] = p;
}

static void put(checkpoint *c, const char *name, sla2_st_dtype dtype, int ndim, const int64_t *shape,
                const void *data)
{
    ck_assert(c->count < MAX_TENSORS);
    size_t i = c->count++;
    c->tensors[i] = (sla2_st_write_tensor){name, dtype, ndim, NULL, data};
    memcpy(c->shapes[i], shape, (size_t)ndim * sizeof shape[0]);
}

static sla2_st_write_tensor *entry(checkpoint *c, const char *name)
{
    for (size_t i = 0; i < c->count; i++)
        if (!strcmp(c->tensors[i].name, name))
            return &c->tensors[i];
    ck_abort_msg("no tensor %s in the checkpoint", name);
    return NULL;
}

static void drop(checkpoint *c, const char *name)
{
    size_t i = (size_t)(entry(c, name) - c->tensors);
    memmove(&c->tensors[i], &c->tensors[i + 1], (c->count - i - 1) * sizeof c->tensors[0]);
    memmove(&c->shapes[i], &c->shapes[i + 1], (c->count - i - 1) * sizeof c->shapes[0]);
    c->count--;
}

/* Replaces tensor name's dtype, shape and data. */
static void replace(checkpoint *c, const char *name, sla2_st_dtype dtype, int ndim, const int64_t *shape,
                    const void *data)
{
    sla2_st_write_tensor *t = entry(c, name);
    t->dtype = dtype, t->ndim = ndim, t->data = data;
    memcpy(c->shapes[t - c->tensors], shape, (size_t)ndim * sizeof shape[0]);
}

static void checkpoint_free(checkpoint *c)
{
    for (size_t i = 0; i < c->num_owned; i++)
        free(c->owned[i]);
    memset(c, 0, sizeof *c);
}

static sla2_safetensors *checkpoint_open(checkpoint *c, const char *path)
{
    char err[512];
    for (size_t i = 0; i < c->count; i++)
        c->tensors[i].shape = c->shapes[i];
    ck_assert_msg(sla2_safetensors_write(path, c->tensors, c->count, NULL, NULL, 0, err, sizeof err) == SLA2_OK, "%s",
                  err);
    sla2_safetensors *st = NULL;
    ck_assert_msg(sla2_safetensors_open(path, &st, err, sizeof err) == SLA2_OK, "%s", err);
    return st;
}

static float round_to(sla2_st_dtype dtype, float x)
{
    return dtype == SLA2_ST_F16 ? sla2_f16_to_float(sla2_float_to_f16(x))
           : dtype == SLA2_ST_BF16 ? sla2_bf16_to_float(sla2_float_to_bf16(x))
                                   : x;
}

static float code_value(sla2_st_dtype dtype, uint8_t code)
{
    return dtype == SLA2_ST_I8 ? (float)(int8_t)code : sla2_e4m3_to_float(code);
}

/* Quantises one linear weight [out, in] by r: absmax scales (the stored
 * scale, rounded to its dtype, is the one the codes divide by). Adds the
 * codes and scale to f->quantised and code * scale to f->dequantised. */
static void quantise_linear(fixture *f, const recipe *r, const sla2_st_tensor *t)
{
    ck_assert(f->num_linears < 64);
    quantised_linear *q = &f->linears[f->num_linears++];
    const int out = (int)t->shape[0], in = (int)t->shape[1];
    snprintf(q->name, sizeof q->name, "%.*s", (int)strlen(t->name) - 7, t->name);
    q->out = out, q->in = in;
    float *w = read_tensor(f->weights_file, t->name, NULL);
    q->codes = own(&f->quantised, malloc((size_t)out * in));
    q->scale = own(&f->quantised, malloc((size_t)out * sizeof(float)));
    q->dequantised = own(&f->dequantised, malloc((size_t)out * in * sizeof(float)));
    const float code_max = r->dtype == SLA2_ST_I8 ? SLA2_INT8_MAX : SLA2_FP8_MAX;
    float tensor_max = 0.0f;
    for (int i = 0; i < out * in; i++)
        tensor_max = fmaxf(tensor_max, fabsf(w[i]));
    for (int o = 0; o < out; o++) {
        float row_max = 0.0f;
        for (int i = 0; i < in; i++)
            row_max = fmaxf(row_max, fabsf(w[o * in + i]));
        q->scale[o] = round_to(r->scale_dtype, (r->per_channel ? row_max : tensor_max) / code_max);
        for (int i = 0; i < in; i++) {
            float v = w[o * in + i] / q->scale[o];
            q->codes[o * in + i] = r->dtype == SLA2_ST_I8 ? (uint8_t)sla2_round_int8(v) : sla2_float_to_e4m3(v);
            q->dequantised[o * in + i] = code_value(r->dtype, q->codes[o * in + i]) * q->scale[o];
        }
    }
    free(w);
    /* the scale tensor's raw bytes in its dtype */
    const int count = r->per_channel ? out : 1;
    void *raw = own(&f->quantised, malloc((size_t)count * 4));
    for (int o = 0; o < count; o++) {
        if (r->scale_dtype == SLA2_ST_F32)
            ((float *)raw)[o] = q->scale[o];
        else
            ((uint16_t *)raw)[o] = r->scale_dtype == SLA2_ST_F16 ? sla2_float_to_f16(q->scale[o])
                                                                 : sla2_float_to_bf16(q->scale[o]);
    }
    char *scale_name = own(&f->quantised, malloc(96));
    snprintf(scale_name, 96, "%s.%s", q->name, r->scale_suffix);
    const int64_t scale_shape[2] = {count, 1};
    put(&f->quantised, t->name, r->dtype, 2, t->shape, q->codes);
    put(&f->quantised, scale_name, r->scale_dtype, r->scale_ndim, scale_shape, raw);
    put(&f->dequantised, t->name, SLA2_ST_F32, 2, t->shape, q->dequantised);
}

/* The fixture model, and from it a quantised checkpoint (every linear's
 * weight, the embeddings' and head's included) and its dequantised twin;
 * the other tensors are the fixture's own in both. */
static void fixture_load(fixture *f, const recipe *r)
{
    char err[512];
    memset(f, 0, sizeof *f);
    ck_assert_msg(sla2_model_config_load(FIXTURE_DIR "/dit/model.yaml", &f->config, err, sizeof err) == SLA2_OK,
                  "%s", err);
    ck_assert_msg(sla2_safetensors_open(FIXTURE_DIR "/dit/weights.safetensors", &f->weights_file, err, sizeof err) ==
                      SLA2_OK, "%s", err);
    sla2_safetensors *io = NULL;
    ck_assert_int_eq(sla2_safetensors_open(FIXTURE_DIR "/dit/io.safetensors", &io, err, sizeof err), SLA2_OK);
    f->x = read_tensor(io, "x", &f->video_elems);
    f->context = read_tensor(io, "context", NULL);
    float *t = read_tensor(io, "timestep", NULL);
    f->timestep = t[0];
    free(t);
    sla2_safetensors_close(io);
    for (size_t i = 0; i < sla2_safetensors_count(f->weights_file); i++) {
        const sla2_st_tensor *w = sla2_safetensors_at(f->weights_file, i);
        size_t len = strlen(w->name);
        if (w->ndim == 2 && len > 7 && !strcmp(w->name + len - 7, ".weight")) { /* the fixture's linears */
            quantise_linear(f, r, w);
            continue;
        }
        put(&f->quantised, w->name, w->dtype, w->ndim, w->shape, w->data);
        put(&f->dequantised, w->name, w->dtype, w->ndim, w->shape, w->data);
    }
    ck_assert_int_eq(f->num_linears, 6 + f->config.num_layers * 10);
    snprintf(f->path, sizeof f->path, "/tmp/sla2_test_quantised_%d.safetensors", (int)getpid());
}

static void fixture_free(fixture *f)
{
    sla2_model_config_free(&f->config);
    sla2_safetensors_close(f->weights_file);
    free(f->x), free(f->context);
    checkpoint_free(&f->quantised);
    checkpoint_free(&f->dequantised);
    remove(f->path);
}

/* Loads in place: *w must not move afterwards (dit.h). */
static void load_as(fixture *f, checkpoint *c, dit_weight_storage storage, dit_weights *w)
{
    char err[512];
    sla2_safetensors *st = checkpoint_open(c, f->path);
    ck_assert_msg(dit_weights_load_as(&f->config, st, storage, w, err, sizeof err) == SLA2_OK, "%s", err);
    sla2_safetensors_close(st); /* the weights are copies */
}

/* The loaded linear of prefix name ("blocks.1.ffn.0", "head.head", ...). */
static const dit_linear *linear_named(const dit_weights *w, const char *name)
{
    static const char *const parts[10] = {"self_attn.q",  "self_attn.k",  "self_attn.v",  "self_attn.o", "cross_attn.q",
                                          "cross_attn.k", "cross_attn.v", "cross_attn.o", "ffn.0",       "ffn.2"};
    int layer;
    char part[32];
    if (sscanf(name, "blocks.%d.%31s", &layer, part) == 2) {
        const dit_block_weights *b = &w->blocks[layer];
        const dit_linear *lins[10] = {&b->self_attn.q,  &b->self_attn.k,  &b->self_attn.v,  &b->self_attn.o,
                                      &b->cross_attn.q, &b->cross_attn.k, &b->cross_attn.v, &b->cross_attn.o,
                                      &b->ffn0,         &b->ffn2};
        for (int i = 0; i < 10; i++)
            if (!strcmp(part, parts[i]))
                return lins[i];
    }
    const char *names[6] = {"text_embedding.0", "text_embedding.2", "time_embedding.0", "time_embedding.2",
                            "time_projection.1", "head.head"};
    const dit_linear *lins[6] = {&w->text0, &w->text2, &w->time0, &w->time2, &w->time_proj, &w->head};
    for (int i = 0; i < 6; i++)
        if (!strcmp(name, names[i]))
            return lins[i];
    ck_abort_msg("no linear %s", name);
    return NULL;
}

/* Dense attention, so that the forward depends on the weights alone. */
static void forward(fixture *f, const dit_weights *w, float *out)
{
    dit_attention_settings layers[2];
    for (int i = 0; i < 2; i++)
        layers[i] = (dit_attention_settings){1, {1.0f, SLA2_QUANT_NONE, 64, 64}, SLA2_FEATURE_SOFTMAX};
    dit_forward_args args = {.x = f->x, .timestep = f->timestep, .context = f->context, .layers = layers};
    sla2_context *ctx = test_cpu_context(0);
    fill_nan(out, f->video_elems);
    sla2_status s = dit_forward(ctx, &f->config, w, &args, out);
    ck_assert_msg(s == SLA2_OK, "dit_forward: %s", sla2_context_last_error(ctx));
    sla2_context_free(ctx);
    ck_assert(all_finite(out, f->video_elems));
}

static const recipe recipes[] = {
    {"int8, per channel [out, 1] F32 weight_scale (compressed-tensors)", SLA2_ST_I8, "weight_scale", 2, 1, SLA2_ST_F32},
    {"int8, per tensor [] F32 scale_weight", SLA2_ST_I8, "scale_weight", 0, 0, SLA2_ST_F32},
    {"fp8, per tensor [] F32 scale_weight (ComfyUI fp8_scaled)", SLA2_ST_F8_E4M3, "scale_weight", 0, 0, SLA2_ST_F32},
    {"fp8, per tensor [1] F16 weight_scale (ModelOpt)", SLA2_ST_F8_E4M3, "weight_scale", 1, 0, SLA2_ST_F16},
    {"fp8, per channel [out] BF16 weight_scale", SLA2_ST_F8_E4M3, "weight_scale", 1, 1, SLA2_ST_BF16},
    {"fp8, per channel [out, 1] F32 scale_weight", SLA2_ST_F8_E4M3, "scale_weight", 2, 1, SLA2_ST_F32},
};

/* For each recipe: the quantised checkpoint loaded with the matching
 * storage keeps every block linear's codes and scales bit for bit, and
 * dequantises the other linears to exactly code * scale; loaded as f32 it
 * equals the dequantised checkpoint bit for bit. The forward against the
 * dequantised checkpoint's: the same weights through the same float32
 * GEMMs, so only the GEMM's blocking can differ: 1e-6 (measured: 0).
 * Resident bytes equal those of the same storage requantised from floats. */
START_TEST(quantised_checkpoint_equals_its_dequantised_twin)
{
    const recipe *r = &recipes[_i];
    fixture f;
    fixture_load(&f, r);
    const dit_weight_storage storage = r->dtype == SLA2_ST_I8 ? DIT_WEIGHTS_INT8 : DIT_WEIGHTS_FP8;
    dit_weights kept, as_f32, reference, requantised;
    load_as(&f, &f.quantised, storage, &kept);
    load_as(&f, &f.quantised, DIT_WEIGHTS_F32, &as_f32);
    load_as(&f, &f.dequantised, DIT_WEIGHTS_F32, &reference);
    load_as(&f, &f.dequantised, storage, &requantised);
    for (int l = 0; l < f.num_linears; l++) {
        const quantised_linear *q = &f.linears[l];
        const dit_linear *k = linear_named(&kept, q->name), *a = linear_named(&as_f32, q->name);
        const size_t elems = (size_t)q->out * q->in;
        ck_assert_msg(a->storage == DIT_WEIGHTS_F32 && !memcmp(a->weight, q->dequantised, elems * sizeof(float)),
                      "%s: loaded as f32, not code * scale", q->name);
        ck_assert(!memcmp(a->weight, linear_named(&reference, q->name)->weight, elems * sizeof(float)));
        if (!strncmp(q->name, "blocks.", 7)) {
            ck_assert_msg(k->storage == storage && k->weight == NULL, "%s", q->name);
            ck_assert_msg(!memcmp(k->codes, q->codes, elems), "%s: codes changed", q->name);
            ck_assert_msg(!memcmp(k->scale, q->scale, (size_t)q->out * sizeof(float)), "%s: scales changed", q->name);
        } else { /* the embeddings, time projection and head stay float32 */
            ck_assert_msg(k->storage == DIT_WEIGHTS_F32 && !memcmp(k->weight, q->dequantised, elems * sizeof(float)),
                          "%s", q->name);
        }
    }
    ck_assert_uint_eq(kept.resident_bytes, requantised.resident_bytes);
    ck_assert_uint_eq(kept.total_floats, requantised.total_floats);
    ck_assert_uint_eq(as_f32.resident_bytes, reference.resident_bytes);
    ck_assert_uint_eq(as_f32.total_floats, reference.total_floats);
    float *ref = malloc(f.video_elems * sizeof *ref), *out = malloc(f.video_elems * sizeof *out);
    forward(&f, &reference, ref);
    forward(&f, &kept, out);
    double rel = rel_l2(out, ref, f.video_elems);
    forward(&f, &as_f32, out);
    double rel_f32 = rel_l2(out, ref, f.video_elems);
    printf("%s: forward with the kept codes vs the dequantised f32 checkpoint: rel L2 %.3e (loaded as f32: %.3e); "
           "weights %zu bytes (f32 %zu)\n", r->label, rel, rel_f32, kept.resident_bytes, reference.resident_bytes);
    ck_assert_msg(rel < 1e-6 && rel_f32 < 1e-6, "rel L2 %.3g, %.3g", rel, rel_f32);
    free(ref), free(out);
    dit_weights *all[4] = {&kept, &as_f32, &reference, &requantised};
    for (int i = 0; i < 4; i++)
        dit_weights_free(all[i], NULL, f.config.num_layers);
    fixture_free(&f);
}
END_TEST

/* Codes of the other format are dequantised, then stored as asked: BF16
 * codes are bf16(code * scale) exactly; INT8 <-> FP8 requantise (within
 * the bounds of tests/test_dit.c's weight_only_storage_is_close_to_f32). */
START_TEST(other_storages_dequantise_then_convert)
{
    for (int recipe_index = 0; recipe_index < 6; recipe_index += 5) { /* int8 and fp8, per channel */
        const recipe *r = &recipes[recipe_index];
        fixture f;
        fixture_load(&f, r);
        dit_weights reference, w;
        load_as(&f, &f.dequantised, DIT_WEIGHTS_F32, &reference);
        float *ref = malloc(f.video_elems * sizeof *ref), *out = malloc(f.video_elems * sizeof *out);
        forward(&f, &reference, ref);
        const dit_weight_storage other = r->dtype == SLA2_ST_I8 ? DIT_WEIGHTS_FP8 : DIT_WEIGHTS_INT8;
        const dit_weight_storage storages[2] = {DIT_WEIGHTS_BF16, other};
        for (int s = 0; s < 2; s++) {
            load_as(&f, &f.quantised, storages[s], &w);
            const quantised_linear *q = &f.linears[0];
            for (int l = 0; l < f.num_linears; l++)
                if (!strcmp(f.linears[l].name, "blocks.1.ffn.0"))
                    q = &f.linears[l];
            const dit_linear *lin = linear_named(&w, q->name);
            ck_assert(lin->storage == storages[s] && lin->codes != NULL && lin->weight == NULL);
            for (int i = 0; s == 0 && i < q->out * q->in; i++)
                ck_assert_uint_eq(((const uint16_t *)lin->codes)[i], sla2_float_to_bf16(q->dequantised[i]));
            forward(&f, &w, out);
            double rel = rel_l2(out, ref, f.video_elems), bound = s == 0 ? 5e-3 : 5e-2;
            printf("%s loaded as %s: rel L2 %.3e against its dequantised f32 checkpoint\n", r->label,
                   s == 0 ? "bf16" : other == DIT_WEIGHTS_FP8 ? "fp8" : "int8", rel);
            ck_assert_msg(rel < bound, "rel L2 %.3g", rel);
            dit_weights_free(&w, NULL, f.config.num_layers);
        }
        dit_weights_free(&reference, NULL, f.config.num_layers);
        free(ref), free(out);
        fixture_free(&f);
    }
}
END_TEST

/* Loads c as storage and expects SLA2_ERR_FORMAT with a message that holds
 * expected, or success when expected is NULL. */
static void expect_load(fixture *f, checkpoint *c, dit_weight_storage storage, const char *expected)
{
    char err[512] = "";
    sla2_safetensors *st = checkpoint_open(c, f->path);
    dit_weights w;
    memset(&w, 0x5a, sizeof w);
    sla2_status s = dit_weights_load_as(&f->config, st, storage, &w, err, sizeof err);
    sla2_safetensors_close(st);
    if (!expected) {
        ck_assert_msg(s == SLA2_OK, "%s", err);
        dit_weights_free(&w, NULL, f->config.num_layers);
        return;
    }
    ck_assert_msg(s == SLA2_ERR_FORMAT, "status %s (%s), expected FORMAT for '%s'", sla2_status_string(s), err,
                  expected);
    ck_assert_msg(strstr(err, expected), "message '%s', expected '%s'", err, expected);
}

/* A copy of c that refers to c's data and owns nothing. */
static checkpoint *copy_of(const checkpoint *c)
{
    checkpoint *copy = malloc(sizeof *copy);
    ck_assert(copy != NULL);
    *copy = *c;
    copy->num_owned = 0;
    return copy;
}

/* Every malformed layout: FORMAT, and the message names the tensor and the
 * problem. Each case edits one tensor of a good checkpoint (I8 codes with
 * an F32 [out, 1] weight_scale); storages f32 and int8 take the
 * dequantising and the code-keeping paths. */
START_TEST(malformed_layouts_are_refused_naming_the_tensor)
{
    fixture f;
    fixture_load(&f, &recipes[0]);
    const char *victim = "blocks.1.ffn.0.weight", *victim_scale = "blocks.1.ffn.0.weight_scale";
    const int out = f.config.ffn_dim, in = f.config.dim;
    const int64_t scalar[1] = {0}, weight_shape[2] = {out, in};
    static float scales[512], other_scales[1024];
    static uint8_t codes[256 * 128], e4m3_ones[256];
    ck_assert(out <= 256 && in <= 128);
    memset(e4m3_ones, sla2_float_to_e4m3(1.0f), sizeof e4m3_ones);
    for (int i = 0; i < 1024; i++)
        other_scales[i] = 0.01f;
    for (int storage = DIT_WEIGHTS_F32; storage <= DIT_WEIGHTS_INT8; storage++) {
        const dit_weight_storage st = (dit_weight_storage)storage;
        /* no scale */
        checkpoint *c = copy_of(&f.quantised);
        drop(c, victim_scale);
        expect_load(&f, c, st, "tensor 'blocks.1.ffn.0.weight': I8 codes without a scale");
        entry(c, victim)->dtype = SLA2_ST_F8_E4M3;
        expect_load(&f, c, st, "tensor 'blocks.1.ffn.0.weight': F8_E4M3 codes without a scale");
        free(c);
        /* both names */
        c = copy_of(&f.quantised);
        put(c, "blocks.1.ffn.0.scale_weight", SLA2_ST_F32, 0, scalar, other_scales);
        expect_load(&f, c, st, "tensor 'blocks.1.ffn.0.weight': has two scales");
        free(c);
        /* a zero point (asymmetric) */
        c = copy_of(&f.quantised);
        put(c, "blocks.1.ffn.0.weight_zero_point", SLA2_ST_I8, 1, (int64_t[]){out}, codes);
        expect_load(&f, c, st, "tensor 'blocks.1.ffn.0.weight': has a zero point");
        free(c);
        /* scale shapes: group-wise [out, 2], [2], [1, out], block-wise [out / 2, 2] */
        const int64_t bad_shapes[4][2] = {{out, 2}, {2, 0}, {1, out}, {out / 2, 2}};
        const int bad_ndims[4] = {2, 1, 2, 2};
        for (int b = 0; b < 4; b++) {
            c = copy_of(&f.quantised);
            replace(c, victim_scale, SLA2_ST_F32, bad_ndims[b], bad_shapes[b], other_scales);
            expect_load(&f, c, st, "tensor 'blocks.1.ffn.0.weight_scale': scale of shape [");
            free(c);
        }
        /* scale dtype */
        c = copy_of(&f.quantised);
        replace(c, victim_scale, SLA2_ST_I8, 2, (int64_t[]){out, 1}, codes);
        expect_load(&f, c, st, "tensor 'blocks.1.ffn.0.weight_scale': a scale must be F32, F16 or BF16, got I8");
        free(c);
        /* scale values: NaN, Inf, negative; zero for a row with non-zero codes */
        const float bad_values[4] = {NAN, INFINITY, -0.01f, 0.0f};
        const char *bad_messages[4] = {"tensor 'blocks.1.ffn.0.weight_scale': scale[3] is nan",
                                       "tensor 'blocks.1.ffn.0.weight_scale': scale[3] is inf",
                                       "tensor 'blocks.1.ffn.0.weight_scale': scale[3] is -0.01",
                                       "tensor 'blocks.1.ffn.0.weight': row 3 has a zero scale but non-zero codes"};
        for (int b = 0; b < 4; b++) {
            c = copy_of(&f.quantised);
            memcpy(scales, entry(c, victim_scale)->data, (size_t)out * sizeof(float));
            scales[3] = bad_values[b];
            entry(c, victim_scale)->data = scales;
            expect_load(&f, c, st, bad_messages[b]);
            free(c);
        }
        /* ... but a zero scale for a row of zero codes is a row of zeros */
        c = copy_of(&f.quantised);
        memcpy(codes, entry(c, victim)->data, (size_t)out * in);
        memset(codes + 3 * in, 0, (size_t)in);
        memcpy(scales, entry(c, victim_scale)->data, (size_t)out * sizeof(float));
        scales[3] = 0.0f;
        entry(c, victim)->data = codes;
        entry(c, victim_scale)->data = scales;
        expect_load(&f, c, st, NULL);
        /* a NaN e4m3 code (int8 codes would hold 0x7f, 127, already) */
        memset(codes, sla2_float_to_e4m3(1.0f), (size_t)out * in);
        codes[5 * in + 7] = 0xff;
        entry(c, victim)->dtype = SLA2_ST_F8_E4M3;
        entry(c, victim_scale)->data = entry(&f.quantised, victim_scale)->data;
        expect_load(&f, c, st, "tensor 'blocks.1.ffn.0.weight': [5][7] is a NaN code (0xff)");
        free(c);
        /* a scale beside a float weight: 1 is ignored, anything else refused */
        c = copy_of(&f.quantised);
        replace(c, victim, SLA2_ST_F32, 2, weight_shape, entry(&f.dequantised, victim)->data);
        for (int i = 0; i < out; i++)
            scales[i] = 1.0f;
        entry(c, victim_scale)->data = scales;
        expect_load(&f, c, st, NULL);
        scales[9] = 2.0f;
        expect_load(&f, c, st, "tensor 'blocks.1.ffn.0.weight': F32, yet with a scale "
                               "'blocks.1.ffn.0.weight_scale' of 2");
        free(c);
        /* not a linear weight: I8 refused, F8_E4M3 read as values, scaled F8_E4M3 refused */
        c = copy_of(&f.quantised);
        replace(c, "blocks.0.norm3.weight", SLA2_ST_I8, 1, (int64_t[]){in}, codes);
        expect_load(&f, c, st, "tensor 'blocks.0.norm3.weight': I8 is read only for linear weights");
        entry(c, "blocks.0.norm3.weight")->dtype = SLA2_ST_F8_E4M3;
        entry(c, "blocks.0.norm3.weight")->data = e4m3_ones;
        expect_load(&f, c, st, NULL);
        put(c, "blocks.0.norm3.scale_weight", SLA2_ST_F32, 0, scalar, other_scales);
        expect_load(&f, c, st, "tensor 'blocks.0.norm3.weight': scaled F8_E4M3 (a scale "
                               "'blocks.0.norm3.scale_weight') is read only for linear weights");
        free(c);
        c = copy_of(&f.quantised);
        replace(c, "blocks.1.modulation", SLA2_ST_I8, 3, (int64_t[]){1, 6, in}, codes);
        expect_load(&f, c, st, "tensor 'blocks.1.modulation': I8 is read only for linear weights");
        free(c);
    }
    fixture_free(&f);
}
END_TEST

/* An F8_E4M3 norm weight is read as its values, exactly. */
START_TEST(f8_norm_weights_are_values)
{
    fixture f;
    fixture_load(&f, &recipes[2]);
    uint8_t codes[128];
    ck_assert_int_le(f.config.dim, 128);
    for (int i = 0; i < f.config.dim; i++)
        codes[i] = sla2_float_to_e4m3(0.5f + 0.01f * (float)i);
    replace(&f.quantised, "blocks.0.self_attn.norm_q.weight", SLA2_ST_F8_E4M3, 1, (int64_t[]){f.config.dim}, codes);
    dit_weights w;
    load_as(&f, &f.quantised, DIT_WEIGHTS_FP8, &w);
    for (int i = 0; i < f.config.dim; i++)
        ck_assert_float_eq(w.blocks[0].self_attn.norm_q[i], sla2_e4m3_to_float(codes[i]));
    dit_weights_free(&w, NULL, f.config.num_layers);
    fixture_free(&f);
}
END_TEST

/* ComfyUI's files put "model.diffusion_model." before every Wan name: the
 * same model loads from them, codes and scales bit for bit. */
START_TEST(comfyui_key_prefix_is_read)
{
    static char names[MAX_TENSORS][160];
    fixture f;
    fixture_load(&f, &recipes[2]);
    dit_weights plain, prefixed;
    load_as(&f, &f.quantised, DIT_WEIGHTS_FP8, &plain);
    for (size_t i = 0; i < f.quantised.count; i++) {
        snprintf(names[i], sizeof names[i], "model.diffusion_model.%s", f.quantised.tensors[i].name);
        f.quantised.tensors[i].name = names[i];
    }
    load_as(&f, &f.quantised, DIT_WEIGHTS_FP8, &prefixed);
    ck_assert_uint_eq(prefixed.resident_bytes, plain.resident_bytes);
    for (int l = 0; l < f.num_linears; l++) {
        const quantised_linear *q = &f.linears[l];
        const dit_linear *a = linear_named(&plain, q->name), *b = linear_named(&prefixed, q->name);
        const size_t elems = (size_t)q->out * q->in;
        ck_assert_msg(a->storage == b->storage, "%s", q->name);
        if (a->codes)
            ck_assert_msg(!memcmp(a->codes, b->codes, elems) && !memcmp(a->scale, b->scale, (size_t)q->out * 4),
                          "%s", q->name);
        else
            ck_assert_msg(!memcmp(a->weight, b->weight, elems * sizeof(float)), "%s", q->name);
    }
    ck_assert(!memcmp(plain.blocks[0].modulation, prefixed.blocks[0].modulation, 6 * f.config.dim * sizeof(float)));
    dit_weights_free(&plain, NULL, f.config.num_layers);
    dit_weights_free(&prefixed, NULL, f.config.num_layers);
    fixture_free(&f);
}
END_TEST

/* Through the model API: an I8 checkpoint loaded with INT8 storage reports
 * the weight_bytes of the same storage requantised from floats, and a bad
 * one fails with FORMAT, its path and the tensor in the context's message. */
START_TEST(model_api_weight_bytes_and_errors)
{
    fixture f;
    fixture_load(&f, &recipes[0]);
    char dequantised_path[300];
    snprintf(dequantised_path, sizeof dequantised_path, "%s.f32", f.path);
    sla2_safetensors_close(checkpoint_open(&f.dequantised, dequantised_path));
    sla2_safetensors_close(checkpoint_open(&f.quantised, f.path));
    sla2_context *ctx = test_cpu_context(0);
    sla2_model_load_options o;
    sla2_model_load_options_default(&o);
    o.weight_storage = SLA2_WEIGHTS_INT8;
    sla2_model *kept = NULL, *requantised = NULL;
    ck_assert_status(sla2_model_load_with_options(ctx, FIXTURE_DIR "/dit/model.yaml", f.path, &o, &kept), SLA2_OK);
    ck_assert_status(sla2_model_load_with_options(ctx, FIXTURE_DIR "/dit/model.yaml", dequantised_path, &o,
                                                  &requantised), SLA2_OK);
    sla2_model_info a = {.size = sizeof a}, b = {.size = sizeof b};
    ck_assert_status(sla2_model_get_info(ctx, kept, &a), SLA2_OK);
    ck_assert_status(sla2_model_get_info(ctx, requantised, &b), SLA2_OK);
    ck_assert_int_eq(a.weight_storage, SLA2_WEIGHTS_INT8);
    ck_assert_uint_eq(a.weight_bytes, b.weight_bytes);
    sla2_model_free(kept);
    sla2_model_free(requantised);
    drop(&f.quantised, "blocks.0.self_attn.k.weight_scale");
    sla2_safetensors_close(checkpoint_open(&f.quantised, f.path));
    sla2_model *model = (sla2_model *)0x1;
    ck_assert_status(sla2_model_load_with_options(ctx, FIXTURE_DIR "/dit/model.yaml", f.path, &o, &model),
                     SLA2_ERR_FORMAT);
    ck_assert(model == (sla2_model *)0x1);
    const char *message = sla2_context_last_error(ctx);
    ck_assert_msg(strstr(message, f.path) && strstr(message, "tensor 'blocks.0.self_attn.k.weight': I8 codes without"),
                  "%s", message);
    sla2_context_free(ctx);
    remove(dequantised_path);
    fixture_free(&f);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("dit_quantised_checkpoint");
    TCase *tc = tcase_create("load");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, quantised_checkpoint_equals_its_dequantised_twin, 0,
                        (int)(sizeof recipes / sizeof recipes[0]));
    tcase_add_test(tc, other_storages_dequantise_then_convert);
    tcase_add_test(tc, malformed_layouts_are_refused_naming_the_tensor);
    tcase_add_test(tc, f8_norm_weights_are_values);
    tcase_add_test(tc, comfyui_key_prefix_is_read);
    tcase_add_test(tc, model_api_weight_bytes_and_errors);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
