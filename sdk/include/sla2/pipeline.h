/*
 * sla2/pipeline.h -- models and video generation on top of sla2.h.
 *
 * A model is a Wan2.1-architecture DiT: its YAML architecture
 * (configs/models/) and its safetensors weights under Wan2.1's names plus
 * SLA2's (ARCHITECTURE.md section 6). A pipeline runs flow-matching sampling
 * with classifier-free guidance on a model and writes the video.
 *
 * Ownership: sla2_model_load/sla2_model_free and
 * sla2_pipeline_create/sla2_pipeline_free are pairs. A pipeline borrows its
 * context and model: free it first. Errors: as in sla2.h, with the message
 * in sla2_context_last_error of the context passed in.
 */
#ifndef SLA2_PIPELINE_H
#define SLA2_PIPELINE_H

#include "sla2/sla2.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Models --------------------------------------------------------------- */
typedef struct sla2_model sla2_model;

/* Loads the architecture at config_path (YAML) and the weights at
 * weights_path (safetensors). Every tensor is checked against the
 * architecture before use. Errors: SLA2_ERR_NULL_ARGUMENT, SLA2_ERR_IO,
 * SLA2_ERR_FORMAT (malformed file, missing or mis-shaped tensor: the message
 * names the file, line/column or tensor), SLA2_ERR_INVALID_VALUE,
 * SLA2_ERR_UNSUPPORTED (head_dim not 64/128), SLA2_ERR_OUT_OF_MEMORY. */
SLA2_API sla2_status sla2_model_load(sla2_context *ctx, const char *config_path, const char *weights_path,
                                     sla2_model **out);
SLA2_API void sla2_model_free(sla2_model *model);

/* How the DiT blocks' linear weights (attention q/k/v/o, ffn) are stored
 * once loaded. The embeddings, time projection and head stay float32.
 * - F32: as loaded (a bf16 checkpoint widened exactly).
 * - INT8 / FP8 (e4m3): weight-only codes with one float scale per output
 *   channel (a quarter of the memory), dequantised before each GEMM: into
 *   float32 for the CPU's float32 GEMMs, into bf16 for the bf16 GEMMs of
 *   CUDA (as BF16 below). A checkpoint's own I8 / F8_E4M3 codes with their
 *   scales (README) are kept bit for bit; float weights are quantised as
 *   they load.
 * - BF16: bfloat16, rounded to nearest even (a bf16 checkpoint, Wan's own
 *   format, loads bit-exactly), half the memory. On CUDA these linears run
 *   as bf16 GEMMs (float32 accumulation and output) with the activations
 *   rounded to bf16 before each one; the CPU widens the weights to float32
 *   and keeps float32 activations, so the two backends differ by that
 *   activation rounding (2^-9 relative per element); for INT8 / FP8 also by
 *   the rounding of the dequantised weights to bf16.
 * - FP8_GEMM: the weights as FP8, and each of these linears' input
 *   quantised too, per token (row) to e4m3 with one float scale,
 *   s = max|x| / 448, on both backends: FP8 tensor-core GEMMs on CUDA
 *   (sm_89 and later; float32 accumulation, both scales applied in
 *   cuBLASLt's epilogue, the bias rounded to bf16), the same values through
 *   bf16 GEMMs on older GPUs, float32 GEMMs on the CPU. Faster than BF16 on
 *   an H100, and not weight-only: each product carries e4m3's rounding
 *   (2^-4 relative per element) of both operands. */
typedef enum sla2_weight_storage {
    SLA2_WEIGHTS_F32 = 0,
    SLA2_WEIGHTS_INT8,
    SLA2_WEIGHTS_FP8,
    SLA2_WEIGHTS_BF16,
    SLA2_WEIGHTS_FP8_GEMM
} sla2_weight_storage;

typedef struct sla2_model_load_options {
    size_t size;              /* sizeof(sla2_model_load_options): sla2_model_load_options_default sets it */
    int weight_storage;       /* -1 (default): the runtime file's `weights` key, float32 without one;
                                 else a sla2_weight_storage */
    const char *runtime_path; /* NULL, or a runtime YAML whose `weights` key is read (and validated) */
} sla2_model_load_options;

SLA2_API void sla2_model_load_options_default(sla2_model_load_options *options);
/* sla2_model_load with options (NULL: the defaults). Errors: those of
 * sla2_model_load, and those of the runtime file (file:line:column). */
SLA2_API sla2_status sla2_model_load_with_options(sla2_context *ctx, const char *config_path,
                                                  const char *weights_path, const sla2_model_load_options *options,
                                                  sla2_model **out);

