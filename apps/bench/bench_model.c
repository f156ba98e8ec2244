/* sla2-bench model: one Wan2.1 DiT forward at a model config's default
 * shape (Wan2.1-1.3B at 480p: 1 x 16 x 21 x 60 x 104 latents, 32760
 * tokens), random weights, dense attention against SLA2, with a
 * per-operator time breakdown and the weights' resident memory.
 *
 *   sla2-bench model [--config PATH] [--backend cuda|cpu] [--weights-storage f32|int8|fp8|bf16|fp8_gemm] [--runs N]
 *                    [--topk F] [--quant none|int8|int8_fp8] [--block-q 64|128] [--no-dense]
 *
 * The weights are written as a random BF16 safetensors file to /tmp (the
 * SDK's writer), loaded through the real loader (the blocks' linears
 * quantised there for --weights-storage int8|fp8, rounded to bf16 for bf16) and moved to the GPU
 * through the CUDA operator table, then the file is removed. Each mode runs
 * one warm-up forward, then --runs timed forwards (wall clock of
 * dit_forward: host patchify, upload, the blocks, download), and reports
 * the median; then one more forward with CUDA events (on the CPU: clock
 * reads) around every operator, summed per class:
 *   gemm        linears (cuBLASLt: TF32; bf16 with --weights-storage bf16, incl. rounding the
 *               inputs; OpenBLAS on the CPU) with the gated residuals of attn.o and cross_attn.o
 *               (in their epilogues on CUDA)
 *   ffn         the FFN: ffn.0, GELU, ffn.2 and its gated residual (fused on CUDA)
 *   norms       LayerNorm (with the modulation where it follows) and cross-attention's Q/K RMSNorm
 *   rope        self-attention's Q/K RMSNorm and 3-D RoPE (one fused pass each)
 *   attention   self-attention (the SLA2 operator, or its dense setting)
 *   cross_attn  cross-attention's softmax(QK^T)V (not its linears: gemm)
 *   other       time embedding activations, adds, uploads, download
 * and "host", the wall time not covered by any operator (launch gaps,
 * patchify). The timers are put in by wrapping the backends' operator
 * tables and sla2_attention_forward at link time (-Wl,--wrap, see
 * CMakeLists.txt), so the SDK carries no timing code; the profiled forward
 * is not among the timed ones. */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"
#include "dit/dit.h"
#include "dit/dit_backend.h"
#include "random_dit_weights.h"

#ifdef SLA2_BENCH_CUDA
#include <cuda_runtime_api.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef SLA2_SOURCE_DIR
#define SLA2_SOURCE_DIR "."
#endif

enum { OP_GEMM, OP_FFN, OP_NORM, OP_ROPE, OP_ATTENTION, OP_CROSS, OP_OTHER, OP_CLASSES };
static const char *const op_names[OP_CLASSES] = {"gemm", "ffn", "norms", "rope", "attention", "cross_attn", "other"};

#ifdef SLA2_BENCH_CUDA
/* dit_ops.cu: the context's cudaStream_t. */
void *sla2_cuda_dit_stream(sla2_context *ctx);
#endif

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* ---- Per-operator timing (link-time wrappers) ----------------------------- */

#define MAX_TIMED_OPS 8192

/* On CUDA each operator is bracketed by events on the context's stream; on
 * the CPU (synchronous operators) by clock reads. */
static struct {
    int on, on_cuda;
    double host_start[MAX_TIMED_OPS], host_stop[MAX_TIMED_OPS];
#ifdef SLA2_BENCH_CUDA
    cudaStream_t stream;
    cudaEvent_t start[MAX_TIMED_OPS], stop[MAX_TIMED_OPS];
#endif
    int op_class[MAX_TIMED_OPS];
    int count, overflow;
    const dit_backend *real_cpu, *real_cuda;
} prof;

