/* The Wan2.1 DiT (ARCHITECTURE.md section 4; wan/modules/model.py is the
 * reference): weights under Wan's own names, one forward pass on float32
 * host arrays, self-attention through the SLA2 operator. */
#ifndef SLA2_DIT_H
#define SLA2_DIT_H

#include "internal.h"
#include "model/config.h"
#include "model/safetensors.h"

/* Storage of a linear's weight: float32; INT8 / FP8 (e4m3) codes with one
 * float scale per output channel, w[o][i] = code[o][i] * scale[o], which the
 * CPU dequantises into scratch before its float32 GEMM and CUDA into a bf16
 * copy for a bf16 GEMM (a quarter of the memory); or bfloat16 codes,
 * w[o][i] = bf16(code[o][i]), which the CPU widens to float32 per GEMM and
 * CUDA feeds to a bf16 GEMM (half the memory). CUDA's bf16 GEMMs take their
 * activations rounded to bf16: the speed of bf16 tensor cores. FP8_GEMM
 * holds the weights as FP8 does and quantises each linear's input too, per
 * row (token) to e4m3 (op_quantise_activations' rule, on both backends), so
 * that CUDA runs FP8 tensor-core GEMMs (sm_89 and later). */
typedef enum dit_weight_storage {
    DIT_WEIGHTS_F32 = 0,
    DIT_WEIGHTS_INT8,
    DIT_WEIGHTS_FP8,
    DIT_WEIGHTS_BF16,
    DIT_WEIGHTS_FP8_GEMM
} dit_weight_storage;

/* Whether a storage's codes are e4m3 bytes. */
static inline int dit_codes_e4m3(dit_weight_storage storage)
{
    return storage == DIT_WEIGHTS_FP8 || storage == DIT_WEIGHTS_FP8_GEMM;
}

/* Bytes of one code of a non-float32 storage. */
static inline size_t dit_code_bytes(dit_weight_storage storage)
{
    return storage == DIT_WEIGHTS_BF16 ? 2 : 1;
}

typedef struct dit_linear {
    float *weight; /* [out][in] (nn.Linear); NULL when stored as codes */
    float *bias;   /* [out] or NULL */
    int in, out;
    dit_weight_storage storage;
    void *codes;  /* [out][in] int8_t, e4m3 bytes or bf16 (uint16_t) when not float32 */
    float *scale; /* [out] for INT8 / FP8 / FP8_GEMM; NULL for BF16 */
} dit_linear;

typedef struct dit_attention_weights {
    dit_linear q, k, v, o;
    float *norm_q, *norm_k; /* RMSNorm weights over the full width, or NULL */
} dit_attention_weights;

typedef struct dit_block_weights {
    float *modulation; /* [6][dim] */
    dit_attention_weights self_attn, cross_attn;
    float *norm3_weight, *norm3_bias; /* cross_attn_norm, or NULL */
    dit_linear ffn0, ffn2;
    /* SLA2 parameters (blocks.N.self_attn.sla2.*) or SLA v1's proj_l; NULL when absent */
    float *router_q, *router_k;
    int router_per_head;
    float *alpha, *alpha_w, *alpha_b;
    float *proj_l_weight, *proj_l_bias;
} dit_block_weights;

/* Where a loaded tensor's pointer lives, and its size: lets the weights
 * move to a backend's memory and be freed there. */
typedef struct dit_tensor_slot {
    void **slot; /* a float *, or a linear's codes */
    size_t bytes;
} dit_tensor_slot;

struct dit_backend;

typedef struct dit_weights {
    float *patch_weight; /* [dim][in_channels * pt * ph * pw] */
    float *patch_bias;   /* [dim] */
    dit_linear text0, text2, time0, time2, time_proj;
    dit_block_weights *blocks;
    float *head_modulation; /* [2][dim] */
    dit_linear head;
    float *vocab_embedding; /* [vocabulary][text_dim]: the tiny model's built-in text encoder */
    size_t total_floats;    /* parameters */
    size_t resident_bytes;  /* what they take in the backend's memory */
    dit_weight_storage storage; /* of the blocks' linears */
    dit_tensor_slot *slots; /* every loaded tensor */
    size_t num_slots;
    const struct dit_backend *backend; /* where the tensors live; NULL: host malloc */
} dit_weights;

