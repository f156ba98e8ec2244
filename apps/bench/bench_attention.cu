/* sla2-bench attention: times the SLA2 operator on the GPU.
 *
 *   sla2-bench attention [--shape B,H,L,D]... [--sparsity S]... [--modes none,int8,int8_fp8]
 *                        [--alpha head|one] [--runs N] [--warmup N] [--block-q 64|128] [--dtype bf16|f16|f32]
 *
 * Defaults: shapes (1,12,32760,128) (Wan2.1-1.3B, 480p) and (1,40,75600,128)
 * (Wan2.1-14B, 720p); sparsity 0.90, 0.95, 0.97; all three modes with a
 * per-head alpha (both branches run); and the SDK's dense mode (topk 1,
 * alpha 1, mode none) as the baseline. For each: the median over the runs
 * of the whole operator as measured by CUDA events between its stages
 * (gpu_ms), the host-observed time of the call (api_ms, includes launch
 * and the final synchronisation), the speedup over dense, the tensor-core
 * rate on the kept blocks (4 * bq * 64 * D operations per kept block pair
 * over the sparse kernel's time), and the stage breakdown. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string>
#include <vector>

extern "C" {
#include "bench.h"
#include "sla2/sla2.h"
}
#include "sla2_cuda_profile.h"

#define CUDA_OK(call)                                                                                \
    do {                                                                                             \
        cudaError_t e_ = (call);                                                                     \
        if (e_ != cudaSuccess) {                                                                     \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));   \
            exit(2);                                                                                 \
        }                                                                                            \
    } while (0)

/* Roughly normal values (sum of four uniforms), cheap to make on the device. */
__global__ void fill_random(void *dst, sla2_dtype dt, size_t n, uint64_t seed, float scale)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint64_t z = seed + i * 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        float s = 0.0f;
        for (int k = 0; k < 4; ++k)
            s += (float)((z >> (16 * k)) & 0xffff) * (1.0f / 65536.0f);
        float x = (s - 2.0f) * 1.7320508f * scale;
        if (dt == SLA2_DTYPE_F32)
            ((float *)dst)[i] = x;
        else if (dt == SLA2_DTYPE_F16)
            ((__half *)dst)[i] = __float2half_rn(x);
        else
            ((__nv_bfloat16 *)dst)[i] = __float2bfloat16_rn(x);
    }
}

struct Shape { long long B, H, L, D; };

struct Result {
    double gpu_ms, api_ms, stage_ms[SLA2_CUDA_PROFILE_STAGES];
    long long kept_total;
};

