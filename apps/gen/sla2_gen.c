/* sla2-gen: generate a video from the command line with a Wan2.1-architecture
 * model and SLA2 attention. Built against the public API only. */
#include <sla2/pipeline.h>
#include <sla2/sla2.h>
#include <sla2/video.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct gen_args {
    const char *model, *weights, *prompt, *text_embedding, *runtime, *out_y4m, *out_png, *out_frames_dir;
    int64_t seed;
    int steps, fps, sampler, attention_dense, attention_set, quiet, score;
    double guidance, shift;
    float topk;
    int quant; /* -1: the runtime's */
    int weight_storage; /* -1: the runtime's */
    sla2_backend backend;
} gen_args;

static void usage(FILE *to)
{
    fprintf(to,
        "usage: sla2-gen --model MODEL.yaml --weights MODEL.safetensors (--prompt TEXT | --text-embedding FILE)\n"
        "                [options]\n"
        "Generates a video with a Wan2.1-architecture DiT and SLA2 attention.\n"
        "\n"
        "  --model FILE            model architecture (YAML, configs/models/)\n"
        "  --weights FILE          weights (safetensors, Wan2.1 names plus SLA2's; F32/F16/BF16, and\n"
        "                          linears also as I8 / F8_E4M3 codes with a .weight_scale or .scale_weight)\n"
        "  --prompt TEXT           prompt, for models with a built-in vocabulary (the tiny demo)\n"
        "  --text-embedding FILE   precomputed text embedding: safetensors with 'context' [L, text_dim]\n"
        "  --runtime FILE          runtime settings (YAML; per-layer topk/quant, as sla2-calib writes)\n"
        "  --seed N                noise seed (default: the runtime's, 0)\n"
        "  --steps N               sampler steps, 1..1000 (default: the runtime's, 50)\n"
        "  --guidance G            classifier-free guidance scale; 1 = off (default: the runtime's, 5)\n"
        "  --shift S               flow-matching timestep shift (default: the runtime's, 5)\n"
        "  --sampler unipc|euler   (default: the runtime's, unipc)\n"
        "  --attention dense|sla2  exact dense attention, or SLA2 (default: the runtime's, sla2)\n"
        "  --topk T                share of key blocks kept in every layer, (0, 1]\n"
        "  --quant none|int8|int8_fp8  quantisation of every layer's sparse branch\n"
        "  --backend cpu|cuda|auto where the DiT runs (default auto: CUDA when a GPU is usable, else CPU)\n"
        "  --weights-storage f32|int8|fp8|bf16|fp8_gemm  how the blocks' linear weights are held:\n"
        "                          float32; weight-only INT8 / FP8 e4m3 with a scale per output channel\n"
        "                          (a quarter of the memory, dequantised before each GEMM, to bf16 on\n"
        "                          CUDA; an I8 / F8 checkpoint's codes are kept as they are); or bfloat16\n"
        "                          (half the memory); all three run bf16 GEMMs on CUDA. fp8_gemm: FP8\n"
        "                          weights and each linear's input quantised per token to e4m3 too,\n"
        "                          for FP8 GEMMs on CUDA sm_89+ (faster; not weight-only) (default: the\n"
        "                          runtime's `weights`, f32)\n"
        "  --out FILE.y4m          the video as Y4M (default out/video.y4m)\n"
        "  --png FILE.png          a strip of 8 frames side by side as PNG\n"
        "  --frames-dir DIR        every frame as DIR/frame_NNN.png\n"
        "  --fps N                 frames per second in the Y4M (default 8)\n"
        "  --score                 analyse the video (colour, shape, direction) against the prompt\n"
        "  --quiet                 no progress bar\n"
        "  --help                  this text\n");
}

/* Prints "sla2-gen: <message>" and returns 0 (a failed parse). */
__attribute__((format(printf, 1, 2))) static int die(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "sla2-gen: ");
    vfprintf(stderr, fmt, args);
    fprintf(stderr, "\n");
    va_end(args);
    return 0;
}

