/* sla2-eval's counts: per-setting tallies, the per-video TSV (written by a
 * run, read back by --merge and --resume) and the table. */
#include "eval.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

eval_row *eval_tally_row(eval_tally *t, const char *label, const char *kept)
{
    for (int i = 0; i < t->num_rows; i++)
        if (!strcmp(t->rows[i].label, label))
            return &t->rows[i];
    if (t->num_rows == EVAL_MAX_SETTINGS)
        return NULL;
    eval_row *row = &t->rows[t->num_rows++];
    memset(row, 0, sizeof *row);
    snprintf(row->label, sizeof row->label, "%.*s", (int)sizeof row->label - 1, label);
    snprintf(row->kept, sizeof row->kept, "%.*s", (int)sizeof row->kept - 1, kept);
    return row;
}

void eval_tally_add(eval_row *row, int matches, double seconds)
{
    row->videos++;
    row->colour += matches & 1;
    row->shape += matches >> 1 & 1;
    row->direction += matches >> 2 & 1;
    row->all_three += (matches & 7) == 7;
    row->seconds += seconds;
}

/* ---- Keys ------------------------------------------------------------------ */
int eval_keys_add(eval_keys *k, const char *label, const char *prompt, long long seed)
{
    if (k->count == k->capacity) {
        size_t capacity = k->capacity ? 2 * k->capacity : 256;
        char **grown = realloc(k->keys, capacity * sizeof *grown);
        if (!grown)
            return 0;
        k->keys = grown, k->capacity = capacity;
    }
    size_t size = strlen(label) + strlen(prompt) + 32;
    char *key = malloc(size);
    if (!key)
        return 0;
    snprintf(key, size, "%s\t%s\t%lld", label, prompt, seed);
    k->keys[k->count++] = key;
    k->sorted = 0;
    return 1;
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sort_keys(eval_keys *k)
{
    if (!k->sorted && k->count)
        qsort(k->keys, k->count, sizeof *k->keys, compare_keys);
    k->sorted = 1;
}

int eval_keys_has(eval_keys *k, const char *label, const char *prompt, long long seed)
{
    char key[EVAL_LABEL_CHARS + EVAL_PROMPT_CHARS + 32];
    snprintf(key, sizeof key, "%s\t%s\t%lld", label, prompt, seed);
    const char *p = key;
    sort_keys(k);
    return k->count && bsearch(&p, k->keys, k->count, sizeof *k->keys, compare_keys) != NULL;
}

const char *eval_keys_duplicate(eval_keys *k)
{
    sort_keys(k);
    for (size_t i = 1; i < k->count; i++)
        if (!strcmp(k->keys[i - 1], k->keys[i]))
            return k->keys[i];
    return NULL;
}

void eval_keys_free(eval_keys *k)
{
    for (size_t i = 0; i < k->count; i++)
        free(k->keys[i]);
    free(k->keys);
    memset(k, 0, sizeof *k);
}

/* ---- The TSV ----------------------------------------------------------------- */
static const char columns[] =
    "setting\tprompt\tseed\tcolour\tshape\tdirection\tcolour_ok\tshape_ok\tdirection_ok\tseconds\tkept_blocks";
enum { NUM_COLUMNS = 11 };

void eval_tsv_write_header(FILE *f, const char *device, const char *shard, long long planned, int steps,
                           const eval_tally *t)
{
    fprintf(f, "# sla2-eval %s; device=%s; shard=%s; planned=%lld; steps=", sla2_version_string(), device, shard,
            planned);
    if (steps)
        fprintf(f, "%d", steps);
    else
        fprintf(f, "runtime");
    fprintf(f, "; settings=");
    for (int i = 0; i < t->num_rows; i++)
        fprintf(f, "%s%s@%s", i ? "," : "", t->rows[i].label, t->rows[i].kept);
    fprintf(f, "\n%s\n", columns);
    fflush(f);
}

void eval_tsv_write_video(FILE *f, const char *label, const char *prompt, long long seed,
                          const sla2_video_analysis *analysis, int matches, double seconds, const char *kept)
{
    fprintf(f, "%s\t%s\t%lld\t%s\t%s\t%s\t%d\t%d\t%d\t%.3f\t%s\n", label, prompt, seed, analysis->colour,
            analysis->shape, analysis->direction, matches & 1, matches >> 1 & 1, matches >> 2 & 1, seconds, kept);
    /* a process stopped from outside (the device script's time limit) keeps every finished line */
    fflush(f);
}

/* Splits line (modified) at tabs into at most max fields; returns the count. */
static int split_tabs(char *line, char **fields, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        fields[n++] = p;
        p = strchr(p, '\t');
        if (!p)
            break;
        *p++ = '\0';
    }
    return n;
}

