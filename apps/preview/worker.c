/* The generation thread: runs one job at a time, publishes every step into
 * the shared snapshot and waits there while paused. */
#define _GNU_SOURCE /* syscall(SYS_gettid): a thread's own nice value */
#include "preview.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

double preview_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int preview_snapshot_alloc(preview_snapshot *s, const sla2_model_info *info, int max_steps)
{
    memset(s, 0, sizeof *s);
    size_t L = (size_t)info->num_layers, H = (size_t)info->num_heads;
    /* The pipeline's masks are largest with 64-row blocks (its smallest). */
    size_t blocks = (size_t)((info->tokens + 63) / 64);
    s->video_elems = (size_t)info->channels * info->frames * info->height * info->width;
    s->mask_capacity = H * blocks * blocks;
    s->alpha_capacity = H * blocks;
    s->history_capacity = max_steps;
    s->video = calloc(s->video_elems, sizeof *s->video);
    s->kept_per_q_block = calloc(L, sizeof(int64_t));
    s->q_blocks = calloc(L, sizeof(int64_t));
    s->k_blocks = calloc(L, sizeof(int64_t));
    s->mean_alpha = calloc(L, sizeof(double));
    s->masks = calloc(L * s->mask_capacity, 1);
    s->alphas = calloc(L * s->alpha_capacity, sizeof(float));
    s->history_step_ms = calloc((size_t)max_steps, sizeof(double));
    s->history_attention_ms = calloc((size_t)max_steps, sizeof(double));
    s->history_phase_ms = calloc((size_t)max_steps * PREVIEW_PHASES, sizeof(double));
    s->num_layers = info->num_layers, s->num_heads = info->num_heads;
    s->channels = info->channels, s->frames = info->frames, s->height = info->height, s->width = info->width;
    if (!s->video || !s->kept_per_q_block || !s->q_blocks || !s->k_blocks || !s->mean_alpha || !s->masks ||
        !s->alphas || !s->history_step_ms || !s->history_attention_ms || !s->history_phase_ms) {
        preview_snapshot_free(s);
        return 0;
    }
    return 1;
}

void preview_snapshot_free(preview_snapshot *s)
{
    free(s->video), free(s->kept_per_q_block), free(s->q_blocks), free(s->k_blocks), free(s->mean_alpha);
    free(s->masks), free(s->alphas), free(s->history_step_ms), free(s->history_attention_ms);
    free(s->history_phase_ms);
    memset(s, 0, sizeof *s);
}

void preview_snapshot_copy(preview_snapshot *d, const preview_snapshot *s)
{
    size_t L = (size_t)s->num_layers;
    d->seq = s->seq, d->generation = s->generation, d->step = s->step, d->num_steps = s->num_steps;
    d->dense = s->dense, d->timestep = s->timestep, d->step_ms = s->step_ms, d->attention_ms = s->attention_ms;
    memcpy(d->phase_ms, s->phase_ms, sizeof d->phase_ms);
    d->have_masks = s->have_masks, d->have_alpha = s->have_alpha;
    memcpy(d->video, s->video, s->video_elems * sizeof *s->video);
    memcpy(d->kept_per_q_block, s->kept_per_q_block, L * sizeof(int64_t));
    memcpy(d->q_blocks, s->q_blocks, L * sizeof(int64_t));
    memcpy(d->k_blocks, s->k_blocks, L * sizeof(int64_t));
    memcpy(d->mean_alpha, s->mean_alpha, L * sizeof(double));
    for (size_t l = 0; l < L && s->have_masks; l++)
        memcpy(d->masks + l * s->mask_capacity, s->masks + l * s->mask_capacity,
               (size_t)s->num_heads * s->q_blocks[l] * s->k_blocks[l]);
    for (size_t l = 0; l < L && s->have_alpha; l++)
        memcpy(d->alphas + l * s->alpha_capacity, s->alphas + l * s->alpha_capacity,
               (size_t)s->num_heads * s->q_blocks[l] * sizeof(float));
    int steps = s->step < s->history_capacity ? s->step : s->history_capacity;
    memcpy(d->history_step_ms, s->history_step_ms, (size_t)steps * sizeof(double));
    memcpy(d->history_attention_ms, s->history_attention_ms, (size_t)steps * sizeof(double));
    memcpy(d->history_phase_ms, s->history_phase_ms, (size_t)steps * PREVIEW_PHASES * sizeof(double));
}

/* Copies one step into w->latest; the caller holds the lock. */
static void publish_step(preview_worker *w, const sla2_step_info *info)
{
    preview_snapshot *s = &w->latest;
    size_t L = (size_t)s->num_layers;
    s->seq++;
    s->generation = w->running_id;
    s->step = info->step, s->num_steps = info->num_steps, s->dense = info->dense;
    s->timestep = info->timestep, s->step_ms = info->step_ms, s->attention_ms = info->attention_ms;
    s->phase_ms[PREVIEW_ROUTER] = info->router_ms, s->phase_ms[PREVIEW_QUANTISE] = info->quantise_ms;
    s->phase_ms[PREVIEW_SPARSE] = info->sparse_ms, s->phase_ms[PREVIEW_LINEAR] = info->linear_ms;
    s->phase_ms[PREVIEW_MIX] = info->mix_ms;
    size_t elems = (size_t)info->channels * info->frames * info->height * info->width;
    memcpy(s->video, info->video, (elems < s->video_elems ? elems : s->video_elems) * sizeof(float));
    for (size_t l = 0; l < L; l++) {
        s->kept_per_q_block[l] = info->kept_per_q_block[l];
        s->q_blocks[l] = info->mask_q_blocks[l];
        s->k_blocks[l] = info->mask_k_blocks[l];
        s->mean_alpha[l] = info->mean_alpha[l];
    }
    s->have_masks = info->block_masks != NULL;
    s->have_alpha = info->alpha_blocks != NULL;
    for (size_t l = 0; l < L; l++) {
        size_t mask_elems = (size_t)s->num_heads * s->q_blocks[l] * s->k_blocks[l];
        size_t alpha_elems = (size_t)s->num_heads * s->q_blocks[l];
        if (s->have_masks && info->block_masks[l] && mask_elems <= s->mask_capacity)
            memcpy(s->masks + l * s->mask_capacity, info->block_masks[l], mask_elems);
        if (s->have_alpha && info->alpha_blocks[l] && alpha_elems <= s->alpha_capacity)
            memcpy(s->alphas + l * s->alpha_capacity, info->alpha_blocks[l], alpha_elems * sizeof(float));
    }
    if (info->step >= 1 && info->step <= s->history_capacity) {
        s->history_step_ms[info->step - 1] = info->step_ms;
        s->history_attention_ms[info->step - 1] = info->attention_ms;
        memcpy(s->history_phase_ms + (size_t)(info->step - 1) * PREVIEW_PHASES, s->phase_ms, sizeof s->phase_ms);
    }
}

