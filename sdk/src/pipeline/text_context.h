/* The conditioning context [text_len][text_dim]: a prompt through the
 * model's built-in vocabulary, or a precomputed embedding file; zero-padded
 * to text_len as Wan does before its text-embedding MLP. */
#ifndef SLA2_TEXT_CONTEXT_H
#define SLA2_TEXT_CONTEXT_H

#include "pipeline/model.h"

sla2_status text_context_from_prompt(sla2_context *ctx, const sla2_model *model, const char *prompt, float *out);
sla2_status text_context_from_file(sla2_context *ctx, const sla2_model *model, const char *path, float *out);

#endif
