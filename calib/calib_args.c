/* sla2-calib's command line and prompt file. */
#include "calib.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float DEFAULT_TOPKS[] = {0.02f, 0.03f, 0.05f, 0.1f, 0.15f, 0.2f, 0.3f, 0.5f};

static void usage(FILE *to)
{
    fprintf(to,
        "usage: sla2-calib --model MODEL.yaml --weights MODEL.safetensors\n"
        "                  (--prompts FILE | --prompt TEXT ... | --text-embedding FILE ...) [options]\n"
        "Chooses each self-attention layer's sparsest topk and cheapest quantisation that keep\n"
        "the DiT's prediction within an error budget (that layer at the candidate, every other\n"
        "layer exact, against all exact, at sampled steps of dense runs), and writes them as a\n"
        "runtime YAML that sla2-gen reads (--runtime). Layers that nothing keeps within budget\n"
        "stay exact (dense: true). Or, with --kept-share S, the per-layer topk values with the\n"
        "least summed error that keep on average at most S of the key blocks.\n"
        "\n"
        "Inputs\n"
        "  --model FILE              model architecture (YAML)\n"
        "  --weights FILE            weights (safetensors)\n"
        "  --prompts FILE            prompts, one per line (blank lines and '#' lines skipped)\n"
        "  --prompt TEXT             one prompt (repeatable)\n"
        "  --text-embedding FILE     a text embedding: safetensors with 'context' (repeatable)\n"
        "  --seeds A,B,...           noise seeds (default 0)\n"
        "  --steps N                 sampler steps of each run (default 50, 1..1000)\n"
        "  --sample-steps N          sample N steps spread over the schedule, first to last (default 4)\n"
        "  --sample-at A,B,...       sample exactly these steps (1-based) instead\n"
        "  --guidance G, --shift S, --sampler unipc|euler   sampling (defaults 5, 5, unipc)\n"
        "Budget and candidates\n"
        "  --max-rel-l2 E            worst relative L2 error of the prediction allowed (default 0.05)\n"
        "  --min-cosine C            or: worst cosine similarity to the exact prediction, in [-1, 1]\n"
        "  --kept-share S            instead of a budget: choose per-layer topk values that minimise the\n"
        "                            sum over layers of each layer's worst error, keeping on average at\n"
        "                            most S of the key blocks (0 < S <= 1; a fraction such as 6/64 is\n"
        "                            read exactly). Measures every topk on every sample (as --full-sweep)\n"
        "                            in the cheapest mode of --modes only (int8_fp8 by default), so a\n"
        "                            uniform topk at the same share and mode compares like for like.\n"
        "                            --max-rel-l2 / --min-cosine then pick the metric; their value is unused\n"
        "  --refine N                with --kept-share: then improve the allocation against the real\n"
        "                            objective, the final video's mean rel-L2 to the dense video on the\n"
        "                            calibration inputs x seeds (never --compare's): start from the better\n"
        "                            of the DP's and the uniform allocation, then up to N rounds (1..1000)\n"
        "                            of: try every move of one key block from one layer to another, take\n"
        "                            the best that lowers the objective, stop when none does. Each try\n"
        "                            generates every calibration video at --steps, and a round tries up\n"
        "                            to layers x (layers - 1) moves: on the H100 a tiny-model video at 10\n"
        "                            steps takes about 0.1 s (a round on 8 videos: seconds); on the CPU\n"
        "                            about 1-2 s per DiT forward (a round on one 10-step video: minutes)\n"
        "  --topk-candidates LIST    topk values tried (default 0.02,0.03,0.05,0.1,0.15,0.2,0.3,0.5)\n"
        "  --modes LIST              quantisation modes tried, of none,int8,int8_fp8 (default all three)\n"
        "  --full-sweep              measure every candidate (topk x mode) on every sample, not just up\n"
        "                            to the first topk that meets the budget (full curves in the table\n"
        "                            and plot; the choice is the same unless a cheaper mode beats a\n"
        "                            more accurate one; much slower)\n"
        "  --block-q 64|128          query block size written to the YAML (default 128; block_k is 64)\n"
        "  --per-head                refused: the error is measured at the DiT's output, which has no\n"
        "                            per-head split (and the runtime applies one topk per layer)\n"
        "  --backend cpu|cuda|auto   where the DiT runs (default auto: CUDA when a GPU is usable)\n"
        "Outputs\n"
        "  --out FILE.yaml           the runtime YAML (default out/calib.yaml), written atomically\n"
        "  --plot FILE.png           error against topk per layer, the chosen points marked\n"
        "  --compare                 then generate dense, calibrated and uniform-topk videos at equal\n"
        "                            kept share (rounded up to whole blocks where it is not whole), and\n"
        "                            print their error against dense, prompt adherence and the paired\n"
        "                            difference calibrated - uniform\n"
        "  --compare-prompts FILE    prompts for --compare (default: the calibration prompts)\n"
        "  --compare-seeds A,B,...   seeds for --compare (default: the calibration seeds)\n"
        "  --quiet                   no progress bar\n"
        "  --help                    this text\n"
        "\n"
        "Exit status: 0 written; 1 a file or the model failed (nothing written); 2 bad flags (also\n"
        "a --kept-share below the sparsest candidate's share: nothing written); 3 written, but some\n"
        "layers met the budget with no candidate and stay dense.\n");
}

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, CALIB_TOOL ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 0;
}

