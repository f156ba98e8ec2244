/* The Wan2.1 DiT forward on the CUDA backend (sdk/src/cuda/dit_ops.cu plus
 * the CUDA attention operator) against the CPU backend, on
 *   - tests/fixtures/dit/ (a small random model with a PyTorch float64
 *     velocity: the CUDA output is compared with it too), and
 *   - configs/models/tiny-demo.yaml with random weights (4096 tokens, the
 *     per-head router and alpha of a real SLA2 checkpoint),
 *   - the fixture again with weight-only INT8 and FP8 linears (both backends
 *     hold the same codes and scales; CUDA runs them as bf16 GEMMs, which
 *     adds the bf16 rounding below, well within the float32 weights'
 *     tolerances; no PyTorch reference: it has float weights), with
 *     BF16 linears, and with FP8_GEMM ones (see the tolerances),
 *   - one BF16 linear alone, large enough that the CUDA backend rounds its
 *     activations in two chunks, against a float64 CPU dot product of the
 *     same bf16 values,
 *   - the fused block steps one by one against the CPU's plain sequences
 *     (fused_ops.c, with their own tolerances).
 * Each case runs both backends with the same attention settings, outputs
 * poisoned with NaN beforehand, and prints rel-L2 and cosine; it fails past
 * the tolerances below or on any non-finite value. Needs a GPU: run on the
 * device (tests/gpu/dit/run_dit_gpu.sh), not by CI.
 *
 * Usage: test_dit_gpu [--quick]   (--quick: the fixtures only, for the sanitizer)
 *
 * Tolerances (relative L2 over the whole velocity), and why:
 * - dense and SLA2 at topk 1: the GPU's linears run in TF32: inputs rounded
 *   to 10 mantissa bits (2^-11 relative), float32 accumulation, about 5e-4
 *   relative per GEMM output; cross-attention runs on bf16 tensor cores
 *   (q, k, v and P rounded to 2^-9: 3-4e-3 for the operator alone,
 *   check_cross_attention.c), and its output is a small part of the block's
 *   residual. Some twenty GEMMs lie on each path through two to four blocks;
 *   their errors add roughly in quadrature to ~2-3e-3. 1e-2 leaves room and
 *   still catches any misplaced term (those give 1e-1 and more). Cosine
 *   >= 0.9999.
 * - SLA2 sparse (topk < 1, quantised): the routing is discrete. A 1e-3
 *   perturbation of Q and K (the TF32 above) can flip a near-tied top-k
 *   block choice, which changes the rows of that query block by O(1) while
 *   leaving both answers valid SLA2 outputs; the quantised P.V adds its own
 *   rounding. 5e-2, cosine >= 0.998.
 * - BF16 storage, dense: the CUDA backend rounds the blocks' linears'
 *   activations to bf16 (2^-9 relative per element) for its bf16 GEMMs; the
 *   CPU keeps them float32. Emulating that rounding on the CPU gives 9.1e-4
 *   rel L2 on the fixture (1.1e-3 is bf16 weights against f32 weights);
 *   with the TF32 of the other GEMMs (4e-4) about 1e-3 is expected. 5e-3,
 *   cosine >= 0.9999: a misplaced term or a wrong chunk gives 1e-1 and more.
 * - FP8_GEMM storage (e4m3 activations per token on both backends), dense:
 *   CUDA quantises activations it holds in bf16, the CPU float32 ones; near
 *   e4m3's rounding boundaries the bf16 rounding moves a code by one step
 *   (1 in 32 elements, 2^-3 relative each). Emulating that on the CPU gave
 *   1.2e-2 rel L2 on the fixture (fp8_gemm against f32 weights: 1.9e-2).
 *   3e-2, cosine >= 0.999: a row's scale on another row, a lost gate or a
 *   skipped quantisation gives 1e-1 and more (fused_ops.c checks the
 *   linears alone far tighter).
 * - The BF16 linear alone: both sides multiply the same bf16 values, with
 *   float32 accumulation on the GPU against float64 on the CPU: ~1e-6;
 *   1e-5 catches a skipped or mis-rounded activation (2^-9 = 2e-3). */
#include "dit/dit.h"
#include "dit/dit_backend.h"
#include "check_cross_attention.h"
#include "fused_ops.h"
#include "check_util.h"
#include "numeric.h"
#include "random_dit_weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SLA2_SOURCE_DIR
#error "SLA2_SOURCE_DIR must point at the repository root"
#endif

