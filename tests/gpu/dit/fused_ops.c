/* The CUDA table's fused block steps (dit_backend.h: norm_modulate, linears,
 * norm_rope, linear_residual, ffn_residual) against the CPU table, which
 * runs each as its plain sequence of operators.
 *
 * The linears get dyadic data (x = k/8, w = k/64, b = k/16, gate = k/4 with
 * small k): every product and sum is exact in float32, TF32 and bf16, so
 * the two backends must agree to float32 rounding whatever their GEMM's
 * order, and a misplaced term (a bias scaled twice by the gate, a row off,
 * a lost accumulation) shows as an O(1) error. GELU's input is exact too,
 * so ffn_residual's float32 hidden activations compare GELU itself (with
 * f32 weights; with bf16, int8 or fp8 weights GELU runs in cuBLASLt's
 * epilogue, which matched the CPU's tanh form to 1.6e-6 when it ran in
 * this check: the erf form is 3e-4 away); the output goes through one TF32
 * or bf16 rounding of those activations (2^-11, 2^-9 relative).
 *
 * FP8_GEMM linears quantise x per row on both backends (e4m3 codes, scale
 * max|x| / 448). Their x rows get magnitudes 2^(r % 4) apart, so that the
 * rows' scales differ and one applied to the wrong row shows. Both sides
 * hold the same codes; the CPU multiplies code x scale products in float32,
 * the FP8 GEMM sums code products and scales once (and the bias goes to
 * bf16, exact for these values): float32 rounding apart, FP8_TOL. Without
 * FP8 GEMMs (SLA2_CUDA_FP8_GEMM=0, GPUs before sm_89) CUDA takes the
 * quantised values rounded to bf16: BF16_OUT_TOL. */
#include "fused_ops.h"

#include "dit/dit_backend.h"
#include "dit/dit_ops.h"
#include "check_util.h"
#include "numeric.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXACT_TOL 1e-6     /* float32 rounding of exact values */
#define NORM_TOL 1e-5      /* the same float32 formulas, other summation order */
#define GELU_TOL 1e-5      /* GELU's tanh form within a few ulp (the erf form is 3e-4 away) */
#define TF32_HIDDEN_TOL 1e-3
#define BF16_HIDDEN_TOL 5e-3
#define BF16_OUT_TOL 4e-3  /* outputs rounded to bf16: 2^-9 relative at most */
#define FP8_TOL 1e-5       /* float32 rounding of scaled exact sums */
/* ffn.2 of FP8_GEMM quantises GELU's output, bf16 on CUDA and float32 on
 * the CPU: near e4m3's rounding boundaries a code moves one step (1 in 32
 * elements, 2^-3 each), about 2e-2 rel L2; a misplaced term gives O(1) */
#define FP8_HIDDEN_TOL 5e-2
/* e4m3 rows from a norm against the CPU's norm then quantiser: the norms
 * agree to NORM_TOL, so a code moves one step (2^-4 to 2^-3 relative)
 * only where a value sits that close to a rounding boundary (a few of
 * 10^5); a scale on the wrong row or a lost code gives O(1) */
#define E4M3_ROWS_TOL 2e-3
#define E4M3_SCALE_TOL 1e-5

static uint64_t rng = 12345;

static float *dyadic(size_t n, int range, float unit)
{
    float *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = (float)small_int(&rng, range) * unit;
    return a;
}

typedef struct fused_check {
    sla2_context *cpu_ctx, *gpu_ctx;
    const dit_backend *cpu, *cuda;
    void *device[32]; /* released at the end of each check */
    int num_device;
    int failures;
} fused_check;

static void *to_device(fused_check *c, const void *host, size_t bytes)
{
    void *d = NULL;
    if (c->cuda->alloc(c->gpu_ctx, bytes, &d) != SLA2_OK || (host && c->cuda->upload(c->gpu_ctx, d, host, bytes)))
        return fprintf(stderr, "FATAL: fused ops: %s\n", sla2_context_last_error(c->gpu_ctx)), exit(EXIT_FAILURE),
               NULL;
    c->device[c->num_device++] = d;
    return d;
}

static float *download(fused_check *c, const void *d, size_t elems)
{
    float *h = malloc(elems * sizeof *h);
    if (c->cuda->download(c->gpu_ctx, h, d, elems * sizeof *h) != SLA2_OK)
        for (size_t i = 0; i < elems; i++)
            h[i] = NAN;
    return h;
}

