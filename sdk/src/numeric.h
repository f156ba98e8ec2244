/* Number formats the SDK rounds through, simulated exactly on the CPU so
 * that the reference computes what the GPU kernels compute (ARCHITECTURE.md
 * section 2, "Quantized sparse branch"). */
#ifndef SLA2_NUMERIC_H
#define SLA2_NUMERIC_H

#include <stdint.h>

/* INT8 round-to-nearest-even with saturation to [-128, 127]; NaN -> 0
 * (what PTX cvt.rni.sat.s8.f32 does). */
int8_t sla2_round_int8(float x);

/* Per-block symmetric scale: max|x| / 127 (0 when the block is all zero). */
float sla2_int8_scale(float max_abs);

/* x / scale rounded to INT8; 0 when scale is 0. */
int8_t sla2_quantize_int8(float x, float scale);

/* float -> e4m3 (OCP "FN": bias 7, no infinities, max 448, NaN = 0x7f/0xff),
 * round-to-nearest-even, saturating to +-448 (PTX cvt.rn.satfinite.e4m3x2). */
uint8_t sla2_float_to_e4m3(float x);
float sla2_e4m3_to_float(uint8_t bits);
/* The value x becomes after a round trip through e4m3. */
float sla2_round_e4m3(float x);

/* IEEE half and bfloat16, round-to-nearest-even; NaN stays NaN. */
uint16_t sla2_float_to_f16(float x);
float sla2_f16_to_float(uint16_t bits);
uint16_t sla2_float_to_bf16(float x);
float sla2_bf16_to_float(uint16_t bits);
float sla2_round_f16(float x);

/* The static scale of P in FP8 (P in [0, 1] maps onto e4m3's range). */
#define SLA2_FP8_MAX 448.0f
#define SLA2_INT8_MAX 127.0f

#endif