#define DENSE_TOL 1e-2
#define DENSE_COS 0.9999
#define SPARSE_TOL 5e-2
#define SPARSE_COS 0.998
#define BF16_TOL 5e-3
#define FP8_GEMM_TOL 3e-2
#define FP8_GEMM_COS 0.999
#define BF16_LINEAR_TOL 1e-5

typedef struct model {
    const char *name;
    dit_weight_storage storage;
    sla2_model_config config;
    sla2_safetensors *weights_file;
    dit_weights cpu, gpu; /* loaded in place: a model must not move */
    dit_workspace *gpu_workspace;
    float *x, *context, *velocity_torch; /* velocity_torch NULL: no reference */
    double timestep;
    size_t video_elems;
} model;

typedef struct mode {
    const char *name;
    int dense;
    float topk;
    sla2_quant_mode quant;
    int block_q;
} mode;

static int failures;

static sla2_context *make_context(sla2_backend backend)
{
    sla2_context_options options;
    sla2_context_options_default(&options);
    options.backend = backend;
    sla2_context *ctx = NULL;
    char message[256];
    if (sla2_context_create(&options, &ctx, message, sizeof message) != SLA2_OK) {
        fprintf(stderr, "context (%s): %s\n", backend == SLA2_BACKEND_CUDA ? "cuda" : "cpu", message);
        exit(EXIT_FAILURE);
    }
    return ctx;
}

static void die(const char *what, const char *message)
{
    fprintf(stderr, "FATAL: %s: %s\n", what, message);
    exit(EXIT_FAILURE);
}

static float *read_tensor(sla2_safetensors *st, const char *name, size_t *elems)
{
    const sla2_st_tensor *t = sla2_safetensors_find(st, name);
    if (!t)
        die("io fixture", name);
    float *data = malloc(t->num_elems * sizeof *data);
    char err[256];
    if (!data || sla2_safetensors_read_f32(st, t, data, t->num_elems, err, sizeof err) != SLA2_OK)
        die(name, "cannot read");
    if (elems)
        *elems = t->num_elems;
    return data;
}

/* Loads the weights twice: the CPU's copy, and one moved to the GPU through
 * the CUDA table (as sla2_model_load does on a CUDA context). */
static void load_weights(model *m, sla2_context *gpu_ctx, const char *weights_path)
{
    char err[512];
    if (sla2_safetensors_open(weights_path, &m->weights_file, err, sizeof err) != SLA2_OK)
        die(weights_path, err);
    if (dit_weights_load_as(&m->config, m->weights_file, m->storage, &m->cpu, err, sizeof err) != SLA2_OK ||
        dit_weights_load_as(&m->config, m->weights_file, m->storage, &m->gpu, err, sizeof err) != SLA2_OK)
        die("dit_weights_load_as", err);
    const dit_backend *cuda = dit_backend_for(gpu_ctx);
    if (!cuda || strcmp(cuda->name, "cuda"))
        die("dit_backend_for", cuda ? cuda->name : sla2_context_last_error(gpu_ctx));
    if (dit_weights_to_backend(gpu_ctx, cuda, &m->gpu) != SLA2_OK)
        die("dit_weights_to_backend", sla2_context_last_error(gpu_ctx));
    if (dit_workspace_create(gpu_ctx, cuda, &m->config, &m->gpu_workspace) != SLA2_OK)
        die("dit_workspace_create", sla2_context_last_error(gpu_ctx));
}

static void load_fixture(model *m, sla2_context *gpu_ctx, dit_weight_storage storage)
{
    char err[512];
    const char *names[] = {"fixture", "fixture int8 weights", "fixture fp8 weights", "fixture bf16 weights",
                           "fixture fp8_gemm"};
    _Static_assert(sizeof names / sizeof names[0] == DIT_WEIGHTS_FP8_GEMM + 1, "a name for every storage");
    m->name = names[storage];
    m->storage = storage;
    if (sla2_model_config_load(SLA2_SOURCE_DIR "/tests/fixtures/dit/model.yaml", &m->config, err, sizeof err) !=
        SLA2_OK)
        die("fixture config", err);
    load_weights(m, gpu_ctx, SLA2_SOURCE_DIR "/tests/fixtures/dit/weights.safetensors");
    sla2_safetensors *io = NULL;
    if (sla2_safetensors_open(SLA2_SOURCE_DIR "/tests/fixtures/dit/io.safetensors", &io, err, sizeof err) != SLA2_OK)
        die("io fixture", err);
    m->x = read_tensor(io, "x", &m->video_elems);
    m->context = read_tensor(io, "context", NULL);
    m->velocity_torch = storage == DIT_WEIGHTS_F32 ? read_tensor(io, "velocity", NULL) : NULL;
    float *t = read_tensor(io, "timestep", NULL);
    m->timestep = t[0];
    free(t);
    sla2_safetensors_close(io);
}

