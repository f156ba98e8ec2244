/* The prompt-adherence analyser on videos drawn as train/tiny/data.py draws
 * them: every colour x shape x direction, clean and with noise. */
#include "sla2/video.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *colours[6] = {"red", "green", "blue", "yellow", "cyan", "magenta"};
static const float rgb_values[6][3] = {{220, 40, 40}, {40, 200, 60}, {50, 80, 230},
                                       {230, 220, 40}, {40, 210, 220}, {220, 50, 210}};
static const char *shapes[3] = {"circle", "square", "triangle"};
static const char *directions[4] = {"left", "right", "up", "down"};

enum { F = 16, H = 64, W = 64 };

static int inside(int shape, float x, float y, float cx, float cy)
{
    float dx = x - cx, dy = y - cy;
    if (shape == 0)
        return dx * dx + dy * dy <= 10.0f * 10.0f;
    if (shape == 1)
        return fabsf(dx) <= 9.0f && fabsf(dy) <= 9.0f;
    /* upward equilateral triangle of side 24 centred on (cx, cy) */
    float h = 24.0f * 0.8660254f, top = cy - h / 2, bottom = cy + h / 2;
    if (y < top || y > bottom)
        return 0;
    float half_width = 12.0f * (y - top) / h;
    return fabsf(dx) <= half_width;
}

static void draw(float *video, int colour, int shape, int direction, test_rng *rng, float noise)
{
    float start = 16.0f + 4.0f * rng_uniform(rng), across = 20.0f + 24.0f * rng_uniform(rng);
    for (int f = 0; f < F; f++) {
        float travel = 2.5f * f;
        float cx = direction < 2 ? (direction == 0 ? 64 - start - travel : start + travel) : across;
        float cy = direction >= 2 ? (direction == 2 ? 64 - start - travel : start + travel) : across;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int in = inside(shape, (float)x, (float)y, cx, cy);
                const float bg[3] = {20, 20, 28};
                for (int c = 0; c < 3; c++) {
                    float v = (in ? rgb_values[colour][c] : bg[c]) / 127.5f - 1.0f;
                    video[((size_t)c * F + f) * H * W + (size_t)y * W + x] = v + noise * rng_normal(rng);
                }
            }
    }
}

START_TEST(analyser_reads_every_prompt)
{
    float *video = malloc(sizeof(float) * 3 * F * H * W);
    test_rng rng;
    rng_seed(&rng, 77);
    int matched = 0, total = 0;
    for (int noisy = 0; noisy < 2; noisy++)
        for (int c = 0; c < 6; c++)
            for (int s = 0; s < 3; s++)
                for (int d = 0; d < 4; d++) {
                    draw(video, c, s, d, &rng, noisy ? 0.08f : 0.0f);
                    sla2_video_analysis a;
                    ck_assert_int_eq(sla2_video_analyse(video, F, H, W, &a), SLA2_OK);
                    char prompt[64];
                    snprintf(prompt, sizeof prompt, "%s %s moving %s", colours[c], shapes[s], directions[d]);
                    int m = sla2_prompt_matches(prompt, &a);
                    ck_assert_msg(m == 7, "'%s' read as %s %s %s (fill %.2f, v %.2f %.2f)", prompt, a.colour, a.shape,
                                  a.direction, a.fill_ratio, a.velocity[0], a.velocity[1]);
                    matched += m == 7;
                    total++;
                }
    ck_assert_int_eq(matched, total);
    free(video);
}
END_TEST

START_TEST(analyser_handles_empty_and_bad_input)
{
    float *video = malloc(sizeof(float) * 3 * F * H * W);
    for (size_t i = 0; i < (size_t)3 * F * H * W; i++)
        video[i] = -0.8f;
    sla2_video_analysis a;
    ck_assert_int_eq(sla2_video_analyse(video, F, H, W, &a), SLA2_OK);
    ck_assert_str_eq(a.colour, "none");
    ck_assert_str_eq(a.shape, "none");
    ck_assert_str_eq(a.direction, "none");
    ck_assert_int_eq(sla2_prompt_matches("red circle moving left", &a), 0);
    ck_assert_int_eq(sla2_video_analyse(NULL, F, H, W, &a), SLA2_ERR_NULL_ARGUMENT);
    ck_assert_int_eq(sla2_video_analyse(video, 0, H, W, &a), SLA2_ERR_INVALID_VALUE);
    free(video);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("analyse");
    TCase *tc = tcase_create("analyse");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, analyser_reads_every_prompt);
    tcase_add_test(tc, analyser_handles_empty_and_bad_input);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
