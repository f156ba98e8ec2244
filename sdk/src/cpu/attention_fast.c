/* The fast CPU path: the same math as the reference, with the GEMM-shaped
 * steps on OpenBLAS and the (batch, head) pairs spread over OpenMP threads.
 * Tested against the reference (tests/test_cpu_fast.c). */
#include "cpu_attention.h"
#include "exp_fast.h"
#include "numeric.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define LINEAR_EPS 1e-6f

typedef struct fast_scratch {
    sla2_attention_problem shape; /* the sizes it was allocated for */
    head_work w;
    float *router, *out_sparse, *out_linear, *out;
    float *scores, *block_out, *acc, *row_max, *row_sum; /* one query block */
    float *kept_scores, *kept_k, *kept_v; /* mode NONE: [bq][kept keys], [kept keys][D] x 2 */
    float *phi_q, *phi_k;
    float *kv_blocks, *ksum_blocks;      /* [Nk][D][D], [Nk][D] */
    float *kv_comp, *ksum_comp, *den;    /* [D][D], [D], [bq] */
    double *kv_total, *ksum_total;       /* [D][D], [D] */
} fast_scratch;

static void scratch_free(fast_scratch *s)
{
    head_work_free(&s->w);
    free(s->router), free(s->out_sparse), free(s->out_linear), free(s->out);
    free(s->scores), free(s->block_out), free(s->acc), free(s->row_max), free(s->row_sum);
    free(s->kept_scores), free(s->kept_k), free(s->kept_v);
    free(s->phi_q), free(s->phi_k), free(s->kv_blocks), free(s->ksum_blocks);
    free(s->kv_comp), free(s->ksum_comp), free(s->den), free(s->kv_total), free(s->ksum_total);
    memset(s, 0, sizeof *s);
}

static int scratch_alloc(const sla2_attention_problem *p, fast_scratch *s)
{
    memset(s, 0, sizeof *s);
    s->shape = *p;
    size_t L = (size_t)p->seq_len, D = (size_t)p->head_dim, bq = (size_t)p->block_q;
    size_t bk = (size_t)p->block_k, Nk = (size_t)p->num_k_blocks;
    if (!head_work_alloc(p, &s->w))
        return 0;
    s->router = malloc(router_scratch_elems(p) * sizeof(float));
    s->out_sparse = malloc(L * D * sizeof(float));
    s->out_linear = malloc(L * D * sizeof(float));
    s->out = malloc(L * D * sizeof(float));
    s->scores = malloc(bq * bk * sizeof(float));
    s->block_out = malloc(bq * D * sizeof(float));
    s->acc = malloc(bq * D * sizeof(float));
    s->row_max = malloc(bq * sizeof(float));
    s->row_sum = malloc(bq * sizeof(float));
    s->phi_q = malloc(L * D * sizeof(float));
    s->phi_k = malloc(L * D * sizeof(float));
    s->kv_blocks = malloc(Nk * D * D * sizeof(float));
    s->ksum_blocks = malloc(Nk * D * sizeof(float));
    s->kv_comp = malloc(D * D * sizeof(float));
    s->ksum_comp = malloc(D * sizeof(float));
    s->den = malloc(bq * sizeof(float));
    int exact = p->quant == SLA2_QUANT_NONE;
    size_t kept_keys = (size_t)p->kept_per_q_block * bk;
    s->kept_scores = exact ? malloc(bq * kept_keys * sizeof(float)) : NULL;
    s->kept_k = exact ? malloc(kept_keys * D * sizeof(float)) : NULL;
    s->kept_v = exact ? malloc(kept_keys * D * sizeof(float)) : NULL;
    s->kv_total = malloc(D * D * sizeof(double));
    s->ksum_total = malloc(D * sizeof(double));
    int ok = s->router && s->out_sparse && s->out_linear && s->out && s->scores && s->block_out && s->acc &&
             s->row_max && s->row_sum && s->phi_q && s->phi_k && s->kv_blocks && s->ksum_blocks && s->kv_comp &&
             s->ksum_comp && s->den && s->kv_total && s->ksum_total &&
             (!exact || (s->kept_scores && s->kept_k && s->kept_v));
    if (!ok)
        scratch_free(s);
    return ok;
}

/* Whether scratch allocated for `had` serves problem p. */
static int scratch_fits(const sla2_attention_problem *had, const sla2_attention_problem *p)
{
    return had->seq_len == p->seq_len && had->head_dim == p->head_dim && had->block_q == p->block_q &&
           had->block_k == p->block_k && had->kept_per_q_block == p->kept_per_q_block &&
           (had->quant == SLA2_QUANT_NONE) == (p->quant == SLA2_QUANT_NONE);
}

