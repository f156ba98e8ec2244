/* Error messages for the model loaders: they go into a buffer the caller
 * owns (char *err, size_t err_size; NULL or 0 to ignore them), so that the
 * loaders need no context and stay safe to call from several threads. */
#ifndef SLA2_MODEL_ERRMSG_H
#define SLA2_MODEL_ERRMSG_H

#include "internal.h"

#include <stddef.h>

/* Formats a message into err (truncating to err_size, NUL included) and
 * returns status, for `return sla2_errmsg(err, err_size, SLA2_ERR_IO, ...)`. */
sla2_status sla2_errmsg(char *err, size_t err_size, sla2_status status, const char *fmt, ...)
    SLA2_PRINTF(4, 5);

/* A name made fit for a message: at most 120 bytes (cut at a UTF-8
 * character boundary, "..." appended), control characters shown as '?'.
 * out must hold SLA2_DISPLAY_NAME_SIZE bytes. Returns out. */
#define SLA2_DISPLAY_NAME_SIZE 128
const char *sla2_display_name(char *out, const char *name, size_t name_len);

#endif
