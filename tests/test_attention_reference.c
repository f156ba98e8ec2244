/* The reference operator against independent evaluations of ARCHITECTURE.md
 * section 2: dense attention in double, the linear branch's formula summed
 * naively over keys, the alpha mix, SLA v1, layouts, dtypes, partial blocks,
 * and the quantised modes' error against full precision. */
#include "numeric.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct problem {
    int64_t B, H, L, D;
    float *q, *k, *v, *out;
    size_t n;
} problem;

static problem make_problem(uint64_t seed, int64_t B, int64_t H, int64_t L, int64_t D)
{
    problem p = {B, H, L, D, NULL, NULL, NULL, NULL, (size_t)(B * H * L * D)};
    test_rng rng;
    rng_seed(&rng, seed);
    p.q = malloc(p.n * sizeof(float));
    p.k = malloc(p.n * sizeof(float));
    p.v = malloc(p.n * sizeof(float));
    p.out = malloc(p.n * sizeof(float));
    fill_normal(&rng, p.q, p.n, 1.0f);
    fill_normal(&rng, p.k, p.n, 1.0f);
    fill_normal(&rng, p.v, p.n, 1.0f);
    /* a shared offset on K, as real keys have: smoothing must remove it */
    for (size_t i = 0; i < p.n; i++)
        p.k[i] += 0.5f;
    fill_nan(p.out, p.n);
    return p;
}

static void free_problem(problem *p)
{
    free(p->q), free(p->k), free(p->v), free(p->out);
}

static sla2_status run(sla2_context *ctx, problem *p, const sla2_attention_config *cfg,
                       const sla2_attention_params *params, sla2_attention_stats *stats)
{
    sla2_tensor q = sla2_tensor_bhld(p->q, SLA2_DTYPE_F32, p->B, p->H, p->L, p->D);
    sla2_tensor k = sla2_tensor_bhld(p->k, SLA2_DTYPE_F32, p->B, p->H, p->L, p->D);
    sla2_tensor v = sla2_tensor_bhld(p->v, SLA2_DTYPE_F32, p->B, p->H, p->L, p->D);
    sla2_tensor o = sla2_tensor_bhld(p->out, SLA2_DTYPE_F32, p->B, p->H, p->L, p->D);
    fill_nan(p->out, p->n); /* poison: an unwritten element fails */
    sla2_status s = sla2_attention_forward(ctx, cfg, params, &q, &k, &v, &o, stats);
    ck_assert_msg(s == SLA2_OK, "forward: %s", sla2_context_last_error(ctx));
    ck_assert_msg(all_finite(p->out, p->n), "output has non-finite elements");
    return s;
}

static sla2_attention_config config(float topk, sla2_quant_mode quant, int block_q)
{
    sla2_attention_config cfg;
    sla2_attention_config_default(&cfg);
    cfg.topk = topk;
    cfg.quant = quant;
    cfg.block_q = block_q;
    return cfg;
}

/* topk = 1 and alpha = 1 is dense softmax attention; F32 in, double oracle:
 * the reference accumulates in double, so only float rounding of P, scores and
 * the output remains (~1e-7). */
START_TEST(dense_limit_equals_double_attention)
{
    static const int64_t lengths[] = {1, 63, 200, 257};
    for (int d = 0; d < 2; d++)
        for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
            int64_t D = d ? 128 : 64;
            problem p = make_problem(100 + li, 1, 2, lengths[li], D);
            float *ref = malloc(p.n * sizeof(float));
            dense_attention_double(p.q, p.k, p.v, 1, 2, p.L, D, 1.0 / sqrt((double)D), ref);
            sla2_context *ctx = test_cpu_context(1);
            sla2_attention_config cfg = config(1.0f, SLA2_QUANT_NONE, 64);
            run(ctx, &p, &cfg, NULL, NULL);
            double err = rel_l2(p.out, ref, p.n);
            ck_assert_msg(err < 1e-6, "L=%lld D=%lld: rel L2 %.3g >= 1e-6", (long long)p.L, (long long)D, err);
            sla2_context_free(ctx);
            free(ref);
            free_problem(&p);
        }
}
END_TEST

