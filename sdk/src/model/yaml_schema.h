/* A strict, table-driven reader of YAML mappings into C structs (libyaml's
 * document API), shared by the model and runtime configs (config.c).
 * Messages: "file:line:column: key.path: what" (1-based). Type errors are
 * SLA2_ERR_FORMAT, range errors SLA2_ERR_INVALID_VALUE. */
#ifndef SLA2_MODEL_YAML_SCHEMA_H
#define SLA2_MODEL_YAML_SCHEMA_H

#include "internal.h"

#include <locale.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#define SLA2_YAML_PATH_SIZE 160
#define SLA2_YAML_MAX_MARKS 96

typedef struct sla2_yaml_loader sla2_yaml_loader;

typedef enum sla2_schema_type {
    SLA2_SCHEMA_INT,     /* int; [min, max] or one of choices */
    SLA2_SCHEMA_INT64,   /* int64_t; [min, max] */
    SLA2_SCHEMA_DOUBLE,  /* double; min/max, open or closed */
    SLA2_SCHEMA_BOOL,    /* int: true or false */
    SLA2_SCHEMA_ENUM,    /* int: the index of the name in names */
    SLA2_SCHEMA_INT3,    /* int[3]: a list of 3 integers in [min, max] */
    SLA2_SCHEMA_NAME,    /* char[SLA2_CONFIG_NAME_SIZE]: a non-empty string */
    SLA2_SCHEMA_SECTION, /* a nested mapping of fields, stored in the same struct */
    SLA2_SCHEMA_CUSTOM   /* load(ld, node, path, base) */
} sla2_schema_type;

typedef struct sla2_schema_field {
    const char *key;
    sla2_schema_type type;
    int required;
    size_t offset;
    double min, max;
    int min_open, max_open;
    const int *choices;       /* INT: allowed values, 0-terminated, or NULL */
    const char *const *names; /* ENUM: NULL-terminated */
    const struct sla2_schema_field *fields; /* SECTION: {NULL}-terminated */
    sla2_status (*load)(sla2_yaml_loader *ld, yaml_node_t *node, const char *path, void *base);
} sla2_schema_field;

struct sla2_yaml_loader {
    const char *file;
    const char *text;
    size_t len;
    yaml_document_t document;
    int has_document;
    unsigned char *visited; /* per node: aliases would make a node reachable twice */
    size_t num_nodes;
    char *err;
    size_t err_size;
    locale_t c_locale;
    struct {
        char path[SLA2_YAML_PATH_SIZE];
        yaml_mark_t mark;
    } marks[SLA2_YAML_MAX_MARKS]; /* where each loaded key's value was */
    int num_marks;
};

/* Reads a whole file (at most max_bytes) into a malloc'd, NUL-terminated buffer. */
sla2_status sla2_yaml_read_file(const char *path, size_t max_bytes, char **text, size_t *len,
                                char *err, size_t err_size);

/* Parses text (one document whose root is a mapping). On success *root is
 * set; call sla2_yaml_close in every case. */
sla2_status sla2_yaml_open(sla2_yaml_loader *ld, const char *text, size_t len, const char *file,
                           yaml_node_t **root, char *err, size_t err_size);
void sla2_yaml_close(sla2_yaml_loader *ld);

sla2_status sla2_yaml_fail(sla2_yaml_loader *ld, const yaml_mark_t *mark, sla2_status status,
                           const char *path, const char *fmt, ...) SLA2_PRINTF(5, 6);

/* The node at index (a mapping's key or value, a sequence's item), or NULL
 * after failing (an alias to a node already read). */
yaml_node_t *sla2_yaml_child(sla2_yaml_loader *ld, yaml_node_item_t index, const char *path);

/* Loads mapping node into base by fields ({NULL}-terminated). */
sla2_status sla2_yaml_load_mapping(sla2_yaml_loader *ld, yaml_node_t *node,
                                   const sla2_schema_field *fields, void *base, const char *path);

/* Loads one scalar as field describes (INT..NAME) into base. */
sla2_status sla2_yaml_load_value(sla2_yaml_loader *ld, const sla2_schema_field *field,
                                 yaml_node_t *node, void *base, const char *path);

/* The mark of the value loaded at path ("video.height"), or NULL. */
const yaml_mark_t *sla2_yaml_mark_of(const sla2_yaml_loader *ld, const char *path);

/* "a mapping", "a list", "nothing", "\"50\" (a quoted string)", "1.5". */
const char *sla2_yaml_describe(const yaml_node_t *node, char *out, size_t out_size);

/* path + "." + key, or path + "[index]". */
void sla2_yaml_path_key(char *out, const char *path, const char *key, size_t key_len);
void sla2_yaml_path_index(char *out, const char *path, size_t index);

#endif
