/* sla2-preview's command line. */
#include "preview.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *to)
{
    fprintf(to,
        "usage: sla2-preview [--model MODEL.yaml --weights MODEL.safetensors] [--prompt TEXT | --text-embedding FILE]\n"
        "                    [options]\n"
        "A live window on SLA2 video generation: the video as it denoises, the router's block masks,\n"
        "alpha per query block and the time of every step. Press h or F1 in the window for the keys.\n"
        "\n"
        "  --model FILE            model architecture (YAML; default models/tiny-demo.yaml)\n"
        "  --weights FILE          weights (safetensors; default models/tiny-demo.safetensors)\n"
        "  --prompt TEXT           prompt, for models with a built-in vocabulary; starts at once\n"
        "  --text-embedding FILE   precomputed text embedding ('context' [L, text_dim]); starts at once\n"
        "  --runtime FILE          runtime settings (YAML, as sla2-calib writes)\n"
        "  --seed N                noise seed (default: the runtime's)\n"
        "  --steps N               sampler steps, 1..%d (default: the runtime's)\n"
        "  --guidance G            classifier-free guidance; 1 = off, one pass a step (default: the runtime's)\n"
        "  --shift S               flow-matching timestep shift (default: the runtime's)\n"
        "  --sampler unipc|euler   (default: the runtime's)\n"
        "  --attention dense|sla2  start dense or with SLA2 (default: the runtime's)\n"
        "  --backend cpu|cuda|auto where the DiT runs (default auto: CUDA when a GPU is usable, else the CPU)\n"
        "  --threads N             CPU threads for generation (default: all cores)\n"
        "  --nice N                generation's priority below the window's, 0..19 (default 5)\n"
        "  --size WxH              window size (default 1280x720)\n"
        "  --fps N                 the window's frame rate cap, 10..240 (default 60)\n"
        "  --font FILE             a monospace TTF (default DejaVuSansMono from fonts-dejavu-core)\n"
        "  --save-dir DIR          where s saves the video (Y4M) and the window (PNG) (default out/preview)\n"
        "  --script FILE           replay timed keys and text (see below); generation waits for its Enter\n"
        "  --screenshot-dir DIR    where the script's screenshots go (default .)\n"
        "  --help                  this text\n"
        "\n"
        "Keys: Enter generate (restart)  p edit prompt (Tab completes, Up/Down seed/steps)  [ ] topk\n"
        "  q quantisation  d dense/SLA2  Left/Right layer  Up/Down head  0-4 or v view  space pause\n"
        "  n one step while paused  l , . hold/step frames  r restart  s save  h/F1 help  Esc quit\n"
        "\n"
        "Script lines (# starts a comment); an optional leading number is a delay in seconds after the\n"
        "previous line:\n"
        "  0.5 key d               press a key (SDL key names: Return, Escape, Space, Left, F1, [, ], ...)\n"
        "  text red circle         type text into the focused field\n"
        "  wait-step 3             wait until the current generation has reported step 3\n"
        "  wait-done               wait until it has finished (waits give up after 600 s: exit 1)\n"
        "  screenshot NAME         save DIR/NAME.png and DIR/NAME.txt (what the window showed)\n"
        "  sleep 1.5               wait\n"
        "  quit                    leave as Escape does\n",
        PREVIEW_MAX_STEPS);
}

static int fail(const char *fmt, const char *a)
{
    fprintf(stderr, "sla2-preview: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, " (see --help)\n");
    return 2;
}

static int parse_number(const char *text, double min, double max, int integer, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !(v >= min && v <= max) || (integer && v != floor(v)))
        return 0;
    *out = v;
    return 1;
}