static float phi(sla2_feature_map map, const float *x, int64_t D, int64_t d)
{
    if (map == SLA2_FEATURE_ELU)
        return x[d] > 0 ? x[d] + 1.0f : expf(x[d]);
    if (map == SLA2_FEATURE_RELU)
        return x[d] > 0 ? x[d] : 0.0f;
    float m = -INFINITY;
    double sum = 0.0;
    for (int64_t e = 0; e < D; e++)
        m = fmaxf(m, x[e]);
    for (int64_t e = 0; e < D; e++)
        sum += exp((double)x[e] - m);
    return (float)(exp((double)x[d] - m) / sum);
}

/* With alpha = 0 the output is the linear branch alone; compare it with its
 * formula evaluated key by key over the complement of the returned mask.
 * Both in double: agreement to float rounding (1e-5 leaves room for the
 * reference's float phi). */
START_TEST(linear_branch_equals_naive_formula)
{
    static const sla2_feature_map maps[] = {SLA2_FEATURE_SOFTMAX, SLA2_FEATURE_ELU, SLA2_FEATURE_RELU};
    for (int m = 0; m < 3; m++) {
        problem p = make_problem(7 + m, 1, 2, 300, 64);
        int64_t Nq = 5, Nk = 5;
        uint8_t mask[2 * 5 * 5];
        float alpha_logit[2] = {-1e30f, -1e30f}; /* sigmoid -> exactly 0 */
        sla2_tensor alpha = sla2_tensor_contiguous(alpha_logit, SLA2_DTYPE_F32, 1, (int64_t[]){2});
        sla2_attention_params params = {.alpha = &alpha};
        sla2_attention_stats stats;
        sla2_attention_stats_default(&stats);
        stats.block_mask = mask;
        stats.block_mask_elems = sizeof mask;
        sla2_context *ctx = test_cpu_context(1);
        sla2_attention_config cfg = config(0.4f, SLA2_QUANT_NONE, 64);
        cfg.feature_map = maps[m];
        run(ctx, &p, &cfg, &params, &stats);
        ck_assert_int_eq(stats.kept_per_q_block, 2);
        ck_assert(stats.mean_alpha == 0.0);
        float *naive = malloc(p.n * sizeof(float));
        for (int64_t h = 0; h < 2; h++)
            for (int64_t r = 0; r < p.L; r++) {
                const float *qr = p.q + (h * p.L + r) * p.D;
                double num[64] = {0}, den = 1e-6;
                for (int64_t c = 0; c < p.L; c++) {
                    if (mask[(h * Nq + r / 64) * Nk + c / 64])
                        continue;
                    const float *kc = p.k + (h * p.L + c) * p.D, *vc = p.v + (h * p.L + c) * p.D;
                    double w = 0.0;
                    for (int64_t d = 0; d < p.D; d++)
                        w += (double)phi(maps[m], qr, p.D, d) * phi(maps[m], kc, p.D, d);
                    den += w;
                    for (int64_t d = 0; d < p.D; d++)
                        num[d] += w * vc[d];
                }
                for (int64_t d = 0; d < p.D; d++)
                    naive[(h * p.L + r) * p.D + d] = (float)(num[d] / den);
            }
        double err = rel_l2(p.out, naive, p.n);
        ck_assert_msg(err < 1e-5, "feature map %s: rel L2 %.3g", sla2_feature_map_name(maps[m]), err);
        free(naive);
        sla2_context_free(ctx);
        free_problem(&p);
    }
}
END_TEST

/* Every row of the mask keeps exactly k blocks, so every block is in exactly
 * one of mask and complement; the count follows the documented formula. */
