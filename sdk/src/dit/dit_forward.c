/* One forward pass of the Wan2.1 DiT (wan/modules/model.py's
 * WanModel.forward for one sample), through the backend's operators: the
 * same code runs on the CPU and the GPU. Patchify, unpatchify and the
 * sinusoidal time embedding run on the host; everything else where the
 * weights live. */
#include "dit/dit.h"
#include "dit/dit_backend.h"
#include "dit/dit_ops.h"

#include <stdlib.h>
#include <string.h>

/* Activations in the backend's memory, plus host staging. */
struct dit_workspace {
    const dit_backend *backend;
    sla2_context *ctx;
    float *x, *h, *q, *k, *v, *attn, *y, *ffn; /* [L][...] */
    float *ctx_in, *ctx_tmp, *ctx_emb, *ck, *cv; /* [text_len][...] */
    float *patches;                             /* [L][patch_in or patch_out] */
    float *t_freq, *e, *e_silu, *e0, *mod;      /* time embedding, modulation */
    float *host_patches, *host_t_freq;          /* host staging */
};

#define DEVICE_BUFFERS 19

static float **device_buffer(dit_workspace *ws, int i)
{
    float **fields[DEVICE_BUFFERS] = {&ws->x, &ws->h, &ws->q, &ws->k, &ws->v, &ws->attn, &ws->y, &ws->ffn,
                                      &ws->ctx_in, &ws->ctx_tmp, &ws->ctx_emb, &ws->ck, &ws->cv, &ws->patches,
                                      &ws->t_freq, &ws->e, &ws->e_silu, &ws->e0, &ws->mod};
    return fields[i];
}

void dit_workspace_free(dit_workspace *ws)
{
    if (!ws)
        return;
    for (int i = 0; i < DEVICE_BUFFERS; i++)
        if (*device_buffer(ws, i))
            ws->backend->release(ws->ctx, *device_buffer(ws, i));
    free(ws->host_patches);
    free(ws->host_t_freq);
    free(ws);
}

static int64_t patch_elems_max(const sla2_model_config *c)
{
    int64_t patch = (int64_t)c->patch_size[0] * c->patch_size[1] * c->patch_size[2];
    return patch * (c->in_channels > c->out_channels ? c->in_channels : c->out_channels);
}

sla2_status dit_workspace_create(sla2_context *ctx, const dit_backend *backend, const sla2_model_config *c,
                                 dit_workspace **out)
{
    int grid[3];
    size_t L = (size_t)sla2_model_config_tokens(c, grid), dim = (size_t)c->dim, text = (size_t)c->text_len;
    size_t patch = (size_t)patch_elems_max(c);
    /* h also holds a norm's output as e4m3 rows (dit_backend.h) */
    size_t h_elems = (dit_e4m3_rows_bytes((int64_t)L, (int64_t)dim) + sizeof(float) - 1) / sizeof(float);
    h_elems = h_elems > L * dim ? h_elems : L * dim;
    const size_t elems[DEVICE_BUFFERS] = {
        L * dim, h_elems, L * dim, L * dim, L * dim, L * dim, L * dim, L * (size_t)c->ffn_dim,
        text * (size_t)c->text_dim, text * dim, text * dim, text * dim, text * dim,
        L * patch,
        (size_t)c->freq_dim, dim, dim, 6 * dim, 6 * dim};
    dit_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for the DiT workspace");
    ws->backend = backend;
    ws->ctx = ctx;
    sla2_status s = SLA2_OK;
    for (int i = 0; i < DEVICE_BUFFERS && s == SLA2_OK; i++)
        s = backend->alloc(ctx, elems[i] * sizeof(float), (void **)device_buffer(ws, i));
    ws->host_patches = malloc(L * patch * sizeof(float));
    ws->host_t_freq = malloc((size_t)c->freq_dim * sizeof(float));
    if (s == SLA2_OK && (!ws->host_patches || !ws->host_t_freq))
        s = sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for the DiT's staging buffers");
    if (s != SLA2_OK) {
        dit_workspace_free(ws);
        return s;
    }
    *out = ws;
    return SLA2_OK;
}

