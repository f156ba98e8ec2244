/* sla2-calib: shared types. The tool is built against the public API only
 * (<sla2/...>), like any outside user of the SDK. */
#ifndef SLA2_CALIB_H
#define SLA2_CALIB_H

#include <sla2/pipeline.h>
#include <sla2/sla2.h>

#include <stddef.h>
#include <stdint.h>

#define CALIB_TOOL "sla2-calib"
#define CALIB_MAX_MODES 3

typedef enum calib_metric {
    CALIB_METRIC_REL_L2 = 0, /* ||O - O_dense|| / ||O_dense||, budget: worst <= max */
    CALIB_METRIC_COSINE      /* cos(O, O_dense), budget: worst >= min */
} calib_metric;

/* One calibration input: a prompt (models with a vocabulary) or a text
 * embedding file (safetensors with "context"). Exactly one is set. */
typedef struct calib_input {
    const char *prompt;
    const char *embedding;
} calib_input;

typedef struct calib_options {
    const char *model, *weights, *out, *plot, *prompts_file;
    calib_input *inputs;
    int num_inputs;
    calib_input *compare_inputs; /* --compare-prompts; NULL: the calibration inputs */
    int num_compare_inputs;
    int64_t *seeds;
    int num_seeds;
    int64_t *compare_seeds;      /* --compare-seeds; NULL: the calibration seeds */
    int num_compare_seeds;
    int steps;              /* sampler steps of each calibration run */
    int sample_count;       /* --sample-steps N: N steps spread over the schedule */
    int *sample_at;         /* --sample-at a,b,c: explicit steps (1-based); NULL: spread */
    int num_sample_at;
    calib_metric metric;
    double budget;          /* max rel-L2, or min cosine (not used with kept_share) */
    double kept_share;      /* --kept-share S in (0, 1]: minimise the summed worst error at a mean kept
                             * share of key blocks <= S; 0: the budget method */
    int refine;             /* --refine N: rounds of local search of the kept-share allocation against the
                             * final video's error on the calibration inputs; 0: off */
    float *topks;           /* ascending, unique */
    int num_topks;
    sla2_quant_mode modes[CALIB_MAX_MODES]; /* cheapest first */
    int num_modes;
    int per_head;
    int full_sweep;         /* every candidate on every sample (exact worst everywhere; slower);
                             * implied by kept_share */
    sla2_backend backend;
    int block_q;
    double guidance, shift; /* < 0: the SDK's defaults (5, 5) */
    int sampler;            /* -1: unipc */
    int compare;
    int quiet;
    /* storage owned by the parser */
    char *prompt_text, *compare_text;
} calib_options;

/* Parses argv into opt (calib_args.c). Returns 1, or 0 after printing the
 * message to stderr (exit status 2). --help prints usage and exits 0. */
int calib_parse_args(int argc, char **argv, calib_options *opt);
void calib_options_free(calib_options *opt);
/* The schedule's sampled steps (1-based, ascending, unique) into out
 * [max_out]; returns their count, 0 on an invalid request (message printed). */
int calib_sample_steps(const calib_options *opt, int *out, int max_out);

/* "badness": lower is better, so both metrics select the same way.
 * rel-L2 as is; cosine as 1 - cos. */
double calib_badness_budget(const calib_options *opt);
double calib_badness_to_metric(calib_metric metric, double badness);
const char *calib_metric_name(calib_metric metric);

#endif
