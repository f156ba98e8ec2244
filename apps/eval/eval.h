/* sla2-eval: prompt adherence of a pixel-space model (the tiny demo) over
 * prompts x seeds x attention settings, from one loaded model. The pieces:
 * args.c reads the command line, tally.c keeps the per-setting counts, writes
 * and reads the per-video TSV and prints the table, main.c generates. */
#ifndef SLA2_EVAL_H
#define SLA2_EVAL_H

#include <sla2/sla2.h>
#include <sla2/video.h>

#include <stdio.h>

#define EVAL_MAX_SETTINGS 32
#define EVAL_MAX_SEEDS 64
#define EVAL_LABEL_CHARS 32
#define EVAL_PROMPT_CHARS 128

/* One attention setting: dense, or SLA2 at one topk and quantisation in every layer. */
typedef struct eval_setting {
    char label[EVAL_LABEL_CHARS]; /* as written in --settings and in the TSV: "dense", "0.1:int8" */
    int dense;
    float topk;
    sla2_quant_mode quant;
} eval_setting;

typedef struct eval_args {
    const char *model, *weights, *runtime, *prompt_file, *tsv;
    sla2_backend backend;
    int threads;          /* 0: the SDK's default (every core) */
    int num_prompts;      /* a spread of the 72 built-in prompts, when no prompt file */
    long long seeds[EVAL_MAX_SEEDS];
    int num_seeds;
    eval_setting settings[EVAL_MAX_SETTINGS];
    int num_settings;
    int steps;            /* 0: the runtime's */
    int shard_index, shard_count;
    double time_limit_s;  /* 0: none */
    int resume, quiet, list;
    /* --merge: the TSVs to read (argv entries) */
    int merge;
    char **merge_files;
    int num_merge_files;
} eval_args;

/* Video v (0 <= v < prompts x seeds x settings) of the run order: prompt by
 * prompt, seed by seed, setting by setting, so a run stopped early has every
 * setting on the same prompts. */
static inline void eval_video_of(long long v, int num_seeds, int num_settings, int *prompt, int *seed, int *setting)
{
    *setting = (int)(v % num_settings);
    *seed = (int)(v / num_settings % num_seeds);
    *prompt = (int)(v / num_settings / num_seeds);
}

/* Whether video v is shard I/N's: it takes the (prompt, seed) pairs I, I + N,
 * ..., each with every setting. Striding over single videos instead would
 * give a shard one setting only whenever N is a multiple of the number of
 * settings (7 by default): the dense shards would then run 3x longer than
 * the others and a time limit would leave the settings on different prompts. */
static inline int eval_in_shard(long long v, int num_settings, int shard_index, int shard_count)
{
    return v / num_settings % shard_count == shard_index;
}

/* Parses argv into a (defaults filled in). Returns 1 to go on, 0 after
 * printing an error ("sla2-eval: ..."), -1 after --help. */
int eval_parse_args(int argc, char **argv, eval_args *a);

/* Parses one --settings entry ("dense" or "T:MODE") into out. Returns 0 and
 * writes why into why (why_size bytes) when the text is not a setting. */
int eval_parse_setting(const char *text, eval_setting *out, char *why, size_t why_size);

/* The prompts: a spread of num_prompts of the 72 "<colour> <shape> moving
 * <direction>" prompts, or the lines of prompt_file (blank lines and lines
 * starting with '#' skipped). Returns the count (> 0) and a malloc'd array
 * in *out, or 0 after printing an error. */
int eval_load_prompts(const eval_args *a, char (**out)[EVAL_PROMPT_CHARS]);

/* ---- Counts, the TSV and the table ---------------------------------------- */
typedef struct eval_row {
    char label[EVAL_LABEL_CHARS];
    char kept[16];        /* key blocks kept per query block, "6/64"; "64/64" for dense */
    long long videos;
    long long colour, shape, direction, all_three;
    double seconds;
} eval_row;

typedef struct eval_tally {
    eval_row rows[EVAL_MAX_SETTINGS];
    int num_rows;
    long long planned;    /* videos planned; -1 when a TSV did not say */
} eval_tally;

/* The row for a setting label, added (with kept) when new; NULL when full. */
eval_row *eval_tally_row(eval_tally *t, const char *label, const char *kept);

/* Counts one video: matches is sla2_prompt_matches's bits. */
void eval_tally_add(eval_row *row, int matches, double seconds);

/* The videos already counted, as "setting<TAB>prompt<TAB>seed" keys: a
 * video counted twice (two TSVs that overlap) is an error, and --resume
 * skips what its TSV holds. */
typedef struct eval_keys {
    char **keys;
    size_t count, capacity;
    int sorted;
} eval_keys;

/* Adds a key; returns 0 when out of memory. */
int eval_keys_add(eval_keys *k, const char *label, const char *prompt, long long seed);
/* 1 when the key is there (sorts the set on first use after adds). */
int eval_keys_has(eval_keys *k, const char *label, const char *prompt, long long seed);
/* The first key held twice, or NULL. */
const char *eval_keys_duplicate(eval_keys *k);
void eval_keys_free(eval_keys *k);

/* The TSV: a comment line ("# sla2-eval ...; planned=N; ...; settings=
 * LABEL@KEPT,..." with the rows of t, so a table lists a setting that no
 * video reached), the column names, then one line per video (fields in
 * eval_tsv_write_video's order). */
void eval_tsv_write_header(FILE *f, const char *device, const char *shard, long long planned, int steps,
                           const eval_tally *t);
void eval_tsv_write_video(FILE *f, const char *label, const char *prompt, long long seed,
                          const sla2_video_analysis *analysis, int matches, double seconds, const char *kept);

/* Adds every video line of the TSV at path to t and keys, and the planned
 * count of its header(s) to t->planned (-1 when a header lacks it). Returns
 * 0 after printing an error that names the file and line. */
int eval_tsv_load(const char *path, eval_tally *t, eval_keys *keys);

/* The table: one line per setting, fractions of videos whose colour, shape,
 * direction (and all three) the analyser reads as the prompt's. */
void eval_print_table(FILE *to, const eval_tally *t);

#endif
