/* Writing a file so that readers see the old file or the whole new one:
 * a temporary file in the same directory, fsync, then rename. */
#ifndef SLA2_MODEL_ATOMIC_FILE_H
#define SLA2_MODEL_ATOMIC_FILE_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/* Writes the concatenation of count chunks (data[i], sizes[i] bytes; a
 * NULL data[i] must have size 0) to path, mode 0644. Errors: SLA2_ERR_IO,
 * SLA2_ERR_OUT_OF_MEMORY; nothing is left behind on failure. */
sla2_status sla2_write_file_atomic(const char *path, const void *const *data, const uint64_t *sizes,
                                   size_t count, char *err, size_t err_size);

#endif
