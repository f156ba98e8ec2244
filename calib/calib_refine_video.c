/* --refine N on the model (see calib_refine_video.h). */
#include "calib_refine_video.h"

#include "calib_progress.h"
#include "calib_refine.h"
#include "calib_video.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The objective's state: the calibration videos' dense references,
 * generated once, and one pipeline whose layers each evaluation sets. */
typedef struct video_objective {
    const calib_options *opt;
    sla2_context *ctx;
    const sla2_model_info *info;
    const calib_table *t;
    sla2_pipeline *pipe;
    float *refs, *video; /* [videos][elems], [elems] */
    size_t elems;
    int videos;
    calib_progress bar;  /* the current phase's */
    int failed;          /* the objective failed and said why */
} video_objective;

static const calib_input *video_input(const video_objective *o, int v)
{
    return &o->opt->inputs[v / o->opt->num_seeds];
}

static int64_t video_seed(const video_objective *o, int v)
{
    return o->opt->seeds[v % o->opt->num_seeds];
}

static void clear_bar(const video_objective *o)
{
    if (o->bar.enabled)
        fprintf(stderr, "\r\033[K");
}

/* A phase of work on the bar: `videos` whole generations. */
static void start_phase(video_objective *o, long videos)
{
    calib_progress_start(&o->bar, !o->opt->quiet, videos * o->opt->steps, 0);
}

static int measure(void *user, const int64_t *blocks, int num_layers, double *value)
{
    video_objective *o = user;
    (void)num_layers;
    if (!calib_set_layer_blocks(o->pipe, o->ctx, o->info, blocks, 0, o->t->num_k_blocks, o->t->modes[0],
                                o->opt->block_q)) {
        o->failed = 1;
        return 0;
    }
    double sum = 0;
    for (int v = 0; v < o->videos; v++) {
        if (!calib_generate_video(o->pipe, o->opt, video_input(o, v), video_seed(o, v), o->video, o->elems,
                                  &o->bar)) {
            clear_bar(o);
            fprintf(stderr, CALIB_TOOL ": --refine: %s\n", sla2_context_last_error(o->ctx));
            o->failed = 1;
            return 0;
        }
        sum += calib_video_rel_l2(o->video, &o->refs[(size_t)v * o->elems], o->elems);
    }
    *value = sum / o->videos;
    return 1;
}

static void print_blocks(const int64_t *blocks, int n)
{
    fprintf(stderr, "(blocks");
    for (int l = 0; l < n; l++)
        fprintf(stderr, "%s %lld", l ? "," : "", (long long)blocks[l]);
    fprintf(stderr, ")");
}

static void on_start(void *user, const calib_refine_result *r)
{
    video_objective *o = user;
    clear_bar(o);
    fprintf(stderr, CALIB_TOOL ": refine: objective (mean video rel-L2 vs dense over %d calibration video(s)): "
                    "DP %.6g, uniform %.6g; from %s\n",
            o->videos, r->start_objective[0], r->start_objective[1], r->start == 0 ? "DP" : "uniform");
    start_phase(o, (long)o->videos * o->info->num_layers * (o->info->num_layers - 1)); /* at most, round 1 */
}

static void on_round(void *user, int round, double before, double after, int from, int to, const int64_t *blocks,
                     int num_layers)
{
    video_objective *o = user;
    clear_bar(o);
    fprintf(stderr, CALIB_TOOL ": refine round %d: objective %.6g -> %.6g: layer %d gives one key block to layer %d ",
            round, before, after, from, to);
    print_blocks(blocks, num_layers);
    fprintf(stderr, "\n");
    start_phase(o, (long)o->videos * num_layers * (num_layers - 1));
}

/* The dense reference of every calibration video. */
static int generate_references(video_objective *o, sla2_model *model)
{
    sla2_pipeline *dense = NULL;
    if (sla2_pipeline_create(o->ctx, model, NULL, &dense) != SLA2_OK) {
        fprintf(stderr, CALIB_TOOL ": --refine: %s\n", sla2_context_last_error(o->ctx));
        return 0;
    }
    sla2_pipeline_set_dense(dense, 1);
    int ok = 1;
    for (int v = 0; ok && v < o->videos; v++)
        ok = calib_generate_video(dense, o->opt, video_input(o, v), video_seed(o, v), &o->refs[(size_t)v * o->elems],
                                  o->elems, &o->bar);
    if (!ok) {
        clear_bar(o);
        fprintf(stderr, CALIB_TOOL ": --refine: %s\n", sla2_context_last_error(o->ctx));
    }
    sla2_pipeline_free(dense);
    return ok;
}