/* token (f, h, w) <- patch vector (c, p, q, r), Conv3d's weight order */
static void patchify(const sla2_model_config *c, const int grid[3], const float *video, float *patches)
{
    int pt = c->patch_size[0], ph = c->patch_size[1], pw = c->patch_size[2];
    int64_t F = (int64_t)grid[0] * pt, H = (int64_t)grid[1] * ph, W = (int64_t)grid[2] * pw;
    int64_t per_patch = (int64_t)c->in_channels * pt * ph * pw, token = 0;
    for (int f = 0; f < grid[0]; f++)
        for (int h = 0; h < grid[1]; h++)
            for (int w = 0; w < grid[2]; w++, token++) {
                float *out = patches + token * per_patch;
                for (int ch = 0; ch < c->in_channels; ch++)
                    for (int p = 0; p < pt; p++)
                        for (int q = 0; q < ph; q++)
                            for (int r = 0; r < pw; r++)
                                *out++ = video[((ch * F + f * pt + p) * H + h * ph + q) * W + w * pw + r];
            }
}

/* Wan's unpatchify: each token's row is (p, q, r, c); einsum fhwpqrc->cfphqwr */
static void unpatchify(const sla2_model_config *c, const int grid[3], const float *patches, float *video)
{
    int pt = c->patch_size[0], ph = c->patch_size[1], pw = c->patch_size[2], C = c->out_channels;
    int64_t F = (int64_t)grid[0] * pt, H = (int64_t)grid[1] * ph, W = (int64_t)grid[2] * pw, token = 0;
    for (int f = 0; f < grid[0]; f++)
        for (int h = 0; h < grid[1]; h++)
            for (int w = 0; w < grid[2]; w++, token++) {
                const float *in = patches + token * (int64_t)pt * ph * pw * C;
                for (int p = 0; p < pt; p++)
                    for (int q = 0; q < ph; q++)
                        for (int r = 0; r < pw; r++)
                            for (int ch = 0; ch < C; ch++)
                                video[((ch * F + f * pt + p) * H + h * ph + q) * W + w * pw + r] = *in++;
            }
}

/* Stops the pass at the first failing operator. */
#define TRY(call)                      \
    do {                               \
        sla2_status status_ = (call);  \
        if (status_ != SLA2_OK)        \
            return status_;            \
    } while (0)

