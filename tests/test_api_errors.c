/* Every bad argument a user can pass: its status, a message that names the
 * problem, and nothing written to the output or the stats. */
#include "test_util.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { B = 1, H = 2, L = 100, D = 64, N = B * H * L * D };
static float q[N], k[N], v[N], out[N];
static float router[D * D], alpha[H], alpha_w[H * D];

typedef struct call {
    sla2_attention_config cfg;
    sla2_tensor q, k, v, out;
    sla2_tensor router, alpha, alpha_w, alpha_b;
    sla2_attention_params params;
    int use_params;
    sla2_attention_stats stats;
} call;

static void good_call(call *c)
{
    memset(c, 0, sizeof *c);
    sla2_attention_config_default(&c->cfg);
    c->cfg.block_q = 64;
    c->cfg.topk = 0.5f;
    c->q = sla2_tensor_bhld(q, SLA2_DTYPE_F32, B, H, L, D);
    c->k = sla2_tensor_bhld(k, SLA2_DTYPE_F32, B, H, L, D);
    c->v = sla2_tensor_bhld(v, SLA2_DTYPE_F32, B, H, L, D);
    c->out = sla2_tensor_bhld(out, SLA2_DTYPE_F32, B, H, L, D);
    c->router = sla2_tensor_contiguous(router, SLA2_DTYPE_F32, 2, (int64_t[]){D, D});
    c->alpha = sla2_tensor_contiguous(alpha, SLA2_DTYPE_F32, 1, (int64_t[]){H});
    c->alpha_w = sla2_tensor_contiguous(alpha_w, SLA2_DTYPE_F32, 2, (int64_t[]){H, D});
    c->alpha_b = sla2_tensor_contiguous(alpha, SLA2_DTYPE_F32, 1, (int64_t[]){H});
    sla2_attention_stats_default(&c->stats);
}

typedef struct bad_case {
    const char *name;
    void (*spoil)(call *c);
    sla2_status status;
    const char *message; /* a substring the message must contain */
} bad_case;

static void null_q_data(call *c) { c->q.data = NULL; }
static void bad_dtype(call *c) { c->k.dtype = (sla2_dtype)7; }
static void mixed_dtype(call *c) { c->v.dtype = SLA2_DTYPE_F16; }
static void three_dims(call *c) { c->q.ndim = 3; }
static void head_dim_96(call *c) { c->q.shape[3] = c->k.shape[3] = c->v.shape[3] = c->out.shape[3] = 96; }
static void head_dim_32(call *c) { c->q.shape[3] = 32; }
static void zero_length(call *c) { c->q.shape[2] = 0; }
static void negative_stride(call *c) { c->k.stride[1] = -5; }
static void strided_head_dim(call *c) { c->v.stride[3] = 2; }
static void k_length_differs(call *c) { c->k.shape[2] = 50; }
static void v_batch_differs(call *c) { c->v.shape[0] = 2; c->v.stride[0] = 1; }
static void k_heads_differ(call *c) { c->k.shape[1] = 1; }
static void out_shape_differs(call *c) { c->out.shape[2] = 99; }
static void out_aliases_q(call *c) { c->out.data = q; }
static void topk_zero(call *c) { c->cfg.topk = 0.0f; }
static void topk_above_one(call *c) { c->cfg.topk = 1.5f; }
static void topk_nan(call *c) { c->cfg.topk = NAN; }
static void block_q_96(call *c) { c->cfg.block_q = 96; }
static void block_k_128(call *c) { c->cfg.block_k = 128; }
static void quant_unknown(call *c) { c->cfg.quant = (sla2_quant_mode)9; }
static void feature_unknown(call *c) { c->cfg.feature_map = (sla2_feature_map)-1; }
static void scale_negative(call *c) { c->cfg.softmax_scale = -1.0f; }
static void config_size(call *c) { c->cfg.size = 3; }
static void router_wrong_shape(call *c)
{
    c->router.shape[0] = 32;
    c->params.router_q = &c->router;
    c->use_params = 1;
}
static void router_f16(call *c)
{
    c->router.dtype = SLA2_DTYPE_F16;
    c->params.router_k = &c->router;
    c->use_params = 1;
}
static void alpha_wrong_length(call *c)
{
    c->alpha.shape[0] = 3;
    c->params.alpha = &c->alpha;
    c->use_params = 1;
}
static void alpha_both_kinds(call *c)
{
    c->params.alpha = &c->alpha;
    c->params.alpha_w = &c->alpha_w;
    c->params.alpha_b = &c->alpha_b;
    c->use_params = 1;
}
static void alpha_w_without_b(call *c)
{
    c->params.alpha_w = &c->alpha_w;
    c->use_params = 1;
}
static void proj_with_alpha(call *c)
{
    c->params.alpha = &c->alpha;
    c->params.proj_l_weight = &c->router;
    c->use_params = 1;
}
static void mask_too_small(call *c)
{
    static uint8_t mask[3];
    c->stats.block_mask = mask;
    c->stats.block_mask_elems = 3;
}
static void stats_size(call *c) { c->stats.size = 1; }
static void time_phases_2(call *c) { c->stats.time_phases = 2; }