/* Layer choices of the refined allocation. */
static void set_choices(const calib_table *t, const sla2_model_info *info, const int64_t *blocks,
                        calib_choice *choices)
{
    for (int l = 0; l < t->num_layers; l++) {
        int ti = 0;
        while (ti < t->num_topks && t->kept[ti] != blocks[l])
            ti++;
        if (ti < t->num_topks) {
            size_t i = calib_table_index(t, l, ti, 0);
            choices[l] = (calib_choice){.topk_index = ti, .mode_index = 0, .topk = t->topks[ti], .quant = t->modes[0],
                                        .worst = t->worst[i], .mean = t->count[i] ? t->sum[i] / t->count[i] : NAN,
                                        .kept_share = (double)t->kept[ti] / (double)t->num_k_blocks};
        } else {
            choices[l] = (calib_choice){.topk_index = CALIB_CHOICE_REFINED, .mode_index = 0, .blocks = blocks[l],
                                        .topk = calib_blocks_topk(blocks[l], t->num_k_blocks, info->tokens),
                                        .quant = t->modes[0], .worst = NAN, .mean = NAN,
                                        .kept_share = (double)blocks[l] / (double)t->num_k_blocks};
        }
    }
}

int calib_refine(const calib_options *opt, sla2_context *ctx, sla2_model *model, const sla2_model_info *info,
                 const calib_table *t, calib_choice *choices, calib_refine_report *report)
{
    double start_ms = calib_now_ms();
    int layers = info->num_layers;
    video_objective o = {.opt = opt, .ctx = ctx, .info = info, .t = t, .elems = calib_video_elems(info),
                         .videos = opt->num_inputs * opt->num_seeds};
    int64_t *dp = malloc((size_t)layers * sizeof *dp), *uniform = malloc((size_t)layers * sizeof *uniform);
    int64_t *refined = malloc((size_t)layers * sizeof *refined);
    o.refs = malloc((size_t)o.videos * o.elems * sizeof *o.refs);
    o.video = malloc(o.elems * sizeof *o.video);
    int ok = 0;
    if (!dp || !uniform || !refined || !o.refs || !o.video) {
        fprintf(stderr, CALIB_TOOL ": --refine: out of memory (%d dense videos of %zu floats)\n", o.videos, o.elems);
        goto done;
    }
    for (int l = 0; l < layers; l++)
        dp[l] = calib_choice_blocks(t, &choices[l]);
    calib_refine_uniform(layers, calib_kept_share_blocks(t, opt->kept_share), uniform);
    /* the dense videos and both starts: one phase on the bar */
    start_phase(&o, (long)o.videos * 3);
    if (!generate_references(&o, model))
        goto done;
    if (sla2_pipeline_create(ctx, model, NULL, &o.pipe) != SLA2_OK) {
        fprintf(stderr, CALIB_TOOL ": --refine: %s\n", sla2_context_last_error(ctx));
        goto done;
    }
    calib_refine_problem problem = {.num_layers = layers, .num_k_blocks = t->num_k_blocks,
                                    .max_rounds = opt->refine, .objective = measure, .on_start = on_start,
                                    .on_round = on_round, .user = &o};
    const int64_t *starts[2] = {dp, uniform}; /* ties go to the DP's */
    calib_refine_result r;
    if (!calib_refine_search(&problem, starts, 2, refined, &r)) {
        clear_bar(&o);
        if (!o.failed)
            fprintf(stderr, CALIB_TOOL ": --refine: the search failed (out of memory, or an invalid start)\n");
        goto done;
    }
    clear_bar(&o);
    fprintf(stderr, CALIB_TOOL ": refine: %s after %d round(s), objective %.6g ",
            r.converged ? "no move lowers the objective" : "stopped at --refine's limit", r.rounds, r.objective);
    print_blocks(refined, layers);
    fprintf(stderr, "\n");
    *report = (calib_refine_report){.dp = r.start_objective[0], .uniform = r.start_objective[1],
                                    .refined = r.objective, .start = r.start == 0 ? "DP" : "uniform",
                                    .max_rounds = opt->refine, .rounds = r.rounds, .converged = r.converged,
                                    .evaluations = r.evaluations, .videos = o.videos};
    for (int l = 0; l < layers; l++)
        report->total_blocks += refined[l];
    set_choices(t, info, refined, choices);
    report->seconds = (calib_now_ms() - start_ms) / 1e3;
    ok = 1;
done:
    sla2_pipeline_free(o.pipe);
    free(dp), free(uniform), free(refined), free(o.refs), free(o.video);
    return ok;
}
