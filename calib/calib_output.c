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

void calib_print_table(FILE *to, const calib_options *opt, const calib_table *t, const calib_choice *choices,
                       const sla2_model_info *info)
{
    const char *metric = calib_metric_name(opt->metric);
    fprintf(to, "budget: %s %s %g in every sampled layer output (worst case)\n", metric,
            opt->metric == CALIB_METRIC_COSINE ? ">=" : "<=", opt->budget);
    int steps[1000];
    int total = opt->num_inputs * opt->num_seeds * calib_sample_steps(opt, steps, 1000);
    fprintf(to, "%5s  %6s  %-8s  %12s  %12s  %10s  %9s\n", "layer", "topk", "mode", "worst", "mean", "kept FLOPs",
            "samples");
    for (int l = 0; l < t->num_layers; l++) {
        const calib_choice *c = &choices[l];
        if (c->topk_index < 0) {
            fprintf(to, "%5d  %6g  %-8s  %12s  %12s  %9.1f%%   dense: no candidate met the budget\n", l, 1.0,
                    "none", "-", "-", 100.0);
            continue;
        }
        int n = t->count[calib_table_index(t, l, c->topk_index, c->mode_index)];
        fprintf(to, "%5d  %6g  %-8s  %12.4g  %12.4g  %9.1f%%  %4d/%-4d\n", l, (double)c->topk, mode_name(c->quant),
                calib_badness_to_metric(opt->metric, c->worst), calib_badness_to_metric(opt->metric, c->mean),
                100.0 * c->kept_share, n, total);
    }
    fprintf(to, "whole model: %.1f%% of self-attention FLOPs kept (%d layers, %lld tokens, %lld key blocks)\n",
            100.0 * calib_model_kept_share(choices, t->num_layers), t->num_layers, (long long)info->tokens,
            (long long)t->num_k_blocks);
    /* what other budgets would have given, from the same measurements */
    calib_choice *other = malloc((size_t)t->num_layers * sizeof *other);
    if (other) {
        fprintf(to, "whole-model kept share at other budgets%s:",
                opt->full_sweep ? "" : " (looser ones approximate without --full-sweep)");
        static const double scale[] = {0.25, 0.5, 1, 2, 4};
        for (int i = 0; i < 5; i++) {
            double badness = calib_badness_budget(opt) * scale[i];
            int dense = calib_select(t, badness, opt->per_head, other);
            fprintf(to, "%s %.4g -> %.1f%%%s", i ? "," : "", calib_badness_to_metric(opt->metric, badness),
                    100.0 * calib_model_kept_share(other, t->num_layers), dense ? " (some dense)" : "");
        }
        fprintf(to, "\n");
    }
    free(other);
    fprintf(to, "worst %s by topk (best mode at each; * chosen%s):\n%5s", calib_metric_name(opt->metric),
            opt->full_sweep ? "" : "; >: dropped once it missed the budget, its true worst may be worse", "layer");
    for (int i = 0; i < t->num_topks; i++)
        fprintf(to, "  %8g", (double)t->topks[i]);
    fprintf(to, "\n");
    for (int l = 0; l < t->num_layers; l++) {
        fprintf(to, "%5d", l);
        for (int i = 0; i < t->num_topks; i++) {
            double w = calib_best_worst(t, l, i, opt->per_head);
            char cell[32] = "-";
            int dropped = 0;
            for (int mi = 0; mi < t->num_modes; mi++)
                dropped |= t->count[calib_table_index(t, l, i, mi)] < total;
            if (w < INFINITY)
                snprintf(cell, sizeof cell, "%s%.4f", dropped && !(w <= calib_badness_budget(opt)) ? ">" : "",
                         calib_badness_to_metric(opt->metric, w));
            fprintf(to, "  %7s%c", cell, choices[l].topk_index == i ? '*' : ' ');
        }
        fprintf(to, "\n");
    }
    if (!opt->per_head)
        return;
    fprintf(to, "per head (the runtime applies one topk per layer: the YAML carries each layer's strictest head):\n");
    fprintf(to, "%5s  %4s  %6s  %-8s  %12s\n", "layer", "head", "topk", "mode", "worst");
    for (int l = 0; l < t->num_layers; l++)
        for (int h = 0; h < t->num_heads; h++) {
            calib_choice c = calib_select_head(t, l, h, calib_badness_budget(opt));
            if (c.topk_index < 0)
                fprintf(to, "%5d  %4d  %6s  %-8s  %12s\n", l, h, "dense", "none", "-");
            else
                fprintf(to, "%5d  %4d  %6g  %-8s  %12.4g\n", l, h, (double)c.topk, mode_name(c.quant),
                        calib_badness_to_metric(opt->metric, c.worst));
        }
}

/* Text of a comment line: no newline may end the comment early. */
static void put_comment_text(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
}

static void write_header(FILE *f, const calib_options *opt, const calib_table *t, const calib_choice *choices,
                         const sla2_model_info *info)
{
    fprintf(f, "# Runtime settings written by sla2-calib (SLA2 SDK %s).\n", sla2_version_string());
    fprintf(f, "# model: %s (", info->name);
    put_comment_text(f, opt->model);
    fprintf(f, ", ");
    put_comment_text(f, opt->weights);
    fprintf(f, ")\n# budget: worst-case %s %s %g of each layer's output against exact attention%s\n",
            calib_metric_name(opt->metric), opt->metric == CALIB_METRIC_COSINE ? ">=" : "<=", opt->budget,
            opt->per_head ? ", in every head" : "");
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
                           const sla2_model_info *info)
{
    write_header(f, opt, t, choices, info);
    fprintf(f, "backend: %s\n", opt->backend == SLA2_BACKEND_CPU ? "cpu" : "auto");
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
        fprintf(f, "  - {layer: %d, topk: %.6g, quant: %s, block_q: %d, block_k: 64}", l, (double)c->topk,
                mode_name(c->quant), opt->block_q);
        if (c->topk_index < 0)
            fprintf(f, "  # dense: no candidate met the budget\n");
        else
            fprintf(f, "  # worst %.4g, mean %.4g, %.1f%% kept\n", calib_badness_to_metric(opt->metric, c->worst),
                    calib_badness_to_metric(opt->metric, c->mean), 100.0 * c->kept_share);
        if (opt->per_head) { /* for a runtime that one day takes a topk per head */
            fprintf(f, "    # per head:");
            for (int h = 0; h < t->num_heads; h++) {
                calib_choice hc = calib_select_head(t, l, h, calib_badness_budget(opt));
                fprintf(f, "%s %g %s", h ? "," : "", (double)hc.topk, mode_name(hc.quant));
            }
            fprintf(f, "\n");
        }
    }
    return !ferror(f);
}

int calib_write_yaml(const calib_options *opt, const calib_table *t, const calib_choice *choices,
                     const sla2_model_info *info, sla2_context *ctx, sla2_model *model)
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
    int ok = f && write_yaml_file(f, opt, t, choices, info);
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
