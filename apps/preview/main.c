/* sla2-preview: a live SDL2 window on SLA2 video generation. The UI thread
 * draws at up to 60 frames per second (--fps) while a worker thread generates
 * (worker.c); keys change the attention settings between steps. */
#include "app.h"

#include <sla2/video.h>

#include <SDL_ttf.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const float topk_levels[] = {0.02f, 0.05f, 0.1f, 0.15f, 0.2f, 0.3f, 0.4f, 0.5f, 0.75f, 1.0f};

void app_say(app *a, int is_error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->message, sizeof a->message, fmt, ap);
    va_end(ap);
    a->message_error = is_error;
    a->ui_dirty = 1;
    fprintf(is_error ? stderr : stdout, "sla2-preview: %s\n", a->message);
    fflush(is_error ? stderr : stdout);
}

/* ---- Setup and teardown --------------------------------------------------- */
static int load_model(app *a)
{
    sla2_context_options options;
    sla2_context_options_default(&options);
    options.backend = a->args.backend;
    options.num_threads = a->args.threads;
    char err[512];
    if (sla2_context_create(&options, &a->ctx, err, sizeof err) != SLA2_OK) {
        fprintf(stderr, "sla2-preview: %s%s\n", a->args.backend == SLA2_BACKEND_CUDA ? "--backend cuda: " : "", err);
        return 0;
    }
    a->info.size = sizeof a->info;
    if (sla2_model_load(a->ctx, a->args.model, a->args.weights, &a->model) ||
        sla2_model_get_info(a->ctx, a->model, &a->info) ||
        sla2_pipeline_create(a->ctx, a->model, a->args.runtime, &a->pipeline)) {
        fprintf(stderr, "sla2-preview: %s\n", sla2_context_last_error(a->ctx));
        if (!strcmp(a->args.model, "models/tiny-demo.yaml"))
            fprintf(stderr, "sla2-preview: (the default is the tiny demo model; give --model and --weights for "
                            "another)\n");
        return 0;
    }
    if (a->info.vocabulary_size == 0 && a->args.prompt) {
        fprintf(stderr, "sla2-preview: --prompt: model '%s' has no built-in vocabulary; give --text-embedding FILE\n",
                a->info.name);
        return 0;
    }
    if (a->info.vocabulary_size == 0 && !a->args.text_embedding) {
        fprintf(stderr, "sla2-preview: model '%s' has no built-in vocabulary: give --text-embedding FILE\n",
                a->info.name);
        return 0;
    }
    FILE *embedding = a->args.text_embedding ? fopen(a->args.text_embedding, "rb") : NULL;
    if (a->args.text_embedding && !embedding) {
        fprintf(stderr, "sla2-preview: --text-embedding %s: %s\n", a->args.text_embedding, strerror(errno));
        return 0;
    }
    if (embedding)
        fclose(embedding);
    if (a->args.attention >= 0) {
        sla2_pipeline_set_dense(a->pipeline, a->args.attention);
        a->dense_request = a->args.attention;
    }
    if (!preview_snapshot_alloc(&a->view, &a->info, PREVIEW_MAX_STEPS)) {
        fprintf(stderr, "sla2-preview: out of memory\n");
        return 0;
    }
    a->frame_rgb = malloc((size_t)a->info.width * a->info.height * 3);
    if (!a->frame_rgb) {
        fprintf(stderr, "sla2-preview: out of memory\n");
        return 0;
    }
    return 1;
}