static int prof_begin(int op_class)
{
    if (!prof.on)
        return -1;
    if (prof.count == MAX_TIMED_OPS) {
        prof.overflow = 1;
        return -1;
    }
    int i = prof.count++;
    prof.op_class[i] = op_class;
#ifdef SLA2_BENCH_CUDA
    if (prof.on_cuda)
        cudaEventRecord(prof.start[i], prof.stream);
#endif
    prof.host_start[i] = now_ms();
    return i;
}

static void prof_end(int i)
{
    if (i < 0)
        return;
#ifdef SLA2_BENCH_CUDA
    if (prof.on_cuda)
        cudaEventRecord(prof.stop[i], prof.stream);
#endif
    prof.host_stop[i] = now_ms();
}

/* ms of timed operator i (CUDA: after the stream has been synchronised) */
static double prof_elapsed(int i)
{
#ifdef SLA2_BENCH_CUDA
    float e = 0.0f;
    if (prof.on_cuda)
        return cudaEventElapsedTime(&e, prof.start[i], prof.stop[i]) == cudaSuccess ? e : 0.0;
#endif
    return prof.host_stop[i] - prof.host_start[i];
}

/* The untimed table of ctx's backend. */
static const dit_backend *real(sla2_context *ctx)
{
    return sla2_context_backend(ctx) == SLA2_BACKEND_CUDA ? prof.real_cuda : prof.real_cpu;
}

#define TIMED(op_class, call)             \
    do {                                  \
        int i_ = prof_begin(op_class);    \
        sla2_status s_ = (call);          \
        prof_end(i_);                     \
        return s_;                        \
    } while (0)

static sla2_status p_upload(sla2_context *ctx, void *dst, const void *src, size_t bytes)
{
    TIMED(OP_OTHER, real(ctx)->upload(ctx, dst, src, bytes));
}
static sla2_status p_download(sla2_context *ctx, void *dst, const void *src, size_t bytes)
{
    TIMED(OP_OTHER, real(ctx)->download(ctx, dst, src, bytes));
}
static sla2_status p_linear(sla2_context *ctx, const float *x, int64_t rows, const dit_linear *lin, float *y)
{
    TIMED(OP_GEMM, real(ctx)->linear(ctx, x, rows, lin, y));
}
static sla2_status p_layer_norm(sla2_context *ctx, const float *x, int64_t rows, int64_t dim, double eps,
                                const float *weight, const float *bias, void *y, sla2_dtype act)
{
    TIMED(OP_NORM, real(ctx)->layer_norm(ctx, x, rows, dim, eps, weight, bias, y, act));
}
static sla2_status p_rms_norm(sla2_context *ctx, void *x, sla2_dtype act, int64_t rows, int64_t dim, double eps,
                              const float *w)
{
    TIMED(OP_NORM, real(ctx)->rms_norm(ctx, x, act, rows, dim, eps, w));
}
static sla2_status p_gelu(sla2_context *ctx, float *x, int64_t n)
{
    TIMED(OP_OTHER, real(ctx)->gelu_tanh(ctx, x, n));
}
static sla2_status p_silu(sla2_context *ctx, const float *x, int64_t n, float *y)
{
    TIMED(OP_OTHER, real(ctx)->silu(ctx, x, n, y));
}
static sla2_status p_add(sla2_context *ctx, const float *a, const float *b, int64_t b_elems, float *out, int64_t n)
{
    TIMED(OP_OTHER, real(ctx)->add(ctx, a, b, b_elems, out, n));
}
static sla2_status p_norm_modulate(sla2_context *ctx, const float *x, int64_t rows, int64_t dim, double eps,
                                   const float *shift, const float *scale, void *y, sla2_dtype act)
{
    TIMED(OP_NORM, real(ctx)->norm_modulate(ctx, x, rows, dim, eps, shift, scale, y, act));
}
static sla2_status p_linears(sla2_context *ctx, const void *x, sla2_dtype act, int64_t rows, int count,
                             const dit_linear *const *lins, void *const *ys)
{
    TIMED(OP_GEMM, real(ctx)->linears(ctx, x, act, rows, count, lins, ys));
}
static sla2_status p_norm_rope(sla2_context *ctx, void *x, sla2_dtype act, const int grid[3], int64_t heads,
                               int64_t head_dim, double eps, const float *weight)
{
    TIMED(OP_ROPE, real(ctx)->norm_rope(ctx, x, act, grid, heads, head_dim, eps, weight));
}
static sla2_status p_linear_residual(sla2_context *ctx, const void *x, sla2_dtype act, int64_t rows,
                                     const dit_linear *lin, const float *gate, float *y, float *acc)
{
    TIMED(OP_GEMM, real(ctx)->linear_residual(ctx, x, act, rows, lin, gate, y, acc));
}
static sla2_status p_ffn_residual(sla2_context *ctx, const void *x, sla2_dtype act, int64_t rows,
                                  const dit_linear *ffn0, const dit_linear *ffn2, const float *gate, float *hidden,
                                  float *y, float *acc)
{
    TIMED(OP_FFN, real(ctx)->ffn_residual(ctx, x, act, rows, ffn0, ffn2, gate, hidden, y, acc));
}
static sla2_status p_dense_attention(sla2_context *ctx, const void *q, int64_t Lq, const float *k, const float *v,
                                     int64_t Lk, int64_t heads, int64_t head_dim, void *out, sla2_dtype act)
{
    TIMED(OP_CROSS, real(ctx)->dense_attention(ctx, q, Lq, k, v, Lk, heads, head_dim, out, act));
}

