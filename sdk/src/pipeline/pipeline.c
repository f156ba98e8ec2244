/* sla2_pipeline: flow-matching sampling with classifier-free guidance over
 * the DiT, with per-layer attention settings that may change between steps. */
#include "model/config_names.h"
#include "pipeline/model.h"
#include "pipeline/sampler.h"
#include "pipeline/text_context.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sla2_pipeline {
    sla2_context *ctx;
    sla2_model *model;
    sla2_runtime_config runtime;
    pthread_mutex_t lock; /* guards layers, layer_dense and dense: set from other threads */
    sla2_layer_attention *layers;
    int *layer_dense; /* [num_layers]: 1 where the layer runs exact dense attention */
    int dense;
};

static sla2_status check_layer(sla2_context *ctx, int layer, const sla2_layer_attention *a)
{
    if (!(a->topk > 0.0f && a->topk <= 1.0f))
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "layer %d: topk %g is outside (0, 1]", layer, (double)a->topk);
    if ((unsigned)a->quant > SLA2_QUANT_INT8_FP8)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "layer %d: unknown quant mode %d", layer, (int)a->quant);
    if (a->block_q != 64 && a->block_q != 128)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "layer %d: block_q %d (expected 64 or 128)", layer, a->block_q);
    if (a->block_k != 64)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "layer %d: block_k %d (expected 64)", layer, a->block_k);
    return SLA2_OK;
}

sla2_status sla2_pipeline_create(sla2_context *ctx, sla2_model *model, const char *runtime_path, sla2_pipeline **out)
{
    if (!ctx)
        return SLA2_ERR_NULL_ARGUMENT;
    sla2_clear_error(ctx);
    if (!model || !out)
        return sla2_fail(ctx, SLA2_ERR_NULL_ARGUMENT, "%s: must not be NULL", !model ? "model" : "out");
    if (model->ctx->backend != ctx->backend)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "model: loaded on a %s context, the pipeline's is %s",
                         model->ctx->backend == SLA2_BACKEND_CUDA ? "CUDA" : "CPU",
                         ctx->backend == SLA2_BACKEND_CUDA ? "CUDA" : "CPU");
    sla2_pipeline *p = calloc(1, sizeof *p);
    int num_layers = model->config.num_layers;
    if (p) {
        p->layers = calloc((size_t)num_layers, sizeof *p->layers);
        p->layer_dense = calloc((size_t)num_layers, sizeof *p->layer_dense);
    }
    if (!p || !p->layers || !p->layer_dense) {
        if (p)
            free(p->layers), free(p->layer_dense);
        free(p);
        return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for the pipeline");
    }
    char err[sizeof ctx->last_error];
    sla2_status s = SLA2_OK;
    if (runtime_path) {
        s = sla2_runtime_config_load(runtime_path, &p->runtime, err, sizeof err);
        if (s == SLA2_OK)
            s = sla2_runtime_config_check(&p->runtime, &model->config, err, sizeof err);
        /* the storage is chosen when the model loads: unless the load options chose it, a different
           one here would be silently ignored */
        if (s == SLA2_OK && !model->storage_chosen && (int)p->runtime.weights != (int)model->weights.storage) {
            s = SLA2_ERR_INVALID_VALUE;
            snprintf(err, sizeof err, "%s: weights: %s, but the model's weights were loaded as %s (the storage "
                     "is chosen at load time: pass this file to sla2_model_load_with_options)", runtime_path,
                     sla2_config_weights_names[p->runtime.weights], sla2_config_weights_names[model->weights.storage]);
        }
        if (s != SLA2_OK)
            sla2_fail(ctx, s, "%s", err);
    } else {
        sla2_runtime_config_default(&p->runtime);
    }
    for (int i = 0; i < num_layers && s == SLA2_OK; i++) {
        sla2_layer_settings set = sla2_runtime_config_layer(&p->runtime, i);
        p->layers[i] = (sla2_layer_attention){(float)set.topk, set.quant, set.block_q, set.block_k};
        p->layer_dense[i] = sla2_runtime_config_layer_dense(&p->runtime, i);
        s = check_layer(ctx, i, &p->layers[i]);
    }
    if (s != SLA2_OK) {
        sla2_runtime_config_free(&p->runtime);
        free(p->layers);
        free(p->layer_dense);
        free(p);
        return s;
    }
    p->ctx = ctx;
    p->model = model;
    p->dense = p->runtime.attention == SLA2_ATTENTION_DENSE;
    pthread_mutex_init(&p->lock, NULL);
    *out = p;
    return SLA2_OK;
}

