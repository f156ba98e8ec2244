#include "numeric.h"

#include <math.h>
#include <string.h>

int8_t sla2_round_int8(float x)
{
    if (isnan(x))
        return 0;
    float r = rintf(x); /* the default rounding mode is to nearest even */
    if (r > 127.0f)
        return 127;
    if (r < -128.0f)
        return -128;
    return (int8_t)r;
}

float sla2_int8_scale(float max_abs)
{
    return max_abs / SLA2_INT8_MAX;
}

int8_t sla2_quantize_int8(float x, float scale)
{
    return scale > 0.0f ? sla2_round_int8(x / scale) : 0;
}

static uint32_t float_bits(float x);
static float bits_float(uint32_t u);

/* Rounds the float's 23-bit mantissa to e4m3's 3 bits, nearest even, with
 * integer arithmetic on the bits (the carry into the exponent is the right
 * answer); below 2^-6 e4m3 is subnormal with a fixed step of 2^-9. */
float sla2_round_e4m3(float x)
{
    if (isnan(x))
        return x;
    uint32_t bits = float_bits(x), sign = bits & 0x80000000u, magnitude = bits & 0x7fffffffu;
    float a = bits_float(magnitude);
    if (a >= SLA2_FP8_MAX)
        return bits_float(sign | float_bits(SLA2_FP8_MAX));
    if (a < 0.015625f) /* exact: the step is a power of two */
        return bits_float(sign | float_bits(rintf(a * 512.0f) / 512.0f));
    magnitude += 0x7ffffu + ((magnitude >> 20) & 1u);
    magnitude &= 0xfff00000u;
    return bits_float(sign | magnitude);
}

uint8_t sla2_float_to_e4m3(float x)
{
    if (isnan(x))
        return signbit(x) ? 0xff : 0x7f;
    float r = sla2_round_e4m3(x);
    uint8_t sign = signbit(r) ? 0x80 : 0x00;
    float a = fabsf(r);
    if (a == 0.0f)
        return sign;
    int e2;
    float m = frexpf(a, &e2); /* a = m * 2^e2, m in [0.5, 1) */
    int exponent = e2 - 1;
    if (exponent < -6) /* subnormal: a = mant * 2^-9 */
        return sign | (uint8_t)lrintf(a * 512.0f);
    uint8_t mant = (uint8_t)lrintf((m * 2.0f - 1.0f) * 8.0f);
    return sign | (uint8_t)((exponent + 7) << 3) | mant;
}

float sla2_e4m3_to_float(uint8_t bits)
{
    int sign = bits & 0x80;
    int exponent = (bits >> 3) & 0xf;
    int mant = bits & 0x7;
    float v;
    if (exponent == 0xf && mant == 0x7)
        return NAN;
    if (exponent == 0)
        v = ldexpf((float)mant, -9);
    else
        v = ldexpf(1.0f + (float)mant / 8.0f, exponent - 7);
    return sign ? -v : v;
}

static uint32_t float_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float bits_float(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

uint16_t sla2_float_to_bf16(float x)
{
    uint32_t u = float_bits(x);
    if (isnan(x))
        return (uint16_t)((u >> 16) | 0x40); /* keep it a (quiet) NaN */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float sla2_bf16_to_float(uint16_t bits)
{
    return bits_float((uint32_t)bits << 16);
}

uint16_t sla2_float_to_f16(float x)
{
    uint32_t u = float_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t abs_bits = u & 0x7fffffff;
    if (abs_bits > 0x7f800000)
        return sign | 0x7e00; /* NaN */
    if (abs_bits >= 0x477ff000) /* rounds to >= 65520: infinity */
        return sign | 0x7c00;
    float a = bits_float(abs_bits);
    if (a < 6.103515625e-05f) { /* subnormal half: steps of 2^-24 */
        return sign | (uint16_t)lrintf(a * 16777216.0f);
    }
    /* normal: round the mantissa to 10 bits, nearest even */
    uint32_t rounded = abs_bits + 0x0fff + ((abs_bits >> 13) & 1);
    uint32_t exponent = (rounded >> 23) - 127 + 15;
    return sign | (uint16_t)((exponent << 10) | ((rounded >> 13) & 0x3ff));
}

float sla2_f16_to_float(uint16_t bits)
{
    uint32_t sign = (uint32_t)(bits & 0x8000) << 16;
    int exponent = (bits >> 10) & 0x1f;
    uint32_t mant = bits & 0x3ff;
    if (exponent == 0x1f)
        return bits_float(sign | 0x7f800000 | (mant << 13));
    if (exponent == 0) {
        float v = ldexpf((float)mant, -24);
        return sign ? -v : v;
    }
    return bits_float(sign | ((uint32_t)(exponent - 15 + 127) << 23) | (mant << 13));
}

float sla2_round_f16(float x)
{
    return sla2_f16_to_float(sla2_float_to_f16(x));
}