static const bad_case cases[] = {
    {"null q data", null_q_data, SLA2_ERR_NULL_ARGUMENT, "q.data"},
    {"unknown dtype", bad_dtype, SLA2_ERR_DTYPE, "k: unknown dtype"},
    {"mixed dtypes", mixed_dtype, SLA2_ERR_DTYPE, "v: dtype f16 differs from q's f32"},
    {"three dims", three_dims, SLA2_ERR_SHAPE, "q: expected 4 dims"},
    {"head dim 96", head_dim_96, SLA2_ERR_UNSUPPORTED, "q: expected head_dim 64 or 128, got 96"},
    {"head dim 32", head_dim_32, SLA2_ERR_UNSUPPORTED, "got 32"},
    {"zero length", zero_length, SLA2_ERR_SHAPE, "q: L = 0"},
    {"negative stride", negative_stride, SLA2_ERR_SHAPE, "k: stride of H"},
    {"strided head dim", strided_head_dim, SLA2_ERR_SHAPE, "v: the head dimension must be contiguous"},
    {"k length", k_length_differs, SLA2_ERR_SHAPE, "k: L = 50 disagrees with q's L = 100"},
    {"v batch", v_batch_differs, SLA2_ERR_SHAPE, "v: B = 2 disagrees"},
    {"k heads", k_heads_differ, SLA2_ERR_SHAPE, "k: H = 1 disagrees"},
    {"out shape", out_shape_differs, SLA2_ERR_SHAPE, "out: L = 99"},
    {"out aliases q", out_aliases_q, SLA2_ERR_SHAPE, "out: its memory overlaps"},
    {"topk 0", topk_zero, SLA2_ERR_INVALID_VALUE, "config.topk: expected a value in (0, 1], got 0"},
    {"topk 1.5", topk_above_one, SLA2_ERR_INVALID_VALUE, "config.topk"},
    {"topk NaN", topk_nan, SLA2_ERR_INVALID_VALUE, "config.topk"},
    {"block_q 96", block_q_96, SLA2_ERR_INVALID_VALUE, "config.block_q: expected 64 or 128, got 96"},
    {"block_k 128", block_k_128, SLA2_ERR_INVALID_VALUE, "config.block_k"},
    {"quant unknown", quant_unknown, SLA2_ERR_INVALID_VALUE, "config.quant"},
    {"feature map unknown", feature_unknown, SLA2_ERR_INVALID_VALUE, "config.feature_map"},
    {"negative scale", scale_negative, SLA2_ERR_INVALID_VALUE, "config.softmax_scale"},
    {"config size", config_size, SLA2_ERR_INVALID_VALUE, "config.size"},
    {"router shape", router_wrong_shape, SLA2_ERR_SHAPE, "params.router_q: expected a contiguous f32 tensor of shape [64, 64] or [2, 64, 64]"},
    {"router dtype", router_f16, SLA2_ERR_DTYPE, "params.router_k: expected dtype f32"},
    {"alpha length", alpha_wrong_length, SLA2_ERR_SHAPE, "params.alpha: expected a contiguous f32 tensor of shape [2]"},
    {"alpha kinds", alpha_both_kinds, SLA2_ERR_INVALID_VALUE, "exclusive"},
    {"alpha_w alone", alpha_w_without_b, SLA2_ERR_NULL_ARGUMENT, "alpha_b is NULL"},
    {"proj with alpha", proj_with_alpha, SLA2_ERR_INVALID_VALUE, "proj_l_weight"},
    {"mask too small", mask_too_small, SLA2_ERR_INVALID_VALUE, "stats.block_mask_elems"},
    {"stats size", stats_size, SLA2_ERR_INVALID_VALUE, "stats.size"},
    {"time_phases 2", time_phases_2, SLA2_ERR_INVALID_VALUE, "stats.time_phases: expected 0 or 1, got 2"},
};