/* A copy of a backend's table with every operator timed. */
static dit_backend timed_table(const dit_backend *real_table, const char *name)
{
    dit_backend t = *real_table;
    t.name = name;
    t.upload = p_upload;
    t.download = p_download;
    t.linear = p_linear;
    t.layer_norm = p_layer_norm;
    t.rms_norm = p_rms_norm;
    t.gelu_tanh = p_gelu;
    t.silu = p_silu;
    t.add = p_add;
    t.dense_attention = p_dense_attention;
    t.norm_modulate = p_norm_modulate;
    t.linears = p_linears;
    t.norm_rope = p_norm_rope;
    t.linear_residual = p_linear_residual;
    t.ffn_residual = p_ffn_residual;
    return t;
}

/* The SDK asks for a backend's table through dit_backend_cpu,
 * dit_backend_for and sla2_cuda_dit_backend (weights and forward alike):
 * it gets the timed copies (-Wl,--wrap, CMakeLists.txt). */
const dit_backend *__real_dit_backend_cpu(void);
const dit_backend *__wrap_dit_backend_cpu(void);
const dit_backend *__real_dit_backend_for(sla2_context *ctx);
const dit_backend *__wrap_dit_backend_for(sla2_context *ctx);
sla2_status __real_sla2_attention_forward(sla2_context *ctx, const sla2_attention_config *config,
                                          const sla2_attention_params *params, const sla2_tensor *q,
                                          const sla2_tensor *k, const sla2_tensor *v, sla2_tensor *out,
                                          sla2_attention_stats *stats);
sla2_status __wrap_sla2_attention_forward(sla2_context *ctx, const sla2_attention_config *config,
                                          const sla2_attention_params *params, const sla2_tensor *q,
                                          const sla2_tensor *k, const sla2_tensor *v, sla2_tensor *out,
                                          sla2_attention_stats *stats);

const dit_backend *__wrap_dit_backend_cpu(void)
{
    static dit_backend table;
    if (!prof.real_cpu) {
        prof.real_cpu = __real_dit_backend_cpu();
        table = timed_table(prof.real_cpu, "cpu (timed)");
    }
    return &table;
}

const dit_backend *__wrap_dit_backend_for(sla2_context *ctx)
{
    if (sla2_context_backend(ctx) == SLA2_BACKEND_CPU)
        return __wrap_dit_backend_cpu();
    return __real_dit_backend_for(ctx); /* CUDA: sla2_cuda_dit_backend, wrapped below */
}

