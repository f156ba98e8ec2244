/* sla2-demo: runs the SLA2 operator on a realistic random problem (tokens
 * whose queries and keys vary smoothly along the sequence, as video tokens
 * do, so attention concentrates on a few key blocks) in every mode and
 * prints its error against dense attention and its time. Built against the
 * public API only. */
#include <sla2/sla2.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct demo_options {
    int64_t heads, tokens, head_dim;
    int reference;
    int threads;
} demo_options;

static void usage(FILE *to)
{
    fprintf(to,
            "usage: sla2-demo [--heads N] [--tokens L] [--head-dim 64|128] [--threads N] [--reference]\n"
            "  Runs the SLA2 operator on the CPU on a random (1, heads, tokens, head_dim) problem\n"
            "  with topk in {1.0, 0.1, 0.05, 0.03} and quant in {none, int8, int8_fp8}, and prints\n"
            "  the relative L2 error against dense attention (topk = 1, full precision) and the time.\n"
            "  --reference  time the plain reference implementation instead of the fast path (slow)\n"
            "  defaults: --heads 4 --tokens 4096 --head-dim 128\n");
}

static int parse_int(const char *flag, const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    long long value = text ? strtoll(text, &end, 10) : 0;
    if (!text || *text == '\0' || *end != '\0' || value < min || value > max) {
        fprintf(stderr, "sla2-demo: %s: expected an integer in [%lld, %lld], got '%s'\n", flag, (long long)min,
                (long long)max, text ? text : "");
        return 0;
    }
    *out = value;
    return 1;
}

static int parse_args(int argc, char **argv, demo_options *o)
{
    *o = (demo_options){4, 4096, 128, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t value = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--reference")) {
            o->reference = 1;
        } else if (!strcmp(a, "--heads")) {
            if (!parse_int(a, next, 1, 64, &o->heads))
                return 0;
            i++;
        } else if (!strcmp(a, "--tokens")) {
            if (!parse_int(a, next, 1, 1 << 20, &o->tokens))
                return 0;
            i++;
        } else if (!strcmp(a, "--head-dim")) {
            if (!parse_int(a, next, 64, 128, &o->head_dim) || (o->head_dim != 64 && o->head_dim != 128)) {
                fprintf(stderr, "sla2-demo: --head-dim: expected 64 or 128\n");
                return 0;
            }
            i++;
        } else if (!strcmp(a, "--threads")) {
            if (!parse_int(a, next, 0, 1024, &value))
                return 0;
            o->threads = (int)value;
            i++;
        } else {
            fprintf(stderr, "sla2-demo: unknown argument '%s'\n", a);
            usage(stderr);
            return 0;
        }
    }
    return 1;
}

static uint64_t rng_state = 0x5eed;
static float uniform(void)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (float)(rng_state >> 40) / 16777216.0f;
}
static float normal(void)
{
    return sqrtf(-2.0f * logf(uniform() + 1e-12f)) * cosf(6.2831853f * uniform());
}

/* Each head: a smooth random path through feature space along the tokens
 * (a sum of a few low-frequency sinusoids per channel), plus noise. Queries
 * and keys near each other on the path score high, as in a video DiT. */
static void make_inputs(const demo_options *o, float *q, float *k, float *v)
{
    int64_t L = o->tokens, D = o->head_dim;
    for (int64_t h = 0; h < o->heads; h++)
        for (int64_t d = 0; d < D; d++) {
            float freq = 0.5f + 6.0f * uniform(), phase = 6.2831853f * uniform();
            for (int64_t l = 0; l < L; l++) {
                size_t e = (size_t)((h * L + l) * D + d);
                float path = 1.6f * sinf(freq * 6.2831853f * (float)l / (float)L + phase);
                q[e] = path + 0.5f * normal();
                k[e] = path + 0.5f * normal() + 0.3f; /* a shared key offset, removed by smoothing */
                v[e] = normal();
            }
        }
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static double rel_l2(const float *x, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++)
        num += ((double)x[i] - ref[i]) * ((double)x[i] - ref[i]), den += (double)ref[i] * ref[i];
    return sqrt(num / den);
}

