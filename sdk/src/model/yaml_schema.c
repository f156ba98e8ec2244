#include "model/yaml_schema.h"

#include "model/config.h"
#include "model/errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Enums are stored through int pointers. */
_Static_assert(sizeof(sla2_backend) == sizeof(int), "enums must be int-sized");

sla2_status sla2_yaml_read_file(const char *path, size_t max_bytes, char **text, size_t *len,
                                char *err, size_t err_size)
{
    /* O_NONBLOCK: a FIFO given by mistake is refused instead of blocking. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return sla2_errmsg(err, err_size, SLA2_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        close(fd);
        return sla2_errmsg(err, err_size, SLA2_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)info.st_size > max_bytes) {
        close(fd);
        return sla2_errmsg(err, err_size, SLA2_ERR_FORMAT, "%s: larger than %zu bytes, not a config file",
                           path, max_bytes);
    }
    size_t capacity = (size_t)info.st_size;
    char *buffer = malloc(capacity + 1);
    if (buffer == NULL) {
        close(fd);
        return sla2_errmsg(err, err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    size_t n = 0;
    while (n < capacity) {
        ssize_t got = read(fd, buffer + n, capacity - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            close(fd);
            free(buffer);
            return sla2_errmsg(err, err_size, SLA2_ERR_IO, "%s: read error: %s", path, strerror(e));
        }
        if (got == 0)
            break; /* shrank while reading: take what is there */
        n += (size_t)got;
    }
    close(fd);
    buffer[n] = '\0';
    *text = buffer;
    *len = n;
    return SLA2_OK;
}

sla2_status sla2_yaml_fail(sla2_yaml_loader *ld, const yaml_mark_t *mark, sla2_status status,
                           const char *path, const char *fmt, ...)
{
    char what[400];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    size_t line = mark ? mark->line + 1 : 1, column = mark ? mark->column + 1 : 1;
    if (path == NULL || path[0] == '\0')
        return sla2_errmsg(ld->err, ld->err_size, status, "%s:%zu:%zu: %s", ld->file, line, column, what);
    return sla2_errmsg(ld->err, ld->err_size, status, "%s:%zu:%zu: %s: %s", ld->file, line, column, path, what);
}

void sla2_yaml_path_key(char *out, const char *path, const char *key, size_t key_len)
{
    char shown[SLA2_DISPLAY_NAME_SIZE];
    sla2_display_name(shown, key, key_len);
    snprintf(out, SLA2_YAML_PATH_SIZE, "%s%s%s", path, path[0] ? "." : "", shown);
}

void sla2_yaml_path_index(char *out, const char *path, size_t index)
{
    snprintf(out, SLA2_YAML_PATH_SIZE, "%s[%zu]", path, index);
}

const char *sla2_yaml_describe(const yaml_node_t *node, char *out, size_t out_size)
{
    if (node->type == YAML_MAPPING_NODE)
        snprintf(out, out_size, "a mapping");
    else if (node->type == YAML_SEQUENCE_NODE)
        snprintf(out, out_size, "a list");
    else if (node->data.scalar.length == 0 && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        snprintf(out, out_size, "nothing");
    else {
        char shown[SLA2_DISPLAY_NAME_SIZE];
        sla2_display_name(shown, (const char *)node->data.scalar.value, node->data.scalar.length);
        if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
            snprintf(out, out_size, "%s", shown);
        else
            snprintf(out, out_size, "\"%s\" (a quoted string)", shown);
    }
    return out;
}

/* ---- Opening ------------------------------------------------------------- */

static void offset_to_mark(const char *text, size_t len, size_t offset, yaml_mark_t *mark)
{
    mark->index = offset;
    mark->line = 0;
    mark->column = 0;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            mark->line++;
            mark->column = 0;
        } else {
            mark->column++;
        }
    }
}

static sla2_status parser_fail(sla2_yaml_loader *ld, const yaml_parser_t *parser)
{
    if (parser->error == YAML_MEMORY_ERROR)
        return sla2_errmsg(ld->err, ld->err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->file);
    yaml_mark_t mark = parser->problem_mark;
    if (parser->error == YAML_READER_ERROR)
        offset_to_mark(ld->text, ld->len, parser->problem_offset, &mark);
    const char *problem = parser->problem ? parser->problem : "unknown problem";
    if (parser->context != NULL)
        return sla2_yaml_fail(ld, &mark, SLA2_ERR_FORMAT, NULL, "YAML syntax error: %s %s", problem,
                              parser->context);
    return sla2_yaml_fail(ld, &mark, SLA2_ERR_FORMAT, NULL, "YAML syntax error: %s", problem);
}

