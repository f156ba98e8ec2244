/* Saving from the window: s writes the video (Y4M) and the window (PNG);
 * scripted screenshots write the window and a sidecar of what it showed. */
#include "app.h"

#include <sla2/video.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int make_dirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return 0;
            *p = '/';
        }
    return mkdir(buf, 0777) == 0 || errno == EEXIST;
}

/* The window as it was drawn, before SDL_RenderPresent. */
static int write_window_png(app *a, const char *path)
{
    int w = 0, h = 0;
    SDL_GetRendererOutputSize(a->renderer, &w, &h);
    uint8_t *rgb = malloc((size_t)w * h * 3);
    char err[512] = "out of memory";
    int ok = rgb && SDL_RenderReadPixels(a->renderer, NULL, SDL_PIXELFORMAT_RGB24, rgb, w * 3) == 0;
    if (rgb && !ok)
        snprintf(err, sizeof err, "reading the window: %s", SDL_GetError());
    ok = ok && sla2_image_write_png(path, rgb, h, w, err, sizeof err) == SLA2_OK;
    free(rgb);
    if (!ok)
        app_say(a, 1, "%s: %s", path, err);
    return ok;
}

static int write_video_y4m(app *a, const char *path)
{
    const preview_snapshot *s = &a->view;
    size_t plane = (size_t)s->frames * s->height * s->width;
    const float *rgb = s->video;
    float *grey = NULL;
    if (s->channels < 3) {
        grey = malloc(3 * plane * sizeof *grey);
        if (!grey) {
            app_say(a, 1, "out of memory");
            return 0;
        }
        for (int c = 0; c < 3; c++)
            memcpy(grey + c * plane, s->video, plane * sizeof *grey);
        rgb = grey;
    }
    char err[512];
    /* [C][F][H][W]: the first three channels are a [3][F][H][W] video. */
    int ok = sla2_video_write_y4m(path, rgb, s->frames, s->height, s->width, VIDEO_FPS, err, sizeof err) == SLA2_OK;
    free(grey);
    if (!ok)
        app_say(a, 1, "%s", err);
    return ok;
}

void app_save(app *a)
{
    if (!a->view.seq || !a->view.step) {
        app_say(a, 1, "nothing to save yet: generate first (Enter)");
        return;
    }
    if (!make_dirs(a->args.save_dir)) {
        app_say(a, 1, "%s: cannot create the directory: %s", a->args.save_dir, strerror(errno));
        return;
    }
    char y4m[1100], png[1100];
    a->save_count++;
    snprintf(y4m, sizeof y4m, "%s/preview-%03d-step%d.y4m", a->args.save_dir, a->save_count, a->view.step);
    snprintf(png, sizeof png, "%s/preview-%03d-step%d.png", a->args.save_dir, a->save_count, a->view.step);
    if (write_video_y4m(a, y4m) && write_window_png(a, png))
        app_say(a, 0, "saved the video to %s and the window to %s", y4m, png);
}

static void write_sidecar(app *a, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        app_say(a, 1, "%s: %s", path, strerror(errno));
        return;
    }
    const drawn_layout *d = &a->drawn;
    int w = 0, h = 0;
    SDL_GetRendererOutputSize(a->renderer, &w, &h);
    fprintf(f, "window %d %d\nview %s\ngeneration %d\nstep %d\nnum_steps %d\nlayer %d\nhead %d\ndense %d\nhelp %d\n",
            w, h, view_name(a->current_view), a->view.generation, a->view.step, a->view.num_steps, a->layer,
            a->head, a->view.dense, a->help);
    if (d->video_drawn)
        fprintf(f, "video_rect %d %d %d %d\nvideo_frame %d\n", d->video.x, d->video.y, d->video.w, d->video.h,
                d->video_frame);
    if (d->mask_drawn)
        fprintf(f, "mask_grid %d %d %d %d\nmask_q_blocks %lld\nmask_k_blocks %lld\nkept_stats %lld\nkept_mask %lld\n",
                d->mask.x, d->mask.y, d->mask_cell, d->mask_gap, (long long)d->mask_q_blocks,
                (long long)d->mask_k_blocks, (long long)d->kept_stats, (long long)d->kept_mask);
    if (d->alpha_drawn)
        fprintf(f, "alpha_rect %d %d %d %d\n", d->alpha.x, d->alpha.y, d->alpha.w, d->alpha.h);
    if (d->timing_drawn) {
        fprintf(f, "timing_rect %d %d %d %d\ntiming_last_px", d->timing.x, d->timing.y, d->timing.w, d->timing.h);
        for (int p = 0; p < TIMING_PARTS; p++)
            fprintf(f, " %d", d->timing_last_px[p]);
        fprintf(f, "\ntiming_last_ms");
        for (int p = 0; p < TIMING_PARTS; p++)
            fprintf(f, " %.4f", d->timing_last_ms[p]);
        fprintf(f, "\n");
    }
    fclose(f);
}

void app_screenshot(app *a)
{
    if (!make_dirs(a->args.screenshot_dir)) {
        app_say(a, 1, "%s: cannot create the directory: %s", a->args.screenshot_dir, strerror(errno));
        a->exit_code = 1;
        return;
    }
    char png[1400], txt[1400];
    snprintf(png, sizeof png, "%s/%s.png", a->args.screenshot_dir, a->screenshot_name);
    snprintf(txt, sizeof txt, "%s/%s.txt", a->args.screenshot_dir, a->screenshot_name);
    if (write_window_png(a, png)) {
        write_sidecar(a, txt);
        printf("sla2-preview: screenshot %s (step %d, view %s)\n", png, a->view.step, view_name(a->current_view));
        fflush(stdout);
    } else {
        a->exit_code = 1;
    }
}