void sla2_pipeline_free(sla2_pipeline *pipeline)
{
    if (!pipeline)
        return;
    pthread_mutex_destroy(&pipeline->lock);
    sla2_runtime_config_free(&pipeline->runtime);
    free(pipeline->layers);
    free(pipeline->layer_dense);
    free(pipeline);
}

/* 1 when the model has this layer; else the context's message says so. */
static int layer_exists(sla2_pipeline *p, int layer)
{
    if (layer >= 0 && layer < p->model->config.num_layers)
        return 1;
    sla2_fail(p->ctx, SLA2_ERR_INVALID_VALUE, "layer %d: the model has layers 0..%d", layer,
              p->model->config.num_layers - 1);
    return 0;
}

sla2_status sla2_pipeline_get_layer(sla2_pipeline *p, int layer, sla2_layer_attention *out)
{
    if (!p || !out)
        return SLA2_ERR_NULL_ARGUMENT;
    if (!layer_exists(p, layer))
        return SLA2_ERR_INVALID_VALUE;
    pthread_mutex_lock(&p->lock);
    *out = p->layers[layer];
    pthread_mutex_unlock(&p->lock);
    return SLA2_OK;
}

sla2_status sla2_pipeline_set_layer(sla2_pipeline *p, int layer, const sla2_layer_attention *settings)
{
    if (!p || !settings)
        return SLA2_ERR_NULL_ARGUMENT;
    if (!layer_exists(p, layer))
        return SLA2_ERR_INVALID_VALUE;
    sla2_status s = check_layer(p->ctx, layer, settings);
    if (s != SLA2_OK)
        return s;
    pthread_mutex_lock(&p->lock);
    p->layers[layer] = *settings;
    pthread_mutex_unlock(&p->lock);
    return SLA2_OK;
}

sla2_status sla2_pipeline_set_layer_dense(sla2_pipeline *p, int layer, int dense)
{
    if (!p)
        return SLA2_ERR_NULL_ARGUMENT;
    if (!layer_exists(p, layer))
        return SLA2_ERR_INVALID_VALUE;
    pthread_mutex_lock(&p->lock);
    p->layer_dense[layer] = dense != 0;
    pthread_mutex_unlock(&p->lock);
    return SLA2_OK;
}

sla2_status sla2_pipeline_get_layer_dense(sla2_pipeline *p, int layer, int *dense)
{
    if (!p)
        return SLA2_ERR_NULL_ARGUMENT;
    if (!dense)
        return sla2_fail(p->ctx, SLA2_ERR_NULL_ARGUMENT, "dense: must not be NULL");
    if (!layer_exists(p, layer))
        return SLA2_ERR_INVALID_VALUE;
    pthread_mutex_lock(&p->lock);
    *dense = p->layer_dense[layer];
    pthread_mutex_unlock(&p->lock);
    return SLA2_OK;
}

void sla2_pipeline_set_dense(sla2_pipeline *p, int dense)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->dense = dense != 0;
    pthread_mutex_unlock(&p->lock);
}

void sla2_generate_options_default(sla2_generate_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->seed = -1;
    o->guidance = -1.0;
    o->sampler = -1;
}

/* Noise: splitmix64 and Box-Muller in double, so a seed gives the same
 * video on every machine. */
static void gaussian_noise(int64_t seed, float *x, size_t n)
{
    uint64_t state = (uint64_t)seed;
    for (size_t i = 0; i < n; i += 2) {
        double u[2];
        for (int j = 0; j < 2; j++) {
            uint64_t z = (state += 0x9E3779B97F4A7C15ull);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            z ^= z >> 31;
            u[j] = ((double)(z >> 11) + 0.5) / 9007199254740992.0;
        }
        double r = sqrt(-2.0 * log(u[0]));
        x[i] = (float)(r * cos(6.283185307179586 * u[1]));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(6.283185307179586 * u[1]));
    }
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Per-layer statistics of the conditional pass, filled by the DiT's hook. */
typedef struct step_stats {
    int64_t *kept, *q_blocks, *k_blocks;
    double *mean_alpha;
    uint8_t **masks;
    float **alpha_blocks;
    const sla2_generate_options *options;
    int step;
} step_stats;

static void on_layer_stats(void *user, int layer, const sla2_attention_stats *stats)
{
    step_stats *s = user;
    s->kept[layer] = stats->kept_per_q_block;
    s->q_blocks[layer] = stats->num_q_blocks;
    s->k_blocks[layer] = stats->num_k_blocks;
    s->mean_alpha[layer] = stats->mean_alpha;
}

