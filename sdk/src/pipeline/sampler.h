/* Flow-matching samplers: Wan's shifted sigma schedule, Euler, and UniPC
 * (bh2, order 2, predictor-corrector, lower order at the last step), as
 * Wan's FlowUniPCMultistepScheduler computes them. The model predicts the
 * velocity v = noise - x0; x0 = x - sigma v. */
#ifndef SLA2_SAMPLER_H
#define SLA2_SAMPLER_H

#include <stddef.h>

/* sigmas[0..steps]: linspace(0.999, 0, steps + 1)[:-1] shifted by
 * shift*s/(1+(shift-1)s), then a final 0. The model's timestep is 1000 sigma. */
void flow_sigmas(int steps, double shift, double *sigmas);

typedef struct unipc_state {
    size_t n;
    int steps;
    const double *sigmas;
    int lower_order_nums, this_order, step_index;
    float *model_outputs[2]; /* x0 predictions, oldest first */
    float *last_sample;
    float *scratch;
} unipc_state;

int unipc_init(unipc_state *s, size_t n, int steps, const double *sigmas);
void unipc_free(unipc_state *s);
/* One step: sample (x at sigmas[step]) becomes x at sigmas[step + 1]. */
void unipc_step(unipc_state *s, const float *velocity, float *sample);

/* x += (sigma_next - sigma) v */
void euler_step(const float *velocity, float *sample, size_t n, double sigma, double sigma_next);

#endif
