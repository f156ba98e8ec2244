/* YAML configs (libyaml): the model architecture (configs/models/) and the
 * runtime settings (configs/runtime/, also what sla2-calib writes).
 *
 * Strict: unknown keys, duplicate keys, wrong types (a quoted "50" is not a
 * number; booleans are true/false), out-of-range values, missing required
 * keys, anchors/aliases and more than one document are errors, reported as
 *   "configs/x.yaml:12:5: layers[3].topk: expected a number in (0, 1], got 1.5"
 * (line and column 1-based, then the key path). Loaders write nothing to
 * *out on failure. See configs/models/wan2.1-t2v-1.3b.yaml for the model
 * keys and configs/runtime/default.yaml for the runtime keys. */
#ifndef SLA2_MODEL_CONFIG_H
#define SLA2_MODEL_CONFIG_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

#define SLA2_CONFIG_MAX_FILE_BYTES (4u * 1024u * 1024u)
#define SLA2_CONFIG_NAME_SIZE 64

/* ---- Model architecture ------------------------------------------------- */

typedef enum sla2_router_layout {
    SLA2_ROUTER_NONE = 0,   /* identity router (SLA's heuristic) */
    SLA2_ROUTER_SHARED,     /* router_q/_k [D, D] shared by the heads */
    SLA2_ROUTER_PER_HEAD    /* router_q/_k [H, D, D] */
} sla2_router_layout;

typedef enum sla2_formulation {
    SLA2_FORMULATION_SLA2 = 0, /* O = alpha O_s + (1 - alpha) O_l */
    SLA2_FORMULATION_SLA_V1    /* O = O_s + proj_l(O_l), linear branch over all keys */
} sla2_formulation;

typedef enum sla2_video_space {
    SLA2_SPACE_LATENT = 0, /* the DiT runs on VAE latents (Wan2.1) */
    SLA2_SPACE_PIXEL       /* the DiT runs on RGB pixels (the tiny demo) */
} sla2_video_space;

typedef struct sla2_model_config {
    char name[SLA2_CONFIG_NAME_SIZE];
    /* Wan2.1 architecture (wan/modules/model.py's WanModel arguments). */
    int dim, ffn_dim, freq_dim, text_dim, text_len;
    int num_heads, num_layers, in_channels, out_channels;
    int patch_size[3]; /* [t, h, w] */
    double eps;
    int qk_norm, cross_attn_norm;
    /* sla2: how the checkpoint's SLA2 parameters are laid out. */
    sla2_router_layout router;
    sla2_alpha_kind alpha;
    sla2_formulation formulation;
    /* video: the default output, in pixels; vae_stride [t, h, w] maps pixels
     * to latents (all 1 in pixel space). */
    sla2_video_space space;
    int frames, height, width;
    int vae_stride[3];
    /* The built-in text vocabulary (token id = index); NULL/0 when the model
     * takes precomputed text embeddings. Owned by the config. */
    char **vocabulary;
    size_t vocabulary_size;
} sla2_model_config;

/* Loads path. Errors: SLA2_ERR_NULL_ARGUMENT, SLA2_ERR_IO (cannot read),
 * SLA2_ERR_FORMAT (YAML syntax, unknown/duplicate/missing keys, wrong
 * types), SLA2_ERR_INVALID_VALUE (out of range, inconsistent values),
 * SLA2_ERR_OUT_OF_MEMORY. */
sla2_status sla2_model_config_load(const char *path, sla2_model_config *out,
                                   char *err, size_t err_size);
/* The same from text in memory; name is used in messages (NULL: "<memory>"). */
sla2_status sla2_model_config_parse(const char *text, size_t len, const char *name,
                                    sla2_model_config *out, char *err, size_t err_size);
/* Frees what the config owns (the vocabulary) and zeroes it. NULL is a no-op. */
void sla2_model_config_free(sla2_model_config *config);

/* The DiT's token grid [t, h, w] (frames, height, width through the VAE
 * stride and the patch size) and the number of tokens; 0 for NULL. */
int64_t sla2_model_config_tokens(const sla2_model_config *config, int grid[3]);

/* "none", "shared", ... (NULL for an unknown value). */
const char *sla2_router_layout_name(sla2_router_layout layout);
const char *sla2_alpha_kind_name(sla2_alpha_kind kind);
const char *sla2_formulation_name(sla2_formulation formulation);

/* ---- Runtime settings --------------------------------------------------- */

