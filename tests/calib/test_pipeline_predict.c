/* What sla2-calib needs from the public pipeline API, on the small DiT
 * fixture: sla2_pipeline_predict (the DiT's prediction for a given x_t at a
 * given step, bit for bit what the generation used), the x_t that the step
 * callback shows, the per-layer exact-dense switch
 * (sla2_pipeline_set/get_layer_dense, `dense: true` in the runtime YAML),
 * and every argument error with its message. */
#include <sla2/pipeline.h>
#include <sla2/sla2.h>

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SLA2_SOURCE_DIR
#error "SLA2_SOURCE_DIR must name the source tree"
#endif
#define FIXTURE SLA2_SOURCE_DIR "/tests/fixtures/dit"

typedef struct fixture {
    sla2_context *ctx;
    sla2_model *model;
    sla2_pipeline *pipe;
    size_t elems;
    int num_layers;
} fixture;

static void open_fixture(fixture *f, const char *runtime)
{
    memset(f, 0, sizeof *f);
    sla2_context_options o;
    sla2_context_options_default(&o);
    o.backend = SLA2_BACKEND_CPU;
    ck_assert_int_eq(sla2_context_create(&o, &f->ctx, NULL, 0), SLA2_OK);
    ck_assert_msg(sla2_model_load(f->ctx, FIXTURE "/model.yaml", FIXTURE "/weights.safetensors", &f->model) == SLA2_OK,
                  "%s", sla2_context_last_error(f->ctx));
    sla2_model_info info = {.size = sizeof info};
    ck_assert_int_eq(sla2_model_get_info(f->ctx, f->model, &info), SLA2_OK);
    f->elems = (size_t)info.channels * info.frames * info.height * info.width;
    f->num_layers = info.num_layers;
    ck_assert_msg(sla2_pipeline_create(f->ctx, f->model, runtime, &f->pipe) == SLA2_OK, "%s",
                  sla2_context_last_error(f->ctx));
}

static void close_fixture(fixture *f)
{
    sla2_pipeline_free(f->pipe);
    sla2_model_free(f->model);
    sla2_context_free(f->ctx);
}

static sla2_generate_options options(double guidance)
{
    sla2_generate_options o;
    sla2_generate_options_default(&o);
    o.text_embedding_path = FIXTURE "/io.safetensors";
    o.seed = 3, o.steps = 3, o.guidance = guidance;
    return o;
}

static float *nan_filled(size_t n)
{
    float *x = malloc(n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
    return x;
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

static double rel_l2(const float *a, const float *b, size_t n)
{
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++)
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), r += (double)b[i] * b[i];
    return sqrt(d / r);
}

/* Keeps step 2's x_t, x0 estimate and sigma. */
typedef struct capture {
    size_t elems;
    float *x_t, *x0;
    double sigma;
} capture;

static int keep_step_2(void *user, const sla2_step_info *info)
{
    capture *c = user;
    ck_assert_ptr_nonnull(info->x_t);
    ck_assert(all_finite(info->x_t, c->elems));
    if (info->step == 2) {
        memcpy(c->x_t, info->x_t, c->elems * sizeof(float));
        memcpy(c->x0, info->video, c->elems * sizeof(float));
        c->sigma = info->sigma;
    }
    return 0;
}

/* The generation's x0 estimate at step 2 is x_t - sigma * v with v the
 * guided prediction; sla2_pipeline_predict from the same x_t must give that
 * v exactly (same code, same inputs: no tolerance), under SLA2 settings. */
START_TEST(predict_is_the_velocity_the_generation_used)
{
    fixture f;
    open_fixture(&f, NULL);
    capture c = {.elems = f.elems, .x_t = nan_filled(f.elems), .x0 = nan_filled(f.elems)};
    float *video = nan_filled(f.elems), *v = nan_filled(f.elems), *v_cond = nan_filled(f.elems);
    sla2_generate_options o = options(3.0);
    o.on_step = keep_step_2, o.user = &c;
    ck_assert_int_eq(sla2_pipeline_generate(f.pipe, &o, video, f.elems), SLA2_OK);
    o.on_step = NULL;
    ck_assert_msg(sla2_pipeline_predict(f.pipe, &o, 2, c.x_t, v, f.elems) == SLA2_OK, "%s",
                  sla2_context_last_error(f.ctx));
    ck_assert(all_finite(v, f.elems));
    for (size_t i = 0; i < f.elems; i++)
        ck_assert_msg(c.x_t[i] - (float)c.sigma * v[i] == c.x0[i], "element %zu: %g vs %g", i,
                      (double)(c.x_t[i] - (float)c.sigma * v[i]), (double)c.x0[i]);
    /* guidance 1: the conditional pass alone, a different prediction */
    o.guidance = 1.0;
    ck_assert_int_eq(sla2_pipeline_predict(f.pipe, &o, 2, c.x_t, v_cond, f.elems), SLA2_OK);
    ck_assert(all_finite(v_cond, f.elems));
    ck_assert_msg(rel_l2(v_cond, v, f.elems) > 1e-3, "guidance had no effect: %g", rel_l2(v_cond, v, f.elems));
    /* in place: x_t and prediction may be the same buffer */
    memcpy(video, c.x_t, f.elems * sizeof(float));
    ck_assert_int_eq(sla2_pipeline_predict(f.pipe, &o, 2, video, video, f.elems), SLA2_OK);
    ck_assert(memcmp(video, v_cond, f.elems * sizeof(float)) == 0);
    free(c.x_t), free(c.x0), free(video), free(v), free(v_cond);
    close_fixture(&f);
}
END_TEST

