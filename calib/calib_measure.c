/* The measuring runs (see calib_measure.h). */
#include "calib_measure.h"

#include "calib_progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAMPLED 1000

/* One sampled (input, seed, step): the step's input and the all-dense
 * prediction from it. */
typedef struct sample {
    int input, step;
    float *x_t, *dense;
} sample;

typedef struct measure {
    const calib_options *opt;
    calib_table *table;
    sla2_context *ctx;
    sla2_pipeline *pipe;
    size_t elems;
    sample *samples;
    int num_samples, num_sampled_steps;
    int sample_index[MAX_SAMPLED + 1]; /* step -> its index among the sampled steps, -1 if not sampled */
    int last_sampled;
    int capture_base;                  /* samples of the running generation start here */
    float *prediction;
    int first_sample;                  /* the sample that missed last: tried first, it is likely to miss again */
    double budget;                     /* as badness */
    calib_progress progress;
    double step_start_ms;
    long references, evals;
} measure;

static double badness(const measure *m, const float *cand, const float *dense)
{
    double diff = 0, ref = 0, dot = 0, sq = 0;
    for (size_t i = 0; i < m->elems; i++) {
        double e = (double)cand[i] - (double)dense[i];
        diff += e * e, ref += (double)dense[i] * dense[i], dot += (double)cand[i] * dense[i];
        sq += (double)cand[i] * cand[i];
    }
    return m->opt->metric == CALIB_METRIC_COSINE ? 1.0 - dot / sqrt(ref * sq + 1e-300) : sqrt(diff / (ref + 1e-300));
}

/* The conditional prediction of sample s under the pipeline's settings. */
static int predict(measure *m, const sample *s, float *out)
{
    const calib_input *in = &m->opt->inputs[s->input];
    sla2_generate_options g;
    sla2_generate_options_default(&g);
    g.prompt = in->prompt, g.text_embedding_path = in->embedding;
    g.steps = m->opt->steps, g.shift = m->opt->shift, g.guidance = 1.0;
    for (size_t i = 0; i < m->elems; i++)
        out[i] = NAN; /* an element left unwritten shows as NaN, never as a small error */
    if (sla2_pipeline_predict(m->pipe, &g, s->step, s->x_t, out, m->elems) != SLA2_OK) {
        fprintf(stderr, "\n" CALIB_TOOL ": prediction at step %d of '%s': %s\n", s->step,
                in->prompt ? in->prompt : in->embedding, sla2_context_last_error(m->ctx));
        return 0;
    }
    return 1;
}

static int on_step(void *user, const sla2_step_info *info)
{
    measure *m = user;
    int k = info->step <= MAX_SAMPLED ? m->sample_index[info->step] : -1;
    if (k >= 0)
        memcpy(m->samples[m->capture_base + k].x_t, info->x_t, m->elems * sizeof(float));
    double now = calib_now_ms();
    calib_progress_step(&m->progress, now - m->step_start_ms);
    m->step_start_ms = now;
    return info->step >= m->last_sampled; /* nothing after the last sampled step is needed */
}

/* The dense trajectories: x_t at every sampled step of every (input, seed). */
static int capture_inputs(measure *m)
{
    const calib_options *opt = m->opt;
    sla2_pipeline_set_dense(m->pipe, 1);
    float *video = malloc(m->elems * sizeof *video);
    int ok = video != NULL;
    if (!ok)
        fprintf(stderr, CALIB_TOOL ": out of memory\n");
    for (int i = 0; ok && i < opt->num_inputs; i++)
        for (int s = 0; ok && s < opt->num_seeds; s++) {
            sla2_generate_options g;
            sla2_generate_options_default(&g);
            g.prompt = opt->inputs[i].prompt, g.text_embedding_path = opt->inputs[i].embedding;
            g.seed = opt->seeds[s], g.steps = opt->steps, g.guidance = opt->guidance, g.shift = opt->shift;
            g.sampler = opt->sampler;
            g.on_step = on_step, g.user = m;
            m->capture_base = (i * opt->num_seeds + s) * m->num_sampled_steps;
            m->step_start_ms = calib_now_ms();
            sla2_status st = sla2_pipeline_generate(m->pipe, &g, video, m->elems);
            /* cancelled by on_step after the last sampled step: that is the plan */
            if (st != SLA2_OK && st != SLA2_ERR_CANCELLED) {
                fprintf(stderr, "\n" CALIB_TOOL ": input %d (%s), seed %lld: %s\n", i + 1,
                        g.prompt ? g.prompt : g.text_embedding_path, (long long)g.seed,
                        sla2_context_last_error(m->ctx));
                ok = 0;
            }
        }
    free(video);
    sla2_pipeline_set_dense(m->pipe, 0);
    return ok;
}

/* Measures candidate (ti, mi) of the layer now under test on the samples,
 * recording it for every topk index in [ti, group_end) (they keep the same
 * key blocks, so the output is the same). Stops at the first sample that
 * misses the budget unless --full-sweep: selection looks at the worst
 * sample, so the candidate is out. Returns 1 if every sample met the
 * budget, 0 if one missed, -1 on failure. */
static int measure_candidate(measure *m, int layer, int ti, int group_end, int mi)
{
    calib_table *t = m->table;
    sla2_layer_attention la = {.topk = t->topks[ti], .quant = t->modes[mi], .block_q = m->opt->block_q,
                               .block_k = 64};
    if (sla2_pipeline_set_layer(m->pipe, layer, &la) != SLA2_OK) {
        fprintf(stderr, "\n" CALIB_TOOL ": layer %d: %s\n", layer, sla2_context_last_error(m->ctx));
        return -1;
    }
    int met = 1;
    for (int j = 0; j < m->num_samples; j++) {
        int k = (m->first_sample + j) % m->num_samples;
        if (!predict(m, &m->samples[k], m->prediction))
            return -1;
        m->evals++;
        double b = badness(m, m->prediction, m->samples[k].dense);
        for (int tj = ti; tj < group_end; tj++)
            calib_table_add(t, layer, tj, mi, b, NULL);
        if (!(b <= m->budget)) {
            met = 0, m->first_sample = k;
            if (!m->opt->full_sweep)
                break;
        }
    }
    return met;
}

