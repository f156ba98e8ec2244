/* Sampling and the pipeline: the samplers against the exact probability
 * flow of a Gaussian; generation determinism, step callbacks, cancellation,
 * run-time setting changes and argument errors on the small DiT fixture. */
#include "pipeline/sampler.h"
#include "sla2/pipeline.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <unistd.h>

#ifndef FIXTURE_DIR
#error "FIXTURE_DIR must point at tests/fixtures"
#endif

/* Data x0 ~ N(mu, s^2): the flow-matching velocity E[eps - x0 | x_sigma] is
 * known in closed form, and the ODE keeps (x - a mu) / sqrt(a^2 s^2 + sigma^2)
 * constant (a = 1 - sigma), so the exact end point of each start is known. */
static const double MU = 0.7, S = 0.3;

static void gaussian_velocity(const float *x, size_t n, double sigma, float *v)
{
    double a = 1.0 - sigma, var = a * a * S * S + sigma * sigma;
    for (size_t i = 0; i < n; i++) {
        double centred = x[i] - a * MU;
        double e_eps = sigma * centred / var, e_x0 = MU + a * S * S * centred / var;
        v[i] = (float)(e_eps - e_x0);
    }
}

static double sample_error(int use_unipc, int steps)
{
    enum { N = 256 };
    float x[N], v[N], start[N];
    double sigmas[128];
    flow_sigmas(steps, 3.0, sigmas);
    double a0 = 1.0 - sigmas[0], sd0 = sqrt(a0 * a0 * S * S + sigmas[0] * sigmas[0]);
    for (int i = 0; i < N; i++) /* starts at quantiles z in [-3, 3] */
        x[i] = start[i] = (float)(a0 * MU + sd0 * (-3.0 + 6.0 * i / (N - 1)));
    unipc_state state;
    ck_assert(unipc_init(&state, N, steps, sigmas));
    for (int step = 0; step < steps; step++) {
        gaussian_velocity(x, N, sigmas[step], v);
        if (use_unipc)
            unipc_step(&state, v, x);
        else
            euler_step(v, x, N, sigmas[step], sigmas[step + 1]);
    }
    unipc_free(&state);
    double worst = 0;
    for (int i = 0; i < N; i++)
        worst = fmax(worst, fabs(x[i] - (MU + S * (start[i] - a0 * MU) / sd0)));
    return worst;
}

START_TEST(schedule_is_wans_shifted_linspace)
{
    double sigmas[5];
    flow_sigmas(4, 5.0, sigmas);
    ck_assert_double_eq_tol(sigmas[0], 5 * 0.999 / (1 + 4 * 0.999), 1e-12);
    ck_assert_double_eq_tol(sigmas[2], 5 * 0.4995 / (1 + 4 * 0.4995), 1e-12);
    ck_assert(sigmas[4] == 0.0);
}
END_TEST

/* UniPC (order 2) should beat Euler (order 1) by a growing margin. Both
 * keep an O(1/steps) part: the last step jumps to sigma = 0 at order 1 with
 * the x0 prediction (Wan's lower_order_final), so the ratio, not a rate, is
 * checked. Measured: euler 1.8e-1 / 9.5e-2, unipc 1.0e-1 / 1.0e-2 at 20 / 40. */
START_TEST(unipc_follows_the_exact_flow)
{
    double euler20 = sample_error(0, 20), unipc20 = sample_error(1, 20);
    double euler40 = sample_error(0, 40), unipc40 = sample_error(1, 40);
    printf("max error sampling N(0.7, 0.3^2), shift 3: euler %.2e / %.2e, unipc %.2e / %.2e at 20 / 40 steps\n",
           euler20, euler40, unipc20, unipc40);
    ck_assert_msg(unipc20 < euler20 / 1.5, "20 steps: unipc %.3g vs euler %.3g", unipc20, euler20);
    ck_assert_msg(unipc40 < euler40 / 5, "40 steps: unipc %.3g vs euler %.3g", unipc40, euler40);
    ck_assert_msg(unipc40 < 2e-2, "unipc/40 %.3g", unipc40);
}
END_TEST