static sla2_status self_attention(sla2_context *ctx, const sla2_model_config *c, const dit_block_weights *b,
                                  dit_forward_args *args, int layer, int64_t L, sla2_dtype act, dit_workspace *ws)
{
    int64_t H = c->num_heads, D = c->dim / c->num_heads;
    const dit_attention_settings *set = &args->layers[layer];
    sla2_tensor q = sla2_tensor_blhd(ws->q, act, 1, H, L, D);
    sla2_tensor k = sla2_tensor_blhd(ws->k, act, 1, H, L, D);
    sla2_tensor v = sla2_tensor_blhd(ws->v, act, 1, H, L, D);
    sla2_tensor o = sla2_tensor_blhd(ws->attn, act, 1, H, L, D);
    sla2_attention_config cfg;
    sla2_attention_config_default(&cfg);
    cfg.feature_map = set->feature_map;
    /* The layer's learned parameters; a dense pass runs without them. */
    sla2_tensor router_q, router_k, alpha, alpha_w, alpha_b, proj_w, proj_b;
    sla2_attention_params params = {0};
    const int64_t dd[3] = {H, D, D};
    if (b->router_q) {
        router_q = sla2_tensor_contiguous(b->router_q, SLA2_DTYPE_F32, b->router_per_head ? 3 : 2,
                                          b->router_per_head ? dd : dd + 1);
        router_k = sla2_tensor_contiguous(b->router_k, SLA2_DTYPE_F32, b->router_per_head ? 3 : 2,
                                          b->router_per_head ? dd : dd + 1);
        params.router_q = &router_q, params.router_k = &router_k;
    }
    if (b->alpha) {
        alpha = sla2_tensor_contiguous(b->alpha, SLA2_DTYPE_F32, 1, &H);
        params.alpha = &alpha;
    }
    if (b->alpha_w) {
        alpha_w = sla2_tensor_contiguous(b->alpha_w, SLA2_DTYPE_F32, 2, (int64_t[]){H, D});
        alpha_b = sla2_tensor_contiguous(b->alpha_b, SLA2_DTYPE_F32, 1, &H);
        params.alpha_w = &alpha_w, params.alpha_b = &alpha_b;
    }
    if (b->proj_l_weight) {
        proj_w = sla2_tensor_contiguous(b->proj_l_weight, SLA2_DTYPE_F32, 2, (int64_t[]){D, D});
        proj_b = sla2_tensor_contiguous(b->proj_l_bias, SLA2_DTYPE_F32, 1, &D);
        params.proj_l_weight = &proj_w, params.proj_l_bias = &proj_b;
    }
    if (set->dense) {
        cfg.topk = 1.0f;
        cfg.quant = SLA2_QUANT_NONE;
        cfg.block_q = 128;
    } else {
        cfg.topk = (float)set->layer.topk;
        cfg.quant = set->layer.quant;
        cfg.block_q = set->layer.block_q;
        cfg.block_k = set->layer.block_k;
    }
    sla2_attention_stats stats;
    sla2_attention_stats_default(&stats);
    stats.time_phases = 1; /* a few clock reads (CPU) or events (CUDA) per call */
    int64_t num_q_blocks = (L + cfg.block_q - 1) / cfg.block_q, num_k_blocks = (L + cfg.block_k - 1) / cfg.block_k;
    if (args->block_masks && args->block_masks[layer]) {
        stats.block_mask = args->block_masks[layer];
        stats.block_mask_elems = (size_t)(H * num_q_blocks * num_k_blocks);
    }
    if (args->alpha_blocks && args->alpha_blocks[layer]) {
        stats.alpha_blocks = args->alpha_blocks[layer];
        stats.alpha_blocks_elems = (size_t)(H * num_q_blocks);
    }
    if (args->observer)
        args->observer(args->hook_user, layer, &q, &k, &v, &params);
    sla2_status s = sla2_attention_forward(ctx, &cfg, set->dense ? NULL : &params, &q, &k, &v, &o, &stats);
    if (s != SLA2_OK)
        return s;
    dit_attention_times *t = &args->attention_times;
    t->total_ms += stats.total_ms;
    t->phase_ms[SLA2_PHASE_ROUTER] += stats.router_ms;
    t->phase_ms[SLA2_PHASE_QUANTISE] += stats.quantise_ms;
    t->phase_ms[SLA2_PHASE_SPARSE] += stats.sparse_ms;
    t->phase_ms[SLA2_PHASE_LINEAR] += stats.linear_ms;
    t->phase_ms[SLA2_PHASE_MIX] += stats.mix_ms;
    if (args->hook)
        args->hook(args->hook_user, layer, &stats);
    return SLA2_OK;
}

/* act: the activations between the operators; norm_act: what the norms
 * hand to the linears (act, or DIT_ACT_E4M3_ROWS for FP8_GEMM linears). */