static int open_window(app *a)
{
    if (SDL_Init(SDL_INIT_VIDEO) != 0) {
        fprintf(stderr,
                "sla2-preview: cannot open a window: SDL_Init(SDL_INIT_VIDEO) failed: %s\n"
                "sla2-preview: is DISPLAY (or WAYLAND_DISPLAY) set? Without a display, run it under Xvfb: "
                "xvfb-run -a sla2-preview ...\n",
                SDL_GetError());
        return 0;
    }
    if (TTF_Init() != 0) {
        fprintf(stderr, "sla2-preview: TTF_Init failed: %s\n", TTF_GetError());
        return 0;
    }
    char title[256];
    snprintf(title, sizeof title, "sla2-preview: %s", a->info.name);
    a->window = SDL_CreateWindow(title, SDL_WINDOWPOS_CENTERED, SDL_WINDOWPOS_CENTERED, a->args.width, a->args.height,
                                 SDL_WINDOW_RESIZABLE);
    if (!a->window) {
        fprintf(stderr, "sla2-preview: cannot open a window: %s\n", SDL_GetError());
        return 0;
    }
    a->renderer = SDL_CreateRenderer(a->window, -1, 0);
    if (!a->renderer) {
        fprintf(stderr, "sla2-preview: cannot create a renderer: %s\n", SDL_GetError());
        return 0;
    }
    /* Nearest-neighbour scaling for the video. */
    SDL_SetHint(SDL_HINT_RENDER_SCALE_QUALITY, "0");
    a->video_texture = SDL_CreateTexture(a->renderer, SDL_PIXELFORMAT_RGB24, SDL_TEXTUREACCESS_STREAMING,
                                         a->info.width, a->info.height);
    if (!a->video_texture) {
        fprintf(stderr, "sla2-preview: cannot create the video texture: %s\n", SDL_GetError());
        return 0;
    }
    char err[512], path[1024];
    snprintf(path, sizeof path, "%s/DejaVuSansMono.ttf", SLA2_PREVIEW_FONT_DIR);
    const char *font = a->args.font ? a->args.font : path;
    if (!(a->font = preview_font_open(a->renderer, font, 14, err, sizeof err)) ||
        !(a->font_big = preview_font_open(a->renderer, font, 18, err, sizeof err))) {
        fprintf(stderr, "sla2-preview: %s\n", err);
        return 0;
    }
    return 1;
}

static void close_all(app *a)
{
    if (a->worker_started)
        preview_worker_stop(&a->worker);
    if (a->ui_texture)
        SDL_DestroyTexture(a->ui_texture);
    preview_font_close(a->font);
    preview_font_close(a->font_big);
    if (a->video_texture)
        SDL_DestroyTexture(a->video_texture);
    if (a->renderer)
        SDL_DestroyRenderer(a->renderer);
    if (a->window)
        SDL_DestroyWindow(a->window);
    if (TTF_WasInit())
        TTF_Quit();
    SDL_Quit();
    preview_snapshot_free(&a->view);
    free(a->frame_rgb);
    preview_script_free(&a->script);
    sla2_pipeline_free(a->pipeline);
    sla2_model_free(a->model);
    sla2_context_free(a->ctx);
}

/* ---- Generation ----------------------------------------------------------- */
static int word_in_vocabulary(const app *a, const char *word, size_t len)
{
    for (size_t i = 0; i < a->info.vocabulary_size; i++)
        if (strlen(a->info.vocabulary[i]) == len && !strncmp(a->info.vocabulary[i], word, len))
            return 1;
    return 0;
}

static void start_generation(app *a)
{
    preview_job job;
    memset(&job, 0, sizeof job);
    if (a->info.vocabulary_size > 0) {
        const char *p = a->prompt;
        int words = 0;
        while (*p) {
            while (*p == ' ')
                p++;
            const char *end = p;
            while (*end && *end != ' ')
                end++;
            if (end > p && !word_in_vocabulary(a, p, (size_t)(end - p))) {
                app_say(a, 1, "prompt: '%.*s' is not in the model's vocabulary (Tab lists the words)", (int)(end - p), p);
                return;
            }
            words += end > p;
            p = end;
        }
        if (!words) {
            app_say(a, 1, "prompt: empty; type words of the vocabulary, e.g. 'red circle moving right'");
            return;
        }
        snprintf(job.prompt, sizeof job.prompt, "%s", a->prompt);
        for (size_t n = strlen(job.prompt); n > 0 && job.prompt[n - 1] == ' ';)
            job.prompt[--n] = '\0';
    } else {
        snprintf(job.text_embedding, sizeof job.text_embedding, "%s", a->args.text_embedding);
    }
    job.seed = a->seed_text[0] ? strtoll(a->seed_text, NULL, 10) : -1;
    job.steps = a->steps_text[0] ? atoi(a->steps_text) : 0;
    if (a->steps_text[0] && (job.steps < 1 || job.steps > PREVIEW_MAX_STEPS)) {
        app_say(a, 1, "steps: expected 1..%d, got '%s'", PREVIEW_MAX_STEPS, a->steps_text);
        return;
    }
    job.guidance = a->args.guidance, job.shift = a->args.shift, job.sampler = a->args.sampler;
    a->submitted_id = preview_worker_submit(&a->worker, &job);
    snprintf(a->generated_prompt, sizeof a->generated_prompt, "%s", job.prompt);
    a->editing = 0;
    SDL_StopTextInput();
    char what[1100];
    if (job.prompt[0])
        snprintf(what, sizeof what, "'%s'", job.prompt);
    else
        snprintf(what, sizeof what, "from %s", job.text_embedding);
    app_say(a, 0, "generating %s, seed %s, %s steps", what, a->seed_text[0] ? a->seed_text : "of the runtime",
        a->steps_text[0] ? a->steps_text : "the runtime's");
}

