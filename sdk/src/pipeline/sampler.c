#include "pipeline/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void flow_sigmas(int steps, double shift, double *sigmas)
{
    const double sigma_max = 0.999, sigma_min = 0.0; /* 1 - linspace(1, 1/1000, 1000) */
    for (int i = 0; i < steps; i++) {
        double s = sigma_max + (sigma_min - sigma_max) * (double)i / (double)steps;
        sigmas[i] = shift * s / (1.0 + (shift - 1.0) * s);
    }
    sigmas[steps] = 0.0;
}

void euler_step(const float *velocity, float *sample, size_t n, double sigma, double sigma_next)
{
    float dt = (float)(sigma_next - sigma);
    for (size_t i = 0; i < n; i++)
        sample[i] += dt * velocity[i];
}

int unipc_init(unipc_state *s, size_t n, int steps, const double *sigmas)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->steps = steps;
    s->sigmas = sigmas;
    s->model_outputs[0] = calloc(n, sizeof(float));
    s->model_outputs[1] = calloc(n, sizeof(float));
    s->last_sample = calloc(n, sizeof(float));
    s->scratch = calloc(n, sizeof(float));
    if (!s->model_outputs[0] || !s->model_outputs[1] || !s->last_sample || !s->scratch) {
        unipc_free(s);
        return 0;
    }
    return 1;
}

void unipc_free(unipc_state *s)
{
    free(s->model_outputs[0]), free(s->model_outputs[1]), free(s->last_sample), free(s->scratch);
    memset(s, 0, sizeof *s);
}

static double lambda_of(double sigma)
{
    return log(1.0 - sigma) - log(sigma); /* +inf at sigma = 0 */
}

/* The coefficients both updates share: h_phi_1 = expm1(-h), B_h = expm1(-h)
 * (bh2), and for order 2 the b vector of the linear system. */
typedef struct bh_coeffs {
    double h_phi_1, B_h, b[2];
} bh_coeffs;

static bh_coeffs bh_coefficients(double h)
{
    bh_coeffs c;
    double hh = -h;
    c.h_phi_1 = expm1(hh);
    c.B_h = expm1(hh);
    double h_phi_k = c.h_phi_1 / hh - 1.0, factorial = 1.0;
    for (int i = 1; i <= 2; i++) {
        c.b[i - 1] = h_phi_k * factorial / c.B_h;
        factorial *= (double)(i + 1);
        h_phi_k = h_phi_k / hh - 1.0 / factorial;
    }
    return c;
}

/* Predictor: x_t from x at sigma_s0 with the newest x0 prediction m0 and, for
 * order 2, the one before it. */
static void predictor(unipc_state *s, const float *x, float *x_t, int order)
{
    double sigma_s0 = s->sigmas[s->step_index], sigma_t = s->sigmas[s->step_index + 1];
    double alpha_t = 1.0 - sigma_t, lambda_s0 = lambda_of(sigma_s0);
    double h = lambda_of(sigma_t) - lambda_s0;
    bh_coeffs c = bh_coefficients(h);
    const float *m0 = s->model_outputs[1], *m1 = s->model_outputs[0];
    double rk = order == 2 ? (lambda_of(s->sigmas[s->step_index - 1]) - lambda_s0) / h : 1.0;
    float ratio = (float)(sigma_t / sigma_s0), a = (float)(alpha_t * c.h_phi_1);
    float pred = order == 2 ? (float)(alpha_t * c.B_h * 0.5 / rk) : 0.0f; /* rhos_p = [0.5] */
    for (size_t i = 0; i < s->n; i++) {
        float value = ratio * x[i] - a * m0[i];
        if (order == 2)
            value -= pred * (m1[i] - m0[i]);
        x_t[i] = value;
    }
}

/* Corrector: refines this_sample (x at sigmas[step_index]) with the x0
 * prediction made there (model_t). */
static void corrector(unipc_state *s, const float *model_t, float *this_sample, int order)
{
    double sigma_t = s->sigmas[s->step_index], sigma_s0 = s->sigmas[s->step_index - 1];
    double alpha_t = 1.0 - sigma_t, lambda_s0 = lambda_of(sigma_s0);
    double h = lambda_of(sigma_t) - lambda_s0;
    bh_coeffs c = bh_coefficients(h);
    const float *m0 = s->model_outputs[1], *m1 = s->model_outputs[0];
    double rho_d1 = 0.0, rho_t = 0.5, rk = 1.0;
    if (order == 2) {
        /* solve [[1, 1], [rk, 1]] rho = b */
        rk = (lambda_of(s->sigmas[s->step_index - 2]) - lambda_s0) / h;
        double det = 1.0 - rk;
        rho_d1 = (c.b[0] - c.b[1]) / det;
        rho_t = (c.b[1] - rk * c.b[0]) / det;
    }
    float ratio = (float)(sigma_t / sigma_s0), a = (float)(alpha_t * c.h_phi_1);
    float k_d1 = (float)(alpha_t * c.B_h * rho_d1 / rk), k_t = (float)(alpha_t * c.B_h * rho_t);
    const float *x = s->last_sample;
    for (size_t i = 0; i < s->n; i++) {
        float value = ratio * x[i] - a * m0[i];
        if (order == 2)
            value -= k_d1 * (m1[i] - m0[i]);
        this_sample[i] = value - k_t * (model_t[i] - m0[i]);
    }
}

void unipc_step(unipc_state *s, const float *velocity, float *sample)
{
    double sigma = s->sigmas[s->step_index];
    float *x0 = s->scratch;
    for (size_t i = 0; i < s->n; i++)
        x0[i] = sample[i] - (float)sigma * velocity[i];
    if (s->step_index > 0)
        corrector(s, x0, sample, s->this_order);
    /* shift the history: the newest x0 prediction goes last */
    float *oldest = s->model_outputs[0];
    s->model_outputs[0] = s->model_outputs[1];
    s->model_outputs[1] = oldest;
    memcpy(s->model_outputs[1], x0, s->n * sizeof(float));
    int order = s->steps - s->step_index < 2 ? s->steps - s->step_index : 2; /* lower order at the end */
    if (order > s->lower_order_nums + 1)
        order = s->lower_order_nums + 1;
    s->this_order = order;
    memcpy(s->last_sample, sample, s->n * sizeof(float));
    predictor(s, s->last_sample, sample, order);
    if (s->lower_order_nums < 2)
        s->lower_order_nums++;
    s->step_index++;
}