static sla2_status block_forward(sla2_context *ctx, const sla2_model_config *c, const dit_block_weights *b,
                                 dit_forward_args *args, int layer, int64_t L, const int grid[3], sla2_dtype act,
                                 sla2_dtype norm_act, dit_workspace *ws)
{
    const dit_backend *be = ws->backend;
    int64_t dim = c->dim, H = c->num_heads, D = dim / H;
    float *mod = ws->mod; /* shift, scale, gate (attention); shift, scale, gate (FFN) */
    TRY(be->add(ctx, b->modulation, ws->e0, 6 * dim, mod, 6 * dim));

    TRY(be->norm_modulate(ctx, ws->x, L, dim, c->eps, mod, mod + dim, ws->h, norm_act));
    const dit_linear *qkv[3] = {&b->self_attn.q, &b->self_attn.k, &b->self_attn.v};
    TRY(be->linears(ctx, ws->h, norm_act, L, 3, qkv, (void *const[]){ws->q, ws->k, ws->v}));
    TRY(be->norm_rope(ctx, ws->q, act, grid, H, D, c->eps, b->self_attn.norm_q));
    TRY(be->norm_rope(ctx, ws->k, act, grid, H, D, c->eps, b->self_attn.norm_k));
    TRY(self_attention(ctx, c, b, args, layer, L, act, ws));
    TRY(be->linear_residual(ctx, ws->attn, act, L, &b->self_attn.o, mod + 2 * dim, ws->y, ws->x));

    /* cross-attention over all text_len positions (the padding included);
     * its queries in act from norm3 on (without norm3 the q linear reads
     * the float32 residual stream itself); the text's keys and values,
     * text_len rows, stay float32 */
    const sla2_dtype cross_act = b->norm3_weight ? act : SLA2_DTYPE_F32;
    if (b->norm3_weight)
        TRY(be->layer_norm(ctx, ws->x, L, dim, c->eps, b->norm3_weight, b->norm3_bias, ws->h, norm_act));
    const dit_linear *cq = &b->cross_attn.q;
    TRY(be->linears(ctx, b->norm3_weight ? (const void *)ws->h : ws->x, b->norm3_weight ? norm_act : cross_act, L, 1,
                    &cq, (void *const[]){ws->q}));
    const dit_linear *kv[2] = {&b->cross_attn.k, &b->cross_attn.v};
    TRY(be->linears(ctx, ws->ctx_emb, SLA2_DTYPE_F32, c->text_len, 2, kv, (void *const[]){ws->ck, ws->cv}));
    if (b->cross_attn.norm_q) {
        TRY(be->rms_norm(ctx, ws->q, cross_act, L, dim, c->eps, b->cross_attn.norm_q));
        TRY(be->rms_norm(ctx, ws->ck, SLA2_DTYPE_F32, c->text_len, dim, c->eps, b->cross_attn.norm_k));
    }
    TRY(be->dense_attention(ctx, ws->q, L, ws->ck, ws->cv, c->text_len, H, D, ws->attn, cross_act));
    TRY(be->linear_residual(ctx, ws->attn, cross_act, L, &b->cross_attn.o, NULL, ws->y, ws->x));

    TRY(be->norm_modulate(ctx, ws->x, L, dim, c->eps, mod + 3 * dim, mod + 4 * dim, ws->h, norm_act));
    TRY(be->ffn_residual(ctx, ws->h, norm_act, L, &b->ffn0, &b->ffn2, mod + 5 * dim, ws->ffn, ws->y, ws->x));
    return SLA2_OK;
}

static sla2_status embed_time_and_text(sla2_context *ctx, const sla2_model_config *c, const dit_weights *w,
                                       const dit_forward_args *args, dit_workspace *ws)
{
    const dit_backend *be = ws->backend;
    op_timestep_embedding(args->timestep, c->freq_dim, ws->host_t_freq); /* double precision, host */
    TRY(be->upload(ctx, ws->t_freq, ws->host_t_freq, (size_t)c->freq_dim * sizeof(float)));
    TRY(be->linear(ctx, ws->t_freq, 1, &w->time0, ws->e_silu));
    TRY(be->silu(ctx, ws->e_silu, c->dim, ws->e_silu));
    TRY(be->linear(ctx, ws->e_silu, 1, &w->time2, ws->e));
    TRY(be->silu(ctx, ws->e, c->dim, ws->e_silu));
    TRY(be->linear(ctx, ws->e_silu, 1, &w->time_proj, ws->e0));

    TRY(be->upload(ctx, ws->ctx_in, args->context, (size_t)c->text_len * (size_t)c->text_dim * sizeof(float)));
    TRY(be->linear(ctx, ws->ctx_in, c->text_len, &w->text0, ws->ctx_tmp));
    TRY(be->gelu_tanh(ctx, ws->ctx_tmp, (int64_t)c->text_len * c->dim));
    TRY(be->linear(ctx, ws->ctx_tmp, c->text_len, &w->text2, ws->ctx_emb));
    return SLA2_OK;
}