/* What the prompt analyser (sla2/video.h) reads in a finished RGB video. */
static void analyse_video(app *a)
{
    const preview_snapshot *s = &a->view;
    sla2_video_analysis an;
    a->analysis[0] = '\0';
    if (!a->info.pixel_space || s->channels != 3 ||
        sla2_video_analyse(s->video, s->frames, s->height, s->width, &an) != SLA2_OK)
        return;
    int n = snprintf(a->analysis, sizeof a->analysis, "analyser: %s %s moving %s", an.colour, an.shape,
                     an.direction);
    if (a->generated_prompt[0] && n > 0 && (size_t)n < sizeof a->analysis) {
        int bits = sla2_prompt_matches(a->generated_prompt, &an);
        snprintf(a->analysis + n, sizeof a->analysis - (size_t)n, "; the prompt's colour %s, shape %s, direction %s",
                 bits & 1 ? "matches" : "differs", bits & 2 ? "matches" : "differs",
                 bits & 4 ? "matches" : "differs");
    }
    printf("sla2-preview: %s\n", a->analysis);
    fflush(stdout);
}

/* Reads the worker's state; copies the latest step when it changed. */
static void sync_worker(app *a)
{
    preview_worker *w = &a->worker;
    preview_state state = a->state;
    int running_id = a->running_id, waiting = a->waiting_in_pause;
    uint64_t seq = a->view.seq;
    pthread_mutex_lock(&w->lock);
    a->state = w->running_id == a->submitted_id ? w->state : (a->submitted_id ? PREVIEW_RUNNING : PREVIEW_IDLE);
    a->running_id = w->running_id;
    a->waiting_in_pause = w->waiting_in_pause;
    snprintf(a->worker_error, sizeof a->worker_error, "generation failed: %s", w->error);
    if (w->latest.seq != a->view.seq)
        preview_snapshot_copy(&a->view, &w->latest);
    pthread_mutex_unlock(&w->lock);
    if (state != a->state || running_id != a->running_id || waiting != a->waiting_in_pause || seq != a->view.seq)
        a->ui_dirty = 1;
    if (a->state == PREVIEW_FAILED && state != PREVIEW_FAILED)
        app_say(a, 1, "%s", a->worker_error);
    if (a->state == PREVIEW_DONE && state != PREVIEW_DONE) {
        double total_ms = 0;
        for (int i = 0; i < a->view.step && i < a->view.history_capacity; i++)
            total_ms += a->view.history_step_ms[i];
        app_say(a, 0, "done: %d steps in %.1f s; s saves the video", a->view.step, total_ms / 1e3);
    }
    if (a->state == PREVIEW_DONE && (state != PREVIEW_DONE || seq != a->view.seq))
        analyse_video(a);
    else if (a->state != PREVIEW_DONE)
        a->analysis[0] = '\0';
}

/* ---- Settings ------------------------------------------------------------- */
static void change_topk(app *a, int direction)
{
    sla2_layer_attention la;
    if (sla2_pipeline_get_layer(a->pipeline, a->layer, &la))
        return;
    int n = (int)(sizeof topk_levels / sizeof *topk_levels);
    float next = la.topk;
    if (direction > 0) {
        for (int i = 0; i < n; i++)
            if (topk_levels[i] > la.topk + 1e-4f) {
                next = topk_levels[i];
                break;
            }
    } else {
        for (int i = n - 1; i >= 0; i--)
            if (topk_levels[i] < la.topk - 1e-4f) {
                next = topk_levels[i];
                break;
            }
    }
    for (int l = 0; l < a->info.num_layers; l++) {
        sla2_layer_attention s;
        sla2_pipeline_get_layer(a->pipeline, l, &s);
        s.topk = next;
        if (sla2_pipeline_set_layer(a->pipeline, l, &s)) {
            app_say(a, 1, "topk %.3f: %s", next, sla2_context_last_error(a->ctx));
            return;
        }
    }
    app_say(a, 0, "topk %.3f on every layer, from the next step", next);
}