static int group_end_of(const calib_table *t, int ti)
{
    int end = ti + 1;
    while (end < t->num_topks && t->kept[end] == t->kept[ti])
        end++;
    return end;
}

/* One layer: topk from the sparsest up in the most accurate mode (modes
 * are sorted cheapest first) until one meets the budget on every sample:
 * that is the smallest topk any mode could meet it with, as a cheaper mode
 * is never more accurate. Then the cheaper modes at that topk, cheapest
 * first. --full-sweep measures every candidate on every sample instead. */
static int measure_layer(measure *m, int layer)
{
    const calib_table *t = m->table;
    int accurate = t->num_modes - 1, chosen = -1;
    for (int ti = 0; ti < t->num_topks && (chosen < 0 || m->opt->full_sweep);) {
        int end = group_end_of(t, ti);
        for (int mi = m->opt->full_sweep ? 0 : accurate; mi <= accurate; mi++) {
            int met = measure_candidate(m, layer, ti, end, mi);
            if (met < 0)
                return 0;
            if (met && mi == accurate && chosen < 0)
                chosen = ti;
        }
        ti = end;
    }
    if (chosen >= 0 && !m->opt->full_sweep)
        for (int mi = 0; mi < accurate; mi++) {
            int met = measure_candidate(m, layer, chosen, group_end_of(t, chosen), mi);
            if (met < 0)
                return 0;
            if (met)
                break;
        }
    return 1;
}

static int alloc_samples(measure *m, int num_sampled)
{
    const calib_options *opt = m->opt;
    m->num_sampled_steps = num_sampled;
    m->num_samples = opt->num_inputs * opt->num_seeds * num_sampled;
    m->samples = calloc((size_t)m->num_samples, sizeof *m->samples);
    m->prediction = malloc(m->elems * sizeof(float));
    if (!m->samples || !m->prediction)
        return 0;
    for (int n = 0; n < m->num_samples; n++) {
        sample *s = &m->samples[n];
        s->input = n / num_sampled / opt->num_seeds;
        s->x_t = malloc(m->elems * sizeof(float));
        s->dense = malloc(m->elems * sizeof(float));
        if (!s->x_t || !s->dense)
            return 0;
    }
    return 1;
}

static void free_samples(measure *m)
{
    for (int n = 0; m->samples && n < m->num_samples; n++)
        free(m->samples[n].x_t), free(m->samples[n].dense);
    free(m->samples), free(m->prediction);
}

int calib_measure(const calib_options *opt, sla2_context *ctx, sla2_model *model, const sla2_model_info *info,
                  calib_table *table, calib_run_report *report)
{
    measure m = {.opt = opt, .table = table, .ctx = ctx, .budget = calib_badness_budget(opt),
                 .elems = (size_t)info->channels * info->frames * info->height * info->width};
    int steps[MAX_SAMPLED];
    int num_sampled = calib_sample_steps(opt, steps, MAX_SAMPLED);
    for (int s = 0; s <= MAX_SAMPLED; s++)
        m.sample_index[s] = -1;
    for (int i = 0; i < num_sampled; i++)
        m.sample_index[steps[i]] = i, m.last_sampled = steps[i];
    int ok = 0;
    if (!alloc_samples(&m, num_sampled)) {
        fprintf(stderr, CALIB_TOOL ": out of memory for %d sampled videos\n", opt->num_inputs * opt->num_seeds *
                num_sampled);
        goto done;
    }
    for (int n = 0; n < m.num_samples; n++)
        m.samples[n].step = steps[n % num_sampled];
    if (sla2_pipeline_create(ctx, model, NULL, &m.pipe) != SLA2_OK) {
        fprintf(stderr, CALIB_TOOL ": %s\n", sla2_context_last_error(ctx));
        goto done;
    }
    long runs = (long)opt->num_inputs * opt->num_seeds;
    calib_progress_start(&m.progress, !opt->quiet, runs * m.last_sampled + m.num_samples, info->num_layers);
    if (!capture_inputs(&m))
        goto done;
    for (int l = 0; l < info->num_layers; l++)
        sla2_pipeline_set_layer_dense(m.pipe, l, 1);
    for (int n = 0; n < m.num_samples; n++) { /* the references: every layer exact */
        double start = calib_now_ms();
        if (!predict(&m, &m.samples[n], m.samples[n].dense))
            goto done;
        m.references++;
        calib_progress_step(&m.progress, calib_now_ms() - start);
    }
    for (int l = 0; l < info->num_layers; l++) {
        double start = calib_now_ms();
        sla2_pipeline_set_layer_dense(m.pipe, l, 0);
        if (!measure_layer(&m, l))
            goto done;
        sla2_pipeline_set_layer_dense(m.pipe, l, 1);
        calib_progress_eval(&m.progress, calib_now_ms() - start);
    }
    calib_progress_finish(&m.progress);
    *report = (calib_run_report){m.progress.step_ms, m.progress.eval_ms, m.progress.steps_done - m.references,
                                m.references, m.evals};
    ok = 1;
done:
    sla2_pipeline_free(m.pipe);
    free_samples(&m);
    return ok;
}
