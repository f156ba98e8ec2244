/* Helpers of the GPU checks in tests/gpu/dit (the Check suites have their
 * own in tests/test_util.h, which needs Check): error metrics and a seeded
 * generator. */
#ifndef SLA2_TEST_GPU_CHECK_UTIL_H
#define SLA2_TEST_GPU_CHECK_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* ||a - ref|| / ||ref|| in double; infinite when a has a non-finite value */
double rel_l2(const float *a, const float *ref, size_t n);
double cosine(const float *a, const float *b, size_t n);
int all_finite(const float *a, size_t n);

/* uniform in [-range, range], from a linear congruential state */
int small_int(uint64_t *state, int range);
/* Irwin-Hall of four uniforms: mean 0, rms 1, within +-3.5 */
float gaussian(uint64_t *state);

#endif
