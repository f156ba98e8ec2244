/* Exact arithmetic shortcuts of the kernels, in plain C as well, so that
 * the CPU tests check them bit for bit (tests/test_numeric.c). */
#pragma once

#include <math.h>
#include <string.h>

#ifdef __CUDACC__
#define SLA2K_EXACT __host__ __device__ __forceinline__
#else
#define SLA2K_EXACT static inline
#endif

/* x / s rounded exactly as the IEEE division (the CPU reference's), given
 * inv_s = 1 / s correctly rounded (0 where s = 0: the result is then 0):
 * one multiply and Markstein's fma correction, three instructions on the
 * fma pipe where the division takes a longer sequence through MUFU.RCP.
 * Exact for quotients in the normal range; a plain x * inv_s would move
 * quantised values across their rounding ties (bf16 inputs hit those
 * often), away from the CPU's. */
SLA2K_EXACT float sla2k_div_by(float x, float s, float inv_s)
{
    const float q = x * inv_s;
    return fmaf(fmaf(-q, s, x), inv_s, q);
}

/* The inv_s that sla2k_div_by takes: 1 / s, or 0 for a scale of 0 (an
 * all-zero block or channel quantises to 0) and for one below 2^-128, whose
 * reciprocal overflows (a block or channel whose largest value is below
 * about 1e-36 then quantises to 0, where the CPU reference keeps codes
 * worth that much; an infinite reciprocal made NaN codes). */
SLA2K_EXACT float sla2k_inv_scale(float s)
{
    const float inv = 1.0f / s;
    return s > 0.0f && inv <= 3.40282347e38f ? inv : 0.0f;
}

/* An INT8 mma accumulator started at SLA2K_SUM_BIAS holds the bits of the
 * float 1.5 * 2^23 + sum for |sum| < 2^22 (D = 128: at most 128 * 128^2),
 * so one subtraction turns it into the float sum, exactly: no I2F, whose
 * pipe the softmax's exp2f's need too. */
#define SLA2K_SUM_BIAS 0x4B400000
SLA2K_EXACT float sla2k_biased_sum_to_float(int biased)
{
    float f;
    memcpy(&f, &biased, sizeof f);
    return f - 12582912.0f; /* 1.5 * 2^23 */
}