/* The context keeps one scratch per thread between calls: a DiT calls the
 * operator with the same sizes every layer and step, and fresh large
 * allocations would page-fault on every call. */
struct cpu_scratch_cache {
    int count;
    fast_scratch *per_thread;
};

void cpu_scratch_cache_free(cpu_scratch_cache *cache)
{
    if (!cache)
        return;
    for (int i = 0; i < cache->count; i++)
        if (cache->per_thread[i].w.q)
            scratch_free(&cache->per_thread[i]);
    free(cache->per_thread);
    free(cache);
}

static fast_scratch *thread_scratch(cpu_scratch_cache *cache, int thread, const sla2_attention_problem *p)
{
    fast_scratch *s = &cache->per_thread[thread];
    if (s->w.q && scratch_fits(&s->shape, p))
        return s;
    if (s->w.q)
        scratch_free(s);
    return scratch_alloc(p, s) ? s : NULL;
}

/* Online softmax over one query block's kept key blocks, GEMMs for Q.K^T and P.V. */
static void sparse_query_block(const sla2_attention_problem *p, fast_scratch *s, int64_t i)
{
    const head_work *w = &s->w;
    int64_t L = p->seq_len, D = p->head_dim, bk = p->block_k;
    int64_t first_row = i * p->block_q, rows = L - first_row < p->block_q ? L - first_row : p->block_q;
    int quantised = p->quant != SLA2_QUANT_NONE;
    const float *q = (quantised ? w->q_int8 : w->q) + first_row * D;
    const float *keys = quantised ? w->k_int8 : w->k;
    const float *values = quantised ? w->v_rounded : w->v;
    for (int64_t r = 0; r < rows; r++)
        s->row_max[r] = -INFINITY, s->row_sum[r] = 0.0f;
    memset(s->acc, 0, (size_t)(rows * D) * sizeof(float));

    for (int64_t n = 0; n < p->kept_per_q_block; n++) {
        int64_t j = w->kept[i * p->kept_per_q_block + n];
        int64_t first_col = j * bk, cols = L - first_col < bk ? L - first_col : bk;
        /* INT8 values held in floats: every partial sum is an integer below
         * 2^24 (127 * 127 * 128), so sgemm computes the INT32 dot exactly. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, (int)D, 1.0f, q, (int)D,
                    keys + first_col * D, (int)D, 0.0f, s->scores, (int)bk);
        float factor = quantised ? w->q_scale[i] * w->k_scale[j] * p->softmax_scale : p->softmax_scale;
        for (int64_t r = 0; r < rows; r++) {
            float *srow = s->scores + r * bk;
            float block_max = -INFINITY;
            for (int64_t c = 0; c < cols; c++)
                block_max = fmaxf(block_max, srow[c] *= factor);
            float new_max = fmaxf(s->row_max[r], block_max);
            float correction = s->row_max[r] == -INFINITY ? 0.0f : expf(s->row_max[r] - new_max);
            float sum = 0.0f;
            for (int64_t c = 0; c < cols; c++) {
                float prob = expf(srow[c] - new_max);
                sum += prob;
                srow[c] = p->quant == SLA2_QUANT_NONE   ? prob
                          : p->quant == SLA2_QUANT_INT8 ? sla2_round_f16(prob)
                                                        : sla2_round_e4m3(prob * SLA2_FP8_MAX);
            }
            s->row_sum[r] = s->row_sum[r] * correction + sum;
            s->row_max[r] = new_max;
            for (int64_t d = 0; d < D; d++)
                s->acc[r * D + d] *= correction;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)D, (int)cols, 1.0f, s->scores,
                    (int)bk, values + first_col * D, (int)D, 0.0f, s->block_out, (int)D);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t d = 0; d < D; d++)
                s->acc[r * D + d] += p->quant == SLA2_QUANT_INT8_FP8
                                         ? s->block_out[r * D + d] * w->v_scale[d] / SLA2_FP8_MAX
                                         : s->block_out[r * D + d];
    }
    float *out = s->out_sparse + first_row * D;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t d = 0; d < D; d++)
            out[r * D + d] = s->acc[r * D + d] / s->row_sum[r];
}

/* Mode NONE: nothing is rounded per block, so the kept blocks' keys side by
 * side give every score of the query block in one GEMM, then one softmax and
 * one GEMM for P.V. Large GEMMs instead of a small pair per kept block: the
 * dense mode (64 blocks) runs several times faster. Equal to the online
 * softmax up to float rounding. */
static void exact_query_block(const sla2_attention_problem *p, fast_scratch *s, int64_t i)
{
    const head_work *w = &s->w;
    int64_t L = p->seq_len, D = p->head_dim, bk = p->block_k, kept = p->kept_per_q_block;
    int64_t first_row = i * p->block_q, rows = L - first_row < p->block_q ? L - first_row : p->block_q;
    const int32_t *list = w->kept + i * kept;
    int contiguous = 1;
    for (int64_t n = 1; n < kept; n++)
        contiguous &= list[n] == list[0] + n;
    /* Kept keys: L is the end of the last block, which may be partial. */
    int64_t cols = 0;
    const float *keys = w->k + (int64_t)list[0] * bk * D, *values = w->v + (int64_t)list[0] * bk * D;
    for (int64_t n = 0; n < kept; n++) {
        int64_t first = (int64_t)list[n] * bk, count = L - first < bk ? L - first : bk;
        if (!contiguous) {
            memcpy(s->kept_k + cols * D, w->k + first * D, (size_t)(count * D) * sizeof(float));
            memcpy(s->kept_v + cols * D, w->v + first * D, (size_t)(count * D) * sizeof(float));
        }
        cols += count;
    }
    if (!contiguous)
        keys = s->kept_k, values = s->kept_v;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, (int)D, p->softmax_scale,
                w->q + first_row * D, (int)D, keys, (int)D, 0.0f, s->kept_scores, (int)cols);
    for (int64_t r = 0; r < rows; r++) {
        float *srow = s->kept_scores + r * cols, row_max = -INFINITY, sum = 0.0f;
        /* omp simd: lets the reductions run in vectors (a fixed order per build). */
#pragma omp simd reduction(max : row_max)
        for (int64_t c = 0; c < cols; c++)
            row_max = srow[c] > row_max ? srow[c] : row_max;
#pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < cols; c++)
            sum += (srow[c] = sla2_exp_nonpositive(srow[c] - row_max));
        s->row_sum[r] = sum;
    }
    float *out = s->out_sparse + first_row * D;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)D, (int)cols, 1.0f, s->kept_scores,
                (int)cols, values, (int)D, 0.0f, out, (int)D);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t d = 0; d < D; d++)
            out[r * D + d] /= s->row_sum[r];
}

