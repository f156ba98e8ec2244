/* exp(x) for x <= 0 in straight-line float arithmetic, so that gcc vectorises
 * the softmax loops that call it (libm's expf is a call per element; it and
 * the max were half of a dense CPU forward). Cody-Waite range reduction and a
 * degree-6 polynomial: within 3 ulp of expf over [-87, 0] (tests/test_numeric.c);
 * anything below -87 (NaN and -inf too) gives exp(-87) ~ 1.6e-38, which no
 * softmax row sum notices. A file that calls it in a loop is compiled with
 * -fno-trapping-math (sdk/CMakeLists.txt): otherwise gcc keeps the clamp's
 * compare out of vectors, since it may raise a floating-point exception. */
#ifndef SLA2_EXP_FAST_H
#define SLA2_EXP_FAST_H

#include <stdint.h>
#include <string.h>

static inline float sla2_exp_nonpositive(float x)
{
    x = x > -87.0f ? x : -87.0f; /* NaN too */
    /* n = round(x / ln 2); adding 1.5 * 2^23 rounds without a libm call. */
    const float shifter = 12582912.0f;
    float n = (x * 1.44269504088896341f + shifter) - shifter;
    float r = x - n * 0.693145751953125f; /* ln 2, high bits: n * hi is exact */
    r = r - n * 1.42860682030941723e-6f;  /* ln 2, the rest */
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t scale_bits = ((int32_t)n + 127) << 23; /* 2^n; n >= -126 here */
    float scale;
    memcpy(&scale, &scale_bits, sizeof scale);
    return p * scale;
}

#endif
