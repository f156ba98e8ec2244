"""Sampling and a quick prompt-adherence check of the tiny model in PyTorch
(the SDK's C sampler and analyser are the real ones; this is the training
side's sanity check).

Sampler: flow-matching Euler on the SDK's schedule (sigmas linspace(0.999, 0)
shifted by shift*s/(1+(shift-1)s), then 0; timestep 1000 sigma), classifier-
free guidance against the all-zero context.

Analyser (see analyse()): colour from the foreground's mean colour, shape by
IoU with the three training-size templates, direction from the centroid's
least-squares motion; it reads 100% of training videos right.

  python3 -m train.tiny.sample --ckpt DIR/ckpt --out DIR [--count 48]
writes DIR/samples.png (rows: prompts x modes, columns: every other frame)
and DIR/adherence.json."""
import argparse
import json
import math
import struct
import time
import zlib

import torch

from train.tiny import common, data


def flow_sigmas(steps, shift):
    s = [0.999 + (0.0 - 0.999) * i / steps for i in range(steps)]
    return [shift * x / (1 + (shift - 1) * x) for x in s] + [0.0]


@torch.no_grad()
def generate(model, cfg, labels, seed=0, steps=20, guidance=4.0, shift=5.0, device="cpu", amp=False):
    """labels: list of (colour, shape, direction); returns [N, 3, 16, 64, 64]."""
    c = torch.tensor([l[0] for l in labels]); s = torch.tensor([l[1] for l in labels])
    d = torch.tensor([l[2] for l in labels])
    ctx = data.context_batch(c, s, d, model.vocab_embedding, cfg["text_len"]).to(device)
    N = len(labels)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 3, data.FRAMES, data.HEIGHT, data.WIDTH, generator=g).to(device)
    sig = flow_sigmas(steps, shift)
    ctx2 = torch.cat([ctx, torch.zeros_like(ctx)])
    for i in range(steps):
        t = torch.full((2 * N,), 1000.0 * sig[i], device=device)
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
            v = common.forward_batch(model, torch.cat([x, x]), t, ctx2).float()
        v = v[N:] + guidance * (v[:N] - v[N:])
        x = x + (sig[i + 1] - sig[i]) * v
    return x.clamp(-1, 1)


def analyse(video):
    """video [3, F, H, W] in [-1, 1] -> (colour, shape, direction) indices
    (-1 where undecided). Foreground: farther than 60 (0-255 RGB) from the
    background, kept where at least 5 of its 3x3 neighbourhood are
    foreground (drops speckles). Colour: palette entry nearest the
    foreground's mean. Shape, per frame then the majority: triangle when the
    width at a quarter of the bounding box's height (from the top) is under
    0.6 of the width at three quarters; else square when the bounding box's
    four corner boxes (a quarter of its width and height each) are more than
    60% filled, else circle. Direction: the least-squares slopes of the
    foreground centroid over the frames; the larger axis and its sign."""
    rgb = (video.float() + 1) * 127.5
    bg = torch.tensor(data.BACKGROUND, dtype=torch.float32)[:, None, None, None]
    fg = ((rgb - bg).norm(dim=0) > 60).float()  # [F, H, W]
    nb = torch.nn.functional.conv2d(fg[:, None], torch.ones(1, 1, 3, 3), padding=1)[:, 0]
    fg = (fg > 0) & (nb >= 5)
    if fg.sum() < 20:
        return -1, -1, -1
    mean = rgb[:, fg].mean(dim=1)
    pal = torch.tensor(list(data.COLOURS.values()), dtype=torch.float32)
    colour = int((pal - mean).norm(dim=1).argmin())
    votes, cents = [0, 0, 0], []
    H, W = fg.shape[1:]
    xs_grid = torch.arange(W, dtype=torch.float32)[None, :] + 0.5
    ys_grid = torch.arange(H, dtype=torch.float32)[:, None] + 0.5
    for f in range(fg.shape[0]):
        m = fg[f]
        ys, xs = torch.nonzero(m, as_tuple=True)
        if len(xs) < 20:
            continue
        cx, cy = xs.float().mean().item() + 0.5, ys.float().mean().item() + 0.5
        cents.append((float(f), cx, cy))
        ious = []
        for shp in range(3):
            oy = -data.TRIANGLE_HEIGHT / 6 if shp == 2 else 0.0  # a triangle's centroid lies below its centre
            tmpl = data._shape_masks(shp, (xs_grid - cx).expand(H, W), (ys_grid - (cy + oy)).expand(H, W))
            ious.append((tmpl & m).sum().item() / max(1, (tmpl | m).sum().item()))
        votes[max(range(3), key=lambda i: ious[i])] += 1
    shape = max(range(3), key=lambda i: votes[i]) if sum(votes) else -1
    if len(cents) < 2:
        return colour, shape, -1
    t = torch.tensor([c[0] for c in cents])
    t = t - t.mean()
    sx = (t * torch.tensor([c[1] for c in cents])).sum().item() / (t * t).sum().item()
    sy = (t * torch.tensor([c[2] for c in cents])).sum().item() / (t * t).sum().item()
    if abs(sx) >= abs(sy):
        direction = 1 if sx > 0 else 0
    else:
        direction = 3 if sy > 0 else 2
    return colour, shape, direction


