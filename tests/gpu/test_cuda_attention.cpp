/* GPU test: the CUDA backend against the CPU backend on fresh random inputs.
 *
 * For each case: random Q, K, V (never zeros; K gets a per-channel offset so
 * that smoothing matters; some cases scale Q and K up), random router and
 * alpha parameters, both contexts run the same call, outputs poisoned with
 * NaN before. Printed per case: relative L2 error, cosine, block-mask
 * mismatches, mean-alpha difference. A case fails past its tolerance (see
 * tolerance_for), on any non-finite output, on a mask mismatch, or on a
 * statistic that disagrees.
 *
 * Usage: sla2_gpu_test [--quick] [--list N] [--seed S] [--verbose]
 *   --quick: the small case list (for compute-sanitizer). */
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

extern "C" {
#include "sla2/sla2.h"
}

#define CUDA_OK(call)                                                                                  \
    do {                                                                                               \
        cudaError_t e_ = (call);                                                                       \
        if (e_ != cudaSuccess) {                                                                       \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));     \
            exit(2);                                                                                   \
        }                                                                                              \
    } while (0)

/* ---- Random numbers (fixed seeds; splitmix64 + Box-Muller) ---------------- */
struct Rng {
    uint64_t s;
    uint64_t next()
    {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
    float normal()
    {
        double u1 = uniform(), u2 = uniform();
        if (u1 < 1e-300)
            u1 = 1e-300;
        return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
    int below(int n) { return (int)(next() % (uint64_t)n); }
};

/* ---- Host element conversion (round to nearest even) ---------------------- */
static uint16_t f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffff) > 0x7f800000)
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
static float bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}
static uint16_t f32_to_f16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffff;
    if (a > 0x7f800000)
        return sign | 0x7e00;
    if (a >= 0x477ff000)
        return sign | 0x7c00;
    float af;
    memcpy(&af, &a, 4);
    if (af < 6.103515625e-05f)
        return sign | (uint16_t)lrintf(af * 16777216.0f);
    uint32_t r = a + 0x0fff + ((a >> 13) & 1);
    return sign | (uint16_t)((((r >> 23) - 112) << 10) | ((r >> 13) & 0x3ff));
}
static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    int e = (h >> 10) & 0x1f;
    uint32_t m = h & 0x3ff, u;
    if (e == 0x1f)
        u = sign | 0x7f800000 | (m << 13);
    else if (e == 0) {
        float v = ldexpf((float)m, -24);
        return sign ? -v : v;
    } else
        u = sign | ((uint32_t)(e + 112) << 23) | (m << 13);
    float x;
    memcpy(&x, &u, 4);
    return x;
}
static void put(void *buf, sla2_dtype dt, size_t i, float x)
{
    if (dt == SLA2_DTYPE_F32)
        ((float *)buf)[i] = x;
    else if (dt == SLA2_DTYPE_F16)
        ((uint16_t *)buf)[i] = f32_to_f16(x);
    else
        ((uint16_t *)buf)[i] = f32_to_bf16(x);
}
static float get(const void *buf, sla2_dtype dt, size_t i)
{
    if (dt == SLA2_DTYPE_F32)
        return ((const float *)buf)[i];
    if (dt == SLA2_DTYPE_F16)
        return f16_to_f32(((const uint16_t *)buf)[i]);
    return bf16_to_f32(((const uint16_t *)buf)[i]);
}

/* ---- Cases ---------------------------------------------------------------- */
enum { ALPHA_ONE, ALPHA_HEAD, ALPHA_ROW, SLA_V1 };
static const char *alpha_names[] = {"one", "head", "row", "v1"};

struct Case {
    sla2_quant_mode mode;
    int D, bq;
    sla2_dtype dtype, out_dtype;
    int blhd_in, blhd_out; /* layouts */
    int B, H, L;
    int alpha; /* ALPHA_* */
    int router; /* 0 none, 1 shared [D,D], 2 per head [H,D,D] */
    sla2_feature_map phi;
    float topk;
    float magnitude; /* Q and K scale */
    /* elements the output view starts into its buffer: 0; 2 (pairs of
     * channels aligned, quads not) or 1 (neither), the kernels' narrower
     * output paths */
    int out_shift = 0;
};