/* a bf16 copy of x on the device (x's values must be bf16 already where
 * exactness matters) */
static void *to_device_bf16(fused_check *c, const float *x, size_t n)
{
    uint16_t *h = malloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++)
        h[i] = sla2_float_to_bf16(x[i]);
    void *d = to_device(c, h, n * sizeof *h);
    free(h);
    return d;
}

static float *download_bf16(fused_check *c, const void *d, size_t n)
{
    uint16_t *h = malloc(n * sizeof *h);
    float *f = malloc(n * sizeof *f);
    sla2_status s = c->cuda->download(c->gpu_ctx, h, d, n * sizeof *h);
    for (size_t i = 0; i < n; i++)
        f[i] = s == SLA2_OK ? sla2_bf16_to_float(h[i]) : NAN;
    free(h);
    return f;
}

static void release_all(fused_check *c)
{
    for (int i = 0; i < c->num_device; i++)
        c->cuda->release(c->gpu_ctx, c->device[i]);
    c->num_device = 0;
}

static void report(fused_check *c, const char *what, const char *storage, sla2_status s, double err, double tol)
{
    int ok = s == SLA2_OK && err <= tol;
    if (s != SLA2_OK)
        printf("%-20s %-36s FAIL  %s\n", "fused op", what, sla2_context_last_error(c->gpu_ctx));
    else
        printf("%-20s %-28s %-7s %-4s  %.3e  %-9s  %-22s %.0e\n", "fused op", what, storage, ok ? "ok" : "FAIL", err,
               "-", "-", tol);
    c->failures += !ok;
}

/* A linear with dyadic weights (k/64, |k| <= 8) and bias (k/16) on both
 * backends, stored as `storage` (all of them hold these values exactly). */
typedef struct twin_linear {
    dit_linear host, device;
    float *w;
} twin_linear;

static void make_linear(fused_check *c, twin_linear *t, int in, int out, dit_weight_storage storage)
{
    size_t n = (size_t)in * out;
    t->w = dyadic(n, 8, 1.0f / 64);
    float *bias = dyadic((size_t)out, 16, 1.0f / 16);
    t->host = (dit_linear){.bias = bias, .in = in, .out = out, .storage = storage};
    t->device = t->host;
    t->device.bias = to_device(c, bias, (size_t)out * sizeof *bias);
    if (storage == DIT_WEIGHTS_F32) {
        t->host.weight = t->w;
        t->device.weight = to_device(c, t->w, n * sizeof *t->w);
        return;
    }
    size_t code_bytes = dit_code_bytes(storage);
    uint8_t *codes = malloc(n * code_bytes);
    float *scale = malloc((size_t)out * sizeof *scale);
    for (size_t i = 0; i < n; i++) {
        if (storage == DIT_WEIGHTS_BF16)
            ((uint16_t *)codes)[i] = sla2_float_to_bf16(t->w[i]);
        else if (storage == DIT_WEIGHTS_INT8)
            codes[i] = (uint8_t)(int8_t)lrintf(t->w[i] * 64.0f);
        else
            codes[i] = sla2_float_to_e4m3(t->w[i] * 64.0f);
    }
    for (int o = 0; o < out; o++)
        scale[o] = 1.0f / 64;
    t->host.codes = codes;
    t->device.codes = to_device(c, codes, n * code_bytes);
    t->host.scale = storage == DIT_WEIGHTS_BF16 ? NULL : scale;
    t->device.scale = t->host.scale ? to_device(c, scale, (size_t)out * sizeof *scale) : NULL;
    if (!t->host.scale)
        free(scale);
}

static void free_linear(twin_linear *t)
{
    free(t->w);
    free(t->host.bias);
    free(t->host.codes);
    free(t->host.scale);
}

/* Three linears of one input as each backend's table takes them, and
 * their outputs: CPU float32 (ref) and device buffers of ny elements of
 * elem_bytes (dys). */
typedef struct three_linears {
    const dit_linear *host[3], *device[3];
    float *ref[3];
    void *dys[3];
} three_linears;

static void three_linears_init(fused_check *c, three_linears *t, twin_linear lin[3], size_t ny, size_t elem_bytes)
{
    for (int i = 0; i < 3; i++) {
        t->host[i] = &lin[i].host, t->device[i] = &lin[i].device;
        t->ref[i] = malloc(ny * sizeof *t->ref[i]);
        t->dys[i] = to_device(c, NULL, ny * elem_bytes);
    }
}