static void cycle_quant(app *a)
{
    sla2_layer_attention la;
    if (sla2_pipeline_get_layer(a->pipeline, a->layer, &la))
        return;
    sla2_quant_mode next = la.quant == SLA2_QUANT_NONE ? SLA2_QUANT_INT8
                           : la.quant == SLA2_QUANT_INT8 ? SLA2_QUANT_INT8_FP8
                                                         : SLA2_QUANT_NONE;
    for (int l = 0; l < a->info.num_layers; l++) {
        sla2_layer_attention s;
        sla2_pipeline_get_layer(a->pipeline, l, &s);
        s.quant = next;
        sla2_pipeline_set_layer(a->pipeline, l, &s);
    }
    app_say(a, 0, "quantisation %s on every layer, from the next step", sla2_quant_mode_name(next));
}

static void toggle_dense(app *a)
{
    int current = a->dense_request >= 0 ? a->dense_request : (a->view.seq && a->view.step ? a->view.dense : 0);
    a->dense_request = !current;
    sla2_pipeline_set_dense(a->pipeline, a->dense_request);
    app_say(a, 0, "%s attention, from the next step", a->dense_request ? "dense" : "SLA2");
}

/* ---- Input ---------------------------------------------------------------- */
static void complete_prompt(app *a)
{
    char *word = strrchr(a->prompt, ' ');
    word = word ? word + 1 : a->prompt;
    size_t len = strlen(word), matches = 0, common = 0;
    const char *first = NULL;
    char list[512] = "";
    for (size_t i = 0; i < a->info.vocabulary_size; i++) {
        const char *v = a->info.vocabulary[i];
        if (strncmp(v, word, len))
            continue;
        if (!first) {
            first = v, common = strlen(v);
        } else {
            size_t k = 0;
            while (k < common && first[k] == v[k])
                k++;
            common = k;
        }
        matches++;
        if (strlen(list) + strlen(v) + 2 < sizeof list)
            strcat(list, v), strcat(list, " ");
    }
    if (!matches) {
        snprintf(a->hint, sizeof a->hint, "no word of the vocabulary starts with '%.64s'", word);
        return;
    }
    size_t room = sizeof a->prompt - (size_t)(word - a->prompt) - 2;
    if (common > room)
        common = room;
    memcpy(word, first, common);
    word[common] = '\0';
    if (matches == 1)
        strcat(word, " ");
    snprintf(a->hint, sizeof a->hint, matches == 1 ? "" : "Tab: %s", list);
}

static void type_text(app *a, const char *text)
{
    char *field = a->focus == FIELD_PROMPT ? a->prompt : a->focus == FIELD_SEED ? a->seed_text : a->steps_text;
    size_t size = a->focus == FIELD_PROMPT ? sizeof a->prompt
                  : a->focus == FIELD_SEED ? sizeof a->seed_text
                                           : sizeof a->steps_text;
    if (a->focus == FIELD_PROMPT && a->info.vocabulary_size == 0)
        return; /* the prompt is the text embedding file */
    for (const char *c = text; *c; c++) {
        if (a->focus != FIELD_PROMPT && (*c < '0' || *c > '9'))
            continue;
        if (a->focus == FIELD_PROMPT && (*c < 32 || *c > 126))
            continue;
        size_t len = strlen(field);
        if (len + 1 < size)
            field[len] = *c, field[len + 1] = '\0';
    }
}

static void begin_editing(app *a, form_field field)
{
    a->editing = 1, a->focus = field;
    if (a->info.vocabulary_size == 0 && field == FIELD_PROMPT)
        a->focus = FIELD_SEED;
    SDL_StartTextInput();
}

static void key_while_editing(app *a, SDL_Keycode key)
{
    char *field = a->focus == FIELD_PROMPT ? a->prompt : a->focus == FIELD_SEED ? a->seed_text : a->steps_text;
    switch (key) {
    case SDLK_RETURN:
    case SDLK_KP_ENTER: start_generation(a); break;
    case SDLK_ESCAPE:
        a->editing = 0;
        SDL_StopTextInput();
        break;
    case SDLK_BACKSPACE: {
        size_t len = strlen(field);
        if (len)
            field[len - 1] = '\0';
        break;
    }
    case SDLK_TAB:
        if (a->focus == FIELD_PROMPT && a->info.vocabulary_size > 0)
            complete_prompt(a);
        else
            a->focus = (form_field)((a->focus + 1) % FIELD_COUNT);
        break;
    case SDLK_DOWN: a->focus = (form_field)((a->focus + 1) % FIELD_COUNT); break;
    case SDLK_UP: a->focus = (form_field)((a->focus + FIELD_COUNT - 1) % FIELD_COUNT); break;
    case SDLK_F1: a->help = !a->help; break;
    default: break;
    }
    if (a->editing && a->info.vocabulary_size == 0 && a->focus == FIELD_PROMPT)
        a->focus = key == SDLK_UP ? FIELD_STEPS : FIELD_SEED;
}

