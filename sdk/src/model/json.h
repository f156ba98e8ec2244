/* A small strict JSON parser, for exactly what a safetensors header holds
 * (RFC 8259, with limits). Strict: no comments, no trailing commas, no
 * leading zeros, no duplicate object keys, no NUL in strings (\u0000),
 * valid UTF-8 only (no overlong forms, no surrogates, nothing above
 * U+10FFFF), escapes checked (surrogate pairs must pair), nesting at most
 * SLA2_JSON_MAX_DEPTH, at most SLA2_JSON_MAX_VALUES values, and nothing but
 * whitespace after the top-level value. */
#ifndef SLA2_MODEL_JSON_H
#define SLA2_MODEL_JSON_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

#define SLA2_JSON_MAX_DEPTH 16
#define SLA2_JSON_MAX_VALUES (4u * 1024u * 1024u)

typedef enum sla2_json_kind {
    SLA2_JSON_NULL = 0,
    SLA2_JSON_BOOL,
    SLA2_JSON_INTEGER, /* no fraction or exponent, fits in int64 */
    SLA2_JSON_NUMBER,  /* a fraction or an exponent; only its text is kept */
    SLA2_JSON_STRING,
    SLA2_JSON_ARRAY,
    SLA2_JSON_OBJECT
} sla2_json_kind;

typedef struct sla2_json_member sla2_json_member;
typedef struct sla2_json_value sla2_json_value;

struct sla2_json_value {
    sla2_json_kind kind;
    uint32_t offset; /* byte offset of the value in the text, for messages */
    union {
        int64_t integer;  /* INTEGER */
        int boolean;      /* BOOL */
        struct {
            char *chars;  /* STRING: decoded, NUL-terminated; NUMBER: the text */
            size_t len;
        } string;
        struct {
            sla2_json_value *items;
            size_t count;
        } array;
        struct {
            sla2_json_member *members; /* in the order of the text */
            size_t count;
        } object;
    } u;
};

struct sla2_json_member {
    char *key; /* decoded, NUL-terminated */
    size_t key_len;
    uint32_t key_offset;
    sla2_json_value value;
};

/* Parses text[0, len) (len < 4 GiB) into *out. On failure *out is left
 * empty (kind NULL) and err says where and what ("byte 17: expected ':'
 * after an object key"). Returns SLA2_OK, SLA2_ERR_FORMAT or
 * SLA2_ERR_OUT_OF_MEMORY (SLA2_ERR_NULL_ARGUMENT for NULL pointers). */
sla2_status sla2_json_parse(const char *text, size_t len, sla2_json_value *out,
                            char *err, size_t err_size);

/* Frees what sla2_json_parse allocated inside value (not value itself). */
void sla2_json_free(sla2_json_value *value);

/* The member named key (key_len bytes) of an object, or NULL. Linear. */
const sla2_json_value *sla2_json_object_get(const sla2_json_value *object, const char *key);

/* 1 when s[0, n) is well-formed UTF-8 (as strings in JSON must be). */
int sla2_utf8_valid(const char *s, size_t n);

/* "an object", "a string", ... for messages. */
const char *sla2_json_kind_phrase(sla2_json_kind kind);

#endif