/* Per-key-block sums S_j = phi(K_j)^T V_j and z_j, and their totals. */
static void linear_block_sums(const sla2_attention_problem *p, fast_scratch *s)
{
    int64_t L = p->seq_len, D = p->head_dim, bk = p->block_k;
    memset(s->kv_total, 0, (size_t)(D * D) * sizeof(double));
    memset(s->ksum_total, 0, (size_t)D * sizeof(double));
    for (int64_t j = 0; j < p->num_k_blocks; j++) {
        int64_t first = j * bk, rows = L - first < bk ? L - first : bk;
        float *kv = s->kv_blocks + j * D * D, *ksum = s->ksum_blocks + j * D;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)D, (int)D, (int)rows, 1.0f, s->phi_k + first * D,
                    (int)D, s->w.v + first * D, (int)D, 0.0f, kv, (int)D);
        for (int64_t d = 0; d < D; d++) {
            float sum = 0.0f;
            for (int64_t r = 0; r < rows; r++)
                sum += s->phi_k[(first + r) * D + d];
            ksum[d] = sum;
            s->ksum_total[d] += sum;
        }
        for (int64_t e = 0; e < D * D; e++)
            s->kv_total[e] += kv[e];
    }
}

/* O_l for one query block: the totals minus the kept blocks' terms. */
static void linear_query_block(const sla2_attention_problem *p, fast_scratch *s, int64_t i)
{
    int64_t L = p->seq_len, D = p->head_dim;
    int64_t first_row = i * p->block_q, rows = L - first_row < p->block_q ? L - first_row : p->block_q;
    float *out = s->out_linear + first_row * D;
    int sla_v1 = p->proj_l_weight != NULL;
    if (!sla_v1 && p->kept_per_q_block == p->num_k_blocks) {
        memset(out, 0, (size_t)(rows * D) * sizeof(float)); /* empty complement */
        return;
    }
    for (int64_t e = 0; e < D * D; e++) {
        double sum = s->kv_total[e];
        for (int64_t n = 0; !sla_v1 && n < p->kept_per_q_block; n++)
            sum -= s->kv_blocks[(int64_t)s->w.kept[i * p->kept_per_q_block + n] * D * D + e];
        s->kv_comp[e] = (float)sum;
    }
    for (int64_t d = 0; d < D; d++) {
        double sum = s->ksum_total[d];
        for (int64_t n = 0; !sla_v1 && n < p->kept_per_q_block; n++)
            sum -= s->ksum_blocks[(int64_t)s->w.kept[i * p->kept_per_q_block + n] * D + d];
        s->ksum_comp[d] = (float)sum;
    }
    const float *phi_q = s->phi_q + first_row * D;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)D, (int)D, 1.0f, phi_q, (int)D,
                s->kv_comp, (int)D, 0.0f, out, (int)D);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows, (int)D, 1.0f, phi_q, (int)D, s->ksum_comp, 1, 0.0f,
                s->den, 1);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t d = 0; d < D; d++)
            out[r * D + d] /= s->den[r] + LINEAR_EPS;
}