START_TEST(bad_argument_is_rejected_and_writes_nothing)
{
    const bad_case *bc = &cases[_i];
    test_rng rng;
    rng_seed(&rng, 1);
    fill_normal(&rng, q, N, 1), fill_normal(&rng, k, N, 1), fill_normal(&rng, v, N, 1);
    fill_normal(&rng, router, D * D, 1), fill_normal(&rng, alpha, H, 1), fill_normal(&rng, alpha_w, H * D, 1);
    for (int i = 0; i < N; i++)
        out[i] = 12345.0f; /* a sentinel: must survive a failed call */
    call c;
    good_call(&c);
    bc->spoil(&c);
    sla2_attention_stats stats_before = c.stats;
    sla2_context *ctx = test_cpu_context(0);
    sla2_status s = sla2_attention_forward(ctx, &c.cfg, c.use_params ? &c.params : NULL, &c.q, &c.k, &c.v, &c.out,
                                           &c.stats);
    const char *msg = sla2_context_last_error(ctx);
    ck_assert_msg(s == bc->status, "%s: got %s (%s), expected %s", bc->name, sla2_status_string(s), msg,
                  sla2_status_string(bc->status));
    ck_assert_msg(strstr(msg, bc->message) != NULL, "%s: message '%s' does not contain '%s'", bc->name, msg,
                  bc->message);
    for (int i = 0; i < N; i++)
        ck_assert_msg(out[i] == 12345.0f, "%s: out[%d] was written", bc->name, i);
    ck_assert(memcmp(&stats_before, &c.stats, sizeof stats_before) == 0);
    sla2_context_free(ctx);
}
END_TEST

START_TEST(null_arguments_are_named)
{
    call c;
    good_call(&c);
    sla2_context *ctx = test_cpu_context(0);
    ck_assert_status(sla2_attention_forward(NULL, &c.cfg, NULL, &c.q, &c.k, &c.v, &c.out, NULL),
                     SLA2_ERR_NULL_ARGUMENT);
    const char *names[] = {"config", "q", "k", "v", "out"};
    for (int which = 0; which < 5; which++) {
        sla2_status s = sla2_attention_forward(ctx, which == 0 ? NULL : &c.cfg, NULL, which == 1 ? NULL : &c.q,
                                               which == 2 ? NULL : &c.k, which == 3 ? NULL : &c.v,
                                               which == 4 ? NULL : &c.out, NULL);
        ck_assert_status(s, SLA2_ERR_NULL_ARGUMENT);
        ck_assert_msg(strncmp(sla2_context_last_error(ctx), names[which], strlen(names[which])) == 0,
                      "message '%s' should start with '%s'", sla2_context_last_error(ctx), names[which]);
    }
    /* a good call clears the message */
    ck_assert_status(sla2_attention_forward(ctx, &c.cfg, NULL, &c.q, &c.k, &c.v, &c.out, NULL), SLA2_OK);
    ck_assert_str_eq(sla2_context_last_error(ctx), "");
    sla2_context_free(ctx);
}
END_TEST

static double phase_sum(const sla2_attention_stats *s)
{
    return s->router_ms + s->quantise_ms + s->sparse_ms + s->linear_ms + s->mix_ms;
}

/* The timing fields: filled on both CPU paths when asked, untouched when not,
 * and a caller built before they existed (its size ends before them) is
 * served without a write past its struct. */
START_TEST(stats_timing_and_older_sizes)
{
    test_rng rng;
    rng_seed(&rng, 2);
    fill_normal(&rng, q, N, 1), fill_normal(&rng, k, N, 1), fill_normal(&rng, v, N, 1);
    for (int reference = 0; reference <= 1; reference++) {
        sla2_context *ctx = test_cpu_context(reference);
        call c;
        good_call(&c); /* topk 0.5: one of two key blocks kept, so both branches run */
        c.stats.time_phases = 1;
        ck_assert_status(sla2_attention_forward(ctx, &c.cfg, NULL, &c.q, &c.k, &c.v, &c.out, &c.stats), SLA2_OK);
        const sla2_attention_stats *t = &c.stats;
        /* every phase does work on the CPU, and the clock has nanoseconds */
        ck_assert_msg(t->router_ms > 0 && t->quantise_ms > 0 && t->sparse_ms > 0 && t->linear_ms > 0 &&
                          t->mix_ms > 0 && t->total_ms > 0,
                      "%s: router %g quantise %g sparse %g linear %g mix %g total %g ms",
                      reference ? "reference" : "fast", t->router_ms, t->quantise_ms, t->sparse_ms, t->linear_ms,
                      t->mix_ms, t->total_ms);
        /* disjoint intervals inside the call's own: only rounding can exceed */
        ck_assert_msg(phase_sum(t) <= t->total_ms + 1e-6, "phases %g ms > total %g ms", phase_sum(t), t->total_ms);

        good_call(&c);
        c.stats.total_ms = c.stats.router_ms = c.stats.mix_ms = -1.0; /* time_phases 0: untouched */
        ck_assert_status(sla2_attention_forward(ctx, &c.cfg, NULL, &c.q, &c.k, &c.v, &c.out, &c.stats), SLA2_OK);
        ck_assert(c.stats.total_ms == -1.0 && c.stats.router_ms == -1.0 && c.stats.mix_ms == -1.0);

        good_call(&c);
        c.stats.size = offsetof(sla2_attention_stats, time_phases);
        c.stats.time_phases = 7; /* past an old caller's struct: neither read nor written */
        c.stats.total_ms = -1.0;
        ck_assert_status(sla2_attention_forward(ctx, &c.cfg, NULL, &c.q, &c.k, &c.v, &c.out, &c.stats), SLA2_OK);
        ck_assert_int_eq(c.stats.kept_per_q_block, 1);
        ck_assert(c.stats.time_phases == 7 && c.stats.total_ms == -1.0);
        sla2_context_free(ctx);
    }
}
END_TEST

