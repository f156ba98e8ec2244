/* sla2_safetensors_write: the fixtures' and train/ export's writer. */
#include "model/safetensors.h"

#include "model/atomic_file.h"
#include "model/errmsg.h"
#include "model/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct text_buffer {
    char *chars;
    size_t len, capacity;
    int failed;
} text_buffer;

static void append(text_buffer *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 256;
        while (capacity < b->len + n + 1)
            capacity *= 2;
        char *grown = realloc(b->chars, capacity);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        b->chars = grown;
        b->capacity = capacity;
    }
    memcpy(b->chars + b->len, s, n);
    b->len += n;
    b->chars[b->len] = '\0';
}

static void append_str(text_buffer *b, const char *s)
{
    append(b, s, strlen(s));
}

static void append_json_string(text_buffer *b, const char *s)
{
    append(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char escaped[8];
        if (*c == '"' || *c == '\\') {
            escaped[0] = '\\';
            escaped[1] = (char)*c;
            append(b, escaped, 2);
        } else if (*c < 0x20) {
            snprintf(escaped, sizeof escaped, "\\u%04x", *c);
            append(b, escaped, 6);
        } else {
            append(b, (const char *)c, 1);
        }
    }
    append(b, "\"", 1);
}

static void append_u64(text_buffer *b, uint64_t v)
{
    char digits[24];
    snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    append_str(b, digits);
}

static int compare_cstr_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name that appears twice in names[0, n), or NULL. */
static const char *find_duplicate(const char *const *names, size_t n, sla2_status *status)
{
    *status = SLA2_OK;
    if (n < 2)
        return NULL;
    const char **sorted = malloc(n * sizeof *sorted);
    if (sorted == NULL) {
        *status = SLA2_ERR_OUT_OF_MEMORY;
        return NULL;
    }
    memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, compare_cstr_ptr);
    const char *duplicate = NULL;
    for (size_t i = 1; i < n && duplicate == NULL; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            duplicate = sorted[i];
    free(sorted);
    return duplicate;
}

static sla2_status check_tensor(const sla2_st_write_tensor *t, size_t index, uint64_t *num_bytes,
                                char *err, size_t err_size)
{
    char name[SLA2_DISPLAY_NAME_SIZE];
    if (t->name == NULL || t->name[0] == '\0')
        return sla2_errmsg(err, err_size, SLA2_ERR_INVALID_VALUE, "tensors[%zu]: the name is %s", index,
                           t->name == NULL ? "NULL" : "empty");
    sla2_display_name(name, t->name, strlen(t->name));
    if (!sla2_utf8_valid(t->name, strlen(t->name)) || strcmp(t->name, "__metadata__") == 0)
        return sla2_errmsg(err, err_size, SLA2_ERR_INVALID_VALUE, "tensor '%s': the name is %s", name,
                           strcmp(t->name, "__metadata__") == 0 ? "reserved" : "not valid UTF-8");
    if (sla2_st_dtype_size(t->dtype) == 0)
        return sla2_errmsg(err, err_size, SLA2_ERR_INVALID_VALUE, "tensor '%s': unknown dtype %d", name,
                           (int)t->dtype);
    if (t->ndim < 0 || t->ndim > SLA2_ST_MAX_DIMS || (t->ndim > 0 && t->shape == NULL))
        return sla2_errmsg(err, err_size, SLA2_ERR_INVALID_VALUE, "tensor '%s': ndim %d %s", name, t->ndim,
                           t->ndim > 0 && t->ndim <= SLA2_ST_MAX_DIMS ? "with a NULL shape" : "is out of range");
    uint64_t elems = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0)
            return sla2_errmsg(err, err_size, SLA2_ERR_INVALID_VALUE, "tensor '%s': shape[%d] is negative", name, i);
        uint64_t d = (uint64_t)t->shape[i];
        if (d != 0 && elems > UINT64_MAX / d / 8)
            return sla2_errmsg(err, err_size, SLA2_ERR_INVALID_VALUE, "tensor '%s': the shape is too large", name);
        elems *= d;
    }
    *num_bytes = elems * sla2_st_dtype_size(t->dtype);
    if (*num_bytes > 0 && t->data == NULL)
        return sla2_errmsg(err, err_size, SLA2_ERR_NULL_ARGUMENT, "tensor '%s': data is NULL", name);
    return SLA2_OK;
}

