/*
 * sla2.h -- the SLA2 SDK's public C API: sparse-linear attention for video
 * diffusion transformers on Jetson Orin and RTX/Hopper GPUs, and on the CPU.
 *
 * Read top to bottom: version, status codes, contexts, tensor views, the
 * attention operator. Every fallible call returns sla2_status; the context
 * remembers a message that says exactly what was wrong
 * (sla2_context_last_error). No call aborts the host program, and no output
 * is written when a call fails.
 *
 * Ownership: handles (sla2_context) are created and freed in pairs. Tensors
 * are non-owning views: the SDK never frees memory it did not allocate.
 * Threads: every function is safe to call from several threads as long as
 * each thread uses its own context.
 */
#ifndef SLA2_H
#define SLA2_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && defined(SLA2_BUILDING_SHARED)
#define SLA2_API __declspec(dllexport)
#elif defined(__GNUC__) && !defined(SLA2_STATIC_DEFINE)
#define SLA2_API __attribute__((visibility("default")))
#else
#define SLA2_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version ------------------------------------------------------------ */
#define SLA2_VERSION_MAJOR 0
#define SLA2_VERSION_MINOR 1
#define SLA2_VERSION_PATCH 0
#define SLA2_VERSION_NUMBER \
    (SLA2_VERSION_MAJOR * 10000 + SLA2_VERSION_MINOR * 100 + SLA2_VERSION_PATCH)

/* "MAJOR.MINOR.PATCH" of the library actually linked (may differ from the
 * header's macros when a shared library was upgraded). */
SLA2_API const char *sla2_version_string(void);
SLA2_API int sla2_version_number(void);

/* ---- Status ------------------------------------------------------------- */
typedef enum sla2_status {
    SLA2_OK = 0,
    SLA2_ERR_NULL_ARGUMENT,   /* a required pointer was NULL */
    SLA2_ERR_INVALID_VALUE,   /* a value out of its range (topk, block size, ...) */
    SLA2_ERR_DTYPE,           /* a tensor's element type is not accepted here */
    SLA2_ERR_SHAPE,           /* a tensor's shape or strides are wrong or disagree */
    SLA2_ERR_UNSUPPORTED,     /* valid, but not supported (head_dim 96, no CUDA) */
    SLA2_ERR_OUT_OF_MEMORY,   /* host or device allocation failed */
    SLA2_ERR_BACKEND,         /* the CUDA runtime or cuBLASLt reported an error */
    SLA2_ERR_IO,              /* a file could not be opened or read */
    SLA2_ERR_FORMAT,          /* a file's contents are malformed */
    SLA2_ERR_CANCELLED        /* work stopped because the caller asked it to */
} sla2_status;

/* A short constant name for a status ("SLA2_ERR_SHAPE"); never NULL. */
SLA2_API const char *sla2_status_string(sla2_status status);

/* ---- Context ------------------------------------------------------------ */
typedef struct sla2_context sla2_context;

typedef enum sla2_backend {
    SLA2_BACKEND_AUTO = 0, /* CUDA when a usable GPU is found, else CPU */
    SLA2_BACKEND_CPU,
    SLA2_BACKEND_CUDA
} sla2_backend;

typedef struct sla2_context_options {
    size_t size;          /* sizeof(sla2_context_options); set by the default initialiser */
    sla2_backend backend; /* default AUTO */
    int device;           /* CUDA device ordinal; default 0 */
    int num_threads;      /* CPU threads; 0 = all available cores */
    int cpu_reference;    /* 1: run the plain reference implementation on the
                             CPU (slow, obviously right; the oracle of the tests) */
} sla2_context_options;

SLA2_API void sla2_context_options_default(sla2_context_options *options);

/* Creates a context. options may be NULL (defaults). On failure *out is left
 * untouched and, when error_message is not NULL, a message of at most
 * error_message_size bytes (NUL included) says why. Errors:
 * SLA2_ERR_NULL_ARGUMENT (out), SLA2_ERR_INVALID_VALUE (options),
 * SLA2_ERR_UNSUPPORTED (CUDA requested but not built in, or no such device),
 * SLA2_ERR_OUT_OF_MEMORY, SLA2_ERR_BACKEND. */
SLA2_API sla2_status sla2_context_create(const sla2_context_options *options,
                                         sla2_context **out,
                                         char *error_message,
                                         size_t error_message_size);

/* Frees the context and everything it owns (workspaces, streams). NULL is a no-op. */
SLA2_API void sla2_context_free(sla2_context *ctx);

/* The backend this context runs on (never AUTO). */
SLA2_API sla2_backend sla2_context_backend(const sla2_context *ctx);

/* Human-readable description of the device ("CPU (2 threads)",
 * "NVIDIA H100 80GB HBM3 (sm_90)"). Owned by the context. */