def write_png(path, img):
    """img uint8 [H, W, 3] -> PNG (no dependencies)."""
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].contiguous().numpy().tobytes() for y in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    open(path, "wb").write(png)


def strip(videos, every=2, pad=2):
    """videos [N, 3, F, H, W] -> uint8 image: one row per video."""
    N, _, F, H, W = videos.shape
    frames = list(range(0, F, every))
    img = torch.full((N * (H + pad) + pad, len(frames) * (W + pad) + pad, 3), 255, dtype=torch.uint8)
    v = ((videos.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    for n in range(N):
        for j, f in enumerate(frames):
            y, x = pad + n * (H + pad), pad + j * (W + pad)
            img[y:y + H, x:x + W] = v[n, :, f].permute(1, 2, 0)
    return img


MODES = (("dense", "dense", "none", 1.0), ("sla2 topk0.1 int8_fp8", "hard", "int8_fp8", 0.1),
         ("sla2 topk0.05 int8_fp8", "hard", "int8_fp8", 0.05), ("sla2 topk0.1 none", "hard", "none", 0.1))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=48)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=4.0)
    ap.add_argument("--shift", type=float, default=5.0)
    ap.add_argument("--strip-rows", type=int, default=6)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    cfg = common.load_config()
    model = common.build_model(cfg)
    ck = common.load_parts(args.ckpt)
    model.load_state_dict(ck["model"])
    model.to(args.device).eval()
    gen = torch.Generator().manual_seed(1234)
    all_labels = [(c, s, d) for c in range(6) for s in range(3) for d in range(4)]
    perm = torch.randperm(len(all_labels), generator=gen).tolist()
    labels = [all_labels[i] for i in perm[:args.count]]
    results, rows = {}, []
    gt, _, _, _ = None, None, None, None
    # the analyser on training data first: it must read them right
    vid, c, s, d = data.sample_batch(48, torch.Generator().manual_seed(7))
    ok = [analyse(vid[i]) == (int(c[i]), int(s[i]), int(d[i])) for i in range(48)]
    results["analyser_on_training_data"] = sum(ok) / len(ok)
    for name, mode, quant, topk in MODES:
        common.set_attention(model, mode, quant, topk)
        hit = dict(colour=0, shape=0, direction=0, all=0)
        t0 = time.time()
        n = 0
        for seed in range(args.seeds):
            vids = []
            for i in range(0, len(labels), 24):
                vids.append(generate(model, cfg, labels[i:i + 24], seed=seed * 100 + i, steps=args.steps,
                                     guidance=args.guidance, shift=args.shift, device=args.device,
                                     amp=args.device != "cpu" and mode == "dense").cpu())
            vids = torch.cat(vids)
            for lab, v in zip(labels, vids):
                a = analyse(v)
                hit["colour"] += a[0] == lab[0]
                hit["shape"] += a[1] == lab[1]
                hit["direction"] += a[2] == lab[2]
                hit["all"] += a == lab
                n += 1
            if seed == 0:
                rows.append(vids[:args.strip_rows])
        results[name] = {k: v / n for k, v in hit.items()}
        results[name]["seconds"] = round(time.time() - t0, 1)
        print(name, results[name], flush=True)
    results["prompts_in_strip"] = [data.prompt_of(*l) for l in labels[:args.strip_rows]]
    results["strip_rows"] = "for each mode in order " + ", ".join(m[0] for m in MODES)
    results["settings"] = dict(steps=args.steps, guidance=args.guidance, shift=args.shift, count=len(labels),
                               seeds=args.seeds, sampler="euler")
    write_png(f"{args.out}/samples.png", strip(torch.cat(rows)))
    with open(f"{args.out}/adherence.json", "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
