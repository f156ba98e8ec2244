/* The measuring runs (see calib_measure.h). */
#include "calib_measure.h"

#include "calib_progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAMPLED 1000

typedef struct measure {
    const calib_options *opt;
    calib_table *table;
    sla2_context *eval_ctx; /* its own context: the pipeline's stays untouched mid-forward */
    int sampled[MAX_SAMPLED + 2]; /* 1 where a step is sampled */
    int last_sampled;
    int64_t H, L, D;
    float *q, *k, *v, *dense, *cand;
    double *head_badness;       /* [H] */
    double budget;              /* as badness */
    calib_progress progress;
    double eval_ms_this_step, step_start_ms;
    int learned_alpha;
    int failed;                 /* an evaluation failed: message printed, generation cancelled */
    volatile int cancel;
} measure;

/* Copies a [1, H, L, D] F32 view (any strides) into contiguous [H][L][D]. */
static void copy_bhld(const sla2_tensor *t, float *dst)
{
    const float *src = t->data;
    for (int64_t h = 0; h < t->shape[1]; h++)
        for (int64_t l = 0; l < t->shape[2]; l++) {
            const float *row = src + h * t->stride[1] + l * t->stride[2];
            float *out = dst + (h * t->shape[2] + l) * t->shape[3];
            for (int64_t d = 0; d < t->shape[3]; d++)
                out[d] = row[d * t->stride[3]];
        }
}

/* Badness of cand against dense, for the whole layer and per head. */
static double compare_outputs(const measure *m, const float *cand, const float *dense, double *head_badness)
{
    size_t per_head = (size_t)(m->L * m->D);
    double diff_all = 0, ref_all = 0, dot_all = 0, cand_all = 0;
    for (int64_t h = 0; h < m->H; h++) {
        double diff = 0, ref = 0, dot = 0, sq = 0;
        const float *c = cand + (size_t)h * per_head, *d = dense + (size_t)h * per_head;
        for (size_t i = 0; i < per_head; i++) {
            double e = (double)c[i] - (double)d[i];
            diff += e * e, ref += (double)d[i] * d[i], dot += (double)c[i] * d[i], sq += (double)c[i] * c[i];
        }
        head_badness[h] = m->opt->metric == CALIB_METRIC_COSINE ? 1.0 - dot / sqrt(ref * sq + 1e-300)
                                                                : sqrt(diff / (ref + 1e-300));
        diff_all += diff, ref_all += ref, dot_all += dot, cand_all += sq;
    }
    return m->opt->metric == CALIB_METRIC_COSINE ? 1.0 - dot_all / sqrt(ref_all * cand_all + 1e-300)
                                                 : sqrt(diff_all / (ref_all + 1e-300));
}

static int run_operator(measure *m, float topk, sla2_quant_mode quant, const sla2_attention_params *params,
                        float *out)
{
    sla2_attention_config cfg;
    sla2_attention_config_default(&cfg);
    cfg.topk = topk, cfg.quant = quant, cfg.block_q = m->opt->block_q, cfg.block_k = 64;
    sla2_tensor q = sla2_tensor_bhld(m->q, SLA2_DTYPE_F32, 1, m->H, m->L, m->D);
    sla2_tensor k = sla2_tensor_bhld(m->k, SLA2_DTYPE_F32, 1, m->H, m->L, m->D);
    sla2_tensor v = sla2_tensor_bhld(m->v, SLA2_DTYPE_F32, 1, m->H, m->L, m->D);
    sla2_tensor o = sla2_tensor_bhld(out, SLA2_DTYPE_F32, 1, m->H, m->L, m->D);
    for (size_t i = 0, n = (size_t)(m->H * m->L * m->D); i < n; i++)
        out[i] = NAN; /* an element the operator leaves unwritten shows as NaN, never as a small error */
    sla2_status s = sla2_attention_forward(m->eval_ctx, &cfg, params, &q, &k, &v, &o, NULL);
    if (s != SLA2_OK) {
        fprintf(stderr, "\n" CALIB_TOOL ": attention (topk %g, %s): %s\n", (double)topk, sla2_quant_mode_name(quant),
                sla2_context_last_error(m->eval_ctx));
        return 0;
    }
    return 1;
}

