/* The reference operator: one head at a time, each step of the math by its
 * plain function. Slow and obviously right; the oracle of every test. */
#include "cpu_attention.h"

#include <stdlib.h>
#include <string.h>

sla2_status cpu_attention_reference(sla2_context *ctx, const sla2_attention_problem *p,
                                    sla2_attention_result *result)
{
    size_t elems = (size_t)(p->seq_len * p->head_dim);
    head_work w;
    float *scratch = malloc(router_scratch_elems(p) * sizeof(float));
    float *out_sparse = malloc(elems * sizeof(float)), *out_linear = malloc(elems * sizeof(float));
    float *out = malloc(elems * sizeof(float));
    if (!scratch || !out_sparse || !out_linear || !out || !head_work_alloc(p, &w)) {
        free(scratch), free(out_sparse), free(out_linear), free(out);
        return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for one head's work (L = %lld)",
                         (long long)p->seq_len);
    }
    size_t mask_elems = (size_t)(p->num_q_blocks * p->num_k_blocks);
    double alpha_sum = 0.0, *phase_ms = result->time_phases ? result->phase_ms : NULL, mark = 0.0;
    for (int64_t b = 0; b < p->batch; b++)
        for (int64_t h = 0; h < p->heads; h++) {
            head_prepare(p, b, h, &w, scratch, phase_ms);
            cpu_lap(phase_ms, CPU_UNTIMED, &mark);
            sparse_branch(p, &w, out_sparse);
            cpu_lap(phase_ms, SLA2_PHASE_SPARSE, &mark);
            int linear_ok = linear_branch(p, &w, out_linear);
            cpu_lap(phase_ms, SLA2_PHASE_LINEAR, &mark);
            if (!linear_ok) {
                head_work_free(&w);
                free(scratch), free(out_sparse), free(out_linear), free(out);
                return sla2_fail(ctx, SLA2_ERR_OUT_OF_MEMORY, "out of host memory for the linear branch");
            }
            alpha_sum += mix_alpha(p, h, w.q, out_sparse, out_linear, out,
                                   result->alpha_blocks ? result->alpha_blocks + (b * p->heads + h) * p->num_q_blocks : NULL);
            cpu_lap(phase_ms, SLA2_PHASE_MIX, &mark);
            head_store(p->out, b, h, out);
            if (result->block_mask)
                memcpy(result->block_mask + (b * p->heads + h) * mask_elems, w.mask, mask_elems);
        }
    result->alpha_blocks_written = result->alpha_blocks != NULL;
    result->mean_alpha = alpha_sum / (double)(p->batch * p->heads * p->seq_len);
    head_work_free(&w);
    free(scratch), free(out_sparse), free(out_linear), free(out);
    return SLA2_OK;
}