START_TEST(mask_partitions_key_blocks)
{
    problem p = make_problem(3, 2, 3, 1000, 64);
    sla2_context *ctx = test_cpu_context(0);
    static const float topks[] = {0.01f, 0.05f, 0.3f, 0.99f, 1.0f};
    for (int t = 0; t < 5; t++) {
        sla2_attention_config cfg = config(topks[t], SLA2_QUANT_NONE, 128);
        int64_t Nq = 8, Nk = 16;
        uint8_t mask[6 * 8 * 16];
        int64_t kept[6];
        sla2_attention_stats stats;
        sla2_attention_stats_default(&stats);
        stats.block_mask = mask;
        stats.block_mask_elems = sizeof mask;
        stats.kept_blocks = kept;
        run(ctx, &p, &cfg, NULL, &stats);
        int64_t expected = (int64_t)floor(topks[t] * 16 + 0.5);
        if (expected < 1)
            expected = 1;
        ck_assert_int_eq(stats.kept_per_q_block, expected);
        ck_assert_int_eq(stats.num_q_blocks, Nq);
        ck_assert_int_eq(stats.num_k_blocks, Nk);
        ck_assert_int_eq(stats.kept_blocks_total, 6 * Nq * expected);
        for (int64_t row = 0; row < 6 * Nq; row++) {
            int64_t count = 0;
            for (int64_t j = 0; j < Nk; j++) {
                ck_assert(mask[row * Nk + j] == 0 || mask[row * Nk + j] == 1);
                count += mask[row * Nk + j];
            }
            ck_assert_int_eq(count, expected);
        }
        for (int i = 0; i < 6; i++)
            ck_assert_int_eq(kept[i], Nq * expected);
    }
    sla2_context_free(ctx);
    free_problem(&p);
}
END_TEST

/* O = alpha * O_s + (1 - alpha) * O_l, per head and per row. */
START_TEST(alpha_mixes_the_branches)
{
    problem p = make_problem(11, 1, 2, 256, 64);
    sla2_context *ctx = test_cpu_context(1);
    sla2_attention_config cfg = config(0.25f, SLA2_QUANT_NONE, 64);
    float *sparse = malloc(p.n * sizeof(float)), *linear = malloc(p.n * sizeof(float));
    float one_logit[2] = {1e30f, 1e30f}, zero_logit[2] = {-1e30f, -1e30f};
    sla2_tensor t_one = sla2_tensor_contiguous(one_logit, SLA2_DTYPE_F32, 1, (int64_t[]){2});
    sla2_tensor t_zero = sla2_tensor_contiguous(zero_logit, SLA2_DTYPE_F32, 1, (int64_t[]){2});
    sla2_attention_params params = {.alpha = &t_one};
    run(ctx, &p, &cfg, &params, NULL);
    memcpy(sparse, p.out, p.n * sizeof(float));
    params.alpha = &t_zero;
    run(ctx, &p, &cfg, &params, NULL);
    memcpy(linear, p.out, p.n * sizeof(float));

    /* per head */
    float logits[2] = {0.3f, -1.2f};
    sla2_tensor t_logits = sla2_tensor_contiguous(logits, SLA2_DTYPE_F32, 1, (int64_t[]){2});
    params.alpha = &t_logits;
    sla2_attention_stats stats;
    sla2_attention_stats_default(&stats);
    run(ctx, &p, &cfg, &params, &stats);
    double mean = 0.0;
    for (int64_t h = 0; h < 2; h++) {
        double a = 1.0 / (1.0 + exp(-(double)logits[h]));
        mean += a / 2;
        for (int64_t e = h * p.L * p.D; e < (h + 1) * p.L * p.D; e++)
            ck_assert_double_eq_tol(p.out[e], a * sparse[e] + (1 - a) * linear[e], 1e-5);
    }
    ck_assert_double_eq_tol(stats.mean_alpha, mean, 1e-6);

    /* per row: alpha = sigmoid(q_r . w_h + b_h) */
    float w[2 * 64], b[2] = {0.1f, -0.4f};
    test_rng rng;
    rng_seed(&rng, 5);
    fill_normal(&rng, w, 128, 0.2f);
    sla2_tensor t_w = sla2_tensor_contiguous(w, SLA2_DTYPE_F32, 2, (int64_t[]){2, 64});
    sla2_tensor t_b = sla2_tensor_contiguous(b, SLA2_DTYPE_F32, 1, (int64_t[]){2});
    sla2_attention_params row_params = {.alpha_w = &t_w, .alpha_b = &t_b};
    run(ctx, &p, &cfg, &row_params, &stats);
    double alpha_sum = 0.0;
    for (int64_t h = 0; h < 2; h++)
        for (int64_t r = 0; r < p.L; r++) {
            double logit = b[h];
            for (int64_t d = 0; d < 64; d++)
                logit += (double)p.q[(h * p.L + r) * 64 + d] * w[h * 64 + d];
            double a = 1.0 / (1.0 + exp(-logit));
            alpha_sum += a;
            for (int64_t d = 0; d < 64; d++) {
                size_t e = (size_t)((h * p.L + r) * 64 + d);
                ck_assert_double_eq_tol(p.out[e], a * sparse[e] + (1 - a) * linear[e], 1e-5);
            }
        }
    ck_assert_double_eq_tol(stats.mean_alpha, alpha_sum / (2 * p.L), 1e-6);
    free(sparse), free(linear);
    sla2_context_free(ctx);
    free_problem(&p);
}
END_TEST