int preview_parse_args(int argc, char **argv, preview_args *a)
{
    memset(a, 0, sizeof *a);
    a->model = "models/tiny-demo.yaml", a->weights = "models/tiny-demo.safetensors";
    a->save_dir = "out/preview", a->screenshot_dir = ".";
    a->backend = SLA2_BACKEND_AUTO;
    a->seed = -1, a->guidance = -1, a->sampler = -1, a->attention = -1, a->nice = 5, a->fps = 60, a->width = 1280, a->height = 720;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage(stdout);
            return 1;
        }
        if (strncmp(f, "--", 2) != 0)
            return fail("unexpected argument '%s'", f);
        static const char *const known[] = {"--model", "--weights", "--prompt", "--text-embedding", "--runtime",
                                            "--seed", "--steps", "--guidance", "--attention", "--threads", "--nice", "--backend", "--fps", "--shift", "--sampler",
                                            "--size", "--font", "--save-dir", "--script", "--screenshot-dir"};
        int is_known = 0;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++)
            is_known |= !strcmp(f, known[k]);
        if (!is_known)
            return fail("unknown flag '%s'", f);
        if (i + 1 >= argc)
            return fail("%s: needs a value", f);
        const char *v = argv[++i];
        double num = 0;
        if (!strcmp(f, "--model")) a->model = v;
        else if (!strcmp(f, "--weights")) a->weights = v;
        else if (!strcmp(f, "--prompt")) a->prompt = v;
        else if (!strcmp(f, "--text-embedding")) a->text_embedding = v;
        else if (!strcmp(f, "--runtime")) a->runtime = v;
        else if (!strcmp(f, "--font")) a->font = v;
        else if (!strcmp(f, "--save-dir")) a->save_dir = v;
        else if (!strcmp(f, "--script")) a->script = v;
        else if (!strcmp(f, "--screenshot-dir")) a->screenshot_dir = v;
        else if (!strcmp(f, "--seed")) {
            if (!parse_number(v, 0, 9e15, 1, &num))
                return fail("--seed: expected an integer >= 0, got '%s'", v);
            a->seed = (int64_t)num;
        } else if (!strcmp(f, "--steps")) {
            if (!parse_number(v, 1, PREVIEW_MAX_STEPS, 1, &num))
                return fail("--steps: expected an integer in [1, 1000], got '%s'", v);
            a->steps = (int)num;
        } else if (!strcmp(f, "--guidance")) {
            if (!parse_number(v, 0, 100, 0, &num))
                return fail("--guidance: expected a number in [0, 100], got '%s'", v);
            a->guidance = num;
        } else if (!strcmp(f, "--threads")) {
            if (!parse_number(v, 0, 1024, 1, &num))
                return fail("--threads: expected an integer in [0, 1024], got '%s'", v);
            a->threads = (int)num;
        } else if (!strcmp(f, "--nice")) {
            if (!parse_number(v, 0, 19, 1, &num))
                return fail("--nice: expected an integer in [0, 19], got '%s'", v);
            a->nice = (int)num;
        } else if (!strcmp(f, "--shift")) {
            if (!parse_number(v, 0.01, 100, 0, &num))
                return fail("--shift: expected a number in [0.01, 100], got '%s'", v);
            a->shift = num;
        } else if (!strcmp(f, "--sampler")) {
            if (!strcmp(v, "unipc")) a->sampler = SLA2_SAMPLER_KIND_UNIPC;
            else if (!strcmp(v, "euler")) a->sampler = SLA2_SAMPLER_KIND_EULER;
            else return fail("--sampler: expected unipc or euler, got '%s'", v);
        } else if (!strcmp(f, "--fps")) {
            if (!parse_number(v, 10, 240, 1, &num))
                return fail("--fps: expected an integer in [10, 240], got '%s'", v);
            a->fps = (int)num;
        } else if (!strcmp(f, "--backend")) {
            if (!strcmp(v, "cpu")) a->backend = SLA2_BACKEND_CPU;
            else if (!strcmp(v, "cuda")) a->backend = SLA2_BACKEND_CUDA;
            else if (!strcmp(v, "auto")) a->backend = SLA2_BACKEND_AUTO;
            else return fail("--backend: expected cpu, cuda or auto, got '%s'", v);
        } else if (!strcmp(f, "--attention")) {
            if (!strcmp(v, "dense")) a->attention = 1;
            else if (!strcmp(v, "sla2")) a->attention = 0;
            else return fail("--attention: expected dense or sla2, got '%s'", v);
        } else if (!strcmp(f, "--size")) {
            int w = 0, h = 0;
            char tail = 0;
            if (sscanf(v, "%dx%d%c", &w, &h, &tail) != 2 || w < 640 || h < 400 || w > 8192 || h > 8192)
                return fail("--size: expected WxH of at least 640x400, got '%s'", v);
            a->width = w, a->height = h;
        }
    }
    if (a->prompt && a->text_embedding)
        return fail("give at most one of --prompt and --text-embedding%s", "");
    return 0;
}