int main(int argc, char **argv)
{
    demo_options o;
    if (!parse_args(argc, argv, &o))
        return 2;
    size_t n = (size_t)(o.heads * o.tokens * o.head_dim);
    float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *dense = malloc(n * 4), *out = malloc(n * 4);
    if (!q || !k || !v || !dense || !out) {
        fprintf(stderr, "sla2-demo: out of memory for a problem of %zu elements\n", n);
        return 1;
    }
    make_inputs(&o, q, k, v);

    sla2_context_options options;
    sla2_context_options_default(&options);
    options.backend = SLA2_BACKEND_CPU;
    options.cpu_reference = o.reference;
    options.num_threads = o.threads;
    sla2_context *ctx = NULL;
    char message[512];
    if (sla2_context_create(&options, &ctx, message, sizeof message) != SLA2_OK) {
        fprintf(stderr, "sla2-demo: %s\n", message);
        return 1;
    }
    sla2_tensor tq = sla2_tensor_bhld(q, SLA2_DTYPE_F32, 1, o.heads, o.tokens, o.head_dim);
    sla2_tensor tk = sla2_tensor_bhld(k, SLA2_DTYPE_F32, 1, o.heads, o.tokens, o.head_dim);
    sla2_tensor tv = sla2_tensor_bhld(v, SLA2_DTYPE_F32, 1, o.heads, o.tokens, o.head_dim);
    printf("sla2 %s demo: (1, %lld, %lld, %lld) f32, blocks 128x64, %s\n", sla2_version_string(),
           (long long)o.heads, (long long)o.tokens, (long long)o.head_dim, sla2_context_device_name(ctx));
    printf("%-9s %6s %13s %12s %9s %10s\n", "mode", "topk", "kept blocks", "rel L2", "cosine", "time ms");

    static const float topks[] = {1.0f, 0.1f, 0.05f, 0.03f};
    int failed = 0;
    for (int t = 0; t < 4 && !failed; t++)
        for (int mode = 0; mode < 3 && !failed; mode++) {
            sla2_attention_config cfg;
            sla2_attention_config_default(&cfg);
            cfg.topk = topks[t];
            cfg.quant = (sla2_quant_mode)mode;
            float *target = t == 0 && mode == 0 ? dense : out;
            sla2_tensor to = sla2_tensor_bhld(target, SLA2_DTYPE_F32, 1, o.heads, o.tokens, o.head_dim);
            sla2_attention_stats stats;
            sla2_attention_stats_default(&stats);
            double start = now_ms();
            sla2_status s = sla2_attention_forward(ctx, &cfg, NULL, &tq, &tk, &tv, &to, &stats);
            double elapsed = now_ms() - start;
            if (s != SLA2_OK) {
                fprintf(stderr, "sla2-demo: %s: %s\n", sla2_status_string(s), sla2_context_last_error(ctx));
                failed = 1;
                break;
            }
            double err = rel_l2(target, dense, n), dot = 0, xx = 0, yy = 0;
            for (size_t i = 0; i < n; i++)
                dot += (double)target[i] * dense[i], xx += (double)target[i] * target[i],
                    yy += (double)dense[i] * dense[i];
            char kept[32];
            snprintf(kept, sizeof kept, "%lld/%lld", (long long)stats.kept_per_q_block,
                     (long long)stats.num_k_blocks);
            printf("%-9s %6.2f %13s %12.3e %9.5f %10.1f\n", sla2_quant_mode_name(cfg.quant), (double)cfg.topk, kept,
                   err, dot / sqrt(xx * yy), elapsed);
        }
    printf("(alpha = 1: the sparse branch alone; the error is what the blocks left out cost)\n");
    sla2_context_free(ctx);
    free(q), free(k), free(v), free(dense), free(out);
    return failed;
}