typedef struct sla2_model_info {
    size_t size;            /* sizeof(sla2_model_info), set by the caller */
    const char *name;       /* owned by the model */
    int num_layers, num_heads, head_dim, dim;
    int channels;           /* of the video the DiT denoises (latent or RGB) */
    int frames, height, width; /* of that video (latents for a latent model) */
    int pixel_space;        /* 1: the video is RGB in [-1, 1]; 0: VAE latents */
    int64_t tokens;         /* self-attention sequence length */
    int text_len, text_dim;
    size_t vocabulary_size; /* > 0: prompts are read through the built-in vocabulary */
    const char *const *vocabulary;
    int weight_storage;     /* a sla2_weight_storage */
    size_t weight_bytes;    /* the weights' resident size in the context's backend memory */
} sla2_model_info;

SLA2_API sla2_status sla2_model_get_info(sla2_context *ctx, const sla2_model *model, sla2_model_info *info);

/* ---- Pipelines ------------------------------------------------------------ */
typedef struct sla2_pipeline sla2_pipeline;

typedef enum sla2_sampler_kind {
    SLA2_SAMPLER_KIND_UNIPC = 0, /* Wan's default: UniPC bh2, order 2 */
    SLA2_SAMPLER_KIND_EULER
} sla2_sampler_kind;

/* One self-attention layer's settings. */
typedef struct sla2_layer_attention {
    float topk;
    sla2_quant_mode quant;
    int block_q, block_k;
} sla2_layer_attention;

/* Creates a pipeline with the runtime settings of runtime_path (YAML, as
 * sla2-calib writes it; NULL: the built-in defaults). The file's `weights`
 * key takes effect when the model loads (sla2_model_load_with_options); for
 * a model loaded without load options a `weights` other than the model's is
 * SLA2_ERR_INVALID_VALUE rather than silently ignored. Other errors:
 * SLA2_ERR_NULL_ARGUMENT, SLA2_ERR_IO/FORMAT/INVALID_VALUE (the file, with
 * file:line:column), SLA2_ERR_OUT_OF_MEMORY. */
SLA2_API sla2_status sla2_pipeline_create(sla2_context *ctx, sla2_model *model, const char *runtime_path,
                                          sla2_pipeline **out);
SLA2_API void sla2_pipeline_free(sla2_pipeline *pipeline);

/* Reads or changes one layer's attention settings. A change made during
 * generation (from the step callback or another thread) applies from the
 * next step. Errors: SLA2_ERR_INVALID_VALUE (layer, topk, block sizes). */
SLA2_API sla2_status sla2_pipeline_get_layer(sla2_pipeline *pipeline, int layer, sla2_layer_attention *out);
SLA2_API sla2_status sla2_pipeline_set_layer(sla2_pipeline *pipeline, int layer, const sla2_layer_attention *settings);
/* 1: every layer runs exact dense attention (the quality baseline). */
SLA2_API void sla2_pipeline_set_dense(sla2_pipeline *pipeline, int dense);

/* Reads or changes whether one layer runs exact dense attention (no router,
 * no alpha, no quantisation: softmax(QK^T/sqrt(D))V) instead of its SLA2
 * settings, which are kept and apply again after sla2_pipeline_set_layer_dense
 * (p, layer, 0). A runtime YAML's `dense: true` in a layer's entry sets it
 * (as sla2-calib writes for a layer that no candidate kept within budget).
 * sla2_pipeline_set_dense(p, 1) overrides it for every layer; get reports
 * the layer's own switch. Changes apply from the next step, as for
 * sla2_pipeline_set_layer. Errors: SLA2_ERR_NULL_ARGUMENT,
 * SLA2_ERR_INVALID_VALUE (layer outside 0..num_layers-1). */
SLA2_API sla2_status sla2_pipeline_set_layer_dense(sla2_pipeline *pipeline, int layer, int dense);
SLA2_API sla2_status sla2_pipeline_get_layer_dense(sla2_pipeline *pipeline, int layer, int *dense);

/* What the step callback sees after each sampler step. Pointers are valid
 * during the callback only. */
