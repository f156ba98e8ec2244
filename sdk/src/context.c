#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sla2_context_options_default(sla2_context_options *options)
{
    if (!options)
        return;
    memset(options, 0, sizeof *options);
    options->size = sizeof *options;
    options->backend = SLA2_BACKEND_AUTO;
}

static void copy_message(char *dst, size_t dst_size, const char *msg)
{
    if (dst && dst_size > 0)
        snprintf(dst, dst_size, "%s", msg);
}

static sla2_status init_backend(sla2_context *ctx, const sla2_context_options *options)
{
    switch (options->backend) {
    case SLA2_BACKEND_CPU:
        return sla2_cpu_backend_init(ctx);
    case SLA2_BACKEND_CUDA:
#ifdef SLA2_HAVE_CUDA
    {
        /* the backend sets ops and state; which backend this is, the front end records */
        sla2_status s = sla2_cuda_backend_init(ctx, options->device);
        if (s == SLA2_OK)
            ctx->backend = SLA2_BACKEND_CUDA;
        return s;
    }
#else
        return sla2_fail(ctx, SLA2_ERR_UNSUPPORTED,
                         "backend CUDA: this build of libsla2 has no CUDA backend (configure with nvcc present)");
#endif
    case SLA2_BACKEND_AUTO:
#ifdef SLA2_HAVE_CUDA
        if (sla2_cuda_backend_init(ctx, options->device) == SLA2_OK) {
            ctx->backend = SLA2_BACKEND_CUDA;
            return SLA2_OK;
        }
        sla2_clear_error(ctx);
#endif
        return sla2_cpu_backend_init(ctx);
    }
    return sla2_fail(ctx, SLA2_ERR_INVALID_VALUE, "options.backend: unknown value %d", (int)options->backend);
}

sla2_status sla2_context_create(const sla2_context_options *options, sla2_context **out,
                                char *error_message, size_t error_message_size)
{
    sla2_context_options defaults;
    sla2_context_options_default(&defaults);
    if (!out) {
        copy_message(error_message, error_message_size, "out: must not be NULL");
        return SLA2_ERR_NULL_ARGUMENT;
    }
    if (options && options->size != sizeof *options) {
        copy_message(error_message, error_message_size,
                     "options.size: not sizeof(sla2_context_options); call sla2_context_options_default first");
        return SLA2_ERR_INVALID_VALUE;
    }
    if (!options)
        options = &defaults;
    if (options->num_threads < 0) {
        copy_message(error_message, error_message_size, "options.num_threads: must be >= 0");
        return SLA2_ERR_INVALID_VALUE;
    }
    if (options->device < 0) {
        copy_message(error_message, error_message_size, "options.device: must be >= 0");
        return SLA2_ERR_INVALID_VALUE;
    }
    sla2_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        copy_message(error_message, error_message_size, "out of host memory for the context");
        return SLA2_ERR_OUT_OF_MEMORY;
    }
    ctx->num_threads = options->num_threads;
    ctx->cpu_reference = options->cpu_reference != 0;
    sla2_status status = init_backend(ctx, options);
    if (status != SLA2_OK) {
        copy_message(error_message, error_message_size, ctx->last_error);
        sla2_context_free(ctx);
        return status;
    }
    sla2_clear_error(ctx);
    *out = ctx;
    return SLA2_OK;
}

void sla2_context_free(sla2_context *ctx)
{
    if (!ctx)
        return;
    if (ctx->ops && ctx->ops->destroy)
        ctx->ops->destroy(ctx);
    free(ctx);
}

sla2_backend sla2_context_backend(const sla2_context *ctx)
{
    return ctx ? ctx->backend : SLA2_BACKEND_CPU;
}

const char *sla2_context_device_name(const sla2_context *ctx)
{
    return ctx ? ctx->device_name : "";
}

const char *sla2_context_last_error(const sla2_context *ctx)
{
    return ctx ? ctx->last_error : "ctx: NULL context";
}
