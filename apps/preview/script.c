/* Scripted input: a file of timed key presses, text and waits, replayed by
 * the UI loop (main.c) through the same event path as a person's input. */
#include "preview.h"

#include <SDL.h>

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int parse_line(char *line, script_command *c, char *why, size_t why_size)
{
    char *end = NULL;
    errno = 0;
    double delay = strtod(line, &end);
    if (end != line && (isspace((unsigned char)*end) || !*end)) {
        if (errno || !(delay >= 0 && delay <= 3600)) {
            snprintf(why, why_size, "delay: expected seconds in [0, 3600]");
            return 0;
        }
        c->delay_s = delay;
        line = trim(end);
    }
    char *arg = line;
    while (*arg && !isspace((unsigned char)*arg))
        arg++;
    if (*arg)
        *arg++ = '\0';
    arg = trim(arg);
    if (strlen(arg) >= sizeof c->text) {
        snprintf(why, why_size, "argument longer than %zu characters", sizeof c->text - 1);
        return 0;
    }
    snprintf(c->text, sizeof c->text, "%s", arg);
    if (!strcmp(line, "key")) {
        c->kind = SCRIPT_KEY;
        c->keycode = *arg ? (int)SDL_GetKeyFromName(arg) : SDLK_UNKNOWN;
        if (c->keycode == SDLK_UNKNOWN) {
            snprintf(why, why_size, "key: unknown key name '%s' (SDL key names: Return, Escape, Space, d, [, Left, F1)",
                     arg);
            return 0;
        }
    } else if (!strcmp(line, "text")) {
        c->kind = SCRIPT_TEXT;
    } else if (!strcmp(line, "wait-step")) {
        c->kind = SCRIPT_WAIT_STEP;
        c->number = atoi(arg);
        if (c->number < 1 || c->number > PREVIEW_MAX_STEPS) {
            snprintf(why, why_size, "wait-step: expected a step number in [1, %d]", PREVIEW_MAX_STEPS);
            return 0;
        }
    } else if (!strcmp(line, "wait-done")) {
        c->kind = SCRIPT_WAIT_DONE;
    } else if (!strcmp(line, "screenshot")) {
        c->kind = SCRIPT_SCREENSHOT;
        if (!*arg || strchr(arg, '/')) {
            snprintf(why, why_size, "screenshot: expected a name without '/'");
            return 0;
        }
    } else if (!strcmp(line, "sleep")) {
        c->kind = SCRIPT_SLEEP;
        c->delay_s += strtod(arg, NULL);
    } else if (!strcmp(line, "quit")) {
        c->kind = SCRIPT_QUIT;
    } else {
        snprintf(why, why_size, "unknown command '%s' (key, text, wait-step, wait-done, screenshot, sleep, quit)",
                 line);
        return 0;
    }
    return 1;
}

int preview_script_load(const char *path, preview_script *script, char *error, size_t error_size)
{
    memset(script, 0, sizeof *script);
    script->timeout_s = 600;
    script->wait_started_s = -1;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(error, error_size, "%s: cannot open the script: %s", path, strerror(errno));
        return 1;
    }
    char buf[1024];
    int line_no = 0, capacity = 0;
    while (fgets(buf, sizeof buf, f)) {
        line_no++;
        char *hash = strchr(buf, '#');
        if (hash)
            *hash = '\0';
        char *line = trim(buf);
        if (!*line)
            continue;
        if (script->count == capacity) {
            capacity = capacity ? 2 * capacity : 32;
            script_command *grown = realloc(script->commands, (size_t)capacity * sizeof *grown);
            if (!grown) {
                snprintf(error, error_size, "%s: out of memory", path);
                fclose(f);
                preview_script_free(script);
                return 1;
            }
            script->commands = grown;
        }
        script_command *c = &script->commands[script->count];
        memset(c, 0, sizeof *c);
        c->line = line_no;
        char why[256];
        if (!parse_line(line, c, why, sizeof why)) {
            snprintf(error, error_size, "%s:%d: %s", path, line_no, why);
            fclose(f);
            preview_script_free(script);
            return 1;
        }
        script->count++;
    }
    fclose(f);
    return 0;
}

void preview_script_free(preview_script *script)
{
    free(script->commands);
    memset(script, 0, sizeof *script);
}
