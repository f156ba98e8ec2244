#include "model/safetensors.h"

#include "model/errmsg.h"
#include "model/json.h"
#include "numeric.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "safetensors data is little-endian; big-endian hosts are not supported"
#endif

struct sla2_safetensors {
    char *name;                /* the path, for messages */
    void *map;                 /* NULL when opened from memory */
    size_t map_size;
    const unsigned char *data; /* the data area */
    uint64_t data_size;
    sla2_st_tensor *tensors;   /* sorted by (data_begin, name) */
    size_t count;
    const sla2_st_tensor **by_name;
    char **metadata_keys;      /* sorted by key */
    char **metadata_values;
    size_t metadata_count;
};

static const struct {
    const char *name;
    size_t size;
} dtype_table[SLA2_ST_NUM_DTYPES] = {
    [SLA2_ST_F32] = {"F32", 4},
    [SLA2_ST_F16] = {"F16", 2},
    [SLA2_ST_BF16] = {"BF16", 2},
    [SLA2_ST_I8] = {"I8", 1},
    [SLA2_ST_F8_E4M3] = {"F8_E4M3", 1},
};

/* The rest of the format's dtypes: valid files, but not read here. */
static const char *const other_dtypes[] = {"BOOL", "U8", "I16", "U16", "I32", "U32", "I64", "U64",
                                           "F64", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2",
                                           "F4", "C64"};

const char *sla2_st_dtype_name(sla2_st_dtype dtype)
{
    return (unsigned)dtype < SLA2_ST_NUM_DTYPES ? dtype_table[dtype].name : NULL;
}

size_t sla2_st_dtype_size(sla2_st_dtype dtype)
{
    return (unsigned)dtype < SLA2_ST_NUM_DTYPES ? dtype_table[dtype].size : 0;
}

/* ---- Validation ----------------------------------------------------------- */

typedef struct loader {
    const char *file;
    char *err;
    size_t err_size;
    uint64_t data_size;
} loader;

static sla2_status tensor_fail(const loader *ld, sla2_status status, const char *tensor,
                               const char *fmt, ...) SLA2_PRINTF(4, 5);

static sla2_status tensor_fail(const loader *ld, sla2_status status, const char *tensor,
                               const char *fmt, ...)
{
    char what[320];
    char name[SLA2_DISPLAY_NAME_SIZE];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    return sla2_errmsg(ld->err, ld->err_size, status, "%s: tensor '%s': %s", ld->file,
                       sla2_display_name(name, tensor, strlen(tensor)), what);
}

static void format_shape(char *out, size_t out_size, const int64_t *shape, int ndim)
{
    size_t n = (size_t)snprintf(out, out_size, "[");
    for (int i = 0; i < ndim && n < out_size; i++)
        n += (size_t)snprintf(out + n, out_size - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < out_size)
        snprintf(out + n, out_size - n, "]");
}

static sla2_status parse_dtype(const loader *ld, const char *tensor, const sla2_json_value *v,
                               sla2_st_dtype *dtype)
{
    if (v->kind != SLA2_JSON_STRING)
        return tensor_fail(ld, SLA2_ERR_FORMAT, tensor, "dtype: expected a string, got %s",
                           sla2_json_kind_phrase(v->kind));
    for (int d = 0; d < SLA2_ST_NUM_DTYPES; d++) {
        if (strcmp(v->u.string.chars, dtype_table[d].name) == 0) {
            *dtype = (sla2_st_dtype)d;
            return SLA2_OK;
        }
    }
    char shown[SLA2_DISPLAY_NAME_SIZE];
    sla2_display_name(shown, v->u.string.chars, v->u.string.len);
    for (size_t i = 0; i < sizeof other_dtypes / sizeof other_dtypes[0]; i++)
        if (strcmp(v->u.string.chars, other_dtypes[i]) == 0)
            return tensor_fail(ld, SLA2_ERR_UNSUPPORTED, tensor,
                               "unsupported dtype '%s' (supported: F32, F16, BF16, I8, F8_E4M3)", shown);
    return tensor_fail(ld, SLA2_ERR_FORMAT, tensor, "unknown dtype '%s'", shown);
}