/* SLA v1: O = O_s + W O_l + b with the linear branch over all keys. With
 * topk = 1 and W = I that is dense attention plus the full linear attention. */
START_TEST(sla_v1_adds_projected_full_linear_branch)
{
    problem p = make_problem(21, 1, 1, 130, 64);
    sla2_context *ctx = test_cpu_context(1);
    sla2_attention_config cfg = config(1.0f, SLA2_QUANT_NONE, 64);
    float *dense = malloc(p.n * sizeof(float));
    dense_attention_double(p.q, p.k, p.v, 1, 1, p.L, 64, 1.0 / 8.0, dense);
    float W[64 * 64] = {0}, bias[64];
    for (int d = 0; d < 64; d++)
        W[d * 64 + d] = 2.0f, bias[d] = 0.01f * (float)d;
    sla2_tensor t_w = sla2_tensor_contiguous(W, SLA2_DTYPE_F32, 2, (int64_t[]){64, 64});
    sla2_tensor t_b = sla2_tensor_contiguous(bias, SLA2_DTYPE_F32, 1, (int64_t[]){64});
    sla2_attention_params params = {.proj_l_weight = &t_w, .proj_l_bias = &t_b};
    run(ctx, &p, &cfg, &params, NULL);
    for (int64_t r = 0; r < p.L; r++) {
        const float *qr = p.q + r * 64;
        double num[64] = {0}, den = 1e-6;
        for (int64_t c = 0; c < p.L; c++) {
            double w = 0.0;
            for (int d = 0; d < 64; d++)
                w += (double)phi(SLA2_FEATURE_SOFTMAX, qr, 64, d) * phi(SLA2_FEATURE_SOFTMAX, p.k + c * 64, 64, d);
            den += w;
            for (int d = 0; d < 64; d++)
                num[d] += w * p.v[c * 64 + d];
        }
        for (int d = 0; d < 64; d++) {
            double expected = dense[r * 64 + d] + 2.0 * num[d] / den + bias[d];
            ck_assert_double_eq_tol(p.out[r * 64 + d], expected, 1e-5);
        }
    }
    free(dense);
    sla2_context_free(ctx);
    free_problem(&p);
}
END_TEST

