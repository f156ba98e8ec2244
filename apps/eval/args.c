/* sla2-eval's command line: flags, --settings, --seeds, --shard, prompts. */
#include "eval.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SETTINGS "dense,0.1:none,0.1:int8,0.1:int8_fp8,0.05:none,0.05:int8,0.05:int8_fp8"

static void usage(FILE *to)
{
    fprintf(to,
        "usage: sla2-eval --model MODEL.yaml --weights MODEL.safetensors [options]\n"
        "       sla2-eval --merge TSV...\n"
        "Prompt adherence of a pixel-space model (the tiny demo): loads the model once, then for\n"
        "each prompt, seed and attention setting generates a video and reads its colour, shape and\n"
        "direction back with the SDK's analyser (sla2_video_analyse). Prints a table of the share\n"
        "of videos that match the prompt in each; a progress line per video goes to stderr.\n"
        "\n"
        "  --model FILE        model architecture (YAML), e.g. models/tiny-demo.yaml\n"
        "  --weights FILE      weights (safetensors), e.g. models/tiny-demo.safetensors\n"
        "  --runtime FILE      runtime settings (YAML: sampler, steps, guidance, shift), e.g.\n"
        "                      models/tiny-demo.runtime.yaml (default: the SDK's built-in ones)\n"
        "  --backend cpu|cuda|auto  where the DiT runs (default auto: CUDA when usable, else CPU)\n"
        "  --threads N         CPU threads of the SDK (default: every core; set OMP_NUM_THREADS\n"
        "                      to the same N, it bounds the OpenMP/OpenBLAS parts)\n"
        "  --prompts N         a spread of N of the 72 '<colour> <shape> moving <direction>'\n"
        "                      prompts, N in 1..72 (default 50)\n"
        "  --prompt-file FILE  prompts, one a line ('#' lines and blank lines skipped; no tabs)\n"
        "  --seeds LIST        noise seeds, separated by commas or spaces (default 0,1)\n"
        "  --settings LIST     attention settings, comma-separated: 'dense' (exact attention) or\n"
        "                      'T:MODE', SLA2 in every layer keeping a share T of the key blocks,\n"
        "                      MODE none|int8|int8_fp8. Default:\n"
        "                      " DEFAULT_SETTINGS "\n"
        "                      (tiny demo: 64 key blocks, T 0.1 keeps 6 = 90.6%% sparse, 0.05 keeps\n"
        "                      3 = 95.3%%; the table says what each setting keeps)\n"
        "  --steps N           sampler steps, 1..1000 (default: the runtime's)\n"
        "  --shard I/N         take only the (prompt, seed) pairs I, I+N, I+2N, ... (0 <= I < N),\n"
        "                      each with every setting: N such processes together do the whole\n"
        "                      evaluation (their TSVs go to --merge)\n"
        "  --tsv FILE          write one line per video: setting, prompt, seed, the colour, shape\n"
        "                      and direction read, the three matches (1/0), seconds, key blocks kept\n"
        "  --resume            with --tsv: keep FILE's videos, skip them, append the rest\n"
        "  --time-limit S      stop after S seconds of wall time (a video under way is cancelled and\n"
        "                      not counted); the table says how many videos were done\n"
        "  --quiet             no progress lines\n"
        "  --list              print this shard's videos (setting, prompt, seed; tab-separated) in\n"
        "                      run order and exit, without loading the model\n"
        "  --merge TSV...      print the table of the videos of these TSVs (shards of one run)\n"
        "  --help              this text\n");
}

__attribute__((format(printf, 1, 2))) static int die(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "sla2-eval: ");
    vfprintf(stderr, fmt, args);
    fprintf(stderr, "\n");
    va_end(args);
    return 0;
}