/* phase_ms: NULL, or this thread's [SLA2_NUM_PHASES] sums. */
static double fast_head(const sla2_attention_problem *p, fast_scratch *s, int64_t b, int64_t h, float *alpha_blocks,
                        double *phase_ms)
{
    head_prepare(p, b, h, &s->w, s->router, phase_ms);
    double mark = phase_ms ? cpu_clock_ms() : 0.0;
    feature_map_rows(p->feature_map, s->w.q, p->seq_len, p->head_dim, s->phi_q);
    feature_map_rows(p->feature_map, s->w.k, p->seq_len, p->head_dim, s->phi_k);
    linear_block_sums(p, s);
    cpu_lap(phase_ms, SLA2_PHASE_LINEAR, &mark);
    for (int64_t i = 0; i < p->num_q_blocks; i++) {
        if (p->quant == SLA2_QUANT_NONE)
            exact_query_block(p, s, i);
        else
            sparse_query_block(p, s, i);
        cpu_lap(phase_ms, SLA2_PHASE_SPARSE, &mark);
        linear_query_block(p, s, i);
        cpu_lap(phase_ms, SLA2_PHASE_LINEAR, &mark);
    }
    double alpha_sum = mix_alpha(p, h, s->w.q, s->out_sparse, s->out_linear, s->out, alpha_blocks);
    cpu_lap(phase_ms, SLA2_PHASE_MIX, &mark);
    head_store(p->out, b, h, s->out);
    return alpha_sum;
}

sla2_status cpu_attention_fast(sla2_context *ctx, const sla2_attention_problem *p, sla2_attention_result *result)
{
    int64_t pairs = p->batch * p->heads;
    int threads = (int64_t)ctx->num_threads < pairs ? ctx->num_threads : (int)pairs;
    cpu_scratch_cache **cache_slot = (cpu_scratch_cache **)&ctx->backend_state;
    if (!*cache_slot || (*cache_slot)->count < threads) {
        cpu_scratch_cache_free(*cache_slot);
        *cache_slot = calloc(1, sizeof **cache_slot);
        if (*cache_slot)
            (*cache_slot)->per_thread = calloc((size_t)threads, sizeof(fast_scratch));
        if (!*cache_slot || !(*cache_slot)->per_thread) {
            free(*cache_slot);
            *cache_slot = NULL;
            return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for the CPU workspaces");
        }
        (*cache_slot)->count = threads;
    }
    cpu_scratch_cache *cache = *cache_slot;
    size_t mask_elems = (size_t)(p->num_q_blocks * p->num_k_blocks);
    double alpha_sum = 0.0, phase_ms[SLA2_NUM_PHASES] = {0};
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(+ : alpha_sum, phase_ms[:SLA2_NUM_PHASES])
    {
        fast_scratch *s = thread_scratch(cache, omp_get_thread_num(), p);
        if (!s) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp barrier
        int any_failed;
#pragma omp atomic read
        any_failed = failed;
        if (!any_failed) {
#pragma omp for schedule(dynamic, 1)
            for (int64_t pair = 0; pair < pairs; pair++) {
                int64_t b = pair / p->heads, h = pair % p->heads;
                alpha_sum += fast_head(p, s, b, h, result->alpha_blocks ? result->alpha_blocks + pair * p->num_q_blocks : NULL,
                                       result->time_phases ? phase_ms : NULL);
                if (result->block_mask)
                    memcpy(result->block_mask + pair * mask_elems, s->w.mask, mask_elems);
            }
        }
    }
    if (failed)
        return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for the CPU workspaces (%d threads, L = %lld)",
                         threads, (long long)p->seq_len);
    result->alpha_blocks_written = result->alpha_blocks != NULL;
    result->mean_alpha = alpha_sum / (double)(pairs * p->seq_len);
    /* Each thread's clock ran in parallel: a phase's share of the call's wall
     * time is its threads' sum over their number (which keeps the phases'
     * sum within the wall time). */
    for (int i = 0; result->time_phases && i < SLA2_NUM_PHASES; i++)
        result->phase_ms[i] = phase_ms[i] / threads;
    return SLA2_OK;
}
