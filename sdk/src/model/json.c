#include "model/json.h"

#include "model/errmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct json_parser {
    const unsigned char *text;
    size_t len;
    size_t pos;
    size_t num_values;
    char *err;
    size_t err_size;
} json_parser;

static sla2_status json_fail(json_parser *p, size_t at, const char *fmt, ...) SLA2_PRINTF(3, 4);

static sla2_status json_fail(json_parser *p, size_t at, const char *fmt, ...)
{
    char what[200];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    return sla2_errmsg(p->err, p->err_size, SLA2_ERR_FORMAT, "byte %zu: %s", at, what);
}

static sla2_status json_oom(json_parser *p)
{
    return sla2_errmsg(p->err, p->err_size, SLA2_ERR_OUT_OF_MEMORY,
                       "out of memory while parsing the JSON header");
}

static void skip_whitespace(json_parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* Grows *items (of item_size bytes each) so that one more fits. */
static int grow(void **items, size_t *capacity, size_t count, size_t item_size)
{
    if (count < *capacity)
        return 1;
    size_t new_capacity = *capacity ? *capacity * 2 : 4;
    if (new_capacity > SIZE_MAX / item_size)
        return 0;
    void *grown = realloc(*items, new_capacity * item_size);
    if (grown == NULL)
        return 0;
    *items = grown;
    *capacity = new_capacity;
    return 1;
}

static sla2_status parse_value(json_parser *p, sla2_json_value *out, int depth);

/* ---- Strings ------------------------------------------------------------ */

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits of a \u escape at p->pos; -1 if malformed. */
static long read_hex4(json_parser *p)
{
    if (p->len - p->pos < 4)
        return -1;
    long value = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p->text[p->pos + (size_t)i]);
        if (d < 0)
            return -1;
        value = value * 16 + d;
    }
    p->pos += 4;
    return value;
}

static size_t encode_utf8(unsigned long cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0
 * (Unicode table 3-7: no overlong forms, no surrogates, <= U+10FFFF). */
static size_t utf8_sequence_length(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t length;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        length = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        length = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        length = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < length)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < length; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return length;
}

/* Decodes an escape after its backslash into out; returns bytes written or
 * 0 after recording an error in *status. */
