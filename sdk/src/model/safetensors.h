/* safetensors files (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON header, then the data area.
 *
 * The reader memory-maps the file read-only and validates everything before
 * trusting it (ARCHITECTURE.md section 6): the header length (at most
 * SLA2_ST_MAX_HEADER_BYTES and inside the file), the JSON (json.h: strict),
 * every tensor's dtype, shape and data_offsets (dtype size x shape ==
 * end - begin, without overflow; inside the data area; no two tensors
 * overlapping), and __metadata__ (a string -> string map). Gaps between
 * tensors are allowed. A bad file gives a status and a message naming the
 * file, the tensor and the problem:
 *   "model.safetensors: tensor 'blocks.0.self_attn.q.weight': data_offsets
 *    [0, 100) hold 100 bytes but F32 [5, 6] needs 120"
 *
 * Data pointers point into the mapping: read-only, valid until close, and
 * aligned only as the file happens to align them (use memcpy or
 * sla2_safetensors_read_f32). Truncating the file while it is open is not
 * defended against (the OS raises SIGBUS), as with any mmap reader.
 * A handle may be read from several threads at once. */
#ifndef SLA2_MODEL_SAFETENSORS_H
#define SLA2_MODEL_SAFETENSORS_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

#define SLA2_ST_MAX_HEADER_BYTES 100000000u /* as the reference implementation */
#define SLA2_ST_MAX_DIMS 8

typedef enum sla2_st_dtype {
    SLA2_ST_F32 = 0,
    SLA2_ST_F16,
    SLA2_ST_BF16,
    SLA2_ST_I8,
    SLA2_ST_F8_E4M3,
    SLA2_ST_NUM_DTYPES
} sla2_st_dtype;

/* "F32", "F16", "BF16", "I8", "F8_E4M3" (the file's spelling); NULL if unknown. */
const char *sla2_st_dtype_name(sla2_st_dtype dtype);
/* Bytes per element; 0 if unknown. */
size_t sla2_st_dtype_size(sla2_st_dtype dtype);

typedef struct sla2_st_tensor {
    const char *name;  /* NUL-terminated UTF-8, unique in the file */
    sla2_st_dtype dtype;
    int ndim;          /* 0 (a scalar) .. SLA2_ST_MAX_DIMS */
    int64_t shape[SLA2_ST_MAX_DIMS];
    uint64_t num_elems;
    uint64_t num_bytes;
    uint64_t data_begin; /* offsets in the data area, as in the header */
    uint64_t data_end;
    const void *data;    /* into the mapping; see the alignment note above */
} sla2_st_tensor;

typedef struct sla2_safetensors sla2_safetensors;

/* Opens and validates path. On failure *out is untouched and err (may be
 * NULL) says why. Errors: SLA2_ERR_NULL_ARGUMENT, SLA2_ERR_IO (cannot open,
 * not a regular file, mmap failed), SLA2_ERR_FORMAT (anything malformed),
 * SLA2_ERR_UNSUPPORTED (a valid safetensors dtype this SDK does not read,
 * e.g. F64), SLA2_ERR_OUT_OF_MEMORY. */
sla2_status sla2_safetensors_open(const char *path, sla2_safetensors **out,
                                  char *err, size_t err_size);

/* The same for bytes already in memory (an embedded model, a fuzzer):
 * data must outlive the handle and is not copied or freed. name is used in
 * messages (NULL: "<memory>"). */
sla2_status sla2_safetensors_open_memory(const void *data, size_t size, const char *name,
                                         sla2_safetensors **out, char *err, size_t err_size);

/* Unmaps and frees. NULL is a no-op. */
void sla2_safetensors_close(sla2_safetensors *st);

/* Tensors, in the order of their data in the file (by data_begin, then
 * data_end, then name). */
size_t sla2_safetensors_count(const sla2_safetensors *st);
const sla2_st_tensor *sla2_safetensors_at(const sla2_safetensors *st, size_t index);
/* The tensor named name, or NULL (binary search). */
const sla2_st_tensor *sla2_safetensors_find(const sla2_safetensors *st, const char *name);

/* __metadata__ entries (sorted by key); value_of returns NULL if absent. */
size_t sla2_safetensors_metadata_count(const sla2_safetensors *st);
sla2_status sla2_safetensors_metadata_at(const sla2_safetensors *st, size_t index,
                                         const char **key, const char **value);
const char *sla2_safetensors_metadata_value(const sla2_safetensors *st, const char *key);

/* Converts tensor (from st) to float32 into out, which holds out_elems
 * floats (>= tensor->num_elems). F32 is copied bit for bit; F16, BF16,
 * F8_E4M3 and I8 are converted exactly (numeric.h). Errors:
 * SLA2_ERR_NULL_ARGUMENT, SLA2_ERR_INVALID_VALUE (out too small, tensor not
 * from st). */
sla2_status sla2_safetensors_read_f32(const sla2_safetensors *st, const sla2_st_tensor *tensor,
                                      float *out, size_t out_elems, char *err, size_t err_size);

/* A tensor to write: data holds the raw little-endian elements, contiguous. */
typedef struct sla2_st_write_tensor {
    const char *name;
    sla2_st_dtype dtype;
    int ndim;
    const int64_t *shape;
    const void *data; /* may be NULL only when the tensor has no elements */
} sla2_st_write_tensor;

/* Writes a safetensors file: the header (__metadata__ first when
 * metadata_count > 0, then the tensors in the given order, padded with
 * spaces to a multiple of 8 bytes, as the reference writer does), then the
 * data in the same order, contiguous. It writes to a temporary file in the
 * same directory, then renames it over path, so path is either the old file
 * or the complete new one. metadata_keys/values: metadata_count UTF-8
 * strings each. Errors: SLA2_ERR_NULL_ARGUMENT, SLA2_ERR_INVALID_VALUE (bad
 * or duplicate names, shapes, dtypes), SLA2_ERR_IO, SLA2_ERR_OUT_OF_MEMORY. */
sla2_status sla2_safetensors_write(const char *path, const sla2_st_write_tensor *tensors,
                                   size_t count, const char *const *metadata_keys,
                                   const char *const *metadata_values, size_t metadata_count,
                                   char *err, size_t err_size);

#endif
