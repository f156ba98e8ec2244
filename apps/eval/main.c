/* sla2-eval: prompt adherence of the tiny demo model over prompts x seeds x
 * attention settings, the model loaded once. Built against the public API
 * only. See eval.h for the pieces and --help for the flags. */
#include "eval.h"

#include <sla2/pipeline.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set by SIGINT/SIGTERM, and by SIGALRM at --time-limit: the video under
 * way is cancelled at its next DiT block and the table of the finished ones
 * printed. */
static volatile int stop_requested;
static volatile sig_atomic_t alarm_fired;

static void on_signal(int signal_number)
{
    alarm_fired |= signal_number == SIGALRM;
    stop_requested = 1;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

typedef struct eval_run {
    const eval_args *args;
    sla2_context *ctx;
    sla2_model *model;
    sla2_pipeline *pipe;
    sla2_model_info info;
    char (*prompts)[EVAL_PROMPT_CHARS];
    int num_prompts;
    char kept[EVAL_MAX_SETTINGS][16]; /* per setting, "6/64" */
    double start_s;
    int time_limit_hit, steps_seen;
    FILE *tsv;
    eval_tally tally;
    eval_keys done;                    /* videos of the TSV kept by --resume */
} eval_run;

static int merge(const eval_args *a)
{
    eval_tally tally = {.planned = 0};
    eval_keys keys = {0};
    int ok = 1;
    for (int i = 0; ok && i < a->num_merge_files; i++)
        ok = eval_tsv_load(a->merge_files[i], &tally, &keys);
    const char *duplicate = ok ? eval_keys_duplicate(&keys) : NULL;
    if (duplicate) {
        fprintf(stderr, "sla2-eval: --merge: a video is in the TSVs twice (setting, prompt, seed: %s); "
                        "give each shard's TSV once\n", duplicate);
        ok = 0;
    }
    if (ok)
        eval_print_table(stdout, &tally);
    eval_keys_free(&keys);
    return ok ? 0 : 1;
}

/* Every word of every prompt must be in the model's vocabulary (checked
 * before the first video, not at the 300th). */
static int check_prompts(const eval_run *r)
{
    if (!r->info.pixel_space || r->info.channels != 3 || !r->info.vocabulary_size) {
        fprintf(stderr, "sla2-eval: model '%s' is not a pixel-space RGB model with a built-in vocabulary; "
                        "the analyser reads only such videos (the tiny demo's)\n", r->info.name);
        return 0;
    }
    for (int p = 0; p < r->num_prompts; p++) {
        char copy[EVAL_PROMPT_CHARS];
        snprintf(copy, sizeof copy, "%s", r->prompts[p]);
        for (char *save = NULL, *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
            size_t i = 0;
            while (i < r->info.vocabulary_size && strcmp(r->info.vocabulary[i], w))
                i++;
            if (i == r->info.vocabulary_size) {
                fprintf(stderr, "sla2-eval: prompt '%s': '%s' is not in the model's vocabulary\n", r->prompts[p], w);
                return 0;
            }
        }
    }
    return 1;
}

/* Key blocks each setting keeps per query block (layer 0's block size; the
 * evaluation sets every layer alike). */
static int describe_settings(eval_run *r)
{
    sla2_layer_attention layer;
    if (sla2_pipeline_get_layer(r->pipe, 0, &layer))
        return 0;
    long long num_k_blocks = (r->info.tokens + layer.block_k - 1) / layer.block_k;
    for (int s = 0; s < r->args->num_settings; s++) {
        const eval_setting *set = &r->args->settings[s];
        long long kept = set->dense ? num_k_blocks : sla2_attention_kept_blocks(r->info.tokens, layer.block_k, set->topk);
        snprintf(r->kept[s], sizeof r->kept[s], "%lld/%lld", kept, num_k_blocks);
        eval_tally_row(&r->tally, set->label, r->kept[s]); /* listed even if no video reaches it */
        if (set->dense)
            printf("setting %s: exact dense attention\n", set->label);
        else
            printf("setting %s: SLA2 in every layer, topk %g keeps %lld of %lld key blocks (%.1f%% sparse), %s\n",
                   set->label, set->topk, kept, num_k_blocks, 100.0 * (double)(num_k_blocks - kept) / (double)num_k_blocks,
                   sla2_quant_mode_name(set->quant));
    }
    return 1;
}

static int apply_setting(eval_run *r, const eval_setting *set)
{
    sla2_pipeline_set_dense(r->pipe, set->dense);
    for (int layer = 0; !set->dense && layer < r->info.num_layers; layer++) {
        sla2_layer_attention la;
        if (sla2_pipeline_get_layer(r->pipe, layer, &la))
            return 0;
        la.topk = set->topk, la.quant = set->quant;
        if (sla2_pipeline_set_layer(r->pipe, layer, &la))
            return 0;
    }
    return 1;
}

/* Cancels generation at the time limit. */
static int on_step(void *user, const sla2_step_info *info)
{
    eval_run *r = user;
    r->steps_seen = info->num_steps;
    if (r->args->time_limit_s > 0 && now_s() - r->start_s > r->args->time_limit_s)
        r->time_limit_hit = 1;
    return r->time_limit_hit;
}

/* Generates and scores one video. Returns 1 done, 0 stopped (time limit or
 * signal; not counted), -1 failed. */
static int eval_video(eval_run *r, int setting_index, const char *prompt, long long seed, float *video, size_t elems,
                      sla2_video_analysis *analysis, int *matches)
{
    const eval_setting *set = &r->args->settings[setting_index];
    double t0 = now_s();
    if (!apply_setting(r, set))
        return -1;
    sla2_generate_options gen;
    sla2_generate_options_default(&gen);
    gen.prompt = prompt, gen.seed = seed, gen.steps = r->args->steps;
    gen.on_step = on_step, gen.user = r, gen.cancel = &stop_requested;
    sla2_status s = sla2_pipeline_generate(r->pipe, &gen, video, elems);
    if (s == SLA2_ERR_CANCELLED)
        return 0;
    if (s || sla2_video_analyse(video, r->info.frames, r->info.height, r->info.width, analysis))
        return -1;
    *matches = sla2_prompt_matches(prompt, analysis);
    double seconds = now_s() - t0;
    eval_row *row = eval_tally_row(&r->tally, set->label, r->kept[setting_index]);
    if (!row) {
        fprintf(stderr, "sla2-eval: too many settings\n");
        return -1;
    }
    eval_tally_add(row, *matches, seconds);
    if (r->tsv)
        eval_tsv_write_video(r->tsv, set->label, prompt, seed, analysis, *matches, seconds, r->kept[setting_index]);
    return 1;
}

/* Opens --tsv: appends after its videos with --resume (checking it was
 * planned alike), else writes it anew. */
static int open_tsv(eval_run *r, long long planned)
{
    const eval_args *a = r->args;
    char shard[64];
    snprintf(shard, sizeof shard, "%d/%d", a->shard_index, a->shard_count);
    FILE *existing = a->resume ? fopen(a->tsv, "r") : NULL;
    int has_lines = existing && fgetc(existing) != EOF;
    if (existing)
        fclose(existing);
    if (has_lines) {
        if (!eval_tsv_load(a->tsv, &r->tally, &r->done))
            return 0;
        if (r->tally.planned != planned || r->tally.num_rows != a->num_settings) {
            fprintf(stderr, "sla2-eval: --resume: %s was planned for %lld videos of %d settings, these flags plan "
                            "%lld of %d; give the same prompts, seeds, settings and shard\n", a->tsv, r->tally.planned,
                    r->tally.num_rows, planned, a->num_settings);
            return 0;
        }
        r->tsv = fopen(a->tsv, "a");
    } else {
        r->tsv = fopen(a->tsv, "w");
    }
    if (!r->tsv) {
        fprintf(stderr, "sla2-eval: --tsv %s: %s\n", a->tsv, strerror(errno));
        return 0;
    }
    if (!has_lines)
        eval_tsv_write_header(r->tsv, sla2_context_device_name(r->ctx), shard, planned, a->steps, &r->tally);
    return 1;
}

/* Runs this shard's videos in eval_video_of's order. Returns 0 on success
 * (stopped early included), 1 on a failure. */
static int run_videos(eval_run *r)
{
    const eval_args *a = r->args;
    long long total = (long long)r->num_prompts * a->num_seeds * a->num_settings, planned = 0, done_before = 0;
    for (long long v = 0; v < total; v++)
        planned += eval_in_shard(v, a->num_settings, a->shard_index, a->shard_count);
    r->tally.planned = 0;
    if (a->tsv && !open_tsv(r, planned))
        return 1;
    r->tally.planned = planned;
    for (int i = 0; i < r->tally.num_rows; i++)
        done_before += r->tally.rows[i].videos;
    printf("videos: %d prompts x %d seeds x %d settings = %lld; this process (shard %d/%d): %lld%s\n",
           r->num_prompts, a->num_seeds, a->num_settings, total, a->shard_index, a->shard_count, planned,
           done_before ? " (some already in the TSV, kept)" : "");
    fflush(stdout);
    size_t elems = (size_t)r->info.channels * r->info.frames * r->info.height * r->info.width;
    float *video = malloc(elems * sizeof *video);
    if (!video) {
        fprintf(stderr, "sla2-eval: out of memory for the video\n");
        return 1;
    }
    int rc = 0;
    long long count = done_before, this_run = 0;
    for (long long v = 0; v < total && !stop_requested && !r->time_limit_hit; v++) {
        if (!eval_in_shard(v, a->num_settings, a->shard_index, a->shard_count))
            continue;
        int prompt_index, seed_index, setting;
        eval_video_of(v, a->num_seeds, a->num_settings, &prompt_index, &seed_index, &setting);
        const char *prompt = r->prompts[prompt_index];
        long long seed = a->seeds[seed_index];
        if (eval_keys_has(&r->done, a->settings[setting].label, prompt, seed))
            continue;
        if (a->time_limit_s > 0 && now_s() - r->start_s > a->time_limit_s) {
            r->time_limit_hit = 1;
            break;
        }
        sla2_video_analysis analysis;
        int matches = 0, result = eval_video(r, setting, prompt, seed, video, elems, &analysis, &matches);
        if (result < 0) {
            fprintf(stderr, "sla2-eval: setting %s, prompt '%s', seed %lld: %s\n", a->settings[setting].label, prompt,
                    seed, sla2_context_last_error(r->ctx));
            rc = 1;
            break;
        }
        count += result, this_run += result;
        if (result && !a->quiet) {
            double per_video = (now_s() - r->start_s) / (double)this_run;
            fprintf(stderr, "[%lld/%lld] %s | %s | seed %lld: read %s %s %s (%d/3); %.2f s/video, ETA %.0f s\n",
                    count, planned, a->settings[setting].label, prompt, seed, analysis.colour, analysis.shape,
                    analysis.direction, (matches & 1) + (matches >> 1 & 1) + (matches >> 2 & 1), per_video,
                    per_video * (double)(planned - count));
        }
    }
    free(video);
    r->time_limit_hit |= alarm_fired;
    double wall = now_s() - r->start_s;
    if (r->time_limit_hit)
        printf("stopped at the time limit (--time-limit %g s)\n", a->time_limit_s);
    else if (stop_requested)
        printf("stopped by a signal\n");
    printf("%lld videos generated in this run in %.1f s of wall time (%.2f s/video, model load included); "
           "%d sampler steps, %s\n", this_run, wall, this_run ? wall / (double)this_run : 0.0, r->steps_seen,
           sla2_context_device_name(r->ctx));
    eval_print_table(stdout, &r->tally);
    return rc;
}

static int list_videos(const eval_args *a)
{
    char(*prompts)[EVAL_PROMPT_CHARS] = NULL;
    int num_prompts = eval_load_prompts(a, &prompts);
    if (!num_prompts)
        return 1;
    long long total = (long long)num_prompts * a->num_seeds * a->num_settings;
    for (long long v = 0; v < total; v++) {
        int prompt, seed, setting;
        if (!eval_in_shard(v, a->num_settings, a->shard_index, a->shard_count))
            continue;
        eval_video_of(v, a->num_seeds, a->num_settings, &prompt, &seed, &setting);
        printf("%s\t%s\t%lld\n", a->settings[setting].label, prompts[prompt], a->seeds[seed]);
    }
    free(prompts);
    return 0;
}

static int evaluate(const eval_args *a)
{
    eval_run r = {.args = a, .info = {.size = sizeof r.info}};
    r.start_s = now_s();
    r.num_prompts = eval_load_prompts(a, &r.prompts);
    if (!r.num_prompts)
        return 1;
    sla2_context_options options;
    sla2_context_options_default(&options);
    options.backend = a->backend, options.num_threads = a->threads;
    char err[512];
    if (sla2_context_create(&options, &r.ctx, err, sizeof err) != SLA2_OK) {
        fprintf(stderr, "sla2-eval: %s\n", err);
        free(r.prompts);
        return 1;
    }
    int rc = 1;
    if (sla2_model_load(r.ctx, a->model, a->weights, &r.model) || sla2_model_get_info(r.ctx, r.model, &r.info) ||
        sla2_pipeline_create(r.ctx, r.model, a->runtime, &r.pipe)) {
        fprintf(stderr, "sla2-eval: %s\n", sla2_context_last_error(r.ctx));
        goto done;
    }
    printf("model: %s (%d layers, %lld tokens), %s\n", r.info.name, r.info.num_layers, (long long)r.info.tokens,
           sla2_context_device_name(r.ctx));
    if (!check_prompts(&r))
        goto done;
    if (!describe_settings(&r)) {
        fprintf(stderr, "sla2-eval: %s\n", sla2_context_last_error(r.ctx));
        goto done;
    }
    rc = run_videos(&r);
done:
    if (r.tsv && fclose(r.tsv) && !rc) {
        fprintf(stderr, "sla2-eval: --tsv %s: %s\n", a->tsv, strerror(errno));
        rc = 1;
    }
    eval_keys_free(&r.done);
    sla2_pipeline_free(r.pipe);
    sla2_model_free(r.model);
    sla2_context_free(r.ctx);
    free(r.prompts);
    return rc;
}

int main(int argc, char **argv)
{
    eval_args a;
    int parsed = eval_parse_args(argc, argv, &a);
    if (parsed <= 0)
        return parsed < 0 ? 0 : 2;
    if (a.merge)
        return merge(&a);
    if (a.list)
        return list_videos(&a);
    struct sigaction action = {.sa_handler = on_signal};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGALRM, &action, NULL);
    if (a.time_limit_s > 0)
        alarm((unsigned)ceil(a.time_limit_s));
    return evaluate(&a);
}