typedef struct fixture {
    sla2_context *ctx;
    sla2_model *model;
    sla2_pipeline *pipe;
    sla2_model_info info;
    size_t elems;
} fixture;

static void open_fixture(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->ctx = test_cpu_context(0);
    sla2_status s = sla2_model_load(f->ctx, FIXTURE_DIR "/dit/model.yaml", FIXTURE_DIR "/dit/weights.safetensors",
                                    &f->model);
    ck_assert_msg(s == SLA2_OK, "%s", sla2_context_last_error(f->ctx));
    f->info.size = sizeof f->info;
    ck_assert_int_eq(sla2_model_get_info(f->ctx, f->model, &f->info), SLA2_OK);
    ck_assert_int_eq(sla2_pipeline_create(f->ctx, f->model, NULL, &f->pipe), SLA2_OK);
    f->elems = (size_t)f->info.channels * f->info.frames * f->info.height * f->info.width;
}

static void close_fixture(fixture *f)
{
    sla2_pipeline_free(f->pipe);
    sla2_model_free(f->model);
    sla2_context_free(f->ctx);
}

static sla2_generate_options options_for(int64_t seed)
{
    sla2_generate_options o;
    sla2_generate_options_default(&o);
    o.text_embedding_path = FIXTURE_DIR "/dit/io.safetensors";
    o.seed = seed;
    o.steps = 3;
    o.guidance = 3.0;
    return o;
}

typedef struct callback_log {
    int calls, cancel_at;
    int64_t lit_cells, expected_cells;
    sla2_pipeline *pipe;
} callback_log;

static int count_step(void *user, const sla2_step_info *info)
{
    callback_log *log = user;
    log->calls++;
    ck_assert_int_eq(info->step, log->calls);
    ck_assert(info->video != NULL && all_finite(info->video, (size_t)info->channels * info->frames * info->height * info->width));
    for (int layer = 0; layer < info->num_layers; layer++) {
        int64_t cells = info->num_heads * info->mask_q_blocks[layer] * info->mask_k_blocks[layer];
        for (int64_t c = 0; c < cells; c++)
            log->lit_cells += info->block_masks[layer][c];
        log->expected_cells += info->num_heads * info->mask_q_blocks[layer] * info->kept_per_q_block[layer];
    }
    if (log->calls == 1 && log->pipe) {
        /* a change from the callback applies from the next step */
        sla2_layer_attention la = {1.0f, SLA2_QUANT_NONE, 64, 64};
        ck_assert_int_eq(sla2_pipeline_set_layer(log->pipe, 0, &la), SLA2_OK);
    }
    return log->calls == log->cancel_at;
}

START_TEST(generation_is_deterministic_and_reports_steps)
{
    fixture f;
    open_fixture(&f);
    float *a = malloc(f.elems * 4), *b = malloc(f.elems * 4);
    sla2_generate_options o = options_for(5);
    callback_log log = {0};
    o.on_step = count_step, o.user = &log;
    fill_nan(a, f.elems);
    ck_assert_int_eq(sla2_pipeline_generate(f.pipe, &o, a, f.elems), SLA2_OK);
    ck_assert_int_eq(log.calls, 3);
    ck_assert_int_eq(log.lit_cells, log.expected_cells);
    ck_assert(all_finite(a, f.elems));
    fill_nan(b, f.elems);
    o.on_step = NULL;
    ck_assert_int_eq(sla2_pipeline_generate(f.pipe, &o, b, f.elems), SLA2_OK);
    ck_assert(memcmp(a, b, f.elems * 4) == 0);
    o.seed = 6;
    ck_assert_int_eq(sla2_pipeline_generate(f.pipe, &o, b, f.elems), SLA2_OK);
    ck_assert(rel_l2(b, a, f.elems) > 0.1);
    free(a), free(b);
    close_fixture(&f);
}
END_TEST