START_TEST(context_creation_errors)
{
    char message[128] = "";
    sla2_context *ctx = (sla2_context *)0x1;
    ck_assert_status(sla2_context_create(NULL, NULL, message, sizeof message), SLA2_ERR_NULL_ARGUMENT);
    ck_assert(strstr(message, "out") != NULL);
    sla2_context_options options;
    sla2_context_options_default(&options);
    options.backend = (sla2_backend)42;
    ck_assert_status(sla2_context_create(&options, &ctx, message, sizeof message), SLA2_ERR_INVALID_VALUE);
    ck_assert(strstr(message, "options.backend") != NULL);
    ck_assert(ctx == (sla2_context *)0x1); /* untouched on failure */
    options.backend = SLA2_BACKEND_CPU;
    options.num_threads = -1;
    ck_assert_status(sla2_context_create(&options, &ctx, message, sizeof message), SLA2_ERR_INVALID_VALUE);
    ck_assert(strstr(message, "num_threads") != NULL);
    options.num_threads = 0;
    options.size = 1;
    ck_assert_status(sla2_context_create(&options, &ctx, message, sizeof message), SLA2_ERR_INVALID_VALUE);
#ifndef SLA2_HAVE_CUDA_RUNTIME_TESTS
    /* CUDA requested where no GPU can run (CI, this machine): a clear error. */
    sla2_context_options_default(&options);
    options.backend = SLA2_BACKEND_CUDA;
    options.device = 0;
    sla2_status s = sla2_context_create(&options, &ctx, message, sizeof message);
    if (s != SLA2_OK) {
        ck_assert_status(s, SLA2_ERR_UNSUPPORTED);
        ck_assert_msg(strlen(message) > 10, "message '%s'", message);
    } else {
        sla2_context_free(ctx);
    }
#endif
    /* AUTO always gives a context */
    sla2_context_options_default(&options);
    ctx = NULL;
    ck_assert_status(sla2_context_create(&options, &ctx, NULL, 0), SLA2_OK);
    ck_assert(sla2_context_backend(ctx) != SLA2_BACKEND_AUTO);
    ck_assert(strlen(sla2_context_device_name(ctx)) > 0);
    sla2_context_free(ctx);
    sla2_context_free(NULL);
}
END_TEST

START_TEST(names_and_versions)
{
    ck_assert_str_eq(sla2_status_string(SLA2_ERR_SHAPE), "SLA2_ERR_SHAPE");
    ck_assert_str_eq(sla2_status_string((sla2_status)999), "SLA2_ERR_UNKNOWN");
    ck_assert_str_eq(sla2_quant_mode_name(SLA2_QUANT_INT8_FP8), "int8_fp8");
    ck_assert_str_eq(sla2_feature_map_name(SLA2_FEATURE_ELU), "elu");
    ck_assert_str_eq(sla2_dtype_name(SLA2_DTYPE_BF16), "bf16");
    ck_assert_int_eq(sla2_version_number(), SLA2_VERSION_NUMBER);
    ck_assert_str_eq(sla2_version_string(), "0.1.0");
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("api_errors");
    TCase *tc = tcase_create("errors");
    tcase_add_loop_test(tc, bad_argument_is_rejected_and_writes_nothing, 0, (int)(sizeof cases / sizeof *cases));
    tcase_add_test(tc, null_arguments_are_named);
    tcase_add_test(tc, stats_timing_and_older_sizes);
    tcase_add_test(tc, context_creation_errors);
    tcase_add_test(tc, names_and_versions);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