static int parse_bit(const char *text)
{
    return !strcmp(text, "1") ? 1 : !strcmp(text, "0") ? 0 : -1;
}

/* The header comment's planned=N, or -1. */
static long long header_planned(const char *line)
{
    const char *p = strstr(line, "planned=");
    char *end = NULL;
    long long n = p ? strtoll(p + 8, &end, 10) : -1;
    return p && end != p + 8 && n >= 0 ? n : -1;
}

/* The header's settings=LABEL@KEPT,... as (empty) rows of t. */
static int header_settings(const char *line, eval_tally *t, char *why, size_t why_size)
{
    const char *p = strstr(line, "; settings=");
    if (!p)
        return 1;
    char list[2048];
    snprintf(list, sizeof list, "%s", p + 11);
    list[strcspn(list, ";")] = '\0';
    for (char *save = NULL, *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *at = strchr(item, '@');
        if (!at || at == item || strlen(at + 1) >= sizeof t->rows[0].kept || at - item >= EVAL_LABEL_CHARS) {
            snprintf(why, why_size, "header: settings= expects LABEL@KEPT,...");
            return 0;
        }
        *at = '\0';
        eval_row *row = eval_tally_row(t, item, at + 1);
        if (!row || strcmp(row->kept, at + 1)) {
            snprintf(why, why_size, "header: setting '%.31s' %s", item, row ? "keeps other key blocks than before" : "is one too many");
            return 0;
        }
    }
    return 1;
}

/* One video line into t and keys; 0 (with why) when malformed. */
static int load_video_line(char *line, eval_tally *t, eval_keys *keys, char *why, size_t why_size)
{
    char *f[NUM_COLUMNS + 1];
    int n = split_tabs(line, f, NUM_COLUMNS + 1);
    if (n != NUM_COLUMNS) {
        snprintf(why, why_size, "expected %d tab-separated fields, got %d", NUM_COLUMNS, n);
        return 0;
    }
    char *end = NULL;
    long long seed = strtoll(f[2], &end, 10);
    int ok[3] = {parse_bit(f[6]), parse_bit(f[7]), parse_bit(f[8])};
    double seconds = strtod(f[9], &end);
    if (!*f[0] || !*f[1] || ok[0] < 0 || ok[1] < 0 || ok[2] < 0 || end == f[9] || *end || seconds < 0) {
        snprintf(why, why_size, "a field is not what the columns say (%s)", columns);
        return 0;
    }
    if (strlen(f[0]) >= EVAL_LABEL_CHARS || strlen(f[1]) >= EVAL_PROMPT_CHARS || strlen(f[10]) >= sizeof t->rows[0].kept) {
        snprintf(why, why_size, "a setting, prompt or kept_blocks field is too long");
        return 0;
    }
    eval_row *row = eval_tally_row(t, f[0], f[10]);
    if (!row) {
        snprintf(why, why_size, "more than %d settings", EVAL_MAX_SETTINGS);
        return 0;
    }
    if (strcmp(row->kept, f[10])) {
        snprintf(why, why_size, "setting '%.31s' keeps %.15s key blocks here but %.15s before", f[0], f[10],
                 row->kept);
        return 0;
    }
    eval_tally_add(row, ok[0] | ok[1] << 1 | ok[2] << 2, seconds);
    if (!eval_keys_add(keys, f[0], f[1], seed)) {
        snprintf(why, why_size, "out of memory");
        return 0;
    }
    return 1;
}

