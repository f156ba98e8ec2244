"""Flow-matching training of the tiny demo model, in the SLA2 paper's three
stages, each bounded by wall time and steps so that a run fits the device's
10-minute commands (checkpoints and resumes between them):

  dense   all weights, dense attention (flash), AdamW, cosine LR, EMA; at its
          end the EMA weights become the model.
  stage1  router_q/router_k/alpha only (the rest frozen), soft top-k
          (topk 0.1, tau annealed), loss = flow matching + per-layer relative
          error of SLA2's attention output against dense attention.
  stage2  everything but the router (which gets no gradient through the hard
          top-k), hard top-k + QAT (INT8 Q/K~, FP8 P and V, straight-through),
          small LR; topk 0.1, and 0.05 on a share of the steps (the SDK runs
          both).

Flow matching: x_t = (1 - s) x0 + s eps, target eps - x0, model timestep
1000 s, s = shift u / (1 + (shift - 1) u), u ~ U(0, 1); the text context is
zeroed for 10% of samples (classifier-free guidance).

  python3 -m train.tiny.train --dir OUTDIR [--resume CKPTDIR] [budgets...]
writes OUTDIR/ckpt.part*, OUTDIR/loss.csv, OUTDIR/stats.json.
"""
import argparse
import copy
import csv
import json
import math
import os
import random
import shutil
import time

import torch

from train.tiny import common, data

STAGES = ("dense", "stage1", "stage2", "done")


def flow_batch(model, cfg, B, device, shift, cfg_drop, gen):
    x0, c, s, d = data.sample_batch(B, gen, device)
    ctx = data.context_batch(c, s, d, model.vocab_embedding, cfg["text_len"])
    drop = (torch.rand(B, generator=gen) < cfg_drop).to(device)
    ctx = torch.where(drop[:, None, None], torch.zeros_like(ctx), ctx)
    u = torch.rand(B, generator=gen).to(device)
    sigma = shift * u / (1 + (shift - 1) * u)
    eps = torch.randn(x0.shape, generator=gen).to(device)
    sg = sigma[:, None, None, None, None]
    xt = (1 - sg) * x0 + sg * eps
    return xt, 1000.0 * sigma, ctx, eps - x0


