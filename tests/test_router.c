/* The router's steps: block means over partial blocks, K smoothing,
 * projections, scores and the hard top-k with ties to the lower index. */
#include "cpu/cpu_attention.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

START_TEST(pooling_averages_actual_rows_of_partial_blocks)
{
    float x[5 * 2] = {1, 10, 3, 20, 5, 30, 7, 40, 100, -1}; /* L = 5, D = 2 */
    float pooled[3 * 2];
    router_pool_blocks(x, 5, 2, 2, pooled);
    ck_assert_float_eq(pooled[0], 2.0f);
    ck_assert_float_eq(pooled[1], 15.0f);
    ck_assert_float_eq(pooled[2], 6.0f);
    ck_assert_float_eq(pooled[3], 35.0f);
    ck_assert_float_eq(pooled[4], 100.0f); /* a partial block of one row */
    ck_assert_float_eq(pooled[5], -1.0f);
}
END_TEST

START_TEST(smoothing_removes_the_token_mean)
{
    float k[3 * 2] = {1, 5, 2, 5, 6, 5}, smooth[6];
    router_smooth_keys(k, 3, 2, smooth);
    ck_assert_float_eq(smooth[0], -2.0f);
    ck_assert_float_eq(smooth[2], -1.0f);
    ck_assert_float_eq(smooth[4], 3.0f);
    for (int r = 0; r < 3; r++)
        ck_assert_float_eq(smooth[r * 2 + 1], 0.0f);
}
END_TEST

START_TEST(projection_is_row_vector_times_matrix)
{
    float pooled[2] = {1, 2}, w[4] = {1, 2, 3, 4}, out[2];
    router_project(pooled, 1, 2, w, out);
    ck_assert_float_eq(out[0], 1 * 1 + 2 * 3); /* (qbar W)_e = sum_d qbar_d W[d][e] */
    ck_assert_float_eq(out[1], 1 * 2 + 2 * 4);
    router_project(pooled, 1, 2, NULL, out);
    ck_assert_float_eq(out[0], 1.0f);
    ck_assert_float_eq(out[1], 2.0f);
}
END_TEST

START_TEST(scores_are_scaled_dot_products)
{
    float q[4] = {1, 0, 0, 2}, k[4] = {3, 4, 1, 1}, s[4];
    router_scores(q, 1, k, 1, 4, s);
    ck_assert_float_eq_tol(s[0], (3 + 2) / 2.0f, 1e-7f);
}
END_TEST

START_TEST(topk_breaks_ties_to_the_lower_index)
{
    float scores[2 * 6] = {1, 1, 1, 1, 1, 1, /* all tied */ 0, 5, 2, 5, 9, 2};
    int32_t kept[2 * 3];
    uint8_t mask[12];
    router_topk(scores, 2, 6, 3, kept, mask);
    ck_assert_int_eq(kept[0], 0);
    ck_assert_int_eq(kept[1], 1);
    ck_assert_int_eq(kept[2], 2);
    ck_assert_int_eq(kept[3], 1); /* 9 at 4, then the tied 5s at 1 and 3: ascending order */
    ck_assert_int_eq(kept[4], 3);
    ck_assert_int_eq(kept[5], 4);
    static const uint8_t expected[12] = {1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 1, 0};
    ck_assert(memcmp(mask, expected, 12) == 0);
}
END_TEST

START_TEST(topk_ranks_nan_last)
{
    float scores[4] = {NAN, 1, NAN, 0};
    int32_t kept[2];
    uint8_t mask[4];
    router_topk(scores, 1, 4, 2, kept, mask);
    ck_assert_int_eq(kept[0], 1);
    ck_assert_int_eq(kept[1], 3);
}
END_TEST