/* [B, L, H, D] memory seen through strides gives bit-identical results. */
START_TEST(both_layouts_give_identical_results)
{
    problem p = make_problem(31, 2, 3, 150, 64);
    size_t n = p.n;
    float *q2 = malloc(n * 4), *k2 = malloc(n * 4), *v2 = malloc(n * 4), *o2 = malloc(n * 4);
    for (int64_t b = 0; b < 2; b++)
        for (int64_t h = 0; h < 3; h++)
            for (int64_t l = 0; l < 150; l++)
                for (int64_t d = 0; d < 64; d++) {
                    size_t bhld = (size_t)(((b * 3 + h) * 150 + l) * 64 + d);
                    size_t blhd = (size_t)(((b * 150 + l) * 3 + h) * 64 + d);
                    q2[blhd] = p.q[bhld], k2[blhd] = p.k[bhld], v2[blhd] = p.v[bhld];
                }
    for (int mode = 0; mode < 3; mode++)
        for (int reference = 0; reference < 2; reference++) {
            sla2_context *ctx = test_cpu_context(reference);
            sla2_attention_config cfg = config(0.3f, (sla2_quant_mode)mode, 64);
            run(ctx, &p, &cfg, NULL, NULL);
            sla2_tensor q = sla2_tensor_blhd(q2, SLA2_DTYPE_F32, 2, 3, 150, 64);
            sla2_tensor k = sla2_tensor_blhd(k2, SLA2_DTYPE_F32, 2, 3, 150, 64);
            sla2_tensor v = sla2_tensor_blhd(v2, SLA2_DTYPE_F32, 2, 3, 150, 64);
            sla2_tensor o = sla2_tensor_blhd(o2, SLA2_DTYPE_F32, 2, 3, 150, 64);
            fill_nan(o2, n);
            ck_assert_status(sla2_attention_forward(ctx, &cfg, NULL, &q, &k, &v, &o, NULL), SLA2_OK);
            for (int64_t b = 0; b < 2; b++)
                for (int64_t h = 0; h < 3; h++)
                    for (int64_t l = 0; l < 150; l++)
                        for (int64_t d = 0; d < 64; d++) {
                            size_t bhld = (size_t)(((b * 3 + h) * 150 + l) * 64 + d);
                            size_t blhd = (size_t)(((b * 150 + l) * 3 + h) * 64 + d);
                            ck_assert_msg(memcmp(&o2[blhd], &p.out[bhld], 4) == 0, "mode %d: layouts differ", mode);
                        }
            sla2_context_free(ctx);
        }
    free(q2), free(k2), free(v2), free(o2);
    free_problem(&p);
}
END_TEST

/* F16 and BF16 inputs are read exactly: the result equals the F32 run on the
 * rounded values, up to the output's own rounding (2^-9 relative for bf16). */
START_TEST(half_precision_inputs_match_rounded_f32)
{
    problem p = make_problem(41, 1, 2, 100, 64);
    for (int which = 0; which < 2; which++) {
        sla2_dtype dtype = which ? SLA2_DTYPE_BF16 : SLA2_DTYPE_F16;
        uint16_t *q16 = malloc(p.n * 2), *k16 = malloc(p.n * 2), *v16 = malloc(p.n * 2), *o16 = malloc(p.n * 2);
        problem r = make_problem(41, 1, 2, 100, 64);
        for (size_t i = 0; i < p.n; i++) {
            q16[i] = which ? sla2_float_to_bf16(p.q[i]) : sla2_float_to_f16(p.q[i]);
            k16[i] = which ? sla2_float_to_bf16(p.k[i]) : sla2_float_to_f16(p.k[i]);
            v16[i] = which ? sla2_float_to_bf16(p.v[i]) : sla2_float_to_f16(p.v[i]);
            r.q[i] = which ? sla2_bf16_to_float(q16[i]) : sla2_f16_to_float(q16[i]);
            r.k[i] = which ? sla2_bf16_to_float(k16[i]) : sla2_f16_to_float(k16[i]);
            r.v[i] = which ? sla2_bf16_to_float(v16[i]) : sla2_f16_to_float(v16[i]);
        }
        sla2_context *ctx = test_cpu_context(1);
        sla2_attention_config cfg = config(0.5f, SLA2_QUANT_INT8_FP8, 64);
        run(ctx, &r, &cfg, NULL, NULL);
        sla2_tensor q = sla2_tensor_bhld(q16, dtype, 1, 2, 100, 64);
        sla2_tensor k = sla2_tensor_bhld(k16, dtype, 1, 2, 100, 64);
        sla2_tensor v = sla2_tensor_bhld(v16, dtype, 1, 2, 100, 64);
        sla2_tensor o = sla2_tensor_bhld(o16, dtype, 1, 2, 100, 64);
        memset(o16, 0xff, p.n * 2); /* NaN in both formats */
        ck_assert_status(sla2_attention_forward(ctx, &cfg, NULL, &q, &k, &v, &o, NULL), SLA2_OK);
        float *o32 = malloc(p.n * 4);
        for (size_t i = 0; i < p.n; i++)
            o32[i] = which ? sla2_bf16_to_float(o16[i]) : sla2_f16_to_float(o16[i]);
        double err = rel_l2(o32, r.out, p.n);
        ck_assert_msg(err < (which ? 4e-3 : 5e-4), "%s: rel L2 %.3g", sla2_dtype_name(dtype), err);
        free(o32), free(q16), free(k16), free(v16), free(o16);
        free_problem(&r);
        sla2_context_free(ctx);
    }
    free_problem(&p);
}
END_TEST