#ifdef SLA2_BENCH_CUDA
const dit_backend *__real_sla2_cuda_dit_backend(void);
const dit_backend *__wrap_sla2_cuda_dit_backend(void);

const dit_backend *__wrap_sla2_cuda_dit_backend(void)
{
    static dit_backend table;
    if (!prof.real_cuda) {
        prof.real_cuda = __real_sla2_cuda_dit_backend();
        table = timed_table(prof.real_cuda, "cuda (timed)");
    }
    return &table;
}
#endif

sla2_status __wrap_sla2_attention_forward(sla2_context *ctx, const sla2_attention_config *config,
                                          const sla2_attention_params *params, const sla2_tensor *q,
                                          const sla2_tensor *k, const sla2_tensor *v, sla2_tensor *out,
                                          sla2_attention_stats *stats)
{
    TIMED(OP_ATTENTION, __real_sla2_attention_forward(ctx, config, params, q, k, v, out, stats));
}

/* ---- The benchmark -------------------------------------------------------- */

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *const storage_names[] = {"f32", "int8", "fp8", "bf16", "fp8_gemm"};

typedef struct options {
    const char *config_path;
    int runs;
    float topk;
    sla2_quant_mode quant;
    int block_q;
    int dense;
    sla2_backend backend;
    dit_weight_storage storage;
} options;

static void usage(FILE *to)
{
    fprintf(to, "usage: sla2-bench model [--config PATH] [--backend cuda|cpu] [--weights-storage f32|int8|fp8|bf16|fp8_gemm]\n"
                "                        [--runs N] [--topk F] [--quant none|int8|int8_fp8] [--block-q 64|128]\n"
                "                        [--no-dense]\n"
                "  --config   model architecture (default configs/models/wan2.1-t2v-1.3b.yaml)\n"
                "  --backend  where the DiT runs (default cuda; both print the per-operator breakdown)\n"
                "  --weights-storage  the blocks' linear weights as float32 (default); weight-only INT8 /\n"
                "             FP8 e4m3 with a scale per output channel; or bfloat16. On CUDA the last\n"
                "             three run bf16 GEMMs (INT8 / FP8 dequantised to bf16 before each) on bf16\n"
                "             activations; float32 runs TF32 GEMMs; fp8_gemm: FP8 weights and FP8\n"
                "             (per-token e4m3) activations, FP8 GEMMs on sm_89+\n"
                "  --runs     timed forwards per mode, median reported (default 5)\n"
                "  --topk     SLA2's kept fraction of key blocks (default 0.03: 97%% sparsity)\n"
                "  --quant    SLA2's quantisation (default int8_fp8)\n"
                "  --block-q  SLA2's query block (default 128; block_k is 64)\n"
                "  --no-dense skip the dense-attention forward\n");
}

/* The dit_weight_storage named name, or -1. */
static int storage_of(const char *name)
{
    for (int i = 0; i < (int)(sizeof storage_names / sizeof storage_names[0]); i++)
        if (!strcmp(name, storage_names[i]))
            return i;
    return -1;
}