/* Normal-ish inputs from a fixed seed (sum of uniforms). */
static void fill_random(float *a, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) {
        float s = 0.0f;
        for (int j = 0; j < 4; j++) {
            *state = *state * 6364136223846793005ull + 1442695040888963407ull;
            s += (float)(*state >> 40) / 16777216.0f - 0.5f;
        }
        a[i] = s * 1.7320508f;
    }
}

static void load_random_tiny(model *m, sla2_context *gpu_ctx, const char *path)
{
    char err[512];
    m->name = "tiny-demo (random)";
    if (sla2_model_config_load(SLA2_SOURCE_DIR "/configs/models/tiny-demo.yaml", &m->config, err, sizeof err) !=
        SLA2_OK)
        die("tiny-demo config", err);
    if (dit_random_weights_write(&m->config, path, SLA2_ST_F32, 7, err, sizeof err) != SLA2_OK)
        die("random weights", err);
    load_weights(m, gpu_ctx, path);
    int grid[3];
    int64_t tokens = sla2_model_config_tokens(&m->config, grid);
    int64_t patch = (int64_t)m->config.patch_size[0] * m->config.patch_size[1] * m->config.patch_size[2];
    m->video_elems = (size_t)(tokens * patch * m->config.in_channels);
    size_t context_elems = (size_t)m->config.text_len * (size_t)m->config.text_dim;
    m->x = malloc(m->video_elems * sizeof *m->x);
    m->context = calloc(context_elems, sizeof *m->context);
    uint64_t state = 12345;
    fill_random(m->x, m->video_elems, &state);
    /* 5 prompt tokens, the rest zero padding (as the pipeline pads) */
    fill_random(m->context, 5 * (size_t)m->config.text_dim, &state);
    m->timestep = 637.0;
    printf("tiny-demo: %lld tokens (grid %d x %d x %d), %d layers, dim %d, heads %d\n", (long long)tokens, grid[0],
           grid[1], grid[2], m->config.num_layers, m->config.dim, m->config.num_heads);
}

static void free_model(model *m, sla2_context *gpu_ctx)
{
    dit_workspace_free(m->gpu_workspace);
    dit_weights_free(&m->gpu, gpu_ctx, m->config.num_layers);
    dit_weights_free(&m->cpu, NULL, m->config.num_layers);
    sla2_safetensors_close(m->weights_file);
    sla2_model_config_free(&m->config);
    free(m->x), free(m->context), free(m->velocity_torch);
}

static sla2_status forward(sla2_context *ctx, model *m, const dit_weights *w, dit_workspace *ws, const mode *md,
                           float *out)
{
    dit_attention_settings *layers = calloc((size_t)m->config.num_layers, sizeof *layers);
    for (int i = 0; i < m->config.num_layers; i++) {
        layers[i].dense = md->dense;
        layers[i].feature_map = SLA2_FEATURE_SOFTMAX;
        layers[i].layer = (sla2_layer_settings){md->topk, md->quant, md->block_q, 64};
    }
    dit_forward_args args = {.x = m->x, .timestep = m->timestep, .context = m->context, .layers = layers,
                             .workspace = ws};
    for (size_t i = 0; i < m->video_elems; i++)
        out[i] = NAN;
    sla2_status s = dit_forward(ctx, &m->config, w, &args, out);
    free(layers);
    return s;
}