static const char *const storage_names[] = {"f32", "int8", "fp8", "bf16", "fp8_gemm"};

/* x [rows][in] for an FP8_GEMM linear: row r times 2^(r % 4) (still exact
 * in bf16), so that the rows' scales differ. */
static void spread_rows(float *x, int64_t rows, int in, dit_weight_storage storage)
{
    if (storage != DIT_WEIGHTS_FP8_GEMM)
        return;
    for (int64_t r = 0; r < rows; r++)
        for (int i = 0; i < in; i++)
            x[r * in + i] *= (float)(1 << (r % 4));
}

/* An FP8_GEMM linear's tolerance: FP8 GEMMs, or bf16 GEMMs on the same values. */
static double fp8_gemm_tol(void)
{
    const char *env = getenv("SLA2_CUDA_FP8_GEMM");
    return env && env[0] == '0' ? BF16_OUT_TOL : FP8_TOL;
}

/* acc += gate * (x W^T + b) with and without a gate, and three linears of one input. */
static void check_linears(fused_check *c, dit_weight_storage storage)
{
    const int64_t rows = 1000;
    const int in = 256, out = 192;
    twin_linear lin[3];
    for (int i = 0; i < 3; i++)
        make_linear(c, &lin[i], in, out, storage);
    size_t nx = (size_t)rows * in, ny = (size_t)rows * out;
    float *x = dyadic(nx, 16, 1.0f / 8), *acc = dyadic(ny, 16, 1.0f / 8), *gate = dyadic((size_t)out, 4, 0.25f);
    float *y = malloc(ny * sizeof *y);
    spread_rows(x, rows, in, storage);
    const double tol = storage == DIT_WEIGHTS_FP8_GEMM ? fp8_gemm_tol() : EXACT_TOL;
    float *dx = to_device(c, x, nx * sizeof *x), *dgate = to_device(c, gate, (size_t)out * sizeof *gate);
    void *dx16 = storage != DIT_WEIGHTS_F32 ? to_device_bf16(c, x, nx) : NULL; /* x is exact in bf16 */
    for (int run = 0; run < (dx16 ? 3 : 2); run++) {
        const int gated = run != 0;
        const sla2_dtype act = run == 2 ? SLA2_DTYPE_BF16 : SLA2_DTYPE_F32;
        float *dacc = to_device(c, acc, ny * sizeof *acc), *dy = to_device(c, NULL, ny * sizeof *y);
        float *ref = malloc(ny * sizeof *ref);
        memcpy(ref, acc, ny * sizeof *ref);
        c->cpu->linear_residual(c->cpu_ctx, x, SLA2_DTYPE_F32, rows, &lin[0].host, gated ? gate : NULL, y, ref);
        sla2_status s = c->cuda->linear_residual(c->gpu_ctx, act == SLA2_DTYPE_BF16 ? dx16 : (void *)dx, act, rows,
                                                 &lin[0].device, gated ? dgate : NULL, dy, dacc);
        float *got = download(c, dacc, ny);
        report(c, run == 2 ? "linear_residual, gate, bf16 x" : gated ? "linear_residual, gate" : "linear_residual, no gate",
               storage_names[storage], s, rel_l2(got, ref, ny), tol);
        free(got), free(ref);
    }
    three_linears t;
    three_linears_init(c, &t, lin, ny, sizeof(float));
    c->cpu->linears(c->cpu_ctx, x, SLA2_DTYPE_F32, rows, 3, t.host, (void *const *)t.ref);
    for (int bf16_out = 0; bf16_out < (storage != DIT_WEIGHTS_F32 ? 2 : 1); bf16_out++) {
        sla2_status s = bf16_out ? c->cuda->linears(c->gpu_ctx, dx16, SLA2_DTYPE_BF16, rows, 3, t.device, t.dys)
                                 : c->cuda->linears(c->gpu_ctx, dx, SLA2_DTYPE_F32, rows, 3, t.device, t.dys);
        double err = 0.0;
        for (int i = 0; i < 3; i++) {
            float *got = bf16_out ? download_bf16(c, t.dys[i], ny) : download(c, t.dys[i], ny);
            double e = rel_l2(got, t.ref[i], ny);
            err = e > err ? e : err;
            free(got);
        }
        report(c, bf16_out ? "linears (3), bf16 in and out" : "linears (3 of one input)", storage_names[storage], s, err,
               bf16_out ? BF16_OUT_TOL : tol);
    }
    for (int i = 0; i < 3; i++)
        free(t.ref[i]), free_linear(&lin[i]);
    free(x), free(acc), free(gate), free(y);
    release_all(c);
}