START_TEST(callback_cancels_and_changes_settings)
{
    fixture f;
    open_fixture(&f);
    float *video = malloc(f.elems * 4);
    for (size_t i = 0; i < f.elems; i++)
        video[i] = 7.0f;
    sla2_generate_options o = options_for(1);
    callback_log log = {.cancel_at = 2, .pipe = f.pipe};
    o.on_step = count_step, o.user = &log;
    ck_assert_int_eq(sla2_pipeline_generate(f.pipe, &o, video, f.elems), SLA2_ERR_CANCELLED);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "cancelled") != NULL);
    ck_assert_int_eq(log.calls, 2);
    for (size_t i = 0; i < f.elems; i++)
        ck_assert(video[i] == 7.0f); /* nothing written on failure */
    sla2_layer_attention la;
    ck_assert_int_eq(sla2_pipeline_get_layer(f.pipe, 0, &la), SLA2_OK);
    ck_assert(la.topk == 1.0f && la.quant == SLA2_QUANT_NONE);
    volatile int cancel = 1;
    o.on_step = NULL;
    o.cancel = &cancel;
    ck_assert_int_eq(sla2_pipeline_generate(f.pipe, &o, video, f.elems), SLA2_ERR_CANCELLED);
    free(video);
    close_fixture(&f);
}
END_TEST

START_TEST(bad_arguments_are_named)
{
    fixture f;
    open_fixture(&f);
    float *video = malloc(f.elems * 4);
    sla2_generate_options o = options_for(1);
    o.steps = 0;
    o.steps = 5000;
    ck_assert_int_eq(sla2_pipeline_generate(f.pipe, &o, video, f.elems), SLA2_ERR_INVALID_VALUE);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "options.steps") != NULL);
    o = options_for(1);
    ck_assert_int_eq(sla2_pipeline_generate(f.pipe, &o, video, f.elems - 1), SLA2_ERR_INVALID_VALUE);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "video_elems") != NULL);
    o.text_embedding_path = NULL;
    o.prompt = "red circle";
    ck_assert_int_eq(sla2_pipeline_generate(f.pipe, &o, video, f.elems), SLA2_ERR_INVALID_VALUE);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "no built-in vocabulary") != NULL);
    o.prompt = NULL;
    o.text_embedding_path = FIXTURE_DIR "/dit/weights.safetensors"; /* no 'context' tensor */
    ck_assert_int_eq(sla2_pipeline_generate(f.pipe, &o, video, f.elems), SLA2_ERR_FORMAT);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "'context'") != NULL);
    o.text_embedding_path = "/nonexistent/ctx.safetensors";
    ck_assert_int_eq(sla2_pipeline_generate(f.pipe, &o, video, f.elems), SLA2_ERR_IO);
    sla2_layer_attention la = {0.0f, SLA2_QUANT_NONE, 64, 64};
    ck_assert_int_eq(sla2_pipeline_set_layer(f.pipe, 0, &la), SLA2_ERR_INVALID_VALUE);
    la.topk = 0.5f;
    ck_assert_int_eq(sla2_pipeline_set_layer(f.pipe, 7, &la), SLA2_ERR_INVALID_VALUE);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "layer 7") != NULL);
    sla2_model *m = NULL;
    ck_assert_int_eq(sla2_model_load(f.ctx, FIXTURE_DIR "/dit/model.yaml", "/nonexistent.safetensors", &m), SLA2_ERR_IO);
    ck_assert(m == NULL);
    ck_assert_int_eq(sla2_model_load(f.ctx, FIXTURE_DIR "/dit/model.yaml", FIXTURE_DIR "/dit/io.safetensors", &m),
                     SLA2_ERR_FORMAT);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "missing") != NULL);
    /* a runtime file asking for another weight storage than the model was loaded with is an error,
       not silently ignored */
    char runtime[] = "/tmp/sla2_test_runtime_XXXXXX";
    int fd = mkstemp(runtime);
    ck_assert(fd >= 0);
    const char yaml[] = "weights: int8\n";
    ck_assert_int_eq(write(fd, yaml, sizeof yaml - 1), (ssize_t)(sizeof yaml - 1));
    close(fd);
    sla2_pipeline *p = NULL;
    ck_assert_int_eq(sla2_pipeline_create(f.ctx, f.model, runtime, &p), SLA2_ERR_INVALID_VALUE);
    ck_assert(p == NULL);
    ck_assert_msg(strstr(sla2_context_last_error(f.ctx), "loaded as f32") != NULL, "%s", sla2_context_last_error(f.ctx));
    unlink(runtime);
    /* callers built before weight_storage existed pass the older size; nothing past it is written */
    union { sla2_model_info info; unsigned char bytes[sizeof(sla2_model_info)]; } old;
    memset(&old, 0xAB, sizeof old);
    old.info.size = offsetof(sla2_model_info, weight_storage);
    ck_assert_int_eq(sla2_model_get_info(f.ctx, f.model, &old.info), SLA2_OK);
    ck_assert_int_eq(old.info.num_layers, f.info.num_layers);
    for (size_t i = offsetof(sla2_model_info, weight_storage); i < sizeof old; i++)
        ck_assert_int_eq(old.bytes[i], 0xAB);
    old.info.size = 3;
    ck_assert_int_eq(sla2_model_get_info(f.ctx, f.model, &old.info), SLA2_ERR_INVALID_VALUE);
    free(video);
    close_fixture(&f);
}
END_TEST