int eval_tsv_load(const char *path, eval_tally *t, eval_keys *keys)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "sla2-eval: %s: %s\n", path, strerror(errno));
        return 0;
    }
    char line[4096], why[256];
    int line_number = 0, headers = 0, ok = 1;
    while (ok && fgets(line, sizeof line, f)) {
        line_number++;
        size_t n = strcspn(line, "\n");
        if (line[n] != '\n' && !feof(f)) {
            snprintf(why, sizeof why, "line too long");
            ok = 0;
            break;
        }
        line[n] = '\0';
        if (line_number == 1 && strncmp(line, "# sla2-eval", 11)) {
            snprintf(why, sizeof why, "no '# sla2-eval ...; planned=N' header: not a sla2-eval TSV");
            ok = 0;
        } else if (line[0] == '#') {
            long long planned = header_planned(line);
            headers++;
            t->planned = planned < 0 || t->planned < 0 ? -1 : t->planned + planned;
            ok = header_settings(line, t, why, sizeof why);
        } else if (!strcmp(line, columns) || !line[0]) {
            continue;
        } else {
            ok = load_video_line(line, t, keys, why, sizeof why);
        }
    }
    fclose(f);
    if (ok && !headers) {
        snprintf(why, sizeof why, "empty: not a sla2-eval TSV");
        ok = 0;
    }
    if (!ok)
        fprintf(stderr, "sla2-eval: %s:%d: %s\n", path, line_number, why);
    return ok;
}

/* ---- The table ----------------------------------------------------------------- */
/* "6/64" -> "90.6% sparse"; dense and unknown as they are. */
static void describe_kept(const char *label, const char *kept, char *out, size_t size)
{
    long long k = 0, nk = 0;
    if (!strcmp(label, "dense"))
        snprintf(out, size, "dense (all %s)", kept);
    else if (sscanf(kept, "%lld/%lld", &k, &nk) == 2 && nk > 0)
        snprintf(out, size, "%s kept, %.1f%% sparse", kept, 100.0 * (double)(nk - k) / (double)nk);
    else
        snprintf(out, size, "%s", kept);
}

static double share(long long n, long long of)
{
    return of ? (double)n / (double)of : 0.0;
}

/* Dense first, then SLA2 by topk (largest first) and quantisation (none,
 * int8, int8_fp8), so a run and the merge of its shards list the same order. */
static int compare_rows(const void *pa, const void *pb)
{
    const eval_row *a = pa, *b = pb;
    eval_setting sa, sb;
    char why[128];
    int known_a = eval_parse_setting(a->label, &sa, why, sizeof why);
    int known_b = eval_parse_setting(b->label, &sb, why, sizeof why);
    if (known_a != known_b)
        return known_b - known_a;
    if (!known_a)
        return strcmp(a->label, b->label);
    if (sa.dense != sb.dense)
        return sb.dense - sa.dense;
    if (sa.topk != sb.topk)
        return sa.topk > sb.topk ? -1 : 1;
    if (sa.quant != sb.quant)
        return (int)sa.quant - (int)sb.quant;
    return strcmp(a->label, b->label);
}

void eval_print_table(FILE *to, const eval_tally *tally)
{
    eval_tally sorted = *tally;
    const eval_tally *t = &sorted;
    qsort(sorted.rows, (size_t)sorted.num_rows, sizeof *sorted.rows, compare_rows);
    long long done = 0;
    fprintf(to, "| setting | key blocks | videos | colour | shape | direction | all three | s/video |\n");
    fprintf(to, "| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (int i = 0; i < t->num_rows; i++) {
        const eval_row *r = &t->rows[i];
        char kept[64];
        describe_kept(r->label, r->kept, kept, sizeof kept);
        if (!r->videos)
            fprintf(to, "| %s | %s | 0 | - | - | - | - | - |\n", r->label, kept);
        else
            fprintf(to, "| %s | %s | %lld | %.2f | %.2f | %.2f | %.2f | %.2f |\n", r->label, kept, r->videos,
                    share(r->colour, r->videos), share(r->shape, r->videos), share(r->direction, r->videos),
                    share(r->all_three, r->videos), r->seconds / (double)r->videos);
        done += r->videos;
    }
    if (t->planned >= 0)
        fprintf(to, "videos done: %lld of %lld planned%s\n", done, t->planned,
                done < t->planned ? " (incomplete)" : "");
    else
        fprintf(to, "videos done: %lld (planned count unknown)\n", done);
}
