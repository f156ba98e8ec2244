/* Whole videos for --compare and --refine (see calib_video.h). */
#include "calib_video.h"

#include <math.h>
#include <stdio.h>

size_t calib_video_elems(const sla2_model_info *info)
{
    return (size_t)info->channels * info->frames * info->height * info->width;
}

typedef struct step_timer {
    calib_progress *bar;
    double start_ms;
} step_timer;

static int on_step(void *user, const sla2_step_info *info)
{
    step_timer *timer = user;
    double now = calib_now_ms();
    calib_progress_step(timer->bar, now - timer->start_ms);
    timer->start_ms = now;
    (void)info;
    return 0;
}

int calib_generate_video(sla2_pipeline *pipe, const calib_options *opt, const calib_input *in, int64_t seed,
                         float *video, size_t elems, calib_progress *bar)
{
    step_timer timer = {.bar = bar, .start_ms = calib_now_ms()};
    sla2_generate_options g;
    sla2_generate_options_default(&g);
    g.prompt = in->prompt, g.text_embedding_path = in->embedding, g.seed = seed, g.steps = opt->steps;
    g.guidance = opt->guidance, g.shift = opt->shift, g.sampler = opt->sampler;
    if (bar)
        g.on_step = on_step, g.user = &timer;
    return sla2_pipeline_generate(pipe, &g, video, elems) == SLA2_OK;
}

double calib_video_rel_l2(const float *video, const float *ref, size_t elems)
{
    double diff = 0, norm = 0;
    for (size_t i = 0; i < elems; i++) {
        double e = (double)video[i] - ref[i];
        diff += e * e, norm += (double)ref[i] * ref[i];
    }
    return sqrt(diff / (norm + 1e-300));
}

float calib_blocks_topk(int64_t blocks, int64_t num_k_blocks, int64_t tokens)
{
    /* The centre of the rounding interval, so the YAML's 6 significant
     * digits (relative error <= 5e-6) still give `blocks` while blocks <
     * 10^5: the written value is off by at most 5e-6 x blocks < 0.5 blocks. */
    float topk = (float)((double)blocks / (double)num_k_blocks);
    return sla2_attention_kept_blocks(tokens, 64, topk) == blocks ? topk : -1.0f;
}

int calib_set_layer_blocks(sla2_pipeline *pipe, sla2_context *ctx, const sla2_model_info *info, const int64_t *blocks,
                           int64_t uniform_blocks, int64_t num_k_blocks, sla2_quant_mode quant, int block_q)
{
    for (int l = 0; l < info->num_layers; l++) {
        int64_t b = blocks ? blocks[l] : uniform_blocks;
        sla2_layer_attention la = {.topk = calib_blocks_topk(b, num_k_blocks, info->tokens), .quant = quant,
                                   .block_q = block_q, .block_k = 64};
        if (la.topk < 0) {
            fprintf(stderr, CALIB_TOOL ": layer %d: no topk keeps exactly %lld of %lld key blocks\n", l,
                    (long long)b, (long long)num_k_blocks);
            return 0;
        }
        if (sla2_pipeline_set_layer(pipe, l, &la) != SLA2_OK) {
            fprintf(stderr, CALIB_TOOL ": layer %d: %s\n", l, sla2_context_last_error(ctx));
            return 0;
        }
    }
    return 1;
}