static void on_layer_qkv(void *user, int layer, const sla2_tensor *q, const sla2_tensor *k, const sla2_tensor *v,
                         const sla2_attention_params *params)
{
    step_stats *s = user;
    s->options->on_attention(s->options->user, s->step, layer, q, k, v, params);
}

typedef struct generation {
    size_t n;
    float *x, *v_cond, *v_uncond, *x0, *ctx_cond, *ctx_uncond;
    float *x_in; /* the step's input, kept for the step callback (x is updated in place) */
    double *sigmas;
    dit_attention_settings *settings;
    step_stats stats;
    uint8_t *mask_storage;
    float *alpha_storage;
    dit_workspace *workspace;
    unipc_state unipc;
} generation;

static void generation_free(generation *g)
{
    free(g->x), free(g->v_cond), free(g->v_uncond), free(g->x0), free(g->ctx_cond), free(g->ctx_uncond);
    free(g->x_in);
    free(g->sigmas), free(g->settings), free(g->stats.kept), free(g->stats.q_blocks), free(g->stats.k_blocks);
    free(g->stats.mean_alpha), free(g->stats.masks), free(g->mask_storage);
    free(g->stats.alpha_blocks), free(g->alpha_storage);
    unipc_free(&g->unipc);
    dit_workspace_free(g->workspace);
}

static int generation_alloc(sla2_context *ctx, const sla2_model *m, int steps, int want_masks, generation *g)
{
    const sla2_model_config *c = &m->config;
    memset(g, 0, sizeof *g);
    g->n = (size_t)c->in_channels * (size_t)m->tokens * (size_t)(c->patch_size[0] * c->patch_size[1] * c->patch_size[2]);
    size_t text = (size_t)c->text_len * (size_t)c->text_dim, L = (size_t)c->num_layers;
    g->x = malloc(g->n * 4), g->v_cond = malloc(g->n * 4), g->v_uncond = malloc(g->n * 4), g->x0 = malloc(g->n * 4);
    g->ctx_cond = malloc(text * 4), g->ctx_uncond = calloc(text, 4);
    g->sigmas = malloc((size_t)(steps + 1) * sizeof(double));
    g->settings = calloc(L, sizeof *g->settings);
    g->stats.kept = calloc(L, 8), g->stats.q_blocks = calloc(L, 8), g->stats.k_blocks = calloc(L, 8);
    g->stats.mean_alpha = calloc(L, sizeof(double));
    g->stats.masks = calloc(L, sizeof(uint8_t *));
    g->stats.alpha_blocks = calloc(L, sizeof(float *));
    if (dit_workspace_create(ctx, dit_backend_for(ctx), c, &g->workspace) != SLA2_OK)
        g->workspace = NULL;
    int ok = g->x && g->v_cond && g->v_uncond && g->x0 && g->ctx_cond && g->ctx_uncond && g->sigmas && g->settings &&
             g->stats.kept && g->stats.q_blocks && g->stats.k_blocks && g->stats.mean_alpha && g->stats.masks &&
             g->stats.alpha_blocks && g->workspace;
    if (ok && want_masks) {
        /* room for the largest mask: block_q = block_k = 64 */
        size_t blocks = (size_t)((m->tokens + 63) / 64);
        size_t per_layer = (size_t)c->num_heads * blocks * blocks;
        g->mask_storage = calloc(L * per_layer, 1);
        g->alpha_storage = calloc(L * (size_t)c->num_heads * blocks, sizeof(float));
        g->x_in = malloc(g->n * 4);
        ok = g->mask_storage != NULL && g->alpha_storage != NULL && g->x_in != NULL;
        for (size_t i = 0; ok && i < L; i++) {
            g->stats.masks[i] = g->mask_storage + i * per_layer;
            g->stats.alpha_blocks[i] = g->alpha_storage + i * (size_t)c->num_heads * blocks;
        }
    }
    if (!ok)
        generation_free(g);
    return ok;
}

