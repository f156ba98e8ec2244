/* The linear branch over the key blocks the router left out
 * (ARCHITECTURE.md section 2, "Linear branch"). */
#include "cpu_attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LINEAR_EPS 1e-6

void feature_map_rows(sla2_feature_map map, const float *x, int64_t rows, int64_t D, float *phi)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *in = x + r * D;
        float *o = phi + r * D;
        if (map == SLA2_FEATURE_SOFTMAX) {
            float max_v = -INFINITY;
            for (int64_t d = 0; d < D; d++)
                max_v = fmaxf(max_v, in[d]);
            double sum = 0.0;
            for (int64_t d = 0; d < D; d++)
                sum += (o[d] = expf(in[d] - max_v));
            for (int64_t d = 0; d < D; d++)
                o[d] = (float)(o[d] / sum);
        } else if (map == SLA2_FEATURE_ELU) {
            for (int64_t d = 0; d < D; d++)
                o[d] = in[d] > 0.0f ? in[d] + 1.0f : expf(in[d]);
        } else {
            for (int64_t d = 0; d < D; d++)
                o[d] = in[d] > 0.0f ? in[d] : 0.0f;
        }
    }
}

/* The reference sums phi(K_j)^T V_j and phi(K_j) directly over the blocks
 * each query block did not keep (or over all blocks for SLA v1), in double:
 * no cancellation to reason about, and an empty complement gives exactly 0. */
int linear_branch(const sla2_attention_problem *p, const head_work *w, float *out_linear)
{
    int64_t L = p->seq_len, D = p->head_dim, bq = p->block_q, bk = p->block_k;
    float *phi_q = malloc((size_t)(L * D) * sizeof *phi_q);
    float *phi_k = malloc((size_t)(L * D) * sizeof *phi_k);
    double *kv = malloc((size_t)(D * D) * sizeof *kv);
    double *ksum = malloc((size_t)D * sizeof *ksum);
    int ok = phi_q && phi_k && kv && ksum;
    if (!ok)
        goto done;
    feature_map_rows(p->feature_map, w->q, L, D, phi_q);
    feature_map_rows(p->feature_map, w->k, L, D, phi_k);
    int sla_v1 = p->proj_l_weight != NULL;
    for (int64_t i = 0; i < p->num_q_blocks; i++) {
        memset(kv, 0, (size_t)(D * D) * sizeof *kv);
        memset(ksum, 0, (size_t)D * sizeof *ksum);
        for (int64_t c = 0; c < L; c++) {
            if (!sla_v1 && w->mask[i * p->num_k_blocks + c / bk])
                continue;
            for (int64_t d = 0; d < D; d++) {
                ksum[d] += phi_k[c * D + d];
                for (int64_t e = 0; e < D; e++)
                    kv[d * D + e] += (double)phi_k[c * D + d] * w->v[c * D + e];
            }
        }
        int64_t last = (i + 1) * bq < L ? (i + 1) * bq : L;
        for (int64_t r = i * bq; r < last; r++) {
            double den = LINEAR_EPS;
            for (int64_t d = 0; d < D; d++)
                den += phi_q[r * D + d] * ksum[d];
            for (int64_t e = 0; e < D; e++) {
                double num = 0.0;
                for (int64_t d = 0; d < D; d++)
                    num += phi_q[r * D + d] * kv[d * D + e];
                out_linear[r * D + e] = (float)(num / den);
            }
        }
    }
done:
    free(phi_q);
    free(phi_k);
    free(kv);
    free(ksum);
    return ok;
}
