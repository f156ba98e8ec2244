/* The model handle behind sla2/pipeline.h. */
#ifndef SLA2_PIPELINE_MODEL_H
#define SLA2_PIPELINE_MODEL_H

#include "dit/dit.h"
#include "dit/dit_backend.h"
#include "sla2/pipeline.h"

struct sla2_model {
    sla2_context *ctx; /* borrowed: the weights live in its backend */
    sla2_model_config config;
    dit_weights weights;
    int storage_chosen; /* 1: the load options chose the storage (their own or a runtime file's) */
    int grid[3];
    int64_t tokens;
};

#endif
