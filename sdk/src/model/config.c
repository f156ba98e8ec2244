#include "model/config.h"

#include "model/config_names.h"
#include "model/errmsg.h"
#include "model/yaml_schema.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_FIELD(member) .offset = offsetof(sla2_model_config, member)
#define RUNTIME_FIELD(member) .offset = offsetof(sla2_runtime_config, member)
#define LAYER_FIELD(member) .offset = offsetof(sla2_runtime_layer, member)

static const char *const router_names[] = {"none", "shared", "per_head", NULL};
static const char *const alpha_names[] = {"none", "per_head", "per_row", NULL};
static const char *const formulation_names[] = {"sla2", "sla_v1", NULL};
static const char *const space_names[] = {"latent", "pixel", NULL};
#define backend_names sla2_config_backend_names
#define sampler_names sla2_config_sampler_names
#define attention_names sla2_config_attention_names
#define feature_map_names sla2_config_feature_map_names
#define quant_names sla2_config_quant_names

/* Shared with config_write.c (config_names.h). */
const char *const sla2_config_backend_names[] = {"auto", "cpu", "cuda", NULL};
const char *const sla2_config_sampler_names[] = {"unipc", "euler", NULL};
const char *const sla2_config_attention_names[] = {"sla2", "dense", NULL};
const char *const sla2_config_feature_map_names[] = {"softmax", "elu", "relu", NULL};
const char *const sla2_config_quant_names[] = {"none", "int8", "int8_fp8", NULL};
const char *const sla2_config_weights_names[] = {"f32", "int8", "fp8", "bf16", "fp8_gemm", NULL};
static const int block_choices[] = {64, 128, 0};
static const int block_k_choices[] = {64, 0}; /* the operator's key blocks are 64 rows */

#define MAX_VOCABULARY 65536
#define MAX_WORD_BYTES 63
#define MAX_LAYER_ENTRIES 1024

const char *sla2_router_layout_name(sla2_router_layout layout)
{
    return (unsigned)layout < 3 ? router_names[layout] : NULL;
}

const char *sla2_alpha_kind_name(sla2_alpha_kind kind)
{
    return (unsigned)kind < 3 ? alpha_names[kind] : NULL;
}

const char *sla2_formulation_name(sla2_formulation formulation)
{
    return (unsigned)formulation < 2 ? formulation_names[formulation] : NULL;
}

const char *sla2_sampler_name(sla2_sampler sampler)
{
    return (unsigned)sampler < 2 ? sampler_names[sampler] : NULL;
}

/* ---- The model file -------------------------------------------------------- */

static sla2_status load_vocabulary(sla2_yaml_loader *ld, yaml_node_t *node, const char *path, void *base);

static const sla2_schema_field sla2_section_fields[] = {
    {.key = "router", .type = SLA2_SCHEMA_ENUM, .required = 1, MODEL_FIELD(router), .names = router_names},
    {.key = "alpha", .type = SLA2_SCHEMA_ENUM, .required = 1, MODEL_FIELD(alpha), .names = alpha_names},
    {.key = "formulation", .type = SLA2_SCHEMA_ENUM, .required = 1, MODEL_FIELD(formulation),
     .names = formulation_names},
    {0}};

static const sla2_schema_field video_section_fields[] = {
    {.key = "space", .type = SLA2_SCHEMA_ENUM, .required = 1, MODEL_FIELD(space), .names = space_names},
    {.key = "frames", .type = SLA2_SCHEMA_INT, .required = 1, MODEL_FIELD(frames), .min = 1, .max = 4096},
    {.key = "height", .type = SLA2_SCHEMA_INT, .required = 1, MODEL_FIELD(height), .min = 1, .max = 16384},
    {.key = "width", .type = SLA2_SCHEMA_INT, .required = 1, MODEL_FIELD(width), .min = 1, .max = 16384},
    {.key = "vae_stride", .type = SLA2_SCHEMA_INT3, MODEL_FIELD(vae_stride), .min = 1, .max = 64},
    {0}};