static int parse_number(const char *flag, const char *text, double min, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = text ? strtod(text, &end) : NAN;
    if (!text || end == text || *end || errno || !(v >= min && v <= max)) {
        char range[64];
        snprintf(range, sizeof range, "a number in [%g, %g]", min, max);
        return die("%s: expected %s", flag, range);
    }
    *out = v;
    return 1;
}

static int parse_args(int argc, char **argv, gen_args *a)
{
    memset(a, 0, sizeof *a);
    a->seed = -1, a->guidance = -1, a->sampler = -1, a->quant = -1, a->weight_storage = -1, a->fps = 8;
    a->out_y4m = "out/video.y4m";
    a->backend = SLA2_BACKEND_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(f, "--quiet")) {
            a->quiet = 1;
            continue;
        }
        if (!strcmp(f, "--score")) {
            a->score = 1;
            continue;
        }
        if (strncmp(f, "--", 2) != 0)
            return die("unexpected argument '%s' (see --help)", f);
        if (i + 1 >= argc)
            return die("%s: needs a value", f);
        const char *v = argv[++i];
        double num = 0;
        if (!strcmp(f, "--model")) a->model = v;
        else if (!strcmp(f, "--weights")) a->weights = v;
        else if (!strcmp(f, "--prompt")) a->prompt = v;
        else if (!strcmp(f, "--text-embedding")) a->text_embedding = v;
        else if (!strcmp(f, "--runtime")) a->runtime = v;
        else if (!strcmp(f, "--out")) a->out_y4m = v;
        else if (!strcmp(f, "--png")) a->out_png = v;
        else if (!strcmp(f, "--frames-dir")) a->out_frames_dir = v;
        else if (!strcmp(f, "--seed")) { if (!parse_number(f, v, 0, 9e15, &num)) return 0; a->seed = (int64_t)num; }
        else if (!strcmp(f, "--steps")) { if (!parse_number(f, v, 1, 1000, &num) || num != floor(num)) return die("%s: expected an integer in [1, 1000]", f); a->steps = (int)num; }
        else if (!strcmp(f, "--fps")) { if (!parse_number(f, v, 1, 1000, &num)) return 0; a->fps = (int)num; }
        else if (!strcmp(f, "--guidance")) { if (!parse_number(f, v, 0, 100, &num)) return 0; a->guidance = num; }
        else if (!strcmp(f, "--shift")) { if (!parse_number(f, v, 0.01, 100, &num)) return 0; a->shift = num; }
        else if (!strcmp(f, "--topk")) { if (!parse_number(f, v, 1e-6, 1, &num)) return 0; a->topk = (float)num; }
        else if (!strcmp(f, "--sampler")) {
            if (!strcmp(v, "unipc")) a->sampler = SLA2_SAMPLER_KIND_UNIPC;
            else if (!strcmp(v, "euler")) a->sampler = SLA2_SAMPLER_KIND_EULER;
            else return die("--sampler: expected unipc or euler, got '%s'", v);
        } else if (!strcmp(f, "--attention")) {
            if (!strcmp(v, "dense")) a->attention_dense = 1;
            else if (strcmp(v, "sla2")) return die("--attention: expected dense or sla2, got '%s'", v);
            a->attention_set = 1;
        } else if (!strcmp(f, "--quant")) {
            if (!strcmp(v, "none")) a->quant = SLA2_QUANT_NONE;
            else if (!strcmp(v, "int8")) a->quant = SLA2_QUANT_INT8;
            else if (!strcmp(v, "int8_fp8")) a->quant = SLA2_QUANT_INT8_FP8;
            else return die("--quant: expected none, int8 or int8_fp8, got '%s'", v);
        } else if (!strcmp(f, "--weights-storage")) {
            if (!strcmp(v, "f32")) a->weight_storage = SLA2_WEIGHTS_F32;
            else if (!strcmp(v, "int8")) a->weight_storage = SLA2_WEIGHTS_INT8;
            else if (!strcmp(v, "fp8")) a->weight_storage = SLA2_WEIGHTS_FP8;
            else if (!strcmp(v, "bf16")) a->weight_storage = SLA2_WEIGHTS_BF16;
            else if (!strcmp(v, "fp8_gemm")) a->weight_storage = SLA2_WEIGHTS_FP8_GEMM;
            else return die("--weights-storage: expected f32, int8, fp8, bf16 or fp8_gemm, got '%s'", v);
        } else if (!strcmp(f, "--backend")) {
            if (!strcmp(v, "cpu")) a->backend = SLA2_BACKEND_CPU;
            else if (!strcmp(v, "cuda")) a->backend = SLA2_BACKEND_CUDA;
            else if (!strcmp(v, "auto")) a->backend = SLA2_BACKEND_AUTO;
            else return die("--backend: expected cpu, cuda or auto, got '%s'", v);
        } else
            return die("unknown flag '%s' (see --help)", f);
    }
    if (!a->model || !a->weights)
        return die("--model and --weights are required (see --help)");
    if (!a->prompt == !a->text_embedding)
        return die("give exactly one of --prompt and --text-embedding");
    if (a->score && !a->prompt)
        return die("--score needs --prompt (it checks the video against the prompt's words)");
    return 1;
}

