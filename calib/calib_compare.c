/* --compare (see calib_compare.h). */
#include "calib_compare.h"

#include "calib_progress.h"
#include "calib_video.h"

#include <sla2/video.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The uniform baseline's first variant is in the calibration's cost-matched
 * mode: int8_fp8 after a budget calibration (its cheapest mode), the one
 * mode measured after --kept-share; the second is unquantised. */
enum { VARIANT_CALIBRATED, VARIANT_UNIFORM_MATCHED, VARIANT_UNIFORM_NONE, MAX_VARIANTS };

typedef struct variant_result {
    double err_sum, matched_sum;
    int full_matches, count;
    double *errors; /* [videos], for the paired difference */
    int *matched;
} variant_result;

static int popcount3(int bits)
{
    return bits < 0 ? 0 : (bits & 1) + ((bits >> 1) & 1) + ((bits >> 2) & 1);
}

/* The uniform baseline: every layer keeping `blocks` key blocks, quant as given. */
static int make_uniform(sla2_context *ctx, sla2_model *model, const sla2_model_info *info, int64_t blocks,
                        int64_t num_k_blocks, sla2_quant_mode quant, int block_q, sla2_pipeline **out)
{
    return sla2_pipeline_create(ctx, model, NULL, out) == SLA2_OK &&
           calib_set_layer_blocks(*out, ctx, info, NULL, blocks, num_k_blocks, quant, block_q);
}

/* Matched attribute bits of a video against its prompt; -1 when it cannot
 * be judged (no prompt, or a latent-space model). */
static int adherence(const sla2_model_info *info, const calib_input *in, const float *video)
{
    sla2_video_analysis a;
    if (!in->prompt || !info->pixel_space || info->channels != 3 ||
        sla2_video_analyse(video, info->frames, info->height, info->width, &a) != SLA2_OK)
        return -1;
    return sla2_prompt_matches(in->prompt, &a);
}

/* Calibrated minus the matched uniform baseline, video by video: the same
 * prompt, seed and noise, so the pair's difference is what calibration
 * changed (the spread between prompts cancels). */
static void print_paired(const variant_result *cal, const variant_result *uni, const char *uni_name, int judged)
{
    int n = cal->count, closer = 0, gained = 0, lost = 0;
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) {
        double d = cal->errors[i] - uni->errors[i];
        sum += d, sq += d * d, closer += d < 0;
        gained += cal->matched[i] > uni->matched[i], lost += cal->matched[i] < uni->matched[i];
    }
    double mean = sum / n, var = n > 1 ? (sq - n * mean * mean) / (n - 1) : 0;
    printf("paired calibrated - %s over %d video(s): video rel-L2 %+.4g +- %.2g (standard error); calibrated closer "
           "in %d of %d",
           uni_name, n, mean, n > 1 ? sqrt(fmax(var, 0) / n) : 0.0, closer, n);
    if (judged)
        printf("; adherence %+d attribute(s) (%d video(s) gain, %d lose)",
               (int)lround(cal->matched_sum - uni->matched_sum), gained, lost);
    printf("\n");
}