/* Upper bounds keep every later size computation far from overflow. */
static const sla2_schema_field model_fields[] = {
    {.key = "name", .type = SLA2_SCHEMA_NAME, MODEL_FIELD(name)},
    {.key = "dim", .type = SLA2_SCHEMA_INT, .required = 1, MODEL_FIELD(dim), .min = 1, .max = 65536},
    {.key = "ffn_dim", .type = SLA2_SCHEMA_INT, .required = 1, MODEL_FIELD(ffn_dim), .min = 1, .max = 1 << 20},
    {.key = "freq_dim", .type = SLA2_SCHEMA_INT, .required = 1, MODEL_FIELD(freq_dim), .min = 2, .max = 65536},
    {.key = "text_dim", .type = SLA2_SCHEMA_INT, .required = 1, MODEL_FIELD(text_dim), .min = 1, .max = 65536},
    {.key = "text_len", .type = SLA2_SCHEMA_INT, .required = 1, MODEL_FIELD(text_len), .min = 1, .max = 65536},
    {.key = "num_heads", .type = SLA2_SCHEMA_INT, .required = 1, MODEL_FIELD(num_heads), .min = 1, .max = 1024},
    {.key = "num_layers", .type = SLA2_SCHEMA_INT, .required = 1, MODEL_FIELD(num_layers), .min = 1, .max = 1024},
    {.key = "in_channels", .type = SLA2_SCHEMA_INT, .required = 1, MODEL_FIELD(in_channels), .min = 1, .max = 1024},
    {.key = "out_channels", .type = SLA2_SCHEMA_INT, .required = 1, MODEL_FIELD(out_channels), .min = 1, .max = 1024},
    {.key = "patch_size", .type = SLA2_SCHEMA_INT3, .required = 1, MODEL_FIELD(patch_size), .min = 1, .max = 64},
    {.key = "eps", .type = SLA2_SCHEMA_DOUBLE, .required = 1, MODEL_FIELD(eps), .min = 0, .max = 1,
     .min_open = 1, .max_open = 1},
    {.key = "qk_norm", .type = SLA2_SCHEMA_BOOL, .required = 1, MODEL_FIELD(qk_norm)},
    {.key = "cross_attn_norm", .type = SLA2_SCHEMA_BOOL, .required = 1, MODEL_FIELD(cross_attn_norm)},
    {.key = "sla2", .type = SLA2_SCHEMA_SECTION, .fields = sla2_section_fields},
    {.key = "video", .type = SLA2_SCHEMA_SECTION, .required = 1, .fields = video_section_fields},
    {.key = "vocabulary", .type = SLA2_SCHEMA_CUSTOM, .load = load_vocabulary},
    {0}};

static int is_word(const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.length == 0)
        return 0;
    for (size_t i = 0; i < node->data.scalar.length; i++) {
        unsigned char c = node->data.scalar.value[i];
        if (c <= ' ' || c == 0x7f)
            return 0;
    }
    return 1;
}

static sla2_status load_vocabulary(sla2_yaml_loader *ld, yaml_node_t *node, const char *path, void *base)
{
    sla2_model_config *config = base;
    char got[160];
    if (node->type != YAML_SEQUENCE_NODE)
        return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_FORMAT, path, "expected a list of words, got %s",
                              sla2_yaml_describe(node, got, sizeof got));
    size_t count = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (count == 0 || count > MAX_VOCABULARY)
        return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_INVALID_VALUE, path,
                              "expected 1 to %d words, got %zu", MAX_VOCABULARY, count);
    config->vocabulary = calloc(count, sizeof *config->vocabulary);
    if (config->vocabulary == NULL)
        return sla2_errmsg(ld->err, ld->err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->file);
    for (size_t i = 0; i < count; i++) {
        char item_path[SLA2_YAML_PATH_SIZE];
        sla2_yaml_path_index(item_path, path, i);
        yaml_node_t *item = sla2_yaml_child(ld, node->data.sequence.items.start[i], item_path);
        if (item == NULL)
            return SLA2_ERR_FORMAT;
        if (!is_word(item))
            return sla2_yaml_fail(ld, &item->start_mark, item->type == YAML_SCALAR_NODE ? SLA2_ERR_INVALID_VALUE
                                                                                          : SLA2_ERR_FORMAT,
                                  item_path, "expected a word (no spaces or control characters), got %s",
                                  sla2_yaml_describe(item, got, sizeof got));
        const char *word = (const char *)item->data.scalar.value;
        if (item->data.scalar.length > MAX_WORD_BYTES)
            return sla2_yaml_fail(ld, &item->start_mark, SLA2_ERR_INVALID_VALUE, item_path,
                                  "a word of %zu bytes; at most %d", item->data.scalar.length, MAX_WORD_BYTES);
        for (size_t j = 0; j < i; j++)
            if (strcmp(config->vocabulary[j], word) == 0)
                return sla2_yaml_fail(ld, &item->start_mark, SLA2_ERR_INVALID_VALUE, item_path,
                                      "'%s' appears twice (first as %s[%zu])", word, path, j);
        config->vocabulary[i] = malloc(item->data.scalar.length + 1);
        if (config->vocabulary[i] == NULL)
            return sla2_errmsg(ld->err, ld->err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->file);
        memcpy(config->vocabulary[i], word, item->data.scalar.length + 1);
        config->vocabulary_size = i + 1;
    }
    return SLA2_OK;
}

