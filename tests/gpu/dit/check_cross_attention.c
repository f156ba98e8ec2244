/* The fused cross-attention kernel (sdk/src/cuda/cross_attention.cu)
 * against op_dense_attention, the CPU's float32 reference, every row of
 * every case compared (the 1.3B shape included: a few seconds of OpenBLAS).
 *
 * Inputs: q, k, v near-Gaussian (rms 1), q scaled per head by 0.5, 1, 1.5,
 * 2 so that the softmax runs from diffuse to sharp (score spread sigma_s =
 * that scale). Every key's element 0 is 16 and every third query's element
 * 0 is +-(128..255): both exact in bf16, they add to each of those rows'
 * scores one shared offset of 181..361 (d = 128) or 256..510 (d = 64),
 * which leaves the softmax unchanged but overflows (or underflows to 0/0)
 * any exp that does not subtract the row's running max.
 *
 * Tolerance: the kernel rounds q, k, v and the probabilities P to bf16
 * (8 significant bits, relative error uniform in +-2^-9, rms 2^-9/sqrt 3 =
 * 1.1e-3); everything else is float32. Alone, each rounding moves the
 * output by (a float64 emulation of the kernel on these inputs, 500 x 512
 * keys, d = 128):
 *   - v: 1.1e-3 per element, 1.7e-3 of the output;
 *   - P: 1.0e-3;
 *   - q and k: a score error of about 2^-9 sqrt(2/3) sigma_s = 1.6e-3
 *     sigma_s, which moves the output by 1.3e-3 (sigma_s = 0.5) to 4.0e-3
 *     (sigma_s = 2), the largest term.
 * Together 2.9e-3 to 4.4e-3 per head, 4.2e-3 over the four scales. 1e-2
 * leaves room for the tensor cores' float32 accumulation order and still
 * catches a misplaced row or head, a lost rescale of the running sums or a
 * wrong tail mask (1e-1 and more); cosine >= 0.9999 (1e-2 relative error
 * is 1 - 5e-5). A NaN anywhere (an unwritten output, an exp without its
 * max) fails.
 *
 * The bf16 variant (the DiT's bf16 activations) takes q as bf16 (the
 * reference gets the same rounded q, which the kernel rounds anyway) and
 * writes bf16: one more rounding of the output, 2^-9 / sqrt 3 = 1.1e-3 rms,
 * inside the same tolerance. */
#include "check_cross_attention.h"
#include "check_util.h"

#include "cuda/cross_attention.h"
#include "dit/dit_backend.h"
#include "dit/dit_ops.h"
#include "numeric.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XATTN_TOL 1e-2
#define XATTN_COS 0.9999

typedef struct xattn_case {
    int64_t Lq, Lk, heads, head_dim;
} xattn_case;

static uint64_t rng = 20261123;

static void fill_inputs(const xattn_case *c, float *q, float *k, float *v)
{
    const int64_t hd = c->heads * c->head_dim;
    for (int64_t r = 0; r < c->Lq; r++)
        for (int64_t h = 0; h < c->heads; h++) {
            float *row = q + r * hd + h * c->head_dim;
            const float scale = 0.5f + 0.5f * (float)(h % 4);
            for (int64_t i = 0; i < c->head_dim; i++)
                row[i] = scale * gaussian(&rng);
            if (r % 3 == 1)
                row[0] = (float)((small_int(&rng, 1) >= 0 ? 1 : -1) * (128 + abs(small_int(&rng, 127))));
        }
    for (int64_t i = 0; i < c->Lk * hd; i++)
        k[i] = gaussian(&rng), v[i] = gaussian(&rng);
    for (int64_t j = 0; j < c->Lk * c->heads; j++)
        k[j * c->head_dim] = 16.0f;
}

static void *device_copy(const dit_backend *cuda, sla2_context *gpu_ctx, const void *host, size_t bytes)
{
    void *d = NULL;
    if (cuda->alloc(gpu_ctx, bytes, &d) != SLA2_OK || cuda->upload(gpu_ctx, d, host, bytes) != SLA2_OK) {
        fprintf(stderr, "FATAL: cross-attention check: %s\n", sla2_context_last_error(gpu_ctx));
        exit(EXIT_FAILURE);
    }
    return d;
}

static float *nan_filled(size_t n)
{
    float *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = NAN;
    return a;
}