static void on_key(app *a, SDL_Keycode key)
{
    if (a->editing) {
        key_while_editing(a, key);
        return;
    }
    int layers = a->info.num_layers, heads = a->info.num_heads;
    switch (key) {
    case SDLK_ESCAPE: a->quit = 1; break;
    case SDLK_RETURN:
    case SDLK_KP_ENTER:
    case SDLK_r: start_generation(a); break;
    case SDLK_p: begin_editing(a, FIELD_PROMPT); break;
    case SDLK_LEFTBRACKET: change_topk(a, -1); break;
    case SDLK_RIGHTBRACKET: change_topk(a, +1); break;
    case SDLK_q: cycle_quant(a); break;
    case SDLK_d: toggle_dense(a); break;
    case SDLK_LEFT: a->layer = (a->layer + layers - 1) % layers; break;
    case SDLK_RIGHT: a->layer = (a->layer + 1) % layers; break;
    case SDLK_UP: a->head = (a->head + heads - 1) % heads; break;
    case SDLK_DOWN: a->head = (a->head + 1) % heads; break;
    case SDLK_SPACE:
        a->paused = !a->paused;
        preview_worker_set_paused(&a->worker, a->paused);
        app_say(a, 0, "%s", a->paused ? "paused: the worker waits after its current step (space resumes, n steps)"
                                  : "resumed");
        break;
    case SDLK_n: preview_worker_step_once(&a->worker); break;
    case SDLK_s: a->save_pending = 1; break;
    case SDLK_h:
    case SDLK_F1: a->help = !a->help; break;
    case SDLK_v: a->current_view = (view_kind)((a->current_view + 1) % VIEW_COUNT); break;
    case SDLK_0: case SDLK_1: case SDLK_2: case SDLK_3: case SDLK_4:
        a->current_view = (view_kind)(key - SDLK_0);
        break;
    case SDLK_l: a->loop = !a->loop; break;
    case SDLK_COMMA: a->loop = 0, a->frame = (a->frame + a->info.frames - 1) % a->info.frames; break;
    case SDLK_PERIOD: a->loop = 0, a->frame = (a->frame + 1) % a->info.frames; break;
    default: break;
    }
}

static void handle_events(app *a)
{
    SDL_Event e;
    while (SDL_PollEvent(&e)) {
        a->ui_dirty = 1; /* keys, text, clicks, resizes, render target resets */
        if (e.type == SDL_QUIT)
            a->quit = 1;
        else if (e.type == SDL_KEYDOWN)
            on_key(a, e.key.keysym.sym);
        else if (e.type == SDL_TEXTINPUT && a->editing)
            type_text(a, e.text.text);
        else if (e.type == SDL_MOUSEBUTTONDOWN && e.button.y < 40)
            begin_editing(a, FIELD_PROMPT);
    }
}

/* ---- The loop ------------------------------------------------------------- */
static void count_frame(app *a, double now, int generating)
{
    double dt = now - a->last_frame_s;
    a->last_frame_s = now;
    a->frames_total++;
    if (generating && a->frames_total > 1) {
        a->generating_frames++;
        a->generating_s += dt;
        if (dt > a->slowest_generating_frame_s)
            a->slowest_generating_frame_s = dt;
    }
    a->fps_window_frames++;
    if (now - a->fps_window_s >= 0.5) {
        a->fps = a->fps_window_frames / (now - a->fps_window_s);
        a->ui_dirty = 1; /* the status line's fps and ETA */
        a->fps_window_s = now, a->fps_window_frames = 0;
    }
}

static void advance_frame(app *a, double now)
{
    if (!a->loop || a->info.frames <= 0)
        return;
    if (now - a->frame_clock_s >= 1.0 / VIDEO_FPS) {
        a->frame = (a->frame + 1) % a->info.frames;
        a->frame_clock_s = now;
    }
}