static sla2_status resolve_options(sla2_pipeline *p, const sla2_generate_options *o, sla2_generate_options *r)
{
    sla2_context *ctx = p->ctx;
    if (o->size != sizeof *o)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "options.size: call sla2_generate_options_default first");
    *r = *o;
    if (r->seed < 0)
        r->seed = p->runtime.seed;
    if (r->steps == 0)
        r->steps = p->runtime.steps;
    if (r->guidance < 0)
        r->guidance = p->runtime.guidance;
    if (r->shift <= 0)
        r->shift = p->runtime.shift;
    if (r->sampler < 0)
        r->sampler = p->runtime.sampler == SLA2_SAMPLER_EULER ? SLA2_SAMPLER_KIND_EULER : SLA2_SAMPLER_KIND_UNIPC;
    if (r->steps < 1 || r->steps > 1000)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "options.steps: %d is outside [1, 1000]", r->steps);
    if (!isfinite(r->guidance) || r->guidance > 100)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "options.guidance: %g is outside [0, 100]", r->guidance);
    if (!isfinite(r->shift) || r->shift > 100)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "options.shift: %g is outside (0, 100]", r->shift);
    if (r->sampler != SLA2_SAMPLER_KIND_UNIPC && r->sampler != SLA2_SAMPLER_KIND_EULER)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "options.sampler: unknown sampler %d", r->sampler);
    if (!r->prompt == !r->text_embedding_path)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE,
                         "options: give exactly one of prompt and text_embedding_path");
    return SLA2_OK;
}

/* Snapshot of the per-layer settings for one step. */
static void snapshot_settings(sla2_pipeline *p, generation *g)
{
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->model->config.num_layers; i++) {
        const sla2_layer_attention *a = &p->layers[i];
        g->settings[i].dense = p->dense || p->layer_dense[i];
        g->settings[i].feature_map = p->runtime.feature_map;
        g->settings[i].layer = (sla2_layer_settings){a->topk, a->quant, a->block_q, a->block_k};
    }
    pthread_mutex_unlock(&p->lock);
}

static sla2_status run_step(sla2_pipeline *p, const sla2_generate_options *o, generation *g, int step,
                            dit_attention_times *times)
{
    const sla2_model *m = p->model;
    dit_forward_args args = {.x = g->x, .timestep = 1000.0 * g->sigmas[step], .context = g->ctx_cond,
                             .layers = g->settings, .hook = on_layer_stats, .hook_user = &g->stats,
                             .observer = o->on_attention ? on_layer_qkv : NULL,
                             .block_masks = g->mask_storage ? g->stats.masks : NULL,
                             .alpha_blocks = g->alpha_storage ? g->stats.alpha_blocks : NULL,
                             .workspace = g->workspace, .cancel = o->cancel};
    g->stats.step = step + 1;
    sla2_status s = dit_forward(p->ctx, &m->config, &m->weights, &args, g->v_cond);
    *times = args.attention_times;
    if (s != SLA2_OK || o->guidance == 1.0)
        return s;
    dit_forward_args uncond = args;
    uncond.context = g->ctx_uncond;
    uncond.hook = NULL, uncond.observer = NULL, uncond.block_masks = NULL, uncond.alpha_blocks = NULL;
    s = dit_forward(p->ctx, &m->config, &m->weights, &uncond, g->v_uncond);
    *times = uncond.attention_times; /* both passes: uncond's began with cond's */
    float guidance = (float)o->guidance;
    for (size_t i = 0; i < g->n; i++)
        g->v_cond[i] = g->v_uncond[i] + guidance * (g->v_cond[i] - g->v_uncond[i]);
    return s;
}