/* A first pass over the events, for what the document API hides: where an
 * alias is used. Configs are small, so reading them twice costs nothing. */
static sla2_status reject_aliases(sla2_yaml_loader *ld)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return sla2_errmsg(ld->err, ld->err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->file);
    yaml_parser_set_input_string(&parser, (const unsigned char *)ld->text, ld->len);
    sla2_status status = SLA2_OK;
    for (;;) {
        yaml_event_t event;
        if (!yaml_parser_parse(&parser, &event)) {
            status = parser_fail(ld, &parser);
            break;
        }
        yaml_event_type_t type = event.type;
        if (type == YAML_ALIAS_EVENT) {
            char name[SLA2_DISPLAY_NAME_SIZE];
            const char *anchor = (const char *)event.data.alias.anchor;
            status = sla2_yaml_fail(ld, &event.start_mark, SLA2_ERR_FORMAT, NULL,
                                    "aliases (*%s) are not supported; write the value out",
                                    sla2_display_name(name, anchor, strlen(anchor)));
        }
        yaml_event_delete(&event);
        if (status != SLA2_OK || type == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&parser);
    return status;
}

sla2_status sla2_yaml_open(sla2_yaml_loader *ld, const char *text, size_t len, const char *file,
                           yaml_node_t **root, char *err, size_t err_size)
{
    memset(ld, 0, sizeof *ld);
    ld->file = file;
    ld->text = text;
    ld->len = len;
    ld->err = err;
    ld->err_size = err_size;
    ld->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (ld->c_locale == (locale_t)0)
        return sla2_errmsg(err, err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: cannot create the C locale", file);
    sla2_status status = reject_aliases(ld);
    if (status != SLA2_OK)
        return status;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return sla2_errmsg(err, err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &ld->document)) {
        status = parser_fail(ld, &parser);
    } else {
        ld->has_document = 1;
        yaml_node_t *node = yaml_document_get_root_node(&ld->document);
        yaml_mark_t start = {0, 0, 0};
        yaml_document_t next;
        if (node == NULL) {
            status = sla2_yaml_fail(ld, &start, SLA2_ERR_FORMAT, NULL, "the file is empty; expected a mapping");
        } else if (!yaml_parser_load(&parser, &next)) {
            status = parser_fail(ld, &parser);
        } else {
            yaml_node_t *second = yaml_document_get_root_node(&next);
            if (second != NULL)
                status = sla2_yaml_fail(ld, &second->start_mark, SLA2_ERR_FORMAT, NULL,
                                        "a second YAML document; a config file holds one");
            yaml_document_delete(&next);
        }
        if (status == SLA2_OK && node->type != YAML_MAPPING_NODE) {
            char got[160];
            status = sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_FORMAT, NULL,
                                    "expected a mapping at the top level, got %s",
                                    sla2_yaml_describe(node, got, sizeof got));
        }
        if (status == SLA2_OK) {
            ld->num_nodes = (size_t)(ld->document.nodes.top - ld->document.nodes.start);
            ld->visited = calloc(ld->num_nodes + 1, 1);
            if (ld->visited == NULL)
                status = sla2_errmsg(err, err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
            else {
                ld->visited[1] = 1; /* the root (node ids are 1-based) */
                *root = node;
            }
        }
    }
    yaml_parser_delete(&parser);
    return status;
}

void sla2_yaml_close(sla2_yaml_loader *ld)
{
    if (ld->has_document)
        yaml_document_delete(&ld->document);
    ld->has_document = 0;
    free(ld->visited);
    ld->visited = NULL;
    if (ld->c_locale != (locale_t)0)
        freelocale(ld->c_locale);
    ld->c_locale = (locale_t)0;
}

