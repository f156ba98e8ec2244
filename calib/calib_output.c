/* The stdout table and the runtime YAML (see calib_output.h). */
#include "calib_output.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *mode_name(sla2_quant_mode m)
{
    return sla2_quant_mode_name(m);
}

static void print_refined(FILE *to, const calib_options *opt, const calib_refine_report *r)
{
    fprintf(to, "refined against the final video on the calibration inputs (%d input(s) x %d seed(s), %d steps): "
                "from %s, %d round(s) of at most %d, %s; %ld allocations measured; %lld key blocks in all\n",
            opt->num_inputs, opt->num_seeds, opt->steps, r->start, r->rounds, r->max_rounds,
            r->converged ? "no move lowers the objective" : "stopped at the limit", r->evaluations,
            (long long)r->total_blocks);
    fprintf(to, "objective (mean video rel-L2 vs dense over %d calibration video(s)): uniform %.6g  DP %.6g  "
                "refined %.6g\n", r->videos, r->uniform, r->dp, r->refined);
}

void calib_print_table(FILE *to, const calib_options *opt, const calib_table *t, const calib_choice *choices,
                       const sla2_model_info *info, const calib_refine_report *refined)
{
    const char *metric = calib_metric_name(opt->metric);
    if (opt->kept_share > 0)
        fprintf(to, "kept share: at most %g of the key blocks on average (%lld of %lld over %d layers), %s, per-layer "
                    "topk minimising the sum over layers of the worst %s%s of the DiT's prediction with one layer at "
                    "its setting and every other layer exact, against all exact\n",
                opt->kept_share, (long long)calib_kept_share_blocks(t, opt->kept_share),
                (long long)(t->num_k_blocks * t->num_layers), t->num_layers, mode_name(t->modes[0]),
                opt->metric == CALIB_METRIC_COSINE ? "1 - " : "", metric);
    if (refined)
        print_refined(to, opt, refined);
    else if (opt->kept_share <= 0)
        fprintf(to, "budget: %s %s %g of the DiT's prediction with one layer at its setting and every other layer "
                    "exact, against all exact (worst sample)\n", metric,
                opt->metric == CALIB_METRIC_COSINE ? ">=" : "<=", opt->budget);
    int steps[1000];
    int total = opt->num_inputs * opt->num_seeds * calib_sample_steps(opt, steps, 1000);
    fprintf(to, "%5s  %6s  %-8s  %12s  %12s  %10s  %9s\n", "layer", "topk", "mode", "worst", "mean", "kept FLOPs",
            "samples");
    for (int l = 0; l < t->num_layers; l++) {
        const calib_choice *c = &choices[l];
        if (c->topk_index == CALIB_CHOICE_DENSE) {
            fprintf(to, "%5d  %6s  %-8s  %12s  %12s  %9.1f%%   no candidate met the budget\n", l, "dense",
                    "-", "-", "-", 100.0);
            continue;
        }
        if (c->topk_index == CALIB_CHOICE_REFINED) {
            fprintf(to, "%5d  %6g  %-8s  %12s  %12s  %9.1f%%   refined: %lld key blocks, no candidate, not measured "
                        "alone\n", l, (double)c->topk, mode_name(c->quant), "-", "-", 100.0 * c->kept_share,
                    (long long)c->blocks);
            continue;
        }
        int n = t->count[calib_table_index(t, l, c->topk_index, c->mode_index)];
        fprintf(to, "%5d  %6g  %-8s  %12.4g  %12.4g  %9.1f%%  %4d/%-4d\n", l, (double)c->topk, mode_name(c->quant),
                calib_badness_to_metric(opt->metric, c->worst), calib_badness_to_metric(opt->metric, c->mean),
                100.0 * c->kept_share, n, total);
    }
    int64_t kept_total = 0;
    for (int l = 0; l < t->num_layers; l++)
        kept_total += calib_choice_blocks(t, &choices[l]);
    fprintf(to, "whole model: %.1f%% of self-attention FLOPs kept (%d layers, %lld tokens, %lld key blocks; "
                "mean %.4g kept per layer)\n",
            100.0 * calib_model_kept_share(choices, t->num_layers), t->num_layers, (long long)info->tokens,
            (long long)t->num_k_blocks, (double)kept_total / t->num_layers);
    if (opt->kept_share > 0) {
        double sum = 0;
        for (int l = 0; l < t->num_layers; l++)
            sum += choices[l].worst;
        if (isnan(sum)) /* a refined layer between candidates */
            fprintf(to, "sum over layers of the worst %s%s: - (a refined layer was not measured alone)\n",
                    opt->metric == CALIB_METRIC_COSINE ? "1 - " : "", metric);
        else
            fprintf(to, "sum over layers of the worst %s%s: %.4g\n", opt->metric == CALIB_METRIC_COSINE ? "1 - " : "",
                    metric, sum);
    }
    fprintf(to, "worst %s by topk (best mode measured at each; * chosen%s):\n%5s", calib_metric_name(opt->metric),
            opt->full_sweep ? "" : "; -: not measured; >: stopped at a sample that missed the budget, the true "
            "worst may be worse", "layer");
    for (int i = 0; i < t->num_topks; i++)
        fprintf(to, "  %8g", (double)t->topks[i]);
    fprintf(to, "\n");
    for (int l = 0; l < t->num_layers; l++) {
        fprintf(to, "%5d", l);
        for (int i = 0; i < t->num_topks; i++) {
            double full = INFINITY, stopped = INFINITY; /* best mode measured on every sample, on some */
            for (int mi = 0; mi < t->num_modes; mi++) {
                size_t k = calib_table_index(t, l, i, mi);
                if (t->count[k] == total)
                    full = fmin(full, t->worst[k]);
                else if (t->count[k] > 0)
                    stopped = fmin(stopped, t->worst[k]);
            }
            char cell[32] = "-";
            if (full < INFINITY)
                snprintf(cell, sizeof cell, "%.4f", calib_badness_to_metric(opt->metric, full));
            else if (stopped < INFINITY)
                snprintf(cell, sizeof cell, "%s%.4f", opt->metric == CALIB_METRIC_COSINE ? "<" : ">",
                         calib_badness_to_metric(opt->metric, stopped));
            fprintf(to, "  %7s%c", cell, choices[l].topk_index == i ? '*' : ' ');
        }
        fprintf(to, "\n");
    }
}