/* Loads every tensor the config implies from st into host float32, in
 * place (*out must not move afterwards: the slot table points into it).
 * Missing or mis-shaped tensors give SLA2_ERR_FORMAT naming the tensor. */
sla2_status dit_weights_load(const sla2_model_config *config, const sla2_safetensors *st, dit_weights *out,
                             char *err, size_t err_size);
/* The same with the blocks' linears (attention q/k/v/o, ffn) converted to
 * storage as they load (INT8 / FP8 per output channel, BF16 rounded to
 * nearest even; a checkpoint's own I8 / F8_E4M3 codes and scales are kept
 * as they are when they match), so that at most one tensor is float32 at a time; the
 * embeddings, time projection and head stay float32 (small, and where an
 * error reaches every token). */
sla2_status dit_weights_load_as(const sla2_model_config *config, const sla2_safetensors *st,
                                dit_weight_storage storage, dit_weights *out, char *err, size_t err_size);
/* Moves the weights into backend's memory (a no-op for the CPU). On failure
 * everything is freed. */
sla2_status dit_weights_to_backend(sla2_context *ctx, const struct dit_backend *backend, dit_weights *w);
void dit_weights_free(dit_weights *w, sla2_context *ctx, int num_layers);

/* Per-layer attention settings of one forward pass. */
typedef struct dit_attention_settings {
    int dense;        /* 1: exact dense attention (topk = 1, alpha = 1, no quantisation) */
    sla2_layer_settings layer;
    sla2_feature_map feature_map;
} dit_attention_settings;

/* Called after each block's self-attention when not NULL (observers: stats,
 * calibration). */
typedef void (*dit_attention_hook)(void *user, int layer, const sla2_attention_stats *stats);
/* Called before each self-attention with its Q, K, V views (observers). */
typedef void (*dit_attention_observer)(void *user, int layer, const sla2_tensor *q, const sla2_tensor *k,
                                       const sla2_tensor *v, const sla2_attention_params *params);

/* Self-attention time of forward passes, summed over the calls, as the
 * backend measured it (sla2_attention_stats.time_phases: device time on CUDA). */
typedef struct dit_attention_times {
    double total_ms;
    double phase_ms[SLA2_NUM_PHASES]; /* router, quantise, sparse, linear, mix */
} dit_attention_times;

/* Activation buffers of one forward pass, reusable across passes of the
 * same model (a generation makes 2 x steps of them). */
typedef struct dit_workspace dit_workspace;
sla2_status dit_workspace_create(sla2_context *ctx, const struct dit_backend *backend,
                                 const sla2_model_config *config, dit_workspace **out);
void dit_workspace_free(dit_workspace *ws);

typedef struct dit_forward_args {
    const float *x;        /* [C][F][H][W] video (latent or pixels) */
    double timestep;       /* in [0, 1000] */
    const float *context;  /* [text_len][text_dim], already zero-padded */
    const dit_attention_settings *layers; /* [num_layers] */
    dit_attention_hook hook;
    void *hook_user;
    dit_attention_observer observer;
    uint8_t **block_masks; /* NULL, or [num_layers] buffers of H*Nq*Nk to fill */
    float **alpha_blocks;  /* NULL, or [num_layers] buffers of H*Nq to fill */
    dit_workspace *workspace; /* NULL: allocated for this pass */
    const volatile int *cancel; /* checked before each block; non-zero stops the pass */
    dit_attention_times attention_times; /* out: added to (zero it before a pass to time the pass alone) */
} dit_forward_args;

/* velocity [C][F][H][W] = DiT(x, t, context); x, context and velocity are
 * host arrays, the weights and workspace in ctx's backend. */
sla2_status dit_forward(sla2_context *ctx, const sla2_model_config *config, const dit_weights *w,
                        dit_forward_args *args, float *velocity);

#endif