static size_t decode_escape(json_parser *p, char *out, sla2_status *status)
{
    size_t at = p->pos - 1;
    if (p->pos >= p->len) {
        *status = json_fail(p, at, "unterminated string");
        return 0;
    }
    unsigned char c = p->text[p->pos++];
    switch (c) {
    case '"': *out = '"'; return 1;
    case '\\': *out = '\\'; return 1;
    case '/': *out = '/'; return 1;
    case 'b': *out = '\b'; return 1;
    case 'f': *out = '\f'; return 1;
    case 'n': *out = '\n'; return 1;
    case 'r': *out = '\r'; return 1;
    case 't': *out = '\t'; return 1;
    case 'u': break;
    default:
        if (c >= 0x20 && c < 0x7f)
            *status = json_fail(p, at, "invalid escape '\\%c' in a string", c);
        else
            *status = json_fail(p, at, "invalid escape (byte 0x%02x after '\\') in a string", c);
        return 0;
    }
    long cp = read_hex4(p);
    if (cp < 0) {
        *status = json_fail(p, at, "invalid \\u escape: expected 4 hex digits");
        return 0;
    }
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        *status = json_fail(p, at, "invalid \\u escape: unpaired low surrogate \\u%04lX", cp);
        return 0;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        long low = -1;
        if (p->len - p->pos >= 2 && p->text[p->pos] == '\\' && p->text[p->pos + 1] == 'u') {
            p->pos += 2;
            low = read_hex4(p);
        }
        if (low < 0xDC00 || low > 0xDFFF) {
            *status = json_fail(p, at, "invalid \\u escape: unpaired high surrogate \\u%04lX", cp);
            return 0;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (cp == 0) {
        *status = json_fail(p, at, "\\u0000 (NUL) is not allowed in a string");
        return 0;
    }
    return encode_utf8((unsigned long)cp, out);
}

/* Parses the string at p->pos (its opening quote). */
static sla2_status parse_string(json_parser *p, char **chars, size_t *len)
{
    size_t start = p->pos;
    /* The decoded text is never longer than the raw text: find its end first. */
    size_t end = start + 1;
    while (end < p->len && p->text[end] != '"')
        end += p->text[end] == '\\' ? 2 : 1;
    if (end >= p->len)
        return json_fail(p, start, "unterminated string");
    char *buffer = malloc(end - start);
    if (buffer == NULL)
        return json_oom(p);
    size_t n = 0;
    p->pos = start + 1;
    sla2_status status = SLA2_OK;
    while (p->pos < end) {
        unsigned char c = p->text[p->pos];
        if (c == '\\') {
            p->pos++;
            size_t written = decode_escape(p, buffer + n, &status);
            if (written == 0)
                break;
            n += written;
        } else if (c < 0x20) {
            status = json_fail(p, p->pos, "control character 0x%02x in a string (must be escaped)", c);
            break;
        } else if (c < 0x80) {
            buffer[n++] = (char)c;
            p->pos++;
        } else {
            size_t length = utf8_sequence_length(p->text + p->pos, end - p->pos);
            if (length == 0) {
                status = json_fail(p, p->pos, "invalid UTF-8 in a string");
                break;
            }
            memcpy(buffer + n, p->text + p->pos, length);
            n += length;
            p->pos += length;
        }
    }
    if (status != SLA2_OK) {
        free(buffer);
        return status;
    }
    buffer[n] = '\0';
    p->pos = end + 1;
    *chars = buffer;
    *len = n;
    return SLA2_OK;
}

/* ---- Numbers and literals ------------------------------------------------ */

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static sla2_status parse_number(json_parser *p, sla2_json_value *out)
{
    size_t start = p->pos;
    const unsigned char *t = p->text;
    int negative = 0;
    if (t[p->pos] == '-') {
        negative = 1;
        p->pos++;
    }
    if (p->pos >= p->len || !is_digit(t[p->pos]))
        return json_fail(p, start, "invalid number: expected a digit");
    size_t digits_start = p->pos;
    if (t[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && is_digit(t[p->pos]))
            return json_fail(p, start, "invalid number: leading zero");
    } else {
        while (p->pos < p->len && is_digit(t[p->pos]))
            p->pos++;
    }
    size_t digits_end = p->pos;
    int is_integer = 1;
    if (p->pos < p->len && t[p->pos] == '.') {
        is_integer = 0;
        p->pos++;
        if (p->pos >= p->len || !is_digit(t[p->pos]))
            return json_fail(p, start, "invalid number: expected a digit after '.'");
        while (p->pos < p->len && is_digit(t[p->pos]))
            p->pos++;
    }
    if (p->pos < p->len && (t[p->pos] == 'e' || t[p->pos] == 'E')) {
        is_integer = 0;
        p->pos++;
        if (p->pos < p->len && (t[p->pos] == '+' || t[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || !is_digit(t[p->pos]))
            return json_fail(p, start, "invalid number: expected a digit in the exponent");
        while (p->pos < p->len && is_digit(t[p->pos]))
            p->pos++;
    }
    if (!is_integer) {
        size_t n = p->pos - start;
        char *text = malloc(n + 1);
        if (text == NULL)
            return json_oom(p);
        memcpy(text, t + start, n);
        text[n] = '\0';
        out->kind = SLA2_JSON_NUMBER;
        out->u.string.chars = text;
        out->u.string.len = n;
        return SLA2_OK;
    }
    /* Magnitude up to 2^63 (for INT64_MIN), checked before each step. */
    const uint64_t limit = negative ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    uint64_t magnitude = 0;
    for (size_t i = digits_start; i < digits_end; i++) {
        uint64_t d = (uint64_t)(t[i] - '0');
        if (magnitude > (limit - d) / 10)
            return json_fail(p, start, "integer %.*s is out of the 64-bit range",
                             (int)(digits_end - start > 40 ? 40 : digits_end - start),
                             (const char *)t + start);
        magnitude = magnitude * 10 + d;
    }
    out->kind = SLA2_JSON_INTEGER;
    if (negative)
        out->u.integer = magnitude == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)magnitude;
    else
        out->u.integer = (int64_t)magnitude;
    return SLA2_OK;
}

static sla2_status parse_literal(json_parser *p, sla2_json_value *out)
{
    static const struct {
        const char *word;
        sla2_json_kind kind;
        int boolean;
    } literals[] = {{"true", SLA2_JSON_BOOL, 1}, {"false", SLA2_JSON_BOOL, 0}, {"null", SLA2_JSON_NULL, 0}};
    for (size_t i = 0; i < sizeof literals / sizeof literals[0]; i++) {
        size_t n = strlen(literals[i].word);
        if (p->len - p->pos >= n && memcmp(p->text + p->pos, literals[i].word, n) == 0) {
            p->pos += n;
            out->kind = literals[i].kind;
            out->u.boolean = literals[i].boolean;
            return SLA2_OK;
        }
    }
    return json_fail(p, p->pos, "invalid literal (expected true, false or null)");
}

/* ---- Containers ---------------------------------------------------------- */

static sla2_status parse_array(json_parser *p, sla2_json_value *out, int depth)
{
    size_t capacity = 0;
    out->kind = SLA2_JSON_ARRAY;
    out->u.array.items = NULL;
    out->u.array.count = 0;
    p->pos++; /* '[' */
    skip_whitespace(p);
    if (p->pos < p->len && p->text[p->pos] == ']') {
        p->pos++;
        return SLA2_OK;
    }
    for (;;) {
        if (!grow((void **)&out->u.array.items, &capacity, out->u.array.count, sizeof(sla2_json_value)))
            return json_oom(p);
        /* Counted before parsing so that sla2_json_free reaches a partial child. */
        sla2_json_value *item = &out->u.array.items[out->u.array.count++];
        memset(item, 0, sizeof *item);
        sla2_status status = parse_value(p, item, depth);
        if (status != SLA2_OK)
            return status;
        skip_whitespace(p);
        if (p->pos < p->len && p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->text[p->pos] == ']') {
            p->pos++;
            return SLA2_OK;
        }
        return json_fail(p, p->pos, p->pos < p->len ? "expected ',' or ']' in an array"
                                                    : "unexpected end inside an array");
    }
}

static int compare_members(const void *a, const void *b)
{
    const sla2_json_member *x = *(const sla2_json_member *const *)a;
    const sla2_json_member *y = *(const sla2_json_member *const *)b;
    int c = strcmp(x->key, y->key); /* keys hold no NUL */
    if (c != 0)
        return c;
    return (x->key_offset > y->key_offset) - (x->key_offset < y->key_offset);
}

/* Sorting finds duplicates in O(n log n), so a huge header cannot make this
 * quadratic. */
static sla2_status check_duplicate_keys(json_parser *p, const sla2_json_value *object)
{
    size_t n = object->u.object.count;
    if (n < 2)
        return SLA2_OK;
    const sla2_json_member **sorted = malloc(n * sizeof *sorted);
    if (sorted == NULL)
        return json_oom(p);
    for (size_t i = 0; i < n; i++)
        sorted[i] = &object->u.object.members[i];
    qsort(sorted, n, sizeof *sorted, compare_members);
    sla2_status status = SLA2_OK;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
            char name[SLA2_DISPLAY_NAME_SIZE];
            status = json_fail(p, sorted[i]->key_offset, "duplicate key \"%s\" (first at byte %u)",
                               sla2_display_name(name, sorted[i]->key, sorted[i]->key_len),
                               (unsigned)sorted[i - 1]->key_offset);
            break;
        }
    }
    free(sorted);
    return status;
}

