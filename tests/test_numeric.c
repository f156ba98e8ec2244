/* INT8, e4m3, f16 and bf16 rounding against hand-computed values; the CPU
 * softmax's exp against libm; the kernels' exact arithmetic shortcuts
 * (kernels_int8/exact_arith.h) against what they replace. */
#include "cpu/exp_fast.h"
#include "kernels_int8/exact_arith.h"
#include "numeric.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>

START_TEST(int8_rounds_half_to_even_and_saturates)
{
    ck_assert_int_eq(sla2_round_int8(2.5f), 2);
    ck_assert_int_eq(sla2_round_int8(3.5f), 4);
    ck_assert_int_eq(sla2_round_int8(-2.5f), -2);
    ck_assert_int_eq(sla2_round_int8(-0.5f), 0);
    ck_assert_int_eq(sla2_round_int8(126.6f), 127);
    ck_assert_int_eq(sla2_round_int8(127.5f), 127);
    ck_assert_int_eq(sla2_round_int8(1e9f), 127);
    ck_assert_int_eq(sla2_round_int8(-1e9f), -128);
    ck_assert_int_eq(sla2_round_int8(-INFINITY), -128);
    ck_assert_int_eq(sla2_round_int8(NAN), 0);
}
END_TEST

START_TEST(int8_block_scale_maps_max_to_127)
{
    float scale = sla2_int8_scale(2.54f);
    ck_assert_float_eq_tol(scale, 0.02f, 1e-9f);
    ck_assert_int_eq(sla2_quantize_int8(2.54f, scale), 127);
    ck_assert_int_eq(sla2_quantize_int8(-2.54f, scale), -127);
    ck_assert_int_eq(sla2_quantize_int8(0.03f, scale), 2); /* 1.5 -> 2 (even) */
    ck_assert_int_eq(sla2_quantize_int8(5.0f, 0.0f), 0);   /* an all-zero block */
}
END_TEST

START_TEST(e4m3_encodes_hand_values)
{
    ck_assert_uint_eq(sla2_float_to_e4m3(0.0f), 0x00);
    ck_assert_uint_eq(sla2_float_to_e4m3(-0.0f), 0x80);
    ck_assert_uint_eq(sla2_float_to_e4m3(1.0f), 0x38);
    ck_assert_uint_eq(sla2_float_to_e4m3(-2.0f), 0xc0);
    ck_assert_uint_eq(sla2_float_to_e4m3(448.0f), 0x7e);
    ck_assert_uint_eq(sla2_float_to_e4m3(240.0f), 0x77);
    ck_assert_uint_eq(sla2_float_to_e4m3(0.015625f), 0x08);   /* smallest normal, 2^-6 */
    ck_assert_uint_eq(sla2_float_to_e4m3(0.001953125f), 0x01); /* smallest subnormal, 2^-9 */
    ck_assert_uint_eq(sla2_float_to_e4m3(0.013671875f), 0x07); /* largest subnormal, 7 * 2^-9 */
}
END_TEST

START_TEST(e4m3_rounds_ties_to_even)
{
    ck_assert_float_eq(sla2_round_e4m3(1.0625f), 1.0f);   /* halfway 1.0 | 1.125: even mantissa 0 */
    ck_assert_float_eq(sla2_round_e4m3(1.1875f), 1.25f);  /* halfway 1.125 | 1.25: even mantissa 2 */
    ck_assert_float_eq(sla2_round_e4m3(1.07f), 1.125f);
    ck_assert_float_eq(sla2_round_e4m3(0.0009765625f), 0.0f);             /* 2^-10: halfway 0 | 2^-9 */
    ck_assert_float_eq(sla2_round_e4m3(3 * 0.0009765625f), 0.00390625f); /* 1.5 steps -> 2 steps */
    ck_assert_float_eq(sla2_round_e4m3(0.0011f), 0.001953125f);
    ck_assert_float_eq(sla2_round_e4m3(1e-6f), 0.0f);
    ck_assert_float_eq(sla2_round_e4m3(432.0f), 448.0f); /* halfway 416 | 448: mantissa 6 is even */
    ck_assert_float_eq(sla2_round_e4m3(400.0f), 384.0f); /* halfway 384 | 416: mantissa 4 is even */
}
END_TEST