yaml_node_t *sla2_yaml_child(sla2_yaml_loader *ld, yaml_node_item_t index, const char *path)
{
    yaml_node_t *node = yaml_document_get_node(&ld->document, index);
    if (node == NULL || index < 1 || (size_t)index > ld->num_nodes) {
        sla2_yaml_fail(ld, NULL, SLA2_ERR_FORMAT, path, "malformed document");
        return NULL;
    }
    if (ld->visited[index]) {
        sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_FORMAT, path,
                       "anchors and aliases are not supported (this node is used twice)");
        return NULL;
    }
    ld->visited[index] = 1;
    return node;
}

const yaml_mark_t *sla2_yaml_mark_of(const sla2_yaml_loader *ld, const char *path)
{
    for (int i = 0; i < ld->num_marks; i++)
        if (strcmp(ld->marks[i].path, path) == 0)
            return &ld->marks[i].mark;
    return NULL;
}

static void remember_mark(sla2_yaml_loader *ld, const char *path, const yaml_mark_t *mark)
{
    if (ld->num_marks >= SLA2_YAML_MAX_MARKS)
        return;
    snprintf(ld->marks[ld->num_marks].path, SLA2_YAML_PATH_SIZE, "%s", path);
    ld->marks[ld->num_marks].mark = *mark;
    ld->num_marks++;
}

/* ---- Scalars ------------------------------------------------------------- */

static const char *scalar_text(const yaml_node_t *node)
{
    return (const char *)node->data.scalar.value;
}

/* A plain scalar of the form [-+]?(0|[1-9][0-9]*) (no octal, hex or '_'). */
static int parse_integer_text(const yaml_node_t *node, int64_t *out, int *overflow)
{
    *overflow = 0;
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = scalar_text(node);
    size_t n = node->data.scalar.length, i = 0;
    int negative = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        negative = s[i++] == '-';
    if (i == n)
        return 0;
    if (s[i] == '0' && n - i > 1)
        return 0; /* YAML 1.1 readers (PyYAML) take 0700 as octal: refuse it */
    uint64_t magnitude = 0;
    const uint64_t limit = negative ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (magnitude > (limit - d) / 10)
            *overflow = 1;
        else
            magnitude = magnitude * 10 + d;
    }
    if (*overflow)
        return 1;
    *out = negative ? (magnitude == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)magnitude)
                    : (int64_t)magnitude;
    return 1;
}

/* A plain scalar of the form [-+]?(digits[.digits*]|.digits)([eE][-+]?digits)?,
 * finite; converted in the C locale whatever the host program set. */
static int parse_number_text(sla2_yaml_loader *ld, const yaml_node_t *node, double *out)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = scalar_text(node);
    size_t n = node->data.scalar.length, i = 0, digits = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t exponent_digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, exponent_digits++;
        if (exponent_digits == 0)
            return 0;
    }
    if (i != n)
        return 0;
    locale_t previous = uselocale(ld->c_locale);
    char *end = NULL;
    double v = strtod(s, &end);
    uselocale(previous);
    if (end != s + n || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

static void format_choices(char *out, size_t size, const int *choices)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; choices[i] != 0 && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%d", i == 0 ? "" : choices[i + 1] == 0 ? " or " : ", ",
                              choices[i]);
}

static void format_names(char *out, size_t size, const char *const *names)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; names[i] != NULL && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%s", i == 0 ? "" : ", ", names[i]);
}

static sla2_status load_integer(sla2_yaml_loader *ld, const sla2_schema_field *f, yaml_node_t *node,
                                const char *path, int64_t *out)
{
    char got[160], range[160];
    int64_t v = 0;
    int overflow;
    sla2_yaml_describe(node, got, sizeof got);
    if (f->choices != NULL)
        format_choices(range, sizeof range, f->choices);
    else
        snprintf(range, sizeof range, "an integer in [%.0f, %.0f]", f->min, f->max);
    if (!parse_integer_text(node, &v, &overflow))
        return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_FORMAT, path, "expected %s, got %s", range, got);
    int ok = !overflow;
    if (ok && f->choices != NULL) {
        ok = 0;
        for (int i = 0; f->choices[i] != 0; i++)
            ok |= v == f->choices[i];
    } else if (ok) {
        ok = (double)v >= f->min && (double)v <= f->max;
    }
    if (!ok)
        return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_INVALID_VALUE, path, "expected %s, got %s", range, got);
    *out = v;
    return SLA2_OK;
}