sla2_status sla2_pipeline_generate(sla2_pipeline *p, const sla2_generate_options *options, float *video,
                                   size_t video_elems)
{
    if (!p)
        return SLA2_ERR_NULL_ARGUMENT;
    sla2_context *ctx = p->ctx;
    sla2_clear_error(ctx);
    if (!options || !video)
        return sla2_fail(ctx, SLA2_ERR_NULL_ARGUMENT, "%s: must not be NULL", !options ? "options" : "video");
    sla2_generate_options o;
    sla2_status s = resolve_options(p, options, &o);
    if (s != SLA2_OK)
        return s;
    const sla2_model *m = p->model;
    generation g;
    if (!generation_alloc(ctx, m, o.steps, o.on_step != NULL, &g))
        return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for generation");
    g.stats.options = &o;
    if (video_elems < g.n) {
        generation_free(&g);
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "video_elems: %zu is too small for the video's %zu values",
                         video_elems, g.n);
    }
    s = o.prompt ? text_context_from_prompt(ctx, m, o.prompt, g.ctx_cond)
                 : text_context_from_file(ctx, m, o.text_embedding_path, g.ctx_cond);
    flow_sigmas(o.steps, o.shift, g.sigmas);
    if (s == SLA2_OK && o.sampler == SLA2_SAMPLER_KIND_UNIPC && !unipc_init(&g.unipc, g.n, o.steps, g.sigmas))
        s = sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for the UniPC sampler");
    gaussian_noise(o.seed, g.x, g.n);

    for (int step = 0; step < o.steps && s == SLA2_OK; step++) {
        if (o.cancel && *o.cancel) {
            s = sla2_fail(ctx, SLA2_ERR_CANCELLED, "generation cancelled before step %d", step + 1);
            break;
        }
        double start = now_ms();
        dit_attention_times times = {0};
        snapshot_settings(p, &g);
        if (g.x_in)
            memcpy(g.x_in, g.x, g.n * sizeof *g.x);
        s = run_step(p, &o, &g, step, &times);
        if (s != SLA2_OK)
            break;
        double sigma = g.sigmas[step];
        for (size_t i = 0; i < g.n; i++)
            g.x0[i] = g.x[i] - (float)sigma * g.v_cond[i];
        if (o.sampler == SLA2_SAMPLER_KIND_UNIPC)
            unipc_step(&g.unipc, g.v_cond, g.x);
        else
            euler_step(g.v_cond, g.x, g.n, sigma, g.sigmas[step + 1]);
        if (o.on_step) {
            const sla2_model_config *c = &m->config;
            sla2_step_info info = {
                .step = step + 1, .num_steps = o.steps, .timestep = 1000.0 * sigma, .sigma = sigma,
                .video = step + 1 == o.steps ? g.x : g.x0, .channels = c->in_channels,
                .frames = m->grid[0] * c->patch_size[0], .height = m->grid[1] * c->patch_size[1],
                .width = m->grid[2] * c->patch_size[2], .step_ms = now_ms() - start, .attention_ms = times.total_ms,
                .num_layers = c->num_layers, .num_heads = c->num_heads, .num_q_blocks = g.stats.q_blocks[0],
                .num_k_blocks = g.stats.k_blocks[0], .kept_per_q_block = g.stats.kept,
                .block_masks = (const uint8_t *const *)g.stats.masks, .mask_q_blocks = g.stats.q_blocks,
                .mask_k_blocks = g.stats.k_blocks, .mean_alpha = g.stats.mean_alpha,
                .alpha_blocks = (const float *const *)g.stats.alpha_blocks, .dense = g.settings[0].dense,
                .x_t = g.x_in,
                .router_ms = times.phase_ms[SLA2_PHASE_ROUTER], .quantise_ms = times.phase_ms[SLA2_PHASE_QUANTISE],
                .sparse_ms = times.phase_ms[SLA2_PHASE_SPARSE], .linear_ms = times.phase_ms[SLA2_PHASE_LINEAR],
                .mix_ms = times.phase_ms[SLA2_PHASE_MIX]};
            if (o.on_step(o.user, &info))
                s = sla2_fail(ctx, SLA2_ERR_CANCELLED, "generation cancelled by the step callback at step %d",
                              step + 1);
        }
    }
    if (s == SLA2_OK)
        memcpy(video, g.x, g.n * sizeof *video);
    generation_free(&g);
    return s;
}

sla2_status sla2_pipeline_predict(sla2_pipeline *p, const sla2_generate_options *options, int step,
                                  const float *x_t, float *prediction, size_t elems)
{
    if (!p)
        return SLA2_ERR_NULL_ARGUMENT;
    sla2_context *ctx = p->ctx;
    sla2_clear_error(ctx);
    if (!options || !x_t || !prediction)
        return sla2_fail(ctx, SLA2_ERR_NULL_ARGUMENT, "%s: must not be NULL",
                         !options ? "options" : !x_t ? "x_t" : "prediction");
    sla2_generate_options o;
    sla2_status s = resolve_options(p, options, &o);
    if (s != SLA2_OK)
        return s;
    if (step < 1 || step > o.steps)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "step: %d is outside 1..%d (the schedule's steps)", step,
                         o.steps);
    const sla2_model *m = p->model;
    generation g;
    if (!generation_alloc(ctx, m, o.steps, 0, &g))
        return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for the prediction");
    g.stats.options = &o;
    if (elems < g.n) {
        generation_free(&g);
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "elems: %zu is too small for the video's %zu values", elems,
                         g.n);
    }
    s = o.prompt ? text_context_from_prompt(ctx, m, o.prompt, g.ctx_cond)
                 : text_context_from_file(ctx, m, o.text_embedding_path, g.ctx_cond);
    flow_sigmas(o.steps, o.shift, g.sigmas);
    memcpy(g.x, x_t, g.n * sizeof *g.x);
    if (s == SLA2_OK) {
        dit_attention_times times = {0};
        snapshot_settings(p, &g);
        s = run_step(p, &o, &g, step - 1, &times);
    }
    if (s == SLA2_OK)
        memcpy(prediction, g.v_cond, g.n * sizeof *prediction);
    generation_free(&g);
    return s;
}
