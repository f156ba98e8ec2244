/* sla2_model: an architecture YAML plus its safetensors weights. */
#include "pipeline/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sla2_status sla2_model_load(sla2_context *ctx, const char *config_path, const char *weights_path, sla2_model **out)
{
    if (!ctx)
        return SLA2_ERR_NULL_ARGUMENT;
    sla2_clear_error(ctx);
    if (!config_path || !weights_path || !out)
        return sla2_fail(ctx, SLA2_ERR_NULL_ARGUMENT, "%s: must not be NULL",
                         !config_path ? "config_path" : !weights_path ? "weights_path" : "out");
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
        s = dit_weights_load(&m->config, st, &m->weights, err, sizeof err);
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
    if (info->size != sizeof *info)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "info.size: set it to sizeof(sla2_model_info)");
    const sla2_model_config *c = &model->config;
    memset(info, 0, sizeof *info);
    info->size = sizeof *info;
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
    return SLA2_OK;
}
