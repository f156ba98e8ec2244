/* The plot (see calib_plot.h). Log-log axes: topk candidates span a decade
 * and a half, errors several decades. */
#include "calib_plot.h"

#include <sla2/video.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct canvas {
    uint8_t *rgb;
    int width, height;
} canvas;

typedef struct rgb {
    uint8_t r, g, b;
} rgb;

/* 5x7 glyphs, one byte per row, bit 4 the leftmost column. */
typedef struct glyph {
    char c;
    uint8_t rows[7];
} glyph;

static const glyph FONT[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}}, {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}}, {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}}, {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}}, {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'/', {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10}}, {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
};

static const rgb PALETTE[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
                              {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
static const rgb BLACK = {0, 0, 0}, GRID = {225, 225, 225}, BUDGET = {200, 0, 0}, WHITE = {255, 255, 255};

static void put(canvas *c, int x, int y, rgb col)
{
    if (x < 0 || y < 0 || x >= c->width || y >= c->height)
        return;
    uint8_t *p = c->rgb + ((size_t)y * c->width + x) * 3;
    p[0] = col.r, p[1] = col.g, p[2] = col.b;
}

static void fill_rect(canvas *c, int x0, int y0, int w, int h, rgb col)
{
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w; x++)
            put(c, x, y, col);
}

/* Bresenham, `thick` pixels wide; dash > 0 leaves gaps of that length. */
static void line(canvas *c, int x0, int y0, int x1, int y1, rgb col, int thick, int dash)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (int n = 0;; n++) {
        if (!dash || (n / dash) % 2 == 0)
            fill_rect(c, x0 - thick / 2, y0 - thick / 2, thick, thick, col);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * e;
        if (e2 >= dy)
            e += dy, x0 += sx;
        if (e2 <= dx)
            e += dx, y0 += sy;
    }
}

static void disc(canvas *c, int cx, int cy, int r, rgb col)
{
    for (int y = -r; y <= r; y++)
        for (int x = -r; x <= r; x++)
            if (x * x + y * y <= r * r)
                put(c, cx + x, cy + y, col);
}

static const glyph *find_glyph(char ch)
{
    ch = (char)toupper((unsigned char)ch);
    for (size_t i = 0; i < sizeof FONT / sizeof *FONT; i++)
        if (FONT[i].c == ch)
            return &FONT[i];
    return NULL; /* space and anything unknown: blank */
}

/* Text at (x, y) top-left, each font pixel scale x scale. Returns its width. */
static int text(canvas *c, int x, int y, int scale, rgb col, const char *s)
{
    int x0 = x;
    for (; *s; s++, x += 6 * scale) {
        const glyph *g = find_glyph(*s);
        for (int row = 0; g && row < 7; row++)
            for (int bit = 0; bit < 5; bit++)
                if (g->rows[row] & (0x10 >> bit))
                    fill_rect(c, x + bit * scale, y + row * scale, scale, scale, col);
    }
    return x - x0;
}

static int text_width(int scale, const char *s)
{
    return (int)strlen(s) * 6 * scale;
}

typedef struct axes {
    int left, top, width, height;
    double x_min, x_max, y_min, y_max; /* log10 */
} axes;

static int to_x(const axes *a, double v)
{
    return a->left + (int)lround((log10(v) - a->x_min) / (a->x_max - a->x_min) * a->width);
}

static int to_y(const axes *a, double v)
{
    double l = log10(v);
    if (l < a->y_min)
        l = a->y_min;
    return a->top + a->height - (int)lround((l - a->y_min) / (a->y_max - a->y_min) * a->height);
}

