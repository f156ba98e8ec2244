/* The Wan2.1 DiT forward on the CPU against the PyTorch reference
 * (train/wan/model.py, float64) on a small random configuration, fixtures
 * made by train/make_dit_fixtures.py; and the loader's errors for missing
 * and mis-shaped tensors. */
#include "dit/dit.h"
#include "dit/dit_backend.h"
#include "dit/dit_ops.h"
#include "numeric.h"
#include "sla2/pipeline.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FIXTURE_DIR
#error "FIXTURE_DIR must point at tests/fixtures"
#endif

typedef struct fixture {
    sla2_model_config config;
    sla2_safetensors *weights_file, *io_file;
    dit_weights weights;
    float *x, *context, *velocity;
    double timestep;
    size_t video_elems;
} fixture;

static void fixture_load(fixture *f)
{
    char err[512];
    memset(f, 0, sizeof *f);
    ck_assert_msg(sla2_model_config_load(FIXTURE_DIR "/dit/model.yaml", &f->config, err, sizeof err) == SLA2_OK,
                  "%s", err);
    ck_assert_msg(sla2_safetensors_open(FIXTURE_DIR "/dit/weights.safetensors", &f->weights_file, err, sizeof err) ==
                      SLA2_OK, "%s", err);
    ck_assert_msg(dit_weights_load(&f->config, f->weights_file, &f->weights, err, sizeof err) == SLA2_OK, "%s", err);
    ck_assert_msg(sla2_safetensors_open(FIXTURE_DIR "/dit/io.safetensors", &f->io_file, err, sizeof err) == SLA2_OK,
                  "%s", err);
    f->x = read_tensor(f->io_file, "x", &f->video_elems);
    f->context = read_tensor(f->io_file, "context", NULL);
    f->velocity = read_tensor(f->io_file, "velocity", NULL);
    float *t = read_tensor(f->io_file, "timestep", NULL);
    f->timestep = t[0];
    free(t);
}

static void fixture_free(fixture *f)
{
    dit_weights_free(&f->weights, NULL, f->config.num_layers);
    sla2_model_config_free(&f->config);
    sla2_safetensors_close(f->weights_file);
    sla2_safetensors_close(f->io_file);
    free(f->x), free(f->context), free(f->velocity);
}

static double run_forward(fixture *f, int dense, float topk, sla2_quant_mode quant, float *out)
{
    dit_attention_settings layers[2];
    for (int i = 0; i < 2; i++) {
        layers[i].dense = dense;
        layers[i].feature_map = SLA2_FEATURE_SOFTMAX;
        layers[i].layer = (sla2_layer_settings){topk, quant, 64, 64};
    }
    dit_forward_args args = {.x = f->x, .timestep = f->timestep, .context = f->context, .layers = layers};
    sla2_context *ctx = test_cpu_context(0);
    fill_nan(out, f->video_elems);
    sla2_status s = dit_forward(ctx, &f->config, &f->weights, &args, out);
    ck_assert_msg(s == SLA2_OK, "dit_forward: %s", sla2_context_last_error(ctx));
    sla2_context_free(ctx);
    ck_assert(all_finite(out, f->video_elems));
    return rel_l2(out, f->velocity, f->video_elems);
}

/* float32 against the float64 reference through 2 blocks: ~1e-6 per op,
 * a few hundred ops deep; 1e-4 leaves a margin and still catches any
 * misplaced term (those give 1e-1 and more). */
START_TEST(dense_forward_matches_pytorch_reference)
{
    fixture f;
    fixture_load(&f);
    float *out = malloc(f.video_elems * sizeof *out);
    double err = run_forward(&f, 1, 1.0f, SLA2_QUANT_NONE, out);
    printf("DiT forward (dense) vs PyTorch float64: rel L2 %.3e, cosine %.8f\n", err,
           cosine(out, f.velocity, f.video_elems));
    ck_assert_msg(err < 1e-4, "rel L2 %.3g", err);
    /* the SLA2 operator at topk = 1, alpha = 1 is the same dense attention */
    double err_sla2 = run_forward(&f, 0, 1.0f, SLA2_QUANT_NONE, out);
    ck_assert_msg(err_sla2 < 1e-4, "rel L2 %.3g", err_sla2);
    /* sparse and quantised: close, not equal (the fixture's 72 tokens make 2 key blocks) */
    double err_sparse = run_forward(&f, 0, 0.5f, SLA2_QUANT_INT8_FP8, out);
    printf("DiT forward (SLA2 topk 0.5, int8_fp8) vs dense reference: rel L2 %.3e\n", err_sparse);
    ck_assert(err_sparse > 1e-4 && err_sparse < 1.0);
    free(out);
    fixture_free(&f);
}
END_TEST