static int run_case(sla2_context *gpu_ctx, const xattn_case *c, int bf16)
{
    const dit_backend *cuda = dit_backend_for(gpu_ctx);
    const size_t nq = (size_t)(c->Lq * c->heads * c->head_dim), nk = (size_t)(c->Lk * c->heads * c->head_dim);
    float *q = malloc(nq * sizeof *q), *k = malloc(nk * sizeof *k), *v = malloc(nk * sizeof *v);
    float *ref = malloc(nq * sizeof *ref), *got = nan_filled(nq);
    if (!q || !k || !v || !ref || !got) {
        fprintf(stderr, "FATAL: cross-attention check: out of host memory\n");
        exit(EXIT_FAILURE);
    }
    fill_inputs(c, q, k, v);
    /* bf16: q and out as bf16 codes in the first half of their float arrays (out NaN-filled: 0xffff) */
    uint16_t *got16 = (uint16_t *)got;
    if (bf16)
        for (size_t i = 0; i < nq; i++) {
            const uint16_t code = sla2_float_to_bf16(q[i]);
            q[i] = sla2_bf16_to_float(code); /* the reference's q */
            got16[i] = 0xffff;
        }
    const size_t q_bytes = nq * (bf16 ? 2 : sizeof(float));
    uint16_t *codes = malloc(q_bytes);
    if (!codes) {
        fprintf(stderr, "FATAL: cross-attention check: out of host memory\n");
        exit(EXIT_FAILURE);
    }
    for (size_t i = 0; bf16 && i < nq; i++)
        codes[i] = sla2_float_to_bf16(q[i]);
    float *dq = device_copy(cuda, gpu_ctx, bf16 ? (const void *)codes : q, q_bytes);
    float *dk = device_copy(cuda, gpu_ctx, k, nk * sizeof *k), *dv = device_copy(cuda, gpu_ctx, v, nk * sizeof *v);
    float *dout = device_copy(cuda, gpu_ctx, got, q_bytes);
    sla2_status s =
        sla2_cuda_cross_attention_for_test(gpu_ctx, dq, c->Lq, dk, dv, c->Lk, c->heads, c->head_dim, dout, bf16);
    if (s == SLA2_OK)
        s = cuda->download(gpu_ctx, bf16 ? (void *)codes : got, dout, q_bytes);
    for (size_t i = 0; s == SLA2_OK && bf16 && i < nq; i++)
        got[i] = sla2_bf16_to_float(codes[i]);
    free(codes);
    int ref_ok = op_dense_attention(q, c->Lq, k, v, c->Lk, c->heads, c->head_dim, ref);

    char label[64];
    snprintf(label, sizeof label, "%lld q x %lld k, %lld heads, d %lld%s", (long long)c->Lq, (long long)c->Lk,
             (long long)c->heads, (long long)c->head_dim, bf16 ? ", bf16" : "");
    int ok = 0;
    if (s != SLA2_OK)
        printf("%-20s %-36s FAIL  %s\n", "cross-attention", label, sla2_context_last_error(gpu_ctx));
    else if (!ref_ok)
        printf("%-20s %-36s FAIL  op_dense_attention: out of memory\n", "cross-attention", label);
    else {
        const double err = rel_l2(got, ref, nq), cos = cosine(got, ref, nq);
        ok = err <= XATTN_TOL && cos >= XATTN_COS; /* NaN fails both */
        printf("%-20s %-36s %-4s  %.3e  %.7f  %-22s %.0e\n", "cross-attention", label, ok ? "ok" : "FAIL", err, cos,
               "-", XATTN_TOL);
    }
    cuda->release(gpu_ctx, dq), cuda->release(gpu_ctx, dk), cuda->release(gpu_ctx, dv), cuda->release(gpu_ctx, dout);
    free(q), free(k), free(v), free(ref), free(got);
    return !ok;
}

/* The refusals a caller falls back on (or must fix): the status, a message
 * that names the problem, and the output left unwritten. */
static int check_refusals(sla2_context *gpu_ctx)
{
    const dit_backend *cuda = dit_backend_for(gpu_ctx);
    const size_t n = 4 * 2 * 128 + 4; /* 4 rows, 2 heads, d <= 128, room to misalign */
    float *host = nan_filled(n);
    for (size_t i = 0; i < n; i++)
        host[i] = (float)(i % 7) * 0.25f;
    float *dq = device_copy(cuda, gpu_ctx, host, n * sizeof *host);
    float *dkv = device_copy(cuda, gpu_ctx, host, n * sizeof *host);
    free(host);
    host = nan_filled(n);
    float *dout = device_copy(cuda, gpu_ctx, host, n * sizeof *host);
    const struct {
        const char *what;
        const float *q;
        int64_t Lk, head_dim;
        sla2_status status;
        const char *message;
    } refusals[] = {
        {"refuses head_dim 96", dq, 4, 96, SLA2_ERR_UNSUPPORTED, "head_dim 96"},
        {"refuses no keys", dq, 0, 64, SLA2_ERR_INVALID_VALUE, "no keys"},
        {"refuses misaligned q", dq + 1, 4, 64, SLA2_ERR_UNSUPPORTED, "aligned"},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        sla2_status s = sla2_cuda_cross_attention_for_test(gpu_ctx, refusals[i].q, 4, dkv, dkv, refusals[i].Lk, 2,
                                                           refusals[i].head_dim, dout, 0);
        const char *message = sla2_context_last_error(gpu_ctx);
        int unwritten = cuda->download(gpu_ctx, host, dout, n * sizeof *host) == SLA2_OK;
        for (size_t j = 0; j < n && unwritten; j++)
            unwritten = isnan(host[j]);
        int ok = s == refusals[i].status && strstr(message, refusals[i].message) && unwritten;
        printf("%-20s %-36s %-4s  %s\n", "cross-attention", refusals[i].what, ok ? "ok" : "FAIL", message);
        failures += !ok;
    }
    cuda->release(gpu_ctx, dq), cuda->release(gpu_ctx, dkv), cuda->release(gpu_ctx, dout);
    free(host);
    return failures;
}

