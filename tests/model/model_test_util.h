/* Helpers shared by the model loader tests: a temporary directory for the
 * files the tests generate, and message checks. */
#ifndef SLA2_MODEL_TEST_UTIL_H
#define SLA2_MODEL_TEST_UTIL_H

#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_temp_dir[256];

static inline void temp_dir_create(const char *tag)
{
    snprintf(g_temp_dir, sizeof g_temp_dir, "/tmp/sla2-%s-XXXXXX", tag);
    if (mkdtemp(g_temp_dir) == NULL) {
        perror("mkdtemp");
        exit(EXIT_FAILURE);
    }
}

/* Removes the directory and whatever a failed test left in it. */
static inline void temp_dir_remove(void)
{
    DIR *dir = opendir(g_temp_dir);
    if (dir != NULL) {
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
                continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", g_temp_dir, entry->d_name);
            unlink(path);
        }
        closedir(dir);
    }
    rmdir(g_temp_dir);
}

static inline void temp_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", g_temp_dir, name);
}

static inline void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Files in the temporary directory (to check that nothing was left behind). */
static inline int temp_dir_count(void)
{
    int n = 0;
    DIR *dir = opendir(g_temp_dir);
    if (dir == NULL)
        return -1;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
            n++;
    closedir(dir);
    return n;
}

/* SLA2_TEST_VERBOSE=1 prints every error message a test checks. */
static inline void show_message(const char *message)
{
    if (getenv("SLA2_TEST_VERBOSE") != NULL)
        fprintf(stderr, "  %s\n", message);
}

#define ck_assert_contains(haystack, needle)                                                       \
    ck_assert_msg(strstr((haystack), (needle)) != NULL, "message \"%s\" lacks \"%s\"", (haystack), \
                  (needle))

/* A fixed-seed generator (splitmix64), so failures reproduce. */
static uint64_t g_rng_state;
static inline uint64_t rng_next(void)
{
    uint64_t z = (g_rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