int calib_compare(const calib_options *opt, sla2_context *ctx, sla2_model *model, const sla2_model_info *info,
                  const calib_table *t, const calib_choice *choices)
{
    const calib_input *inputs = opt->compare_inputs ? opt->compare_inputs : opt->inputs;
    int num_inputs = opt->compare_inputs ? opt->num_compare_inputs : opt->num_inputs;
    const int64_t *seeds = opt->compare_seeds ? opt->compare_seeds : opt->seeds;
    int num_seeds = opt->compare_seeds ? opt->num_compare_seeds : opt->num_seeds;
    /* equal mean kept share: the calibrated mean number of kept blocks when it
     * is a whole number, else rounded up (the uniform run keeps at least as much) */
    int64_t kept_total = 0;
    for (int l = 0; l < info->num_layers; l++)
        kept_total += calib_choice_blocks(t, &choices[l]);
    int64_t uniform_blocks = (kept_total + info->num_layers - 1) / info->num_layers;
    float uniform_topk = calib_blocks_topk(uniform_blocks, t->num_k_blocks, info->tokens);
    double calibrated_share = (double)kept_total / info->num_layers / (double)t->num_k_blocks;
    double uniform_share = (double)uniform_blocks / (double)t->num_k_blocks;
    printf("\ncompare: %d prompt(s) x %d seed(s), %d steps; calibrated mean kept share %.2f%% (%.4g of %lld key "
           "blocks), uniform topk %.4g (%lld of %lld key blocks, %.2f%%)%s\n",
           num_inputs, num_seeds, opt->steps, 100.0 * calibrated_share,
           (double)kept_total / info->num_layers, (long long)t->num_k_blocks, (double)uniform_topk,
           (long long)uniform_blocks, (long long)t->num_k_blocks, 100.0 * uniform_share,
           uniform_blocks * info->num_layers == kept_total ? ", equal" : ", rounded up to whole blocks");

    sla2_quant_mode matched_mode = opt->kept_share > 0 ? t->modes[0] : SLA2_QUANT_INT8_FP8;
    int num_variants = matched_mode == SLA2_QUANT_NONE ? 2 : MAX_VARIANTS; /* no second "uniform none" */
    char matched_name[32];
    snprintf(matched_name, sizeof matched_name, "uniform %s", sla2_quant_mode_name(matched_mode));
    const char *names[MAX_VARIANTS] = {"calibrated", matched_name, "uniform none"};
    const double shares[MAX_VARIANTS] = {calibrated_share, uniform_share, uniform_share};
    sla2_pipeline *dense = NULL, *pipes[MAX_VARIANTS] = {0};
    size_t elems = calib_video_elems(info);
    size_t videos = (size_t)num_inputs * (size_t)num_seeds;
    float *ref = malloc(elems * sizeof *ref), *video = malloc(elems * sizeof *video);
    variant_result res[MAX_VARIANTS] = {{0}};
    double dense_matched = 0;
    int dense_full = 0, judged = 1, ok = 0, have_memory = ref && video;
    for (int v = 0; v < num_variants; v++) {
        res[v].errors = malloc(videos * sizeof *res[v].errors);
        res[v].matched = malloc(videos * sizeof *res[v].matched);
        have_memory = have_memory && res[v].errors && res[v].matched;
    }
    if (!have_memory) {
        fprintf(stderr, CALIB_TOOL ": --compare: out of memory\n");
        goto done;
    }
    if (sla2_pipeline_create(ctx, model, NULL, &dense) != SLA2_OK ||
        sla2_pipeline_create(ctx, model, opt->out, &pipes[VARIANT_CALIBRATED]) != SLA2_OK ||
        !make_uniform(ctx, model, info, uniform_blocks, t->num_k_blocks, matched_mode, opt->block_q,
                      &pipes[VARIANT_UNIFORM_MATCHED]) ||
        (num_variants > VARIANT_UNIFORM_NONE &&
         !make_uniform(ctx, model, info, uniform_blocks, t->num_k_blocks, SLA2_QUANT_NONE, opt->block_q,
                       &pipes[VARIANT_UNIFORM_NONE]))) {
        fprintf(stderr, CALIB_TOOL ": --compare: %s\n", sla2_context_last_error(ctx));
        goto done;
    }
    sla2_pipeline_set_dense(dense, 1);
    calib_progress bar;
    calib_progress_start(&bar, !opt->quiet, (long)videos * (num_variants + 1) * opt->steps, 0);
    printf("%-32s %5s  %-18s %12s  %s\n", "prompt", "seed", "attention", "video rel-L2", "adherence (of 3)");
    for (int i = 0; i < num_inputs; i++)
        for (int s = 0; s < num_seeds; s++) {
            const char *label = inputs[i].prompt ? inputs[i].prompt : inputs[i].embedding;
            if (!calib_generate_video(dense, opt, &inputs[i], seeds[s], ref, elems, &bar))
                goto fail;
            int dense_bits = adherence(info, &inputs[i], ref);
            judged &= dense_bits >= 0;
            dense_matched += popcount3(dense_bits), dense_full += dense_bits == 7;
            calib_progress_draw(&bar, 1);
            if (bar.enabled)
                fprintf(stderr, "\r\033[K");
            printf("%-32.32s %5lld  %-18s %12s  %d\n", label, (long long)seeds[s], "dense", "0", popcount3(dense_bits));
            for (int v = 0; v < num_variants; v++) {
                if (!calib_generate_video(pipes[v], opt, &inputs[i], seeds[s], video, elems, &bar))
                    goto fail;
                int bits = adherence(info, &inputs[i], video);
                double e = calib_video_rel_l2(video, ref, elems);
                res[v].errors[res[v].count] = e, res[v].matched[res[v].count] = popcount3(bits);
                res[v].err_sum += e, res[v].matched_sum += popcount3(bits), res[v].full_matches += bits == 7;
                res[v].count++;
                if (bar.enabled)
                    fprintf(stderr, "\r\033[K");
                printf("%-32s %5s  %-18s %12.4g  %d\n", "", "", names[v], e, popcount3(bits));
            }
            fflush(stdout);
        }
    calib_progress_finish(&bar);
    int n = res[0].count;
    printf("\nsummary over %d video(s)     kept   mean video rel-L2 vs dense   mean attributes matched   all 3 "
           "matched\n", n);
    printf("  %-22s %7.2f%% %28s   %23.2f   %13d\n", "dense", 100.0, "0", dense_matched / n, dense_full);
    for (int v = 0; v < num_variants; v++)
        printf("  %-22s %7.2f%% %28.4g   %23.2f   %13d\n", names[v], 100.0 * shares[v], res[v].err_sum / n,
               res[v].matched_sum / n, res[v].full_matches);
    print_paired(&res[VARIANT_CALIBRATED], &res[VARIANT_UNIFORM_MATCHED], matched_name, judged);
    if (!judged)
        printf("  (adherence needs prompts and an RGB pixel-space model; not judged here)\n");
    ok = 1;
    goto done;
fail:
    if (bar.enabled)
        fprintf(stderr, "\n");
    fprintf(stderr, CALIB_TOOL ": --compare: %s\n", sla2_context_last_error(ctx));
done:
    sla2_pipeline_free(dense);
    for (int v = 0; v < MAX_VARIANTS; v++)
        sla2_pipeline_free(pipes[v]), free(res[v].errors), free(res[v].matched);
    free(ref), free(video);
    return ok;
}