SLA2_API const char *sla2_context_device_name(const sla2_context *ctx);

/* The message of the last failed call on this context ("" after a success).
 * Owned by the context; valid until the next call on it. */
SLA2_API const char *sla2_context_last_error(const sla2_context *ctx);

/* ---- Tensors ------------------------------------------------------------ */
typedef enum sla2_dtype {
    SLA2_DTYPE_F32 = 0,
    SLA2_DTYPE_F16,
    SLA2_DTYPE_BF16
} sla2_dtype;

/* Bytes per element of dtype, 0 for an unknown value. */
SLA2_API size_t sla2_dtype_size(sla2_dtype dtype);
SLA2_API const char *sla2_dtype_name(sla2_dtype dtype);

#define SLA2_MAX_DIMS 4

/* A non-owning view. shape and stride are in elements; stride may describe
 * any layout (e.g. Wan's [B, L, H, D] memory seen as logical [B, H, L, D]).
 * data is host memory for a CPU context and device memory for a CUDA one. */
typedef struct sla2_tensor {
    void *data;
    sla2_dtype dtype;
    int ndim;
    int64_t shape[SLA2_MAX_DIMS];
    int64_t stride[SLA2_MAX_DIMS];
} sla2_tensor;

/* Views of a contiguous buffer as logical [B, H, L, D] (the attention
 * operator's shape). _bhld: memory laid out [B, H, L, D];
 * _blhd: memory laid out [B, L, H, D] (Wan2.1's layout). */
SLA2_API sla2_tensor sla2_tensor_bhld(void *data, sla2_dtype dtype,
                                      int64_t B, int64_t H, int64_t L, int64_t D);
SLA2_API sla2_tensor sla2_tensor_blhd(void *data, sla2_dtype dtype,
                                      int64_t B, int64_t H, int64_t L, int64_t D);
/* A contiguous view of any rank (1..4); unused dims are ignored. */
SLA2_API sla2_tensor sla2_tensor_contiguous(void *data, sla2_dtype dtype, int ndim,
                                            const int64_t *shape);

/* ---- Attention ---------------------------------------------------------- */
typedef enum sla2_quant_mode {
    SLA2_QUANT_NONE = 0, /* full precision of the inputs, FP32 accumulation */
    SLA2_QUANT_INT8,     /* INT8 Q.K^T (per-block scales), FP16 P.V */
    SLA2_QUANT_INT8_FP8  /* INT8 Q.K^T, FP8 e4m3 P.V; on GPUs without FP8
                            (sm_8x) P.V runs in FP16, as SLA2_QUANT_INT8 */
} sla2_quant_mode;

typedef enum sla2_feature_map {
    SLA2_FEATURE_SOFTMAX = 0, /* softmax over the head dimension */
    SLA2_FEATURE_ELU,         /* elu(x) + 1 */
    SLA2_FEATURE_RELU         /* max(x, 0) */
} sla2_feature_map;

SLA2_API const char *sla2_quant_mode_name(sla2_quant_mode mode);
SLA2_API const char *sla2_feature_map_name(sla2_feature_map map);

typedef struct sla2_attention_config {
    size_t size;                  /* sizeof(sla2_attention_config) */
    int block_q;                  /* query rows per block: 64 or 128 (default 128) */
    int block_k;                  /* key rows per block: 64 (default 64) */
    float topk;                   /* share of key blocks kept per query block, (0, 1] (default 0.05) */
    sla2_quant_mode quant;        /* default SLA2_QUANT_INT8_FP8 */
    sla2_feature_map feature_map; /* linear branch's phi; default softmax */
    float softmax_scale;          /* 0 = 1/sqrt(head_dim) (default 0) */
} sla2_attention_config;

SLA2_API void sla2_attention_config_default(sla2_attention_config *config);

/* Learned parameters of one attention layer; every member is optional (NULL).
 * All are F32 tensors in the context's memory (host for CPU, device for CUDA).
 *   router_q, router_k: [D, D] shared by the heads or [H, D, D] per head; the
 *       router computes (qbar . Wq)_e = sum_d qbar_d * W[d][e]. NULL = identity.
 *   alpha:   [H] logits; alpha_h = sigmoid(alpha[h]) for every row (SLA2).
 *   alpha_w, alpha_b: [H, D] and [H]; per-row alpha = sigmoid(q_r . w_h + b_h).
 *   With no alpha parameters, alpha = 1 (sparse branch only).
 *   proj_l_weight, proj_l_bias: [D, D] and [D] (nn.Linear: y = W x + b), the
 *       SLA (v1) formulation: O = O_s + proj_l(O_l), linear branch over all
 *       keys. Cannot be combined with alpha parameters. */