static void run_case(sla2_context *cpu_ctx, sla2_context *gpu_ctx, model *m, const mode *md, int fresh_workspace)
{
    float *cpu = malloc(m->video_elems * sizeof *cpu), *gpu = malloc(m->video_elems * sizeof *gpu);
    char label[96];
    snprintf(label, sizeof label, "%s%s", md->name, fresh_workspace ? " (own workspace)" : "");
    sla2_status s = forward(cpu_ctx, m, &m->cpu, NULL, md, cpu);
    if (s != SLA2_OK) {
        printf("%-20s %-36s FAIL  cpu forward: %s\n", m->name, label, sla2_context_last_error(cpu_ctx));
        failures++;
        goto done;
    }
    s = forward(gpu_ctx, m, &m->gpu, fresh_workspace ? NULL : m->gpu_workspace, md, gpu);
    if (s != SLA2_OK) {
        printf("%-20s %-36s FAIL  cuda forward (%s): %s\n", m->name, label, sla2_status_string(s),
               sla2_context_last_error(gpu_ctx));
        failures++;
        goto done;
    }
    int sparse = !md->dense && md->topk < 1.0f;
    const int fp8_gemm = m->storage == DIT_WEIGHTS_FP8_GEMM;
    double tol = sparse ? SPARSE_TOL : fp8_gemm ? FP8_GEMM_TOL : m->storage == DIT_WEIGHTS_BF16 ? BF16_TOL : DENSE_TOL;
    double cos_min = sparse ? SPARSE_COS : fp8_gemm ? FP8_GEMM_COS : DENSE_COS;
    int finite = all_finite(gpu, m->video_elems) && all_finite(cpu, m->video_elems);
    double err = rel_l2(gpu, cpu, m->video_elems), cos = cosine(gpu, cpu, m->video_elems);
    char torch[64] = "-";
    int ok = finite && err <= tol && cos >= cos_min;
    if (m->velocity_torch && (md->dense || md->topk >= 1.0f)) {
        double et = rel_l2(gpu, m->velocity_torch, m->video_elems);
        double ec = rel_l2(cpu, m->velocity_torch, m->video_elems);
        snprintf(torch, sizeof torch, "%.3e (cpu %.1e)", et, ec);
        ok = ok && et <= DENSE_TOL;
    }
    printf("%-20s %-36s %-4s  %.3e  %.7f  %-22s %.0e\n", m->name, label, ok ? "ok" : "FAIL", err, cos, torch, tol);
    if (!finite)
        printf("    non-finite values in the output\n");
    if (!ok)
        failures++;
done:
    free(cpu);
    free(gpu);
}

/* y = bf16(x) W^T + b for one BF16 linear (1536 -> 32) on the CUDA table
 * against a float64 dot product of the same bf16 values. 44000 rows of 1536
 * exceed the backend's 64 M-element activation chunk: two chunks. offset 1:
 * x starts 4 bytes past an aligned address (the rounding kernel's
 * one-at-a-time path). */
