/* Internal interface shared by the library's front end and its backends.
 * Nothing here is public; nothing here includes a CUDA header. */
#ifndef SLA2_INTERNAL_H
#define SLA2_INTERNAL_H

#include "sla2/sla2.h"

#include <stdarg.h>

#if defined(__GNUC__)
#define SLA2_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define SLA2_PRINTF(fmt_index, first_arg)
#endif

/* How alpha is given: none (alpha = 1), one logit per head, or a learned
 * function of the query row. */
typedef enum sla2_alpha_kind {
    SLA2_ALPHA_ONE = 0,
    SLA2_ALPHA_PER_HEAD,
    SLA2_ALPHA_PER_ROW
} sla2_alpha_kind;

/* A validated attention call, with every derived size resolved. Tensor data
 * pointers live in the backend's memory (host or device). */
typedef struct sla2_attention_problem {
    int64_t batch, heads, seq_len, head_dim;
    int block_q, block_k;
    int64_t num_q_blocks, num_k_blocks, kept_per_q_block;
    float softmax_scale;
    sla2_quant_mode quant;
    sla2_feature_map feature_map;
    const sla2_tensor *q, *k, *v;
    const sla2_tensor *out;

    /* Parameters, F32, contiguous. NULL router = identity. */
    const float *router_q;
    int router_q_per_head; /* 1: [H, D, D]; 0: [D, D] */
    const float *router_k;
    int router_k_per_head;
    sla2_alpha_kind alpha_kind;
    const float *alpha;   /* [H] logits (PER_HEAD) */
    const float *alpha_w; /* [H, D] (PER_ROW) */
    const float *alpha_b; /* [H]    (PER_ROW) */
    const float *proj_l_weight; /* [D, D], SLA v1 when not NULL */
    const float *proj_l_bias;   /* [D] or NULL */
} sla2_attention_problem;

/* The phases a backend times (sla2_attention_stats' *_ms fields). */
typedef enum sla2_phase {
    SLA2_PHASE_ROUTER = 0,
    SLA2_PHASE_QUANTISE,
    SLA2_PHASE_SPARSE,
    SLA2_PHASE_LINEAR,
    SLA2_PHASE_MIX,
    SLA2_NUM_PHASES
} sla2_phase;

/* What a backend reports back besides the output tensor. */
typedef struct sla2_attention_result {
    uint8_t *block_mask;  /* host [B*H*Nq*Nk] to fill, or NULL */
    float *alpha_blocks;  /* host [B*H*Nq] to fill, or NULL */
    int alpha_blocks_written; /* set by a backend that filled alpha_blocks */
    double mean_alpha;    /* out */
    sla2_quant_mode quant_used; /* out */
    int time_phases;      /* in: 1 = fill the times below */
    double total_ms;      /* out: the whole call */
    double phase_ms[SLA2_NUM_PHASES]; /* out */
} sla2_attention_result;

/* One table per backend (ggml-backend's shape). */
typedef struct sla2_backend_ops {
    const char *name;
    sla2_status (*attention_forward)(sla2_context *ctx,
                                     const sla2_attention_problem *problem,
                                     sla2_attention_result *result);
    void (*destroy)(sla2_context *ctx);
} sla2_backend_ops;

struct sla2_context {
    sla2_backend backend;
    const sla2_backend_ops *ops;
    void *backend_state; /* owned by the backend, freed by ops->destroy */
    int num_threads;
    int cpu_reference;
    char device_name[160];
    char last_error[512];
};

/* Records a formatted message on ctx and returns status (for `return
 * sla2_fail(ctx, SLA2_ERR_SHAPE, "q: ...")`). */
sla2_status sla2_fail(sla2_context *ctx, sla2_status status, const char *fmt, ...)
    SLA2_PRINTF(3, 4);
void sla2_clear_error(sla2_context *ctx);

/* Backend initialisers: set ctx->ops, ctx->backend_state, ctx->device_name. */
sla2_status sla2_cpu_backend_init(sla2_context *ctx);
#ifdef SLA2_HAVE_CUDA
/* Returns SLA2_ERR_UNSUPPORTED (with a message) when no usable device exists. */
sla2_status sla2_cuda_backend_init(sla2_context *ctx, int device);
#endif

#endif /* SLA2_INTERNAL_H */