static int parse_double(const char *flag, const char *text, double min, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !(v >= min && v <= max))
        return fail("%s: expected a number in [%g, %g], got '%s'", flag, min, max, text);
    *out = v;
    return 1;
}

static int parse_int(const char *flag, const char *text, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno || v < min || v > max)
        return fail("%s: expected an integer in [%ld, %ld], got '%s'", flag, min, max, text);
    *out = v;
    return 1;
}

/* --kept-share: a number in (0, 1], or a fraction A/B (6/64) so that a
 * whole number of key blocks reads exactly. */
static int parse_share(const char *flag, const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end != text && *end == '/' && !errno) {
        const char *den_text = end + 1;
        double den = strtod(den_text, &end);
        v = end != den_text && den > 0 ? v / den : NAN;
    }
    if (end == text || *end || errno || !(v > 0 && v <= 1))
        return fail("%s: expected a share of key blocks in (0, 1] (a number or a fraction such as 6/64), got '%s'",
                    flag, text);
    *out = v;
    return 1;
}

/* Splits a comma list; calls item() for each element. */
static int for_each_item(const char *flag, const char *list, int (*item)(const char *flag, const char *text, void *user),
                         void *user)
{
    char buf[1024];
    if (strlen(list) >= sizeof buf)
        return fail("%s: list too long", flag);
    strcpy(buf, list);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save), n++)
        if (!item(flag, tok, user))
            return 0;
    if (n == 0)
        return fail("%s: expected a comma-separated list, got '%s'", flag, list);
    return 1;
}

typedef struct growable {
    void **items;
    int *count;
    size_t elem;
} growable;

static void *grow(growable *g)
{
    void *p = realloc(*g->items, (size_t)(*g->count + 1) * g->elem);
    if (!p)
        return NULL;
    *g->items = p;
    return (char *)p + (size_t)(*g->count)++ * g->elem;
}

static int add_topk(const char *flag, const char *text, void *user)
{
    double v = 0;
    if (!parse_double(flag, text, 1e-6, 1.0, &v))
        return 0;
    float *slot = grow(user);
    if (!slot)
        return fail("out of memory");
    *slot = (float)v;
    return 1;
}

static int add_seed(const char *flag, const char *text, void *user)
{
    long v = 0;
    if (!parse_int(flag, text, 0, 2147483647L, &v))
        return 0;
    int64_t *slot = grow(user);
    if (!slot)
        return fail("out of memory");
    *slot = v;
    return 1;
}

static int add_step(const char *flag, const char *text, void *user)
{
    long v = 0;
    if (!parse_int(flag, text, 1, 1000, &v))
        return 0;
    int *slot = grow(user);
    if (!slot)
        return fail("out of memory");
    *slot = (int)v;
    return 1;
}