/* A checkpoint missing a tensor, or with one of the wrong shape: FORMAT,
 * and the message names the tensor. */
START_TEST(loader_names_missing_and_misshaped_tensors)
{
    fixture f;
    fixture_load(&f);
    char path[256], err[512];
    snprintf(path, sizeof path, "/tmp/sla2_test_dit_%d.safetensors", (int)getpid());
    size_t n = sla2_safetensors_count(f.weights_file);
    sla2_st_write_tensor *tensors = calloc(n, sizeof *tensors);
    int64_t(*shapes)[SLA2_ST_MAX_DIMS] = calloc(n, sizeof *shapes);
    for (int variant = 0; variant < 2; variant++) {
        size_t count = 0;
        for (size_t i = 0; i < n; i++) {
            const sla2_st_tensor *t = sla2_safetensors_at(f.weights_file, i);
            if (variant == 0 && !strcmp(t->name, "blocks.1.cross_attn.norm_k.weight"))
                continue; /* drop it */
            sla2_st_write_tensor *w = &tensors[count++];
            w->name = t->name;
            w->dtype = t->dtype;
            w->ndim = t->ndim;
            memcpy(shapes[count - 1], t->shape, sizeof shapes[0]);
            w->shape = shapes[count - 1];
            w->data = t->data;
            if (variant == 1 && !strcmp(t->name, "blocks.0.ffn.0.weight"))
                shapes[count - 1][0] = 128, shapes[count - 1][1] = 256; /* the same bytes, transposed */
        }
        ck_assert_msg(sla2_safetensors_write(path, tensors, count, NULL, NULL, 0, err, sizeof err) == SLA2_OK, "%s",
                      err);
        sla2_safetensors *st = NULL;
        ck_assert_int_eq(sla2_safetensors_open(path, &st, err, sizeof err), SLA2_OK);
        dit_weights w;
        memset(&w, 0x5a, sizeof w);
        sla2_status s = dit_weights_load(&f.config, st, &w, err, sizeof err);
        ck_assert_int_eq(s, SLA2_ERR_FORMAT);
        const char *expected = variant == 0 ? "tensor 'blocks.1.cross_attn.norm_k.weight': missing"
                                            : "tensor 'blocks.0.ffn.0.weight': expected shape [256, 128], got [128, 256]";
        ck_assert_msg(strstr(err, expected), "message '%s'", err);
        sla2_safetensors_close(st);
    }
    remove(path);
    free(tensors);
    free(shapes);
    fixture_free(&f);
}
END_TEST

/* Weight-only INT8 / FP8 and BF16 storage of the blocks' linears against
 * float32 weights. Per element, dequantising is within half a step of the
 * weight (INT8: scale / 2; e4m3: 2^-4 relative above its normal range's
 * bottom, 2^-10 scale below; bf16: 2^-8 relative, its 8 significant bits
 * rounded to nearest). The forward's error is measured against the f32
 * forward (not the PyTorch fixture): INT8's rounding is ~0.4% of a row's
 * RMS per weight, e4m3's ~2.5%, bf16's ~0.1% (2^-8 / sqrt(3) relative);
 * through 2 blocks the measured output errors are 2.4e-3 (int8), 1.5e-2
 * (fp8) and 1.1e-3 (bf16), so the bounds are 1e-2, 5e-2 and 5e-3: loose
 * enough for float noise, tight enough that a wrong scale, a transposed
 * dequantisation (rel L2 of 1 and more) or bf16 truncated to fewer bits
 * (int8-like 4e-3 per weight and more) fails. */