static sla2_status parse_object(json_parser *p, sla2_json_value *out, int depth)
{
    size_t capacity = 0;
    out->kind = SLA2_JSON_OBJECT;
    out->u.object.members = NULL;
    out->u.object.count = 0;
    p->pos++; /* '{' */
    skip_whitespace(p);
    if (p->pos < p->len && p->text[p->pos] == '}') {
        p->pos++;
        return SLA2_OK;
    }
    for (;;) {
        skip_whitespace(p);
        if (p->pos >= p->len)
            return json_fail(p, p->pos, "unexpected end inside an object");
        if (p->text[p->pos] != '"')
            return json_fail(p, p->pos, "expected a string key in an object");
        if (!grow((void **)&out->u.object.members, &capacity, out->u.object.count, sizeof(sla2_json_member)))
            return json_oom(p);
        sla2_json_member *member = &out->u.object.members[out->u.object.count++];
        memset(member, 0, sizeof *member);
        member->key_offset = (uint32_t)p->pos;
        if (++p->num_values > SLA2_JSON_MAX_VALUES)
            return json_fail(p, p->pos, "more than %u values in the header", SLA2_JSON_MAX_VALUES);
        sla2_status status = parse_string(p, &member->key, &member->key_len);
        if (status != SLA2_OK)
            return status;
        skip_whitespace(p);
        if (p->pos >= p->len || p->text[p->pos] != ':')
            return json_fail(p, p->pos, "expected ':' after an object key");
        p->pos++;
        status = parse_value(p, &member->value, depth);
        if (status != SLA2_OK)
            return status;
        skip_whitespace(p);
        if (p->pos < p->len && p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->text[p->pos] == '}') {
            p->pos++;
            return check_duplicate_keys(p, out);
        }
        return json_fail(p, p->pos, p->pos < p->len ? "expected ',' or '}' in an object"
                                                    : "unexpected end inside an object");
    }
}