static sla2_status parse_shape(const loader *ld, const char *tensor, const sla2_json_value *v,
                               sla2_st_tensor *t)
{
    if (v->kind != SLA2_JSON_ARRAY)
        return tensor_fail(ld, SLA2_ERR_FORMAT, tensor, "shape: expected an array of integers, got %s",
                           sla2_json_kind_phrase(v->kind));
    if (v->u.array.count > SLA2_ST_MAX_DIMS)
        return tensor_fail(ld, SLA2_ERR_UNSUPPORTED, tensor, "shape has %zu dimensions, at most %d are supported",
                           v->u.array.count, SLA2_ST_MAX_DIMS);
    t->ndim = (int)v->u.array.count;
    for (size_t i = 0; i < v->u.array.count; i++) {
        const sla2_json_value *e = &v->u.array.items[i];
        if (e->kind != SLA2_JSON_INTEGER)
            return tensor_fail(ld, SLA2_ERR_FORMAT, tensor, "shape[%zu]: expected a non-negative integer, got %s",
                               i, sla2_json_kind_phrase(e->kind));
        if (e->u.integer < 0)
            return tensor_fail(ld, SLA2_ERR_FORMAT, tensor, "shape[%zu] is negative (%lld)", i,
                               (long long)e->u.integer);
        t->shape[i] = e->u.integer;
    }
    return SLA2_OK;
}

static sla2_status parse_offsets(const loader *ld, const char *tensor, const sla2_json_value *v,
                                 sla2_st_tensor *t)
{
    if (v->kind != SLA2_JSON_ARRAY || v->u.array.count != 2)
        return tensor_fail(ld, SLA2_ERR_FORMAT, tensor,
                           "data_offsets: expected [begin, end], got %s%s", sla2_json_kind_phrase(v->kind),
                           v->kind == SLA2_JSON_ARRAY ? " of another length" : "");
    for (int i = 0; i < 2; i++) {
        const sla2_json_value *e = &v->u.array.items[i];
        if (e->kind != SLA2_JSON_INTEGER || e->u.integer < 0)
            return tensor_fail(ld, SLA2_ERR_FORMAT, tensor, "data_offsets[%d]: expected a non-negative integer, got %s",
                               i, e->kind == SLA2_JSON_INTEGER ? "a negative one" : sla2_json_kind_phrase(e->kind));
    }
    t->data_begin = (uint64_t)v->u.array.items[0].u.integer;
    t->data_end = (uint64_t)v->u.array.items[1].u.integer;
    if (t->data_begin > t->data_end)
        return tensor_fail(ld, SLA2_ERR_FORMAT, tensor, "data_offsets [%llu, %llu) are reversed (begin after end)",
                           (unsigned long long)t->data_begin, (unsigned long long)t->data_end);
    if (t->data_end > ld->data_size)
        return tensor_fail(ld, SLA2_ERR_FORMAT, tensor,
                           "data_offsets [%llu, %llu) end outside the data area of %llu bytes",
                           (unsigned long long)t->data_begin, (unsigned long long)t->data_end,
                           (unsigned long long)ld->data_size);
    return SLA2_OK;
}

/* dtype size x shape == end - begin, with every product checked for overflow. */
static sla2_status check_byte_length(const loader *ld, const char *tensor, sla2_st_tensor *t)
{
    char shape[200];
    format_shape(shape, sizeof shape, t->shape, t->ndim);
    uint64_t elems = 1;
    int has_zero_dim = 0;
    for (int i = 0; i < t->ndim; i++)
        has_zero_dim |= t->shape[i] == 0;
    if (has_zero_dim)
        elems = 0;
    const uint64_t size = dtype_table[t->dtype].size;
    for (int i = 0; i < t->ndim && !has_zero_dim; i++) {
        uint64_t d = (uint64_t)t->shape[i];
        if (elems > UINT64_MAX / d || elems * d > UINT64_MAX / size)
            return tensor_fail(ld, SLA2_ERR_FORMAT, tensor, "%s %s: its size in bytes overflows 64 bits",
                               dtype_table[t->dtype].name, shape);
        elems *= d;
    }
    t->num_elems = elems;
    t->num_bytes = elems * size;
    uint64_t held = t->data_end - t->data_begin;
    if (held != t->num_bytes)
        return tensor_fail(ld, SLA2_ERR_FORMAT, tensor, "data_offsets [%llu, %llu) hold %llu bytes but %s %s needs %llu",
                           (unsigned long long)t->data_begin, (unsigned long long)t->data_end,
                           (unsigned long long)held, dtype_table[t->dtype].name, shape,
                           (unsigned long long)t->num_bytes);
    return SLA2_OK;
}