static std::string describe(const Case &c)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%-8s D%-3d bq%-3d %-4s>%-4s %s>%s B%dH%-2d L%-5d a=%-4s r=%d %-7s topk%.2f x%g%s",
             sla2_quant_mode_name(c.mode), c.D, c.bq, sla2_dtype_name(c.dtype), sla2_dtype_name(c.out_dtype),
             c.blhd_in ? "blhd" : "bhld", c.blhd_out ? "blhd" : "bhld", c.B, c.H, c.L, alpha_names[c.alpha],
             c.router, sla2_feature_map_name(c.phi), c.topk, c.magnitude,
             c.out_shift ? (c.out_shift == 1 ? " out+1" : " out+2") : "");
    return buf;
}

/* Tolerances (relative L2 over the whole output), and why:
 * - INT8 / INT8_FP8: both sides round Q, K~, P and V identically; what
 *   differs is float summation order, expf, and the linear branch, which the
 *   GPU runs with phi in fp16 (2^-11 relative per element) against the CPU's
 *   float/double. A rounding boundary crossed by a last-bit difference moves
 *   one INT8 or e4m3 value by one step, rarely. 5e-3 bounds this with room;
 *   typical values are ~1e-4 to 1e-3.
 * - NONE: the GPU rounds P (and V for F32 inputs) to fp16 for P.V, which
 *   the CPU does not: ~2^-11 per element, averaged; Q.K^T is exact for
 *   F16/BF16 inputs and about FP32 for F32 (three fp16 products). 5e-3.
 * - cosine must be >= 0.99999 - 10 * tol^2 (the same bound seen as an angle). */
static double tolerance_for(const Case &c)
{
    (void)c;
    return 5e-3;
}

struct Buffers {
    std::vector<char> q, k, v;
    std::vector<float> rq, rk, alpha, alpha_w, alpha_b, proj_w, proj_b;
};

static sla2_tensor view(void *data, const Case &c, sla2_dtype dt, int blhd)
{
    return blhd ? sla2_tensor_blhd(data, dt, c.B, c.H, c.L, c.D) : sla2_tensor_bhld(data, dt, c.B, c.H, c.L, c.D);
}

static void fill_inputs(const Case &c, Rng &rng, Buffers &b)
{
    const size_t n = (size_t)c.B * c.H * c.L * c.D, es = sla2_dtype_size(c.dtype);
    b.q.assign(n * es, 0);
    b.k.assign(n * es, 0);
    b.v.assign(n * es, 0);
    std::vector<float> k_offset(c.D);
    for (int d = 0; d < c.D; ++d)
        k_offset[d] = 0.5f * rng.normal();
    for (size_t i = 0; i < n; ++i) {
        put(b.q.data(), c.dtype, i, c.magnitude * rng.normal());
        put(b.k.data(), c.dtype, i, c.magnitude * (rng.normal() + k_offset[i % c.D]));
        put(b.v.data(), c.dtype, i, rng.normal());
    }
    const int D = c.D, H = c.H;
    b.rq.clear();
    b.rk.clear();
    if (c.router) {
        size_t m = (size_t)(c.router == 2 ? H : 1) * D * D;
        b.rq.resize(m);
        b.rk.resize(m);
        for (size_t i = 0; i < m; ++i) {
            b.rq[i] = rng.normal() / sqrtf((float)D) + ((i / D) % D == i % D ? 1.0f : 0.0f);
            b.rk[i] = rng.normal() / sqrtf((float)D) + ((i / D) % D == i % D ? 1.0f : 0.0f);
        }
    }
    b.alpha.resize(H);
    b.alpha_w.resize((size_t)H * D);
    b.alpha_b.resize(H);
    b.proj_w.resize((size_t)D * D);
    b.proj_b.resize(D);
    for (auto &x : b.alpha)
        x = rng.normal();
    for (auto &x : b.alpha_w)
        x = rng.normal() / sqrtf((float)D) / c.magnitude;
    for (auto &x : b.alpha_b)
        x = 0.5f * rng.normal();
    for (auto &x : b.proj_w)
        x = rng.normal() / sqrtf((float)D);
    for (auto &x : b.proj_b)
        x = 0.1f * rng.normal();
}

