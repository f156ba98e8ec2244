/* Text and colours for the preview window. Text is drawn from a glyph atlas
 * of a monospace font, made once, so a frame costs one copy per character
 * instead of one TTF render and one texture upload per string. */
#include "preview.h"

#include <SDL.h>
#include <SDL_ttf.h>

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#define FIRST_GLYPH 32
#define LAST_GLYPH 126

struct preview_font {
    SDL_Texture *atlas;
    int advance, height;
};

preview_font *preview_font_open(SDL_Renderer *renderer, const char *path, int point_size, char *error,
                                size_t error_size)
{
    TTF_Font *ttf = TTF_OpenFont(path, point_size);
    if (!ttf) {
        snprintf(error, error_size, "%s: cannot open the font: %s (Debian: fonts-dejavu-core, or give --font)", path,
                 TTF_GetError());
        return NULL;
    }
    preview_font *font = calloc(1, sizeof *font);
    if (!font) {
        snprintf(error, error_size, "out of memory for the font");
        TTF_CloseFont(ttf);
        return NULL;
    }
    int advance = 0;
    TTF_GlyphMetrics(ttf, 'M', NULL, NULL, NULL, NULL, &advance);
    font->advance = advance > 0 ? advance : point_size * 6 / 10;
    font->height = TTF_FontLineSkip(ttf);
    int count = LAST_GLYPH - FIRST_GLYPH + 1;
    SDL_Surface *sheet = SDL_CreateRGBSurfaceWithFormat(0, count * font->advance, font->height, 32,
                                                        SDL_PIXELFORMAT_RGBA32);
    if (!sheet) {
        snprintf(error, error_size, "out of memory for the font atlas");
        free(font);
        SDL_FreeSurface(sheet);
        TTF_CloseFont(ttf);
        return NULL;
    }
    SDL_FillRect(sheet, NULL, SDL_MapRGBA(sheet->format, 255, 255, 255, 0));
    const SDL_Color white = {255, 255, 255, 255};
    for (int g = FIRST_GLYPH; g <= LAST_GLYPH; g++) {
        SDL_Surface *glyph = TTF_RenderGlyph_Blended(ttf, (Uint16)g, white);
        if (!glyph)
            continue;
        SDL_SetSurfaceBlendMode(glyph, SDL_BLENDMODE_NONE);
        SDL_Rect to = {(g - FIRST_GLYPH) * font->advance, 0, font->advance, font->height};
        SDL_Rect from = {0, 0, glyph->w < font->advance ? glyph->w : font->advance,
                         glyph->h < font->height ? glyph->h : font->height};
        SDL_BlitSurface(glyph, &from, sheet, &to);
        SDL_FreeSurface(glyph);
    }
    font->atlas = SDL_CreateTextureFromSurface(renderer, sheet);
    SDL_FreeSurface(sheet);
    TTF_CloseFont(ttf);
    if (!font->atlas) {
        snprintf(error, error_size, "cannot make the font texture: %s", SDL_GetError());
        free(font);
        return NULL;
    }
    SDL_SetTextureBlendMode(font->atlas, SDL_BLENDMODE_BLEND);
    return font;
}

void preview_font_close(preview_font *font)
{
    if (!font)
        return;
    SDL_DestroyTexture(font->atlas);
    free(font);
}

int preview_font_line_height(const preview_font *font) { return font->height; }
int preview_font_advance(const preview_font *font) { return font->advance; }

int preview_text(SDL_Renderer *renderer, preview_font *font, int x, int y, uint32_t rgb, const char *text)
{
    SDL_SetTextureColorMod(font->atlas, (rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255);
    int x0 = x;
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        int g = *c >= FIRST_GLYPH && *c <= LAST_GLYPH ? *c : '?';
        if (g != ' ') {
            SDL_Rect from = {(g - FIRST_GLYPH) * font->advance, 0, font->advance, font->height};
            SDL_Rect to = {x, y, font->advance, font->height};
            SDL_RenderCopy(renderer, font->atlas, &from, &to);
        }
        x += font->advance;
    }
    return x - x0;
}

int preview_textf(SDL_Renderer *renderer, preview_font *font, int x, int y, uint32_t rgb, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return preview_text(renderer, font, x, y, rgb, buf);
}

uint32_t preview_colour_map(double v)
{
    /* Viridis, sampled at 0, 0.25, 0.5, 0.75, 1 and interpolated. */
    static const double stops[5][3] = {
        {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    if (!(v >= 0))
        v = 0;
    if (v > 1)
        v = 1;
    double pos = v * 4;
    int i = (int)floor(pos);
    if (i >= 4)
        i = 3;
    double t = pos - i;
    uint32_t rgb = 0;
    for (int c = 0; c < 3; c++) {
        int value = (int)lround(stops[i][c] + t * (stops[i + 1][c] - stops[i][c]));
        rgb = (rgb << 8) | (uint32_t)value;
    }
    return rgb;
}