static int on_step(void *user, const sla2_step_info *info)
{
    const gen_args *a = user;
    if (a->quiet)
        return 0;
    static double total_ms;
    total_ms = info->step == 1 ? info->step_ms : total_ms + info->step_ms;
    int width = 30, filled = width * info->step / info->num_steps;
    double eta = total_ms / info->step * (info->num_steps - info->step) / 1000.0;
    fprintf(stderr, "\r[%.*s%*s] step %d/%d  %.0f ms/step (attention %.0f ms)  ETA %.1f s ", filled,
            "##############################", width - filled, "", info->step, info->num_steps, info->step_ms,
            info->attention_ms, eta);
    if (info->step == info->num_steps)
        fprintf(stderr, "\n");
    return 0;
}

static int ensure_parent_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return 1;
    *slash = '\0';
    return mkdir(dir, 0777) == 0 || errno == EEXIST;
}

/* Prints what the analyser reads in the video and how much of the prompt it matches. */
static void print_score(const gen_args *a, const sla2_model_info *info, const float *video)
{
    sla2_video_analysis analysis;
    if (!info->pixel_space || info->channels != 3 ||
        sla2_video_analyse(video, info->frames, info->height, info->width, &analysis) != SLA2_OK) {
        printf("score: not available for this model (the analyser reads RGB videos)\n");
        return;
    }
    int m = sla2_prompt_matches(a->prompt, &analysis);
    printf("adherence: %d/3 (colour %s: %s, shape %s: %s, direction %s: %s)\n", (m & 1) + (m >> 1 & 1) + (m >> 2 & 1),
           analysis.colour, m & 1 ? "yes" : "no", analysis.shape, m & 2 ? "yes" : "no", analysis.direction,
           m & 4 ? "yes" : "no");
}

