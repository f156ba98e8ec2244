/* The prompt-adherence analyser: colour, shape and direction of the one
 * object in a tiny-demo video (train/tiny/data.py draws them). */
#include "sla2/video.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const colour_names[6] = {"red", "green", "blue", "yellow", "cyan", "magenta"};
static const double palette[6][3] = {{220, 40, 40}, {40, 200, 60}, {50, 80, 230},
                                     {230, 220, 40}, {40, 210, 220}, {220, 50, 210}};
static const char *const shape_names[3] = {"circle", "square", "triangle"};
static const char *const direction_names[4] = {"left", "right", "up", "down"};

/* A pixel belongs to the object when it is far from the background, which
 * is the frame's per-channel median (the object covers a few percent). */
#define OBJECT_DISTANCE 80.0

static int compare_bytes(const void *a, const void *b)
{
    return (int)*(const uint8_t *)a - (int)*(const uint8_t *)b;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct frame_object {
    int count, min_x, max_x, min_y, max_y;
    double sum_x, sum_y, sum_rgb[3];
} frame_object;

static void find_object(const uint8_t *rgb, int height, int width, uint8_t *scratch, frame_object *o)
{
    size_t pixels = (size_t)height * width;
    double background[3];
    for (int c = 0; c < 3; c++) {
        for (size_t i = 0; i < pixels; i++)
            scratch[i] = rgb[i * 3 + c];
        qsort(scratch, pixels, 1, compare_bytes);
        background[c] = scratch[pixels / 2];
    }
    memset(o, 0, sizeof *o);
    o->min_x = width, o->min_y = height, o->max_x = -1, o->max_y = -1;
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            const uint8_t *p = rgb + ((size_t)y * width + x) * 3;
            double d2 = 0;
            for (int c = 0; c < 3; c++)
                d2 += (p[c] - background[c]) * (p[c] - background[c]);
            if (d2 < OBJECT_DISTANCE * OBJECT_DISTANCE)
                continue;
            o->count++;
            o->sum_x += x, o->sum_y += y;
            for (int c = 0; c < 3; c++)
                o->sum_rgb[c] += p[c];
            o->min_x = x < o->min_x ? x : o->min_x, o->max_x = x > o->max_x ? x : o->max_x;
            o->min_y = y < o->min_y ? y : o->min_y, o->max_y = y > o->max_y ? y : o->max_y;
        }
}

/* Least-squares slope of v against frame index over frames with an object. */
static double slope(const double *v, const int *valid, int n)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (valid[i])
            sx += i, sy += v[i], sxx += (double)i * i, sxy += i * v[i], m++;
    double den = m * sxx - sx * sx;
    return m >= 2 && den > 0 ? (m * sxy - sx * sy) / den : 0.0;
}

sla2_status sla2_video_analyse(const float *video, int frames, int height, int width, sla2_video_analysis *out)
{
    if (!video || !out)
        return SLA2_ERR_NULL_ARGUMENT;
    if (frames < 1 || height < 4 || width < 4 || frames > 10000 || height > 4096 || width > 4096)
        return SLA2_ERR_INVALID_VALUE;
    size_t pixels = (size_t)height * width;
    uint8_t *rgb = malloc(pixels * 3), *scratch = malloc(pixels);
    double *cx = calloc((size_t)frames, sizeof(double)), *cy = calloc((size_t)frames, sizeof(double));
    double *fills = calloc((size_t)frames, sizeof(double));
    int *valid = calloc((size_t)frames, sizeof(int));
    if (!rgb || !scratch || !cx || !cy || !fills || !valid) {
        free(rgb), free(scratch), free(cx), free(cy), free(fills), free(valid);
        return SLA2_ERR_OUT_OF_MEMORY;
    }
    sla2_video_analysis a;
    memset(&a, 0, sizeof a);
    a.colour = a.shape = a.direction = "none";
    double sum_rgb[3] = {0, 0, 0};
    long total = 0;
    int num_fills = 0;
    for (int f = 0; f < frames; f++) {
        frame_object o;
        sla2_video_frame_rgb8(video, frames, height, width, f, rgb);
        find_object(rgb, height, width, scratch, &o);
        if (o.count < 8) /* noise, or no object this frame */
            continue;
        valid[f] = 1;
        cx[f] = o.sum_x / o.count, cy[f] = o.sum_y / o.count;
        for (int c = 0; c < 3; c++)
            sum_rgb[c] += o.sum_rgb[c];
        total += o.count;
        /* only frames where the object is wholly inside tell its shape */
        if (o.min_x > 0 && o.min_y > 0 && o.max_x < width - 1 && o.max_y < height - 1)
            fills[num_fills++] = o.count / (double)((o.max_x - o.min_x + 1) * (o.max_y - o.min_y + 1));
    }
    if (total > 0) {
        double best = INFINITY;
        for (int c = 0; c < 3; c++)
            a.mean_rgb[c] = sum_rgb[c] / (double)total;
        for (int k = 0; k < 6; k++) {
            double d = 0;
            for (int c = 0; c < 3; c++)
                d += (a.mean_rgb[c] - palette[k][c]) * (a.mean_rgb[c] - palette[k][c]);
            if (d < best)
                best = d, a.colour = colour_names[k];
        }
        a.object_share = (double)total / ((double)pixels * frames);
    }
    if (num_fills > 0) {
        qsort(fills, (size_t)num_fills, sizeof *fills, compare_doubles);
        a.fill_ratio = fills[num_fills / 2];
        /* circle pi/4 = 0.785, square 1, triangle 0.5: split halfway */
        a.shape = a.fill_ratio > 0.89 ? shape_names[1] : a.fill_ratio > 0.64 ? shape_names[0] : shape_names[2];
    }
    a.velocity[0] = slope(cx, valid, frames);
    a.velocity[1] = slope(cy, valid, frames);
    double speed_x = fabs(a.velocity[0]), speed_y = fabs(a.velocity[1]);
    if (speed_x > 0.5 || speed_y > 0.5) /* pixels per frame; the data moves 2.5 */
        a.direction = speed_x >= speed_y ? direction_names[a.velocity[0] < 0 ? 0 : 1]
                                         : direction_names[a.velocity[1] < 0 ? 2 : 3];
    *out = a;
    free(rgb), free(scratch), free(cx), free(cy), free(fills), free(valid);
    return SLA2_OK;
}

static int prompt_has(const char *prompt, const char *word)
{
    size_t len = strlen(word);
    for (const char *p = prompt; *p; p++)
        if ((p == prompt || p[-1] == ' ') && strncasecmp(p, word, len) == 0 && (p[len] == '\0' || p[len] == ' '))
            return 1;
    return 0;
}

int sla2_prompt_matches(const char *prompt, const sla2_video_analysis *a)
{
    if (!prompt || !a)
        return 0;
    return (prompt_has(prompt, a->colour) ? 1 : 0) | (prompt_has(prompt, a->shape) ? 2 : 0) |
           (prompt_has(prompt, a->direction) ? 4 : 0);
}
