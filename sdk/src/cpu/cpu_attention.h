/* The CPU backend's steps of the operator (ARCHITECTURE.md section 2), one
 * function per step. Every array is float, row-major, one (batch, head) at a
 * time: q, k, v are [L][D]. */
#ifndef SLA2_CPU_ATTENTION_H
#define SLA2_CPU_ATTENTION_H

#include "internal.h"

#include <time.h>

/* One head's inputs in float plus what the router and the quantised modes
 * derive from them. Filled by head_prepare (attention_reference.c). */
typedef struct head_work {
    int64_t L, D;
    const float *q, *k, *v;   /* [L][D] */
    float *k_smooth;          /* [L][D]: K - mean over tokens of K */
    int32_t *kept;            /* [Nq][kept_per_q_block], ascending key-block indices */
    uint8_t *mask;            /* [Nq][Nk] */
    /* quantised operands (INT8 / INT8_FP8 only), stored as floats holding
     * exact integer or e4m3 values */
    float *q_int8, *q_scale;  /* [L][D], [Nq] */
    float *k_int8, *k_scale;  /* [L][D], [Nk] */
    float *v_rounded;         /* [L][D]: e4m3(v / sv) or f16(v) */
    float *v_scale;           /* [D]: sv (INT8_FP8) */
} head_work;

/* router.c */
void router_smooth_keys(const float *k, int64_t L, int64_t D, float *k_smooth);
void router_pool_blocks(const float *x, int64_t L, int64_t D, int block, float *pooled);
void router_project(const float *pooled, int64_t num_blocks, int64_t D, const float *weight, float *projected);
void router_scores(const float *q_proj, int64_t num_q_blocks, const float *k_proj, int64_t num_k_blocks,
                   int64_t D, float *scores);
void router_topk(const float *scores, int64_t num_q_blocks, int64_t num_k_blocks, int64_t kept,
                 int32_t *kept_idx, uint8_t *mask);
/* The whole router for one head; scratch needs (Nq + Nk) * D * 2 + Nq * Nk floats. */
void router_route_head(const sla2_attention_problem *p, int64_t head, const float *q, const float *k_smooth,
                       float *scratch, int32_t *kept_idx, uint8_t *mask);
size_t router_scratch_elems(const sla2_attention_problem *p);

/* quantize.c-like steps live in sparse_branch.c */
void sparse_quantize_blocks(const float *x, int64_t L, int64_t D, int block, float *x_int8, float *scales);
void sparse_round_values(sla2_quant_mode mode, const float *v, int64_t L, int64_t D, float *v_rounded,
                         float *v_scale);
/* O_s for one head, by the plain loops (reference). */
void sparse_branch(const sla2_attention_problem *p, const head_work *w, float *out_sparse);

/* linear_branch.c */
void feature_map_rows(sla2_feature_map map, const float *x, int64_t rows, int64_t D, float *phi);
/* O_l for one head, by direct sums over the complement (reference).
 * Returns 0 when out of memory. */
int linear_branch(const sla2_attention_problem *p, const head_work *w, float *out_linear);

/* mix_alpha.c */
float alpha_of_row(const sla2_attention_problem *p, int64_t head, const float *q_row);
/* out = alpha * O_s + (1 - alpha) * O_l (SLA2) or O_s + proj_l(O_l) (SLA v1);
 * returns the sum of alpha over the rows. alpha_blocks: NULL or [Nq], the
 * mean alpha of each query block. */
double mix_alpha(const sla2_attention_problem *p, int64_t head, const float *q, const float *out_sparse,
                 const float *out_linear, float *out, float *alpha_blocks);

/* cpu_backend.c: strided tensor <-> float [L][D] of one (b, h) */
void head_load(const sla2_tensor *t, int64_t b, int64_t h, float *dst);
void head_store(const sla2_tensor *t, int64_t b, int64_t h, const float *src);

/* Phase timing (sla2_attention_stats' *_ms): phase_ms is NULL when the call
 * is not timed, else [SLA2_NUM_PHASES] sums. cpu_lap adds the time since
 * *mark to phase_ms[phase] (CPU_UNTIMED: to none, as loads and stores) and
 * moves *mark to now. */
#define CPU_UNTIMED (-1)
static inline double cpu_clock_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}
static inline void cpu_lap(double *phase_ms, int phase, double *mark)
{
    if (!phase_ms)
        return;
    double now = cpu_clock_ms();
    if (phase != CPU_UNTIMED)
        phase_ms[phase] += now - *mark;
    *mark = now;
}

/* Allocation and derivation of a head's work arrays shared by both paths. */
int head_work_alloc(const sla2_attention_problem *p, head_work *w);
void head_work_free(head_work *w);
/* Loads (b, h), smooths K, routes, and quantises for the problem's mode;
 * adds the router's and the quantisation's time to phase_ms (may be NULL). */
void head_prepare(const sla2_attention_problem *p, int64_t b, int64_t h, head_work *w, float *router_scratch,
                  double *phase_ms);

sla2_status cpu_attention_reference(sla2_context *ctx, const sla2_attention_problem *p,
                                    sla2_attention_result *result);
/* Per-thread workspaces of the fast path, owned by the context. */
typedef struct cpu_scratch_cache cpu_scratch_cache;
void cpu_scratch_cache_free(cpu_scratch_cache *cache);

sla2_status cpu_attention_fast(sla2_context *ctx, const sla2_attention_problem *p,
                               sla2_attention_result *result);

#endif
