#include "model/errmsg.h"

#include <stdio.h>

sla2_status sla2_errmsg(char *err, size_t err_size, sla2_status status, const char *fmt, ...)
{
    if (err != NULL && err_size > 0) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(err, err_size, fmt, args);
        va_end(args);
    }
    return status;
}

const char *sla2_display_name(char *out, const char *name, size_t name_len)
{
    const size_t max_bytes = 120;
    size_t n = name_len;
    int cut = 0;
    if (n > max_bytes) {
        n = max_bytes;
        /* Do not end inside a multi-byte character. */
        while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
            n--;
        cut = 1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        out[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (cut) {
        out[o++] = '.';
        out[o++] = '.';
        out[o++] = '.';
    }
    out[o] = '\0';
    return out;
}
