#include "pipeline/text_context.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Words are separated by spaces and matched without regard to case. */
sla2_status text_context_from_prompt(sla2_context *ctx, const sla2_model *model, const char *prompt, float *out)
{
    const sla2_model_config *c = &model->config;
    if (c->vocabulary_size == 0 || !model->weights.vocab_embedding)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE,
                         "prompt: model '%s' has no built-in vocabulary; give a text embedding file", c->name);
    memset(out, 0, (size_t)c->text_len * (size_t)c->text_dim * sizeof *out);
    int position = 0;
    const char *p = prompt;
    while (*p) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        size_t len = (size_t)(p - start);
        size_t id = c->vocabulary_size;
        for (size_t i = 0; i < c->vocabulary_size; i++)
            if (strlen(c->vocabulary[i]) == len && strncasecmp(c->vocabulary[i], start, len) == 0)
                id = i;
        if (id == c->vocabulary_size)
            return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "prompt: the word '%.*s' is not in model '%s''s vocabulary",
                             (int)(len > 64 ? 64 : len), start, c->name);
        if (position == c->text_len)
            return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "prompt: more than text_len = %d words", c->text_len);
        memcpy(out + (size_t)position * (size_t)c->text_dim, model->weights.vocab_embedding + id * (size_t)c->text_dim,
               (size_t)c->text_dim * sizeof *out);
        position++;
    }
    if (position == 0)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "prompt: empty");
    return SLA2_OK;
}

sla2_status text_context_from_file(sla2_context *ctx, const sla2_model *model, const char *path, float *out)
{
    const sla2_model_config *c = &model->config;
    char err[sizeof ctx->last_error - 64];
    sla2_safetensors *st = NULL;
    sla2_status s = sla2_safetensors_open(path, &st, err, sizeof err);
    if (s != SLA2_OK)
        return sla2_fail(ctx, s, "%s", err);
    const sla2_st_tensor *t = sla2_safetensors_find(st, "context");
    if (!t || t->ndim != 2 || t->shape[1] != c->text_dim || t->shape[0] < 1 || t->shape[0] > c->text_len) {
        sla2_safetensors_close(st);
        return sla2_fail(ctx, SLA2_ERR_FORMAT,
                         "%s: expected a tensor 'context' of shape [L, %d] with 1 <= L <= text_len = %d", path,
                         c->text_dim, c->text_len);
    }
    memset(out, 0, (size_t)c->text_len * (size_t)c->text_dim * sizeof *out);
    s = sla2_safetensors_read_f32(st, t, out, (size_t)c->text_len * (size_t)c->text_dim, err, sizeof err);
    sla2_safetensors_close(st);
    return s == SLA2_OK ? SLA2_OK : sla2_fail(ctx, s, "%s: %s", path, err);
}
