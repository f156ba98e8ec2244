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
 * is the frame's per-channel median (the object covers a few percent). Of
 * those pixels the largest 8-connected component is the object: generated
 * videos have specks around it. */
#define OBJECT_DISTANCE 80.0

static int compare_bytes(const void *a, const void *b)
{
    return (int)*(const uint8_t *)a - (int)*(const uint8_t *)b;
}

typedef struct frame_object {
    int count;
    double cx, cy, sum_rgb[3];
    int min_x, max_x, min_y, max_y;
} frame_object;

typedef struct frame_scratch {
    uint8_t *bytes; /* median */
    uint8_t *mask;  /* 1 object-coloured, 2 in the chosen component */
    int *stack, *label;
} frame_scratch;

static void object_mask(const uint8_t *rgb, int height, int width, frame_scratch *fs)
{
    size_t pixels = (size_t)height * width;
    double background[3];
    for (int c = 0; c < 3; c++) {
        for (size_t i = 0; i < pixels; i++)
            fs->bytes[i] = rgb[i * 3 + c];
        qsort(fs->bytes, pixels, 1, compare_bytes);
        background[c] = fs->bytes[pixels / 2];
    }
    for (size_t i = 0; i < pixels; i++) {
        double d2 = 0;
        for (int c = 0; c < 3; c++)
            d2 += (rgb[i * 3 + c] - background[c]) * (rgb[i * 3 + c] - background[c]);
        fs->mask[i] = d2 >= OBJECT_DISTANCE * OBJECT_DISTANCE;
    }
}

/* Labels the 8-connected components of mask == 1; returns the label of the
 * largest (0 if none) and its size. */
static int largest_component(int height, int width, frame_scratch *fs, int *size)
{
    size_t pixels = (size_t)height * width;
    int best = 0, best_size = 0, next = 0;
    for (size_t i = 0; i < pixels; i++)
        fs->label[i] = 0;
    for (size_t seed = 0; seed < pixels; seed++) {
        if (!fs->mask[seed] || fs->label[seed])
            continue;
        int top = 0, count = 0;
        fs->label[seed] = ++next;
        fs->stack[top++] = (int)seed;
        while (top > 0) {
            int p = fs->stack[--top], x = p % width, y = p / width;
            count++;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int nx = x + dx, ny = y + dy;
                    if (nx < 0 || ny < 0 || nx >= width || ny >= height)
                        continue;
                    int q = ny * width + nx;
                    if (fs->mask[q] && !fs->label[q]) {
                        fs->label[q] = next;
                        fs->stack[top++] = q;
                    }
                }
        }
        if (count > best_size)
            best = next, best_size = count;
    }
    *size = best_size;
    return best;
}

static void find_object(const uint8_t *rgb, int height, int width, frame_scratch *fs, frame_object *o)
{
    memset(o, 0, sizeof *o);
    object_mask(rgb, height, width, fs);
    int size = 0, label = largest_component(height, width, fs, &size);
    o->min_x = width, o->min_y = height, o->max_x = -1, o->max_y = -1;
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            size_t i = (size_t)y * width + x;
            fs->mask[i] = label && fs->label[i] == label;
            if (!fs->mask[i])
                continue;
            o->count++;
            o->cx += x + 0.5, o->cy += y + 0.5;
            for (int c = 0; c < 3; c++)
                o->sum_rgb[c] += rgb[i * 3 + c];
            o->min_x = x < o->min_x ? x : o->min_x, o->max_x = x > o->max_x ? x : o->max_x;
            o->min_y = y < o->min_y ? y : o->min_y, o->max_y = y > o->max_y ? y : o->max_y;
        }
    if (o->count) {
        o->cx /= o->count;
        o->cy /= o->count;
    }
}

/* The data's shapes around a centre: circle radius 10, square side 18,
 * upward equilateral triangle side 24 whose bounding box is centred. */