static sla2_status parse_tensor(const loader *ld, sla2_json_member *member, sla2_st_tensor *t)
{
    const char *tensor = member->key;
    const sla2_json_value *v = &member->value;
    if (member->key_len == 0)
        return sla2_errmsg(ld->err, ld->err_size, SLA2_ERR_FORMAT, "%s: a tensor has an empty name", ld->file);
    if (v->kind != SLA2_JSON_OBJECT)
        return tensor_fail(ld, SLA2_ERR_FORMAT, tensor,
                           "expected an object with dtype, shape and data_offsets, got %s",
                           sla2_json_kind_phrase(v->kind));
    for (size_t i = 0; i < v->u.object.count; i++) {
        const char *key = v->u.object.members[i].key;
        if (strcmp(key, "dtype") != 0 && strcmp(key, "shape") != 0 && strcmp(key, "data_offsets") != 0) {
            char shown[SLA2_DISPLAY_NAME_SIZE];
            return tensor_fail(ld, SLA2_ERR_FORMAT, tensor, "unknown key '%s' (expected dtype, shape, data_offsets)",
                               sla2_display_name(shown, key, v->u.object.members[i].key_len));
        }
    }
    static const char *const required[] = {"dtype", "shape", "data_offsets"};
    for (int i = 0; i < 3; i++)
        if (sla2_json_object_get(v, required[i]) == NULL)
            return tensor_fail(ld, SLA2_ERR_FORMAT, tensor, "missing '%s'", required[i]);
    sla2_status status = parse_dtype(ld, tensor, sla2_json_object_get(v, "dtype"), &t->dtype);
    if (status == SLA2_OK)
        status = parse_shape(ld, tensor, sla2_json_object_get(v, "shape"), t);
    if (status == SLA2_OK)
        status = parse_offsets(ld, tensor, sla2_json_object_get(v, "data_offsets"), t);
    if (status == SLA2_OK)
        status = check_byte_length(ld, tensor, t);
    return status;
}

static int compare_cstr_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static sla2_status parse_metadata(const loader *ld, sla2_json_value *v, sla2_safetensors *st)
{
    if (v->kind != SLA2_JSON_OBJECT)
        return sla2_errmsg(ld->err, ld->err_size, SLA2_ERR_FORMAT,
                           "%s: __metadata__: expected an object of strings, got %s", ld->file,
                           sla2_json_kind_phrase(v->kind));
    size_t n = v->u.object.count;
    for (size_t i = 0; i < n; i++) {
        sla2_json_member *m = &v->u.object.members[i];
        if (m->value.kind != SLA2_JSON_STRING) {
            char shown[SLA2_DISPLAY_NAME_SIZE];
            return sla2_errmsg(ld->err, ld->err_size, SLA2_ERR_FORMAT,
                               "%s: __metadata__['%s']: expected a string, got %s", ld->file,
                               sla2_display_name(shown, m->key, m->key_len), sla2_json_kind_phrase(m->value.kind));
        }
    }
    if (n == 0)
        return SLA2_OK;
    /* Pairs sorted by key: sort (key, value) pointer pairs together. */
    char **pairs = malloc(2 * n * sizeof *pairs);
    st->metadata_keys = malloc(n * sizeof *st->metadata_keys);
    st->metadata_values = malloc(n * sizeof *st->metadata_values);
    if (pairs == NULL || st->metadata_keys == NULL || st->metadata_values == NULL) {
        free(pairs);
        return sla2_errmsg(ld->err, ld->err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->file);
    }
    for (size_t i = 0; i < n; i++) {
        pairs[2 * i] = v->u.object.members[i].key;
        pairs[2 * i + 1] = v->u.object.members[i].value.u.string.chars;
        /* Ownership moves to st. */
        v->u.object.members[i].key = NULL;
        v->u.object.members[i].value.kind = SLA2_JSON_NULL;
    }
    qsort(pairs, n, 2 * sizeof *pairs, compare_cstr_ptr);
    for (size_t i = 0; i < n; i++) {
        st->metadata_keys[i] = pairs[2 * i];
        st->metadata_values[i] = pairs[2 * i + 1];
    }
    st->metadata_count = n;
    free(pairs);
    return SLA2_OK;
}