static int router_is_per_head(const sla2_attention_params *p)
{
    return p && p->router_q && p->router_q->ndim == 3;
}

/* Whether a candidate has already missed the budget in some sample (it can
 * only get worse: selection looks at the worst sample). */
static int known_to_fail(const measure *m, int layer, int ti, int mi)
{
    const calib_table *t = m->table;
    size_t i = calib_table_index(t, layer, ti, mi);
    if (!t->count[i])
        return 0;
    double w = t->worst[i];
    for (int h = 0; m->opt->per_head && h < t->num_heads; h++)
        w = fmax(w, t->head_worst[i * (size_t)t->num_heads + (size_t)h]);
    return !(w <= m->budget);
}

/* Candidates of one layer at one sampled step, from the sparsest up. A
 * candidate that has already missed the budget in an earlier sample is not
 * evaluated again (unless --full-sweep): selection looks at the worst
 * sample, so it cannot come back, and every candidate that can still be
 * chosen is measured on every sample, so the choice is exact. (The error
 * need not fall monotonically with topk: with a learned alpha the linear
 * branch's share keeps a floor under it, so stopping at the first topk that
 * meets the budget would not be safe.) topk values that keep the same number
 * of key blocks give the same output: computed once, recorded for each. */
static int evaluate_layer(measure *m, int layer, const sla2_attention_params *params)
{
    calib_table *t = m->table;
    if (!run_operator(m, 1.0f, SLA2_QUANT_NONE, NULL, m->dense))
        return 0;
    for (int ti = 0; ti < t->num_topks;) {
        int group_end = ti + 1;
        while (group_end < t->num_topks && t->kept[group_end] == t->kept[ti])
            group_end++;
        for (int mi = 0; mi < t->num_modes; mi++) {
            if (!m->opt->full_sweep && known_to_fail(m, layer, ti, mi))
                continue;
            if (!run_operator(m, t->topks[ti], t->modes[mi], params, m->cand))
                return 0;
            double badness = compare_outputs(m, m->cand, m->dense, m->head_badness);
            for (int tj = ti; tj < group_end; tj++)
                calib_table_add(t, layer, tj, mi, badness, m->head_badness);
        }
        ti = group_end;
    }
    return 1;
}

static void on_attention(void *user, int step, int layer, const sla2_tensor *q, const sla2_tensor *k,
                         const sla2_tensor *v, const sla2_attention_params *params)
{
    measure *m = user;
    if (m->failed)
        return;
    /* checked on the very first layer, before any time is spent */
    if (m->opt->per_head && !router_is_per_head(params)) {
        fprintf(stderr, "\n" CALIB_TOOL ": --per-head: this checkpoint's router is %s, so a per-head choice has "
                        "nothing to act on; leave --per-head out\n",
                params && params->router_q ? "shared by the heads ([D, D])" : "absent (identity router)");
        m->failed = 1, m->cancel = 1;
        return;
    }
    if (step > MAX_SAMPLED || !m->sampled[step])
        return;
    m->learned_alpha |= params && (params->alpha || params->alpha_w);
    double start = calib_now_ms();
    copy_bhld(q, m->q), copy_bhld(k, m->k), copy_bhld(v, m->v);
    if (!evaluate_layer(m, layer, params)) {
        m->failed = 1, m->cancel = 1;
        return;
    }
    double ms = calib_now_ms() - start;
    m->eval_ms_this_step += ms;
    calib_progress_eval(&m->progress, ms);
}

static int on_step(void *user, const sla2_step_info *info)
{
    measure *m = user;
    double ms = calib_now_ms() - m->step_start_ms - m->eval_ms_this_step;
    calib_progress_step(&m->progress, ms > 0 ? ms : 0);
    m->eval_ms_this_step = 0;
    m->step_start_ms = calib_now_ms();
    return info->step >= m->last_sampled; /* nothing after the last sampled step is needed */
}