/* FP8_GEMM's other quantiser paths, gated linear_residual on float32 and
 * bf16 input: a width past the warp-per-row quantiser's 512 vectors (4112:
 * one block per row, still an FP8 GEMM), and one that is no multiple of 16
 * (100: the plain quantiser, and bf16 GEMMs on its values: BF16_OUT_TOL);
 * one row of each so small that its scale is subnormal (a reciprocal of it
 * would overflow: NaN would fail the check). */
static void check_fp8_gemm_widths(fused_check *c)
{
    const int64_t rows = 300;
    const int widths[] = {4112, 100}, out = 64;
    for (int wi = 0; wi < 2; wi++) {
        const int in = widths[wi];
        twin_linear lin;
        make_linear(c, &lin, in, out, DIT_WEIGHTS_FP8_GEMM);
        size_t nx = (size_t)rows * in, ny = (size_t)rows * out;
        float *x = dyadic(nx, 16, 1.0f / 8), *acc = dyadic(ny, 16, 1.0f / 8), *gate = dyadic((size_t)out, 4, 0.25f);
        float *y = malloc(ny * sizeof *y), *ref = malloc(ny * sizeof *ref);
        spread_rows(x, rows, in, DIT_WEIGHTS_FP8_GEMM);
        for (int i = 0; i < in; i++) /* row 1 below 448 x FLT_MIN: its scale is subnormal (and exact in bf16) */
            x[in + i] = ldexpf(x[in + i], -130);
        memcpy(ref, acc, ny * sizeof *ref);
        c->cpu->linear_residual(c->cpu_ctx, x, SLA2_DTYPE_F32, rows, &lin.host, gate, y, ref);
        float *dx = to_device(c, x, nx * sizeof *x), *dgate = to_device(c, gate, (size_t)out * sizeof *gate);
        void *dx16 = to_device_bf16(c, x, nx);
        for (int bf16 = 0; bf16 < 2; bf16++) {
            float *dacc = to_device(c, acc, ny * sizeof *acc), *dy = to_device(c, NULL, ny * sizeof *y);
            sla2_status s = c->cuda->linear_residual(c->gpu_ctx, bf16 ? dx16 : (void *)dx,
                                                     bf16 ? SLA2_DTYPE_BF16 : SLA2_DTYPE_F32, rows, &lin.device,
                                                     dgate, dy, dacc);
            float *got = download(c, dacc, ny);
            char what[64];
            snprintf(what, sizeof what, "linear_residual, in %d%s", in, bf16 ? ", bf16 x" : "");
            report(c, what, "fp8_gemm", s, rel_l2(got, ref, ny), in % 16 ? BF16_OUT_TOL : fp8_gemm_tol());
            free(got);
        }
        free_linear(&lin);
        free(x), free(acc), free(gate), free(y), free(ref);
        release_all(c);
    }
}

/* acc += gate * (gelu(x W0^T + b0) W2^T + b2): the hidden activations (exact
 * GELU input) and the result. With FP8_GEMM weights the bias and GELU run
 * in the quantiser of ffn.2's input (GeluBiasPre): hidden widths 512 (its
 * warp-per-row kernel), 4112 (block per row) and 100 (the plain kernel,
 * and bf16 GEMMs: no multiple of 16) take its three kernels. */
