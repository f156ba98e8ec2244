/* The samplers step by step against train/unipc_reference.py, a float64
 * reimplementation of Wan2.1's FlowUniPCMultistepScheduler (bh2, order 2,
 * predict_x0, lower_order_final, final sigma 0) and of flow-matching Euler.
 * Both run the same toy model: the exact x0 posterior mean of a
 * two-Gaussian mixture, so the trajectories must agree to float rounding.
 * The cases cover 1, 2 and 3 steps (warm-up and last-step order rules
 * meeting), shift 1 and 5, and 20 steps. */
#include "pipeline/sampler.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#ifndef FIXTURE_DIR
#error "FIXTURE_DIR must point at tests/fixtures"
#endif

enum { MAX_STEPS = 32, MAX_N = 8 };

/* The mixture of train/unipc_reference.py: weight, mean, standard deviation. */
static const double MIX[2][3] = {{0.5, -0.6, 0.1}, {0.5, 0.9, 0.2}};

/* v = (x - E[x0 | x]) / sigma for x = (1 - sigma) x0 + sigma eps */
static void toy_velocity(const float *x, int n, double sigma, float *v)
{
    double a = 1.0 - sigma;
    for (int i = 0; i < n; i++) {
        double log_w[2], mean[2];
        for (int k = 0; k < 2; k++) {
            double s = MIX[k][2], var = a * a * s * s + sigma * sigma, centred = x[i] - a * MIX[k][1];
            log_w[k] = log(MIX[k][0]) - 0.5 * log(var) - 0.5 * centred * centred / var;
            mean[k] = MIX[k][1] + a * s * s * centred / var;
        }
        double top = fmax(log_w[0], log_w[1]), w0 = exp(log_w[0] - top), w1 = exp(log_w[1] - top);
        v[i] = (float)((x[i] - (w0 * mean[0] + w1 * mean[1]) / (w0 + w1)) / sigma);
    }
}

/* Float32 state over at most 20 steps with |x| <= 2.5: measured worst
 * 7e-7. Mistakes move x far more (measured: dropping the corrector 2e-2,
 * the order-1 corrector's 0.5 as 0.45 7e-4), so 1e-5 separates the two. */
static const double TOLERANCE = 1e-5;

START_TEST(trajectories_match_the_reference)
{
    FILE *f = fopen(FIXTURE_DIR "/sampler/trajectories.txt", "r");
    ck_assert_msg(f != NULL, "cannot open the fixture");
    char line[256];
    ck_assert(fgets(line, sizeof line, f) != NULL); /* comment */
    char sampler[16];
    int steps, n, cases = 0;
    double shift;
    while (fscanf(f, " case %15s %d %lf %d", sampler, &steps, &shift, &n) == 4) {
        ck_assert(steps >= 1 && steps <= MAX_STEPS && n >= 1 && n <= MAX_N);
        double expected[MAX_STEPS + 1][MAX_N], sigmas[MAX_STEPS + 1];
        for (int s = 0; s <= steps; s++)
            for (int i = 0; i < n; i++)
                ck_assert(fscanf(f, "%lf", &expected[s][i]) == 1);
        int unipc = !strcmp(sampler, "unipc");
        float x[MAX_N], v[MAX_N];
        for (int i = 0; i < n; i++)
            x[i] = (float)expected[0][i];
        flow_sigmas(steps, shift, sigmas);
        unipc_state state;
        ck_assert(unipc_init(&state, (size_t)n, steps, sigmas));
        double worst = 0;
        for (int s = 0; s < steps; s++) {
            toy_velocity(x, n, sigmas[s], v);
            if (unipc)
                unipc_step(&state, v, x);
            else
                euler_step(v, x, (size_t)n, sigmas[s], sigmas[s + 1]);
            for (int i = 0; i < n; i++) {
                double err = fabs(x[i] - expected[s + 1][i]);
                worst = fmax(worst, err);
                ck_assert_msg(err < TOLERANCE, "%s, %d steps, shift %g: step %d element %d: %.9g, reference %.9g",
                              sampler, steps, shift, s + 1, i, x[i], expected[s + 1][i]);
            }
        }
        unipc_free(&state);
        printf("%s %2d steps shift %g: worst |x - reference| %.1e\n", sampler, steps, shift, worst);
        cases++;
    }
    fclose(f);
    ck_assert_int_eq(cases, 7);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("reference");
    tcase_add_test(tc, trajectories_match_the_reference);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