static sla2_status forward(sla2_context *ctx, const sla2_model_config *c, const dit_weights *w,
                           dit_forward_args *args, dit_workspace *ws, float *velocity)
{
    const dit_backend *be = ws->backend;
    int grid[3];
    int64_t L = sla2_model_config_tokens(c, grid);
    int64_t patch = (int64_t)c->patch_size[0] * c->patch_size[1] * c->patch_size[2];
    TRY(embed_time_and_text(ctx, c, w, args, ws));
    patchify(c, grid, args->x, ws->host_patches);
    TRY(be->upload(ctx, ws->patches, ws->host_patches, (size_t)(L * patch * c->in_channels) * sizeof(float)));
    dit_linear patch_embedding = {.weight = w->patch_weight, .bias = w->patch_bias,
                                 .in = (int)(patch * c->in_channels), .out = c->dim};
    TRY(be->linear(ctx, ws->patches, L, &patch_embedding, ws->x));
    /* The blocks' activations in bf16 where the backend has it and the
     * linears run bf16 GEMMs anyway; float32 for an observer (sla2-calib),
     * which the public API promises float32 views of q, k and v. */
    const sla2_dtype act = be->bf16_activations && w->storage != DIT_WEIGHTS_F32 && !args->observer
                               ? SLA2_DTYPE_BF16
                               : SLA2_DTYPE_F32;
    /* FP8_GEMM linears quantise their input per row anyway: where the
     * backend can, the norms before them write it so (one pass fewer each) */
    const sla2_dtype norm_act =
        act == SLA2_DTYPE_BF16 && be->e4m3_rows && w->storage == DIT_WEIGHTS_FP8_GEMM ? DIT_ACT_E4M3_ROWS : act;
    for (int layer = 0; layer < c->num_layers; layer++) {
        if (args->cancel && *args->cancel)
            return sla2_fail(ctx, SLA2_ERR_CANCELLED, "generation cancelled (before block %d)", layer);
        TRY(block_forward(ctx, c, &w->blocks[layer], args, layer, L, grid, act, norm_act, ws));
    }
    float *head_mod = ws->mod; /* shift, scale: head.modulation [2][dim] + e */
    TRY(be->add(ctx, w->head_modulation, ws->e, c->dim, head_mod, 2 * (int64_t)c->dim));
    TRY(be->norm_modulate(ctx, ws->x, L, c->dim, c->eps, head_mod, head_mod + c->dim, ws->h, SLA2_DTYPE_F32));
    TRY(be->linear(ctx, ws->h, L, &w->head, ws->patches));
    TRY(be->download(ctx, ws->host_patches, ws->patches, (size_t)(L * patch * c->out_channels) * sizeof(float)));
    unpatchify(c, grid, ws->host_patches, velocity);
    return SLA2_OK;
}

sla2_status dit_forward(sla2_context *ctx, const sla2_model_config *c, const dit_weights *w,
                        dit_forward_args *args, float *velocity)
{
    const dit_backend *be = dit_backend_for(ctx);
    if (!be)
        return SLA2_ERR_UNSUPPORTED;
    if ((w->backend ? w->backend : dit_backend_cpu()) != be)
        return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "the model's weights live on another backend than ctx's");
    dit_workspace *ws = args->workspace;
    if (!ws) {
        sla2_status s = dit_workspace_create(ctx, be, c, &ws);
        if (s != SLA2_OK)
            return s;
    }
    sla2_status s = forward(ctx, c, w, args, ws, velocity);
    if (!args->workspace)
        dit_workspace_free(ws);
    return s;
}