/* The table's dense_attention where the fused kernel refuses (head_dim 96):
 * the float32 GEMM path, with bf16 q widened and the output rounded back. */
static int check_fallback(sla2_context *gpu_ctx, int bf16)
{
    const dit_backend *cuda = dit_backend_for(gpu_ctx);
    const xattn_case c = {300, 77, 3, 96};
    const size_t nq = (size_t)(c.Lq * c.heads * c.head_dim), nk = (size_t)(c.Lk * c.heads * c.head_dim);
    float *q = malloc(nq * sizeof *q), *k = malloc(nk * sizeof *k), *v = malloc(nk * sizeof *v);
    float *ref = malloc(nq * sizeof *ref), *got = nan_filled(nq);
    uint16_t *codes = malloc(nq * sizeof *codes);
    if (!q || !k || !v || !ref || !got || !codes) {
        fprintf(stderr, "FATAL: cross-attention check: out of host memory\n");
        exit(EXIT_FAILURE);
    }
    fill_inputs(&c, q, k, v);
    for (size_t i = 0; i < nq; i++) {
        codes[i] = sla2_float_to_bf16(q[i]);
        if (bf16)
            q[i] = sla2_bf16_to_float(codes[i]);
    }
    const size_t q_bytes = nq * (bf16 ? sizeof *codes : sizeof *q);
    void *dq = device_copy(cuda, gpu_ctx, bf16 ? (const void *)codes : q, q_bytes);
    float *dk = device_copy(cuda, gpu_ctx, k, nk * sizeof *k), *dv = device_copy(cuda, gpu_ctx, v, nk * sizeof *v);
    void *dout = device_copy(cuda, gpu_ctx, got, nq * sizeof *got);
    const sla2_dtype act = bf16 ? SLA2_DTYPE_BF16 : SLA2_DTYPE_F32;
    sla2_status s = cuda->dense_attention(gpu_ctx, dq, c.Lq, dk, dv, c.Lk, c.heads, c.head_dim, dout, act);
    if (s == SLA2_OK)
        s = cuda->download(gpu_ctx, bf16 ? (void *)codes : got, dout, q_bytes);
    for (size_t i = 0; s == SLA2_OK && bf16 && i < nq; i++)
        got[i] = sla2_bf16_to_float(codes[i]);
    const int ref_ok = op_dense_attention(q, c.Lq, k, v, c.Lk, c.heads, c.head_dim, ref);
    /* the GEMMs may round to TF32 (10 bits), the bf16 variant its q and out
     * to bf16: the kernel's tolerance covers both, and a misplaced row or
     * head is O(1) */
    const double tol = XATTN_TOL, err = rel_l2(got, ref, nq);
    const int ok = s == SLA2_OK && ref_ok && err <= tol; /* NaN fails */
    printf("%-20s %-36s %-4s  %.3e  %-33s %.0e\n", "cross-attention", bf16 ? "GEMM fallback, d 96, bf16" : "GEMM fallback, d 96",
           ok ? "ok" : "FAIL", err, s == SLA2_OK ? "-" : sla2_context_last_error(gpu_ctx), tol);
    cuda->release(gpu_ctx, dq), cuda->release(gpu_ctx, dk), cuda->release(gpu_ctx, dv), cuda->release(gpu_ctx, dout);
    free(q), free(k), free(v), free(ref), free(got), free(codes);
    return !ok;
}

int check_cross_attention(sla2_context *gpu_ctx, int quick)
{
    const xattn_case cases[] = {
        {32760, 512, 12, 128}, /* Wan2.1-1.3B at 480p */
        {1, 1, 1, 64},
        {1000, 77, 3, 64},
        {4096, 512, 2, 128},
        {130, 513, 5, 128}, /* one key past a tile, rows past a block */
    };
    int failures = 0;
    for (size_t i = quick ? 1 : 0; i < sizeof cases / sizeof cases[0]; i++) /* quick: not the 1.3B shape */
        for (int bf16 = 0; bf16 < 2; bf16++)
            failures += run_case(gpu_ctx, &cases[i], bf16);
    failures += check_fallback(gpu_ctx, 0) + check_fallback(gpu_ctx, 1);
    return failures + check_refusals(gpu_ctx);
}