static sla2_status fail_at_key(sla2_yaml_loader *ld, sla2_status status, const char *path, const char *fmt, ...)
    SLA2_PRINTF(4, 5);

static sla2_status fail_at_key(sla2_yaml_loader *ld, sla2_status status, const char *path, const char *fmt, ...)
{
    char what[320];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    return sla2_yaml_fail(ld, sla2_yaml_mark_of(ld, path), status, path, "%s", what);
}

/* Frames/height/width must map onto whole latents and whole patches. */
static sla2_status check_video(sla2_yaml_loader *ld, sla2_model_config *c)
{
    static const char *const axis_keys[3] = {"video.frames", "video.height", "video.width"};
    static const char *const axis_words[3] = {"frames", "rows", "columns"};
    int given_stride = c->vae_stride[0] != 0;
    if (c->space == SLA2_SPACE_PIXEL) {
        if (given_stride && (c->vae_stride[0] != 1 || c->vae_stride[1] != 1 || c->vae_stride[2] != 1))
            return fail_at_key(ld, SLA2_ERR_INVALID_VALUE, "video.vae_stride",
                               "a pixel-space model has no VAE; expected [1, 1, 1] or nothing");
        c->vae_stride[0] = c->vae_stride[1] = c->vae_stride[2] = 1;
    } else if (!given_stride) {
        return sla2_yaml_fail(ld, sla2_yaml_mark_of(ld, "video"), SLA2_ERR_FORMAT, "video.vae_stride",
                              "missing required key (a latent-space model needs it)");
    }
    const int pixels[3] = {c->frames, c->height, c->width};
    for (int a = 0; a < 3; a++) {
        int stride = c->vae_stride[a];
        /* The causal VAE keeps the first frame: 1 + stride * k frames. */
        int rest = a == 0 ? pixels[a] - 1 : pixels[a];
        if (rest % stride != 0)
            return fail_at_key(ld, SLA2_ERR_INVALID_VALUE, axis_keys[a],
                               "%d %s do not fit the VAE stride %d (expected %s%d k)", pixels[a], axis_words[a],
                               stride, a == 0 ? "1 + " : "", stride);
        int latent = a == 0 ? rest / stride + 1 : rest / stride;
        if (latent % c->patch_size[a] != 0)
            return fail_at_key(ld, SLA2_ERR_INVALID_VALUE, axis_keys[a],
                               "%d %s (%d after the VAE) are not divisible by patch_size[%d] = %d", pixels[a],
                               axis_words[a], latent, a, c->patch_size[a]);
    }
    return SLA2_OK;
}

static sla2_status check_model(sla2_yaml_loader *ld, sla2_model_config *c)
{
    if (c->dim % c->num_heads != 0)
        return fail_at_key(ld, SLA2_ERR_INVALID_VALUE, "num_heads", "dim %d is not divisible by num_heads %d",
                           c->dim, c->num_heads);
    int head_dim = c->dim / c->num_heads;
    if (head_dim != 64 && head_dim != 128)
        return fail_at_key(ld, SLA2_ERR_UNSUPPORTED, "num_heads",
                           "head dimension dim / num_heads = %d; the attention operator supports 64 or 128",
                           head_dim);
    if (c->freq_dim % 2 != 0)
        return fail_at_key(ld, SLA2_ERR_INVALID_VALUE, "freq_dim",
                           "must be even (half cosines, half sines), got %d", c->freq_dim);
    if (c->formulation == SLA2_FORMULATION_SLA_V1 && c->alpha != SLA2_ALPHA_ONE)
        return fail_at_key(ld, SLA2_ERR_INVALID_VALUE, "sla2.alpha",
                           "the sla_v1 formulation has no alpha (it mixes with proj_l); expected none, got %s",
                           alpha_names[c->alpha]);
    return check_video(ld, c);
}