static int compare_by_offset(const void *a, const void *b)
{
    const sla2_st_tensor *x = a, *y = b;
    if (x->data_begin != y->data_begin)
        return x->data_begin < y->data_begin ? -1 : 1;
    if (x->data_end != y->data_end)
        return x->data_end < y->data_end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int compare_by_name(const void *a, const void *b)
{
    return strcmp((*(const sla2_st_tensor *const *)a)->name, (*(const sla2_st_tensor *const *)b)->name);
}

/* After sorting by begin, a tensor overlaps an earlier one exactly when it
 * begins before the furthest end seen so far. Empty tensors occupy nothing. */
static sla2_status check_overlaps(const loader *ld, const sla2_safetensors *st)
{
    const sla2_st_tensor *furthest = NULL;
    for (size_t i = 0; i < st->count; i++) {
        const sla2_st_tensor *t = &st->tensors[i];
        if (t->num_bytes == 0)
            continue;
        if (furthest != NULL && t->data_begin < furthest->data_end) {
            char other[SLA2_DISPLAY_NAME_SIZE];
            return tensor_fail(ld, SLA2_ERR_FORMAT, t->name,
                               "data_offsets [%llu, %llu) overlap tensor '%s' at [%llu, %llu)",
                               (unsigned long long)t->data_begin, (unsigned long long)t->data_end,
                               sla2_display_name(other, furthest->name, strlen(furthest->name)),
                               (unsigned long long)furthest->data_begin,
                               (unsigned long long)furthest->data_end);
        }
        if (furthest == NULL || t->data_end > furthest->data_end)
            furthest = t;
    }
    return SLA2_OK;
}

static sla2_status parse_header(const loader *ld, sla2_json_value *root, sla2_safetensors *st)
{
    size_t num_members = root->u.object.count;
    st->tensors = calloc(num_members ? num_members : 1, sizeof *st->tensors);
    if (st->tensors == NULL)
        return sla2_errmsg(ld->err, ld->err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->file);
    for (size_t i = 0; i < num_members; i++) {
        sla2_json_member *m = &root->u.object.members[i];
        sla2_status status;
        if (strcmp(m->key, "__metadata__") == 0) {
            status = parse_metadata(ld, &m->value, st);
        } else {
            sla2_st_tensor *t = &st->tensors[st->count];
            status = parse_tensor(ld, m, t);
            if (status == SLA2_OK) {
                t->name = m->key; /* ownership moves to st */
                m->key = NULL;
                t->data = st->data + t->data_begin;
                st->count++;
            }
        }
        if (status != SLA2_OK)
            return status;
    }
    qsort(st->tensors, st->count, sizeof *st->tensors, compare_by_offset);
    sla2_status status = check_overlaps(ld, st);
    if (status != SLA2_OK)
        return status;
    st->by_name = malloc((st->count ? st->count : 1) * sizeof *st->by_name);
    if (st->by_name == NULL)
        return sla2_errmsg(ld->err, ld->err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->file);
    for (size_t i = 0; i < st->count; i++)
        st->by_name[i] = &st->tensors[i];
    qsort(st->by_name, st->count, sizeof *st->by_name, compare_by_name);
    return SLA2_OK;
}

static sla2_status validate(const loader *ld_in, const unsigned char *bytes, size_t size,
                            sla2_safetensors *st)
{
    loader ld = *ld_in;
    if (size == 0)
        return sla2_errmsg(ld.err, ld.err_size, SLA2_ERR_FORMAT, "%s: file is empty", ld.file);
    if (size < 8)
        return sla2_errmsg(ld.err, ld.err_size, SLA2_ERR_FORMAT,
                           "%s: file is %zu bytes, too short for the 8-byte header length", ld.file, size);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--)
        header_len = (header_len << 8) | bytes[i];
    if (header_len == 0)
        return sla2_errmsg(ld.err, ld.err_size, SLA2_ERR_FORMAT, "%s: header length is 0", ld.file);
    if (header_len > SLA2_ST_MAX_HEADER_BYTES)
        return sla2_errmsg(ld.err, ld.err_size, SLA2_ERR_FORMAT,
                           "%s: header length %llu exceeds the limit of %u bytes", ld.file,
                           (unsigned long long)header_len, SLA2_ST_MAX_HEADER_BYTES);
    if (header_len > size - 8)
        return sla2_errmsg(ld.err, ld.err_size, SLA2_ERR_FORMAT,
                           "%s: header length %llu exceeds the %zu bytes after the length field (truncated file?)",
                           ld.file, (unsigned long long)header_len, size - 8);
    const char *header = (const char *)bytes + 8;
    if (header[0] != '{')
        return sla2_errmsg(ld.err, ld.err_size, SLA2_ERR_FORMAT,
                           "%s: header does not start with '{' (not a safetensors file?)", ld.file);
    char json_err[256];
    sla2_json_value root;
    sla2_status status = sla2_json_parse(header, (size_t)header_len, &root, json_err, sizeof json_err);
    if (status != SLA2_OK)
        return sla2_errmsg(ld.err, ld.err_size, status, "%s: JSON header, %s", ld.file, json_err);
    st->data = bytes + 8 + header_len;
    st->data_size = size - 8 - header_len;
    ld.data_size = st->data_size;
    if (root.kind != SLA2_JSON_OBJECT)
        status = sla2_errmsg(ld.err, ld.err_size, SLA2_ERR_FORMAT, "%s: header is %s, expected an object",
                             ld.file, sla2_json_kind_phrase(root.kind));
    else
        status = parse_header(&ld, &root, st);
    sla2_json_free(&root);
    return status;
}

