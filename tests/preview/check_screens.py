#!/usr/bin/env python3
"""Checks sla2-preview's screenshots: reads the PNGs (stdlib zlib only) and
the sidecar .txt files the app writes beside them (what it drew where).

usage: check_screens.py DIR

Expects the screenshots of tests/preview/fixture.script (or tiny.script):
  step1, step2   the dashboard after steps 1 and 2, video held on one frame
  mask, mask_dense, alpha, timing, video, all, help
Prints one line per check and exits with the number of failures."""
import struct
import sys
import zlib
from pathlib import Path

KEPT = (0xFF, 0xB5, 0x47)       # views.c COLOUR_KEPT
DROPPED = (0x2B, 0x30, 0x3A)    # views.c COLOUR_DROPPED
# views.c's timing bar, bottom up: router, quantise, sparse, linear, mix,
# attention's other time, the step's rest (COLOUR_ROUTER .. COLOUR_REST)
TIMING_PARTS = [("router", (0xC6, 0x78, 0xDD)), ("quantise", (0x56, 0xB6, 0xC2)), ("sparse", (0xFF, 0xB5, 0x47)),
                ("linear", (0x98, 0xC3, 0x79)), ("mix", (0xE0, 0x6C, 0x75)),
                ("attention, other", (0xA8, 0x90, 0x60)), ("rest", (0x4F, 0x8F, 0xD6))]


