/* The preview window's state, shared by main.c (events, script, loop) and
 * views.c (drawing). UI thread only. */
#ifndef SLA2_PREVIEW_APP_H
#define SLA2_PREVIEW_APP_H

#include "preview.h"

#include <SDL.h>

/* Frames per second of the looping video and of saved Y4M files. */
#define VIDEO_FPS 8

typedef enum view_kind { VIEW_ALL = 0, VIEW_VIDEO, VIEW_MASK, VIEW_ALPHA, VIEW_TIMING, VIEW_COUNT } view_kind;
typedef enum form_field { FIELD_PROMPT = 0, FIELD_SEED, FIELD_STEPS, FIELD_COUNT } form_field;

/* The timing bar's parts, bottom up: the attention phases (PREVIEW_ROUTER..),
 * the rest of attention (loads, stores, copies), the rest of the step. */
#define TIMING_ATTENTION_OTHER PREVIEW_PHASES
#define TIMING_REST (PREVIEW_PHASES + 1)
#define TIMING_PARTS (PREVIEW_PHASES + 2)

/* What the last frame drew, for screenshots' sidecar files. */
typedef struct drawn_layout {
    int video_drawn, video_frame, video_label_x, video_label_y;
    SDL_Rect video;
    int mask_drawn, mask_cell, mask_gap;
    SDL_Rect mask;
    int64_t mask_q_blocks, mask_k_blocks, kept_stats, kept_mask;
    int alpha_drawn, timing_drawn;
    SDL_Rect alpha, timing;
    int timing_last_px[TIMING_PARTS];     /* the last step's bar: each part's height in pixels */
    double timing_last_ms[TIMING_PARTS];  /* and its milliseconds */
} drawn_layout;

typedef struct app {
    preview_args args;
    sla2_context *ctx;
    sla2_model *model;
    sla2_pipeline *pipeline;
    sla2_model_info info;
    preview_worker worker;
    int worker_started;

    SDL_Window *window;
    SDL_Renderer *renderer;
    SDL_Texture *video_texture;
    preview_font *font, *font_big;
    SDL_Texture *ui_texture; /* everything but the video, redrawn when ui_dirty */
    int ui_width, ui_height, ui_dirty, ui_texture_failed, cursor_phase;
    uint8_t *frame_rgb; /* [H][W][3] */
    int uploaded_frame;
    uint64_t uploaded_seq;

    /* The worker's state as of this frame. */
    preview_snapshot view;
    preview_state state;
    int running_id, submitted_id, paused, waiting_in_pause;
    char worker_error[600];

    view_kind current_view;
    int layer, head, help, editing;
    form_field focus;
    char prompt[512], seed_text[24], steps_text[16], hint[512];
    char generated_prompt[512]; /* of the job last submitted */
    char analysis[768];         /* the analyser's reading of the finished video */
    int dense_request; /* -1: as the runtime says */
    int loop, frame;
    double frame_clock_s;

    char message[1024];
    int message_error;

    preview_script script;
    int have_script;
    char screenshot_name[256];
    int screenshot_pending, save_pending, save_count;

    /* Frame rate. */
    double started_s, last_frame_s, fps_window_s, fps;
    long frames_total, fps_window_frames, generating_frames;
    double generating_s, slowest_generating_frame_s, work_s;

    drawn_layout drawn;
    int quit, exit_code;
} app;

/* main.c: a message in the status line and on stdout (stderr for errors). */
void app_say(app *a, int is_error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* save.c: called between drawing a frame and presenting it. */
void app_save(app *a);
void app_screenshot(app *a);
/* script_run.c: runs the script's lines that are due, once a frame. */
void script_run(app *a);

/* views.c */
void views_draw(app *a);
const char *view_name(view_kind view);

#endif
