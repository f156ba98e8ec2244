#include "model/atomic_file.h"

#include "model/errmsg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const void *data, uint64_t n)
{
    const char *p = data;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t written = write(fd, p, chunk);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0) {
            if (written == 0)
                errno = EIO;
            return 0;
        }
        p += written;
        n -= (uint64_t)written;
    }
    return 1;
}

sla2_status sla2_write_file_atomic(const char *path, const void *const *data, const uint64_t *sizes,
                                   size_t count, char *err, size_t err_size)
{
    size_t path_len = strlen(path);
    char *temp_path = malloc(path_len + 16);
    if (temp_path == NULL)
        return sla2_errmsg(err, err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    memcpy(temp_path, path, path_len);
    memcpy(temp_path + path_len, ".tmp.XXXXXX", 12);
    int fd = mkstemp(temp_path);
    if (fd < 0) {
        sla2_status status = sla2_errmsg(err, err_size, SLA2_ERR_IO, "%s: cannot create a temporary file: %s",
                                         path, strerror(errno));
        free(temp_path);
        return status;
    }
    int ok = 1;
    for (size_t i = 0; ok && i < count; i++)
        if (sizes[i] > 0)
            ok = write_all(fd, data[i], sizes[i]);
    /* mkstemp creates 0600; model and config files are meant to be shared. */
    if (ok && fchmod(fd, 0644) != 0)
        ok = 0;
    if (ok && fsync(fd) != 0)
        ok = 0;
    int saved_errno = ok ? 0 : errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        saved_errno = errno;
    }
    if (ok && rename(temp_path, path) != 0) {
        ok = 0;
        saved_errno = errno;
    }
    if (!ok)
        unlink(temp_path);
    free(temp_path);
    if (!ok)
        return sla2_errmsg(err, err_size, SLA2_ERR_IO, "%s: cannot write: %s", path, strerror(saved_errno));
    return SLA2_OK;
}