static void check_bf16_linear(sla2_context *gpu_ctx, int64_t rows, int offset)
{
    const int in = 1536, out = 32;
    const dit_backend *cuda = dit_backend_for(gpu_ctx);
    size_t x_elems = (size_t)rows * in, y_elems = (size_t)rows * out;
    float *x = malloc(x_elems * sizeof *x), *bias = malloc(out * sizeof *bias), *w = malloc((size_t)out * in * sizeof *w);
    float *y = malloc(y_elems * sizeof *y);
    uint16_t *codes = malloc((size_t)out * in * sizeof *codes);
    uint64_t state = 99;
    fill_random(x, x_elems, &state);
    fill_random(w, (size_t)out * in, &state);
    fill_random(bias, out, &state);
    for (size_t i = 0; i < (size_t)out * in; i++)
        codes[i] = sla2_float_to_bf16(w[i] * 0.05f);
    void *dx = NULL, *dy = NULL, *dcodes = NULL, *dbias = NULL;
    if (cuda->alloc(gpu_ctx, (x_elems + offset) * sizeof *x, &dx) || cuda->alloc(gpu_ctx, y_elems * sizeof *y, &dy) ||
        cuda->alloc(gpu_ctx, (size_t)out * in * sizeof *codes, &dcodes) ||
        cuda->alloc(gpu_ctx, out * sizeof *bias, &dbias) ||
        cuda->upload(gpu_ctx, (float *)dx + offset, x, x_elems * sizeof *x) ||
        cuda->upload(gpu_ctx, dcodes, codes, (size_t)out * in * sizeof *codes) ||
        cuda->upload(gpu_ctx, dbias, bias, out * sizeof *bias))
        die("bf16 linear: device buffers", sla2_context_last_error(gpu_ctx));
    dit_linear lin = {.bias = dbias, .in = in, .out = out, .storage = DIT_WEIGHTS_BF16, .codes = dcodes};
    for (size_t i = 0; i < y_elems; i++)
        y[i] = NAN;
    sla2_status s = cuda->linear(gpu_ctx, (float *)dx + offset, rows, &lin, dy);
    if (s == SLA2_OK)
        s = cuda->download(gpu_ctx, y, dy, y_elems * sizeof *y);
    for (size_t i = 0; i < x_elems; i++)
        x[i] = sla2_bf16_to_float(sla2_float_to_bf16(x[i]));
    for (size_t i = 0; i < (size_t)out * in; i++)
        w[i] = sla2_bf16_to_float(codes[i]);
    double num = 0.0, den = 0.0;
    int finite = 1;
    for (int64_t r = 0; r < rows && s == SLA2_OK; r++)
        for (int o = 0; o < out; o++) {
            double ref = bias[o];
            for (int i = 0; i < in; i++)
                ref += (double)x[r * in + i] * w[(size_t)o * in + i];
            double got = y[r * out + o];
            finite = finite && isfinite(got);
            num += (got - ref) * (got - ref), den += ref * ref;
        }
    double err = sqrt(num / (den > 0.0 ? den : 1.0));
    int ok = s == SLA2_OK && finite && err <= BF16_LINEAR_TOL;
    char label[96];
    snprintf(label, sizeof label, "%lld rows x 1536 -> 32%s", (long long)rows, offset ? ", x unaligned" : "");
    if (s != SLA2_OK)
        printf("%-20s %-36s FAIL  %s\n", "bf16 linear", label, sla2_context_last_error(gpu_ctx));
    else
        printf("%-20s %-36s %-4s  %.3e  %-9s  %-22s %.0e\n", "bf16 linear", label, ok ? "ok" : "FAIL", err, "-", "-",
               BF16_LINEAR_TOL);
    if (!ok)
        failures++;
    cuda->release(gpu_ctx, dx), cuda->release(gpu_ctx, dy), cuda->release(gpu_ctx, dcodes), cuda->release(gpu_ctx, dbias);
    free(x), free(y), free(w), free(bias), free(codes);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    sla2_context *cpu_ctx = make_context(SLA2_BACKEND_CPU), *gpu_ctx = make_context(SLA2_BACKEND_CUDA);
    printf("device: %s\n", sla2_context_device_name(gpu_ctx));
    printf("%-20s %-36s %-4s  %-9s  %-9s  %-22s %s\n", "model", "attention", "", "rel_l2", "cosine",
           "rel_l2 vs torch f64", "tol");

    const mode fixture_modes[] = {
        {"dense", 1, 1.0f, SLA2_QUANT_NONE, 128},
        {"sla2 topk1 none", 0, 1.0f, SLA2_QUANT_NONE, 64},
        {"sla2 topk0.5 int8", 0, 0.5f, SLA2_QUANT_INT8, 64},
        {"sla2 topk0.5 int8_fp8", 0, 0.5f, SLA2_QUANT_INT8_FP8, 64},
    };
    static model fixture; /* static: loaded in place, never moves */
    load_fixture(&fixture, gpu_ctx, DIT_WEIGHTS_F32);
    run_case(cpu_ctx, gpu_ctx, &fixture, &fixture_modes[0], 1);
    for (size_t i = 0; i < sizeof fixture_modes / sizeof fixture_modes[0]; i++)
        run_case(cpu_ctx, gpu_ctx, &fixture, &fixture_modes[i], 0);
    free_model(&fixture, gpu_ctx);
    check_bf16_linear(gpu_ctx, 44000, 0);
    check_bf16_linear(gpu_ctx, 1000, 1);
    failures += check_fused_ops(cpu_ctx, gpu_ctx);
    failures += check_cross_attention(gpu_ctx, quick);
    for (int storage = DIT_WEIGHTS_INT8; storage <= DIT_WEIGHTS_FP8_GEMM; storage++) {
        memset(&fixture, 0, sizeof fixture);
        load_fixture(&fixture, gpu_ctx, (dit_weight_storage)storage);
        run_case(cpu_ctx, gpu_ctx, &fixture, &fixture_modes[0], 0);
        run_case(cpu_ctx, gpu_ctx, &fixture, &fixture_modes[3], 0);
        free_model(&fixture, gpu_ctx);
    }

    if (!quick) {
        const mode tiny_modes[] = {
            {"dense", 1, 1.0f, SLA2_QUANT_NONE, 128},
            {"sla2 topk0.05 int8_fp8 128x64", 0, 0.05f, SLA2_QUANT_INT8_FP8, 128},
            {"sla2 topk0.03 none 64x64", 0, 0.03f, SLA2_QUANT_NONE, 64},
        };
        static model tiny;
        char path[128];
        snprintf(path, sizeof path, "/tmp/sla2_dit_gpu_tiny_%d.safetensors", (int)getpid());
        load_random_tiny(&tiny, gpu_ctx, path);
        for (size_t i = 0; i < sizeof tiny_modes / sizeof tiny_modes[0]; i++)
            run_case(cpu_ctx, gpu_ctx, &tiny, &tiny_modes[i], 0);
        free_model(&tiny, gpu_ctx);
        remove(path);
    }

    sla2_context_free(gpu_ctx);
    sla2_context_free(cpu_ctx);
    printf("%d failure(s)\n", failures);
    return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
