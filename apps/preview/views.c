/* Drawing the window: the form, the four views (video, block mask, alpha,
 * timing), the status line and the help overlay. */
#include "app.h"

#include <math.h>
#include <string.h>

#define COLOUR_BACKGROUND 0x15171cu
#define COLOUR_PANEL 0x1f232bu
#define COLOUR_BORDER 0x3a404cu
#define COLOUR_TEXT 0xd8dde6u
#define COLOUR_DIM 0x8a93a3u
#define COLOUR_ACCENT 0x56b6f0u
#define COLOUR_ERROR 0xff6b6bu
#define COLOUR_KEPT 0xffb547u
#define COLOUR_DROPPED 0x2b303au
/* the timing bar's parts */
#define COLOUR_ROUTER 0xc678ddu
#define COLOUR_QUANTISE 0x56b6c2u
#define COLOUR_SPARSE 0xffb547u
#define COLOUR_LINEAR 0x98c379u
#define COLOUR_MIX 0xe06c75u
#define COLOUR_ATTENTION_OTHER 0xa89060u
#define COLOUR_REST 0x4f8fd6u
#define MARGIN 10

const char *view_name(view_kind view)
{
    static const char *const names[] = {"all", "video", "mask", "alpha", "timing"};
    return view >= 0 && view < VIEW_COUNT ? names[view] : "?";
}

