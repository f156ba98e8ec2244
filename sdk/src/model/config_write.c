/* sla2_runtime_config_write: the runtime file sla2-calib writes. */
#include "model/config.h"

#include "model/atomic_file.h"
#include "model/config_names.h"
#include "model/errmsg.h"

#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct text {
    char *chars;
    size_t len, capacity;
    int failed;
} text;

static void add(text *t, const char *fmt, ...) SLA2_PRINTF(2, 3);

static void add(text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list args;
        va_start(args, fmt);
        int n = vsnprintf(t->chars + t->len, t->capacity - t->len, fmt, args);
        va_end(args);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->len + (size_t)n < t->capacity) {
            t->len += (size_t)n;
            return;
        }
        size_t capacity = (t->capacity ? t->capacity : 1024) * 2 + (size_t)n;
        char *grown = realloc(t->chars, capacity);
        if (grown == NULL) {
            t->failed = 1;
            return;
        }
        t->chars = grown;
        t->capacity = capacity;
    }
}

/* The shortest decimal that reads back as v (the caller set the C locale),
 * always with a '.', because YAML 1.1 readers (PyYAML, which train/ uses)
 * take "1e-05" or "5" for a string or an integer: "1.0e-05", "5.0". */
static void format_double(char *out, size_t size, double v)
{
    char shortest[40] = "";
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(shortest, sizeof shortest, "%.*g", precision, v);
        if (strtod(shortest, NULL) == v)
            break;
    }
    char *exponent = strchr(shortest, 'e');
    if (strchr(shortest, '.') != NULL)
        snprintf(out, size, "%s", shortest);
    else if (exponent != NULL)
        snprintf(out, size, "%.*s.0%s", (int)(exponent - shortest), shortest, exponent);
    else
        snprintf(out, size, "%s.0", shortest);
}

static const char *enum_name(const char *const *names, int value)
{
    for (int i = 0; names[i] != NULL; i++)
        if (i == value)
            return names[i];
    return "(invalid)"; /* the parse-back check then names the key */
}

static void render(text *t, const sla2_runtime_config *c, const char *comment)
{
    char number[40];
    if (comment != NULL) {
        const char *line = comment;
        while (*line) {
            size_t n = strcspn(line, "\n");
            add(t, "# %.*s\n", (int)n, line);
            line += n + (line[n] == '\n');
        }
    }
    add(t, "backend: %s\n", enum_name(sla2_config_backend_names, (int)c->backend));
    add(t, "sampler: %s\n", enum_name(sla2_config_sampler_names, (int)c->sampler));
    add(t, "steps: %d\n", c->steps);
    format_double(number, sizeof number, c->shift);
    add(t, "shift: %s\n", number);
    format_double(number, sizeof number, c->guidance);
    add(t, "guidance: %s\n", number);
    add(t, "seed: %lld\n", (long long)c->seed);
    add(t, "attention: %s\n", enum_name(sla2_config_attention_names, (int)c->attention));
    add(t, "feature_map: %s\n", enum_name(sla2_config_feature_map_names, (int)c->feature_map));
    format_double(number, sizeof number, c->defaults.topk);
    add(t, "topk: %s\n", number);
    add(t, "quant: %s\n", enum_name(sla2_config_quant_names, (int)c->defaults.quant));
    add(t, "block_q: %d\n", c->defaults.block_q);
    add(t, "block_k: %d\n", c->defaults.block_k);
    if (c->weights != SLA2_WEIGHT_STORAGE_F32) /* the default: files written before the key existed stay the same */
        add(t, "weights: %s\n", enum_name(sla2_config_weights_names, (int)c->weights));
    add(t, "layers:%s\n", c->num_layers == 0 ? " []" : "");
    for (size_t i = 0; i < c->num_layers; i++) {
        const sla2_runtime_layer *l = &c->layers[i];
        add(t, "  - {layer: %d", l->layer);
        if (l->topk != 0.0) {
            format_double(number, sizeof number, l->topk);
            add(t, ", topk: %s", number);
        }
        if (l->quant >= 0)
            add(t, ", quant: %s", enum_name(sla2_config_quant_names, l->quant));
        if (l->block_q != 0)
            add(t, ", block_q: %d", l->block_q);
        if (l->block_k != 0)
            add(t, ", block_k: %d", l->block_k);
        if (l->dense)
            add(t, ", dense: true");
        add(t, "}\n");
    }
}

sla2_status sla2_runtime_config_write(const char *path, const sla2_runtime_config *config,
                                      const char *comment, char *err, size_t err_size)
{
    if (path == NULL || config == NULL || (config->num_layers > 0 && config->layers == NULL))
        return sla2_errmsg(err, err_size, SLA2_ERR_NULL_ARGUMENT, "sla2_runtime_config_write: %s is NULL",
                           path == NULL ? "path" : config == NULL ? "config" : "config->layers");
    locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0)
        return sla2_errmsg(err, err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: cannot create the C locale", path);
    locale_t previous = uselocale(c_locale);
    text t = {0};
    render(&t, config, comment);
    uselocale(previous);
    freelocale(c_locale);
    if (t.failed) {
        free(t.chars);
        return sla2_errmsg(err, err_size, SLA2_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    /* Whatever the reader would refuse is refused here, with its message. */
    sla2_runtime_config check;
    sla2_status status = sla2_runtime_config_parse(t.chars, t.len, path, &check, err, err_size);
    if (status == SLA2_OK) {
        sla2_runtime_config_free(&check);
        const void *chunks[1] = {t.chars};
        const uint64_t sizes[1] = {t.len};
        status = sla2_write_file_atomic(path, chunks, sizes, 1, err, err_size);
    } else if (status != SLA2_ERR_OUT_OF_MEMORY) {
        status = SLA2_ERR_INVALID_VALUE;
    }
    free(t.chars);
    return status;
}