/* An integer in [min, max], the whole text. */
static int parse_int(const char *text, long long min, long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || errno || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

static int parse_quant(const char *text, sla2_quant_mode *out)
{
    if (!strcmp(text, "none")) *out = SLA2_QUANT_NONE;
    else if (!strcmp(text, "int8")) *out = SLA2_QUANT_INT8;
    else if (!strcmp(text, "int8_fp8")) *out = SLA2_QUANT_INT8_FP8;
    else return 0;
    return 1;
}

int eval_parse_setting(const char *text, eval_setting *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    if (strlen(text) >= sizeof out->label) {
        snprintf(why, why_size, "'%s' is too long", text);
        return 0;
    }
    snprintf(out->label, sizeof out->label, "%s", text);
    if (!strcmp(text, "dense")) {
        out->dense = 1;
        return 1;
    }
    const char *colon = strchr(text, ':');
    char topk_text[EVAL_LABEL_CHARS];
    snprintf(topk_text, sizeof topk_text, "%.*s", colon ? (int)(colon - text) : 0, text);
    char *end = NULL;
    double topk = colon ? strtod(topk_text, &end) : NAN;
    if (!colon || end == topk_text || *end || !(topk > 0 && topk <= 1)) {
        snprintf(why, why_size, "'%s': expected 'dense' or 'T:MODE' with T in (0, 1]", text);
        return 0;
    }
    if (!parse_quant(colon + 1, &out->quant)) {
        snprintf(why, why_size, "'%s': MODE must be none, int8 or int8_fp8", text);
        return 0;
    }
    out->topk = (float)topk;
    return 1;
}

static int parse_settings(const char *list, eval_args *a)
{
    char copy[1024];
    if (strlen(list) >= sizeof copy)
        return die("--settings: the list is too long");
    snprintf(copy, sizeof copy, "%s", list);
    a->num_settings = 0;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char why[256];
        if (a->num_settings == EVAL_MAX_SETTINGS)
            return die("--settings: at most %d settings", EVAL_MAX_SETTINGS);
        eval_setting *s = &a->settings[a->num_settings];
        if (!eval_parse_setting(item, s, why, sizeof why))
            return die("--settings: %s", why);
        for (int i = 0; i < a->num_settings; i++)
            if (!strcmp(a->settings[i].label, s->label))
                return die("--settings: '%s' is given twice", s->label);
        a->num_settings++;
    }
    return a->num_settings > 0 ? 1 : die("--settings: the list is empty");
}

static int parse_seeds(const char *list, eval_args *a)
{
    char copy[1024];
    if (strlen(list) >= sizeof copy)
        return die("--seeds: the list is too long");
    snprintf(copy, sizeof copy, "%s", list);
    a->num_seeds = 0;
    for (char *save = NULL, *item = strtok_r(copy, ", ", &save); item; item = strtok_r(NULL, ", ", &save)) {
        long long seed;
        if (!parse_int(item, 0, 9000000000000000LL, &seed))
            return die("--seeds: '%s' is not a seed (an integer >= 0)", item);
        if (a->num_seeds == EVAL_MAX_SEEDS)
            return die("--seeds: at most %d seeds", EVAL_MAX_SEEDS);
        for (int i = 0; i < a->num_seeds; i++)
            if (a->seeds[i] == seed)
                return die("--seeds: %lld is given twice", seed);
        a->seeds[a->num_seeds++] = seed;
    }
    return a->num_seeds > 0 ? 1 : die("--seeds: the list is empty");
}

static int parse_shard(const char *text, eval_args *a)
{
    long long index, count;
    char copy[64];
    snprintf(copy, sizeof copy, "%s", text);
    char *slash = strchr(copy, '/');
    if (slash)
        *slash = '\0';
    if (!slash || !parse_int(copy, 0, 1000000, &index) || !parse_int(slash + 1, 1, 1000000, &count) || index >= count)
        return die("--shard: expected I/N with 0 <= I < N, got '%s'", text);
    a->shard_index = (int)index, a->shard_count = (int)count;
    return 1;
}

/* One flag that takes a value. Returns 0 after an error. */
static int parse_valued_flag(const char *f, const char *v, eval_args *a)
{
    long long n;
    if (!strcmp(f, "--model")) a->model = v;
    else if (!strcmp(f, "--weights")) a->weights = v;
    else if (!strcmp(f, "--runtime")) a->runtime = v;
    else if (!strcmp(f, "--prompt-file")) a->prompt_file = v;
    else if (!strcmp(f, "--tsv")) a->tsv = v;
    else if (!strcmp(f, "--settings")) return parse_settings(v, a);
    else if (!strcmp(f, "--seeds")) return parse_seeds(v, a);
    else if (!strcmp(f, "--shard")) return parse_shard(v, a);
    else if (!strcmp(f, "--prompts")) {
        if (!parse_int(v, 1, 72, &n))
            return die("--prompts: expected an integer in [1, 72], got '%s'", v);
        a->num_prompts = (int)n;
    } else if (!strcmp(f, "--steps")) {
        if (!parse_int(v, 1, 1000, &n))
            return die("--steps: expected an integer in [1, 1000], got '%s'", v);
        a->steps = (int)n;
    } else if (!strcmp(f, "--threads")) {
        if (!parse_int(v, 1, 4096, &n))
            return die("--threads: expected an integer in [1, 4096], got '%s'", v);
        a->threads = (int)n;
    } else if (!strcmp(f, "--time-limit")) {
        char *end = NULL;
        double s = strtod(v, &end);
        if (end == v || *end || !(s > 0 && s < 1e9))
            return die("--time-limit: expected a number of seconds > 0, got '%s'", v);
        a->time_limit_s = s;
    } else if (!strcmp(f, "--backend")) {
        if (!strcmp(v, "cpu")) a->backend = SLA2_BACKEND_CPU;
        else if (!strcmp(v, "cuda")) a->backend = SLA2_BACKEND_CUDA;
        else if (!strcmp(v, "auto")) a->backend = SLA2_BACKEND_AUTO;
        else return die("--backend: expected cpu, cuda or auto, got '%s'", v);
    } else
        return die("unknown flag '%s' (see --help)", f);
    return 1;
}