static int in_shape(int shape, double dx, double dy)
{
    if (shape == 0)
        return dx * dx + dy * dy <= 100.0;
    if (shape == 1)
        return fabs(dx) <= 9.0 && fabs(dy) <= 9.0;
    double h = 24.0 * 0.8660254037844386, top = -h / 2;
    return dy >= top && dy <= h / 2 && fabs(dx) <= 12.0 * (dy - top) / h;
}

/* The shape whose template, centred on the object's bounding box, overlaps
 * the object best (intersection over union). */
static int best_shape(const frame_scratch *fs, const frame_object *o, int height, int width)
{
    double cx = (o->min_x + o->max_x + 1) / 2.0, cy = (o->min_y + o->max_y + 1) / 2.0, best_iou = -1;
    int best = 0;
    for (int shape = 0; shape < 3; shape++) {
        int inter = 0, uni = 0;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++) {
                int in_template = in_shape(shape, x + 0.5 - cx, y + 0.5 - cy);
                int in_object = fs->mask[(size_t)y * width + x];
                inter += in_template && in_object;
                uni += in_template || in_object;
            }
        double iou = uni ? (double)inter / uni : 0.0;
        if (iou > best_iou)
            best_iou = iou, best = shape;
    }
    return best;
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
    uint8_t *rgb = malloc(pixels * 3);
    frame_scratch fs = {malloc(pixels), malloc(pixels), malloc(pixels * sizeof(int)), malloc(pixels * sizeof(int))};
    double *cx = calloc((size_t)frames, sizeof(double)), *cy = calloc((size_t)frames, sizeof(double));
    int *valid = calloc((size_t)frames, sizeof(int));
    if (!rgb || !fs.bytes || !fs.mask || !fs.stack || !fs.label || !cx || !cy || !valid) {
        free(rgb), free(fs.bytes), free(fs.mask), free(fs.stack), free(fs.label), free(cx), free(cy), free(valid);
        return SLA2_ERR_OUT_OF_MEMORY;
    }
    sla2_video_analysis a;
    memset(&a, 0, sizeof a);
    a.colour = a.shape = a.direction = "none";
    double sum_rgb[3] = {0, 0, 0};
    long total = 0;
    int shape_votes[3] = {0, 0, 0}, inside_frames = 0;
    double fill_sum = 0;
    for (int f = 0; f < frames; f++) {
        frame_object o;
        sla2_video_frame_rgb8(video, frames, height, width, f, rgb);
        find_object(rgb, height, width, &fs, &o);
        if (o.count < 8) /* noise, or no object this frame */
            continue;
        valid[f] = 1;
        cx[f] = o.cx, cy[f] = o.cy;
        for (int c = 0; c < 3; c++)
            sum_rgb[c] += o.sum_rgb[c];
        total += o.count;
        /* only frames where the object is wholly inside tell its shape */
        if (o.min_x > 0 && o.min_y > 0 && o.max_x < width - 1 && o.max_y < height - 1) {
            shape_votes[best_shape(&fs, &o, height, width)]++;
            fill_sum += o.count / (double)((o.max_x - o.min_x + 1) * (o.max_y - o.min_y + 1));
            inside_frames++;
        }
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
    if (inside_frames > 0) {
        int winner = 0;
        for (int k = 1; k < 3; k++)
            if (shape_votes[k] > shape_votes[winner])
                winner = k;
        a.shape = shape_names[winner];
        a.fill_ratio = fill_sum / inside_frames;
    }
    a.velocity[0] = slope(cx, valid, frames);
    a.velocity[1] = slope(cy, valid, frames);
    double speed_x = fabs(a.velocity[0]), speed_y = fabs(a.velocity[1]);
    if (speed_x > 0.5 || speed_y > 0.5) /* pixels per frame; the data moves 2.5 */
        a.direction = speed_x >= speed_y ? direction_names[a.velocity[0] < 0 ? 0 : 1]
                                         : direction_names[a.velocity[1] < 0 ? 2 : 3];
    *out = a;
    free(rgb), free(fs.bytes), free(fs.mask), free(fs.stack), free(fs.label), free(cx), free(cy), free(valid);
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
