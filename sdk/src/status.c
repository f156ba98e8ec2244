#include "internal.h"

#include <stdio.h>

const char *sla2_status_string(sla2_status status)
{
    switch (status) {
    case SLA2_OK: return "SLA2_OK";
    case SLA2_ERR_NULL_ARGUMENT: return "SLA2_ERR_NULL_ARGUMENT";
    case SLA2_ERR_INVALID_VALUE: return "SLA2_ERR_INVALID_VALUE";
    case SLA2_ERR_DTYPE: return "SLA2_ERR_DTYPE";
    case SLA2_ERR_SHAPE: return "SLA2_ERR_SHAPE";
    case SLA2_ERR_UNSUPPORTED: return "SLA2_ERR_UNSUPPORTED";
    case SLA2_ERR_OUT_OF_MEMORY: return "SLA2_ERR_OUT_OF_MEMORY";
    case SLA2_ERR_BACKEND: return "SLA2_ERR_BACKEND";
    case SLA2_ERR_IO: return "SLA2_ERR_IO";
    case SLA2_ERR_FORMAT: return "SLA2_ERR_FORMAT";
    case SLA2_ERR_CANCELLED: return "SLA2_ERR_CANCELLED";
    }
    return "SLA2_ERR_UNKNOWN";
}

sla2_status sla2_fail(sla2_context *ctx, sla2_status status, const char *fmt, ...)
{
    if (ctx) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(ctx->last_error, sizeof ctx->last_error, fmt, args);
        va_end(args);
    }
    return status;
}

void sla2_clear_error(sla2_context *ctx)
{
    if (ctx)
        ctx->last_error[0] = '\0';
}