static int alloc_buffers(measure *m)
{
    size_t n = (size_t)(m->H * m->L * m->D);
    m->q = malloc(n * sizeof(float)), m->k = malloc(n * sizeof(float)), m->v = malloc(n * sizeof(float));
    m->dense = malloc(n * sizeof(float)), m->cand = malloc(n * sizeof(float));
    m->head_badness = malloc((size_t)m->H * sizeof(double));
    return m->q && m->k && m->v && m->dense && m->cand && m->head_badness;
}

static void free_buffers(measure *m)
{
    free(m->q), free(m->k), free(m->v), free(m->dense), free(m->cand), free(m->head_badness);
}

int calib_measure(const calib_options *opt, sla2_context *ctx, sla2_model *model, const sla2_model_info *info,
                  calib_table *table, calib_run_report *report)
{
    measure m = {.opt = opt, .table = table, .H = info->num_heads, .L = info->tokens, .D = info->head_dim,
                 .budget = calib_badness_budget(opt)};
    int steps[MAX_SAMPLED];
    int num_sampled = calib_sample_steps(opt, steps, MAX_SAMPLED);
    for (int i = 0; i < num_sampled; i++)
        m.sampled[steps[i]] = 1, m.last_sampled = steps[i];
    int ok = 0;
    sla2_pipeline *pipe = NULL;
    float *video = NULL;
    size_t video_elems = (size_t)info->channels * info->frames * info->height * info->width;
    sla2_context_options copt;
    sla2_context_options_default(&copt);
    copt.backend = SLA2_BACKEND_CPU;
    char err[512];
    if (sla2_context_create(&copt, &m.eval_ctx, err, sizeof err) != SLA2_OK) {
        fprintf(stderr, CALIB_TOOL ": %s\n", err);
        return 0;
    }
    if (!alloc_buffers(&m) || !(video = malloc(video_elems * sizeof *video))) {
        fprintf(stderr, CALIB_TOOL ": out of memory for the layer buffers\n");
        goto done;
    }
    if (sla2_pipeline_create(ctx, model, NULL, &pipe) != SLA2_OK) {
        fprintf(stderr, CALIB_TOOL ": %s\n", sla2_context_last_error(ctx));
        goto done;
    }
    sla2_pipeline_set_dense(pipe, 1); /* the inputs each layer sees on the exact trajectory */
    long runs = (long)opt->num_inputs * opt->num_seeds;
    calib_progress_start(&m.progress, !opt->quiet, runs * m.last_sampled, runs * num_sampled * info->num_layers);
    for (int i = 0; i < opt->num_inputs; i++) {
        for (int s = 0; s < opt->num_seeds; s++) {
            sla2_generate_options g;
            sla2_generate_options_default(&g);
            g.prompt = opt->inputs[i].prompt, g.text_embedding_path = opt->inputs[i].embedding;
            g.seed = opt->seeds[s], g.steps = opt->steps, g.guidance = opt->guidance, g.shift = opt->shift;
            g.sampler = opt->sampler;
            g.on_step = on_step, g.on_attention = on_attention, g.user = &m, g.cancel = &m.cancel;
            m.step_start_ms = calib_now_ms(), m.eval_ms_this_step = 0;
            sla2_status st = sla2_pipeline_generate(pipe, &g, video, video_elems);
            if (m.failed)
                goto done;
            /* cancelled by on_step after the last sampled step: that is the plan */
            if (st != SLA2_OK && st != SLA2_ERR_CANCELLED) {
                if (!opt->quiet)
                    fprintf(stderr, "\n");
                fprintf(stderr, CALIB_TOOL ": input %d (%s), seed %lld: %s\n", i + 1,
                        g.prompt ? g.prompt : g.text_embedding_path, (long long)g.seed,
                        sla2_context_last_error(ctx));
                goto done;
            }
        }
    }
    calib_progress_finish(&m.progress);
    *report = (calib_run_report){m.progress.step_ms, m.progress.eval_ms, m.progress.steps_done, m.progress.evals_done,
                                m.learned_alpha};
    ok = 1;
done:
    sla2_pipeline_free(pipe);
    free(video);
    free_buffers(&m);
    sla2_context_free(m.eval_ctx);
    return ok;
}
