#include "test_util.h"

#include "model/safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void rng_seed(test_rng *rng, uint64_t seed)
{
    rng->state = seed * 0x9E3779B97F4A7C15ull + 1;
}

static uint64_t rng_next(test_rng *rng)
{
    rng->state ^= rng->state >> 12;
    rng->state ^= rng->state << 25;
    rng->state ^= rng->state >> 27;
    return rng->state * 0x2545F4914F6CDD1Dull;
}

float rng_uniform(test_rng *rng)
{
    return (float)(rng_next(rng) >> 40) / 16777216.0f;
}

float rng_normal(test_rng *rng)
{
    float u1 = rng_uniform(rng), u2 = rng_uniform(rng);
    return sqrtf(-2.0f * logf(u1 + 1e-12f)) * cosf(6.2831853f * u2);
}

void fill_normal(test_rng *rng, float *x, size_t n, float stddev)
{
    for (size_t i = 0; i < n; i++)
        x[i] = rng_normal(rng) * stddev;
}

void fill_nan(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
}

double rel_l2(const float *x, const float *ref, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    if (isnan(num))
        return INFINITY;
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

double cosine(const float *x, const float *ref, size_t n)
{
    double xy = 0.0, xx = 0.0, yy = 0.0;
    for (size_t i = 0; i < n; i++) {
        xy += (double)x[i] * ref[i];
        xx += (double)x[i] * x[i];
        yy += (double)ref[i] * ref[i];
    }
    return xy / (sqrt(xx * yy) + 1e-300);
}

int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

void dense_attention_double(const float *q, const float *k, const float *v, int64_t B, int64_t H, int64_t L,
                            int64_t D, double scale, float *out)
{
    double *p = malloc((size_t)L * sizeof *p);
    for (int64_t bh = 0; bh < B * H; bh++) {
        const float *qh = q + bh * L * D, *kh = k + bh * L * D, *vh = v + bh * L * D;
        for (int64_t r = 0; r < L; r++) {
            double max_s = -INFINITY, sum = 0.0;
            for (int64_t c = 0; c < L; c++) {
                double s = 0.0;
                for (int64_t d = 0; d < D; d++)
                    s += (double)qh[r * D + d] * kh[c * D + d];
                p[c] = s * scale;
                if (p[c] > max_s)
                    max_s = p[c];
            }
            for (int64_t c = 0; c < L; c++)
                sum += (p[c] = exp(p[c] - max_s));
            for (int64_t d = 0; d < D; d++) {
                double o = 0.0;
                for (int64_t c = 0; c < L; c++)
                    o += p[c] * vh[c * D + d];
                out[(bh * L + r) * D + d] = (float)(o / sum);
            }
        }
    }
    free(p);
}

sla2_context *test_cpu_context(int reference)
{
    sla2_context_options options;
    sla2_context_options_default(&options);
    options.backend = SLA2_BACKEND_CPU;
    options.cpu_reference = reference;
    sla2_context *ctx = NULL;
    char message[256];
    sla2_status s = sla2_context_create(&options, &ctx, message, sizeof message);
    ck_assert_msg(s == SLA2_OK, "context: %s", message);
    return ctx;
}

int run_suite(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

float *read_tensor(const sla2_safetensors *st, const char *name, size_t *elems)
{
    const sla2_st_tensor *t = sla2_safetensors_find(st, name);
    ck_assert_msg(t != NULL, "no tensor %s", name);
    float *data = malloc((t->num_elems ? t->num_elems : 1) * sizeof *data);
    char err[256];
    ck_assert_msg(sla2_safetensors_read_f32(st, t, data, t->num_elems, err, sizeof err) == SLA2_OK, "%s", err);
    if (elems)
        *elems = t->num_elems;
    return data;
}