static void draw_axes(canvas *c, const axes *a, const calib_table *t, const char *y_label)
{
    int last_label_end = -1000;
    for (int i = 0; i < t->num_topks; i++) {
        int x = to_x(a, t->topks[i]);
        line(c, x, a->top, x, a->top + a->height, GRID, 1, 0);
        line(c, x, a->top + a->height, x, a->top + a->height + 6, BLACK, 1, 0);
        char label[32];
        snprintf(label, sizeof label, "%g", (double)t->topks[i]);
        int w = text_width(2, label);
        if (x - w / 2 > last_label_end + 6) { /* skip labels that would overlap */
            text(c, x - w / 2, a->top + a->height + 12, 2, BLACK, label);
            last_label_end = x + w / 2;
        }
    }
    for (int p = (int)ceil(a->y_min - 1e-9); p <= (int)floor(a->y_max + 1e-9); p++) {
        int y = to_y(a, pow(10.0, p));
        line(c, a->left, y, a->left + a->width, y, GRID, 1, 0);
        line(c, a->left - 6, y, a->left, y, BLACK, 1, 0);
        char label[32];
        snprintf(label, sizeof label, "%g", pow(10.0, p));
        text(c, a->left - 10 - text_width(2, label), y - 7, 2, BLACK, label);
    }
    if (a->y_max - a->y_min <= 2.0) /* few decades: 2x and 5x lines too */
        for (int p = (int)floor(a->y_min); p < (int)ceil(a->y_max); p++)
            for (int m = 2; m <= 5; m += 3) {
                double v = m * pow(10.0, p);
                if (log10(v) <= a->y_min || log10(v) >= a->y_max)
                    continue;
                int y = to_y(a, v);
                line(c, a->left, y, a->left + a->width, y, GRID, 1, 0);
                char label[32];
                snprintf(label, sizeof label, "%g", v);
                text(c, a->left - 10 - text_width(1, label), y - 3, 1, BLACK, label);
            }
    line(c, a->left, a->top, a->left, a->top + a->height, BLACK, 2, 0);
    line(c, a->left, a->top + a->height, a->left + a->width, a->top + a->height, BLACK, 2, 0);
    const char *x_label = "TOPK (SHARE OF KEY BLOCKS KEPT, LOG SCALE)";
    text(c, a->left + (a->width - text_width(2, x_label)) / 2, a->top + a->height + 40, 2, BLACK, x_label);
    text(c, 10, a->top - 26, 2, BLACK, y_label);
}

static void y_range(const calib_table *t, double budget, int per_head, double *lo, double *hi)
{
    double mn = budget > 0 ? budget : INFINITY, mx = budget > 0 ? budget : 0;
    for (int l = 0; l < t->num_layers; l++)
        for (int i = 0; i < t->num_topks; i++) {
            double w = calib_best_worst(t, l, i, per_head);
            if (isfinite(w) && w > 0)
                mn = fmin(mn, w), mx = fmax(mx, w);
        }
    if (!isfinite(mn) || mx <= 0)
        mn = 1e-3, mx = 1;
    *lo = floor(log10(mn));
    *hi = ceil(log10(mx));
    if (*hi - *lo < 1)
        *hi = *lo + 1;
}

/* A candidate stopped at a sample that missed the budget was not measured
 * on every sample: its worst is a lower bound, drawn hollow. */
static int dropped(const calib_table *t, int layer, int ti, int total, double budget, double worst)
{
    if (worst <= budget)
        return 0;
    for (int mi = 0; mi < t->num_modes; mi++)
        if (t->count[calib_table_index(t, layer, ti, mi)] < total)
            return 1;
    return 0;
}

static void draw_layers(canvas *c, const axes *a, const calib_table *t, const calib_choice *choices, int per_head,
                        int total, double budget)
{
    for (int l = 0; l < t->num_layers; l++) {
        rgb col = PALETTE[l % (sizeof PALETTE / sizeof *PALETTE)];
        int px = 0, py = 0, have = 0;
        for (int i = 0; i < t->num_topks; i++) {
            double w = calib_best_worst(t, l, i, per_head);
            if (!isfinite(w)) {
                have = 0;
                continue;
            }
            int x = to_x(a, t->topks[i]), y = to_y(a, w > 0 ? w : 1e-300);
            if (have)
                line(c, px, py, x, y, col, 2, 0);
            fill_rect(c, x - 3, y - 3, 7, 7, col);
            if (dropped(t, l, i, total, budget, w))
                fill_rect(c, x - 1, y - 1, 3, 3, WHITE);
            px = x, py = y, have = 1;
        }
        const calib_choice *ch = &choices[l];
        if (ch->topk_index >= 0) { /* chosen: a ring in the layer's colour */
            int x = to_x(a, ch->topk), y = to_y(a, ch->worst > 0 ? ch->worst : 1e-300);
            disc(c, x, y, 9, col);
            disc(c, x, y, 5, WHITE);
            disc(c, x, y, 3, col);
        }
    }
}