/* ---- Opening and closing -------------------------------------------------- */

static sla2_status open_bytes(const unsigned char *bytes, size_t size, const char *name,
                              void *map, sla2_safetensors **out, char *err, size_t err_size)
{
    sla2_safetensors *st = calloc(1, sizeof *st);
    char *name_copy = strdup(name);
    if (st == NULL || name_copy == NULL) {
        free(st);
        free(name_copy);
        if (map != NULL)
            munmap(map, size);
        return sla2_errmsg(err, err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    }
    st->name = name_copy;
    st->map = map;
    st->map_size = size;
    loader ld = {name, err, err_size, 0};
    sla2_status status = validate(&ld, bytes, size, st);
    if (status != SLA2_OK) {
        sla2_safetensors_close(st);
        return status;
    }
    *out = st;
    return SLA2_OK;
}

sla2_status sla2_safetensors_open(const char *path, sla2_safetensors **out, char *err, size_t err_size)
{
    if (path == NULL || out == NULL)
        return sla2_errmsg(err, err_size, SLA2_ERR_NULL_ARGUMENT, "sla2_safetensors_open: %s is NULL",
                           path == NULL ? "path" : "out");
    /* O_NONBLOCK: a FIFO given by mistake is refused instead of blocking. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return sla2_errmsg(err, err_size, SLA2_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat info;
    if (fstat(fd, &info) != 0) {
        int e = errno;
        close(fd);
        return sla2_errmsg(err, err_size, SLA2_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(info.st_mode)) {
        close(fd);
        return sla2_errmsg(err, err_size, SLA2_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)info.st_size > SIZE_MAX) {
        close(fd);
        return sla2_errmsg(err, err_size, SLA2_ERR_IO, "%s: too large to map", path);
    }
    size_t size = (size_t)info.st_size;
    if (size == 0) { /* mmap cannot map nothing */
        close(fd);
        return sla2_errmsg(err, err_size, SLA2_ERR_FORMAT, "%s: file is empty", path);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED)
        return sla2_errmsg(err, err_size, SLA2_ERR_IO, "%s: cannot map: %s", path, strerror(map_errno));
    return open_bytes(map, size, path, map, out, err, err_size);
}

sla2_status sla2_safetensors_open_memory(const void *data, size_t size, const char *name,
                                         sla2_safetensors **out, char *err, size_t err_size)
{
    if (out == NULL || (data == NULL && size > 0))
        return sla2_errmsg(err, err_size, SLA2_ERR_NULL_ARGUMENT, "sla2_safetensors_open_memory: %s is NULL",
                           out == NULL ? "out" : "data");
    static const unsigned char nothing[1] = {0};
    return open_bytes(data != NULL ? data : nothing, size, name != NULL ? name : "<memory>", NULL, out,
                      err, err_size);
}