typedef struct sla2_attention_params {
    const sla2_tensor *router_q;
    const sla2_tensor *router_k;
    const sla2_tensor *alpha;
    const sla2_tensor *alpha_w;
    const sla2_tensor *alpha_b;
    const sla2_tensor *proj_l_weight;
    const sla2_tensor *proj_l_bias;
} sla2_attention_params;

/* Optional statistics of one forward call. Set size (the default initialiser
 * does), and point the arrays at host memory the caller owns to have them
 * filled; NULL arrays are skipped. size also tells the struct's version: a
 * caller built against an older sla2.h (without the timing fields, size =
 * offsetof(sla2_attention_stats, time_phases)) is served, and its struct is
 * written only up to its size. */
typedef struct sla2_attention_stats {
    size_t size;
    int64_t num_q_blocks;        /* out: ceil(L / block_q) */
    int64_t num_k_blocks;        /* out: ceil(L / block_k) */
    int64_t kept_per_q_block;    /* out: key blocks kept for each query block */
    int64_t kept_blocks_total;   /* out: over all batches, heads and query blocks */
    double mean_alpha;           /* out: mean alpha over every row and head */
    sla2_quant_mode quant_used;  /* out: the mode that ran (see SLA2_QUANT_INT8_FP8) */
    int64_t *kept_blocks;        /* in: NULL or [B * H]; out: kept blocks per (b, h) */
    uint8_t *block_mask;         /* in: NULL or [B * H * num_q_blocks * num_k_blocks];
                                    out: 1 where a key block is kept */
    size_t block_mask_elems;     /* in: capacity of block_mask, checked */
    float *alpha_blocks;         /* in: NULL or [B * H * num_q_blocks]; out: mean alpha
                                    of each query block's rows */
    size_t alpha_blocks_elems;   /* in: capacity of alpha_blocks, checked */
    /* Where the call's time went, in milliseconds, when time_phases is 1 on
     * the way in (0 leaves the fields below untouched). The CPU reads a
     * monotonic clock around each phase; on a multi-threaded CPU path a
     * phase's time is its threads' sum divided by the number of threads.
     * The CUDA backend records events on its stream between the phases
     * (adding no synchronisation: the call waits for its stream anyway) and
     * reports device time. The phases sum to at most total_ms; the remainder
     * is loading and storing heads and, on the CPU, threads waiting for one
     * another (the CUDA phases cover the whole call). A phase that a
     * backend fuses into another reads 0 (CUDA: the alpha-mix runs in the
     * sparse kernel's epilogue, so mix_ms is SLA v1's output projection). */
    int time_phases;             /* in: 1 = measure */
    double total_ms;             /* out: the whole operator */
    double router_ms;            /* out: pooling, projections, scores, top-k (CPU: with K smoothing) */
    double quantise_ms;          /* out: Q, K to INT8 and V to e4m3/f16 (CUDA: with K smoothing and pooling) */
    double sparse_ms;            /* out: the block-sparse softmax branch */
    double linear_ms;            /* out: feature maps and the linear branch's sums and outputs */
    double mix_ms;               /* out: O = alpha O_s + (1 - alpha) O_l, or SLA v1's projection */
} sla2_attention_stats;

SLA2_API void sla2_attention_stats_default(sla2_attention_stats *stats);

/* Number of key blocks kept per query block for L tokens:
 * max(1, min(Nk, floor(topk * Nk + 0.5))), Nk = ceil(L / block_k). */
SLA2_API int64_t sla2_attention_kept_blocks(int64_t L, int block_k, float topk);

/* O = alpha * O_sparse + (1 - alpha) * O_linear (ARCHITECTURE.md section 2).
 * q, k, v: logical [B, H, L, D] (D 64 or 128; same B, H, L for all three),
 * F32, F16 or BF16 (one dtype for all three), the head dimension contiguous
 * (stride[3] == 1). out: same shape, any of the three dtypes, its own strides.
 * params and stats may be NULL. Errors: SLA2_ERR_NULL_ARGUMENT,
 * SLA2_ERR_INVALID_VALUE (config, stats), SLA2_ERR_DTYPE, SLA2_ERR_SHAPE,
 * SLA2_ERR_UNSUPPORTED, SLA2_ERR_OUT_OF_MEMORY, SLA2_ERR_BACKEND. */
SLA2_API sla2_status sla2_attention_forward(sla2_context *ctx,
                                            const sla2_attention_config *config,
                                            const sla2_attention_params *params,
                                            const sla2_tensor *q,
                                            const sla2_tensor *k,
                                            const sla2_tensor *v,
                                            sla2_tensor *out,
                                            sla2_attention_stats *stats);

#ifdef __cplusplus
}
#endif
#endif /* SLA2_H */