START_TEST(weight_only_storage_is_close_to_f32)
{
    fixture f;
    fixture_load(&f);
    float *ref = malloc(f.video_elems * sizeof *ref), *out = malloc(f.video_elems * sizeof *out);
    run_forward(&f, 1, 1.0f, SLA2_QUANT_NONE, ref);
    const sla2_model_config *c = &f.config;
    /* each quantised linear: out x in floats become out x in bytes plus out scales; with bf16, out x in
       2-byte codes and no scales */
    size_t linear_weights = 0, linear_rows = 0;
    size_t linears[4][2] = {{c->dim, c->dim}, {c->dim, c->dim}, {c->ffn_dim, c->dim}, {c->dim, c->ffn_dim}};
    for (int i = 0; i < 4; i++) {
        linear_weights += (size_t)c->num_layers * (i < 2 ? 4 : 1) * linears[i][0] * linears[i][1];
        linear_rows += (size_t)c->num_layers * (i < 2 ? 4 : 1) * linears[i][0];
    }
    const size_t f32_bytes = f.weights.resident_bytes;
    ck_assert_uint_eq(f32_bytes, f.weights.total_floats * sizeof(float));
    const dit_linear *f32_ffn = &f.weights.blocks[0].ffn0;
    const char *const names[5] = {"f32", "int8", "fp8", "bf16", "fp8_gemm"};
    const double bound[5] = {0, 1e-2, 5e-2, 5e-3, 8e-2}; /* fp8_gemm: e4m3 activations as well */
    for (int storage = DIT_WEIGHTS_INT8; storage <= DIT_WEIGHTS_FP8_GEMM; storage++) {
        char err[512];
        dit_weights quantised;
        ck_assert_msg(dit_weights_load_as(c, f.weights_file, (dit_weight_storage)storage, &quantised, err,
                                          sizeof err) == SLA2_OK, "%s", err);
        const int bf16 = storage == DIT_WEIGHTS_BF16;
        const size_t saved = bf16 ? 2 * linear_weights : 3 * linear_weights - 4 * linear_rows;
        ck_assert_uint_eq(quantised.resident_bytes, f32_bytes - saved);
        const dit_linear *q = &quantised.blocks[0].ffn0;
        ck_assert(q->weight == NULL && q->codes != NULL && q->storage == (dit_weight_storage)storage);
        ck_assert(bf16 ? q->scale == NULL : q->scale != NULL);
        float *rows = malloc((size_t)q->out * (size_t)q->in * sizeof *rows);
        op_dequantise_rows(q, 0, q->out, rows);
        for (int o = 0; o < q->out; o++)
            for (int i = 0; i < q->in; i++) {
                float w = f32_ffn->weight[o * q->in + i], d = rows[o * q->in + i];
                float tol = storage == DIT_WEIGHTS_INT8 ? 0.5f * q->scale[o] * 1.0001f
                            : bf16               ? fabsf(w) * 0x1p-8f
                                                 : fmaxf(fabsf(w) * 0.0625f, q->scale[o] * 0x1p-10f) * 1.0001f;
                ck_assert_msg(fabsf(w - d) <= tol, "ffn.0[%d][%d]: %g dequantised to %g", o, i, w, d);
                if (bf16) /* round to nearest even, as the safetensors reader's inverse */
                    ck_assert_uint_eq(((const uint16_t *)q->codes)[o * q->in + i], sla2_float_to_bf16(w));
            }
        free(rows);
        dit_weights keep = f.weights;
        f.weights = quantised;
        run_forward(&f, 1, 1.0f, SLA2_QUANT_NONE, out);
        f.weights = keep;
        double rel = rel_l2(out, ref, f.video_elems);
        printf("DiT forward with %s weights vs f32 weights: rel L2 %.3e; weights %zu -> %zu bytes\n",
               names[storage], rel, f32_bytes, quantised.resident_bytes);
        ck_assert_msg(rel < bound[storage], "rel L2 %.3g", rel);
        dit_weights_free(&quantised, NULL, c->num_layers);
    }
    free(ref), free(out);
    fixture_free(&f);
}
END_TEST

/* BF16 storage of a bf16 checkpoint (Wan's own format) keeps its bits: the
 * reader widens them exactly and rounding back to nearest even is the
 * identity, signed zero, subnormals and the largest finite value included.
 * Through the model API (a runtime file's `weights: bf16`) the linears take
 * half their float32 bytes and the info says so. */