static int write_outputs(const gen_args *a, const sla2_model_info *info, const float *video)
{
    char err[512];
    if (!info->pixel_space) {
        fprintf(stderr, "sla2-gen: this model works on VAE latents and the SDK has no VAE decoder yet; no video written\n");
        return 0;
    }
    if (!ensure_parent_dir(a->out_y4m)) {
        fprintf(stderr, "sla2-gen: %s: cannot create its directory: %s\n", a->out_y4m, strerror(errno));
        return 1;
    }
    if (sla2_video_write_y4m(a->out_y4m, video, info->frames, info->height, info->width, a->fps, err, sizeof err)) {
        fprintf(stderr, "sla2-gen: %s\n", err);
        return 1;
    }
    printf("video: %s (%d frames of %dx%d)\n", a->out_y4m, info->frames, info->width, info->height);
    if (a->out_png) {
        int step = info->frames >= 8 ? info->frames / 8 : 1;
        if (sla2_video_write_png_strip(a->out_png, video, info->frames, info->height, info->width, 0, step,
                                       info->frames >= 8 ? 8 : info->frames, err, sizeof err)) {
            fprintf(stderr, "sla2-gen: %s\n", err);
            return 1;
        }
        printf("frames: %s\n", a->out_png);
    }
    for (int f = 0; a->out_frames_dir && f < info->frames; f++) {
        char path[4096];
        uint8_t *rgb = malloc((size_t)info->height * info->width * 3);
        snprintf(path, sizeof path, "%s/frame_%03d.png", a->out_frames_dir, f);
        mkdir(a->out_frames_dir, 0777);
        sla2_video_frame_rgb8(video, info->frames, info->height, info->width, f, rgb);
        sla2_status s = rgb ? sla2_image_write_png(path, rgb, info->height, info->width, err, sizeof err)
                            : SLA2_ERR_OUT_OF_MEMORY;
        free(rgb);
        if (s != SLA2_OK) {
            fprintf(stderr, "sla2-gen: %s\n", err);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    gen_args a;
    if (!parse_args(argc, argv, &a))
        return 2;
    sla2_context_options options;
    sla2_context_options_default(&options);
    options.backend = a.backend;
    sla2_context *ctx = NULL;
    char err[512];
    if (sla2_context_create(&options, &ctx, err, sizeof err) != SLA2_OK) {
        fprintf(stderr, "sla2-gen: %s\n", err);
        return 1;
    }
    sla2_model *model = NULL;
    sla2_pipeline *pipe = NULL;
    int rc = 1;
    float *video = NULL;
    sla2_model_info info = {.size = sizeof info};
    sla2_model_load_options load;
    sla2_model_load_options_default(&load);
    load.weight_storage = a.weight_storage, load.runtime_path = a.runtime;
    if (sla2_model_load_with_options(ctx, a.model, a.weights, &load, &model) ||
        sla2_model_get_info(ctx, model, &info) ||
        sla2_pipeline_create(ctx, model, a.runtime, &pipe))
        goto done;
    if (a.attention_set)
        sla2_pipeline_set_dense(pipe, a.attention_dense);
    for (int layer = 0; layer < info.num_layers && (a.topk > 0 || a.quant >= 0); layer++) {
        sla2_layer_attention la;
        sla2_pipeline_get_layer(pipe, layer, &la);
        if (a.topk > 0)
            la.topk = a.topk;
        if (a.quant >= 0)
            la.quant = (sla2_quant_mode)a.quant;
        if (sla2_pipeline_set_layer(pipe, layer, &la))
            goto done;
    }
    size_t elems = (size_t)info.channels * info.frames * info.height * info.width;
    video = malloc(elems * sizeof *video);
    if (!video) {
        fprintf(stderr, "sla2-gen: out of memory for the video\n");
        goto done;
    }
    sla2_generate_options gen;
    sla2_generate_options_default(&gen);
    gen.prompt = a.prompt, gen.text_embedding_path = a.text_embedding;
    gen.seed = a.seed, gen.steps = a.steps, gen.guidance = a.guidance, gen.shift = a.shift, gen.sampler = a.sampler;
    gen.on_step = on_step, gen.user = &a;
    static const char *const storage_names[] = {"f32", "int8", "fp8", "bf16", "fp8_gemm"};
    printf("model: %s (%d layers, %lld tokens), %s; weights %s, %.1f MB resident\n", info.name, info.num_layers,
           (long long)info.tokens, sla2_context_device_name(ctx), storage_names[info.weight_storage],
           (double)info.weight_bytes / 1e6);
    if (a.prompt)
        printf("prompt: %s\n", a.prompt);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (sla2_pipeline_generate(pipe, &gen, video, elems))
        goto done;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("generated in %.1f s\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    rc = write_outputs(&a, &info, video);
    if (rc == 0 && a.score)
        print_score(&a, &info, video);
done:
    if (rc == 1 && sla2_context_last_error(ctx)[0])
        fprintf(stderr, "sla2-gen: %s\n", sla2_context_last_error(ctx));
    free(video);
    sla2_pipeline_free(pipe);
    sla2_model_free(model);
    sla2_context_free(ctx);
    return rc;
}