static void check_ffn(fused_check *c, dit_weight_storage storage, int hidden_dim)
{
    const int64_t rows = 700;
    const int dim = 256;
    twin_linear ffn0, ffn2;
    make_linear(c, &ffn0, dim, hidden_dim, storage);
    make_linear(c, &ffn2, hidden_dim, dim, storage);
    size_t nx = (size_t)rows * dim, nh = (size_t)rows * hidden_dim;
    float *x = dyadic(nx, 16, 1.0f / 8), *acc = dyadic(nx, 16, 1.0f / 8), *gate = dyadic((size_t)dim, 4, 0.25f);
    float *hidden = malloc(nh * sizeof *hidden), *y = malloc(nx * sizeof *y), *ref = malloc(nx * sizeof *ref);
    spread_rows(x, rows, dim, storage);
    memcpy(ref, acc, nx * sizeof *ref);
    c->cpu->ffn_residual(c->cpu_ctx, x, SLA2_DTYPE_F32, rows, &ffn0.host, &ffn2.host, gate, hidden, y, ref);
    float *dx = to_device(c, x, nx * sizeof *x), *dgate = to_device(c, gate, (size_t)dim * sizeof *gate);
    float *dhidden = to_device(c, NULL, nh * sizeof(float)), *dy = to_device(c, NULL, nx * sizeof(float));
    void *dx16 = storage != DIT_WEIGHTS_F32 ? to_device_bf16(c, x, nx) : NULL; /* x is exact in bf16 */
    for (int bf16_x = 0; bf16_x < (dx16 ? 2 : 1); bf16_x++) {
        float *dacc = to_device(c, acc, nx * sizeof *acc);
        sla2_status s = c->cuda->ffn_residual(c->gpu_ctx, bf16_x ? dx16 : (void *)dx,
                                              bf16_x ? SLA2_DTYPE_BF16 : SLA2_DTYPE_F32, rows, &ffn0.device,
                                              &ffn2.device, dgate, dhidden, dy, dacc);
        if (storage == DIT_WEIGHTS_F32) { /* float32 hidden activations: GELU alone */
            float *got = download(c, dhidden, nh);
            report(c, "ffn_residual: GELU", storage_names[storage], s, rel_l2(got, hidden, nh), GELU_TOL);
            free(got);
        }
        float *got = download(c, dacc, nx);
        char what[64];
        snprintf(what, sizeof what, "ffn_residual, hidden %d%s", hidden_dim, bf16_x ? ", bf16 x" : "");
        report(c, what, storage_names[storage], s, rel_l2(got, ref, nx),
               storage == DIT_WEIGHTS_F32 ? TF32_HIDDEN_TOL
               : storage == DIT_WEIGHTS_FP8_GEMM ? FP8_HIDDEN_TOL
                                                 : BF16_HIDDEN_TOL);
        free(got);
    }
    free_linear(&ffn0), free_linear(&ffn2);
    free(x), free(acc), free(gate), free(hidden), free(y), free(ref);
    release_all(c);
}

static void fill_gaussian(float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] = gaussian(&rng);
}

/* layer_norm + modulate, the affine layer_norm, rms_norm + RoPE (with and
 * without the norm) and rms_norm alone, at a width of 256 (LayerNorm's
 * warp-per-row kernel), 200 (its block-per-row kernel) and 192 (RoPE). */