static void predict_all(fixture *f, const float *x_t, float *out)
{
    sla2_generate_options o = options(1.0);
    for (size_t i = 0; i < f->elems; i++)
        out[i] = NAN;
    ck_assert_msg(sla2_pipeline_predict(f->pipe, &o, 1, x_t, out, f->elems) == SLA2_OK, "%s",
                  sla2_context_last_error(f->ctx));
    ck_assert(all_finite(out, f->elems));
}

/* Every layer dense one by one is the pipeline-wide dense switch, exactly;
 * one layer dense is neither that nor the SLA2 prediction; switching back
 * restores the layer's SLA2 settings. */
START_TEST(layer_dense_switch_runs_exact_attention)
{
    fixture f;
    open_fixture(&f, NULL);
    float *x_t = malloc(f.elems * sizeof *x_t), *sla2 = malloc(f.elems * 4), *dense = malloc(f.elems * 4),
          *one = malloc(f.elems * 4), *again = malloc(f.elems * 4);
    uint32_t state = 12345;
    for (size_t i = 0; i < f.elems; i++) {
        state = state * 1664525u + 1013904223u;
        x_t[i] = ((float)(state >> 8) / 16777216.0f - 0.5f) * 3.0f;
    }
    sla2_layer_attention la = {.topk = 0.5f, .quant = SLA2_QUANT_INT8_FP8, .block_q = 64, .block_k = 64};
    for (int l = 0; l < f.num_layers; l++)
        ck_assert_int_eq(sla2_pipeline_set_layer(f.pipe, l, &la), SLA2_OK);
    predict_all(&f, x_t, sla2);
    sla2_pipeline_set_dense(f.pipe, 1);
    predict_all(&f, x_t, dense);
    sla2_pipeline_set_dense(f.pipe, 0);
    ck_assert_int_eq(sla2_pipeline_set_layer_dense(f.pipe, 0, 1), SLA2_OK);
    int d = -1;
    ck_assert_int_eq(sla2_pipeline_get_layer_dense(f.pipe, 0, &d), SLA2_OK);
    ck_assert_int_eq(d, 1);
    ck_assert_int_eq(sla2_pipeline_get_layer_dense(f.pipe, 1, &d), SLA2_OK);
    ck_assert_int_eq(d, 0);
    predict_all(&f, x_t, one);
    ck_assert_msg(rel_l2(one, dense, f.elems) > 1e-4 && rel_l2(one, sla2, f.elems) > 1e-4,
                  "one dense layer: %g from dense, %g from sla2", rel_l2(one, dense, f.elems),
                  rel_l2(one, sla2, f.elems));
    for (int l = 1; l < f.num_layers; l++)
        ck_assert_int_eq(sla2_pipeline_set_layer_dense(f.pipe, l, 7), SLA2_OK); /* non-zero means on */
    predict_all(&f, x_t, again);
    ck_assert(memcmp(again, dense, f.elems * 4) == 0);
    for (int l = 0; l < f.num_layers; l++)
        ck_assert_int_eq(sla2_pipeline_set_layer_dense(f.pipe, l, 0), SLA2_OK);
    predict_all(&f, x_t, again);
    ck_assert(memcmp(again, sla2, f.elems * 4) == 0);
    sla2_layer_attention back;
    ck_assert_int_eq(sla2_pipeline_get_layer(f.pipe, 0, &back), SLA2_OK);
    ck_assert(back.topk == 0.5f && back.quant == SLA2_QUANT_INT8_FP8);
    free(x_t), free(sla2), free(dense), free(one), free(again);
    close_fixture(&f);
}
END_TEST

static char *write_temp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/test_predict_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* `dense: true` in a layer's entry of the runtime YAML sets the switch;
 * anything but true/false is refused with file, line and key. */
