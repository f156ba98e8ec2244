/* sla2_model: an architecture YAML plus its safetensors weights. */
#include "pipeline/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

_Static_assert((int)SLA2_WEIGHTS_INT8 == (int)DIT_WEIGHTS_INT8 && (int)SLA2_WEIGHTS_FP8 == (int)DIT_WEIGHTS_FP8 &&
                   (int)SLA2_WEIGHTS_BF16 == (int)DIT_WEIGHTS_BF16 &&
                   (int)SLA2_WEIGHT_STORAGE_INT8 == (int)DIT_WEIGHTS_INT8 &&
                   (int)SLA2_WEIGHT_STORAGE_FP8 == (int)DIT_WEIGHTS_FP8 &&
                   (int)SLA2_WEIGHT_STORAGE_BF16 == (int)DIT_WEIGHTS_BF16 &&
                   (int)SLA2_WEIGHTS_FP8_GEMM == (int)DIT_WEIGHTS_FP8_GEMM &&
                   (int)SLA2_WEIGHT_STORAGE_FP8_GEMM == (int)DIT_WEIGHTS_FP8_GEMM,
               "the three spellings of the weight storage agree");

sla2_status sla2_model_load(sla2_context *ctx, const char *config_path, const char *weights_path, sla2_model **out)
{
    return sla2_model_load_with_options(ctx, config_path, weights_path, NULL, out);
}

void sla2_model_load_options_default(sla2_model_load_options *options)
{
    if (!options)
        return;
    memset(options, 0, sizeof *options);
    options->size = sizeof *options;
    options->weight_storage = -1;
}

/* The storage options ask for: their own, else the runtime file's. */
static sla2_status weight_storage_of(sla2_context *ctx, const sla2_model_load_options *o, dit_weight_storage *out,
                                     int *chosen)
{
    *out = DIT_WEIGHTS_F32;
    *chosen = 0;
    if (!o)
        return SLA2_OK;
    if (o->size != sizeof *o)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "options.size: call sla2_model_load_options_default first");
    if (o->weight_storage < -1 || o->weight_storage > SLA2_WEIGHTS_FP8_GEMM)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "options.weight_storage: %d is not a sla2_weight_storage",
                         o->weight_storage);
    if (o->weight_storage >= 0) {
        *out = (dit_weight_storage)o->weight_storage;
        *chosen = 1;
        return SLA2_OK;
    }
    if (!o->runtime_path)
        return SLA2_OK;
    *chosen = 1;
    char err[sizeof ctx->last_error];
    sla2_runtime_config runtime;
    sla2_status s = sla2_runtime_config_load(o->runtime_path, &runtime, err, sizeof err);
    if (s != SLA2_OK)
        return sla2_fail(ctx, s, "%s", err);
    *out = (dit_weight_storage)runtime.weights;
    sla2_runtime_config_free(&runtime);
    return SLA2_OK;
}

sla2_status sla2_model_load_with_options(sla2_context *ctx, const char *config_path, const char *weights_path,
                                         const sla2_model_load_options *options, sla2_model **out)
{
    if (!ctx)
        return SLA2_ERR_NULL_ARGUMENT;
    sla2_clear_error(ctx);
    if (!config_path || !weights_path || !out)
        return sla2_fail(ctx, SLA2_ERR_NULL_ARGUMENT, "%s: must not be NULL",
                         !config_path ? "config_path" : !weights_path ? "weights_path" : "out");
    dit_weight_storage storage;
    int storage_chosen;
    sla2_status storage_status = weight_storage_of(ctx, options, &storage, &storage_chosen);
    if (storage_status != SLA2_OK)
        return storage_status;
    const dit_backend *backend = dit_backend_for(ctx);
    if (!backend)
        return SLA2_ERR_UNSUPPORTED;
    sla2_model *m = calloc(1, sizeof *m);
    if (!m)
        return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for the model");
    char err[sizeof ctx->last_error];
    sla2_status s = sla2_model_config_load(config_path, &m->config, err, sizeof err);
    if (s != SLA2_OK) {
        free(m);
        return sla2_fail(ctx, s, "%s", err);
    }
    int head_dim = m->config.dim / m->config.num_heads;
    if (head_dim != 64 && head_dim != 128) {
        sla2_model_config_free(&m->config);
        free(m);
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED, "%s: head_dim = dim / num_heads = %d; SLA2 needs 64 or 128",
                         config_path, head_dim);
    }
    sla2_safetensors *st = NULL;
    s = sla2_safetensors_open(weights_path, &st, err, sizeof err);
    if (s == SLA2_OK) {
        s = dit_weights_load_as(&m->config, st, storage, &m->weights, err, sizeof err);
        sla2_safetensors_close(st); /* the weights are float32 copies now */
        if (s == SLA2_OK && (s = dit_weights_to_backend(ctx, backend, &m->weights)) != SLA2_OK)
            snprintf(err, sizeof err, "moving the weights to the %s backend: %.400s", backend->name, ctx->last_error);
    }
    if (s != SLA2_OK) {
        sla2_model_config_free(&m->config);
        free(m);
        return sla2_fail(ctx, s, "%s: %s", weights_path, err);
    }
    m->ctx = ctx;
    m->storage_chosen = storage_chosen;
    m->tokens = sla2_model_config_tokens(&m->config, m->grid);
    *out = m;
    return SLA2_OK;
}

void sla2_model_free(sla2_model *model)
{
    if (!model)
        return;
    dit_weights_free(&model->weights, model->ctx, model->config.num_layers);
    sla2_model_config_free(&model->config);
    free(model);
}

sla2_status sla2_model_get_info(sla2_context *ctx, const sla2_model *model, sla2_model_info *info)
{
    if (!ctx)
        return SLA2_ERR_NULL_ARGUMENT;
    if (!model || !info)
        return sla2_fail(ctx, SLA2_ERR_NULL_ARGUMENT, "%s: must not be NULL", !model ? "model" : "info");
    /* callers built with the header before weight_storage existed pass the older, smaller size */
    size_t size = info->size;
    if (size != sizeof *info && size != offsetof(sla2_model_info, weight_storage))
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "info.size: set it to sizeof(sla2_model_info)");
    const sla2_model_config *c = &model->config;
    memset(info, 0, size);
    info->size = size;
    info->name = c->name;
    info->num_layers = c->num_layers;
    info->num_heads = c->num_heads;
    info->head_dim = c->dim / c->num_heads;
    info->dim = c->dim;
    info->channels = c->in_channels;
    info->frames = model->grid[0] * c->patch_size[0];
    info->height = model->grid[1] * c->patch_size[1];
    info->width = model->grid[2] * c->patch_size[2];
    info->pixel_space = c->space == SLA2_SPACE_PIXEL;
    info->tokens = model->tokens;
    info->text_len = c->text_len;
    info->text_dim = c->text_dim;
    info->vocabulary_size = c->vocabulary_size;
    info->vocabulary = (const char *const *)c->vocabulary;
    if (size == sizeof *info) {
        info->weight_storage = (int)model->weights.storage;
        info->weight_bytes = model->weights.resident_bytes;
    }
    return SLA2_OK;
}
