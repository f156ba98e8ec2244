/* sla2-calib: per-layer sparsity and quantisation chosen under an error
 * budget (or for the least summed error at a kept share), written as the
 * runtime YAML that sla2-gen reads. Built against the public API only.
 * README.md (this folder) says how and why. */
#include "calib.h"
#include "calib_compare.h"
#include "calib_measure.h"
#include "calib_output.h"
#include "calib_plot.h"
#include "calib_refine_video.h"
#include "calib_select.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A path we will write at the end must be writable now, not after an hour
 * of calibration: create and remove a temporary file beside it. */
static int check_writable(const char *flag, const char *path)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return 0;
    snprintf(tmp, n, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    int ok = fd >= 0;
    if (!ok)
        fprintf(stderr, CALIB_TOOL ": %s %s: cannot create a file there: %s\n", flag, path, strerror(errno));
    else
        close(fd), unlink(tmp);
    free(tmp);
    return ok;
}

/* Reads every input's text context now (a word outside the vocabulary, a
 * malformed embedding file), not after the runs before it: generation with
 * cancellation already requested reads the context, then stops before its
 * first step. */
static int check_readable(sla2_pipeline *pipe, sla2_context *ctx, const calib_input *inputs, int n,
                          const sla2_model_info *info)
{
    size_t elems = (size_t)info->channels * info->frames * info->height * info->width;
    float *video = malloc(elems * sizeof *video);
    static const volatile int cancelled = 1;
    int ok = video != NULL;
    for (int i = 0; ok && i < n; i++) {
        sla2_generate_options g;
        sla2_generate_options_default(&g);
        g.prompt = inputs[i].prompt, g.text_embedding_path = inputs[i].embedding, g.steps = 1;
        g.cancel = &cancelled;
        if (sla2_pipeline_generate(pipe, &g, video, elems) != SLA2_ERR_CANCELLED) {
            fprintf(stderr, CALIB_TOOL ": %s\n", sla2_context_last_error(ctx));
            ok = 0;
        }
    }
    free(video);
    return ok;
}

static int check_inputs(const calib_options *opt, const sla2_model_info *info, sla2_context *ctx,
                        sla2_model *model)
{
    for (int i = 0; i < opt->num_inputs; i++)
        if (opt->inputs[i].prompt && info->vocabulary_size == 0) {
            fprintf(stderr, CALIB_TOOL ": model %s has no built-in vocabulary, so it cannot read prompts; "
                            "give --text-embedding files instead\n", info->name);
            return 0;
        }
    if (opt->compare && opt->compare_inputs && info->vocabulary_size == 0) {
        fprintf(stderr, CALIB_TOOL ": --compare-prompts: model %s has no built-in vocabulary\n", info->name);
        return 0;
    }
    sla2_pipeline *pipe = NULL;
    if (sla2_pipeline_create(ctx, model, NULL, &pipe) != SLA2_OK) {
        fprintf(stderr, CALIB_TOOL ": %s\n", sla2_context_last_error(ctx));
        return 0;
    }
    int ok = check_readable(pipe, ctx, opt->inputs, opt->num_inputs, info) &&
             (!opt->compare || !opt->compare_inputs ||
              check_readable(pipe, ctx, opt->compare_inputs, opt->num_compare_inputs, info));
    sla2_pipeline_free(pipe);
    return ok;
}

static void report_dense_layers(const calib_options *opt, const calib_table *t, const calib_choice *choices)
{
    for (int l = 0; l < t->num_layers; l++) {
        if (choices[l].topk_index != CALIB_CHOICE_DENSE)
            continue;
        int best = t->num_topks - 1;
        for (int ti = 0; ti < t->num_topks; ti++)
            if (calib_best_worst(t, l, ti, 0) < calib_best_worst(t, l, best, 0))
                best = ti;
        /* a candidate stops at its first miss, so its recorded worst is a lower bound */
        fprintf(stderr, CALIB_TOOL ": layer %d: no candidate meets %s %s %g (closest: topk %g, worst %s%.4g); "
                        "it stays dense (exact attention)\n",
                l, calib_metric_name(opt->metric), opt->metric == CALIB_METRIC_COSINE ? ">=" : "<=", opt->budget,
                (double)t->topks[best], opt->full_sweep ? "" : opt->metric == CALIB_METRIC_COSINE ? "<= " : ">= ",
                calib_badness_to_metric(opt->metric, calib_best_worst(t, l, best, 0)));
    }
}