/* Text of a comment line: no newline may end the comment early. */
static void put_comment_text(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
}

static void write_header(FILE *f, const calib_options *opt, const calib_table *t, const calib_choice *choices,
                         const sla2_model_info *info, const calib_refine_report *refined)
{
    fprintf(f, "# Runtime settings written by sla2-calib (SLA2 SDK %s).\n", sla2_version_string());
    fprintf(f, "# model: %s (", info->name);
    put_comment_text(f, opt->model);
    fprintf(f, ", ");
    put_comment_text(f, opt->weights);
    if (opt->kept_share > 0)
        fprintf(f, ")\n# method: kept share %g: mean kept key blocks per layer <= %g x %lld; per-layer topk (mode "
                   "%s in every layer) minimising the sum over layers of the worst-case %s%s of the DiT's conditional "
                   "prediction with one layer at its setting and every other layer exact, against all exact\n",
                opt->kept_share, opt->kept_share, (long long)t->num_k_blocks, mode_name(t->modes[0]),
                opt->metric == CALIB_METRIC_COSINE ? "1 - " : "", calib_metric_name(opt->metric));
    else
        fprintf(f, ")\n# budget: worst-case %s %s %g of the DiT's conditional prediction with one layer at its "
                   "setting and every other layer exact, against all exact\n",
                calib_metric_name(opt->metric), opt->metric == CALIB_METRIC_COSINE ? ">=" : "<=", opt->budget);
    if (refined)
        fprintf(f, "# refined against the final video on the calibration inputs, %d round(s) (--refine %d, %s), "
                   "objective %.6g -> %.6g: mean rel-L2 of the video to the dense one over %d video(s), from the "
                   "%s allocation (uniform %.6g, DP %.6g)\n",
                refined->rounds, refined->max_rounds,
                refined->converged ? "no move lowers it" : "stopped at the limit",
                refined->uniform < refined->dp ? refined->uniform : refined->dp, refined->refined, refined->videos,
                refined->start, refined->uniform, refined->dp);
    fprintf(f, "# %s:", opt->inputs[0].prompt ? "prompts" : "text embeddings");
    for (int i = 0; i < opt->num_inputs; i++) {
        fprintf(f, "%s \"", i ? "," : "");
        put_comment_text(f, opt->inputs[i].prompt ? opt->inputs[i].prompt : opt->inputs[i].embedding);
        fprintf(f, "\"");
    }
    fprintf(f, "\n# seeds:");
    for (int i = 0; i < opt->num_seeds; i++)
        fprintf(f, "%s %lld", i ? "," : "", (long long)opt->seeds[i]);
    int steps[1000];
    int n = calib_sample_steps(opt, steps, 1000);
    fprintf(f, "; %d steps, sampled at", opt->steps);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s %d", i ? "," : "", steps[i]);
    fprintf(f, "\n# topk candidates:");
    for (int i = 0; i < t->num_topks; i++)
        fprintf(f, "%s %g", i ? "," : "", (double)t->topks[i]);
    fprintf(f, "; modes:");
    for (int i = 0; i < t->num_modes; i++)
        fprintf(f, "%s %s", i ? "," : "", mode_name(t->modes[i]));
    fprintf(f, "\n# whole model: %.1f%% of self-attention FLOPs kept\n",
            100.0 * calib_model_kept_share(choices, t->num_layers));
}