START_TEST(e4m3_saturates_and_keeps_nan)
{
    ck_assert_float_eq(sla2_round_e4m3(449.0f), 448.0f);
    ck_assert_float_eq(sla2_round_e4m3(1e30f), 448.0f);
    ck_assert_float_eq(sla2_round_e4m3(-1e30f), -448.0f);
    ck_assert_float_eq(sla2_round_e4m3(INFINITY), 448.0f);
    ck_assert_uint_eq(sla2_float_to_e4m3(-INFINITY), 0xfe);
    ck_assert(isnan(sla2_round_e4m3(NAN)));
    ck_assert_uint_eq(sla2_float_to_e4m3(NAN) & 0x7f, 0x7f);
    ck_assert(isnan(sla2_e4m3_to_float(0x7f)));
    ck_assert(isnan(sla2_e4m3_to_float(0xff)));
}
END_TEST

START_TEST(e4m3_round_trips_every_code)
{
    for (int bits = 0; bits < 256; bits++) {
        if ((bits & 0x7f) == 0x7f)
            continue; /* NaN */
        float value = sla2_e4m3_to_float((uint8_t)bits);
        ck_assert_msg(sla2_float_to_e4m3(value) == bits, "code 0x%02x (%g) did not round-trip", bits,
                      (double)value);
        ck_assert_float_eq(sla2_round_e4m3(value), value);
    }
}
END_TEST

START_TEST(f16_and_bf16_round_hand_values)
{
    ck_assert_uint_eq(sla2_float_to_f16(1.0f), 0x3c00);
    ck_assert_uint_eq(sla2_float_to_f16(-2.0f), 0xc000);
    ck_assert_uint_eq(sla2_float_to_f16(65504.0f), 0x7bff);
    ck_assert_uint_eq(sla2_float_to_f16(65519.0f), 0x7bff);
    ck_assert_uint_eq(sla2_float_to_f16(65520.0f), 0x7c00);          /* rounds to infinity */
    ck_assert_uint_eq(sla2_float_to_f16(5.9604644775390625e-08f), 1); /* 2^-24, smallest subnormal */
    ck_assert_uint_eq(sla2_float_to_f16(2.98023223876953125e-08f), 0); /* 2^-25: tie to even 0 */
    ck_assert_uint_eq(sla2_float_to_f16(1.0f + 0.00048828125f), 0x3c00); /* 1 + 2^-11: tie to even */
    ck_assert_uint_eq(sla2_float_to_f16(1.0f + 3 * 0.00048828125f), 0x3c02);
    ck_assert_uint_eq(sla2_float_to_f16(NAN) & 0x7e00, 0x7e00);
    ck_assert_float_eq(sla2_f16_to_float(0x3555), 0.333251953125f);
    ck_assert_uint_eq(sla2_float_to_bf16(1.0f), 0x3f80);
    ck_assert_uint_eq(sla2_float_to_bf16(1.0f + 0.00390625f), 0x3f80); /* 1 + 2^-8: tie to even */
    ck_assert_uint_eq(sla2_float_to_bf16(1.0f + 3 * 0.00390625f), 0x3f82);
    ck_assert(isnan(sla2_bf16_to_float(sla2_float_to_bf16(NAN))));
    ck_assert_float_eq(sla2_bf16_to_float(0xc040), -3.0f);
}
END_TEST

START_TEST(f16_round_trips_every_finite_code)
{
    for (uint32_t bits = 0; bits < 0x10000; bits++) {
        if ((bits & 0x7c00) == 0x7c00)
            continue; /* inf and NaN */
        float value = sla2_f16_to_float((uint16_t)bits);
        ck_assert_msg(sla2_float_to_f16(value) == bits, "f16 0x%04x did not round-trip", bits);
    }
}
END_TEST

START_TEST(exp_nonpositive_within_3_ulp_of_expf)
{
    double worst = 0.0;
    for (float x = -87.0f; x <= 0.0f; x += 1.37e-4f) {
        float want = expf(x), got = sla2_exp_nonpositive(x);
        double ulp = nextafterf(want, INFINITY) - want;
        double err = fabs((double)got - want) / ulp;
        worst = err > worst ? err : worst;
    }
    ck_assert_msg(worst <= 3.0, "worst error %.2f ulp", worst);
    ck_assert_float_eq(sla2_exp_nonpositive(0.0f), 1.0f);
    /* Below the clamp, -inf and NaN: the value at -87, tiny and positive. */
    float floor_value = sla2_exp_nonpositive(-87.0f);
    ck_assert(floor_value > 0.0f && floor_value < 1e-37f);
    ck_assert_float_eq(sla2_exp_nonpositive(-1e30f), floor_value);
    ck_assert_float_eq(sla2_exp_nonpositive(-INFINITY), floor_value);
    ck_assert_float_eq(sla2_exp_nonpositive(NAN), floor_value);
}
END_TEST