/* 1: parsed; 0: bad input (said on stderr); -1: --help was printed */
static int parse(int argc, char **argv, options *o)
{
    *o = (options){SLA2_SOURCE_DIR "/configs/models/wan2.1-t2v-1.3b.yaml", 5, 0.03f, SLA2_QUANT_INT8_FP8, 128, 1,
                   SLA2_BACKEND_CUDA, DIT_WEIGHTS_F32};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(a, "--no-dense")) {
            o->dense = 0;
            continue;
        }
        if (!val) {
            fprintf(stderr, "sla2-bench model: %s needs a value\n", a);
            return 0;
        }
        i++;
        char *end = NULL;
        if (!strcmp(a, "--config"))
            o->config_path = val;
        else if (!strcmp(a, "--backend") && (!strcmp(val, "cuda") || !strcmp(val, "cpu")))
            o->backend = !strcmp(val, "cpu") ? SLA2_BACKEND_CPU : SLA2_BACKEND_CUDA;
        else if (!strcmp(a, "--weights-storage") && storage_of(val) >= 0)
            o->storage = (dit_weight_storage)storage_of(val);
        else if (!strcmp(a, "--runs") && (o->runs = (int)strtol(val, &end, 10)) > 0 && !*end)
            ;
        else if (!strcmp(a, "--topk") && (o->topk = strtof(val, &end)) > 0.0f && o->topk <= 1.0f && !*end)
            ;
        else if (!strcmp(a, "--block-q") && ((o->block_q = (int)strtol(val, &end, 10)) == 64 || o->block_q == 128))
            ;
        else if (!strcmp(a, "--quant") && (!strcmp(val, "none") || !strcmp(val, "int8") || !strcmp(val, "int8_fp8")))
            o->quant = !strcmp(val, "none") ? SLA2_QUANT_NONE : !strcmp(val, "int8") ? SLA2_QUANT_INT8
                                                                                      : SLA2_QUANT_INT8_FP8;
        else {
            fprintf(stderr, "sla2-bench model: bad option or value: %s %s\n", a, val);
            usage(stderr);
            return 0;
        }
    }
    return 1;
}

typedef struct bench {
    sla2_context *ctx;
    sla2_model_config config;
    dit_weights weights;
    dit_workspace *ws;
    float *x, *context, *velocity;
    size_t video_elems;
    int64_t tokens;
} bench;

static int fail(const char *what, const char *why)
{
    fprintf(stderr, "sla2-bench model: %s: %s\n", what, why);
    return 0;
}

static int on_cuda(const bench *b)
{
    return sla2_context_backend(b->ctx) == SLA2_BACKEND_CUDA;
}

/* Device memory in use (all processes), MB; -1 off the GPU. */
static double device_used_mb(const bench *b)
{
#ifdef SLA2_BENCH_CUDA
    size_t free_bytes = 0, total_bytes = 0;
    if (on_cuda(b) && cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess)
        return (double)(total_bytes - free_bytes) / 1e6;
#else
    (void)b;
#endif
    return -1.0;
}