static int write_yaml_file(FILE *f, const calib_options *opt, const calib_table *t, const calib_choice *choices,
                           const sla2_model_info *info, const calib_refine_report *refined)
{
    write_header(f, opt, t, choices, info, refined);
    fprintf(f, "backend: %s\n", opt->backend == SLA2_BACKEND_CPU ? "cpu" : opt->backend == SLA2_BACKEND_CUDA ? "cuda"
                                                                                                        : "auto");
    fprintf(f, "sampler: %s\n", opt->sampler == SLA2_SAMPLER_KIND_EULER ? "euler" : "unipc");
    fprintf(f, "steps: %d\n", opt->steps);
    fprintf(f, "shift: %.17g\n", opt->shift < 0 ? 5.0 : opt->shift);
    fprintf(f, "guidance: %.17g\n", opt->guidance < 0 ? 5.0 : opt->guidance);
    fprintf(f, "seed: %lld\n", (long long)opt->seeds[0]);
    fprintf(f, "attention: sla2\nfeature_map: softmax\n");
    /* The defaults are layer 0's; every layer is listed anyway, so the file
     * reads the same whatever the defaults. */
    fprintf(f, "topk: %.6g\nquant: %s\nblock_q: %d\nblock_k: 64\n", (double)choices[0].topk,
            mode_name(choices[0].quant), opt->block_q);
    fprintf(f, "layers:\n");
    for (int l = 0; l < t->num_layers; l++) {
        const calib_choice *c = &choices[l];
        fprintf(f, "  - {layer: %d, topk: %.6g, quant: %s, block_q: %d, block_k: 64%s}", l, (double)c->topk,
                mode_name(c->quant), opt->block_q, c->topk_index == CALIB_CHOICE_DENSE ? ", dense: true" : "");
        if (c->topk_index == CALIB_CHOICE_DENSE)
            fprintf(f, "  # exact attention: no candidate met the budget\n");
        else if (c->topk_index == CALIB_CHOICE_REFINED)
            fprintf(f, "  # refined: %lld of %lld key blocks, %.1f%% kept, not measured alone\n", (long long)c->blocks,
                    (long long)t->num_k_blocks, 100.0 * c->kept_share);
        else
            fprintf(f, "  # worst %.4g, mean %.4g, %.1f%% kept\n", calib_badness_to_metric(opt->metric, c->worst),
                    calib_badness_to_metric(opt->metric, c->mean), 100.0 * c->kept_share);
    }
    return !ferror(f);
}

int calib_write_yaml(const calib_options *opt, const calib_table *t, const calib_choice *choices,
                     const sla2_model_info *info, sla2_context *ctx, sla2_model *model,
                     const calib_refine_report *refined)
{
    size_t n = strlen(opt->out) + 16;
    char *tmp = malloc(n);
    if (!tmp) {
        fprintf(stderr, CALIB_TOOL ": out of memory\n");
        return 0;
    }
    snprintf(tmp, n, "%s.tmpXXXXXX", opt->out);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, CALIB_TOOL ": --out %s: cannot create a file there: %s\n", opt->out, strerror(errno));
        free(tmp);
        return 0;
    }
    mode_t mask = umask(0); /* mkstemp makes 0600; a config file is read by others as usual */
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    FILE *f = fdopen(fd, "w");
    int ok = f && write_yaml_file(f, opt, t, choices, info, refined);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f ? fclose(f) != 0 : close(fd) != 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, CALIB_TOOL ": --out %s: writing failed: %s\n", opt->out, strerror(errno));
        unlink(tmp), free(tmp);
        return 0;
    }
    sla2_pipeline *check = NULL;
    if (sla2_pipeline_create(ctx, model, tmp, &check) != SLA2_OK) {
        fprintf(stderr, CALIB_TOOL ": the runtime YAML does not load back (%s); %s left untouched\n",
                sla2_context_last_error(ctx), opt->out);
        unlink(tmp), free(tmp);
        return 0;
    }
    sla2_pipeline_free(check);
    if (rename(tmp, opt->out) != 0) {
        fprintf(stderr, CALIB_TOOL ": --out %s: cannot rename the finished file into place: %s\n", opt->out,
                strerror(errno));
        unlink(tmp), free(tmp);
        return 0;
    }
    free(tmp);
    return 1;
}
