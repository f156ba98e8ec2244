/* The sparse branch: exact softmax over the kept key blocks by online
 * softmax, with the quantised modes' rounding simulated exactly
 * (ARCHITECTURE.md section 2, "Sparse branch" and "Quantized sparse branch"). */
#include "cpu_attention.h"
#include "numeric.h"

#include <math.h>
#include <stdlib.h>

void sparse_quantize_blocks(const float *x, int64_t L, int64_t D, int block, float *x_int8, float *scales)
{
    int64_t num_blocks = (L + block - 1) / block;
    for (int64_t j = 0; j < num_blocks; j++) {
        int64_t first = j * block * D, last = (j + 1) * block < L ? (j + 1) * block * D : L * D;
        float max_abs = 0.0f;
        for (int64_t e = first; e < last; e++)
            max_abs = fmaxf(max_abs, fabsf(x[e]));
        float scale = sla2_int8_scale(max_abs);
        scales[j] = scale;
        for (int64_t e = first; e < last; e++)
            x_int8[e] = (float)sla2_quantize_int8(x[e], scale);
    }
}

/* V for P.V: e4m3(v / sv) with sv = max over tokens |v| / 448 per channel
 * (INT8_FP8), or f16(v) (INT8). */
void sparse_round_values(sla2_quant_mode mode, const float *v, int64_t L, int64_t D, float *v_rounded,
                         float *v_scale)
{
    if (mode == SLA2_QUANT_INT8) {
        for (int64_t e = 0; e < L * D; e++)
            v_rounded[e] = sla2_round_f16(v[e]);
        return;
    }
    for (int64_t d = 0; d < D; d++) {
        float max_abs = 0.0f;
        for (int64_t r = 0; r < L; r++)
            max_abs = fmaxf(max_abs, fabsf(v[r * D + d]));
        float sv = max_abs / SLA2_FP8_MAX;
        v_scale[d] = sv;
        for (int64_t r = 0; r < L; r++)
            v_rounded[r * D + d] = sv > 0.0f ? sla2_round_e4m3(v[r * D + d] / sv) : 0.0f;
    }
}

/* Score of query row r against key row c, scaled for the softmax. */
static float score(const sla2_attention_problem *p, const head_work *w, int64_t r, int64_t c)
{
    int64_t D = p->head_dim;
    if (p->quant == SLA2_QUANT_NONE) {
        double dot = 0.0;
        for (int64_t d = 0; d < D; d++)
            dot += (double)w->q[r * D + d] * w->k[c * D + d];
        return (float)dot * p->softmax_scale;
    }
    int32_t dot = 0; /* INT8 x INT8 -> INT32 is exact */
    for (int64_t d = 0; d < D; d++)
        dot += (int32_t)w->q_int8[r * D + d] * (int32_t)w->k_int8[c * D + d];
    float dequant = w->q_scale[r / p->block_q] * w->k_scale[c / p->block_k] * p->softmax_scale;
    return (float)dot * dequant;
}

/* One query row: online softmax over the kept blocks in ascending order. */
static void sparse_row(const sla2_attention_problem *p, const head_work *w, int64_t r, double *acc,
                       double *block_acc, float *out_row)
{
    int64_t D = p->head_dim, L = p->seq_len, bk = p->block_k;
    const int32_t *kept = w->kept + (r / p->block_q) * p->kept_per_q_block;
    float running_max = -INFINITY;
    double row_sum = 0.0;
    for (int64_t d = 0; d < D; d++)
        acc[d] = 0.0;
    for (int64_t n = 0; n < p->kept_per_q_block; n++) {
        int64_t first = (int64_t)kept[n] * bk, last = first + bk < L ? first + bk : L;
        float scores[64];
        float block_max = -INFINITY;
        for (int64_t c = first; c < last; c++) {
            scores[c - first] = score(p, w, r, c);
            block_max = fmaxf(block_max, scores[c - first]);
        }
        float new_max = fmaxf(running_max, block_max);
        double correction = running_max == -INFINITY ? 0.0 : (double)expf(running_max - new_max);
        row_sum *= correction;
        for (int64_t d = 0; d < D; d++) {
            acc[d] *= correction;
            block_acc[d] = 0.0;
        }
        for (int64_t c = first; c < last; c++) {
            float prob = expf(scores[c - first] - new_max);
            row_sum += prob; /* the row sum uses P before rounding */
            const float *v_row = (p->quant == SLA2_QUANT_NONE ? w->v : w->v_rounded) + c * D;
            float prob_used = p->quant == SLA2_QUANT_NONE   ? prob
                              : p->quant == SLA2_QUANT_INT8 ? sla2_round_f16(prob)
                                                            : sla2_round_e4m3(prob * SLA2_FP8_MAX);
            for (int64_t d = 0; d < D; d++)
                block_acc[d] += (double)prob_used * v_row[d];
        }
        for (int64_t d = 0; d < D; d++)
            acc[d] += p->quant == SLA2_QUANT_INT8_FP8 ? block_acc[d] * w->v_scale[d] / SLA2_FP8_MAX : block_acc[d];
        running_max = new_max;
    }
    for (int64_t d = 0; d < D; d++)
        out_row[d] = (float)(acc[d] / row_sum);
}

void sparse_branch(const sla2_attention_problem *p, const head_work *w, float *out_sparse)
{
    int64_t D = p->head_dim;
    double acc[128], block_acc[128];
    for (int64_t r = 0; r < p->seq_len; r++)
        sparse_row(p, w, r, acc, block_acc, out_sparse + r * D);
}
