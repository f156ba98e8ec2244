/* sla2-preview: the parts of the live window and how they talk.
 *
 * Threads: the UI thread owns SDL and everything drawn; one worker thread
 * runs sla2_pipeline_generate. They share a preview_worker, guarded by its
 * mutex: the worker's step callback copies the step's data into `latest`
 * and, while paused, waits there on the condition variable; the UI copies
 * `latest` into its own snapshot when `seq` changes and draws from that copy
 * without holding the lock. Built against the public API only. */
#ifndef SLA2_PREVIEW_H
#define SLA2_PREVIEW_H

#include <sla2/pipeline.h>
#include <sla2/sla2.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

/* ---- Command line (args.c) ------------------------------------------------ */
typedef struct preview_args {
    const char *model, *weights, *prompt, *text_embedding, *runtime;
    const char *script, *screenshot_dir, *save_dir, *font;
    int64_t seed;      /* < 0: the runtime's */
    int steps;         /* 0: the runtime's */
    double guidance;   /* < 0: the runtime's */
    double shift;      /* <= 0: the runtime's */
    int sampler;       /* -1: the runtime's, else a sla2_sampler_kind */
    int threads;       /* CPU threads of the context; 0 = all cores */
    int nice;          /* the generation thread's nice increment (default 5) */
    int attention;     /* -1: the runtime's, 0: sla2, 1: dense */
    sla2_backend backend; /* --backend: AUTO (CUDA when a GPU is usable), CPU or CUDA */
    int width, height; /* window size */
    int fps;           /* frame rate cap */
} preview_args;

/* 0: run; 1: exit 0 (--help printed); 2: usage error (message printed). */
int preview_parse_args(int argc, char **argv, preview_args *args);

/* ---- The latest step, as the step callback reported it (worker.c) -------- */
/* The attention phases of sla2_step_info, in its order. */
enum { PREVIEW_ROUTER, PREVIEW_QUANTISE, PREVIEW_SPARSE, PREVIEW_LINEAR, PREVIEW_MIX, PREVIEW_PHASES };

typedef struct preview_snapshot {
    uint64_t seq;      /* bumped by every step; 0: no step yet */
    int generation;    /* which job it belongs to */
    int step, num_steps, dense;
    double timestep, step_ms, attention_ms;
    double phase_ms[PREVIEW_PHASES];
    int channels, frames, height, width;
    float *video;      /* [C][F][H][W] */
    int num_layers, num_heads;
    int64_t *kept_per_q_block, *q_blocks, *k_blocks; /* [num_layers] */
    double *mean_alpha;                               /* [num_layers] */
    int have_masks, have_alpha;
    uint8_t *masks;    /* layer l at masks + l * mask_capacity: [H][Nq_l][Nk_l] */
    float *alphas;     /* layer l at alphas + l * alpha_capacity: [H][Nq_l] */
    size_t video_elems, mask_capacity, alpha_capacity;
    double *history_step_ms, *history_attention_ms; /* [history_capacity], by step - 1 */
    double *history_phase_ms; /* [history_capacity][PREVIEW_PHASES] */
    int history_capacity;
} preview_snapshot;

int preview_snapshot_alloc(preview_snapshot *s, const sla2_model_info *info, int max_steps);
void preview_snapshot_free(preview_snapshot *s);
/* Copies what changes between steps (both allocated alike). */
void preview_snapshot_copy(preview_snapshot *dst, const preview_snapshot *src);

/* ---- The worker thread (worker.c) ----------------------------------------- */
typedef enum preview_state {
    PREVIEW_IDLE = 0,   /* nothing asked yet */
    PREVIEW_RUNNING,
    PREVIEW_DONE,
    PREVIEW_CANCELLED,
    PREVIEW_FAILED
} preview_state;

typedef struct preview_job {
    char prompt[512];        /* "" when text_embedding is used */
    char text_embedding[1024];
    int64_t seed;
    int steps;
    double guidance, shift;
    int sampler;
} preview_job;

#define PREVIEW_MAX_STEPS 1000

typedef struct preview_worker {
    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sla2_context *ctx;
    sla2_pipeline *pipeline;
    sla2_model_info info;
    float *output;           /* the pipeline's output buffer, worker only */
    size_t output_elems;
    /* Guarded by lock. */
    int nice;                /* the worker's nice increment, set before start */
    int quit, paused, step_once, waiting_in_pause;
    volatile int cancel;     /* options.cancel of the running job */
    int job_pending, job_id, running_id;
    preview_job job;
    preview_state state;     /* of job running_id */
    char error[512];
    preview_snapshot latest;
} preview_worker;

/* Starts the worker thread on an existing pipeline. Returns 0 on success. */
int preview_worker_start(preview_worker *w, sla2_context *ctx, sla2_pipeline *pipeline,
                         const sla2_model_info *info, char *error, size_t error_size);
/* Cancels the running job (if any) and queues job; returns its id. */
int preview_worker_submit(preview_worker *w, const preview_job *job);
void preview_worker_set_paused(preview_worker *w, int paused);
/* While paused and waiting: lets one more step run. */
void preview_worker_step_once(preview_worker *w);
/* Cancels, joins the thread and frees what the worker allocated. */
void preview_worker_stop(preview_worker *w);

/* ---- Scripted input (script.c) -------------------------------------------- */
typedef enum script_kind {
    SCRIPT_KEY, SCRIPT_TEXT, SCRIPT_WAIT_STEP, SCRIPT_WAIT_DONE, SCRIPT_SCREENSHOT, SCRIPT_QUIT,
    SCRIPT_SLEEP
} script_kind;

typedef struct script_command {
    double delay_s;  /* after the previous command completed */
    script_kind kind;
    int number;      /* wait-step N */
    int keycode;     /* SDL_Keycode of key */
    char text[256];  /* text, screenshot name, key name */
    int line;
} script_command;

typedef struct preview_script {
    script_command *commands;
    int count, next;
    double last_done_s;    /* when the previous command completed */
    double wait_started_s; /* when the current wait began; < 0: not waiting */
    double timeout_s;
} preview_script;

/* Loads a script; on failure returns non-zero with "FILE:LINE: what" in error. */
int preview_script_load(const char *path, preview_script *script, char *error, size_t error_size);
void preview_script_free(preview_script *script);

/* ---- Drawing helpers (ui.c) ----------------------------------------------- */
struct SDL_Renderer;
typedef struct preview_font preview_font;
preview_font *preview_font_open(struct SDL_Renderer *renderer, const char *path, int point_size, char *error,
                                size_t error_size);
void preview_font_close(preview_font *font);
int preview_font_line_height(const preview_font *font);
int preview_font_advance(const preview_font *font);
/* Draws ASCII text at (x, y) in colour rgb (0xRRGGBB); returns its width. */
int preview_text(struct SDL_Renderer *renderer, preview_font *font, int x, int y, uint32_t rgb, const char *text);
int preview_textf(struct SDL_Renderer *renderer, preview_font *font, int x, int y, uint32_t rgb, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Viridis-like colour map of v in [0, 1]. */
uint32_t preview_colour_map(double v);

double preview_now_s(void);

#endif
