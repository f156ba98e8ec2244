/* The fast CPU path (OpenBLAS + OpenMP) against the reference over modes,
 * feature maps, alpha kinds, routers, head dims, block sizes and lengths.
 * Quantised modes round the same values in both (the INT8 dot is exact in
 * sgemm), so only accumulation order differs: 2e-5 covers float sums of
 * up to a few thousand terms. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fast_case {
    int64_t B, H, L, D;
    int block_q;
    float topk;
    sla2_quant_mode quant;
    sla2_feature_map map;
    int alpha_kind; /* 0 none, 1 per head, 2 per row, 3 SLA v1 */
    int router;     /* 0 identity, 1 shared, 2 per head */
} fast_case;

static const fast_case cases[] = {
    {1, 2, 1, 64, 128, 0.5f, SLA2_QUANT_NONE, SLA2_FEATURE_SOFTMAX, 0, 0},
    {1, 2, 63, 64, 64, 1.0f, SLA2_QUANT_INT8, SLA2_FEATURE_SOFTMAX, 1, 0},
    {2, 2, 65, 128, 64, 0.5f, SLA2_QUANT_INT8_FP8, SLA2_FEATURE_ELU, 2, 1},
    {1, 3, 700, 64, 128, 0.1f, SLA2_QUANT_NONE, SLA2_FEATURE_RELU, 1, 2},
    {1, 2, 1000, 128, 128, 0.05f, SLA2_QUANT_INT8_FP8, SLA2_FEATURE_SOFTMAX, 2, 2},
    {1, 2, 1000, 64, 64, 0.2f, SLA2_QUANT_INT8, SLA2_FEATURE_ELU, 0, 1},
    {1, 1, 513, 128, 128, 0.3f, SLA2_QUANT_INT8_FP8, SLA2_FEATURE_SOFTMAX, 3, 0},
    {3, 1, 129, 64, 64, 1.0f, SLA2_QUANT_INT8_FP8, SLA2_FEATURE_RELU, 2, 0},
    /* Mode NONE takes one GEMM over all kept keys: dense (contiguous), partial last block. */
    {1, 2, 1000, 128, 128, 1.0f, SLA2_QUANT_NONE, SLA2_FEATURE_SOFTMAX, 1, 2},
    {2, 1, 1000, 64, 64, 0.3f, SLA2_QUANT_NONE, SLA2_FEATURE_ELU, 2, 1},
};

static void run_case(const fast_case *c, float *out_ref, float *out_fast)
{
    size_t n = (size_t)(c->B * c->H * c->L * c->D);
    test_rng rng;
    rng_seed(&rng, (uint64_t)(c->L * 131 + c->D + c->quant));
    float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4);
    fill_normal(&rng, q, n, 1.0f);
    fill_normal(&rng, k, n, 1.0f);
    fill_normal(&rng, v, n, 1.0f);
    int64_t D = c->D, H = c->H;
    float *router = malloc((size_t)(H * D * D) * 4), *alpha = malloc((size_t)(H * D) * 4), *bias = malloc((size_t)H * 4);
    fill_normal(&rng, router, (size_t)(H * D * D), 0.2f);
    fill_normal(&rng, alpha, (size_t)(H * D), 0.1f);
    fill_normal(&rng, bias, (size_t)H, 1.0f);
    sla2_tensor t_router = c->router == 2 ? sla2_tensor_contiguous(router, SLA2_DTYPE_F32, 3, (int64_t[]){H, D, D})
                                          : sla2_tensor_contiguous(router, SLA2_DTYPE_F32, 2, (int64_t[]){D, D});
    sla2_tensor t_alpha_h = sla2_tensor_contiguous(bias, SLA2_DTYPE_F32, 1, (int64_t[]){H});
    sla2_tensor t_alpha_w = sla2_tensor_contiguous(alpha, SLA2_DTYPE_F32, 2, (int64_t[]){H, D});
    sla2_tensor t_proj = sla2_tensor_contiguous(router, SLA2_DTYPE_F32, 2, (int64_t[]){D, D});
    sla2_tensor t_proj_b = sla2_tensor_contiguous(alpha, SLA2_DTYPE_F32, 1, (int64_t[]){D});
    sla2_attention_params params = {0};
    if (c->router)
        params.router_q = params.router_k = &t_router;
    if (c->alpha_kind == 1)
        params.alpha = &t_alpha_h;
    if (c->alpha_kind == 2)
        params.alpha_w = &t_alpha_w, params.alpha_b = &t_alpha_h;
    if (c->alpha_kind == 3)
        params.proj_l_weight = &t_proj, params.proj_l_bias = &t_proj_b;
    sla2_attention_config cfg;
    sla2_attention_config_default(&cfg);
    cfg.block_q = c->block_q;
    cfg.topk = c->topk;
    cfg.quant = c->quant;
    cfg.feature_map = c->map;
    sla2_tensor tq = sla2_tensor_bhld(q, SLA2_DTYPE_F32, c->B, H, c->L, D);
    sla2_tensor tk = sla2_tensor_bhld(k, SLA2_DTYPE_F32, c->B, H, c->L, D);
    sla2_tensor tv = sla2_tensor_bhld(v, SLA2_DTYPE_F32, c->B, H, c->L, D);
    for (int reference = 1; reference >= 0; reference--) {
        float *out = reference ? out_ref : out_fast;
        sla2_tensor to = sla2_tensor_bhld(out, SLA2_DTYPE_F32, c->B, H, c->L, D);
        fill_nan(out, n);
        sla2_context *ctx = test_cpu_context(reference);
        sla2_status s = sla2_attention_forward(ctx, &cfg, &params, &tq, &tk, &tv, &to, NULL);
        ck_assert_msg(s == SLA2_OK, "%s", sla2_context_last_error(ctx));
        sla2_context_free(ctx);
        ck_assert(all_finite(out, n));
    }
    free(q), free(k), free(v), free(router), free(alpha), free(bias);
}

START_TEST(fast_path_matches_reference)
{
    const fast_case *c = &cases[_i];
    size_t n = (size_t)(c->B * c->H * c->L * c->D);
    float *ref = malloc(n * 4), *fast = malloc(n * 4);
    run_case(c, ref, fast);
    double err = rel_l2(fast, ref, n);
    printf("fast vs reference: L=%lld D=%lld bq=%d topk=%.2f %s %s alpha=%d router=%d: rel L2 %.2e\n",
           (long long)c->L, (long long)c->D, c->block_q, (double)c->topk, sla2_quant_mode_name(c->quant),
           sla2_feature_map_name(c->map), c->alpha_kind, c->router, err);
    ck_assert_msg(err < 2e-5, "rel L2 %.3g >= 2e-5", err);
    free(ref), free(fast);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("cpu_fast");
    TCase *tc = tcase_create("parity");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, fast_path_matches_reference, 0, (int)(sizeof cases / sizeof *cases));
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