static void set_colour(SDL_Renderer *r, uint32_t rgb, int alpha)
{
    SDL_SetRenderDrawColor(r, (rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255, (Uint8)alpha);
}

static void fill(SDL_Renderer *r, int x, int y, int w, int h, uint32_t rgb)
{
    SDL_Rect rect = {x, y, w, h};
    set_colour(r, rgb, 255);
    SDL_RenderFillRect(r, &rect);
}

static void outline(SDL_Renderer *r, int x, int y, int w, int h, uint32_t rgb)
{
    SDL_Rect rect = {x, y, w, h};
    set_colour(r, rgb, 255);
    SDL_RenderDrawRect(r, &rect);
}

/* A panel with a title; returns the area left for its content. */
static SDL_Rect panel(app *a, SDL_Rect area, const char *title)
{
    fill(a->renderer, area.x, area.y, area.w, area.h, COLOUR_PANEL);
    outline(a->renderer, area.x, area.y, area.w, area.h, COLOUR_BORDER);
    int line = preview_font_line_height(a->font);
    preview_text(a->renderer, a->font, area.x + 8, area.y + 5, COLOUR_ACCENT, title);
    SDL_Rect content = {area.x + 8, area.y + line + 10, area.w - 16, area.h - line - 18};
    return content;
}

static int have_step(const app *a)
{
    return a->view.seq > 0 && a->view.step > 0;
}

/* ---- Video --------------------------------------------------------------- */
/* Wan2.1's 16 VAE latent channels to RGB in [-1, 1]: a linear map with a bias
 * fitted to the VAE's decodes, the usual cheap live preview (the values of
 * ComfyUI's comfy/latent_formats.py, class Wan21). */
static const float wan21_latent_rgb[16][3] = {
    {-0.1299f, -0.1692f, 0.2932f}, {0.0671f, 0.0406f, 0.0442f},   {0.3568f, 0.2548f, 0.1747f},
    {0.0372f, 0.2344f, 0.1420f},   {0.0313f, 0.0189f, -0.0328f},  {0.0296f, -0.0956f, -0.0665f},
    {-0.3477f, -0.4059f, -0.2925f}, {0.0166f, 0.1902f, 0.1975f},  {-0.0412f, 0.0267f, -0.1364f},
    {-0.1293f, 0.0740f, 0.1636f},  {0.0680f, 0.3019f, 0.1128f},   {0.0032f, 0.0581f, 0.0639f},
    {-0.1251f, 0.0927f, 0.1699f},  {0.0060f, -0.0633f, 0.0005f},  {0.3477f, 0.2275f, 0.2950f},
    {0.1984f, 0.0913f, 0.1861f}};
static const float wan21_latent_rgb_bias[3] = {-0.1835f, -0.0868f, -0.3360f};

static uint8_t to_byte(float v)
{
    float u = (v + 1.0f) * 127.5f;
    return (uint8_t)(u <= 0 ? 0 : u >= 255 ? 255 : lrintf(u));
}

static void frame_to_rgb(const preview_snapshot *s, int pixel_space, int frame, uint8_t *rgb)
{
    size_t plane = (size_t)s->frames * s->height * s->width, pixels = (size_t)s->height * s->width;
    const float *base = s->video + (size_t)frame * pixels;
    if (!pixel_space && s->channels == 16) {
        for (size_t p = 0; p < pixels; p++)
            for (int c = 0; c < 3; c++) {
                float v = wan21_latent_rgb_bias[c];
                for (int l = 0; l < 16; l++)
                    v += base[(size_t)l * plane + p] * wan21_latent_rgb[l][c];
                rgb[p * 3 + c] = to_byte(v);
            }
        return;
    }
    /* Pixel-space models are RGB in [-1, 1]; other channel counts show their
     * first three channels, or grey from the first. */
    for (size_t p = 0; p < pixels; p++)
        for (int c = 0; c < 3; c++)
            rgb[p * 3 + c] = to_byte(base[(size_t)(s->channels >= 3 ? c : 0) * plane + p]);
}

/* The panel, its title and where the picture goes; the picture itself and
 * the frame counter change every few frames and are drawn by video_image. */
static void draw_video(app *a, SDL_Rect area)
{
    const preview_snapshot *s = &a->view;
    char title[256];
    if (have_step(a))
        snprintf(title, sizeof title, "video  step %d/%d", s->step, s->num_steps);
    else
        snprintf(title, sizeof title, "video");
    SDL_Rect c = panel(a, area, title);
    if (!have_step(a)) {
        preview_text(a->renderer, a->font, c.x, c.y, COLOUR_DIM,
                     a->state == PREVIEW_RUNNING ? "running the first step..." : "press Enter to generate");
        return;
    }
    if (a->analysis[0]) {
        /* Below the video: the analyser's reading and the prompt's match,
         * wrapped at spaces (at most 4 lines). */
        int per_line = c.w / preview_font_advance(a->font), line = preview_font_line_height(a->font);
        int starts[5], lengths[4], lines = 0;
        for (int at = 0, len = (int)strlen(a->analysis); at < len && lines < 4 && per_line > 8; lines++) {
            int n = len - at <= per_line ? len - at : per_line;
            if (at + n < len)
                for (int k = n; k > per_line / 2; k--)
                    if (a->analysis[at + k] == ' ') {
                        n = k;
                        break;
                    }
            starts[lines] = at, lengths[lines] = n;
            at += n;
            while (a->analysis[at] == ' ')
                at++;
        }
        for (int i = 0; i < lines; i++)
            preview_textf(a->renderer, a->font, c.x, c.y + c.h - (lines - i) * line, COLOUR_TEXT, "%.*s", lengths[i],
                          a->analysis + starts[i]);
        c.h -= lines * line + 4;
    }
    /* Nearest-neighbour upscale by the largest whole factor that fits. */
    int scale = c.w / s->width < c.h / s->height ? c.w / s->width : c.h / s->height;
    int w = scale >= 1 ? s->width * scale : c.w, h = scale >= 1 ? s->height * scale : c.h;
    a->drawn.video_drawn = 1;
    a->drawn.video = (SDL_Rect){c.x + (c.w - w) / 2, c.y + (c.h - h) / 2, w, h};
    a->drawn.video_label_x = area.x + 8 + ((int)strlen(title) + 2) * preview_font_advance(a->font);
    a->drawn.video_label_y = area.y + 5;
}

static void video_image(app *a)
{
    const preview_snapshot *s = &a->view;
    if (!a->drawn.video_drawn)
        return;
    if (a->uploaded_seq != s->seq || a->uploaded_frame != a->frame) {
        frame_to_rgb(s, a->info.pixel_space, a->frame, a->frame_rgb);
        SDL_UpdateTexture(a->video_texture, NULL, a->frame_rgb, s->width * 3);
        a->uploaded_seq = s->seq, a->uploaded_frame = a->frame;
    }
    SDL_RenderCopy(a->renderer, a->video_texture, NULL, &a->drawn.video);
    preview_textf(a->renderer, a->font, a->drawn.video_label_x, a->drawn.video_label_y, COLOUR_ACCENT,
                  "frame %d/%d%s", a->frame + 1, s->frames, a->loop ? "" : " (held)");
    a->drawn.video_frame = a->frame;
}

/* ---- Block mask ---------------------------------------------------------- */
static void draw_mask(app *a, SDL_Rect area)
{
    const preview_snapshot *s = &a->view;
    char title[256];
    snprintf(title, sizeof title, "block mask  layer %d/%d  head %d/%d  (rows: query blocks, columns: key blocks)",
             a->layer + 1, s->num_layers, a->head + 1, s->num_heads);
    SDL_Rect c = panel(a, area, title);
    if (!have_step(a) || !s->have_masks) {
        preview_text(a->renderer, a->font, c.x, c.y, COLOUR_DIM, "no mask yet: it comes with the first step");
        return;
    }
    int64_t nq = s->q_blocks[a->layer], nk = s->k_blocks[a->layer];
    const uint8_t *mask = s->masks + (size_t)a->layer * s->mask_capacity + (size_t)a->head * nq * nk;
    int64_t kept_stats = s->kept_per_q_block[a->layer] * nq, kept_mask = 0;
    for (int64_t i = 0; i < nq * nk; i++)
        kept_mask += mask[i] != 0;
    int line = preview_font_line_height(a->font);
    uint32_t colour = kept_stats == kept_mask ? COLOUR_TEXT : COLOUR_ERROR;
    preview_textf(a->renderer, a->font, c.x, c.y, colour,
                  "kept %lld of %lld blocks (%.1f%%), %lld per query block; Nq %lld x Nk %lld%s",
                  (long long)kept_mask, (long long)(nq * nk), 100.0 * (double)kept_mask / (double)(nq * nk),
                  (long long)s->kept_per_q_block[a->layer], (long long)nq, (long long)nk,
                  s->dense ? "  (dense step)" : "");
    if (kept_stats != kept_mask)
        preview_textf(a->renderer, a->font, c.x, c.y + line, COLOUR_ERROR, "stats say %lld kept",
                      (long long)kept_stats);
    int top = c.y + 2 * line + 4, avail_h = c.y + c.h - top, avail_w = c.w;
    /* Square cells, at most 48 pixels, at least 1. */
    int cell = (int)(avail_w / nk < avail_h / nq ? avail_w / nk : avail_h / nq);
    if (cell > 48)
        cell = 48;
    if (cell < 1)
        cell = 1;
    int gap = cell >= 4 ? 1 : 0;
    int grid_w = (int)(cell * nk), grid_h = (int)(cell * nq);
    int x0 = c.x + (avail_w - grid_w) / 2, y0 = top + (avail_h - grid_h) / 2;
    if (x0 < c.x)
        x0 = c.x;
    if (y0 < top)
        y0 = top;
    fill(a->renderer, x0, y0, grid_w, grid_h, 0x101216u);
    SDL_Rect rects[512];
    int pending = 0;
    for (int pass = 0; pass < 2; pass++) {
        set_colour(a->renderer, pass ? COLOUR_KEPT : COLOUR_DROPPED, 255);
        for (int64_t i = 0; i < nq; i++)
            for (int64_t j = 0; j < nk; j++) {
                if ((mask[i * nk + j] != 0) != pass)
                    continue;
                rects[pending++] = (SDL_Rect){x0 + (int)j * cell, y0 + (int)i * cell, cell - gap, cell - gap};
                if (pending == (int)(sizeof rects / sizeof *rects)) {
                    SDL_RenderFillRects(a->renderer, rects, pending);
                    pending = 0;
                }
            }
        if (pending)
            SDL_RenderFillRects(a->renderer, rects, pending);
        pending = 0;
    }
    a->drawn.mask_drawn = 1;
    a->drawn.mask = (SDL_Rect){x0, y0, grid_w, grid_h};
    a->drawn.mask_cell = cell, a->drawn.mask_gap = gap;
    a->drawn.mask_q_blocks = nq, a->drawn.mask_k_blocks = nk;
    a->drawn.kept_stats = kept_stats, a->drawn.kept_mask = kept_mask;
}

/* ---- Alpha --------------------------------------------------------------- */
static void colour_scale(app *a, int x, int y, int w, int h)
{
    for (int i = 0; i < h; i++) {
        set_colour(a->renderer, preview_colour_map(1.0 - (double)i / (h - 1)), 255);
        SDL_RenderDrawLine(a->renderer, x, y + i, x + w - 1, y + i);
    }
    outline(a->renderer, x, y, w, h, COLOUR_BORDER);
    int line = preview_font_line_height(a->font);
    preview_text(a->renderer, a->font, x + w + 4, y - line / 2, COLOUR_DIM, "1.0");
    preview_text(a->renderer, a->font, x + w + 4, y + h / 2 - line / 2, COLOUR_DIM, "0.5");
    preview_text(a->renderer, a->font, x + w + 4, y + h - line / 2, COLOUR_DIM, "0.0");
}

static void draw_alpha(app *a, SDL_Rect area)
{
    const preview_snapshot *s = &a->view;
    char title[256];
    snprintf(title, sizeof title, "alpha per query block  layer %d/%d  (rows: heads)", a->layer + 1, s->num_layers);
    SDL_Rect c = panel(a, area, title);
    if (!have_step(a) || !s->have_alpha) {
        preview_text(a->renderer, a->font, c.x, c.y, COLOUR_DIM, "no alpha yet: it comes with the first step");
        return;
    }
    int64_t nq = s->q_blocks[a->layer];
    const float *alpha = s->alphas + (size_t)a->layer * s->alpha_capacity;
    double head_mean = 0;
    for (int64_t i = 0; i < nq; i++)
        head_mean += alpha[(size_t)a->head * nq + i];
    head_mean /= (double)nq;
    int line = preview_font_line_height(a->font);
    preview_textf(a->renderer, a->font, c.x, c.y, COLOUR_TEXT,
                  "mean alpha %.3f (head %d: %.3f); 1 = sparse branch only, 0 = linear branch only",
                  s->mean_alpha[a->layer], a->head + 1, head_mean);
    int scale_w = 16, label_w = 6 * preview_font_advance(a->font);
    int top = c.y + line + 8, avail_w = c.w - scale_w - label_w - 12, avail_h = c.y + c.h - top;
    avail_h -= line + 4; /* the per-layer line below */
    int cell_w = (int)(avail_w / nq), cell_h = avail_h / s->num_heads;
    if (cell_w > 40)
        cell_w = 40;
    if (cell_h > 64)
        cell_h = 64;
    if (cell_w < 1)
        cell_w = 1;
    if (cell_h < 2)
        cell_h = 2;
    int head_label = 4 * preview_font_advance(a->font);
    int x0 = c.x + head_label, y0 = top;
    for (int h = 0; h < s->num_heads; h++) {
        if (cell_h >= line)
            preview_textf(a->renderer, a->font, c.x, y0 + h * cell_h + (cell_h - line) / 2,
                          h == a->head ? COLOUR_ACCENT : COLOUR_DIM, "h%d", h + 1);
        int gap_w = cell_w >= 6 ? 1 : 0, gap_h = cell_h >= 6 ? 1 : 0;
        for (int64_t i = 0; i < nq; i++)
            fill(a->renderer, x0 + (int)i * cell_w, y0 + h * cell_h, cell_w - gap_w, cell_h - gap_h,
                 preview_colour_map(alpha[(size_t)h * nq + i]));
    }
    char layers[512];
    int used = snprintf(layers, sizeof layers, "mean alpha by layer:");
    for (int l = 0; l < s->num_layers && used < (int)sizeof layers - 24; l++)
        used += snprintf(layers + used, sizeof layers - (size_t)used, "%s%d: %.3f", l ? ", " : " ", l + 1,
                         s->mean_alpha[l]);
    preview_text(a->renderer, a->font, c.x, y0 + cell_h * s->num_heads + 4, COLOUR_DIM, layers);
    outline(a->renderer, x0 - 1, y0 + a->head * cell_h - 1, (int)(cell_w * nq) + 2, cell_h + 2, 0xffffffu);
    int scale_h = cell_h * s->num_heads > 3 * line ? cell_h * s->num_heads : 3 * line;
    colour_scale(a, x0 + (int)(cell_w * nq) + 12, y0 + line / 2, scale_w, scale_h - line);
    a->drawn.alpha_drawn = 1;
    a->drawn.alpha = (SDL_Rect){x0, y0, (int)(cell_w * nq), cell_h * s->num_heads};
}

/* ---- Timing -------------------------------------------------------------- */
static const uint32_t timing_colours[TIMING_PARTS] = {COLOUR_ROUTER, COLOUR_QUANTISE, COLOUR_SPARSE, COLOUR_LINEAR,
                                                      COLOUR_MIX, COLOUR_ATTENTION_OTHER, COLOUR_REST};
static const char *const timing_names[TIMING_PARTS] = {"router", "quantise", "sparse", "linear",
                                                       "mix", "attention, other", "rest"};

/* Step i's time split into the bar's parts (milliseconds). The phases come
 * from the backend; attention's rest and the step's rest are what is left. */
static void step_parts(const preview_snapshot *s, int i, double parts[TIMING_PARTS])
{
    const double *phases = s->history_phase_ms + (size_t)i * PREVIEW_PHASES;
    double phased = 0;
    for (int p = 0; p < PREVIEW_PHASES; p++)
        phased += parts[p] = phases[p] > 0 ? phases[p] : 0;
    double attention = s->history_attention_ms[i] > phased ? s->history_attention_ms[i] : phased;
    parts[TIMING_ATTENTION_OTHER] = attention - phased;
    parts[TIMING_REST] = s->history_step_ms[i] > attention ? s->history_step_ms[i] - attention : 0;
}

/* A duration readable from microseconds (a GPU's phases) to minutes (a CPU's steps). */
static const char *duration(double ms, char *text, size_t size)
{
    snprintf(text, size, ms < 10 ? "%.2f ms" : ms < 1000 ? "%.0f ms" : "%.2f s", ms < 1000 ? ms : ms / 1e3);
    return text;
}

/* Legend entries with their totals, wrapped to the width; returns the lines used. */
static int timing_legend(app *a, SDL_Rect c, int y, const double totals[TIMING_PARTS], double total)
{
    int line = preview_font_line_height(a->font), x = c.x, lines = 1;
    for (int p = 0; p < TIMING_PARTS; p++) {
        char label[96], time[32];
        snprintf(label, sizeof label, "%s %s %.0f%%", timing_names[p], duration(totals[p], time, sizeof time),
                 total > 0 ? 100.0 * totals[p] / total : 0.0);
        int w = 16 + (int)strlen(label) * preview_font_advance(a->font) + 14;
        if (x > c.x && x + w > c.x + c.w)
            x = c.x, y += line + 2, lines++;
        fill(a->renderer, x, y + 3, 12, line - 6, timing_colours[p]);
        preview_text(a->renderer, a->font, x + 16, y, COLOUR_DIM, label);
        x += w;
    }
    return lines;
}

static void draw_timing(app *a, SDL_Rect area)
{
    const preview_snapshot *s = &a->view;
    int cuda = sla2_context_backend(a->ctx) == SLA2_BACKEND_CUDA;
    SDL_Rect c = panel(a, area, cuda ? "time per step by phase  (attention: GPU time from CUDA events; step: wall clock)"
                                     : "time per step by phase  (wall clock)");
    if (!have_step(a)) {
        preview_text(a->renderer, a->font, c.x, c.y, COLOUR_DIM, "no step yet");
        return;
    }
    double totals[TIMING_PARTS] = {0}, total = 0, attention = 0, slowest = 1e-9;
    for (int i = 0; i < s->step && i < s->history_capacity; i++) {
        double parts[TIMING_PARTS];
        step_parts(s, i, parts);
        for (int p = 0; p < TIMING_PARTS; p++)
            totals[p] += parts[p];
        total += s->history_step_ms[i], attention += s->history_attention_ms[i];
        if (s->history_step_ms[i] > slowest)
            slowest = s->history_step_ms[i];
    }
    int line = preview_font_line_height(a->font);
    char total_text[32], per_step[32], last[32], attention_text[32], rest[32];
    preview_textf(a->renderer, a->font, c.x, c.y, COLOUR_TEXT, "total %s, %s/step (last %s); attention %s (%.0f%%), rest %s",
                  duration(total, total_text, sizeof total_text), duration(total / s->step, per_step, sizeof per_step),
                  duration(s->step_ms, last, sizeof last), duration(attention, attention_text, sizeof attention_text),
                  total > 0 ? 100.0 * attention / total : 0.0, duration(totals[TIMING_REST], rest, sizeof rest));
    int legend_lines = timing_legend(a, c, c.y + line + 2, totals, total);
    int top = c.y + (legend_lines + 1) * (line + 2) + line + 4, bottom = c.y + c.h - line - 2, bar_area = bottom - top;
    int n = s->num_steps > 0 ? s->num_steps : s->step;
    int bar_w = c.w / (n > 0 ? n : 1);
    if (bar_w > 64)
        bar_w = 64;
    if (bar_w < 1)
        bar_w = 1;
    int gap = bar_w >= 4 ? 2 : 0;
    set_colour(a->renderer, COLOUR_BORDER, 255);
    SDL_RenderDrawLine(a->renderer, c.x, bottom, c.x + c.w, bottom);
    for (int i = 0; i < s->step && i < s->history_capacity && i * bar_w < c.w; i++) {
        double parts[TIMING_PARTS], below = 0;
        step_parts(s, i, parts);
        int bx = c.x + i * bar_w, y_below = 0;
        /* Stacked bottom up; the running sum rounds once, so the parts add up to the bar. */
        for (int p = 0; p < TIMING_PARTS; p++) {
            below += parts[p];
            int y_top = (int)lround(bar_area * below / slowest), h = y_top - y_below;
            fill(a->renderer, bx, bottom - y_top, bar_w - gap, h, timing_colours[p]);
            a->drawn.timing_last_px[p] = h, a->drawn.timing_last_ms[p] = parts[p];
            y_below = y_top;
        }
        char label[32];
        int label_w = snprintf(label, sizeof label, "%.0f", s->history_step_ms[i]) * preview_font_advance(a->font);
        if (label_w <= bar_w - gap && bottom - y_below - line >= top - line)
            preview_text(a->renderer, a->font, bx + (bar_w - gap - label_w) / 2, bottom - y_below - line, COLOUR_DIM,
                         label);
    }
    preview_textf(a->renderer, a->font, c.x, bottom + 2, COLOUR_DIM, "steps 1..%d, tallest %.0f ms", n, slowest);
    a->drawn.timing_drawn = 1;
    a->drawn.timing = (SDL_Rect){c.x, top, c.w, bar_area};
}

/* ---- Form, status, help -------------------------------------------------- */
static void draw_field(app *a, int *x, int y, form_field field, const char *label, const char *value, int width_chars)
{
    int adv = preview_font_advance(a->font), line = preview_font_line_height(a->font);
    *x += preview_text(a->renderer, a->font, *x, y + 4, COLOUR_DIM, label) + 6;
    int focused = a->editing && a->focus == field;
    int w = width_chars * adv + 10;
    fill(a->renderer, *x, y, w, line + 8, focused ? 0x2c3340u : 0x1b1e24u);
    outline(a->renderer, *x, y, w, line + 8, focused ? COLOUR_ACCENT : COLOUR_BORDER);
    size_t len = strlen(value), shown = (size_t)width_chars - 1;
    const char *tail = len > shown ? value + len - shown : value;
    int tw = preview_text(a->renderer, a->font, *x + 5, y + 4, COLOUR_TEXT, tail);
    if (focused && ((SDL_GetTicks() / 500) & 1) == 0)
        fill(a->renderer, *x + 5 + tw, y + 4, 2, line, COLOUR_ACCENT);
    *x += w + 14;
}

static void draw_form(app *a, int width)
{
    int x = MARGIN, y = 8;
    x += preview_text(a->renderer, a->font_big, x, y + 1, COLOUR_ACCENT, "sla2-preview") + 18;
    const char *prompt = a->prompt;
    char embedding[1100];
    if (a->info.vocabulary_size == 0) {
        snprintf(embedding, sizeof embedding, "(text embedding) %s",
                 a->args.text_embedding ? a->args.text_embedding : "none");
        prompt = embedding;
    }
    int adv = preview_font_advance(a->font);
    /* Room left after the labels and boxes of seed (8) and steps (7). */
    int prompt_chars = (width - x - MARGIN - 3 * 30) / adv - (6 + 4 + 8 + 5 + 7);
    if (prompt_chars < 16)
        prompt_chars = 16;
    draw_field(a, &x, y, FIELD_PROMPT, "prompt", prompt, prompt_chars);
    /* An empty seed or steps field means the runtime's value. */
    int seed_focused = a->editing && a->focus == FIELD_SEED, steps_focused = a->editing && a->focus == FIELD_STEPS;
    draw_field(a, &x, y, FIELD_SEED, "seed", a->seed_text[0] || seed_focused ? a->seed_text : "runtime", 8);
    draw_field(a, &x, y, FIELD_STEPS, "steps", a->steps_text[0] || steps_focused ? a->steps_text : "runtime", 7);
}

static const char *state_name(const app *a)
{
    if (a->state == PREVIEW_RUNNING)
        return a->paused ? (a->waiting_in_pause ? "PAUSED" : "PAUSING") : "RUNNING";
    static const char *const names[] = {"IDLE", "RUNNING", "DONE", "CANCELLED", "FAILED"};
    return names[a->state];
}

static void draw_status(app *a, int width, int height)
{
    int line = preview_font_line_height(a->font);
    int y = height - 2 * line - 10;
    fill(a->renderer, 0, y - 4, width, 2 * line + 14, 0x101216u);
    const preview_snapshot *s = &a->view;
    sla2_layer_attention la = {0};
    sla2_pipeline_get_layer(a->pipeline, a->layer, &la);
    int dense_now = a->dense_request >= 0 ? a->dense_request : have_step(a) ? s->dense : 0;
    int pending = have_step(a) && a->state == PREVIEW_RUNNING && dense_now != s->dense;
    double eta = -1;
    if (have_step(a) && a->state == PREVIEW_RUNNING) {
        double total = 0;
        for (int i = 0; i < s->step && i < s->history_capacity; i++)
            total += s->history_step_ms[i];
        eta = total / s->step * (s->num_steps - s->step) / 1e3;
    }
    char step_text[96] = "step -", eta_text[48] = "ETA -";
    if (have_step(a))
        snprintf(step_text, sizeof step_text, "step %d/%d t=%.0f", s->step, s->num_steps, s->timestep);
    if (eta >= 0)
        snprintf(eta_text, sizeof eta_text, "ETA %.1f s", eta);
    char fps_text[32] = "ui - fps";
    if (a->fps > 0)
        snprintf(fps_text, sizeof fps_text, "ui %.0f fps", a->fps);
    preview_textf(a->renderer, a->font, MARGIN, y, COLOUR_TEXT,
                  "%s | %s: %s | %s%s | %s | topk %.3f (L%d) | %s | %s | %s | %s | view %s", a->info.name,
                  sla2_context_backend(a->ctx) == SLA2_BACKEND_CUDA ? "cuda" : "cpu",
                  sla2_context_device_name(a->ctx), dense_now ? "dense" : "SLA2",
                  pending ? " (next step)" : "", sla2_quant_mode_name(la.quant), la.topk, a->layer + 1, step_text,
                  eta_text, state_name(a), fps_text, view_name(a->current_view));
    const char *second = a->message[0] ? a->message
                         : a->state == PREVIEW_FAILED ? a->worker_error
                         : a->hint[0] ? a->hint
                                       : "h or F1: keys   Enter: generate   p: edit prompt   Esc: quit";
    uint32_t colour = (a->message[0] && a->message_error) || (!a->message[0] && a->state == PREVIEW_FAILED)
                          ? COLOUR_ERROR
                          : COLOUR_DIM;
    preview_text(a->renderer, a->font, MARGIN, y + line + 2, colour, second);
}

static void draw_help(app *a, int width, int height)
{
    static const char *const lines[] = {
        "Enter        generate with the prompt, seed and steps (restart if running)",
        "p            edit the prompt (Tab completes from the vocabulary; Up/Down: seed, steps; Esc leaves)",
        "[  ]         topk down / up, every layer, from the next step",
        "q            cycle the quantisation mode: none, int8, int8_fp8",
        "d            dense attention vs SLA2",
        "Left Right   layer         Up Down   head",
        "0 1 2 3 4    view: all, video, block mask, alpha, timing   (v cycles)",
        "space        pause / resume (the worker waits between steps)",
        "n            one more step while paused",
        "l  ,  .      hold the video on one frame / previous / next frame",
        "r            restart",
        "s            save the video (Y4M) and the window (PNG)",
        "h  F1        this help",
        "Esc          quit (cancels the generation)",
    };
    int n = (int)(sizeof lines / sizeof *lines), line = preview_font_line_height(a->font);
    int w = 100 * preview_font_advance(a->font) + 40, h = (n + 2) * (line + 2) + 30;
    if (w > width - 40)
        w = width - 40;
    int x = (width - w) / 2, y = (height - h) / 2;
    SDL_SetRenderDrawBlendMode(a->renderer, SDL_BLENDMODE_BLEND);
    SDL_Rect dim = {0, 0, width, height};
    SDL_SetRenderDrawColor(a->renderer, 0, 0, 0, 150);
    SDL_RenderFillRect(a->renderer, &dim);
    SDL_SetRenderDrawBlendMode(a->renderer, SDL_BLENDMODE_NONE);
    fill(a->renderer, x, y, w, h, 0x232833u);
    outline(a->renderer, x, y, w, h, COLOUR_ACCENT);
    preview_text(a->renderer, a->font_big, x + 20, y + 12, COLOUR_ACCENT, "keys");
    for (int i = 0; i < n; i++)
        preview_text(a->renderer, a->font, x + 20, y + 24 + (i + 1) * (line + 2), COLOUR_TEXT, lines[i]);
}

static void draw_all(app *a, int width, int height)
{
    memset(&a->drawn, 0, sizeof a->drawn);
    set_colour(a->renderer, COLOUR_BACKGROUND, 255);
    SDL_RenderClear(a->renderer);
    draw_form(a, width);
    int line = preview_font_line_height(a->font);
    int top = 8 + line + 8 + 10, bottom = height - 2 * line - 20;
    SDL_Rect content = {MARGIN, top, width - 2 * MARGIN, bottom - top};
    switch (a->current_view) {
    case VIEW_VIDEO: draw_video(a, content); break;
    case VIEW_MASK: draw_mask(a, content); break;
    case VIEW_ALPHA: draw_alpha(a, content); break;
    case VIEW_TIMING: draw_timing(a, content); break;
    default: {
        int left_w = content.h < content.w * 45 / 100 ? content.h : content.w * 45 / 100;
        SDL_Rect video = {content.x, content.y, left_w, content.h};
        int rx = content.x + left_w + MARGIN, rw = content.w - left_w - MARGIN;
        int mask_h = content.h * 45 / 100, alpha_h = content.h * 25 / 100;
        SDL_Rect mask = {rx, content.y, rw, mask_h};
        SDL_Rect alpha = {rx, content.y + mask_h + MARGIN, rw, alpha_h - MARGIN};
        SDL_Rect timing = {rx, content.y + mask_h + alpha_h + MARGIN, rw, content.h - mask_h - alpha_h - MARGIN};
        draw_video(a, video);
        draw_mask(a, mask);
        draw_alpha(a, alpha);
        draw_timing(a, timing);
    }
    }
    draw_status(a, width, height);
}

/* Everything but the looping video changes a few times a second at most, so
 * it is drawn into a cached texture when something changed (a->ui_dirty)
 * and copied each frame; the video and its frame counter go on top. That
 * keeps a frame's CPU cost low on a software rasteriser (Xvfb, llvmpipe),
 * where it competes with generation for the cores. */
void views_draw(app *a)
{
    int width = 0, height = 0;
    SDL_GetRendererOutputSize(a->renderer, &width, &height);
    if (!a->ui_texture_failed && (!a->ui_texture || a->ui_width != width || a->ui_height != height)) {
        if (a->ui_texture)
            SDL_DestroyTexture(a->ui_texture);
        a->ui_texture = SDL_CreateTexture(a->renderer, SDL_PIXELFORMAT_ARGB8888, SDL_TEXTUREACCESS_TARGET, width,
                                          height);
        a->ui_texture_failed = a->ui_texture == NULL;
        a->ui_width = width, a->ui_height = height, a->ui_dirty = 1;
    }
    /* The help overlay covers the video: draw it all directly meanwhile. */
    if (a->ui_texture_failed || a->help) {
        draw_all(a, width, height);
        video_image(a);
        if (a->help)
            draw_help(a, width, height);
        a->ui_dirty = 1;
        return;
    }
    if (a->ui_dirty) {
        SDL_SetRenderTarget(a->renderer, a->ui_texture);
        draw_all(a, width, height);
        SDL_SetRenderTarget(a->renderer, NULL);
        a->ui_dirty = 0;
    }
    SDL_RenderCopy(a->renderer, a->ui_texture, NULL, NULL);
    video_image(a);
}