/* Parameters as tensors whose data lives where `where` says (host or device). */
struct ParamSet {
    sla2_tensor rq, rk, alpha, alpha_w, alpha_b, proj_w, proj_b;
    sla2_attention_params params;
    std::vector<void *> device_ptrs;
};

static void *place(const std::vector<float> &h, bool device, ParamSet &ps)
{
    if (!device)
        return (void *)h.data();
    void *d = nullptr;
    CUDA_OK(cudaMalloc(&d, h.size() * sizeof(float)));
    CUDA_OK(cudaMemcpy(d, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
    ps.device_ptrs.push_back(d);
    return d;
}

static void make_params(const Case &c, Buffers &b, bool device, ParamSet &ps)
{
    memset(&ps.params, 0, sizeof ps.params);
    int64_t dd[3] = {c.H, c.D, c.D};
    if (c.router) {
        ps.rq = sla2_tensor_contiguous(place(b.rq, device, ps), SLA2_DTYPE_F32, c.router == 2 ? 3 : 2,
                                       c.router == 2 ? dd : dd + 1);
        ps.rk = sla2_tensor_contiguous(place(b.rk, device, ps), SLA2_DTYPE_F32, c.router == 2 ? 3 : 2,
                                       c.router == 2 ? dd : dd + 1);
        ps.params.router_q = &ps.rq;
        ps.params.router_k = &ps.rk;
    }
    int64_t h1[1] = {c.H}, hd[2] = {c.H, c.D}, d2[2] = {c.D, c.D}, d1[1] = {c.D};
    if (c.alpha == ALPHA_HEAD) {
        ps.alpha = sla2_tensor_contiguous(place(b.alpha, device, ps), SLA2_DTYPE_F32, 1, h1);
        ps.params.alpha = &ps.alpha;
    } else if (c.alpha == ALPHA_ROW) {
        ps.alpha_w = sla2_tensor_contiguous(place(b.alpha_w, device, ps), SLA2_DTYPE_F32, 2, hd);
        ps.alpha_b = sla2_tensor_contiguous(place(b.alpha_b, device, ps), SLA2_DTYPE_F32, 1, h1);
        ps.params.alpha_w = &ps.alpha_w;
        ps.params.alpha_b = &ps.alpha_b;
    } else if (c.alpha == SLA_V1) {
        ps.proj_w = sla2_tensor_contiguous(place(b.proj_w, device, ps), SLA2_DTYPE_F32, 2, d2);
        ps.proj_b = sla2_tensor_contiguous(place(b.proj_b, device, ps), SLA2_DTYPE_F32, 1, d1);
        ps.params.proj_l_weight = &ps.proj_w;
        ps.params.proj_l_bias = &ps.proj_b;
    }
}

struct RunOut {
    std::vector<float> out; /* logical [B][H][L][D] */
    std::vector<uint8_t> mask;
    sla2_attention_stats stats;
    sla2_status status;
    std::string error;
    size_t non_finite = 0;
};

static RunOut run_case(sla2_context *ctx, bool device, const Case &c, Buffers &b)
{
    RunOut r;
    const size_t n = (size_t)c.B * c.H * c.L * c.D, es = sla2_dtype_size(c.dtype);
    const size_t oes = sla2_dtype_size(c.out_dtype);
    ParamSet ps;
    make_params(c, b, device, ps);
    void *q = b.q.data(), *k = b.k.data(), *v = b.v.data();
    const size_t out_bytes = (n + c.out_shift) * oes;
    std::vector<char> out_host(out_bytes, (char)0xff); /* NaN in every dtype */
    void *out = out_host.data();
    if (device) {
        CUDA_OK(cudaMalloc(&q, n * es));
        CUDA_OK(cudaMalloc(&k, n * es));
        CUDA_OK(cudaMalloc(&v, n * es));
        CUDA_OK(cudaMalloc(&out, out_bytes));
        CUDA_OK(cudaMemcpy(q, b.q.data(), n * es, cudaMemcpyHostToDevice));
        CUDA_OK(cudaMemcpy(k, b.k.data(), n * es, cudaMemcpyHostToDevice));
        CUDA_OK(cudaMemcpy(v, b.v.data(), n * es, cudaMemcpyHostToDevice));
        CUDA_OK(cudaMemset(out, 0xff, out_bytes));
    }
    sla2_tensor tq = view(q, c, c.dtype, c.blhd_in), tk = view(k, c, c.dtype, !c.blhd_in),
                tv = view(v, c, c.dtype, c.blhd_in),
                to = view(static_cast<char *>(out) + c.out_shift * oes, c, c.out_dtype, c.blhd_out);
    sla2_attention_config cfg;
    sla2_attention_config_default(&cfg);
    cfg.block_q = c.bq;
    cfg.block_k = 64;
    cfg.topk = c.topk;
    cfg.quant = c.mode;
    cfg.feature_map = c.phi;
    sla2_attention_stats_default(&r.stats);
    const int64_t nq = (c.L + c.bq - 1) / c.bq, nk = (c.L + 63) / 64;
    r.mask.assign((size_t)c.B * c.H * nq * nk, 0xee);
    r.stats.block_mask = r.mask.data();
    r.stats.block_mask_elems = r.mask.size();
    r.status = sla2_attention_forward(ctx, &cfg, &ps.params, &tq, &tk, &tv, &to, &r.stats);
    if (r.status != SLA2_OK)
        r.error = sla2_context_last_error(ctx);
    if (device) {
        CUDA_OK(cudaDeviceSynchronize());
        CUDA_OK(cudaMemcpy(out_host.data(), out, out_bytes, cudaMemcpyDeviceToHost));
        cudaFree(q), cudaFree(k), cudaFree(v), cudaFree(out);
    }
    for (void *p : ps.device_ptrs)
        cudaFree(p);
    /* logical order [b][h][l][d] from the output's layout */
    r.out.resize(n);
    for (int bi = 0; bi < c.B; ++bi)
        for (int h = 0; h < c.H; ++h)
            for (int l = 0; l < c.L; ++l)
                for (int d = 0; d < c.D; ++d) {
                    size_t src = c.blhd_out ? (((size_t)bi * c.L + l) * c.H + h) * c.D + d
                                            : (((size_t)bi * c.H + h) * c.L + l) * c.D + d;
                    float x = get(out_host.data() + c.out_shift * oes, c.out_dtype, src);
                    r.out[(((size_t)bi * c.H + h) * c.L + l) * c.D + d] = x;
                    if (!isfinite(x))
                        ++r.non_finite;
                }
    return r;
}

static std::vector<Case> build_cases(bool quick, Rng &rng)
{
    std::vector<Case> cases;
    const sla2_quant_mode modes[3] = {SLA2_QUANT_NONE, SLA2_QUANT_INT8, SLA2_QUANT_INT8_FP8};
    const sla2_dtype dtypes[3] = {SLA2_DTYPE_F16, SLA2_DTYPE_BF16, SLA2_DTYPE_F32};
    /* (L, B, H): every L of the brief, B*H up to 64 where L is small. */
    struct Shape { int L, B, H; };
    const Shape full_shapes[] = {{1, 4, 16}, {63, 2, 32}, {65, 1, 64}, {4097, 1, 2}, {4000, 2, 1}, {300, 3, 5}};
    const Shape quick_shapes[] = {{1, 2, 3}, {63, 1, 2}, {65, 2, 1}, {200, 1, 2}};
    const int nshapes = quick ? 4 : 6;
    int counter = 0;
    for (int m = 0; m < 3; ++m)
        for (int D : {64, 128})
            for (int bq : {64, 128})
                for (int t = 0; t < 3; ++t) {
                    const int per_combo = quick ? 1 : 2;
                    for (int rep = 0; rep < per_combo; ++rep, ++counter) {
                        Case c;
                        c.mode = modes[m];
                        c.D = D;
                        c.bq = bq;
                        c.dtype = dtypes[t];
                        c.out_dtype = dtypes[(t + counter) % 3];
                        c.blhd_in = counter & 1;
                        c.blhd_out = (counter >> 1) & 1;
                        const Shape s = quick ? quick_shapes[counter % nshapes] : full_shapes[counter % nshapes];
                        c.L = s.L, c.B = s.B, c.H = s.H;
                        c.alpha = counter % 4;
                        c.router = (counter / 4) % 3;
                        c.phi = (sla2_feature_map)((counter / 3) % 3);
                        const float topks[4] = {0.2f, 0.5f, 0.05f, 1.0f};
                        c.topk = topks[(counter / 2) % 4];
                        c.magnitude = (counter % 5 == 4) ? 6.0f : 1.0f;
                        cases.push_back(c);
                    }
                }
    if (!quick) {
        /* Dense baseline (topk 1, alpha 1) and the large-magnitude extremes. */
        for (int m = 0; m < 3; ++m)
            for (int D : {64, 128}) {
                Case c = cases[0];
                c.mode = modes[m];
                c.D = D;
                c.bq = 128;
                c.dtype = SLA2_DTYPE_BF16;
                c.out_dtype = SLA2_DTYPE_BF16;
                c.L = 1000, c.B = 1, c.H = 3;
                c.alpha = ALPHA_ONE;
                c.router = 0;
                c.topk = 1.0f;
                c.magnitude = 1.0f;
                cases.push_back(c);
                c.topk = 0.1f;
                c.alpha = ALPHA_ROW;
                c.magnitude = 12.0f;
                c.phi = SLA2_FEATURE_ELU;
                c.dtype = SLA2_DTYPE_F16;
                cases.push_back(c);
                /* outputs off the 4-element alignment: the epilogues' paired and single-element stores */
                c.magnitude = 1.0f;
                c.phi = SLA2_FEATURE_SOFTMAX;
                c.blhd_out = 1;
                for (int shift : {2, 1}) {
                    c.out_shift = shift;
                    c.out_dtype = shift == 2 ? SLA2_DTYPE_BF16 : SLA2_DTYPE_F32;
                    cases.push_back(c);
                }
            }
    }
    (void)rng;
    return cases;
}

int main(int argc, char **argv)
{
    bool quick = false, verbose = false;
    int only = -1;
    uint64_t seed = 20261122;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--verbose"))
            verbose = true;
        else if (!strcmp(argv[i], "--list") && i + 1 < argc)
            only = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], nullptr, 10);
    }
    char err[256];
    sla2_context_options opt;
    sla2_context *gpu = nullptr, *cpu_ref = nullptr, *cpu_fast = nullptr;
    sla2_context_options_default(&opt);
    opt.backend = SLA2_BACKEND_CUDA;
    if (sla2_context_create(&opt, &gpu, err, sizeof err) != SLA2_OK) {
        fprintf(stderr, "no CUDA context: %s\n", err);
        return 2;
    }
    sla2_context_options_default(&opt);
    opt.backend = SLA2_BACKEND_CPU;
    opt.cpu_reference = 1;
    if (sla2_context_create(&opt, &cpu_ref, err, sizeof err) != SLA2_OK)
        return fprintf(stderr, "no CPU context: %s\n", err), 2;
    opt.cpu_reference = 0;
    if (sla2_context_create(&opt, &cpu_fast, err, sizeof err) != SLA2_OK)
        return fprintf(stderr, "no CPU context: %s\n", err), 2;
    printf("GPU: %s   CPU: %s\n", sla2_context_device_name(gpu), sla2_context_device_name(cpu_fast));

    Rng rng{seed};
    std::vector<Case> cases = build_cases(quick, rng);
    int failures = 0, run = 0;
    double worst[3] = {0, 0, 0};
    printf("%-4s %-92s %-4s %10s %10s %6s %9s %s\n", "#", "case", "cpu", "rel_l2", "cosine", "mask", "d_alpha",
           "result");
    for (size_t ci = 0; ci < cases.size(); ++ci) {
        if (only >= 0 && (int)ci != only)
            continue;
        const Case &c = cases[ci];
        Buffers b;
        Rng case_rng{seed * 1000003ull + ci};
        fill_inputs(c, case_rng, b);
        const int64_t nq = (c.L + c.bq - 1) / c.bq;
        const double ref_cost = (double)nq * c.L * c.D * c.D * c.B * c.H;
        const bool use_ref = ref_cost <= 1.5e9;
        RunOut g = run_case(gpu, true, c, b);
        RunOut h = run_case(use_ref ? cpu_ref : cpu_fast, false, c, b);
        ++run;
        std::string why;
        double rel = NAN, cosv = NAN;
        size_t mask_diff = 0;
        if (g.status != SLA2_OK || h.status != SLA2_OK) {
            why = "status gpu=" + std::string(sla2_status_string(g.status)) + " (" + g.error + ") cpu=" +
                  sla2_status_string(h.status) + " (" + h.error + ")";
        } else {
            double num = 0, den = 0, dot = 0, gg = 0;
            for (size_t i = 0; i < g.out.size(); ++i) {
                double a = g.out[i], r = h.out[i];
                num += (a - r) * (a - r);
                den += r * r;
                dot += a * r;
                gg += a * a;
            }
            rel = sqrt(num / den);
            cosv = dot / sqrt(gg * den);
            for (size_t i = 0; i < g.mask.size(); ++i)
                mask_diff += g.mask[i] != h.mask[i];
            const double tol = tolerance_for(c);
            if (g.non_finite)
                why += "non-finite outputs: " + std::to_string(g.non_finite) + "; ";
            if (!(rel <= tol))
                why += "rel_l2 over " + std::to_string(tol) + "; ";
            if (!(cosv >= 0.99999 - 10 * tol * tol))
                why += "cosine; ";
            if (mask_diff)
                why += "block masks differ; ";
            if (g.stats.kept_blocks_total != h.stats.kept_blocks_total ||
                g.stats.kept_per_q_block != h.stats.kept_per_q_block)
                why += "kept-block statistics differ; ";
            if (fabs(g.stats.mean_alpha - h.stats.mean_alpha) > 1e-5)
                why += "mean_alpha differs; ";
            sla2_quant_mode expect = h.stats.quant_used;
            if (c.mode == SLA2_QUANT_INT8_FP8 && g.stats.quant_used == SLA2_QUANT_INT8)
                expect = SLA2_QUANT_INT8; /* sm_8x: allowed fallback */
            if (g.stats.quant_used != expect)
                why += "quant_used differs; ";
            worst[c.mode] = fmax(worst[c.mode], rel);
        }
        const bool ok = why.empty();
        failures += !ok;
        if (!ok || verbose || !quick)
            printf("%-4zu %-92s %-4s %10.3e %10.7f %6zu %9.2e %s%s\n", ci, describe(c).c_str(),
                   use_ref ? "ref" : "fast", rel, cosv, mask_diff, fabs(g.stats.mean_alpha - h.stats.mean_alpha),
                   ok ? "ok" : "FAIL: ", why.c_str());
        fflush(stdout);
    }
    printf("\n%d cases, %d failed; worst rel_l2: none %.3e, int8 %.3e, int8_fp8 %.3e\n", run, failures, worst[0],
           worst[1], worst[2]);
    sla2_context_free(gpu);
    sla2_context_free(cpu_ref);
    sla2_context_free(cpu_fast);
    return failures ? 1 : 0;
}