static int setup(bench *b, const options *o)
{
    char err[512], path[128];
    sla2_context_options copts;
    sla2_context_options_default(&copts);
    copts.backend = o->backend;
    if (sla2_context_create(&copts, &b->ctx, err, sizeof err) != SLA2_OK)
        return fail(o->backend == SLA2_BACKEND_CPU ? "CPU context" : "CUDA context", err);
    if (sla2_model_config_load(o->config_path, &b->config, err, sizeof err) != SLA2_OK)
        return fail("config", err);
    int grid[3];
    b->tokens = sla2_model_config_tokens(&b->config, grid);
    const int *p = b->config.patch_size;
    b->video_elems = (size_t)b->tokens * (size_t)(p[0] * p[1] * p[2]) * (size_t)b->config.in_channels;
    printf("model %s: %d layers, dim %d, ffn %d, %d heads, text_len %d; video %d x %d x %d x %d -> %lld tokens "
           "(grid %d x %d x %d)\ndevice: %s\n",
           b->config.name, b->config.num_layers, b->config.dim, b->config.ffn_dim, b->config.num_heads,
           b->config.text_len, b->config.in_channels, grid[0] * p[0], grid[1] * p[1], grid[2] * p[2],
           (long long)b->tokens, grid[0], grid[1], grid[2], sla2_context_device_name(b->ctx));

    snprintf(path, sizeof path, "/tmp/sla2_bench_model_%d.safetensors", (int)getpid());
    double t0 = now_ms();
    sla2_status s = dit_random_weights_write(&b->config, path, SLA2_ST_BF16, 1, err, sizeof err);
    if (s != SLA2_OK)
        return fail("random weights", err);
    double t1 = now_ms();
    sla2_safetensors *st = NULL;
    s = sla2_safetensors_open(path, &st, err, sizeof err);
    if (s == SLA2_OK)
        s = dit_weights_load_as(&b->config, st, o->storage, &b->weights, err, sizeof err);
    sla2_safetensors_close(st);
    remove(path);
    if (s != SLA2_OK)
        return fail("loading the random weights", err);
    const dit_backend *be = dit_backend_for(b->ctx);
    double used_before_mb = device_used_mb(b);
    if (!be || dit_weights_to_backend(b->ctx, be, &b->weights) != SLA2_OK ||
        dit_workspace_create(b->ctx, be, &b->config, &b->ws) != SLA2_OK)
        return fail("moving the model to the backend", sla2_context_last_error(b->ctx));
    printf("random weights: %.3f G parameters, written (bf16) in %.1f s, loaded (%s) and moved to the %s in %.1f s\n"
           "weights: %s (the blocks' linears), %.1f MB resident (f32 would be %.1f MB)",
           (double)b->weights.total_floats / 1e9, (t1 - t0) / 1e3, storage_names[o->storage],
           on_cuda(b) ? "GPU" : "CPU", (now_ms() - t1) / 1e3, storage_names[o->storage],
           (double)b->weights.resident_bytes / 1e6, (double)b->weights.total_floats * 4 / 1e6);
    if (used_before_mb >= 0)
        printf("; device memory in use %.0f MB -> %.0f MB with the weights and activations",
               used_before_mb, device_used_mb(b));
    printf("\n");

    b->x = malloc(b->video_elems * sizeof *b->x);
    b->velocity = malloc(b->video_elems * sizeof *b->velocity);
    b->context = calloc((size_t)b->config.text_len * (size_t)b->config.text_dim, sizeof *b->context);
    if (!b->x || !b->velocity || !b->context)
        return fail("inputs", "out of host memory");
    uint64_t state = 99;
    for (size_t i = 0; i < b->video_elems; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        b->x[i] = (float)(state >> 40) / 8388608.0f - 1.0f;
    }
    /* a prompt of a quarter of text_len tokens, zero-padded as the pipeline does */
    for (size_t i = 0; i < (size_t)(b->config.text_len / 4) * (size_t)b->config.text_dim; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        b->context[i] = (float)(state >> 40) / 8388608.0f - 1.0f;
    }
    prof.on_cuda = on_cuda(b);
#ifdef SLA2_BENCH_CUDA
    if (on_cuda(b)) {
        prof.stream = (cudaStream_t)sla2_cuda_dit_stream(b->ctx);
        for (int i = 0; i < MAX_TIMED_OPS; i++)
            if (cudaEventCreate(&prof.start[i]) != cudaSuccess || cudaEventCreate(&prof.stop[i]) != cudaSuccess)
                return fail("cudaEventCreate", "failed");
    }
#endif
    return 1;
}

/* One forward; its wall time into *ms and the SLA2 operator's phases,
 * summed over the layers, into *attention. */
static int forward(bench *b, const dit_attention_settings *layers, double *ms, dit_attention_times *attention)
{
    dit_forward_args args = {.x = b->x, .timestep = 900.0, .context = b->context, .layers = layers,
                             .workspace = b->ws};
    double t0 = now_ms();
    sla2_status s = dit_forward(b->ctx, &b->config, &b->weights, &args, b->velocity);
    *ms = now_ms() - t0;
    *attention = args.attention_times;
    if (s != SLA2_OK)
        return fail("dit_forward", sla2_context_last_error(b->ctx));
    return 1;
}

