/* Y4M and PNG writers for generated videos. */
#include "sla2/video.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sla2_status fail(char *msg, size_t size, sla2_status status, const char *text, const char *path)
{
    if (msg && size)
        snprintf(msg, size, "%s: %s", path ? path : "(null)", text);
    return status;
}

static uint8_t to_byte(float v)
{
    float x = (v + 1.0f) * 127.5f;
    if (!(x > 0.0f)) /* NaN too */
        return 0;
    return x >= 255.0f ? 255 : (uint8_t)(x + 0.5f);
}

void sla2_video_frame_rgb8(const float *video, int frames, int height, int width, int frame, uint8_t *rgb)
{
    size_t plane = (size_t)frames * height * width, offset = (size_t)frame * height * width;
    for (size_t i = 0; i < (size_t)height * width; i++)
        for (int c = 0; c < 3; c++)
            rgb[i * 3 + c] = to_byte(video[c * plane + offset + i]);
}

static sla2_status check_sizes(const char *path, const float *video, int frames, int height, int width, char *msg,
                               size_t size)
{
    if (!path || !video)
        return fail(msg, size, SLA2_ERR_NULL_ARGUMENT, "path and video must not be NULL", path);
    if (frames < 1 || height < 1 || width < 1 || frames > 100000 || height > 16384 || width > 16384)
        return fail(msg, size, SLA2_ERR_INVALID_VALUE, "frames, height and width must be in [1, 16384]", path);
    return SLA2_OK;
}

static FILE *open_temp(const char *path, char *tmp, size_t tmp_size)
{
    snprintf(tmp, tmp_size, "%s.tmp", path);
    return fopen(tmp, "wb");
}

static sla2_status finish(FILE *f, int ok, const char *tmp, const char *path, char *msg, size_t size)
{
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return fail(msg, size, SLA2_ERR_IO, strerror(e ? e : EIO), path);
    }
    return SLA2_OK;
}

sla2_status sla2_video_write_y4m(const char *path, const float *video, int frames, int height, int width, int fps,
                                 char *msg, size_t size)
{
    sla2_status s = check_sizes(path, video, frames, height, width, msg, size);
    if (s != SLA2_OK)
        return s;
    if (fps < 1 || fps > 1000)
        return fail(msg, size, SLA2_ERR_INVALID_VALUE, "fps must be in [1, 1000]", path);
    char tmp[4096];
    FILE *f = open_temp(path, tmp, sizeof tmp);
    if (!f)
        return fail(msg, size, SLA2_ERR_IO, strerror(errno), path);
    size_t pixels = (size_t)height * width;
    uint8_t *rgb = malloc(pixels * 3), *yuv = malloc(pixels * 3);
    int ok = rgb && yuv && fprintf(f, "YUV4MPEG2 W%d H%d F%d:1 Ip A1:1 C444\n", width, height, fps) > 0;
    for (int frame = 0; ok && frame < frames; frame++) {
        sla2_video_frame_rgb8(video, frames, height, width, frame, rgb);
        for (size_t i = 0; i < pixels; i++) {
            double r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
            yuv[i] = (uint8_t)(16.5 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0);
            yuv[pixels + i] = (uint8_t)(128.5 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0);
            yuv[2 * pixels + i] = (uint8_t)(128.5 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0);
        }
        ok = fputs("FRAME\n", f) >= 0 && fwrite(yuv, 1, pixels * 3, f) == pixels * 3;
    }
    free(rgb), free(yuv);
    return finish(f, ok, tmp, path, msg, size);
}

sla2_status sla2_image_write_png(const char *path, const uint8_t *rgb, int height, int width, char *msg, size_t size)
{
    if (!path || !rgb)
        return fail(msg, size, SLA2_ERR_NULL_ARGUMENT, "path and rgb must not be NULL", path);
    if (height < 1 || width < 1 || height > 65536 || width > 65536)
        return fail(msg, size, SLA2_ERR_INVALID_VALUE, "height and width must be in [1, 65536]", path);
    char tmp[4096];
    FILE *f = open_temp(path, tmp, sizeof tmp);
    if (!f)
        return fail(msg, size, SLA2_ERR_IO, strerror(errno), path);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int ok = 0;
    if (png && info && !setjmp(png_jmpbuf(png))) {
        png_init_io(png, f);
        png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        for (int y = 0; y < height; y++)
            png_write_row(png, (png_const_bytep)(rgb + (size_t)y * width * 3));
        png_write_end(png, NULL);
        ok = 1;
    }
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    return finish(f, ok, tmp, path, msg, size);
}

sla2_status sla2_video_write_png_strip(const char *path, const float *video, int frames, int height, int width,
                                       int first, int step, int count, char *msg, size_t size)
{
    sla2_status s = check_sizes(path, video, frames, height, width, msg, size);
    if (s != SLA2_OK)
        return s;
    if (step < 1)
        step = 1;
    if (count <= 0)
        count = (frames - first + step - 1) / step;
    if (first < 0 || first >= frames || count < 1 || first + (count - 1) * step >= frames)
        return fail(msg, size, SLA2_ERR_INVALID_VALUE, "the frames asked for lie outside the video", path);
    size_t strip_width = (size_t)width * count;
    uint8_t *strip = malloc(strip_width * height * 3), *frame_rgb = malloc((size_t)width * height * 3);
    if (!strip || !frame_rgb) {
        free(strip), free(frame_rgb);
        return fail(msg, size, SLA2_ERR_OUT_OF_MEMORY, "out of memory for the strip", path);
    }
    for (int i = 0; i < count; i++) {
        sla2_video_frame_rgb8(video, frames, height, width, first + i * step, frame_rgb);
        for (int y = 0; y < height; y++)
            memcpy(strip + ((size_t)y * strip_width + (size_t)i * width) * 3, frame_rgb + (size_t)y * width * 3,
                   (size_t)width * 3);
    }
    s = sla2_image_write_png(path, strip, height, (int)strip_width, msg, size);
    free(strip), free(frame_rgb);
    return s;
}