static void main_loop(app *a)
{
    a->started_s = a->last_frame_s = a->fps_window_s = a->frame_clock_s = preview_now_s();
    if (a->have_script)
        a->script.last_done_s = a->started_s;
    while (!a->quit) {
        double start = preview_now_s();
        if (a->have_script)
            script_run(a);
        handle_events(a);
        if (a->quit)
            break;
        sync_worker(a);
        advance_frame(a, start);
        int cursor_phase = (int)((SDL_GetTicks() / 500) & 1);
        if (a->editing && cursor_phase != a->cursor_phase)
            a->ui_dirty = 1;
        a->cursor_phase = cursor_phase;
        views_draw(a);
        if (a->screenshot_pending) {
            app_screenshot(a);
            a->screenshot_pending = 0;
        }
        if (a->save_pending) {
            app_save(a);
            a->save_pending = 0;
        }
        SDL_RenderPresent(a->renderer);
        double now = preview_now_s();
        a->work_s += now - start;
        count_frame(a, now, a->state == PREVIEW_RUNNING && !a->waiting_in_pause);
        double left = 1.0 / a->args.fps - (now - start);
        if (left > 0.001)
            SDL_Delay((Uint32)(left * 1000));
    }
}

static void print_fps(const app *a)
{
    double total = preview_now_s() - a->started_s;
    if (a->generating_frames > 0)
        printf("ui fps: %.1f while generating (%ld frames in %.2f s, slowest frame %.1f ms); %.1f overall; "
               "%.1f ms of work a frame\n",
               a->generating_frames / a->generating_s, a->generating_frames, a->generating_s,
               a->slowest_generating_frame_s * 1e3, a->frames_total / total, a->work_s * 1e3 / a->frames_total);
    else
        printf("ui fps: %.1f overall (%ld frames in %.2f s; no frame while generating)\n", a->frames_total / total,
               a->frames_total, total);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static app a; /* large; zeroed */
    int parsed = preview_parse_args(argc, argv, &a.args);
    if (parsed)
        return parsed == 1 ? 0 : 2;
    a.dense_request = -1, a.loop = 1;
    if (a.args.script) {
        char err[1200];
        if (preview_script_load(a.args.script, &a.script, err, sizeof err)) {
            fprintf(stderr, "sla2-preview: %s\n", err);
            return 2;
        }
        a.have_script = 1;
    }
    if (a.args.seed >= 0)
        snprintf(a.seed_text, sizeof a.seed_text, "%lld", (long long)a.args.seed);
    if (a.args.steps > 0)
        snprintf(a.steps_text, sizeof a.steps_text, "%d", a.args.steps);
    if (a.args.prompt)
        snprintf(a.prompt, sizeof a.prompt, "%s", a.args.prompt);
    int rc = 1;
    char err[512];
    if (!load_model(&a) || !open_window(&a))
        goto done;
    a.worker.nice = a.args.nice;
    if (preview_worker_start(&a.worker, a.ctx, a.pipeline, &a.info, err, sizeof err)) {
        fprintf(stderr, "sla2-preview: %s\n", err);
        goto done;
    }
    a.worker_started = 1;
    printf("sla2-preview: %s (%d layers, %d heads, %lld tokens, %d frames of %dx%d), backend %s: %s\n", a.info.name,
           a.info.num_layers, a.info.num_heads, (long long)a.info.tokens, a.info.frames, a.info.width, a.info.height,
           sla2_context_backend(a.ctx) == SLA2_BACKEND_CUDA ? "cuda" : "cpu", sla2_context_device_name(a.ctx));
    fflush(stdout);
    SDL_StopTextInput();
    /* A prompt from the command line starts at once, unless a script drives. */
    if (!a.have_script && (a.args.prompt || a.args.text_embedding))
        start_generation(&a);
    else if (!a.have_script && a.info.vocabulary_size > 0)
        begin_editing(&a, FIELD_PROMPT);
    main_loop(&a);
    double quit_s = preview_now_s();
    /* Hide at once; the worker may still finish its current step. */
    SDL_HideWindow(a.window);
    print_fps(&a);
    rc = a.exit_code;
    close_all(&a);
    printf("sla2-preview: generation cancelled, worker joined, everything freed in %.0f ms\n",
           (preview_now_s() - quit_s) * 1e3);
    return rc;
done:
    close_all(&a);
    return rc;
}