static int run_mode(bench *b, const char *label, const dit_attention_settings *layers, int runs)
{
    double ms, *times = malloc((size_t)runs * sizeof *times), class_ms[OP_CLASSES] = {0};
    dit_attention_times attention;
    if (!times || !forward(b, layers, &ms, &attention)) /* warm-up: cuBLASLt's first calls, the attention workspace */
        return free(times), 0;
    for (int r = 0; r < runs; r++)
        if (!forward(b, layers, &times[r], &attention))
            return free(times), 0;
    qsort(times, (size_t)runs, sizeof *times, compare_double);
    double median = runs % 2 ? times[runs / 2] : 0.5 * (times[runs / 2 - 1] + times[runs / 2]);

    double profiled_ms = 0.0, covered = 0.0;
    prof.on = 1, prof.count = 0, prof.overflow = 0;
    int ok = forward(b, layers, &profiled_ms, &attention);
    prof.on = 0;
    if (!ok)
        return free(times), 0;
#ifdef SLA2_BENCH_CUDA
    if (on_cuda(b))
        cudaDeviceSynchronize();
#endif
    for (int i = 0; i < prof.count; i++) {
        double e = prof_elapsed(i);
        class_ms[prof.op_class[i]] += e, covered += e;
    }
    size_t finite = 0;
    for (size_t i = 0; i < b->video_elems; i++)
        finite += b->velocity[i] == b->velocity[i] && b->velocity[i] - b->velocity[i] == 0.0f;
    printf("%-28s %9.1f %9.1f %9.1f |", label, median, times[0], profiled_ms);
    for (int c = 0; c < OP_CLASSES; c++)
        printf(" %10.1f", class_ms[c]);
    printf(" %8.1f |", profiled_ms - covered);
    printf(" %d ops%s", prof.count, prof.overflow ? " (timer pool overflowed)" : "");
    printf("%s\n", finite == b->video_elems ? "" : " NON-FINITE OUTPUT");
    /* the operator's own phase times (its stats), to set beside sla2-bench attention */
    printf("%-28s   attention's phases over the layers: total %.1f = quantise %.1f + router %.1f + linear %.1f"
           " + sparse %.1f + mix %.1f\n",
           "", attention.total_ms, attention.phase_ms[SLA2_PHASE_QUANTISE], attention.phase_ms[SLA2_PHASE_ROUTER],
           attention.phase_ms[SLA2_PHASE_LINEAR], attention.phase_ms[SLA2_PHASE_SPARSE],
           attention.phase_ms[SLA2_PHASE_MIX]);
    free(times);
    return 1;
}

int bench_model_main(int argc, char **argv)
{
    options o;
    int parsed = parse(argc, argv, &o);
    if (parsed <= 0)
        return parsed < 0 ? 0 : 2;
    static bench b; /* the weights are loaded in place: b never moves */
    if (!setup(&b, &o))
        return 1;
    dit_attention_settings *layers = calloc((size_t)b.config.num_layers, sizeof *layers);
    printf("\n%-28s %9s %9s %9s |", "mode (times in ms)", "median", "min", "profiled");
    for (int c = 0; c < OP_CLASSES; c++)
        printf(" %10s", op_names[c]);
    printf(" %8s |\n", "host");
    int ok = 1;
    if (o.dense) {
        for (int i = 0; i < b.config.num_layers; i++)
            layers[i] = (dit_attention_settings){.dense = 1, .feature_map = SLA2_FEATURE_SOFTMAX};
        ok = run_mode(&b, "dense", layers, o.runs) && ok;
    }
    char label[64];
    snprintf(label, sizeof label, "sla2 topk %.2f %s %dx64", o.topk, sla2_quant_mode_name(o.quant), o.block_q);
    for (int i = 0; i < b.config.num_layers; i++)
        layers[i] = (dit_attention_settings){.dense = 0, .feature_map = SLA2_FEATURE_SOFTMAX,
                                             .layer = {o.topk, o.quant, o.block_q, 64}};
    ok = run_mode(&b, label, layers, o.runs) && ok;
    printf("(median/min: wall time of dit_forward over %d runs after one warm-up; the breakdown is one more forward\n"
           " with %s around each operator; host = profiled - sum of the operators)\n",
           o.runs, on_cuda(&b) ? "CUDA events" : "clock reads");
    free(layers);
    dit_workspace_free(b.ws);
    dit_weights_free(&b.weights, b.ctx, b.config.num_layers);
    sla2_model_config_free(&b.config);
    sla2_context_free(b.ctx);
    free(b.x), free(b.context), free(b.velocity);
    return ok ? 0 : 1;
}
