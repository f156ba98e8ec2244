"""Synthetic training videos for the tiny demo model: one filled shape of one
colour moving in one direction on a dark background.

THE CONSTANTS BELOW ARE THE CONTRACT with the SDK's C prompt-adherence
analyser (models/MODEL_CARD.md repeats them): change them in both places.

Geometry (pixel (x, y): x = column, y = row, row 0 at the top; a pixel's
centre is at (x + 0.5, y + 0.5); a pixel is inside the shape when its centre
is, no anti-aliasing):
  circle   radius 10 px around the centre          (half extents 10, 10)
  square   side 18 px, axis-aligned                 (half extents 9, 9)
  triangle equilateral, side 24 px, apex up (towards row 0), base horizontal;
           its bounding box (24 x 24*sqrt(3)/2 = 20.78 px) is centred on the
           centre                                   (half extents 12, 10.39)
Motion: 2.5 px per frame; frame f's centre = start + 2.5 f * direction, with
  left = (-1, 0), right = (+1, 0), up = (0, -1) (towards row 0), down = (0, +1).
  The start is uniform among the positions that keep the whole shape inside
  the 64 x 64 frame in all 16 frames; the perpendicular coordinate is uniform
  in [half extent, 64 - half extent].
Video: [3, 16, 64, 64] (RGB, frames, rows, columns), value = pixel / 127.5 - 1.
Prompt: "<colour> <shape> moving <direction>", token id = index in VOCABULARY.
"""
import math

import torch

FRAMES, HEIGHT, WIDTH = 16, 64, 64
SPEED = 2.5  # px per frame
BACKGROUND = (20, 20, 28)
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 80, 230),
    "yellow": (230, 220, 40),
    "cyan": (40, 210, 220),
    "magenta": (220, 50, 210),
}
SHAPES = ("circle", "square", "triangle")
CIRCLE_RADIUS = 10.0
SQUARE_SIDE = 18.0
TRIANGLE_SIDE = 24.0
TRIANGLE_HEIGHT = TRIANGLE_SIDE * math.sqrt(3.0) / 2.0
DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
# Same order as configs/models/tiny-demo.yaml's vocabulary.
VOCABULARY = list(COLOURS) + list(SHAPES) + list(DIRECTIONS)[:2] + ["up", "down", "moving"]
assert VOCABULARY == ["red", "green", "blue", "yellow", "cyan", "magenta", "circle", "square",
                      "triangle", "left", "right", "up", "down", "moving"]
COLOUR_NAMES, DIRECTION_NAMES = list(COLOURS), list(DIRECTIONS)
HALF_EXTENT = {  # (half width, half height)
    "circle": (CIRCLE_RADIUS, CIRCLE_RADIUS),
    "square": (SQUARE_SIDE / 2, SQUARE_SIDE / 2),
    "triangle": (TRIANGLE_SIDE / 2, TRIANGLE_HEIGHT / 2),
}


def prompt_of(colour, shape, direction):
    return f"{COLOUR_NAMES[colour]} {SHAPES[shape]} moving {DIRECTION_NAMES[direction]}"


def tokens_of(prompt):
    return [VOCABULARY.index(w) for w in prompt.split()]


def parse_prompt(prompt):
    c, s, _, d = prompt.split()
    return COLOUR_NAMES.index(c), SHAPES.index(s), DIRECTION_NAMES.index(d)


def _shape_masks(shape, dx, dy):
    """dx, dy: offsets of pixel centres from the shape centre [..]; bool mask."""
    if shape == 0:
        return dx * dx + dy * dy <= CIRCLE_RADIUS ** 2
    if shape == 1:
        return (dx.abs() <= SQUARE_SIDE / 2) & (dy.abs() <= SQUARE_SIDE / 2)
    top = -TRIANGLE_HEIGHT / 2
    t = (dy - top) / TRIANGLE_HEIGHT  # 0 at the apex, 1 at the base
    return (t >= 0) & (t <= 1) & (dx.abs() <= (TRIANGLE_SIDE / 2) * t)