static void check_norms(fused_check *c)
{
    const int grid[3] = {3, 10, 12};
    const int64_t heads = 4, head_dim = 64, dim = heads * head_dim, rows = 360;
    size_t n = (size_t)rows * dim;
    const int64_t vec = 256; /* per-channel vectors, long enough for the dim 200 case */
    float *x = malloc(n * sizeof *x), *shift = malloc(vec * sizeof *shift), *scale = malloc(vec * sizeof *scale);
    float *weight = malloc(vec * sizeof *weight), *ref = malloc(n * sizeof *ref);
    fill_gaussian(x, n), fill_gaussian(shift, vec), fill_gaussian(scale, vec), fill_gaussian(weight, vec);
    for (size_t i = 0; i < n; i++)
        x[i] = 3.0f * x[i] + 0.5f; /* a mean and a scale for the norm to remove */
    float *dx = to_device(c, x, n * sizeof *x), *dy = to_device(c, NULL, n * sizeof *x);
    float *dshift = to_device(c, shift, vec * sizeof *shift), *dscale = to_device(c, scale, vec * sizeof *scale);
    float *dweight = to_device(c, weight, vec * sizeof *weight);

    c->cpu->norm_modulate(c->cpu_ctx, x, rows, dim, 1e-6, shift, scale, ref, SLA2_DTYPE_F32);
    sla2_status s = c->cuda->norm_modulate(c->gpu_ctx, dx, rows, dim, 1e-6, dshift, dscale, dy, SLA2_DTYPE_F32);
    float *got = download(c, dy, n);
    report(c, "norm_modulate", "f32", s, rel_l2(got, ref, n), NORM_TOL);
    free(got);
    s = c->cuda->norm_modulate(c->gpu_ctx, dx, rows, dim, 1e-6, dshift, dscale, dy, SLA2_DTYPE_BF16);
    got = download_bf16(c, dy, n);
    report(c, "norm_modulate", "bf16", s, rel_l2(got, ref, n), BF16_OUT_TOL);
    free(got);
    /* the block-per-row kernel, for widths that are not a multiple of 128
     * (the warp-per-row kernel takes the rest): 72 rows of 200 */
    {
        const int64_t rows2 = 72, dim2 = 200;
        const size_t n2 = (size_t)(rows2 * dim2);
        c->cpu->norm_modulate(c->cpu_ctx, x, rows2, dim2, 1e-6, shift, scale, ref, SLA2_DTYPE_F32);
        s = c->cuda->norm_modulate(c->gpu_ctx, dx, rows2, dim2, 1e-6, dshift, dscale, dy, SLA2_DTYPE_F32);
        got = download(c, dy, n2);
        report(c, "norm_modulate, dim 200", "f32", s, rel_l2(got, ref, n2), NORM_TOL);
        free(got);
    }
    /* cross-attention's affine LayerNorm (weight: scale, bias: shift) */
    c->cpu->layer_norm(c->cpu_ctx, x, rows, dim, 1e-6, weight, shift, ref, SLA2_DTYPE_F32);
    for (int bf16 = 0; bf16 < 2; bf16++) {
        s = c->cuda->layer_norm(c->gpu_ctx, dx, rows, dim, 1e-6, dweight, dshift, dy,
                                bf16 ? SLA2_DTYPE_BF16 : SLA2_DTYPE_F32);
        got = bf16 ? download_bf16(c, dy, n) : download(c, dy, n);
        report(c, "layer_norm (affine)", bf16 ? "bf16" : "f32", s, rel_l2(got, ref, n), bf16 ? BF16_OUT_TOL : NORM_TOL);
        free(got);
    }
    for (int normed = 0; normed < 2; normed++) {
        memcpy(ref, x, n * sizeof *ref);
        c->cpu->norm_rope(c->cpu_ctx, ref, SLA2_DTYPE_F32, grid, heads, head_dim, 1e-6, normed ? weight : NULL);
        s = c->cuda->upload(c->gpu_ctx, dy, x, n * sizeof *x);
        if (s == SLA2_OK)
            s = c->cuda->norm_rope(c->gpu_ctx, dy, SLA2_DTYPE_F32, grid, heads, head_dim, 1e-6,
                                   normed ? dweight : NULL);
        got = download(c, dy, n);
        report(c, normed ? "norm_rope" : "norm_rope, no norm", "f32", s, rel_l2(got, ref, n), NORM_TOL);
        free(got);
    }
    /* an odd number of heads: 3 of 64 */
    {
        const int64_t heads3 = 3, dim3 = heads3 * head_dim;
        const size_t n3 = (size_t)(rows * dim3);
        memcpy(ref, x, n3 * sizeof *ref);
        c->cpu->norm_rope(c->cpu_ctx, ref, SLA2_DTYPE_F32, grid, heads3, head_dim, 1e-6, weight);
        s = c->cuda->upload(c->gpu_ctx, dy, x, n3 * sizeof *x);
        if (s == SLA2_OK)
            s = c->cuda->norm_rope(c->gpu_ctx, dy, SLA2_DTYPE_F32, grid, heads3, head_dim, 1e-6, dweight);
        got = download(c, dy, n3);
        report(c, "norm_rope, 3 heads", "f32", s, rel_l2(got, ref, n3), NORM_TOL);
        free(got);
    }
    /* bf16 activations: the CPU on the same bf16 values, the GPU's result rounded to bf16 */
    for (size_t i = 0; i < n; i++)
        x[i] = sla2_bf16_to_float(sla2_float_to_bf16(x[i]));
    memcpy(ref, x, n * sizeof *ref);
    c->cpu->norm_rope(c->cpu_ctx, ref, SLA2_DTYPE_F32, grid, heads, head_dim, 1e-6, weight);
    void *dx16 = to_device_bf16(c, x, n);
    s = c->cuda->norm_rope(c->gpu_ctx, dx16, SLA2_DTYPE_BF16, grid, heads, head_dim, 1e-6, dweight);
    got = download_bf16(c, dx16, n);
    report(c, "norm_rope", "bf16", s, rel_l2(got, ref, n), BF16_OUT_TOL);
    free(got);
    /* cross-attention's RMSNorm of q, in place: float32, and bf16 on the same bf16 values */
    memcpy(ref, x, n * sizeof *ref);
    c->cpu->rms_norm(c->cpu_ctx, ref, SLA2_DTYPE_F32, rows, dim, 1e-6, weight);
    s = c->cuda->upload(c->gpu_ctx, dy, x, n * sizeof *x);
    if (s == SLA2_OK)
        s = c->cuda->rms_norm(c->gpu_ctx, dy, SLA2_DTYPE_F32, rows, dim, 1e-6, dweight);
    got = download(c, dy, n);
    report(c, "rms_norm", "f32", s, rel_l2(got, ref, n), NORM_TOL);
    free(got);
    void *dq16 = to_device_bf16(c, x, n);
    s = c->cuda->rms_norm(c->gpu_ctx, dq16, SLA2_DTYPE_BF16, rows, dim, 1e-6, dweight);
    got = download_bf16(c, dq16, n);
    report(c, "rms_norm", "bf16", s, rel_l2(got, ref, n), BF16_OUT_TOL);
    free(got);
    free(x), free(shift), free(scale), free(weight), free(ref);
    release_all(c);
}

