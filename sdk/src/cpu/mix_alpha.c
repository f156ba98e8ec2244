/* Mixing the branches: SLA2's learned alpha, or SLA (v1)'s projection of the
 * linear branch (ARCHITECTURE.md section 2 "Mixing", section 6). */
#include "cpu_attention.h"

#include <math.h>

float alpha_of_row(const sla2_attention_problem *p, int64_t head, const float *q_row)
{
    switch (p->alpha_kind) {
    case SLA2_ALPHA_ONE:
        return 1.0f;
    case SLA2_ALPHA_PER_HEAD:
        return 1.0f / (1.0f + expf(-p->alpha[head]));
    case SLA2_ALPHA_PER_ROW: {
        const float *w = p->alpha_w + head * p->head_dim;
        double logit = p->alpha_b[head];
        for (int64_t d = 0; d < p->head_dim; d++)
            logit += (double)q_row[d] * w[d];
        return 1.0f / (1.0f + expf(-(float)logit));
    }
    }
    return 1.0f;
}

double mix_alpha(const sla2_attention_problem *p, int64_t head, const float *q, const float *out_sparse,
                 const float *out_linear, float *out, float *alpha_blocks)
{
    int64_t D = p->head_dim;
    double alpha_sum = 0.0, block_sum = 0.0;
    for (int64_t r = 0; r < p->seq_len; r++) {
        if (alpha_blocks && r > 0 && r % p->block_q == 0) {
            alpha_blocks[r / p->block_q - 1] = (float)(block_sum / p->block_q);
            block_sum = 0.0;
        }
        const float *s = out_sparse + r * D, *l = out_linear + r * D;
        float *o = out + r * D;
        if (p->proj_l_weight) {
            for (int64_t e = 0; e < D; e++) {
                double y = p->proj_l_bias ? p->proj_l_bias[e] : 0.0;
                for (int64_t d = 0; d < D; d++)
                    y += (double)p->proj_l_weight[e * D + d] * l[d];
                o[e] = s[e] + (float)y;
            }
            alpha_sum += 1.0;
            block_sum += 1.0;
            continue;
        }
        float alpha = alpha_of_row(p, head, q + r * D);
        for (int64_t d = 0; d < D; d++)
            o[d] = alpha * s[d] + (1.0f - alpha) * l[d];
        alpha_sum += alpha;
        block_sum += alpha;
    }
    if (alpha_blocks) {
        int64_t last_rows = p->seq_len - (p->num_q_blocks - 1) * p->block_q;
        alpha_blocks[p->num_q_blocks - 1] = (float)(block_sum / (double)last_rows);
    }
    return alpha_sum;
}