static int add_mode(const char *flag, const char *text, void *user)
{
    calib_options *o = user;
    sla2_quant_mode m;
    if (!strcmp(text, "none")) m = SLA2_QUANT_NONE;
    else if (!strcmp(text, "int8")) m = SLA2_QUANT_INT8;
    else if (!strcmp(text, "int8_fp8")) m = SLA2_QUANT_INT8_FP8;
    else return fail("%s: expected none, int8 or int8_fp8, got '%s'", flag, text);
    for (int i = 0; i < o->num_modes; i++)
        if (o->modes[i] == m)
            return fail("%s: '%s' given twice", flag, text);
    o->modes[o->num_modes++] = m;
    return 1;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Cost order, cheapest first: int8_fp8 < int8 < none. */
static int mode_cost(sla2_quant_mode m)
{
    return m == SLA2_QUANT_INT8_FP8 ? 0 : m == SLA2_QUANT_INT8 ? 1 : 2;
}

static void sort_modes(calib_options *o)
{
    for (int i = 1; i < o->num_modes; i++)
        for (int j = i; j > 0 && mode_cost(o->modes[j]) < mode_cost(o->modes[j - 1]); j--) {
            sla2_quant_mode t = o->modes[j];
            o->modes[j] = o->modes[j - 1], o->modes[j - 1] = t;
        }
}

/* Reads a prompt file: one prompt per line; trims; skips blank and '#'
 * lines. Appends to *inputs. */
static int read_prompts(const char *flag, const char *path, char **storage, calib_input **inputs, int *count)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail("%s: cannot open '%s': %s", flag, path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    int c;
    while (text && (c = fgetc(f)) != EOF) {
        if (c == '\0') {
            fclose(f), free(text);
            return fail("%s: '%s' is not a text file (NUL byte at offset %zu)", flag, path, len);
        }
        if (len + 2 > cap) {
            char *t = realloc(text, cap *= 2);
            if (!t) {
                free(text);
                text = NULL;
                break;
            }
            text = t;
        }
        text[len++] = (char)c;
    }
    int read_error = ferror(f);
    fclose(f);
    if (!text)
        return fail("out of memory reading '%s'", path);
    if (read_error) {
        free(text);
        return fail("%s: cannot read '%s'", flag, path);
    }
    text[len] = '\0';
    int before = *count;
    growable g = {(void **)inputs, count, sizeof **inputs};
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        if (n > 0 && line[0] != '#') {
            calib_input *in = grow(&g);
            if (!in) {
                free(text);
                return fail("out of memory");
            }
            *in = (calib_input){.prompt = line};
        }
        line = next;
    }
    if (*count == before) {
        free(text);
        return fail("%s: '%s' holds no prompt (it is empty, or only blank and '#' lines)", flag, path);
    }
    *storage = text; /* the prompts point into it */
    return 1;
}