static sla2_status load_double(sla2_yaml_loader *ld, const sla2_schema_field *f, yaml_node_t *node,
                               const char *path, double *out)
{
    char got[160];
    double v = 0.0;
    sla2_yaml_describe(node, got, sizeof got);
    const char open = f->min_open ? '(' : '[', close = f->max_open ? ')' : ']';
    if (!parse_number_text(ld, node, &v))
        return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_FORMAT, path,
                              "expected a number in %c%g, %g%c, got %s", open, f->min, f->max, close, got);
    int below = f->min_open ? !(v > f->min) : !(v >= f->min);
    int above = f->max_open ? !(v < f->max) : !(v <= f->max);
    if (below || above)
        return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_INVALID_VALUE, path,
                              "expected a number in %c%g, %g%c, got %s", open, f->min, f->max, close, got);
    *out = v;
    return SLA2_OK;
}

static int scalar_equals(const yaml_node_t *node, const char *word)
{
    size_t n = strlen(word);
    return node->type == YAML_SCALAR_NODE && node->data.scalar.length == n &&
           memcmp(node->data.scalar.value, word, n) == 0;
}

static sla2_status load_int3(sla2_yaml_loader *ld, const sla2_schema_field *f, yaml_node_t *node,
                             const char *path, int *out)
{
    char got[160];
    if (node->type != YAML_SEQUENCE_NODE)
        return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_FORMAT, path,
                              "expected a list of 3 integers [t, h, w], got %s",
                              sla2_yaml_describe(node, got, sizeof got));
    size_t count = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (count != 3)
        return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_FORMAT, path,
                              "expected a list of 3 integers [t, h, w], got %zu item%s", count,
                              count == 1 ? "" : "s");
    int values[3];
    for (size_t i = 0; i < 3; i++) {
        char item_path[SLA2_YAML_PATH_SIZE];
        sla2_yaml_path_index(item_path, path, i);
        yaml_node_t *item = sla2_yaml_child(ld, node->data.sequence.items.start[i], item_path);
        if (item == NULL)
            return SLA2_ERR_FORMAT;
        int64_t v;
        sla2_status status = load_integer(ld, f, item, item_path, &v);
        if (status != SLA2_OK)
            return status;
        values[i] = (int)v;
    }
    memcpy(out, values, sizeof values);
    return SLA2_OK;
}

sla2_status sla2_yaml_load_value(sla2_yaml_loader *ld, const sla2_schema_field *f, yaml_node_t *node,
                                 void *base, const char *path)
{
    char *target = (char *)base + f->offset;
    char got[160], names[200];
    int64_t integer = 0;
    sla2_status status = SLA2_OK;
    switch (f->type) {
    case SLA2_SCHEMA_INT:
        status = load_integer(ld, f, node, path, &integer);
        if (status == SLA2_OK) {
            int v = (int)integer; /* the table's range keeps it inside int */
            memcpy(target, &v, sizeof v);
        }
        return status;
    case SLA2_SCHEMA_INT64:
        status = load_integer(ld, f, node, path, &integer);
        if (status == SLA2_OK)
            memcpy(target, &integer, sizeof integer);
        return status;
    case SLA2_SCHEMA_DOUBLE: {
        double v = 0.0;
        status = load_double(ld, f, node, path, &v);
        if (status == SLA2_OK)
            memcpy(target, &v, sizeof v);
        return status;
    }
    case SLA2_SCHEMA_BOOL: {
        int v = scalar_equals(node, "true") ? 1 : scalar_equals(node, "false") ? 0 : -1;
        if (v < 0 || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
            return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_FORMAT, path, "expected true or false, got %s",
                                  sla2_yaml_describe(node, got, sizeof got));
        memcpy(target, &v, sizeof v);
        return SLA2_OK;
    }
    case SLA2_SCHEMA_ENUM:
        for (int i = 0; f->names[i] != NULL; i++) {
            if (scalar_equals(node, f->names[i])) {
                memcpy(target, &i, sizeof i);
                return SLA2_OK;
            }
        }
        format_names(names, sizeof names, f->names);
        return sla2_yaml_fail(ld, &node->start_mark,
                              node->type == YAML_SCALAR_NODE ? SLA2_ERR_INVALID_VALUE : SLA2_ERR_FORMAT, path,
                              "expected one of %s; got %s", names, sla2_yaml_describe(node, got, sizeof got));
    case SLA2_SCHEMA_INT3:
        return load_int3(ld, f, node, path, (int *)(void *)target);
    case SLA2_SCHEMA_NAME:
        if (node->type != YAML_SCALAR_NODE || node->data.scalar.length == 0)
            return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_FORMAT, path, "expected a name, got %s",
                                  sla2_yaml_describe(node, got, sizeof got));
        if (node->data.scalar.length >= SLA2_CONFIG_NAME_SIZE ||
            memchr(node->data.scalar.value, '\0', node->data.scalar.length) != NULL)
            return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_INVALID_VALUE, path,
                                  "expected a name of at most %d bytes without NUL", SLA2_CONFIG_NAME_SIZE - 1);
        memcpy(target, node->data.scalar.value, node->data.scalar.length);
        target[node->data.scalar.length] = '\0';
        return SLA2_OK;
    case SLA2_SCHEMA_SECTION:
        return sla2_yaml_load_mapping(ld, node, f->fields, base, path);
    case SLA2_SCHEMA_CUSTOM:
        return f->load(ld, node, path, base);
    }
    return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_FORMAT, path, "internal: unknown field type");
}