sla2_status sla2_model_config_parse(const char *text, size_t len, const char *name,
                                    sla2_model_config *out, char *err, size_t err_size)
{
    if (out == NULL || (text == NULL && len > 0))
        return sla2_errmsg(err, err_size, SLA2_ERR_NULL_ARGUMENT, "sla2_model_config_parse: %s is NULL",
                           out == NULL ? "out" : "text");
    sla2_model_config config;
    memset(&config, 0, sizeof config); /* sla2 section defaults: none, none, sla2 */
    sla2_yaml_loader ld;
    yaml_node_t *root = NULL;
    sla2_status status = sla2_yaml_open(&ld, text ? text : "", len, name ? name : "<memory>", &root, err, err_size);
    if (status == SLA2_OK)
        status = sla2_yaml_load_mapping(&ld, root, model_fields, &config, "");
    if (status == SLA2_OK)
        status = check_model(&ld, &config);
    sla2_yaml_close(&ld);
    if (status != SLA2_OK) {
        sla2_model_config_free(&config);
        return status;
    }
    *out = config;
    return SLA2_OK;
}

sla2_status sla2_model_config_load(const char *path, sla2_model_config *out, char *err, size_t err_size)
{
    if (path == NULL || out == NULL)
        return sla2_errmsg(err, err_size, SLA2_ERR_NULL_ARGUMENT, "sla2_model_config_load: %s is NULL",
                           path == NULL ? "path" : "out");
    char *text;
    size_t len;
    sla2_status status = sla2_yaml_read_file(path, SLA2_CONFIG_MAX_FILE_BYTES, &text, &len, err, err_size);
    if (status != SLA2_OK)
        return status;
    status = sla2_model_config_parse(text, len, path, out, err, err_size);
    free(text);
    return status;
}

void sla2_model_config_free(sla2_model_config *config)
{
    if (config == NULL)
        return;
    if (config->vocabulary != NULL)
        for (size_t i = 0; i < config->vocabulary_size; i++)
            free(config->vocabulary[i]);
    free(config->vocabulary);
    memset(config, 0, sizeof *config);
}

int64_t sla2_model_config_tokens(const sla2_model_config *config, int grid[3])
{
    if (config == NULL)
        return 0;
    const int pixels[3] = {config->frames, config->height, config->width};
    int64_t tokens = 1;
    for (int a = 0; a < 3; a++) {
        int stride = config->vae_stride[a] > 0 ? config->vae_stride[a] : 1;
        int latent = a == 0 ? (pixels[a] - 1) / stride + 1 : pixels[a] / stride;
        int cells = config->patch_size[a] > 0 ? latent / config->patch_size[a] : 0;
        if (grid != NULL)
            grid[a] = cells;
        tokens *= cells;
    }
    return tokens;
}

/* ---- The runtime file ------------------------------------------------------ */

static sla2_status load_layers(sla2_yaml_loader *ld, yaml_node_t *node, const char *path, void *base);

static const sla2_schema_field layer_fields[] = {
    {.key = "layer", .type = SLA2_SCHEMA_INT, .required = 1, LAYER_FIELD(layer), .min = 0,
     .max = MAX_LAYER_ENTRIES - 1},
    {.key = "topk", .type = SLA2_SCHEMA_DOUBLE, LAYER_FIELD(topk), .min = 0, .max = 1, .min_open = 1},
    {.key = "quant", .type = SLA2_SCHEMA_ENUM, LAYER_FIELD(quant), .names = quant_names},
    {.key = "block_q", .type = SLA2_SCHEMA_INT, LAYER_FIELD(block_q), .choices = block_choices},
    {.key = "block_k", .type = SLA2_SCHEMA_INT, LAYER_FIELD(block_k), .choices = block_k_choices},
    {.key = "dense", .type = SLA2_SCHEMA_BOOL, LAYER_FIELD(dense)},
    {0}};