static double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int run(sla2_context *ctx, const Shape &s, sla2_dtype dt, int block_q, sla2_quant_mode mode, float topk,
               bool alpha_on, const float *d_alpha, int warmup, int runs, void *q, void *k, void *v, void *o,
               Result *r)
{
    sla2_tensor tq = sla2_tensor_blhd(q, dt, s.B, s.H, s.L, s.D);
    sla2_tensor tk = sla2_tensor_blhd(k, dt, s.B, s.H, s.L, s.D);
    sla2_tensor tv = sla2_tensor_blhd(v, dt, s.B, s.H, s.L, s.D);
    sla2_tensor to = sla2_tensor_blhd(o, dt, s.B, s.H, s.L, s.D);
    sla2_attention_config cfg;
    sla2_attention_config_default(&cfg);
    cfg.block_q = block_q;
    cfg.topk = topk;
    cfg.quant = mode;
    int64_t h1[1] = {s.H};
    sla2_tensor talpha = sla2_tensor_contiguous((void *)d_alpha, SLA2_DTYPE_F32, 1, h1);
    sla2_attention_params params;
    memset(&params, 0, sizeof params);
    if (alpha_on)
        params.alpha = &talpha;
    sla2_attention_stats stats;
    std::vector<double> gpu, api, stage[SLA2_CUDA_PROFILE_STAGES];
    for (int it = 0; it < warmup + runs; ++it) {
        sla2_attention_stats_default(&stats);
        auto t0 = std::chrono::steady_clock::now();
        sla2_status st = sla2_attention_forward(ctx, &cfg, &params, &tq, &tk, &tv, &to, &stats);
        auto t1 = std::chrono::steady_clock::now();
        if (st != SLA2_OK) {
            fprintf(stderr, "forward failed: %s: %s\n", sla2_status_string(st), sla2_context_last_error(ctx));
            return 1;
        }
        if (it < warmup)
            continue;
        float ms[SLA2_CUDA_PROFILE_STAGES];
        sla2_cuda_stage_times(ctx, ms);
        double total = 0;
        for (int i = 0; i < SLA2_CUDA_PROFILE_STAGES; ++i) {
            stage[i].push_back(ms[i]);
            total += ms[i];
        }
        gpu.push_back(total);
        api.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    r->gpu_ms = median(gpu);
    r->api_ms = median(api);
    for (int i = 0; i < SLA2_CUDA_PROFILE_STAGES; ++i)
        r->stage_ms[i] = median(stage[i]);
    r->kept_total = stats.kept_blocks_total;
    return 0;
}

static void usage(FILE *to = stderr)
{
    fprintf(to, "usage: sla2-bench attention [--shape B,H,L,D]... [--sparsity S]... [--modes none,int8,int8_fp8]\n"
                "                            [--alpha head|one] [--runs N] [--warmup N] [--block-q 64|128]\n"
                "                            [--dtype bf16|f16|f32]\n"
                "Times the SLA2 operator on the GPU (see the top of apps/bench/bench_attention.cu).\n");
}

/* argv[0] is "attention" */
extern "C" int bench_attention_main(int argc, char **argv)
{
    std::vector<Shape> shapes;
    std::vector<float> sparsities;
    std::vector<sla2_quant_mode> modes;
    int runs = 20, warmup = 3, block_q = 128;
    bool alpha_on = true; /* --alpha one: alpha = 1, the linear branch is skipped */
    sla2_dtype dt = SLA2_DTYPE_BF16;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : nullptr;
        if (a == "--help" || a == "-h") {
            usage(stdout);
            return 0;
        } else if (a == "--shape" && next) {
            Shape s;
            if (sscanf(next, "%lld,%lld,%lld,%lld", &s.B, &s.H, &s.L, &s.D) != 4)
                return usage(), 2;
            shapes.push_back(s), ++i;
        } else if (a == "--sparsity" && next) {
            sparsities.push_back((float)atof(next)), ++i;
        } else if (a == "--modes" && next) {
            std::string m = std::string(next) + ",";
            ++i;
            for (size_t at = 0, comma; (comma = m.find(',', at)) != std::string::npos; at = comma + 1) {
                std::string name = m.substr(at, comma - at);
                if (name == "none")
                    modes.push_back(SLA2_QUANT_NONE);
                else if (name == "int8")
                    modes.push_back(SLA2_QUANT_INT8);
                else if (name == "int8_fp8")
                    modes.push_back(SLA2_QUANT_INT8_FP8);
                else
                    return usage(), 2;
            }
        } else if (a == "--alpha" && next) {
            alpha_on = strcmp(next, "one") != 0, ++i;
        } else if (a == "--runs" && next) {
            runs = std::max(1, atoi(next)), ++i;
        } else if (a == "--warmup" && next) {
            warmup = std::max(0, atoi(next)), ++i;
        } else if (a == "--block-q" && next) {
            block_q = atoi(next), ++i;
        } else if (a == "--dtype" && next) {
            std::string d = next;
            ++i;
            dt = d == "f32" ? SLA2_DTYPE_F32 : d == "f16" ? SLA2_DTYPE_F16 : SLA2_DTYPE_BF16;
        } else {
            usage();
            return 2;
        }
    }
    if (shapes.empty())
        shapes = {{1, 12, 32760, 128}, {1, 40, 75600, 128}};
    if (sparsities.empty())
        sparsities = {0.90f, 0.95f, 0.97f};
    if (modes.empty())
        modes = {SLA2_QUANT_NONE, SLA2_QUANT_INT8, SLA2_QUANT_INT8_FP8};

    sla2_context_options opt;
    sla2_context_options_default(&opt);
    opt.backend = SLA2_BACKEND_CUDA;
    sla2_context *ctx = nullptr;
    char err[256];
    if (sla2_context_create(&opt, &ctx, err, sizeof err) != SLA2_OK) {
        fprintf(stderr, "sla2-bench: %s\n", err);
        return 2;
    }
    sla2_cuda_set_timing(ctx, 1);
    printf("device: %s; dtype %s, layout [B,L,H,D], block_q %d, block_k 64; median of %d runs after %d warm-up\n",
           sla2_context_device_name(ctx), sla2_dtype_name(dt), block_q, runs, warmup);
    printf("%-20s %-9s %-8s %6s %9s %9s %8s %8s %8s %8s %8s %8s %8s\n", "shape", "mode", "sparsity", "kept",
           "gpu_ms", "api_ms", "speedup", "TOPS", "quant", "router", "linear", "sparse", "mix");
    for (const Shape &s : shapes) {
        const size_t n = (size_t)s.B * s.H * s.L * s.D, bytes = n * sla2_dtype_size(dt);
        void *q, *k, *v, *o;
        float *d_alpha;
        CUDA_OK(cudaMalloc(&q, bytes));
        CUDA_OK(cudaMalloc(&k, bytes));
        CUDA_OK(cudaMalloc(&v, bytes));
        CUDA_OK(cudaMalloc(&o, bytes));
        CUDA_OK(cudaMalloc(&d_alpha, s.H * sizeof(float)));
        fill_random<<<1024, 256>>>(q, dt, n, 1, 1.0f);
        fill_random<<<1024, 256>>>(k, dt, n, 2, 1.0f);
        fill_random<<<1024, 256>>>(v, dt, n, 3, 1.0f);
        std::vector<float> alpha(s.H);
        for (long long h = 0; h < s.H; ++h)
            alpha[h] = 0.5f - 0.1f * (float)(h % 7);
        CUDA_OK(cudaMemcpy(d_alpha, alpha.data(), s.H * sizeof(float), cudaMemcpyHostToDevice));
        CUDA_OK(cudaDeviceSynchronize());
        char shape_name[64];
        snprintf(shape_name, sizeof shape_name, "(%lld,%lld,%lld,%lld)", s.B, s.H, s.L, s.D);

        Result dense;
        if (run(ctx, s, dt, block_q, SLA2_QUANT_NONE, 1.0f, false, d_alpha, 1, std::max(3, runs / 4), q, k, v, o,
                &dense))
            return 1;
        const double nq = (double)((s.L + block_q - 1) / block_q);
        auto print = [&](const char *mode, float sparsity, const Result &r) {
            const double ops = 4.0 * (double)r.kept_total * block_q * 64 * s.D;
            const double kept_share = r.kept_total / (s.B * s.H * nq * (double)((s.L + 63) / 64));
            printf("%-20s %-9s %8.2f %6.3f %9.3f %9.3f %8.2f %8.1f %8.3f %8.3f %8.3f %8.3f %8.3f\n", shape_name, mode,
                   sparsity, kept_share, r.gpu_ms, r.api_ms, dense.gpu_ms / r.gpu_ms,
                   ops / (r.stage_ms[3] * 1e-3) / 1e12, r.stage_ms[0], r.stage_ms[1], r.stage_ms[2], r.stage_ms[3],
                   r.stage_ms[4]);
            fflush(stdout);
        };
        print("dense", 0.0f, dense);
        for (float sp : sparsities)
            for (sla2_quant_mode m : modes) {
                Result r;
                if (run(ctx, s, dt, block_q, m, 1.0f - sp, alpha_on, d_alpha, warmup, runs, q, k, v, o, &r))
                    return 1;
                print(sla2_quant_mode_name(m), sp, r);
            }
        cudaFree(q), cudaFree(k), cudaFree(v), cudaFree(o), cudaFree(d_alpha);
    }
    sla2_context_free(ctx);
    return 0;
}