/* The norms writing e4m3 rows (DIT_ACT_E4M3_ROWS) for FP8_GEMM linears,
 * against the CPU's norm followed by its quantiser (op_quantise_activations),
 * at a width of 256 (the warp-per-row kernel quantises its registers) and
 * 208 (float32 scratch, then the quantiser); then those rows into three
 * linears (bf16 out) and the FFN, against the CPU's linears on its float32
 * norm; and rows into a linear not stored as fp8_gemm: an error. */
static void check_e4m3_rows(fused_check *c)
{
    const int64_t shapes[2][2] = {{360, 256}, {72, 208}};
    for (int si = 0; si < 2; si++) {
        const int64_t rows = shapes[si][0], dim = shapes[si][1];
        const size_t n = (size_t)(rows * dim), bytes = dit_e4m3_rows_bytes(rows, dim);
        float *x = malloc(n * sizeof *x), *shift = malloc(dim * sizeof *shift), *scale = malloc(dim * sizeof *scale);
        float *normed = malloc(n * sizeof *normed), *quantised = malloc(n * sizeof *quantised);
        fill_gaussian(x, n), fill_gaussian(shift, dim), fill_gaussian(scale, dim);
        for (size_t i = 0; i < n; i++)
            x[i] = 3.0f * x[i] + 0.5f;
        c->cpu->norm_modulate(c->cpu_ctx, x, rows, dim, 1e-6, shift, scale, normed, SLA2_DTYPE_F32);
        op_quantise_activations(normed, rows, (int)dim, quantised);
        float *dx = to_device(c, x, n * sizeof *x), *dshift = to_device(c, shift, dim * sizeof *shift);
        float *dscale = to_device(c, scale, dim * sizeof *scale);
        void *drows = to_device(c, NULL, bytes);
        sla2_status s = c->cuda->norm_modulate(c->gpu_ctx, dx, rows, dim, 1e-6, dshift, dscale, drows,
                                               DIT_ACT_E4M3_ROWS);
        uint8_t *host = malloc(bytes);
        if (s == SLA2_OK)
            s = c->cuda->download(c->gpu_ctx, host, drows, bytes);
        const float *scales = dit_e4m3_row_scales(host, rows, dim);
        float *got = malloc(n * sizeof *got);
        double scale_err = 0.0;
        for (int64_t r = 0; r < rows; r++) {
            float max_abs = 0.0f;
            for (int64_t d = 0; d < dim; d++)
                max_abs = fmaxf(max_abs, fabsf(normed[r * dim + d]));
            const double e = fabs(scales[r] - max_abs / 448.0f) / (max_abs / 448.0f);
            scale_err = e > scale_err || isnan(e) ? e : scale_err;
            for (int64_t d = 0; d < dim; d++)
                got[r * dim + d] = s == SLA2_OK ? sla2_e4m3_to_float(host[r * dim + d]) * scales[r] : NAN;
        }
        char what[64];
        snprintf(what, sizeof what, "norm_modulate, dim %d", (int)dim);
        report(c, what, "e4m3 rows", s, rel_l2(got, quantised, n), E4M3_ROWS_TOL);
        report(c, "  their row scales", "e4m3 rows", s, scale_err, E4M3_SCALE_TOL);

        twin_linear lin[3], ffn0, ffn2;
        for (int i = 0; i < 3; i++)
            make_linear(c, &lin[i], (int)dim, 192, DIT_WEIGHTS_FP8_GEMM);
        make_linear(c, &ffn0, (int)dim, 512, DIT_WEIGHTS_FP8_GEMM);
        make_linear(c, &ffn2, 512, (int)dim, DIT_WEIGHTS_FP8_GEMM);
        const size_t ny = (size_t)rows * 192;
        three_linears t;
        three_linears_init(c, &t, lin, ny, sizeof(uint16_t));
        c->cpu->linears(c->cpu_ctx, normed, SLA2_DTYPE_F32, rows, 3, t.host, (void *const *)t.ref);
        s = c->cuda->linears(c->gpu_ctx, drows, DIT_ACT_E4M3_ROWS, rows, 3, t.device, t.dys);
        double err = 0.0;
        for (int i = 0; i < 3; i++) {
            float *y = download_bf16(c, t.dys[i], ny);
            double e = rel_l2(y, t.ref[i], ny);
            err = e > err || isnan(e) ? e : err;
            free(y), free(t.ref[i]);
        }
        report(c, "  into linears (3), bf16 out", "e4m3 rows", s, err, BF16_OUT_TOL);

        float *acc = dyadic(n, 16, 1.0f / 8), *gate = dyadic((size_t)dim, 4, 0.25f);
        float *hidden = malloc((size_t)rows * 512 * sizeof *hidden), *y = malloc(n * sizeof *y);
        float *want = malloc(n * sizeof *want);
        memcpy(want, acc, n * sizeof *want);
        c->cpu->ffn_residual(c->cpu_ctx, normed, SLA2_DTYPE_F32, rows, &ffn0.host, &ffn2.host, gate, hidden, y, want);
        float *dacc = to_device(c, acc, n * sizeof *acc), *dgate = to_device(c, gate, dim * sizeof *gate);
        float *dhidden = to_device(c, NULL, (size_t)rows * 512 * sizeof(float)), *dy = to_device(c, NULL, n * 4);
        s = c->cuda->ffn_residual(c->gpu_ctx, drows, DIT_ACT_E4M3_ROWS, rows, &ffn0.device, &ffn2.device, dgate,
                                  dhidden, dy, dacc);
        float *out = download(c, dacc, n);
        report(c, "  into ffn_residual", "e4m3 rows", s, rel_l2(out, want, n), FP8_HIDDEN_TOL);
        free(out), free(acc), free(gate), free(hidden), free(y), free(want);

        if (si == 0) { /* rows into a bf16 linear: refused, nothing run */
            twin_linear plain;
            make_linear(c, &plain, (int)dim, 192, DIT_WEIGHTS_BF16);
            const dit_linear *one = &plain.device;
            s = c->cuda->linears(c->gpu_ctx, drows, DIT_ACT_E4M3_ROWS, rows, 1, &one, t.dys);
            const int refused =
                s == SLA2_ERR_DTYPE && strstr(sla2_context_last_error(c->gpu_ctx), "e4m3 rows") != NULL;
            printf("%-20s %-36s %s  %s\n", "fused op", "e4m3 rows into a bf16 linear", refused ? "ok  " : "FAIL",
                   sla2_context_last_error(c->gpu_ctx));
            c->failures += !refused;
            free_linear(&plain);
        }
        for (int i = 0; i < 3; i++)
            free_linear(&lin[i]);
        free_linear(&ffn0), free_linear(&ffn2);
        free(x), free(shift), free(scale), free(normed), free(quantised), free(host), free(got);
        release_all(c);
    }
}

int check_fused_ops(sla2_context *cpu_ctx, sla2_context *gpu_ctx)
{
    fused_check c = {.cpu_ctx = cpu_ctx, .gpu_ctx = gpu_ctx, .cpu = dit_backend_cpu(), .cuda = dit_backend_for(gpu_ctx)};
    check_norms(&c);
    const dit_weight_storage storages[] = {DIT_WEIGHTS_F32, DIT_WEIGHTS_BF16, DIT_WEIGHTS_INT8, DIT_WEIGHTS_FP8,
                                           DIT_WEIGHTS_FP8_GEMM};
    for (int i = 0; i < 5; i++) {
        check_linears(&c, storages[i]);
        check_ffn(&c, storages[i], 512);
    }
    check_ffn(&c, DIT_WEIGHTS_FP8_GEMM, 4112);
    check_ffn(&c, DIT_WEIGHTS_FP8_GEMM, 100);
    check_fp8_gemm_widths(&c);
    check_e4m3_rows(&c);
    return c.failures;
}