void sla2_safetensors_close(sla2_safetensors *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->count; i++)
        free((char *)st->tensors[i].name);
    for (size_t i = 0; i < st->metadata_count; i++) {
        free(st->metadata_keys[i]);
        free(st->metadata_values[i]);
    }
    free(st->metadata_keys);
    free(st->metadata_values);
    free(st->tensors);
    free(st->by_name);
    if (st->map != NULL)
        munmap(st->map, st->map_size);
    free(st->name);
    free(st);
}

/* ---- Queries -------------------------------------------------------------- */

size_t sla2_safetensors_count(const sla2_safetensors *st)
{
    return st != NULL ? st->count : 0;
}

const sla2_st_tensor *sla2_safetensors_at(const sla2_safetensors *st, size_t index)
{
    return st != NULL && index < st->count ? &st->tensors[index] : NULL;
}

const sla2_st_tensor *sla2_safetensors_find(const sla2_safetensors *st, const char *name)
{
    if (st == NULL || name == NULL)
        return NULL;
    size_t lo = 0, hi = st->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->by_name[mid]->name);
        if (c == 0)
            return st->by_name[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

size_t sla2_safetensors_metadata_count(const sla2_safetensors *st)
{
    return st != NULL ? st->metadata_count : 0;
}

sla2_status sla2_safetensors_metadata_at(const sla2_safetensors *st, size_t index,
                                         const char **key, const char **value)
{
    if (st == NULL || key == NULL || value == NULL)
        return SLA2_ERR_NULL_ARGUMENT;
    if (index >= st->metadata_count)
        return SLA2_ERR_INVALID_VALUE;
    *key = st->metadata_keys[index];
    *value = st->metadata_values[index];
    return SLA2_OK;
}

const char *sla2_safetensors_metadata_value(const sla2_safetensors *st, const char *key)
{
    if (st == NULL || key == NULL)
        return NULL;
    size_t lo = 0, hi = st->metadata_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, st->metadata_keys[mid]);
        if (c == 0)
            return st->metadata_values[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

sla2_status sla2_safetensors_read_f32(const sla2_safetensors *st, const sla2_st_tensor *tensor,
                                      float *out, size_t out_elems, char *err, size_t err_size)
{
    if (st == NULL || tensor == NULL || out == NULL)
        return sla2_errmsg(err, err_size, SLA2_ERR_NULL_ARGUMENT, "sla2_safetensors_read_f32: %s is NULL",
                           st == NULL ? "st" : tensor == NULL ? "tensor" : "out");
    if (tensor < st->tensors || tensor >= st->tensors + st->count)
        return sla2_errmsg(err, err_size, SLA2_ERR_INVALID_VALUE,
                           "%s: sla2_safetensors_read_f32: the tensor does not belong to this file", st->name);
    char name[SLA2_DISPLAY_NAME_SIZE];
    if (tensor->num_elems > out_elems)
        return sla2_errmsg(err, err_size, SLA2_ERR_INVALID_VALUE,
                           "%s: tensor '%s': has %llu elements but the buffer holds %zu", st->name,
                           sla2_display_name(name, tensor->name, strlen(tensor->name)),
                           (unsigned long long)tensor->num_elems, out_elems);
    const unsigned char *b = tensor->data;
    size_t n = (size_t)tensor->num_elems;
    switch (tensor->dtype) {
    case SLA2_ST_F32:
        if (n > 0)
            memcpy(out, b, n * sizeof(float));
        break;
    case SLA2_ST_F16:
        for (size_t i = 0; i < n; i++)
            out[i] = sla2_f16_to_float((uint16_t)(b[2 * i] | (b[2 * i + 1] << 8)));
        break;
    case SLA2_ST_BF16:
        for (size_t i = 0; i < n; i++)
            out[i] = sla2_bf16_to_float((uint16_t)(b[2 * i] | (b[2 * i + 1] << 8)));
        break;
    case SLA2_ST_I8:
        for (size_t i = 0; i < n; i++)
            out[i] = (float)(int8_t)b[i];
        break;
    case SLA2_ST_F8_E4M3:
        for (size_t i = 0; i < n; i++)
            out[i] = sla2_e4m3_to_float(b[i]);
        break;
    default:
        return sla2_errmsg(err, err_size, SLA2_ERR_DTYPE, "%s: tensor '%s': unknown dtype", st->name,
                           sla2_display_name(name, tensor->name, strlen(tensor->name)));
    }
    return SLA2_OK;
}