int main(int argc, char **argv)
{
    calib_options opt;
    if (!calib_parse_args(argc, argv, &opt)) {
        calib_options_free(&opt);
        return 2;
    }
    if (opt.per_head) {
        fprintf(stderr, CALIB_TOOL ": --per-head: errors are measured at the DiT's output, which has no per-head "
                        "split, and the runtime applies one topk per layer; leave --per-head out\n");
        calib_options_free(&opt);
        return 2;
    }
    int rc = 1;
    sla2_context *ctx = NULL;
    sla2_model *model = NULL;
    calib_table table = {0};
    calib_choice *choices = NULL;
    sla2_context_options copt;
    sla2_context_options_default(&copt);
    copt.backend = opt.backend;
    char err[512];
    if (sla2_context_create(&copt, &ctx, err, sizeof err) != SLA2_OK) {
        fprintf(stderr, CALIB_TOOL ": %s\n", err);
        goto done;
    }
    sla2_model_info info = {.size = sizeof info};
    if (sla2_model_load(ctx, opt.model, opt.weights, &model) != SLA2_OK ||
        sla2_model_get_info(ctx, model, &info) != SLA2_OK) {
        fprintf(stderr, CALIB_TOOL ": %s\n", sla2_context_last_error(ctx));
        goto done;
    }
    if (!check_inputs(&opt, &info, ctx, model) || !check_writable("--out", opt.out) ||
        (opt.plot && !check_writable("--plot", opt.plot)))
        goto done;
    if (!calib_table_init(&table, info.num_layers, 1, opt.topks, opt.num_topks, opt.modes, opt.num_modes,
                          info.tokens, 64) ||
        !(choices = calloc((size_t)info.num_layers, sizeof *choices))) {
        fprintf(stderr, CALIB_TOOL ": out of memory\n");
        goto done;
    }
    if (opt.kept_share > 0 && calib_kept_share_blocks(&table, opt.kept_share) < calib_min_total_blocks(&table)) {
        /* known from the candidates and the sequence alone: say so before any work */
        fprintf(stderr, CALIB_TOOL ": --kept-share %g allows %lld key blocks over %d layers (of %lld each), but "
                        "the sparsest candidate, topk %g, keeps %lld per layer (share %g): give --kept-share >= %g%s; "
                        "nothing written\n",
                opt.kept_share, (long long)calib_kept_share_blocks(&table, opt.kept_share), info.num_layers,
                (long long)table.num_k_blocks, (double)table.topks[0], (long long)table.kept[0],
                (double)table.kept[0] / (double)table.num_k_blocks,
                (double)table.kept[0] / (double)table.num_k_blocks,
                table.kept[0] > 1 ? " or a sparser --topk-candidates" : "");
        rc = 2;
        goto done;
    }
    int steps[1000];
    int num_sampled = calib_sample_steps(&opt, steps, 1000);
    printf("model: %s (%d layers, %d heads, %lld tokens), %s\n", info.name, info.num_layers, info.num_heads,
           (long long)info.tokens, sla2_context_device_name(ctx));
    printf("calibrating on %d input(s) x %d seed(s), %d steps, sampled at", opt.num_inputs, opt.num_seeds, opt.steps);
    for (int i = 0; i < num_sampled; i++)
        printf("%s %d", i ? "," : "", steps[i]);
    printf("\n");
    fflush(stdout);
    calib_run_report report;
    if (!calib_measure(&opt, ctx, model, &info, &table, &report))
        goto done;
    int dense_layers = 0;
    if (opt.kept_share > 0) {
        if (!calib_select_kept_share(&table, calib_kept_share_blocks(&table, opt.kept_share), choices)) {
            /* the share fits the sparsest candidates, so only failed measurements (NaN) get here */
            fprintf(stderr, CALIB_TOOL ": --kept-share %g: no allocation of measured candidates fits (every "
                            "candidate that fits produced NaN in some layer); nothing written\n", opt.kept_share);
            goto done;
        }
    } else {
        dense_layers = calib_select(&table, calib_badness_budget(&opt), 0, choices);
    }
    calib_refine_report refined = {0};
    if (opt.refine && !calib_refine(&opt, ctx, model, &info, &table, choices, &refined))
        goto done;
    calib_print_table(stdout, &opt, &table, choices, &info, opt.refine ? &refined : NULL);
    printf("time: %.1f s = %ld dense sampler steps and %ld dense reference predictions %.1f s + %ld candidate "
           "predictions %.1f s\n",
           (report.steps_ms + report.evals_ms) / 1e3, report.steps, report.references, report.steps_ms / 1e3,
           report.evals, report.evals_ms / 1e3);
    if (opt.refine)
        printf("refine time: %.1f s = %d dense videos + %ld allocations x %d videos, %d steps each\n",
               refined.seconds, refined.videos, refined.evaluations, refined.videos, opt.steps);
    report_dense_layers(&opt, &table, choices);
    if (!calib_write_yaml(&opt, &table, choices, &info, ctx, model, opt.refine ? &refined : NULL))
        goto done;
    printf("runtime: %s\n", opt.out);
    if (opt.plot) {
        if (!calib_plot(opt.plot, &opt, &table, choices, info.name))
            goto done;
        printf("plot: %s\n", opt.plot);
    }
    fflush(stdout);
    if (opt.compare && !calib_compare(&opt, ctx, model, &info, &table, choices))
        goto done;
    rc = dense_layers ? 3 : 0;
done:
    free(choices);
    calib_table_free(&table);
    sla2_model_free(model);
    sla2_context_free(ctx);
    calib_options_free(&opt);
    return rc;
}