int eval_parse_args(int argc, char **argv, eval_args *a)
{
    memset(a, 0, sizeof *a);
    a->backend = SLA2_BACKEND_AUTO;
    a->shard_count = 1;
    int prompts_given = 0;
    if (!parse_settings(DEFAULT_SETTINGS, a) || !parse_seeds("0,1", a))
        return 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage(stdout);
            return -1;
        }
        if (!strcmp(f, "--merge")) {
            if (i != 1)
                return die("--merge takes only TSV files: give it first, with nothing else");
            a->merge = 1, a->merge_files = argv + 2, a->num_merge_files = argc - 2;
            for (int j = 2; j < argc; j++)
                if (!strncmp(argv[j], "--", 2))
                    return die("--merge takes only TSV files, got '%s'", argv[j]);
            return a->num_merge_files > 0 ? 1 : die("--merge: give one or more TSV files");
        }
        if (!strcmp(f, "--quiet")) { a->quiet = 1; continue; }
        if (!strcmp(f, "--resume")) { a->resume = 1; continue; }
        if (!strcmp(f, "--list")) { a->list = 1; continue; }
        if (strncmp(f, "--", 2) != 0)
            return die("unexpected argument '%s' (see --help)", f);
        if (i + 1 >= argc)
            return die("%s: needs a value", f);
        prompts_given |= !strcmp(f, "--prompts");
        if (!parse_valued_flag(f, argv[++i], a))
            return 0;
    }
    if (!a->list && (!a->model || !a->weights))
        return die("--model and --weights are required (see --help)");
    if (prompts_given && a->prompt_file)
        return die("give --prompts or --prompt-file, not both");
    if (a->resume && !a->tsv)
        return die("--resume needs --tsv FILE (the videos to keep)");
    if (!a->num_prompts)
        a->num_prompts = 50;
    return 1;
}

static const char *const colours[] = {"red", "green", "blue", "yellow", "cyan", "magenta"};
static const char *const shapes[] = {"circle", "square", "triangle"};
static const char *const directions[] = {"left", "right", "up", "down"};

/* Prompt i of the 72, colour-major, direction fastest. */
static void builtin_prompt(int i, char *out)
{
    snprintf(out, EVAL_PROMPT_CHARS, "%s %s moving %s", colours[i / 12], shapes[i / 4 % 3], directions[i % 4]);
}

static int read_prompt_file(const char *path, char (**out)[EVAL_PROMPT_CHARS])
{
    FILE *f = fopen(path, "r");
    if (!f)
        return die("--prompt-file %s: %s", path, strerror(errno));
    char line[1024];
    int count = 0, capacity = 0, line_number = 0;
    char(*prompts)[EVAL_PROMPT_CHARS] = NULL;
    while (fgets(line, sizeof line, f)) {
        line_number++;
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        const char *text = line + strspn(line, " ");
        if (!*text || *text == '#')
            continue;
        if (strchr(text, '\t') || n >= EVAL_PROMPT_CHARS) {
            fclose(f), free(prompts);
            return die("%s:%d: a prompt has no tabs and fewer than %d characters", path, line_number,
                       EVAL_PROMPT_CHARS);
        }
        if (count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            void *grown = realloc(prompts, (size_t)capacity * sizeof *prompts);
            if (!grown) {
                fclose(f), free(prompts);
                return die("out of memory reading %s", path);
            }
            prompts = grown;
        }
        snprintf(prompts[count++], EVAL_PROMPT_CHARS, "%s", text);
    }
    fclose(f);
    if (!count) {
        free(prompts);
        return die("--prompt-file %s: no prompts in it", path);
    }
    *out = prompts;
    return count;
}

int eval_load_prompts(const eval_args *a, char (**out)[EVAL_PROMPT_CHARS])
{
    if (a->prompt_file)
        return read_prompt_file(a->prompt_file, out);
    char(*prompts)[EVAL_PROMPT_CHARS] = malloc((size_t)a->num_prompts * sizeof *prompts);
    if (!prompts)
        return die("out of memory");
    /* i * 72 / N: distinct for N <= 72 and spread evenly over colours, shapes and directions */
    for (int i = 0; i < a->num_prompts; i++)
        builtin_prompt(i * 72 / a->num_prompts, prompts[i]);
    *out = prompts;
    return a->num_prompts;
}
