/* The learnable router: block means, K smoothing, projections, scores and
 * the per-query-block hard top-k (ARCHITECTURE.md section 2, "Router"). */
#include "cpu_attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void router_smooth_keys(const float *k, int64_t L, int64_t D, float *k_smooth)
{
    for (int64_t d = 0; d < D; d++) {
        double sum = 0.0;
        for (int64_t r = 0; r < L; r++)
            sum += k[r * D + d];
        float mean = (float)(sum / (double)L);
        for (int64_t r = 0; r < L; r++)
            k_smooth[r * D + d] = k[r * D + d] - mean;
    }
}

void router_pool_blocks(const float *x, int64_t L, int64_t D, int block, float *pooled)
{
    int64_t num_blocks = (L + block - 1) / block;
    for (int64_t j = 0; j < num_blocks; j++) {
        int64_t first = j * block, rows = L - first < block ? L - first : block;
        for (int64_t d = 0; d < D; d++) {
            double sum = 0.0;
            for (int64_t r = 0; r < rows; r++)
                sum += x[(first + r) * D + d];
            pooled[j * D + d] = (float)(sum / (double)rows);
        }
    }
}

void router_project(const float *pooled, int64_t num_blocks, int64_t D, const float *weight, float *projected)
{
    if (!weight) {
        memcpy(projected, pooled, (size_t)(num_blocks * D) * sizeof *projected);
        return;
    }
    for (int64_t j = 0; j < num_blocks; j++)
        for (int64_t e = 0; e < D; e++) {
            double sum = 0.0;
            for (int64_t d = 0; d < D; d++)
                sum += (double)pooled[j * D + d] * weight[d * D + e];
            projected[j * D + e] = (float)sum;
        }
}

void router_scores(const float *q_proj, int64_t num_q_blocks, const float *k_proj, int64_t num_k_blocks,
                   int64_t D, float *scores)
{
    double inv_sqrt_d = 1.0 / sqrt((double)D);
    for (int64_t i = 0; i < num_q_blocks; i++)
        for (int64_t j = 0; j < num_k_blocks; j++) {
            double sum = 0.0;
            for (int64_t d = 0; d < D; d++)
                sum += (double)q_proj[i * D + d] * k_proj[j * D + d];
            scores[i * num_k_blocks + j] = (float)(sum * inv_sqrt_d);
        }
}

/* Selection by repeated scans: obviously right, and Nk is at most a few
 * thousand. NaN scores count as the lowest. */
void router_topk(const float *scores, int64_t num_q_blocks, int64_t num_k_blocks, int64_t kept,
                 int32_t *kept_idx, uint8_t *mask)
{
    for (int64_t i = 0; i < num_q_blocks; i++) {
        const float *row = scores + i * num_k_blocks;
        uint8_t *row_mask = mask + i * num_k_blocks;
        memset(row_mask, 0, (size_t)num_k_blocks);
        for (int64_t n = 0; n < kept; n++) {
            int64_t best = -1;
            for (int64_t j = 0; j < num_k_blocks; j++) {
                if (row_mask[j])
                    continue;
                if (best < 0 || row[j] > row[best] || (isnan(row[best]) && !isnan(row[j])))
                    best = j;
            }
            row_mask[best] = 1;
        }
        int64_t n = 0;
        for (int64_t j = 0; j < num_k_blocks; j++)
            if (row_mask[j])
                kept_idx[i * kept + n++] = (int32_t)j;
    }
}

size_t router_scratch_elems(const sla2_attention_problem *p)
{
    return (size_t)((p->num_q_blocks + p->num_k_blocks) * p->head_dim * 2 + p->num_q_blocks * p->num_k_blocks);
}

void router_route_head(const sla2_attention_problem *p, int64_t head, const float *q, const float *k_smooth,
                       float *scratch, int32_t *kept_idx, uint8_t *mask)
{
    int64_t D = p->head_dim, Nq = p->num_q_blocks, Nk = p->num_k_blocks;
    float *q_pooled = scratch, *k_pooled = q_pooled + Nq * D;
    float *q_proj = k_pooled + Nk * D, *k_proj = q_proj + Nq * D;
    float *scores = k_proj + Nk * D;
    const float *wq = p->router_q ? p->router_q + (p->router_q_per_head ? head * D * D : 0) : NULL;
    const float *wk = p->router_k ? p->router_k + (p->router_k_per_head ? head * D * D : 0) : NULL;
    router_pool_blocks(q, p->seq_len, D, p->block_q, q_pooled);
    router_pool_blocks(k_smooth, p->seq_len, D, p->block_k, k_pooled);
    router_project(q_pooled, Nq, D, wq, q_proj);
    router_project(k_pooled, Nk, D, wk, k_proj);
    router_scores(q_proj, Nq, k_proj, Nk, D, scores);
    router_topk(scores, Nq, Nk, p->kept_per_q_block, kept_idx, mask);
}
