/* Helpers shared by the Check suites: seeded random tensors, poisoning,
 * error metrics, and a double-precision dense attention oracle. */
#ifndef SLA2_TEST_UTIL_H
#define SLA2_TEST_UTIL_H

#include "sla2/sla2.h"

#include <check.h>
#include <stdint.h>

/* xorshift64*: the same numbers on every machine. */
typedef struct test_rng { uint64_t state; } test_rng;
void rng_seed(test_rng *rng, uint64_t seed);
float rng_uniform(test_rng *rng);      /* [0, 1) */
float rng_normal(test_rng *rng);       /* N(0, 1) */
void fill_normal(test_rng *rng, float *x, size_t n, float stddev);
void fill_nan(float *x, size_t n);

double rel_l2(const float *x, const float *ref, size_t n);
double cosine(const float *x, const float *ref, size_t n);
int all_finite(const float *x, size_t n);

/* softmax(q k^T * scale) v in double, [B, H, L, D] contiguous. */
void dense_attention_double(const float *q, const float *k, const float *v, int64_t B, int64_t H, int64_t L,
                            int64_t D, double scale, float *out);

/* Runs a suite; the process's exit status. */
int run_suite(Suite *suite);

/* Tensor `name` of a safetensors file as a new float array (the test fails
 * if it is missing or unreadable); *elems its length when elems is given. */
typedef struct sla2_safetensors sla2_safetensors;
float *read_tensor(const sla2_safetensors *st, const char *name, size_t *elems);

/* A CPU context (reference or fast path); fails the test if creation fails. */
sla2_context *test_cpu_context(int reference);

#define ck_assert_status(expr, expected)                                                         \
    do {                                                                                          \
        sla2_status got_ = (expr);                                                                \
        ck_assert_msg(got_ == (expected), "%s returned %s, expected %s", #expr,                   \
                      sla2_status_string(got_), sla2_status_string(expected));                    \
    } while (0)

#endif