static int on_step(void *user, const sla2_step_info *info)
{
    preview_worker *w = user;
    pthread_mutex_lock(&w->lock);
    publish_step(w, info);
    /* Pause = wait here, between steps, until resumed, stepped or cancelled. */
    w->waiting_in_pause = 1;
    pthread_cond_broadcast(&w->cond);
    while (w->paused && !w->step_once && !w->cancel && !w->quit && info->step < info->num_steps)
        pthread_cond_wait(&w->cond, &w->lock);
    w->step_once = 0;
    w->waiting_in_pause = 0;
    int cancel = w->cancel || w->quit;
    pthread_mutex_unlock(&w->lock);
    return cancel;
}

static void run_job(preview_worker *w, const preview_job *job)
{
    sla2_generate_options o;
    sla2_generate_options_default(&o);
    o.prompt = job->prompt[0] ? job->prompt : NULL;
    o.text_embedding_path = job->prompt[0] ? NULL : job->text_embedding;
    o.seed = job->seed, o.steps = job->steps, o.guidance = job->guidance, o.shift = job->shift;
    o.sampler = job->sampler;
    o.on_step = on_step, o.user = w, o.cancel = &w->cancel;
    sla2_status s = sla2_pipeline_generate(w->pipeline, &o, w->output, w->output_elems);
    pthread_mutex_lock(&w->lock);
    if (s == SLA2_OK) {
        /* The last step's estimate is already the output; keep it exact. */
        memcpy(w->latest.video, w->output, w->latest.video_elems * sizeof(float));
        w->latest.seq++;
        w->state = PREVIEW_DONE;
    } else if (s == SLA2_ERR_CANCELLED) {
        w->state = PREVIEW_CANCELLED;
    } else {
        w->state = PREVIEW_FAILED;
        snprintf(w->error, sizeof w->error, "%s", sla2_context_last_error(w->ctx));
    }
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void *worker_main(void *arg)
{
    preview_worker *w = arg;
    /* Generation runs at a lower priority than the window (nice +5, which
     * the threads the library starts from here inherit), so the UI keeps
     * its frame rate when the cores are busy; the UI needs little CPU, so
     * generation loses little. Best effort: ignored where refused. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), w->nice);
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->job_pending && !w->quit)
            pthread_cond_wait(&w->cond, &w->lock);
        if (w->quit)
            break;
        preview_job job = w->job;
        w->job_pending = 0;
        w->running_id = w->job_id;
        w->cancel = 0;
        w->state = PREVIEW_RUNNING;
        w->error[0] = '\0';
        w->latest.step = 0, w->latest.num_steps = job.steps, w->latest.generation = w->running_id;
        w->latest.seq++;
        pthread_mutex_unlock(&w->lock);
        run_job(w, &job);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int preview_worker_start(preview_worker *w, sla2_context *ctx, sla2_pipeline *pipeline, const sla2_model_info *info,
                         char *error, size_t error_size)
{
    int nice = w->nice;
    memset(w, 0, sizeof *w);
    w->nice = nice;
    w->ctx = ctx, w->pipeline = pipeline, w->info = *info;
    w->output_elems = (size_t)info->channels * info->frames * info->height * info->width;
    w->output = malloc(w->output_elems * sizeof(float));
    if (!w->output || !preview_snapshot_alloc(&w->latest, info, PREVIEW_MAX_STEPS)) {
        free(w->output);
        w->output = NULL;
        snprintf(error, error_size, "out of memory for the preview's buffers");
        return 1;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        snprintf(error, error_size, "cannot start the generation thread");
        preview_worker_stop(w);
        return 1;
    }
    w->thread_started = 1;
    return 0;
}

int preview_worker_submit(preview_worker *w, const preview_job *job)
{
    pthread_mutex_lock(&w->lock);
    w->job = *job;
    w->job_pending = 1;
    int id = ++w->job_id;
    if (w->state == PREVIEW_RUNNING)
        w->cancel = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return id;
}

void preview_worker_set_paused(preview_worker *w, int paused)
{
    pthread_mutex_lock(&w->lock);
    w->paused = paused;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void preview_worker_step_once(preview_worker *w)
{
    pthread_mutex_lock(&w->lock);
    if (w->waiting_in_pause) {
        w->step_once = 1;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
}

void preview_worker_stop(preview_worker *w)
{
    if (w->thread_started) {
        pthread_mutex_lock(&w->lock);
        w->quit = 1;
        w->cancel = 1;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        w->thread_started = 0;
    }
    if (w->output || w->latest.video) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
    }
    preview_snapshot_free(&w->latest);
    free(w->output);
    w->output = NULL;
}