/* Quantised modes against full precision at the same mask, dense limit
 * (topk = 1) so only the quantisation differs. Bounds, measured with margin:
 * INT8 per-block Q/K costs ~1e-2 relative on unit-normal data (score error
 * ~ D * (max/127)^2 / 12 relative to the logit spread); FP8 P.V adds e4m3's
 * 2^-4 relative step on P and V, ~3e-2 in all. */
START_TEST(quantised_modes_stay_within_bounds)
{
    problem p = make_problem(51, 1, 2, 512, 128);
    sla2_context *ctx = test_cpu_context(1);
    float *full = malloc(p.n * sizeof(float));
    sla2_attention_config cfg = config(1.0f, SLA2_QUANT_NONE, 128);
    run(ctx, &p, &cfg, NULL, NULL);
    memcpy(full, p.out, p.n * sizeof(float));
    static const double bounds[3] = {0, 0.03, 0.06};
    for (int mode = 1; mode < 3; mode++) {
        cfg.quant = (sla2_quant_mode)mode;
        run(ctx, &p, &cfg, NULL, NULL);
        double err = rel_l2(p.out, full, p.n);
        ck_assert_msg(err < bounds[mode] && err > 1e-4, "%s: rel L2 %.3g against full precision (bound %.3g)",
                      sla2_quant_mode_name(cfg.quant), err, bounds[mode]);
        ck_assert_msg(cosine(p.out, full, p.n) > 0.998, "%s: cosine %.5f", sla2_quant_mode_name(cfg.quant),
                      cosine(p.out, full, p.n));
    }
    free(full);
    sla2_context_free(ctx);
    free_problem(&p);
}
END_TEST

/* Adding a constant to every key changes no softmax score (K smoothing) and
 * no router decision; with no linear branch in play (alpha = 1) the output
 * stays the same. */
START_TEST(key_offset_changes_nothing)
{
    problem p = make_problem(61, 1, 2, 320, 64);
    sla2_context *ctx = test_cpu_context(1);
    sla2_attention_config cfg = config(0.2f, SLA2_QUANT_NONE, 64);
    uint8_t mask1[2 * 5 * 5], mask2[2 * 5 * 5];
    sla2_attention_stats stats;
    sla2_attention_stats_default(&stats);
    stats.block_mask = mask1;
    stats.block_mask_elems = sizeof mask1;
    run(ctx, &p, &cfg, NULL, &stats);
    float *before = malloc(p.n * sizeof(float));
    memcpy(before, p.out, p.n * sizeof(float));
    for (int64_t h = 0; h < 2; h++)
        for (int64_t l = 0; l < p.L; l++)
            for (int64_t d = 0; d < 64; d++)
                p.k[(h * p.L + l) * 64 + d] += (d % 2) ? 3.0f : -2.0f;
    stats.block_mask = mask2;
    run(ctx, &p, &cfg, NULL, &stats);
    ck_assert(memcmp(mask1, mask2, sizeof mask1) == 0);
    ck_assert_msg(rel_l2(p.out, before, p.n) < 1e-5, "rel %.3g", rel_l2(p.out, before, p.n));
    free(before);
    sla2_context_free(ctx);
    free_problem(&p);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("attention_reference");
    TCase *tc = tcase_create("math");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, dense_limit_equals_double_attention);
    tcase_add_test(tc, linear_branch_equals_naive_formula);
    tcase_add_test(tc, mask_partitions_key_blocks);
    tcase_add_test(tc, alpha_mixes_the_branches);
    tcase_add_test(tc, sla_v1_adds_projected_full_linear_branch);
    tcase_add_test(tc, both_layouts_give_identical_results);
    tcase_add_test(tc, half_precision_inputs_match_rounded_f32);
    tcase_add_test(tc, quantised_modes_stay_within_bounds);
    tcase_add_test(tc, key_offset_changes_nothing);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