static const sla2_schema_field runtime_fields[] = {
    {.key = "backend", .type = SLA2_SCHEMA_ENUM, RUNTIME_FIELD(backend), .names = backend_names},
    {.key = "sampler", .type = SLA2_SCHEMA_ENUM, RUNTIME_FIELD(sampler), .names = sampler_names},
    {.key = "steps", .type = SLA2_SCHEMA_INT, RUNTIME_FIELD(steps), .min = 1, .max = 1000},
    {.key = "shift", .type = SLA2_SCHEMA_DOUBLE, RUNTIME_FIELD(shift), .min = 0, .max = 100, .min_open = 1},
    {.key = "guidance", .type = SLA2_SCHEMA_DOUBLE, RUNTIME_FIELD(guidance), .min = 0, .max = 100},
    {.key = "seed", .type = SLA2_SCHEMA_INT64, RUNTIME_FIELD(seed), .min = 0, .max = 9007199254740991.0},
    {.key = "attention", .type = SLA2_SCHEMA_ENUM, RUNTIME_FIELD(attention), .names = attention_names},
    {.key = "feature_map", .type = SLA2_SCHEMA_ENUM, RUNTIME_FIELD(feature_map), .names = feature_map_names},
    {.key = "topk", .type = SLA2_SCHEMA_DOUBLE, RUNTIME_FIELD(defaults.topk), .min = 0, .max = 1, .min_open = 1},
    {.key = "quant", .type = SLA2_SCHEMA_ENUM, RUNTIME_FIELD(defaults.quant), .names = quant_names},
    {.key = "block_q", .type = SLA2_SCHEMA_INT, RUNTIME_FIELD(defaults.block_q), .choices = block_choices},
    {.key = "block_k", .type = SLA2_SCHEMA_INT, RUNTIME_FIELD(defaults.block_k), .choices = block_k_choices},
    {.key = "weights", .type = SLA2_SCHEMA_ENUM, RUNTIME_FIELD(weights), .names = sla2_config_weights_names},
    {.key = "layers", .type = SLA2_SCHEMA_CUSTOM, .load = load_layers},
    {0}};

static sla2_status load_layers(sla2_yaml_loader *ld, yaml_node_t *node, const char *path, void *base)
{
    sla2_runtime_config *config = base;
    char got[160];
    if (node->type != YAML_SEQUENCE_NODE)
        return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_FORMAT, path,
                              "expected a list of per-layer settings, got %s", sla2_yaml_describe(node, got, sizeof got));
    size_t count = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (count > MAX_LAYER_ENTRIES)
        return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_INVALID_VALUE, path,
                              "%zu entries; at most %d", count, MAX_LAYER_ENTRIES);
    if (count == 0)
        return SLA2_OK;
    config->layers = calloc(count, sizeof *config->layers);
    if (config->layers == NULL)
        return sla2_errmsg(ld->err, ld->err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->file);
    for (size_t i = 0; i < count; i++) {
        char item_path[SLA2_YAML_PATH_SIZE];
        sla2_yaml_path_index(item_path, path, i);
        yaml_node_t *item = sla2_yaml_child(ld, node->data.sequence.items.start[i], item_path);
        if (item == NULL)
            return SLA2_ERR_FORMAT;
        sla2_runtime_layer entry = {.layer = -1, .quant = -1};
        entry.line = (int)item->start_mark.line + 1;
        entry.column = (int)item->start_mark.column + 1;
        sla2_status status = sla2_yaml_load_mapping(ld, item, layer_fields, &entry, item_path);
        if (status != SLA2_OK)
            return status;
        for (size_t j = 0; j < i; j++)
            if (config->layers[j].layer == entry.layer)
                return sla2_yaml_fail(ld, &item->start_mark, SLA2_ERR_INVALID_VALUE, item_path,
                                      "layer %d is already set by %s[%zu] (line %d)", entry.layer, path, j,
                                      config->layers[j].line);
        config->layers[i] = entry;
        config->num_layers = i + 1;
    }
    return SLA2_OK;
}

void sla2_runtime_config_default(sla2_runtime_config *config)
{
    if (config == NULL)
        return;
    memset(config, 0, sizeof *config);
    config->backend = SLA2_BACKEND_AUTO;
    config->sampler = SLA2_SAMPLER_UNIPC;
    config->steps = 50;
    config->shift = 5.0;
    config->guidance = 5.0;
    config->seed = 0;
    config->attention = SLA2_ATTENTION_SLA2;
    config->feature_map = SLA2_FEATURE_SOFTMAX;
    config->defaults.topk = 0.05;
    config->defaults.quant = SLA2_QUANT_INT8_FP8;
    config->defaults.block_q = 128;
    config->defaults.block_k = 64;
}