int calib_parse_args(int argc, char **argv, calib_options *o)
{
    memset(o, 0, sizeof *o);
    o->out = "out/calib.yaml";
    o->steps = 50;
    o->sample_count = 4;
    o->metric = CALIB_METRIC_REL_L2;
    o->budget = 0.05;
    o->backend = SLA2_BACKEND_AUTO;
    o->block_q = 128;
    o->guidance = -1, o->shift = -1, o->sampler = -1;
    int budget_given = 0, sample_count_given = 0;
    const char *compare_file = NULL;
    growable inputs = {(void **)&o->inputs, &o->num_inputs, sizeof *o->inputs};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(f, "--quiet")) { o->quiet = 1; continue; }
        if (!strcmp(f, "--per-head")) { o->per_head = 1; continue; }
        if (!strcmp(f, "--compare")) { o->compare = 1; continue; }
        if (!strcmp(f, "--full-sweep")) { o->full_sweep = 1; continue; }
        if (strncmp(f, "--", 2) != 0)
            return fail("unexpected argument '%s' (see --help)", f);
        static const char *const known[] = {"--model", "--weights", "--prompts", "--prompt", "--text-embedding",
            "--seeds", "--steps", "--sample-steps", "--sample-at", "--guidance", "--shift", "--sampler",
            "--max-rel-l2", "--min-cosine", "--topk-candidates", "--modes", "--block-q", "--backend", "--out",
            "--plot", "--compare-prompts", "--compare-seeds", "--kept-share", "--refine", NULL};
        int is_known = 0;
        for (int k = 0; known[k]; k++)
            is_known |= !strcmp(f, known[k]);
        if (!is_known)
            return fail("unknown flag '%s' (see --help)", f);
        if (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2))
            return fail("%s: needs a value", f);
        const char *v = argv[++i];
        double d = 0;
        long n = 0;
        if (!strcmp(f, "--model")) o->model = v;
        else if (!strcmp(f, "--weights")) o->weights = v;
        else if (!strcmp(f, "--out")) o->out = v;
        else if (!strcmp(f, "--plot")) o->plot = v;
        else if (!strcmp(f, "--compare-prompts")) compare_file = v;
        else if (!strcmp(f, "--prompts")) {
            if (o->prompts_file)
                return fail("--prompts: give one prompt file");
            o->prompts_file = v;
            if (!read_prompts(f, v, &o->prompt_text, &o->inputs, &o->num_inputs))
                return 0;
        } else if (!strcmp(f, "--prompt") || !strcmp(f, "--text-embedding")) {
            if (!*v)
                return fail("%s: empty value", f);
            calib_input *in = grow(&inputs);
            if (!in)
                return fail("out of memory");
            *in = f[2] == 'p' ? (calib_input){.prompt = v} : (calib_input){.embedding = v};
        } else if (!strcmp(f, "--seeds")) {
            free(o->seeds), o->seeds = NULL, o->num_seeds = 0;
            growable g = {(void **)&o->seeds, &o->num_seeds, sizeof *o->seeds};
            if (!for_each_item(f, v, add_seed, &g))
                return 0;
        } else if (!strcmp(f, "--compare-seeds")) {
            free(o->compare_seeds), o->compare_seeds = NULL, o->num_compare_seeds = 0;
            growable g = {(void **)&o->compare_seeds, &o->num_compare_seeds, sizeof *o->compare_seeds};
            if (!for_each_item(f, v, add_seed, &g))
                return 0;
        } else if (!strcmp(f, "--steps")) {
            if (!parse_int(f, v, 1, 1000, &n)) return 0;
            o->steps = (int)n;
        } else if (!strcmp(f, "--sample-steps")) {
            if (!parse_int(f, v, 1, 1000, &n)) return 0;
            o->sample_count = (int)n, sample_count_given = 1;
        } else if (!strcmp(f, "--sample-at")) {
            free(o->sample_at), o->sample_at = NULL, o->num_sample_at = 0;
            growable g = {(void **)&o->sample_at, &o->num_sample_at, sizeof *o->sample_at};
            if (!for_each_item(f, v, add_step, &g))
                return 0;
        } else if (!strcmp(f, "--guidance")) {
            if (!parse_double(f, v, 0, 100, &d)) return 0;
            o->guidance = d;
        } else if (!strcmp(f, "--shift")) {
            if (!parse_double(f, v, 0.01, 100, &d)) return 0;
            o->shift = d;
        } else if (!strcmp(f, "--sampler")) {
            if (!strcmp(v, "unipc")) o->sampler = SLA2_SAMPLER_KIND_UNIPC;
            else if (!strcmp(v, "euler")) o->sampler = SLA2_SAMPLER_KIND_EULER;
            else return fail("--sampler: expected unipc or euler, got '%s'", v);
        } else if (!strcmp(f, "--max-rel-l2") || !strcmp(f, "--min-cosine")) {
            if (budget_given)
                return fail("give one budget: --max-rel-l2 or --min-cosine");
            budget_given = 1;
            int cosine = !strcmp(f, "--min-cosine");
            if (!parse_double(f, v, cosine ? -1.0 : 0.0, cosine ? 1.0 : 1e300, &d)) return 0;
            o->metric = cosine ? CALIB_METRIC_COSINE : CALIB_METRIC_REL_L2;
            o->budget = d;
        } else if (!strcmp(f, "--kept-share")) {
            if (!parse_share(f, v, &o->kept_share)) return 0;
        } else if (!strcmp(f, "--refine")) {
            if (!parse_int(f, v, 1, 1000, &n)) return 0;
            o->refine = (int)n;
        } else if (!strcmp(f, "--topk-candidates")) {
            free(o->topks), o->topks = NULL, o->num_topks = 0;
            growable g = {(void **)&o->topks, &o->num_topks, sizeof *o->topks};
            if (!for_each_item(f, v, add_topk, &g))
                return 0;
        } else if (!strcmp(f, "--modes")) {
            o->num_modes = 0;
            if (!for_each_item(f, v, add_mode, o))
                return 0;
        } else if (!strcmp(f, "--block-q")) {
            if (!parse_int(f, v, 64, 128, &n) || (n != 64 && n != 128))
                return fail("--block-q: expected 64 or 128, got '%s'", v);
            o->block_q = (int)n;
        } else if (!strcmp(f, "--backend")) {
            if (!strcmp(v, "cpu")) o->backend = SLA2_BACKEND_CPU;
            else if (!strcmp(v, "cuda")) o->backend = SLA2_BACKEND_CUDA;
            else if (!strcmp(v, "auto")) o->backend = SLA2_BACKEND_AUTO;
            else return fail("--backend: expected cpu, cuda or auto, got '%s'", v);
        }
    }
    if (!o->model || !o->weights)
        return fail("--model and --weights are required (see --help)");
    if (o->num_inputs == 0)
        return fail("no calibration input: give --prompts FILE, --prompt TEXT or --text-embedding FILE");
    if (o->refine && !(o->kept_share > 0))
        return fail("--refine %d: refines a --kept-share allocation; give --kept-share S too", o->refine);
    if (o->sample_at && sample_count_given)
        return fail("give one of --sample-steps and --sample-at");
    if (compare_file &&
        !read_prompts("--compare-prompts", compare_file, &o->compare_text, &o->compare_inputs, &o->num_compare_inputs))
        return 0;
    if (!o->seeds) {
        o->seeds = malloc(sizeof *o->seeds);
        if (!o->seeds)
            return fail("out of memory");
        o->seeds[0] = 0, o->num_seeds = 1;
    }
    if (!o->topks) {
        o->num_topks = (int)(sizeof DEFAULT_TOPKS / sizeof *DEFAULT_TOPKS);
        o->topks = malloc(sizeof DEFAULT_TOPKS);
        if (!o->topks)
            return fail("out of memory");
        memcpy(o->topks, DEFAULT_TOPKS, sizeof DEFAULT_TOPKS);
    }
    qsort(o->topks, (size_t)o->num_topks, sizeof *o->topks, cmp_float);
    for (int i = 1; i < o->num_topks; i++)
        if (o->topks[i] == o->topks[i - 1])
            return fail("--topk-candidates: %g given twice", (double)o->topks[i]);
    if (o->num_modes == 0) {
        o->modes[0] = SLA2_QUANT_INT8_FP8, o->modes[1] = SLA2_QUANT_INT8, o->modes[2] = SLA2_QUANT_NONE;
        o->num_modes = 3;
    }
    sort_modes(o);
    if (o->kept_share > 0) {
        /* One mode, the cheapest: the comparison with a uniform topk is then at
         * equal kept share and equal quantisation. The allocation needs every
         * layer's whole curve. */
        o->num_modes = 1;
        o->full_sweep = 1;
    }
    if (o->sample_at) {
        qsort(o->sample_at, (size_t)o->num_sample_at, sizeof *o->sample_at, cmp_int);
        for (int i = 0; i < o->num_sample_at; i++) {
            if (o->sample_at[i] > o->steps)
                return fail("--sample-at: step %d is past the last step (--steps %d)", o->sample_at[i], o->steps);
            if (i > 0 && o->sample_at[i] == o->sample_at[i - 1])
                return fail("--sample-at: step %d given twice", o->sample_at[i]);
        }
    } else if (!sample_count_given && o->sample_count > o->steps) {
        o->sample_count = o->steps; /* the default (4) on a shorter schedule: every step */
    } else if (o->sample_count > o->steps) {
        return fail("--sample-steps: %d steps cannot be sampled from a schedule of %d (--steps)", o->sample_count,
                    o->steps);
    }
    return 1;
}