START_TEST(bf16_storage_keeps_bf16_checkpoints_and_halves_the_linears)
{
    fixture f;
    fixture_load(&f);
    char path[256], err[512];
    snprintf(path, sizeof path, "/tmp/sla2_test_dit_bf16_%d.safetensors", (int)getpid());
    size_t n = sla2_safetensors_count(f.weights_file);
    sla2_st_write_tensor *tensors = calloc(n, sizeof *tensors);
    const dit_linear *ffn = &f.weights.blocks[0].ffn0;
    size_t elems = (size_t)ffn->out * (size_t)ffn->in;
    uint16_t *bits = malloc(elems * sizeof *bits);
    for (size_t i = 0; i < elems; i++)
        bits[i] = sla2_float_to_bf16(ffn->weight[i] * 3.7f);
    const uint16_t special[] = {0x8000, 0x0001, 0x807f, 0x7f7f, 0xff7f, 0x0080};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        bits[i * 97] = special[i];
    for (size_t i = 0; i < n; i++) {
        const sla2_st_tensor *t = sla2_safetensors_at(f.weights_file, i);
        tensors[i] = (sla2_st_write_tensor){t->name, t->dtype, t->ndim, t->shape, t->data};
        if (!strcmp(t->name, "blocks.0.ffn.0.weight"))
            tensors[i].dtype = SLA2_ST_BF16, tensors[i].data = bits;
    }
    ck_assert_msg(sla2_safetensors_write(path, tensors, n, NULL, NULL, 0, err, sizeof err) == SLA2_OK, "%s", err);
    sla2_safetensors *st = NULL;
    ck_assert_int_eq(sla2_safetensors_open(path, &st, err, sizeof err), SLA2_OK);
    dit_weights w;
    ck_assert_msg(dit_weights_load_as(&f.config, st, DIT_WEIGHTS_BF16, &w, err, sizeof err) == SLA2_OK, "%s", err);
    const dit_linear *q = &w.blocks[0].ffn0;
    ck_assert(q->storage == DIT_WEIGHTS_BF16 && q->codes != NULL);
    for (size_t i = 0; i < elems; i++)
        ck_assert_msg(((const uint16_t *)q->codes)[i] == bits[i], "[%zu]: 0x%04x loaded as 0x%04x", i, bits[i],
                      ((const uint16_t *)q->codes)[i]);
    dit_weights_free(&w, NULL, f.config.num_layers);
    sla2_safetensors_close(st);
    remove(path);
    free(bits), free(tensors);

    sla2_context *ctx = test_cpu_context(0);
    sla2_model *f32_model = NULL, *bf16_model = NULL;
    ck_assert_status(sla2_model_load(ctx, FIXTURE_DIR "/dit/model.yaml", FIXTURE_DIR "/dit/weights.safetensors",
                                     &f32_model), SLA2_OK);
    snprintf(path, sizeof path, "/tmp/sla2_test_dit_bf16_%d.yaml", (int)getpid());
    FILE *file = fopen(path, "w");
    fputs("weights: bf16\n", file);
    fclose(file);
    sla2_model_load_options o;
    sla2_model_load_options_default(&o);
    o.runtime_path = path;
    ck_assert_status(sla2_model_load_with_options(ctx, FIXTURE_DIR "/dit/model.yaml",
                                                  FIXTURE_DIR "/dit/weights.safetensors", &o, &bf16_model), SLA2_OK);
    sla2_model_info f32_info = {.size = sizeof f32_info}, bf16_info = {.size = sizeof bf16_info};
    ck_assert_status(sla2_model_get_info(ctx, f32_model, &f32_info), SLA2_OK);
    ck_assert_status(sla2_model_get_info(ctx, bf16_model, &bf16_info), SLA2_OK);
    ck_assert_int_eq(f32_info.weight_storage, SLA2_WEIGHTS_F32);
    ck_assert_int_eq(bf16_info.weight_storage, SLA2_WEIGHTS_BF16);
    const sla2_model_config *c = &f.config;
    size_t linear_weights = (size_t)c->num_layers * (8 * (size_t)c->dim * c->dim + 2 * (size_t)c->dim * c->ffn_dim);
    ck_assert_uint_eq(f32_info.weight_bytes - bf16_info.weight_bytes, linear_weights * 2); /* 4 -> 2 bytes each */
    printf("weights: bf16 storage %zu bytes, f32 %zu (the linears' %zu halved)\n", bf16_info.weight_bytes,
           f32_info.weight_bytes, linear_weights * 4);
    /* the pipeline takes the same file for a model loaded from it */
    sla2_pipeline *p = NULL;
    ck_assert_status(sla2_pipeline_create(ctx, bf16_model, path, &p), SLA2_OK);
    sla2_pipeline_free(p);
    sla2_model_free(bf16_model);
    sla2_model_free(f32_model);
    remove(path);
    sla2_context_free(ctx);
    fixture_free(&f);
}
END_TEST

/* The load options and the runtime file's `weights` key: bad values name
 * themselves (and the file's line and column). */