/* The GPU quantisers divide by a scale as sla2k_div_by(x, s, 1 / s): it
 * must give the IEEE quotient that the CPU reference's x / s gives, ties
 * included (bf16 inputs against a bf16 block maximum land on them often). */
START_TEST(div_by_matches_ieee_division)
{
    srand(7);
    long compared = 0, differ = 0;
    const float divisors[2] = {SLA2_INT8_MAX, SLA2_FP8_MAX};
    for (int it = 0; it < 100000; ++it) {
        const float amax = sla2_bf16_to_float(
            sla2_float_to_bf16(ldexpf(0.5f + (float)rand() / RAND_MAX, rand() % 60 - 30)));
        for (int k = 0; k < 2; ++k) {
            const float s = amax / divisors[k], inv_s = sla2k_inv_scale(s);
            for (int j = 0; j < 8; ++j) {
                float x = amax * (2.0f * (float)rand() / RAND_MAX - 1.0f);
                if (j == 0)
                    x = amax;
                if (j == 1)
                    x = -amax / 2.0f; /* a tie: -63.5 or -224 */
                x = sla2_bf16_to_float(sla2_float_to_bf16(x));
                const float q = sla2k_div_by(x, s, inv_s);
                differ += q != x / s;
                differ += k == 0 ? sla2_round_int8(q) != sla2_quantize_int8(x, s)
                                 : sla2_float_to_e4m3(q) != sla2_float_to_e4m3(x / s);
                ++compared;
            }
        }
    }
    ck_assert_int_eq(compared, 100000L * 16);
    ck_assert_int_eq(differ, 0);
    /* an all-zero block: scale 0, reciprocal taken as 0 */
    ck_assert_float_eq(sla2k_div_by(3.0f, 0.0f, sla2k_inv_scale(0.0f)), 0.0f);
    /* a scale below 2^-128 (a block of values below ~1e-36): its reciprocal
     * overflows and is taken as 0 too, so the code is 0, not NaN; just above,
     * the shortcut is still the IEEE quotient */
    const float tiny = ldexpf(1.0f, -130);
    ck_assert_float_eq(sla2k_inv_scale(tiny), 0.0f);
    ck_assert_float_eq(sla2k_div_by(tiny * 100.0f, tiny, sla2k_inv_scale(tiny)), 0.0f);
    const float small = ldexpf(1.0f, -127);
    ck_assert(sla2k_inv_scale(small) == ldexpf(1.0f, 127));
    ck_assert_float_eq(sla2k_div_by(small * 100.0f, small, sla2k_inv_scale(small)), 100.0f);
}
END_TEST

/* The sparse kernel's INT8 sums come out of accumulators started at
 * SLA2K_SUM_BIAS; over the whole range of a head_dim 128 sum they read
 * back exactly. */
START_TEST(biased_int_sums_read_back_exactly)
{
    const int bound = 128 * 128 * 128; /* |q8 . k8| at D = 128, q8, k8 in [-128, 127] */
    const int samples[] = {0, 1, -1, 127, -128, 2064512, -2064512, bound, -bound, (1 << 22) - 1, -(1 << 22) + 1};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; ++i)
        ck_assert_float_eq(sla2k_biased_sum_to_float(SLA2K_SUM_BIAS + samples[i]), (float)samples[i]);
    for (int x = -bound; x <= bound; x += 977)
        ck_assert_float_eq(sla2k_biased_sum_to_float(SLA2K_SUM_BIAS + x), (float)x);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("numeric");
    TCase *tc = tcase_create("rounding");
    tcase_add_test(tc, int8_rounds_half_to_even_and_saturates);
    tcase_add_test(tc, int8_block_scale_maps_max_to_127);
    tcase_add_test(tc, e4m3_encodes_hand_values);
    tcase_add_test(tc, e4m3_rounds_ties_to_even);
    tcase_add_test(tc, e4m3_saturates_and_keeps_nan);
    tcase_add_test(tc, e4m3_round_trips_every_code);
    tcase_add_test(tc, f16_and_bf16_round_hand_values);
    tcase_add_test(tc, f16_round_trips_every_finite_code);
    tcase_add_test(tc, exp_nonpositive_within_3_ulp_of_expf);
    tcase_add_test(tc, div_by_matches_ieee_division);
    tcase_add_test(tc, biased_int_sums_read_back_exactly);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