void calib_options_free(calib_options *o)
{
    free(o->inputs), free(o->compare_inputs), free(o->seeds), free(o->compare_seeds), free(o->sample_at);
    free(o->topks);
    free(o->prompt_text), free(o->compare_text);
    memset(o, 0, sizeof *o);
}

int calib_sample_steps(const calib_options *o, int *out, int max_out)
{
    if (o->sample_at) {
        if (o->num_sample_at > max_out)
            return 0;
        memcpy(out, o->sample_at, (size_t)o->num_sample_at * sizeof *out);
        return o->num_sample_at;
    }
    int n = o->sample_count < max_out ? o->sample_count : max_out;
    if (n == 1) { /* one sample: the middle of the schedule */
        out[0] = (o->steps + 1) / 2;
        return 1;
    }
    int count = 0;
    for (int i = 0; i < n; i++) {
        int s = 1 + (int)floor((double)i * (o->steps - 1) / (n - 1) + 0.5);
        if (count == 0 || s != out[count - 1])
            out[count++] = s;
    }
    return count;
}

double calib_badness_budget(const calib_options *o)
{
    return o->metric == CALIB_METRIC_COSINE ? 1.0 - o->budget : o->budget;
}

double calib_badness_to_metric(calib_metric metric, double badness)
{
    return metric == CALIB_METRIC_COSINE ? 1.0 - badness : badness;
}

const char *calib_metric_name(calib_metric metric)
{
    return metric == CALIB_METRIC_COSINE ? "cosine" : "rel-L2";
}
