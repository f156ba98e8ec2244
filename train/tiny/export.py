"""Export the trained tiny model to the SDK's layout (ARCHITECTURE.md
section 6):

  models/tiny-demo.safetensors  F16; Wan's names, vocab_embedding.weight,
                                blocks.N.self_attn.sla2.router_q / router_k
                                [H, D, D] and .alpha [H]
  models/tiny-demo.yaml         configs/models/tiny-demo.yaml (router and
                                alpha per_head)
  models/MODEL_CARD.md          steps, wall time, losses, sparsity, adherence,
                                the data contract, the commands
  models/loss.png               the loss curves (when matplotlib is there)

  python3 -m train.tiny.export --run DIR [--models models]
DIR holds ckpt.part*, loss.csv, stats.json and optionally adherence.json /
loss.png (a loss.png already in DIR is copied when matplotlib is missing)."""
import argparse
import csv
import json
import os
import shutil

import torch

from train.safetensors_io import load_file, save_file
from train.tiny import common, data
from train.tiny.attention import kept_blocks


def write_loss_png(rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    colours = {"dense": "tab:blue", "stage1": "tab:orange", "stage2": "tab:green"}
    for st, c in colours.items():
        r = [x for x in rows if x["stage"] == st]
        if not r:
            continue
        gs = [int(x["global_step"]) for x in r]
        fm = [float(x["fm_loss"]) for x in r]
        k = 10
        sm = [sum(fm[max(0, i - k + 1):i + 1]) / len(fm[max(0, i - k + 1):i + 1]) for i in range(len(fm))]
        ax[0].plot(gs, fm, color=c, alpha=0.25, lw=0.8)
        ax[0].plot(gs, sm, color=c, label=f"{st} (flow-matching loss)")
        if st == "stage1":
            ax[1].plot(gs, [float(x["attn_err"]) for x in r], color=c, label="stage1 attention rel. error")
        ax[1].plot(gs, [float(x["alpha_mean"]) for x in r], color=c, ls="--", label=f"{st} mean alpha")
    ax[0].set_yscale("log")
    ax[0].set_xlabel("step")
    ax[0].set_title("tiny-demo training loss")
    ax[0].legend()
    ax[1].set_xlabel("step")
    ax[1].set_title("SLA2 stages")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--models", default=os.path.join(common.ROOT, "models"))
    args = ap.parse_args(argv)
    os.makedirs(args.models, exist_ok=True)
    cfg = common.load_config()
    ck = common.load_parts(os.path.join(args.run, "ckpt"))
    sd = ck["model"]
    tensors = {}
    for k, v in sd.items():
        v = v.float()
        assert torch.isfinite(v).all() and v.abs().max() < 60000, k
        tensors[k] = v.half()
    st_path = os.path.join(args.models, "tiny-demo.safetensors")
    stats = json.load(open(os.path.join(args.run, "stats.json")))
    save_file(tensors, st_path, metadata={"format": "pt", "model": "tiny-demo",
                                          "steps": json.dumps(stats["state"]["steps"])})
    # round trip: the exported F16 weights load into the model
    model = common.build_model(cfg)
    back = {k: v.float() for k, v in load_file(st_path).items()}
    model.load_state_dict(back, strict=True)
    size_mb = os.path.getsize(st_path) / 2**20
    assert size_mb <= 20, size_mb

    src = open(common.CONFIG).read()
    with open(os.path.join(args.models, "tiny-demo.yaml"), "w") as f:
        f.write("# Exported with models/tiny-demo.safetensors by train/tiny/export.py (a copy of\n"
                "# configs/models/tiny-demo.yaml; see models/MODEL_CARD.md).\n")
        f.write(src)

    rows = list(csv.DictReader(open(os.path.join(args.run, "loss.csv"))))
    png = os.path.join(args.models, "loss.png")
    if not write_loss_png(rows, png) and os.path.exists(os.path.join(args.run, "loss.png")):
        shutil.copy(os.path.join(args.run, "loss.png"), png)

    def last_mean(stage, n=20, col="fm_loss"):
        r = [float(x[col]) for x in rows if x["stage"] == stage]
        return sum(r[-n:]) / max(1, len(r[-n:])) if r else float("nan")

    def first_mean(stage, n=5, col="fm_loss"):
        r = [float(x[col]) for x in rows if x["stage"] == stage]
        return sum(r[:n]) / max(1, len(r[:n])) if r else float("nan")

    st = stats["state"]
    nk = 4096 // 64
    adh_path = os.path.join(args.run, "adherence.json")
    adh = json.load(open(adh_path)) if os.path.exists(adh_path) else None
    a = dict(stats.get("args", {}))
    for stg, sa in st.get("stage_args", {}).items():  # what each stage actually ran with (resumes differ)
        a[f"{stg}_batch"], a[f"{stg}_lr"], a[f"{stg}_s"] = sa["batch"], sa["lr"], sa["budget_s"]
    pal = "\n".join(f"| {n} | {c} |" for n, c in data.COLOURS.items())
    lines = [
        "# tiny-demo: model card",
        "",
        "A Wan2.1-architecture video DiT (ARCHITECTURE.md section 5) in pixel space, trained on synthetic",
        "videos of one coloured shape moving in one direction, with SLA2 attention (learned per-head router,",
        "per-head alpha) and quantisation-aware training for the SDK's INT8 Q·Kᵀ / FP8 P·V sparse branch.",
        "",
        "Files: `tiny-demo.safetensors` (F16, %.1f MB, %d tensors: Wan's names, `vocab_embedding.weight`,"
        % (size_mb, len(tensors)),
        "`blocks.N.self_attn.sla2.router_q` / `router_k` [4, 64, 64], `blocks.N.self_attn.sla2.alpha` [4]),",
        "`tiny-demo.yaml` (architecture; `sla2: {router: per_head, alpha: per_head}`), `loss.png`.",
        "",
        "## Architecture",
        "dim 256, 4 heads of 64, 4 layers, ffn 1024, freq_dim 256, text_dim 64, text_len 8, in/out 3 (RGB),",
        "patch [1, 4, 4]: 16 frames of 64×64 → 16×16×16 = 4096 tokens; %d parameters." %
        sum(v.numel() for v in tensors.values()),
        "Text: the prompt's words are looked up in `vocab_embedding` (token id = index in the YAML's",
        "vocabulary), zero-padded to 8 rows; the unconditional context is all zeros.",
        "",
        "## Training data (the contract with the C prompt-adherence analyser; `train/tiny/data.py`)",
        "- Video `[3, 16, 64, 64]` (RGB, frames, rows, columns), value = pixel / 127.5 − 1.",
        "- Background RGB %s. One filled shape, no anti-aliasing (a pixel is inside when its centre is):" %
        (data.BACKGROUND,),
        "  circle radius %g px; square side %g px (axis-aligned); triangle equilateral, side %g px, apex up," %
        (data.CIRCLE_RADIUS, data.SQUARE_SIDE, data.TRIANGLE_SIDE),
        "  bounding box (24 × 20.78 px) centred on the shape's centre. Bounding-box fill ratios: circle ≈ π/4,",
        "  square 1, triangle ≈ 1/2.",
        "- Motion %g px per frame over 16 frames (37.5 px), left / right / up (towards row 0) / down; the start"
        % data.SPEED,
        "  is uniform among positions that keep the shape fully inside in every frame; the perpendicular",
        "  coordinate is uniform in [half extent, 64 − half extent].",
        "- Prompt `<colour> <shape> moving <direction>`. Palette (RGB):",
        "",
        "| colour | RGB |",
        "| --- | --- |",
        pal,
        "",
        "## Training (`train/tiny/train.py`, on %s, torch %s)" % (stats.get("device"), stats.get("torch")),
        "Flow matching: x_t = (1−σ)x0 + σε, target ε − x0, timestep 1000σ, σ = s·u/(1+(s−1)u), u ~ U(0,1),",
        "s = %s; 10%% of contexts zeroed (classifier-free guidance); AdamW (β 0.9/0.99, wd 0.01 on matrices),"
        % a.get("shift"),
        "bf16 autocast (SLA2 attention itself in float32), grad-norm clip 1.",
        "",
        "| stage | what trains | batch | LR | steps | wall (s) | FM loss start → end |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        "| dense | all weights, dense attention, cosine LR, EMA 0.999 (EMA weights kept) | %s | %s | %d | %.0f | %.4f → %.4f |"
        % (a.get("dense_batch"), a.get("dense_lr"), st["steps"]["dense"], st["wall"]["dense"],
           first_mean("dense"), last_mean("dense")),
        "| 1 | router_q, router_k (LR %s), alpha (LR %s); soft top-k, τ 0.3 → 0.05 (× score std), loss = FM + attention error vs dense | %s | %s | %d | %.0f | %.4f → %.4f |"
        % (a.get("stage1_lr"), a.get("alpha_lr"), a.get("stage1_batch"), a.get("stage1_lr"),
           st["steps"]["stage1"], st["wall"]["stage1"], first_mean("stage1"), last_mean("stage1")),
        "| 2 | all but the router; hard top-k + QAT int8_fp8 (straight-through), topk %s (%s on %d%% of steps) | %s | %s | %d | %.0f | %.4f → %.4f |"
        % (a.get("topk"), a.get("topk_alt"), round(100 * a.get("topk_alt_share", 0)), a.get("stage2_batch"),
           a.get("stage2_lr"), st["steps"]["stage2"], st["wall"]["stage2"], first_mean("stage2"),
           last_mean("stage2")),
        "",
        "Stage 1's relative attention error (‖O_sla2 − O_dense‖² / ‖O_dense‖², mean over layers): %.4f at the"
        % first_mean("stage1", col="attn_err"),
        "start, %.4f at the end. Final mean α per layer: %s." %
        (last_mean("stage1", col="attn_err"), ", ".join("%.3f" % x for x in stats["alpha_mean_per_layer"])),
        "Total: %d steps, %.0f s of training on the GPU." % (st["global_step"], sum(st["wall"].values())),
        "",
        "Sparsity (blocks 128×64, Nk = 64 key blocks): topk 0.1 keeps %d blocks (%.1f%% sparse), topk 0.05"
        % (kept_blocks(nk, 0.1), 100 * (1 - kept_blocks(nk, 0.1) / nk)),
        "keeps %d (%.1f%% sparse)." % (kept_blocks(nk, 0.05), 100 * (1 - kept_blocks(nk, 0.05) / nk)),
        "",
        "![loss](loss.png)",
        "",
    ]
    if adh:
        s = adh.get("settings", {})
        lines += [
            "## Samples (PyTorch check, `train/tiny/sample.py`)",
            "%s prompts × %s seed(s), Euler %s steps, guidance %s, shift %s; a simple analyser (mean foreground colour,"
            % (s.get("count"), s.get("seeds"), s.get("steps"), s.get("guidance"), s.get("shift")),
            "shape-template IoU, centroid motion; it reads %.0f%% of training videos right). Fractions correct:"
            % (100 * adh.get("analyser_on_training_data", 0)),
            "",
            "| attention | colour | shape | direction | all three |",
            "| --- | --- | --- | --- | --- |",
        ]
        if os.path.exists(os.path.join(args.run, "samples.png")):
            shutil.copy(os.path.join(args.run, "samples.png"), os.path.join(args.models, "samples.png"))
            lines[-2:-2] = ["`samples.png`: rows %s for the prompts %s; columns every other frame." %
                            (adh.get("strip_rows", ""), ", ".join(adh.get("prompts_in_strip", []))), ""]
        if adh.get("note"):
            lines[-3:-3] = [adh["note"], ""]
        for k, v in adh.items():
            if isinstance(v, dict) and "colour" in v:
                lines.append("| %s | %.2f | %.2f | %.2f | %.2f |" % (k, v["colour"], v["shape"], v["direction"],
                                                                     v["all"]))
        lines.append("")
    notes = os.path.join(args.run, "notes.md")
    if os.path.exists(notes):
        lines += [open(notes).read().rstrip(), ""]
    lines += [
        "## Reproduce",
        "On a CUDA machine (one H100: about 12 minutes of training; where one command may run at most 10",
        "minutes, split it with `--stop-after dense` and `--resume RUN`), from the repository root:",
        "```",
        "python3 -m train.tiny.train --dir RUN            # dense, stage 1, stage 2 (time budgets: --dense-s,",
        "                                                # --stage1-s, --stage2-s; --resume RUN continues)",
        "python3 -m train.tiny.sample --ckpt RUN/ckpt --out RUN",
        "python3 -m train.tiny.export --run RUN           # writes models/",
        "```",
    ]
    if stats.get("commands"):
        lines += ["This model was made by (RUN a folder carried between the device's 10-minute calls):", "```"]
        lines += stats["commands"] + ["```"]
    lines += [
        "Settings of this run: `%s`." % " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in a.items()
            if k.endswith(("_s", "_batch", "_lr")) or k in ("shift", "topk")),
        "Training runs by wall time, so another GPU reaches another step count.",
        "",
    ]
    with open(os.path.join(args.models, "MODEL_CARD.md"), "w") as f:
        f.write("\n".join(lines))
    print(f"exported {st_path} ({size_mb:.1f} MB, {len(tensors)} tensors) and {args.models}/")


if __name__ == "__main__":
    main()