def render(colour, shape, direction, cx0, cy0):
    """Batched render. All args are 1-D tensors of length B (ints, then the
    start centre in pixels); returns [B, 3, 16, 64, 64] in [-1, 1]."""
    device = cx0.device
    B = cx0.shape[0]
    f = torch.arange(FRAMES, device=device, dtype=torch.float32)
    dirs = torch.tensor(list(DIRECTIONS.values()), device=device)[direction]  # [B,2]
    cx = cx0[:, None] + SPEED * f[None] * dirs[:, 0:1]  # [B,F]
    cy = cy0[:, None] + SPEED * f[None] * dirs[:, 1:2]
    xs = torch.arange(WIDTH, device=device, dtype=torch.float32) + 0.5
    ys = torch.arange(HEIGHT, device=device, dtype=torch.float32) + 0.5
    dx = xs[None, None, None, :] - cx[:, :, None, None]  # [B,F,1,W]
    dy = ys[None, None, :, None] - cy[:, :, None, None]  # [B,F,H,1]
    dx, dy = dx.expand(B, FRAMES, HEIGHT, WIDTH), dy.expand(B, FRAMES, HEIGHT, WIDTH)
    mask = torch.zeros(B, FRAMES, HEIGHT, WIDTH, dtype=torch.bool, device=device)
    for s in range(len(SHAPES)):
        sel = shape == s
        if sel.any():
            mask[sel] = _shape_masks(s, dx[sel], dy[sel])
    pal = torch.tensor(list(COLOURS.values()), device=device, dtype=torch.float32)[colour]  # [B,3]
    bg = torch.tensor(BACKGROUND, device=device, dtype=torch.float32)
    video = torch.where(mask[:, None], pal[:, :, None, None, None], bg[None, :, None, None, None])
    return video / 127.5 - 1.0


def sample_batch(B, generator=None, device="cpu"):
    """Random videos: (video [B,3,16,64,64], colour, shape, direction) with
    the labels as int64 tensors [B]."""
    g = generator
    colour = torch.randint(len(COLOURS), (B,), generator=g)
    shape = torch.randint(len(SHAPES), (B,), generator=g)
    direction = torch.randint(len(DIRECTIONS), (B,), generator=g)
    u = torch.rand(B, 2, generator=g)
    half = torch.tensor([HALF_EXTENT[s] for s in SHAPES])[shape]  # [B,2]
    travel = SPEED * (FRAMES - 1)
    dirs = torch.tensor(list(DIRECTIONS.values()))[direction]
    size = torch.tensor([WIDTH, HEIGHT], dtype=torch.float32)
    moving = dirs != 0  # which axis moves
    lo = half.clone()
    hi = size - half
    # along the motion axis the whole path must stay inside
    span_lo = torch.where(moving & (dirs < 0), lo + travel, lo)
    span_hi = torch.where(moving & (dirs > 0), hi - travel, hi)
    start = span_lo + u * (span_hi - span_lo)
    video = render(colour.to(device), shape.to(device), direction.to(device),
                   start[:, 0].to(device), start[:, 1].to(device))
    return video, colour, shape, direction


def context_batch(colour, shape, direction, vocab_embedding, text_len):
    """Text context [B, text_len, text_dim]: the vocabulary rows of the
    prompt's 4 words, zero-padded (as WanModel.embed_text and the SDK do)."""
    B = colour.shape[0]
    ids = torch.stack([colour, shape + len(COLOURS), torch.full_like(colour, VOCABULARY.index("moving")),
                       direction + len(COLOURS) + len(SHAPES)], dim=1).to(vocab_embedding.weight.device)
    emb = vocab_embedding(ids)  # [B,4,text_dim]
    pad = emb.new_zeros(B, text_len - ids.shape[1], emb.shape[-1])
    return torch.cat([emb, pad], dim=1)
