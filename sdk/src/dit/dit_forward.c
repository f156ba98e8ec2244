/* One forward pass of the Wan2.1 DiT on the CPU (wan/modules/model.py's
 * WanModel.forward for one sample). */
#include "dit/dit.h"
#include "dit/dit_ops.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dit_workspace {
    float *x, *h, *q, *k, *v, *attn, *y, *ffn;        /* [L][...] */
    float *ctx, *ctx_tmp, *ck, *cv;                    /* [text_len][dim] */
    float *patches;                                    /* [L][patch_in or patch_out] */
    float *t_freq, *e, *e_silu, *e0, *mod;             /* time embedding */
};
typedef struct dit_workspace dit_buffers;

static void buffers_free(dit_buffers *b)
{
    float **all = (float **)b;
    for (size_t i = 0; i < sizeof *b / sizeof(float *); i++)
        free(all[i]);
}

static int buffers_alloc(const sla2_model_config *c, dit_buffers *b)
{
    int grid[3];
    int64_t L = sla2_model_config_tokens(c, grid);
    int64_t patch = (int64_t)c->patch_size[0] * c->patch_size[1] * c->patch_size[2];
    int64_t patch_elems = patch * (c->in_channels > c->out_channels ? c->in_channels : c->out_channels);
    memset(b, 0, sizeof *b);
    size_t dim = (size_t)c->dim, rows = (size_t)L, text = (size_t)c->text_len;
    b->x = malloc(rows * dim * 4), b->h = malloc(rows * dim * 4), b->q = malloc(rows * dim * 4);
    b->k = malloc(rows * dim * 4), b->v = malloc(rows * dim * 4), b->attn = malloc(rows * dim * 4);
    b->y = malloc(rows * dim * 4), b->ffn = malloc(rows * (size_t)c->ffn_dim * 4);
    b->ctx = malloc(text * dim * 4), b->ctx_tmp = malloc(text * dim * 4);
    b->ck = malloc(text * dim * 4), b->cv = malloc(text * dim * 4);
    b->patches = malloc(rows * (size_t)patch_elems * 4);
    b->t_freq = malloc((size_t)c->freq_dim * 4), b->e = malloc(dim * 4), b->e_silu = malloc(dim * 4);
    b->e0 = malloc(6 * dim * 4), b->mod = malloc(6 * dim * 4);
    float **all = (float **)b;
    for (size_t i = 0; i < sizeof *b / sizeof(float *); i++)
        if (!all[i]) {
            buffers_free(b);
            return 0;
        }
    return 1;
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

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static sla2_status self_attention(sla2_context *ctx, const sla2_model_config *c, const dit_block_weights *b,
                                  dit_forward_args *args, int layer, int64_t L, dit_buffers *buf)
{
    int64_t H = c->num_heads, D = c->dim / c->num_heads;
    const dit_attention_settings *set = &args->layers[layer];
    sla2_tensor q = sla2_tensor_blhd(buf->q, SLA2_DTYPE_F32, 1, H, L, D);
    sla2_tensor k = sla2_tensor_blhd(buf->k, SLA2_DTYPE_F32, 1, H, L, D);
    sla2_tensor v = sla2_tensor_blhd(buf->v, SLA2_DTYPE_F32, 1, H, L, D);
    sla2_tensor o = sla2_tensor_blhd(buf->attn, SLA2_DTYPE_F32, 1, H, L, D);
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
    if (args->block_masks && args->block_masks[layer]) {
        stats.block_mask = args->block_masks[layer];
        stats.block_mask_elems = (size_t)(H * ((L + cfg.block_q - 1) / cfg.block_q) * ((L + cfg.block_k - 1) / cfg.block_k));
    }
    if (args->alpha_blocks && args->alpha_blocks[layer]) {
        stats.alpha_blocks = args->alpha_blocks[layer];
        stats.alpha_blocks_elems = (size_t)(H * ((L + cfg.block_q - 1) / cfg.block_q));
    }
    if (args->observer)
        args->observer(args->hook_user, layer, &q, &k, &v, &params);
    double start = now_ms();
    sla2_status s = sla2_attention_forward(ctx, &cfg, set->dense ? NULL : &params, &q, &k, &v, &o, &stats);
    args->attention_ms += now_ms() - start;
    if (s != SLA2_OK)
        return s;
    if (args->hook)
        args->hook(args->hook_user, layer, &stats);
    return SLA2_OK;
}

static sla2_status block_forward(sla2_context *ctx, const sla2_model_config *c, const dit_block_weights *b,
                                 dit_forward_args *args, int layer, int64_t L, const int grid[3],
                                 dit_buffers *buf)
{
    int64_t dim = c->dim, H = c->num_heads, D = dim / H;
    float *mod = buf->mod; /* shift, scale, gate (attention); shift, scale, gate (FFN) */
    for (int64_t i = 0; i < 6 * dim; i++)
        mod[i] = b->modulation[i] + buf->e0[i];

    op_layer_norm(buf->x, L, dim, c->eps, NULL, NULL, buf->h);
    op_modulate(buf->h, L, dim, mod, mod + dim);
    op_linear(buf->h, L, &b->self_attn.q, buf->q);
    op_linear(buf->h, L, &b->self_attn.k, buf->k);
    op_linear(buf->h, L, &b->self_attn.v, buf->v);
    if (b->self_attn.norm_q) {
        op_rms_norm(buf->q, L, dim, c->eps, b->self_attn.norm_q);
        op_rms_norm(buf->k, L, dim, c->eps, b->self_attn.norm_k);
    }
    op_rope_3d(buf->q, grid, H, D);
    op_rope_3d(buf->k, grid, H, D);
    sla2_status s = self_attention(ctx, c, b, args, layer, L, buf);
    if (s != SLA2_OK)
        return s;
    op_linear(buf->attn, L, &b->self_attn.o, buf->y);
    op_gated_residual(buf->x, buf->y, L, dim, mod + 2 * dim);

    /* cross-attention over all text_len positions (the padding included) */
    if (b->norm3_weight)
        op_layer_norm(buf->x, L, dim, c->eps, b->norm3_weight, b->norm3_bias, buf->h);
    else
        memcpy(buf->h, buf->x, (size_t)(L * dim) * 4);
    op_linear(buf->h, L, &b->cross_attn.q, buf->q);
    op_linear(buf->ctx, c->text_len, &b->cross_attn.k, buf->ck);
    op_linear(buf->ctx, c->text_len, &b->cross_attn.v, buf->cv);
    if (b->cross_attn.norm_q) {
        op_rms_norm(buf->q, L, dim, c->eps, b->cross_attn.norm_q);
        op_rms_norm(buf->ck, c->text_len, dim, c->eps, b->cross_attn.norm_k);
    }
    if (!op_dense_attention(buf->q, L, buf->ck, buf->cv, c->text_len, H, D, buf->attn))
        return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "layer %d: out of memory for cross-attention scores", layer);
    op_linear(buf->attn, L, &b->cross_attn.o, buf->y);
    for (int64_t i = 0; i < L * dim; i++)
        buf->x[i] += buf->y[i];

    op_layer_norm(buf->x, L, dim, c->eps, NULL, NULL, buf->h);
    op_modulate(buf->h, L, dim, mod + 3 * dim, mod + 4 * dim);
    op_linear(buf->h, L, &b->ffn0, buf->ffn);
    op_gelu_tanh(buf->ffn, L * c->ffn_dim);
    op_linear(buf->ffn, L, &b->ffn2, buf->y);
    op_gated_residual(buf->x, buf->y, L, dim, mod + 5 * dim);
    return SLA2_OK;
}