def mean_alpha(model):
    return [torch.sigmoid(b.self_attn.sla2.alpha.detach().float()).mean().item() for b in model.blocks]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--resume", default=None, help="folder with ckpt.part* and loss.csv")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shift", type=float, default=3.0)
    ap.add_argument("--cfg-drop", type=float, default=0.1)
    ap.add_argument("--topk", type=float, default=0.1)
    ap.add_argument("--topk-alt", type=float, default=0.05)
    ap.add_argument("--topk-alt-share", type=float, default=0.3)
    for st, bs, secs, steps, lr in (("dense", 32, 515, 100000, 5e-4), ("stage1", 8, 60, 100000, 2e-3),
                                   ("stage2", 16, 150, 100000, 3e-5)):
        ap.add_argument(f"--{st}-batch", type=int, default=bs)
        ap.add_argument(f"--{st}-s", type=float, default=secs, help="wall-time budget (s)")
        ap.add_argument(f"--{st}-steps", type=int, default=steps)
        ap.add_argument(f"--{st}-lr", type=float, default=lr)
    ap.add_argument("--alpha-lr", type=float, default=1e-2)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--ckpt-every", type=int, default=1000)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--no-amp", action="store_true")
    ap.add_argument("--from-stage", choices=STAGES[:3], default=None,
                    help="after --resume, (re)enter this stage, e.g. more dense training from a later "
                         "checkpoint (its step and wall counters go on; raise its budget)")
    ap.add_argument("--stop-after", choices=STAGES[:3], default=None,
                    help="end the process after this stage (resume later with --resume)")
    args = ap.parse_args(argv)

    os.makedirs(args.dir, exist_ok=True)
    dev = torch.device(args.device)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True   # dense layers only; SLA2's QAT sums are exact in TF32 too
        torch.backends.cudnn.allow_tf32 = True
    cfg = common.load_config()
    model = common.build_model(cfg)
    common.init_weights(model)
    state = dict(stage="dense", steps={s: 0 for s in STAGES[:3]}, wall={s: 0.0 for s in STAGES[:3]},
                 global_step=0, seed=args.seed)
    ema = None
    csv_path = os.path.join(args.dir, "loss.csv")
    if args.resume:
        ck = common.load_parts(os.path.join(args.resume, "ckpt"))
        if ck is not None:
            model.load_state_dict(ck["model"])
            state = ck["state"]
            if ck.get("ema") is not None:
                ema = ck["ema"]
            if args.from_stage:
                state["stage"] = args.from_stage
            print(f"resumed: stage {state['stage']}, steps {state['steps']}, wall {state['wall']}", flush=True)
        src = os.path.join(args.resume, "loss.csv")
        if os.path.exists(src) and os.path.abspath(src) != os.path.abspath(csv_path):
            shutil.copy(src, csv_path)
    model.to(dev)
    new_csv = not os.path.exists(csv_path)
    log = open(csv_path, "a", newline="")
    writer = csv.writer(log)
    if new_csv:
        writer.writerow(["global_step", "stage", "step", "loss", "fm_loss", "attn_err", "lr", "wall_s",
                         "alpha_mean"])
    gen = torch.Generator().manual_seed(args.seed * 1000 + state["global_step"])
    amp = dev.type == "cuda" and not args.no_amp
    if state["stage"] == "dense" and ema is None:
        ema = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    if ema is not None:
        ema = {k: v.to(dev) for k, v in ema.items()}

    def save(final=False):
        t0 = time.time()
        obj = dict(model={k: v.detach().cpu() for k, v in model.state_dict().items()}, state=state,
                   ema={k: v.cpu() for k, v in ema.items()} if ema is not None else None, args=vars(args))
        common.save_parts(obj, os.path.join(args.dir, "ckpt"))
        log.flush()
        print(f"checkpoint ({state['stage']}, global step {state['global_step']}) in {time.time() - t0:.1f}s",
              flush=True)

    while state["stage"] != "done":
        stage = state["stage"]
        budget_s = getattr(args, f"{stage}_s")
        max_steps = getattr(args, f"{stage}_steps")
        B = getattr(args, f"{stage}_batch")
        base_lr = getattr(args, f"{stage}_lr")
        for p in model.parameters():
            p.requires_grad_(True)
        if stage == "dense":
            common.set_attention(model, "dense")
            groups = [dict(params=[p for n, p in model.named_parameters() if "sla2" not in n and p.dim() >= 2],
                           weight_decay=0.01),
                      dict(params=[p for n, p in model.named_parameters() if "sla2" not in n and p.dim() < 2],
                           weight_decay=0.0)]
            for n, p in model.named_parameters():
                if "sla2" in n:
                    p.requires_grad_(False)
        elif stage == "stage1":
            common.set_attention(model, "soft", "none", args.topk, tau=0.3)
            for n, p in model.named_parameters():
                p.requires_grad_("sla2" in n)
            groups = [dict(params=[p for n, p in model.named_parameters() if "router" in n], weight_decay=0.0),
                      dict(params=[p for n, p in model.named_parameters() if n.endswith("sla2.alpha")],
                           weight_decay=0.0, lr_scale=args.alpha_lr / base_lr)]
        else:
            common.set_attention(model, "hard", "int8_fp8", args.topk)
            for n, p in model.named_parameters():
                if "router" in n:
                    p.requires_grad_(False)
            groups = [dict(params=[p for n, p in model.named_parameters() if "sla2" not in n and p.dim() >= 2],
                           weight_decay=0.01),
                      dict(params=[p for n, p in model.named_parameters() if "sla2" not in n and p.dim() < 2],
                           weight_decay=0.0),
                      dict(params=[p for n, p in model.named_parameters() if n.endswith("sla2.alpha")],
                           weight_decay=0.0, lr_scale=1e-3 / base_lr)]
        for g in groups:
            g.setdefault("lr_scale", 1.0)
        opt = torch.optim.AdamW(groups, lr=base_lr, betas=(0.9, 0.99), eps=1e-8,
                                **({"fused": True} if dev.type == "cuda" else {}))
        model.train()
        t_start = time.time() - state["wall"][stage]
        warm = 100 if stage == "dense" else 20
        local = 0  # steps in this process (warm-up restarts after a resume: no optimizer state is kept)
        state.setdefault("stage_args", {})[stage] = dict(batch=B, lr=base_lr, budget_s=budget_s,
                                                         max_steps=max_steps)
        print(f"== {stage}: batch {B}, lr {base_lr}, budget {budget_s}s / {max_steps} steps, "
              f"done so far {state['steps'][stage]} steps {state['wall'][stage]:.0f}s", flush=True)
        t_log = time.time()
        while state["steps"][stage] < max_steps and time.time() - t_start < budget_s:
            frac = min(1.0, (time.time() - t_start) / budget_s)
            lr = base_lr * min(1.0, (local + 1) / warm)
            if stage == "dense":
                lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))
            for g in opt.param_groups:
                g["lr"] = lr * g["lr_scale"]
            if stage == "stage1":  # anneal the soft top-k towards the hard one
                common.set_attention(model, "soft", "none", args.topk, tau=0.3 * (0.05 / 0.3) ** frac)
            elif stage == "stage2":
                tk = args.topk_alt if random.random() < args.topk_alt_share else args.topk
                common.set_attention(model, "hard", "int8_fp8", tk)
            xt, t, ctx, target = flow_batch(model, cfg, B, dev, args.shift, args.cfg_drop, gen)
            aux = [] if stage == "stage1" else None
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                pred = common.forward_batch(model, xt, t, ctx, aux)
            fm = (pred.float() - target).pow(2).mean()
            attn = torch.stack(aux).mean() if aux else torch.zeros((), device=dev)
            loss = fm + attn
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
            opt.step()
            if stage == "dense":
                d = min(args.ema, (1 + state["steps"][stage]) / (10 + state["steps"][stage]))
                with torch.no_grad():
                    for k, v in model.state_dict().items():
                        ema[k].mul_(d).add_(v.float(), alpha=1 - d)
            state["steps"][stage] += 1
            state["global_step"] += 1
            local += 1
            if local % args.log_every == 0:
                state["wall"][stage] = time.time() - t_start
                am = mean_alpha(model)
                writer.writerow([state["global_step"], stage, state["steps"][stage], f"{loss.item():.6f}",
                                 f"{fm.item():.6f}", f"{attn.item():.6f}", f"{lr:.3e}",
                                 f"{state['wall'][stage]:.1f}", f"{sum(am) / len(am):.4f}"])
                if local % (args.log_every * 10) == 0:
                    dt = time.time() - t_log
                    t_log = time.time()
                    mem = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else 0.0
                    print(f"{stage} step {state['steps'][stage]} loss {loss.item():.4f} fm {fm.item():.4f} "
                          f"attn {attn.item():.4f} lr {lr:.2e} {args.log_every * 10 / dt:.2f} it/s "
                          f"wall {state['wall'][stage]:.0f}s mem {mem:.1f}G alpha {[round(a, 3) for a in am]}",
                          flush=True)
            if state["steps"][stage] % args.ckpt_every == 0:
                state["wall"][stage] = time.time() - t_start
                save()
        state["wall"][stage] = time.time() - t_start
        print(f"== {stage} finished: {state['steps'][stage]} steps, {state['wall'][stage]:.0f}s", flush=True)
        if stage == "dense":  # the EMA weights go on
            model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in ema.items()})
            ema = None
        state["stage"] = STAGES[STAGES.index(stage) + 1]
        save()
        if args.stop_after == stage:
            break
    log.close()
    stats = dict(state=state, alpha_mean_per_layer=mean_alpha(model),
                 device=torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
                 torch=torch.__version__, args=vars(args))
    with open(os.path.join(args.dir, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print("training done", json.dumps(state), flush=True)


if __name__ == "__main__":
    main()