def read_png(path):
    """Returns (width, height, rows) with rows[y] a bytes of RGB triples."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError(f"{path}: only 8-bit RGB/RGBA, not interlaced (got depth {depth}, type {colour})")
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        rows.append(bytes(line) if channels == 3 else bytes(v for k, v in enumerate(line) if k % 4 != 3))
    return width, height, rows


def read_sidecar(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        key, _, value = line.partition(" ")
        out[key] = value.split()
    return out


def pixel(img, x, y):
    row = img[2][y]
    return tuple(row[3 * x:3 * x + 3])


def region(img, rect):
    x, y, w, h = rect
    return [pixel(img, i, j) for j in range(y, y + h) for i in range(x, x + w)]


def near(a, b, tol=24):
    return all(abs(p - q) <= tol for p, q in zip(a, b))


class Checker:
    def __init__(self, directory):
        self.dir, self.failures, self.cache = Path(directory), 0, {}

    def check(self, ok, what):
        print(("ok: " if ok else "FAIL: ") + what)
        self.failures += 0 if ok else 1
        return ok

    def load(self, name):
        if name not in self.cache:
            png, txt = self.dir / f"{name}.png", self.dir / f"{name}.txt"
            ok = self.check(png.exists() and txt.exists(), f"{name}: screenshot and sidecar exist")
            self.cache[name] = (read_png(png), read_sidecar(txt)) if ok else (None, None)
        return self.cache[name]

    def video_pixels(self, name):
        img, side = self.load(name)
        if not img or not self.check("video_rect" in side, f"{name}: the video was drawn"):
            return None, None
        rect = [int(v) for v in side["video_rect"]]
        pixels = region(img, rect)
        distinct = len(set(pixels))
        mean = [sum(p[c] for p in pixels) / len(pixels) for c in range(3)]
        spread = max(max(p[c] for p in pixels) - min(p[c] for p in pixels) for c in range(3))
        self.check(distinct >= 4 and spread >= 16,
                   f"{name}: video area {rect[2]}x{rect[3]} is not blank ({distinct} colours, spread {spread}, "
                   f"mean {mean[0]:.0f},{mean[1]:.0f},{mean[2]:.0f})")
        return pixels, side

    def mask(self, name):
        img, side = self.load(name)
        if not img or not self.check("mask_grid" in side, f"{name}: the mask was drawn"):
            return
        x0, y0, cell, gap = (int(v) for v in side["mask_grid"])
        nq, nk = int(side["mask_q_blocks"][0]), int(side["mask_k_blocks"][0])
        kept_stats, kept_mask = int(side["kept_stats"][0]), int(side["kept_mask"][0])
        lit = unlit = other = 0
        for i in range(nq):
            for j in range(nk):
                c = (cell - gap) // 2
                p = pixel(img, x0 + j * cell + c, y0 + i * cell + c)
                if near(p, KEPT):
                    lit += 1
                elif near(p, DROPPED):
                    unlit += 1
                else:
                    other += 1
        self.check(other == 0, f"{name}: every one of the {nq}x{nk} cells is lit or dark ({other} neither)")
        self.check(lit == kept_stats == kept_mask,
                   f"{name}: {lit} cells lit, the stats say {kept_stats} kept (the mask array: {kept_mask}), "
                   f"layer {side['layer'][0]} head {side['head'][0]}, step {side['step'][0]}")

    def colours_in(self, name, key, wanted, what):
        img, side = self.load(name)
        if not img or not self.check(key in side, f"{name}: {what} was drawn"):
            return
        pixels = set(region(img, [int(v) for v in side[key]]))
        for colour, label in wanted:
            self.check(any(near(p, colour, 6) for p in pixels), f"{name}: {what} shows {label}")

    def timing(self, name):
        """The bars stack the phases: the backend reported the last step's
        router and sparse time (never 0 on the CPU or CUDA: both run them
        every step), no part is negative, and every part of the bar at least
        2 pixels tall shows in its colour."""
        img, side = self.load(name)
        if not img or not self.check("timing_last_px" in side, f"{name}: the timing chart was drawn"):
            return
        heights = [int(v) for v in side["timing_last_px"]]
        self.check(len(heights) == len(TIMING_PARTS), f"{name}: {len(heights)} parts in the bar")
        pixels = set(region(img, [int(v) for v in side["timing_rect"]]))
        for (label, colour), h in zip(TIMING_PARTS, heights):
            if h >= 2:
                self.check(any(near(p, colour, 6) for p in pixels), f"{name}: the bars show {label} ({h} px)")
        ms = [float(v) for v in side["timing_last_ms"]]
        split = ", ".join(f"{label} {t:.2f} ms/{h} px" for (label, _), t, h in zip(TIMING_PARTS, ms, heights))
        self.check(ms[0] > 0 and ms[2] > 0 and all(t >= 0 for t in ms),
                   f"{name}: the last step's split: {split}")

    def run(self):
        step1, s1 = self.video_pixels("step1")
        step2, s2 = self.video_pixels("step2")
        if step1 and step2:
            same_frame = s1["video_frame"] == s2["video_frame"] and s1["video_rect"] == s2["video_rect"]
            self.check(same_frame, "step1/step2: the same frame, held, at the same place")
            diff = sum(abs(a[c] - b[c]) for a, b in zip(step1, step2) for c in range(3)) / (3 * len(step1))
            self.check(s1["step"] != s2["step"] and diff > 1.0,
                       f"the video changes between steps {s1['step'][0]} and {s2['step'][0]} "
                       f"(mean |difference| {diff:.1f} of 255)")
        self.video_pixels("video")
        self.mask("step1")
        self.mask("mask")
        self.mask("mask_dense")
        _, dense = self.load("mask_dense")
        if dense:
            self.check(dense.get("dense") == ["1"] and dense["kept_stats"][0] == str(
                int(dense["mask_q_blocks"][0]) * int(dense["mask_k_blocks"][0])),
                "mask_dense: a dense step keeps every block")
        self.colours_in("alpha", "alpha_rect", [], "the alpha heat map")
        img, side = self.load("alpha")
        if img and "alpha_rect" in side:
            pixels = region(img, [int(v) for v in side["alpha_rect"]])
            background = (0x1F, 0x23, 0x2B)
            self.check(sum(not near(p, background, 4) for p in pixels) > len(pixels) // 2,
                       "alpha: the heat map's cells are coloured")
        self.timing("timing")
        all_img, all_side = self.load("all")
        help_img, help_side = self.load("help")
        if all_img and help_img:
            for key in ("video_rect", "mask_grid", "alpha_rect", "timing_rect"):
                self.check(key in all_side, f"all: the dashboard draws {key.split('_')[0]}")
            changed = sum(a != b for a, b in zip(all_img[2], help_img[2]))
            self.check(help_side.get("help") == ["1"] and changed > all_img[1] // 3,
                       f"help: the overlay changes {changed} of {all_img[1]} rows")
        return self.failures


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    failures = Checker(sys.argv[1]).run()
    print(f"screenshots: {'all checks passed' if failures == 0 else f'{failures} checks failed'}")
    sys.exit(failures)