START_TEST(model_load_options_errors)
{
    sla2_context *ctx = test_cpu_context(0);
    sla2_model *model = (sla2_model *)0x1;
    sla2_model_load_options o;
    sla2_model_load_options_default(&o);
    ck_assert_int_eq(o.weight_storage, -1);
    o.weight_storage = 7;
    ck_assert_status(sla2_model_load_with_options(ctx, FIXTURE_DIR "/dit/model.yaml",
                                                  FIXTURE_DIR "/dit/weights.safetensors", &o, &model),
                     SLA2_ERR_INVALID_VALUE);
    ck_assert_msg(strstr(sla2_context_last_error(ctx), "options.weight_storage: 7"), "%s", sla2_context_last_error(ctx));
    ck_assert(model == (sla2_model *)0x1);
    char path[256];
    snprintf(path, sizeof path, "/tmp/sla2_test_dit_runtime_%d.yaml", (int)getpid());
    FILE *file = fopen(path, "w");
    fputs("steps: 4\nweights: int4\n", file);
    fclose(file);
    sla2_model_load_options_default(&o);
    o.runtime_path = path;
    ck_assert_status(sla2_model_load_with_options(ctx, FIXTURE_DIR "/dit/model.yaml",
                                                  FIXTURE_DIR "/dit/weights.safetensors", &o, &model),
                     SLA2_ERR_INVALID_VALUE);
    ck_assert_msg(strstr(sla2_context_last_error(ctx), ":2:10: weights: expected one of f32, int8, fp8, bf16, fp8_gemm; got int4"),
                  "%s", sla2_context_last_error(ctx));
    file = fopen(path, "w");
    fputs("weights: fp8\n", file);
    fclose(file);
    ck_assert_status(sla2_model_load_with_options(ctx, FIXTURE_DIR "/dit/model.yaml",
                                                  FIXTURE_DIR "/dit/weights.safetensors", &o, &model), SLA2_OK);
    sla2_model_info info = {.size = sizeof info};
    ck_assert_status(sla2_model_get_info(ctx, model, &info), SLA2_OK);
    ck_assert_int_eq(info.weight_storage, SLA2_WEIGHTS_FP8);
    ck_assert(info.weight_bytes > 0);
    sla2_model_free(model);
    sla2_model_load_options_default(&o);
    o.weight_storage = SLA2_WEIGHTS_FP8_GEMM;
    ck_assert_status(sla2_model_load_with_options(ctx, FIXTURE_DIR "/dit/model.yaml",
                                                  FIXTURE_DIR "/dit/weights.safetensors", &o, &model), SLA2_OK);
    ck_assert_status(sla2_model_get_info(ctx, model, &info), SLA2_OK);
    ck_assert_int_eq(info.weight_storage, SLA2_WEIGHTS_FP8_GEMM);
    sla2_model_free(model);
    o.weight_storage = SLA2_WEIGHTS_FP8_GEMM + 1;
    ck_assert_status(sla2_model_load_with_options(ctx, FIXTURE_DIR "/dit/model.yaml",
                                                  FIXTURE_DIR "/dit/weights.safetensors", &o, &model),
                     SLA2_ERR_INVALID_VALUE);
    remove(path);
    sla2_context_free(ctx);
}
END_TEST

/* FP8_GEMM: each row of a linear's input becomes e4m3 codes times
 * max|x| / 448 (checked against the formula here, a zero row and a row
 * with one huge value included), and the linear is the FP8 one on those
 * values, bit for bit (the same float32 GEMM). */