START_TEST(kept_count_follows_the_formula)
{
    ck_assert_int_eq(sla2_attention_kept_blocks(4096, 64, 0.05f), 3); /* 3.2 + 0.5 -> 3 */
    ck_assert_int_eq(sla2_attention_kept_blocks(4096, 64, 0.03f), 2); /* 1.92 + 0.5 -> 2 */
    ck_assert_int_eq(sla2_attention_kept_blocks(4096, 64, 0.1f), 6);  /* 6.4 + 0.5 -> 6 */
    ck_assert_int_eq(sla2_attention_kept_blocks(4096, 64, 1.0f), 64);
    ck_assert_int_eq(sla2_attention_kept_blocks(4096, 64, 1e-6f), 1);
    ck_assert_int_eq(sla2_attention_kept_blocks(65, 64, 0.25f), 1); /* 0.5 + 0.5 -> 1 */
    ck_assert_int_eq(sla2_attention_kept_blocks(32760, 64, 0.03f), 15); /* 512 blocks: 15.36 -> 15 */
}
END_TEST

/* The learned projections steer the choice: a router_k that maps every
 * key onto one channel which the query's projection favours. */
START_TEST(learned_projection_changes_the_choice)
{
    enum { L = 256, D = 64 };
    float *q = malloc(L * D * 4), *k = malloc(L * D * 4), *v = malloc(L * D * 4), *o = malloc(L * D * 4);
    test_rng rng;
    rng_seed(&rng, 9);
    fill_normal(&rng, q, L * D, 1.0f);
    fill_normal(&rng, k, L * D, 1.0f);
    fill_normal(&rng, v, L * D, 1.0f);
    /* key block 2 is the only one with a large channel 5 */
    for (int r = 128; r < 192; r++)
        k[r * D + 5] += 4.0f;
    float wq[D * D] = {0}, wk[D * D] = {0};
    for (int d = 0; d < D; d++)
        wq[d * D + 0] = 1.0f; /* every query projects to sum(q) on channel 0 ... */
    wk[5 * D + 0] = 1.0f;      /* ... keys to their channel 5 */
    for (int r = 0; r < L; r++)
        q[r * D + 1] += 2.0f; /* make sum(q) positive for every block */
    sla2_tensor tq = sla2_tensor_bhld(q, SLA2_DTYPE_F32, 1, 1, L, D), tk = sla2_tensor_bhld(k, SLA2_DTYPE_F32, 1, 1, L, D);
    sla2_tensor tv = sla2_tensor_bhld(v, SLA2_DTYPE_F32, 1, 1, L, D), to = sla2_tensor_bhld(o, SLA2_DTYPE_F32, 1, 1, L, D);
    sla2_tensor twq = sla2_tensor_contiguous(wq, SLA2_DTYPE_F32, 2, (int64_t[]){D, D});
    sla2_tensor twk = sla2_tensor_contiguous(wk, SLA2_DTYPE_F32, 3, (int64_t[]){1, D, D}); /* per head, H = 1 */
    sla2_attention_params params = {.router_q = &twq, .router_k = &twk};
    sla2_attention_config cfg;
    sla2_attention_config_default(&cfg);
    cfg.block_q = 64;
    cfg.topk = 0.25f; /* one of four key blocks */
    uint8_t mask[4 * 4];
    sla2_attention_stats stats;
    sla2_attention_stats_default(&stats);
    stats.block_mask = mask;
    stats.block_mask_elems = sizeof mask;
    sla2_context *ctx = test_cpu_context(1);
    ck_assert_status(sla2_attention_forward(ctx, &cfg, &params, &tq, &tk, &tv, &to, &stats), SLA2_OK);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            ck_assert_int_eq(mask[i * 4 + j], j == 2);
    sla2_context_free(ctx);
    free(q), free(k), free(v), free(o);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("router");
    TCase *tc = tcase_create("router");
    tcase_add_test(tc, pooling_averages_actual_rows_of_partial_blocks);
    tcase_add_test(tc, smoothing_removes_the_token_mean);
    tcase_add_test(tc, projection_is_row_vector_times_matrix);
    tcase_add_test(tc, scores_are_scaled_dot_products);
    tcase_add_test(tc, topk_breaks_ties_to_the_lower_index);
    tcase_add_test(tc, topk_ranks_nan_last);
    tcase_add_test(tc, kept_count_follows_the_formula);
    tcase_add_test(tc, learned_projection_changes_the_choice);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
