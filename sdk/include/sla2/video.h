/*
 * sla2/video.h -- writing generated videos: Y4M (any player or ffmpeg reads
 * it) and PNG (frames, or one strip of frames side by side).
 *
 * Videos are float [3][F][H][W] RGB in [-1, 1] (a pixel-space model's
 * output); values outside are clamped. Files are written to a temporary
 * name and renamed, so a failure never leaves a half-written file.
 */
#ifndef SLA2_VIDEO_H
#define SLA2_VIDEO_H

#include "sla2/sla2.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Y4M, 4:4:4, BT.601 limited range, fps frames per second. Errors:
 * SLA2_ERR_NULL_ARGUMENT, SLA2_ERR_INVALID_VALUE (sizes), SLA2_ERR_IO; the
 * message goes to error_message (may be NULL). */
SLA2_API sla2_status sla2_video_write_y4m(const char *path, const float *video, int frames, int height, int width,
                                          int fps, char *error_message, size_t error_message_size);

/* One PNG of `count` frames side by side, frames first, first + step, ...
 * (count = 0: every frame). */
SLA2_API sla2_status sla2_video_write_png_strip(const char *path, const float *video, int frames, int height,
                                                int width, int first, int step, int count, char *error_message,
                                                size_t error_message_size);

/* An 8-bit RGB image [height][width][3] as PNG. */
SLA2_API sla2_status sla2_image_write_png(const char *path, const uint8_t *rgb, int height, int width,
                                          char *error_message, size_t error_message_size);

/* The 8-bit RGB of frame f of a video ([3][F][H][W] in [-1, 1]) into
 * rgb [H][W][3]. */
SLA2_API void sla2_video_frame_rgb8(const float *video, int frames, int height, int width, int frame, uint8_t *rgb);

/* ---- Prompt adherence (the tiny demo model's videos) ----------------------
 * The analyser reads what a video of one coloured shape moving in one
 * direction on a dark background shows: the dominant colour (nearest of red,
 * green, blue, yellow, cyan, magenta), the shape (circle, square, triangle:
 * the template of train/tiny/data.py's sizes that overlaps the object best,
 * by a vote over the frames), and the direction of motion (left, right, up,
 * down, from the centroid's track). The object is the largest connected
 * region of pixels far from the background colour. */
typedef struct sla2_video_analysis {
    const char *colour, *shape, *direction; /* static strings; "none" when not found */
    double mean_rgb[3];      /* of the object's pixels, 0..255 */
    double fill_ratio;       /* mean over frames of pixels / bounding-box area */
    double velocity[2];      /* centroid's x and y motion, pixels per frame */
    double object_share;     /* share of pixels that belong to the object */
} sla2_video_analysis;

/* Analyses video [3][F][H][W] (RGB in [-1, 1]). Errors: SLA2_ERR_NULL_ARGUMENT,
 * SLA2_ERR_INVALID_VALUE (sizes). An empty video is not an error: its fields
 * say "none". */
SLA2_API sla2_status sla2_video_analyse(const float *video, int frames, int height, int width,
                                        sla2_video_analysis *out);

/* Which of the prompt's words ("<colour> <shape> moving <direction>") the
 * analysis matches: bit 0 colour, bit 1 shape, bit 2 direction. A prompt
 * without one of the three counts that one as unmatched. */
SLA2_API int sla2_prompt_matches(const char *prompt, const sla2_video_analysis *analysis);

#ifdef __cplusplus
}
#endif
#endif