START_TEST(runtime_yaml_dense_key)
{
    char *path = write_temp("topk: 0.5\nlayers:\n  - {layer: 1, dense: true}\n  - {layer: 0, dense: false}\n");
    fixture f;
    open_fixture(&f, path);
    int d = -1;
    ck_assert_int_eq(sla2_pipeline_get_layer_dense(f.pipe, 0, &d), SLA2_OK);
    ck_assert_int_eq(d, 0);
    ck_assert_int_eq(sla2_pipeline_get_layer_dense(f.pipe, 1, &d), SLA2_OK);
    ck_assert_int_eq(d, 1);
    sla2_pipeline *bad = NULL;
    unlink(path);
    path = write_temp("layers:\n  - {layer: 1, dense: 1}\n");
    ck_assert_int_eq(sla2_pipeline_create(f.ctx, f.model, path, &bad), SLA2_ERR_FORMAT);
    ck_assert_ptr_null(bad);
    const char *msg = sla2_context_last_error(f.ctx);
    ck_assert_msg(strstr(msg, ":2:") && strstr(msg, "layers[0].dense") && strstr(msg, "expected true or false"),
                  "%s", msg);
    unlink(path);
    close_fixture(&f);
}
END_TEST

START_TEST(bad_arguments_are_named)
{
    fixture f;
    open_fixture(&f, NULL);
    float *x_t = malloc(f.elems * 4), *out = malloc(f.elems * 4);
    for (size_t i = 0; i < f.elems; i++)
        x_t[i] = 0.25f, out[i] = 7.0f;
    sla2_generate_options o = options(1.0);
    ck_assert_int_eq(sla2_pipeline_predict(NULL, &o, 1, x_t, out, f.elems), SLA2_ERR_NULL_ARGUMENT);
    ck_assert_int_eq(sla2_pipeline_predict(f.pipe, NULL, 1, x_t, out, f.elems), SLA2_ERR_NULL_ARGUMENT);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "options"));
    ck_assert_int_eq(sla2_pipeline_predict(f.pipe, &o, 1, NULL, out, f.elems), SLA2_ERR_NULL_ARGUMENT);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "x_t"));
    ck_assert_int_eq(sla2_pipeline_predict(f.pipe, &o, 1, x_t, NULL, f.elems), SLA2_ERR_NULL_ARGUMENT);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "prediction"));
    ck_assert_int_eq(sla2_pipeline_predict(f.pipe, &o, 0, x_t, out, f.elems), SLA2_ERR_INVALID_VALUE);
    ck_assert_msg(strstr(sla2_context_last_error(f.ctx), "step: 0 is outside 1..3"), "%s",
                  sla2_context_last_error(f.ctx));
    ck_assert_int_eq(sla2_pipeline_predict(f.pipe, &o, 4, x_t, out, f.elems), SLA2_ERR_INVALID_VALUE);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "step: 4 is outside 1..3"));
    ck_assert_int_eq(sla2_pipeline_predict(f.pipe, &o, 1, x_t, out, f.elems - 1), SLA2_ERR_INVALID_VALUE);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "elems"));
    sla2_generate_options unsized = o;
    unsized.size = 1;
    ck_assert_int_eq(sla2_pipeline_predict(f.pipe, &unsized, 1, x_t, out, f.elems), SLA2_ERR_INVALID_VALUE);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "options.size"));
    o.text_embedding_path = "/nonexistent/ctx.safetensors";
    ck_assert_int_eq(sla2_pipeline_predict(f.pipe, &o, 1, x_t, out, f.elems), SLA2_ERR_IO);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "/nonexistent/ctx.safetensors"));
    o = options(1.0);
    volatile int cancel = 1;
    o.cancel = &cancel;
    ck_assert_int_eq(sla2_pipeline_predict(f.pipe, &o, 1, x_t, out, f.elems), SLA2_ERR_CANCELLED);
    for (size_t i = 0; i < f.elems; i++)
        ck_assert(out[i] == 7.0f); /* nothing written on failure */
    int d = 0;
    ck_assert_int_eq(sla2_pipeline_set_layer_dense(NULL, 0, 1), SLA2_ERR_NULL_ARGUMENT);
    ck_assert_int_eq(sla2_pipeline_set_layer_dense(f.pipe, f.num_layers, 1), SLA2_ERR_INVALID_VALUE);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "layer 2: the model has layers 0..1"));
    ck_assert_int_eq(sla2_pipeline_set_layer_dense(f.pipe, -1, 1), SLA2_ERR_INVALID_VALUE);
    ck_assert_int_eq(sla2_pipeline_get_layer_dense(NULL, 0, &d), SLA2_ERR_NULL_ARGUMENT);
    ck_assert_int_eq(sla2_pipeline_get_layer_dense(f.pipe, 0, NULL), SLA2_ERR_NULL_ARGUMENT);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "dense"));
    ck_assert_int_eq(sla2_pipeline_get_layer_dense(f.pipe, 5, &d), SLA2_ERR_INVALID_VALUE);
    ck_assert(strstr(sla2_context_last_error(f.ctx), "layer 5"));
    free(x_t), free(out);
    close_fixture(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline_predict");
    TCase *tc = tcase_create("predict");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, predict_is_the_velocity_the_generation_used);
    tcase_add_test(tc, layer_dense_switch_runs_exact_attention);
    tcase_add_test(tc, runtime_yaml_dense_key);
    tcase_add_test(tc, bad_arguments_are_named);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