typedef struct timing_log {
    int calls;
    double attention_ms, phases_ms;
} timing_log;

static int check_step_times(void *user, const sla2_step_info *info)
{
    timing_log *log = user;
    log->calls++;
    const double phases[] = {info->router_ms, info->quantise_ms, info->sparse_ms, info->linear_ms, info->mix_ms};
    double sum = 0;
    for (int i = 0; i < 5; i++) {
        /* the CPU runs every phase (quantised mode, alpha mixing), and its clock has nanoseconds */
        ck_assert_msg(isfinite(phases[i]) && phases[i] > 0, "step %d: phase %d took %g ms", info->step, i, phases[i]);
        sum += phases[i];
    }
    /* The phases are disjoint intervals inside each call's own (the fast
     * path divides its threads' sums by their number), so only rounding can
     * exceed: 1 microsecond of slack. */
    ck_assert_msg(sum <= info->attention_ms + 1e-3, "step %d: phases %g ms > attention %g ms", info->step, sum,
                  info->attention_ms);
    ck_assert_msg(info->attention_ms > 0 && info->attention_ms <= info->step_ms, "step %d: attention %g, step %g ms",
                  info->step, info->attention_ms, info->step_ms);
    log->attention_ms += info->attention_ms, log->phases_ms += sum;
    return 0;
}

/* sla2_step_info's time by phase, on the CPU backend (both passes of guidance). */
START_TEST(steps_report_time_by_phase)
{
    fixture f;
    open_fixture(&f);
    float *video = malloc(f.elems * 4);
    sla2_generate_options o = options_for(3);
    timing_log log = {0};
    o.on_step = check_step_times, o.user = &log;
    ck_assert_int_eq(sla2_pipeline_generate(f.pipe, &o, video, f.elems), SLA2_OK);
    ck_assert_int_eq(log.calls, 3);
    printf("3 steps: attention %.2f ms, of which the phases %.2f ms\n", log.attention_ms, log.phases_ms);
    free(video);
    close_fixture(&f);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("pipeline");
    TCase *tc = tcase_create("pipeline");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, schedule_is_wans_shifted_linspace);
    tcase_add_test(tc, unipc_follows_the_exact_flow);
    tcase_add_test(tc, generation_is_deterministic_and_reports_steps);
    tcase_add_test(tc, callback_cancels_and_changes_settings);
    tcase_add_test(tc, steps_report_time_by_phase);
    tcase_add_test(tc, bad_arguments_are_named);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