sla2_status sla2_runtime_config_parse(const char *text, size_t len, const char *name,
                                      sla2_runtime_config *out, char *err, size_t err_size)
{
    if (out == NULL || (text == NULL && len > 0))
        return sla2_errmsg(err, err_size, SLA2_ERR_NULL_ARGUMENT, "sla2_runtime_config_parse: %s is NULL",
                           out == NULL ? "out" : "text");
    name = name ? name : "<memory>";
    sla2_runtime_config config;
    sla2_runtime_config_default(&config);
    snprintf(config.source, sizeof config.source, "%s", name);
    sla2_yaml_loader ld;
    yaml_node_t *root = NULL;
    sla2_status status = sla2_yaml_open(&ld, text ? text : "", len, name, &root, err, err_size);
    if (status == SLA2_OK)
        status = sla2_yaml_load_mapping(&ld, root, runtime_fields, &config, "");
    sla2_yaml_close(&ld);
    if (status != SLA2_OK) {
        sla2_runtime_config_free(&config);
        return status;
    }
    *out = config;
    return SLA2_OK;
}

sla2_status sla2_runtime_config_load(const char *path, sla2_runtime_config *out, char *err, size_t err_size)
{
    if (path == NULL || out == NULL)
        return sla2_errmsg(err, err_size, SLA2_ERR_NULL_ARGUMENT, "sla2_runtime_config_load: %s is NULL",
                           path == NULL ? "path" : "out");
    char *text;
    size_t len;
    sla2_status status = sla2_yaml_read_file(path, SLA2_CONFIG_MAX_FILE_BYTES, &text, &len, err, err_size);
    if (status != SLA2_OK)
        return status;
    status = sla2_runtime_config_parse(text, len, path, out, err, err_size);
    free(text);
    return status;
}

void sla2_runtime_config_free(sla2_runtime_config *config)
{
    if (config == NULL)
        return;
    free(config->layers);
    config->layers = NULL;
    config->num_layers = 0;
}

sla2_status sla2_runtime_config_check(const sla2_runtime_config *config, const sla2_model_config *model,
                                      char *err, size_t err_size)
{
    if (config == NULL || model == NULL)
        return sla2_errmsg(err, err_size, SLA2_ERR_NULL_ARGUMENT, "sla2_runtime_config_check: %s is NULL",
                           config == NULL ? "config" : "model");
    for (size_t i = 0; i < config->num_layers; i++) {
        const sla2_runtime_layer *entry = &config->layers[i];
        if (entry->layer >= model->num_layers)
            return sla2_errmsg(err, err_size, SLA2_ERR_INVALID_VALUE,
                               "%s:%d:%d: layers[%zu].layer: layer %d does not exist (the model has %d layers, 0 to %d)",
                               config->source, entry->line, entry->column, i, entry->layer, model->num_layers,
                               model->num_layers - 1);
    }
    return SLA2_OK;
}

sla2_layer_settings sla2_runtime_config_layer(const sla2_runtime_config *config, int layer)
{
    sla2_layer_settings settings = {0.05, SLA2_QUANT_INT8_FP8, 128, 64};
    if (config == NULL)
        return settings;
    settings = config->defaults;
    for (size_t i = 0; i < config->num_layers; i++) {
        const sla2_runtime_layer *entry = &config->layers[i];
        if (entry->layer != layer)
            continue;
        if (entry->topk > 0)
            settings.topk = entry->topk;
        if (entry->quant >= 0)
            settings.quant = (sla2_quant_mode)entry->quant;
        if (entry->block_q > 0)
            settings.block_q = entry->block_q;
        if (entry->block_k > 0)
            settings.block_k = entry->block_k;
    }
    return settings;
}

int sla2_runtime_config_layer_dense(const sla2_runtime_config *config, int layer)
{
    if (config == NULL)
        return 0;
    for (size_t i = 0; i < config->num_layers; i++)
        if (config->layers[i].layer == layer && config->layers[i].dense)
            return 1;
    return 0;
}