static void draw_legend(canvas *c, int x, int y, const calib_table *t, const calib_choice *choices, int full_sweep)
{
    text(c, x, y, 2, BLACK, "CHOSEN (RING):");
    for (int l = 0; l < t->num_layers; l++) {
        rgb col = PALETTE[l % (sizeof PALETTE / sizeof *PALETTE)];
        int row = y + 24 + l * 20;
        fill_rect(c, x, row + 2, 18, 10, col);
        char label[64];
        if (choices[l].topk_index == CALIB_CHOICE_DENSE)
            snprintf(label, sizeof label, "L%d DENSE", l);
        else
            snprintf(label, sizeof label, "L%d %g %s", l, (double)choices[l].topk,
                     sla2_quant_mode_name(choices[l].quant));
        text(c, x + 24, row, 2, BLACK, label);
    }
    if (full_sweep) /* every candidate measured on every sample: nothing is drawn hollow */
        return;
    int row = y + 24 + t->num_layers * 20 + 12;
    fill_rect(c, x + 6, row + 2, 7, 7, BLACK);
    fill_rect(c, x + 8, row + 4, 3, 3, WHITE);
    text(c, x + 24, row, 1, BLACK, "HOLLOW: STOPPED AT A SAMPLE MISSING");
    text(c, x + 24, row + 10, 1, BLACK, "THE BUDGET (AT LEAST THIS)");
}

int calib_plot(const char *path, const calib_options *opt, const calib_table *t, const calib_choice *choices,
               const char *model_name)
{
    double budget = opt->kept_share > 0 ? 0 : calib_badness_budget(opt); /* 0: no budget line */
    int legend_w = 290;
    axes a = {.left = 110, .top = 70, .width = 620, .height = 400};
    canvas c = {.width = a.left + a.width + 30 + legend_w, .height = a.top + a.height + 70};
    int legend_h = 24 + 20 * t->num_layers + 80;
    if (c.height < legend_h + a.top)
        c.height = legend_h + a.top;
    c.rgb = malloc((size_t)c.width * c.height * 3);
    if (!c.rgb) {
        fprintf(stderr, CALIB_TOOL ": --plot: out of memory\n");
        return 0;
    }
    memset(c.rgb, 255, (size_t)c.width * c.height * 3);
    double lo_topk = t->topks[0], hi_topk = t->topks[t->num_topks - 1];
    a.x_min = log10(lo_topk) - 0.08, a.x_max = log10(hi_topk) + 0.08;
    y_range(t, budget, opt->per_head, &a.y_min, &a.y_max);
    char title[256];
    snprintf(title, sizeof title, "SLA2-CALIB %s: WORST %s OF THE DIT OUTPUT, ONE LAYER AT TOPK", model_name,
             opt->metric == CALIB_METRIC_COSINE ? "1 - COSINE" : "REL-L2 ERROR");
    text(&c, 10, 12, 2, BLACK, title);
    draw_axes(&c, &a, t, opt->metric == CALIB_METRIC_COSINE ? "1 - COSINE" : "REL-L2");
    if (budget > 0 && log10(budget) >= a.y_min && log10(budget) <= a.y_max) {
        int y = to_y(&a, budget);
        line(&c, a.left, y, a.left + a.width, y, BUDGET, 2, 8);
        char label[64];
        snprintf(label, sizeof label, "BUDGET %g", opt->budget);
        text(&c, a.left + a.width - text_width(2, label) - 4, y - 20, 2, BUDGET, label);
    }
    if (opt->kept_share > 0) {
        char label[64];
        snprintf(label, sizeof label, "MEAN KEPT SHARE <= %g, LEAST SUM", opt->kept_share);
        text(&c, a.left + a.width - text_width(2, label) - 4, a.top + 6, 2, BUDGET, label);
    }
    int steps[1000];
    int total = opt->num_inputs * opt->num_seeds * calib_sample_steps(opt, steps, 1000);
    draw_layers(&c, &a, t, choices, opt->per_head, total, budget);
    draw_legend(&c, a.left + a.width + 30, a.top, t, choices, opt->full_sweep);
    char err[512];
    sla2_status s = sla2_image_write_png(path, c.rgb, c.height, c.width, err, sizeof err);
    free(c.rgb);
    if (s != SLA2_OK) {
        fprintf(stderr, CALIB_TOOL ": --plot: %s\n", err);
        return 0;
    }
    return 1;
}