START_TEST(fp8_gemm_quantises_each_input_row)
{
    enum { ROWS = 4, IN = 48, OUT = 20 };
    float x[ROWS * IN], got[ROWS * IN], w[OUT * IN], bias[OUT];
    test_rng rng;
    rng_seed(&rng, 7);
    for (int i = 0; i < ROWS * IN; i++)
        x[i] = rng_uniform(&rng) * 2.0f - 1.0f;
    for (int i = 0; i < IN; i++)
        x[IN + i] = 0.0f; /* row 1: zeros */
    x[2 * IN + 5] = 3.0e4f; /* row 2: one outlier sets the scale */
    for (int i = 0; i < OUT * IN; i++)
        w[i] = rng_uniform(&rng) - 0.5f;
    for (int o = 0; o < OUT; o++)
        bias[o] = rng_uniform(&rng);
    op_quantise_activations(x, ROWS, IN, got);
    for (int r = 0; r < ROWS; r++) {
        float max_abs = 0.0f;
        for (int i = 0; i < IN; i++)
            max_abs = fmaxf(max_abs, fabsf(x[r * IN + i]));
        const float s = max_abs > 0.0f ? max_abs / 448.0f : 1.0f;
        for (int i = 0; i < IN; i++) {
            const float want = sla2_round_e4m3(x[r * IN + i] / s) * s;
            ck_assert_msg(got[r * IN + i] == want, "row %d [%d]: %g quantised to %g, want %g", r, i, x[r * IN + i],
                          got[r * IN + i], want);
            ck_assert(fabsf(got[r * IN + i] - x[r * IN + i]) <= fmaxf(fabsf(x[r * IN + i]) / 16.0f, s / 512.0f));
        }
    }
    ck_assert(got[2 * IN + 5] == 448.0f * (3.0e4f / 448.0f)); /* the row's largest value maps onto e4m3's largest */

    /* the same weights as FP8 codes, once with FP8_GEMM and once (weight-only FP8) on the quantised input */
    uint8_t codes[OUT * IN];
    float scale[OUT];
    for (int o = 0; o < OUT; o++) {
        scale[o] = 0.01f * (float)(o + 1);
        for (int i = 0; i < IN; i++)
            codes[o * IN + i] = sla2_float_to_e4m3(w[o * IN + i] / scale[o]);
    }
    dit_linear lin = {.bias = bias, .in = IN, .out = OUT, .storage = DIT_WEIGHTS_FP8_GEMM, .codes = codes, .scale = scale};
    dit_linear weight_only = lin;
    weight_only.storage = DIT_WEIGHTS_FP8;
    float *scratch = malloc(op_linear_scratch_elems(&lin, ROWS) * sizeof *scratch);
    float y[ROWS * OUT], want[ROWS * OUT];
    op_linear(x, ROWS, &lin, y, scratch);
    op_linear(got, ROWS, &weight_only, want, scratch);
    ck_assert(memcmp(y, want, sizeof y) == 0);
    for (int o = 0; o < OUT; o++)
        ck_assert_msg(y[OUT + o] == bias[o], "a zero row gives the bias");
    free(scratch);
}
END_TEST

/* The norms' e4m3 rows (DIT_ACT_E4M3_ROWS) are an internal form: no public
 * dtype may take its value, the CPU backend (which never writes them)
 * refuses them with a message, and their scales sit past the codes, 16-byte
 * aligned, inside dit_e4m3_rows_bytes. */
START_TEST(e4m3_rows_stay_internal)
{
    ck_assert_uint_eq(sla2_dtype_size(DIT_ACT_E4M3_ROWS), 0);
    const dit_backend *cpu = dit_backend_cpu();
    ck_assert_int_eq(cpu->e4m3_rows, 0);
    sla2_context *ctx = NULL;
    ck_assert_status(sla2_context_create(NULL, &ctx, NULL, 0), SLA2_OK);
    float x[2 * 16] = {1.0f}, shift[16] = {0}, scale[16] = {0}, y[2 * 16];
    ck_assert_status(cpu->norm_modulate(ctx, x, 2, 16, 1e-6, shift, scale, y, DIT_ACT_E4M3_ROWS), SLA2_ERR_DTYPE);
    ck_assert_ptr_nonnull(strstr(sla2_context_last_error(ctx), "not e4m3 rows"));
    sla2_context_free(ctx);
    uint8_t rows[64];
    ck_assert_uint_eq(dit_e4m3_rows_bytes(3, 5), 16 + 3 * sizeof(float));
    ck_assert_ptr_eq((void *)dit_e4m3_row_scales(rows, 3, 5), (void *)(rows + 16));
    ck_assert_uint_eq(dit_e4m3_rows_bytes(2, 8), 16 + 2 * sizeof(float));
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("dit");
    TCase *tc = tcase_create("forward");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, dense_forward_matches_pytorch_reference);
    tcase_add_test(tc, loader_names_missing_and_misshaped_tensors);
    tcase_add_test(tc, weight_only_storage_is_close_to_f32);
    tcase_add_test(tc, bf16_storage_keeps_bf16_checkpoints_and_halves_the_linears);
    tcase_add_test(tc, model_load_options_errors);
    tcase_add_test(tc, fp8_gemm_quantises_each_input_row);
    tcase_add_test(tc, e4m3_rows_stay_internal);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