typedef enum sla2_sampler {
    SLA2_SAMPLER_UNIPC = 0, /* Wan's default */
    SLA2_SAMPLER_EULER
} sla2_sampler;

/* How the DiT blocks' linear weights are stored once loaded (the `weights`
 * key): float32, weight-only INT8 / FP8 e4m3 codes with one float scale
 * per output channel, bfloat16, or FP8 weights with FP8 activations
 * (sla2_weight_storage in pipeline.h). */
typedef enum sla2_weight_storage_kind {
    SLA2_WEIGHT_STORAGE_F32 = 0,
    SLA2_WEIGHT_STORAGE_INT8,
    SLA2_WEIGHT_STORAGE_FP8,
    SLA2_WEIGHT_STORAGE_BF16,
    SLA2_WEIGHT_STORAGE_FP8_GEMM
} sla2_weight_storage_kind;

typedef enum sla2_attention_kind {
    SLA2_ATTENTION_SLA2 = 0,
    SLA2_ATTENTION_DENSE
} sla2_attention_kind;

/* One layer's attention settings, resolved. */
typedef struct sla2_layer_settings {
    double topk;
    sla2_quant_mode quant;
    int block_q, block_k;
} sla2_layer_settings;

/* A per-layer override as written: unset members are 0 (topk, block_q,
 * block_k, dense) or -1 (quant). line/column locate the entry in the file. */
typedef struct sla2_runtime_layer {
    int layer;
    double topk;
    int quant;
    int block_q, block_k;
    int dense;  /* `dense: true`: exact dense attention in this layer (topk etc. ignored) */
    int line, column;
} sla2_runtime_layer;

typedef struct sla2_runtime_config {
    char source[256];        /* the file it came from, for later messages */
    sla2_backend backend;    /* auto */
    sla2_sampler sampler;    /* unipc */
    int steps;               /* 50 */
    double shift;            /* 5.0 (flow-matching timestep shift) */
    double guidance;         /* 5.0 (classifier-free guidance scale) */
    int64_t seed;            /* 0 */
    sla2_attention_kind attention; /* sla2 */
    sla2_feature_map feature_map;  /* softmax */
    sla2_layer_settings defaults;  /* topk 0.05, int8_fp8, 128 x 64 */
    sla2_weight_storage_kind weights; /* f32; applied when the model loads (sla2_model_load_with_options) */
    sla2_runtime_layer *layers;    /* owned; sorted by layer */
    size_t num_layers;
} sla2_runtime_config;

/* Every key of a runtime file is optional; these are the defaults. */
void sla2_runtime_config_default(sla2_runtime_config *config);

/* Loads/parses a runtime file (errors as for the model config). */
sla2_status sla2_runtime_config_load(const char *path, sla2_runtime_config *out,
                                     char *err, size_t err_size);
sla2_status sla2_runtime_config_parse(const char *text, size_t len, const char *name,
                                      sla2_runtime_config *out, char *err, size_t err_size);
void sla2_runtime_config_free(sla2_runtime_config *config);

/* Writes config as a runtime file that sla2_runtime_config_load reads back
 * to the same values (doubles included, bit for bit): what sla2-calib
 * writes. comment (NULL for none) goes at the top as '#' lines. The text is
 * parsed back before anything is written, so a value out of range gives
 * SLA2_ERR_INVALID_VALUE (the message says which) and leaves path alone.
 * The file is replaced atomically. Errors: SLA2_ERR_NULL_ARGUMENT,
 * SLA2_ERR_INVALID_VALUE, SLA2_ERR_IO, SLA2_ERR_OUT_OF_MEMORY. */
sla2_status sla2_runtime_config_write(const char *path, const sla2_runtime_config *config,
                                      const char *comment, char *err, size_t err_size);

/* Checks the runtime config against a model: every per-layer entry names an
 * existing layer. SLA2_ERR_INVALID_VALUE with file:line:column otherwise. */
sla2_status sla2_runtime_config_check(const sla2_runtime_config *config,
                                      const sla2_model_config *model,
                                      char *err, size_t err_size);

/* Layer `layer`'s settings: the defaults with its override applied. */
sla2_layer_settings sla2_runtime_config_layer(const sla2_runtime_config *config, int layer);
/* 1 when layer `layer`'s entry says `dense: true` (exact dense attention in
 * that layer; `attention: dense` is the switch for every layer). */
int sla2_runtime_config_layer_dense(const sla2_runtime_config *config, int layer);

const char *sla2_sampler_name(sla2_sampler sampler);

#endif