static sla2_status parse_value(json_parser *p, sla2_json_value *out, int depth)
{
    skip_whitespace(p);
    if (p->pos >= p->len)
        return json_fail(p, p->pos, "unexpected end, expected a value");
    if (++p->num_values > SLA2_JSON_MAX_VALUES)
        return json_fail(p, p->pos, "more than %u values in the header", SLA2_JSON_MAX_VALUES);
    out->offset = (uint32_t)p->pos;
    unsigned char c = p->text[p->pos];
    if (c == '{' || c == '[') {
        if (depth + 1 > SLA2_JSON_MAX_DEPTH)
            return json_fail(p, p->pos, "nesting deeper than %d levels", SLA2_JSON_MAX_DEPTH);
        return c == '{' ? parse_object(p, out, depth + 1) : parse_array(p, out, depth + 1);
    }
    if (c == '"') {
        out->kind = SLA2_JSON_STRING;
        return parse_string(p, &out->u.string.chars, &out->u.string.len);
    }
    if (c == '-' || is_digit(c))
        return parse_number(p, out);
    if (c == 't' || c == 'f' || c == 'n')
        return parse_literal(p, out);
    if (c >= 0x20 && c < 0x7f)
        return json_fail(p, p->pos, "unexpected character '%c', expected a value", c);
    return json_fail(p, p->pos, "unexpected byte 0x%02x, expected a value", c);
}

sla2_status sla2_json_parse(const char *text, size_t len, sla2_json_value *out,
                            char *err, size_t err_size)
{
    if (text == NULL || out == NULL)
        return sla2_errmsg(err, err_size, SLA2_ERR_NULL_ARGUMENT, "sla2_json_parse: NULL argument");
    memset(out, 0, sizeof *out);
    if (len >= UINT32_MAX)
        return sla2_errmsg(err, err_size, SLA2_ERR_FORMAT, "JSON text of %zu bytes is too long", len);
    json_parser p = {(const unsigned char *)text, len, 0, 0, err, err_size};
    sla2_status status = parse_value(&p, out, 0);
    if (status == SLA2_OK) {
        skip_whitespace(&p);
        if (p.pos != len)
            status = json_fail(&p, p.pos, "unexpected data after the JSON value");
    }
    if (status != SLA2_OK) {
        sla2_json_free(out);
        memset(out, 0, sizeof *out);
    }
    return status;
}

void sla2_json_free(sla2_json_value *value)
{
    if (value == NULL)
        return;
    switch (value->kind) {
    case SLA2_JSON_STRING:
    case SLA2_JSON_NUMBER:
        free(value->u.string.chars);
        break;
    case SLA2_JSON_ARRAY:
        for (size_t i = 0; i < value->u.array.count; i++)
            sla2_json_free(&value->u.array.items[i]);
        free(value->u.array.items);
        break;
    case SLA2_JSON_OBJECT:
        for (size_t i = 0; i < value->u.object.count; i++) {
            free(value->u.object.members[i].key);
            sla2_json_free(&value->u.object.members[i].value);
        }
        free(value->u.object.members);
        break;
    default:
        break;
    }
    value->kind = SLA2_JSON_NULL;
}

const sla2_json_value *sla2_json_object_get(const sla2_json_value *object, const char *key)
{
    if (object == NULL || key == NULL || object->kind != SLA2_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < object->u.object.count; i++)
        if (strcmp(object->u.object.members[i].key, key) == 0)
            return &object->u.object.members[i].value;
    return NULL;
}

int sla2_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t length = utf8_sequence_length(u + i, n - i);
        if (length == 0)
            return 0;
        i += length;
    }
    return 1;
}

const char *sla2_json_kind_phrase(sla2_json_kind kind)
{
    switch (kind) {
    case SLA2_JSON_NULL: return "null";
    case SLA2_JSON_BOOL: return "a boolean";
    case SLA2_JSON_INTEGER: return "an integer";
    case SLA2_JSON_NUMBER: return "a non-integer number";
    case SLA2_JSON_STRING: return "a string";
    case SLA2_JSON_ARRAY: return "an array";
    case SLA2_JSON_OBJECT: return "an object";
    }
    return "an unknown value";
}