static void embed_time_and_text(const sla2_model_config *c, const dit_weights *w, const dit_forward_args *args,
                                dit_buffers *buf)
{
    op_timestep_embedding(args->timestep, c->freq_dim, buf->t_freq);
    op_linear(buf->t_freq, 1, &w->time0, buf->e_silu);
    op_silu(buf->e_silu, c->dim, buf->e_silu);
    op_linear(buf->e_silu, 1, &w->time2, buf->e);
    op_silu(buf->e, c->dim, buf->e_silu);
    op_linear(buf->e_silu, 1, &w->time_proj, buf->e0);

    op_linear(args->context, c->text_len, &w->text0, buf->ctx_tmp);
    op_gelu_tanh(buf->ctx_tmp, (int64_t)c->text_len * c->dim);
    op_linear(buf->ctx_tmp, c->text_len, &w->text2, buf->ctx);
}

sla2_status dit_forward(sla2_context *ctx, const sla2_model_config *c, const dit_weights *w,
                        dit_forward_args *args, float *velocity)
{
    int grid[3];
    int64_t L = sla2_model_config_tokens(c, grid);
    int64_t patch = (int64_t)c->patch_size[0] * c->patch_size[1] * c->patch_size[2];
    dit_workspace *own = args->workspace ? NULL : dit_workspace_create(c);
    if (!args->workspace && !own)
        return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for the DiT's activations (%lld tokens)",
                         (long long)L);
    dit_buffers buf = args->workspace ? *args->workspace : *own;
    embed_time_and_text(c, w, args, &buf);
    patchify(c, grid, args->x, buf.patches);
    dit_linear patch_embedding = {w->patch_weight, w->patch_bias, (int)(patch * c->in_channels), c->dim};
    op_linear(buf.patches, L, &patch_embedding, buf.x);

    sla2_status s = SLA2_OK;
    for (int layer = 0; layer < c->num_layers && s == SLA2_OK; layer++)
        s = block_forward(ctx, c, &w->blocks[layer], args, layer, L, grid, &buf);
    if (s == SLA2_OK) {
        float *head_mod = buf.mod; /* shift, scale */
        for (int64_t i = 0; i < 2 * c->dim; i++)
            head_mod[i] = w->head_modulation[i] + buf.e[i % c->dim];
        op_layer_norm(buf.x, L, c->dim, c->eps, NULL, NULL, buf.h);
        op_modulate(buf.h, L, c->dim, head_mod, head_mod + c->dim);
        op_linear(buf.h, L, &w->head, buf.patches);
        unpatchify(c, grid, buf.patches, velocity);
    }
    dit_workspace_free(own);
    return s;
}

dit_workspace *dit_workspace_create(const sla2_model_config *config)
{
    dit_workspace *ws = malloc(sizeof *ws);
    if (ws && !buffers_alloc(config, ws)) {
        free(ws);
        return NULL;
    }
    return ws;
}

void dit_workspace_free(dit_workspace *ws)
{
    if (!ws)
        return;
    buffers_free(ws);
    free(ws);
}
