/* Whole videos for --compare and --refine: generation with the calibration's
 * sampling, per-layer settings from key-block counts, and a video's error
 * against the dense one. */
#ifndef SLA2_CALIB_VIDEO_H
#define SLA2_CALIB_VIDEO_H

#include "calib.h"
#include "calib_progress.h"

#include <stddef.h>

/* Floats in one video of the model ([C][F][H][W]). */
size_t calib_video_elems(const sla2_model_info *info);

/* Generates the video of (in, seed) with pipe at the calibration's
 * sampling (opt's steps, guidance, shift, sampler) into video [elems];
 * each step advances bar (may be NULL). Returns 1, or 0 (the context's
 * last error says why). */
int calib_generate_video(sla2_pipeline *pipe, const calib_options *opt, const calib_input *in, int64_t seed,
                         float *video, size_t elems, calib_progress *bar);

/* ||video - ref|| / ||ref|| over all elements. */
double calib_video_rel_l2(const float *video, const float *ref, size_t elems);

/* The topk that keeps exactly `blocks` of the num_k_blocks key blocks of a
 * sequence of `tokens` (block_k 64), by the operator's own count
 * (sla2_attention_kept_blocks, which rounds topk x num_k_blocks to the
 * nearest): blocks / num_k_blocks, the middle of the interval that rounds to
 * `blocks`. Returns it, or a negative value if the operator disagrees
 * (blocks outside 1..num_k_blocks). */
float calib_blocks_topk(int64_t blocks, int64_t num_k_blocks, int64_t tokens);

/* Sets every layer l of pipe to keep blocks[l] key blocks (a NULL blocks:
 * uniform_blocks in every layer) in mode quant, block_q as given, block_k
 * 64. Returns 1, or 0 (message printed). */
int calib_set_layer_blocks(sla2_pipeline *pipe, sla2_context *ctx, const sla2_model_info *info, const int64_t *blocks,
                           int64_t uniform_blocks, int64_t num_k_blocks, sla2_quant_mode quant, int block_q);

#endif