static sla2_status check_arguments(const sla2_st_write_tensor *tensors, size_t count,
                                   const char *const *keys, const char *const *values,
                                   size_t metadata_count, uint64_t *num_bytes, char *err, size_t err_size)
{
    for (size_t i = 0; i < count; i++) {
        sla2_status status = check_tensor(&tensors[i], i, &num_bytes[i], err, err_size);
        if (status != SLA2_OK)
            return status;
    }
    for (size_t i = 0; i < metadata_count; i++) {
        if (keys[i] == NULL || values[i] == NULL)
            return sla2_errmsg(err, err_size, SLA2_ERR_NULL_ARGUMENT, "metadata[%zu]: the %s is NULL", i,
                               keys[i] == NULL ? "key" : "value");
        if (!sla2_utf8_valid(keys[i], strlen(keys[i])) || !sla2_utf8_valid(values[i], strlen(values[i])))
            return sla2_errmsg(err, err_size, SLA2_ERR_INVALID_VALUE, "metadata[%zu]: not valid UTF-8", i);
    }
    const char **names = malloc((count ? count : 1) * sizeof *names);
    if (names == NULL)
        return sla2_errmsg(err, err_size, SLA2_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < count; i++)
        names[i] = tensors[i].name;
    sla2_status status;
    char shown[SLA2_DISPLAY_NAME_SIZE];
    const char *duplicate = find_duplicate(names, count, &status);
    free(names);
    if (status == SLA2_OK && duplicate != NULL)
        return sla2_errmsg(err, err_size, SLA2_ERR_INVALID_VALUE, "tensor '%s' appears twice",
                           sla2_display_name(shown, duplicate, strlen(duplicate)));
    if (status == SLA2_OK)
        duplicate = find_duplicate(keys, metadata_count, &status);
    if (status == SLA2_OK && duplicate != NULL)
        return sla2_errmsg(err, err_size, SLA2_ERR_INVALID_VALUE, "metadata key '%s' appears twice",
                           sla2_display_name(shown, duplicate, strlen(duplicate)));
    if (status != SLA2_OK)
        return sla2_errmsg(err, err_size, status, "out of memory");
    return SLA2_OK;
}

static void build_header(text_buffer *b, const sla2_st_write_tensor *tensors, size_t count,
                         const char *const *keys, const char *const *values, size_t metadata_count,
                         const uint64_t *num_bytes)
{
    append_str(b, "{");
    if (metadata_count > 0) {
        append_str(b, "\"__metadata__\":{");
        for (size_t i = 0; i < metadata_count; i++) {
            if (i)
                append_str(b, ",");
            append_json_string(b, keys[i]);
            append_str(b, ":");
            append_json_string(b, values[i]);
        }
        append_str(b, "}");
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < count; i++) {
        const sla2_st_write_tensor *t = &tensors[i];
        if (i || metadata_count)
            append_str(b, ",");
        append_json_string(b, t->name);
        append_str(b, ":{\"dtype\":\"");
        append_str(b, sla2_st_dtype_name(t->dtype));
        append_str(b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d)
                append_str(b, ",");
            append_u64(b, (uint64_t)t->shape[d]);
        }
        append_str(b, "],\"data_offsets\":[");
        append_u64(b, offset);
        append_str(b, ",");
        append_u64(b, offset + num_bytes[i]);
        append_str(b, "]}");
        offset += num_bytes[i];
    }
    append_str(b, "}");
    while (b->len % 8 != 0)
        append_str(b, " ");
}

static sla2_status write_file(const char *path, const text_buffer *header, const sla2_st_write_tensor *tensors,
                              size_t count, const uint64_t *num_bytes, char *err, size_t err_size)
{
    /* [length][header][tensor 0]...[tensor count-1] */
    const void **chunks = malloc((count + 2) * sizeof *chunks);
    uint64_t *sizes = malloc((count + 2) * sizeof *sizes);
    if (chunks == NULL || sizes == NULL) {
        free(chunks);
        free(sizes);
        return sla2_errmsg(err, err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    unsigned char length_field[8];
    for (int i = 0; i < 8; i++)
        length_field[i] = (unsigned char)((uint64_t)header->len >> (8 * i));
    chunks[0] = length_field;
    sizes[0] = 8;
    chunks[1] = header->chars;
    sizes[1] = header->len;
    for (size_t i = 0; i < count; i++) {
        chunks[i + 2] = tensors[i].data;
        sizes[i + 2] = num_bytes[i];
    }
    sla2_status status = sla2_write_file_atomic(path, chunks, sizes, count + 2, err, err_size);
    free(chunks);
    free(sizes);
    return status;
}

sla2_status sla2_safetensors_write(const char *path, const sla2_st_write_tensor *tensors,
                                   size_t count, const char *const *metadata_keys,
                                   const char *const *metadata_values, size_t metadata_count,
                                   char *err, size_t err_size)
{
    if (path == NULL || (count > 0 && tensors == NULL) ||
        (metadata_count > 0 && (metadata_keys == NULL || metadata_values == NULL)))
        return sla2_errmsg(err, err_size, SLA2_ERR_NULL_ARGUMENT, "sla2_safetensors_write: %s is NULL",
                           path == NULL ? "path" : (count > 0 && tensors == NULL) ? "tensors" : "metadata");
    uint64_t *num_bytes = calloc(count ? count : 1, sizeof *num_bytes);
    if (num_bytes == NULL)
        return sla2_errmsg(err, err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    sla2_status status = check_arguments(tensors, count, metadata_keys, metadata_values, metadata_count,
                                         num_bytes, err, err_size);
    text_buffer header = {0};
    if (status == SLA2_OK) {
        build_header(&header, tensors, count, metadata_keys, metadata_values, metadata_count, num_bytes);
        if (header.failed)
            status = sla2_errmsg(err, err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        else if (header.len > SLA2_ST_MAX_HEADER_BYTES)
            status = sla2_errmsg(err, err_size, SLA2_ERR_INVALID_VALUE,
                                 "%s: the header would be %zu bytes, over the limit of %u", path, header.len,
                                 SLA2_ST_MAX_HEADER_BYTES);
    }
    if (status == SLA2_OK)
        status = write_file(path, &header, tensors, count, num_bytes, err, err_size);
    free(header.chars);
    free(num_bytes);
    return status;
}