typedef struct sla2_step_info {
    int step, num_steps;        /* step counts from 1 */
    double timestep, sigma;
    const float *video;         /* the current clean-video estimate x0, [C][F][H][W] */
    int channels, frames, height, width;
    double step_ms;             /* wall time of the step (both passes under guidance, and the sampler) */
    double attention_ms;        /* time of the step's self-attention operators, as the backend measures
                                   them (sla2_attention_stats.total_ms: device time on CUDA) */
    int num_layers, num_heads;
    int64_t num_q_blocks, num_k_blocks; /* of layer 0's settings */
    const int64_t *kept_per_q_block;    /* [num_layers] */
    const uint8_t *const *block_masks;  /* [num_layers] -> [H][Nq_l][Nk_l] of the conditional pass */
    const int64_t *mask_q_blocks, *mask_k_blocks; /* [num_layers]: each mask's Nq, Nk */
    const double *mean_alpha;           /* [num_layers] */
    const float *const *alpha_blocks;   /* [num_layers] -> [H][Nq_l]: mean alpha per query block */
    int dense;
    const float *x_t;                   /* the step's input: the noisy video at `timestep`, [C][F][H][W];
                                           sla2_pipeline_predict(step, x_t) gives this step's prediction */
    /* attention_ms by phase (sla2_attention_stats' fields of the same names,
     * summed over the step's layers and passes); they sum to at most
     * attention_ms. A phase the backend fuses into another reads 0. */
    double router_ms, quantise_ms, sparse_ms, linear_ms, mix_ms;
} sla2_step_info;

/* Return non-zero to cancel generation (sla2_pipeline_generate then returns
 * SLA2_ERR_CANCELLED after freeing what it allocated). */
typedef int (*sla2_step_callback)(void *user, const sla2_step_info *info);

/* Called for each self-attention layer of the conditional pass with the
 * layer's Q, K, V ([1, H, L, D] views, F32, host memory for a CPU context)
 * and its learned SLA2 parameters, before the operator runs, so a tool such
 * as sla2-calib can evaluate the operator at other settings on the same
 * inputs. Everything is valid during the call only; step counts from 1. */
typedef void (*sla2_attention_observer)(void *user, int step, int layer, const sla2_tensor *q, const sla2_tensor *k,
                                        const sla2_tensor *v, const sla2_attention_params *params);

typedef struct sla2_generate_options {
    size_t size;                     /* sizeof(sla2_generate_options) */
    const char *prompt;              /* for models with a vocabulary: words of it */
    const char *text_embedding_path; /* else: safetensors with tensor "context" [L <= text_len, text_dim] */
    int64_t seed;                    /* < 0: the runtime config's */
    int steps;                       /* 0: the runtime config's */
    double guidance;                 /* < 0: the runtime config's; 1 = no guidance (one pass a step) */
    double shift;                    /* <= 0: the runtime config's */
    int sampler;                     /* -1: the runtime config's, else a sla2_sampler_kind */
    sla2_step_callback on_step;
    sla2_attention_observer on_attention;
    void *user;
    const volatile int *cancel;      /* checked before each step and each DiT block; non-zero cancels */
} sla2_generate_options;

SLA2_API void sla2_generate_options_default(sla2_generate_options *options);

/* Generates one video into video ([C][F][H][W] floats, C = info.channels;
 * video_elems its capacity). For pixel-space models the values are RGB in
 * [-1, 1]. Errors: SLA2_ERR_NULL_ARGUMENT, SLA2_ERR_INVALID_VALUE (prompt
 * word not in the vocabulary, capacity, options), SLA2_ERR_IO/FORMAT
 * (embedding file), SLA2_ERR_CANCELLED, SLA2_ERR_OUT_OF_MEMORY,
 * SLA2_ERR_BACKEND. video is written only on success. */
SLA2_API sla2_status sla2_pipeline_generate(sla2_pipeline *pipeline, const sla2_generate_options *options,
                                            float *video, size_t video_elems);

/* One DiT evaluation outside a generation: the prediction (the
 * flow-matching velocity, [C][F][H][W] floats, elems of them as in
 * sla2_pipeline_generate) for the noisy video x_t at sampler step `step`
 * (1..steps) of the schedule that options give (steps, shift), with options'
 * text (prompt or text_embedding_path) and guidance (1: the conditional pass
 * alone; otherwise the guided combination of both passes), under the
 * pipeline's per-layer settings at the time of the call. With the x_t that
 * sla2_step_info shows at that step it is, bit for bit, the velocity the
 * generation used (x0 = x_t - sigma * velocity). options' seed and sampler
 * are not used; on_attention is called as in a generation (step = `step`),
 * on_step is not; cancel is checked before each DiT block. Errors:
 * SLA2_ERR_NULL_ARGUMENT, SLA2_ERR_INVALID_VALUE (step outside 1..steps;
 * elems, the length of x_t and of prediction, smaller than the video;
 * options as in sla2_pipeline_generate), SLA2_ERR_IO/FORMAT (embedding
 * file), SLA2_ERR_CANCELLED, SLA2_ERR_OUT_OF_MEMORY, SLA2_ERR_BACKEND.
 * prediction is written only on success. */
SLA2_API sla2_status sla2_pipeline_predict(sla2_pipeline *pipeline, const sla2_generate_options *options, int step,
                                           const float *x_t, float *prediction, size_t elems);

#ifdef __cplusplus
}
#endif
#endif /* SLA2_PIPELINE_H */