/* ---- Mappings ------------------------------------------------------------ */

static void format_keys(char *out, size_t size, const sla2_schema_field *fields)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; fields[i].key != NULL && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%s", i == 0 ? "" : ", ", fields[i].key);
}

sla2_status sla2_yaml_load_mapping(sla2_yaml_loader *ld, yaml_node_t *node,
                                   const sla2_schema_field *fields, void *base, const char *path)
{
    char got[160];
    if (node->type != YAML_MAPPING_NODE)
        return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_FORMAT, path, "expected a mapping, got %s",
                              sla2_yaml_describe(node, got, sizeof got));
    enum { MAX_FIELDS = 64 };
    const yaml_node_t *seen[MAX_FIELDS] = {0};
    int num_fields = 0;
    while (fields[num_fields].key != NULL && num_fields < MAX_FIELDS)
        num_fields++;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = sla2_yaml_child(ld, pair->key, path);
        if (key == NULL)
            return SLA2_ERR_FORMAT;
        if (key->type != YAML_SCALAR_NODE)
            return sla2_yaml_fail(ld, &key->start_mark, SLA2_ERR_FORMAT, path, "expected a plain key, got %s",
                                  sla2_yaml_describe(key, got, sizeof got));
        char key_path[SLA2_YAML_PATH_SIZE];
        sla2_yaml_path_key(key_path, path, (const char *)key->data.scalar.value, key->data.scalar.length);
        int index = -1;
        for (int i = 0; i < num_fields && index < 0; i++)
            if (scalar_equals(key, fields[i].key))
                index = i;
        if (index < 0) {
            char keys[400];
            format_keys(keys, sizeof keys, fields);
            return sla2_yaml_fail(ld, &key->start_mark, SLA2_ERR_FORMAT, key_path,
                                  "unknown key (expected one of: %s)", keys);
        }
        if (seen[index] != NULL)
            return sla2_yaml_fail(ld, &key->start_mark, SLA2_ERR_FORMAT, key_path,
                                  "duplicate key (first at line %zu)", seen[index]->start_mark.line + 1);
        seen[index] = key;
        yaml_node_t *value = sla2_yaml_child(ld, pair->value, key_path);
        if (value == NULL)
            return SLA2_ERR_FORMAT;
        remember_mark(ld, key_path, &value->start_mark);
        sla2_status status = sla2_yaml_load_value(ld, &fields[index], value, base, key_path);
        if (status != SLA2_OK)
            return status;
    }
    for (int i = 0; i < num_fields; i++) {
        if (fields[i].required && seen[i] == NULL) {
            char key_path[SLA2_YAML_PATH_SIZE];
            sla2_yaml_path_key(key_path, path, fields[i].key, strlen(fields[i].key));
            return sla2_yaml_fail(ld, &node->start_mark, SLA2_ERR_FORMAT, key_path, "missing required key");
        }
    }
    return SLA2_OK;
}
