/* Random weights for a Wan2.1-architecture DiT, as a safetensors file that
 * dit_weights_load accepts: every tensor the model config implies (Wan's
 * names plus SLA2's, section 6 of ARCHITECTURE.md), nothing else. For
 * benchmarks and tests that need a model of a given shape, not a trained one.
 * Internal (links against sla2_static). */
#ifndef SLA2_RANDOM_DIT_WEIGHTS_H
#define SLA2_RANDOM_DIT_WEIGHTS_H

#include "model/config.h"
#include "model/safetensors.h"

#include <stdint.h>

/* Writes the file at path in dtype (SLA2_ST_F32 or SLA2_ST_BF16). Values:
 * linear weights uniform with std 1/sqrt(fan_in), biases within +-0.02,
 * norm weights 1 +- 0.1, modulation within +-0.1, routers with std
 * 1/sqrt(head_dim), alpha logits in [1, 3]. The same seed gives the same
 * file. Errors: those of sla2_safetensors_write, SLA2_ERR_UNSUPPORTED
 * (another dtype), SLA2_ERR_OUT_OF_MEMORY. */
sla2_status dit_random_weights_write(const sla2_model_config *config, const char *path, sla2_st_dtype dtype,
                                     uint64_t seed, char *err, size_t err_size);

#endif
