#!/usr/bin/env python3
"""Writes tests/fixtures/operator/<case>.bin: small SLA2 operator problems with
the output of the PyTorch reference (train/sla2/attention.py, float64), which
tests/test_torch_parity.c compares with the SDK's CPU backend.

    /usr/bin/python3 train/make_operator_fixtures.py [--out DIR] [--check]

--check regenerates in memory and fails if any file in DIR differs: inputs,
settings and masks bit for bit, outputs to 1e-6 (fixed seeds and CPU float64;
the oracle's last bits vary with the torch version, 1.13 wrote these).

File format (all little-endian):
  line 1, ASCII, ending in '\\n' (at most 1023 bytes), space-separated:
    SLA2-OPERATOR-FIXTURE 1 key=value key=value ...
  keys: name B H L D block_q block_k topk quant (none|int8|int8_fp8)
    feature_map (softmax|elu|relu) softmax_scale (0 = 1/sqrt(D))
    router_q router_k (none|shared|per_head) alpha (none|per_head|per_row)
    proj_l (0|1) num_q_blocks num_k_blocks kept (key blocks kept per query
    block) mean_alpha (the reference's mean alpha; -1 for SLA v1)
    seed arrays (the arrays that follow, in order, comma-separated)
  then the arrays, back to back, no padding:
    q, k, v           float32 [B, H, L, D]
    router_q/router_k float32 [D, D] (shared) or [H, D, D] (per_head), when not none
    alpha             float32 [H]              (alpha=per_head)
    alpha_w, alpha_b  float32 [H, D] and [H]   (alpha=per_row)
    proj_l_weight     float32 [D, D], proj_l_bias float32 [D]  (proj_l=1)
    out               float32 [B, H, L, D]  the reference output
    mask              uint8 [B, H, num_q_blocks, num_k_blocks], 1 = kept
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sla2 import num_blocks, sla2_attention_details  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "operator")
MAGIC = "SLA2-OPERATOR-FIXTURE 1"
BLOCK_K = 64
# A router decision is only a fair test when the k-th and (k+1)-th scores are
# further apart than float32 rounding can move them.
MIN_ROUTER_GAP = 1e-4

# name, B, H, L, D, block_q, topk, quant, feature_map, router_q, router_k,
# alpha, extra settings
CASES = [
    dict(name="dense_l63_d64", B=1, H=2, L=63, D=64, bq=64, topk=1.0, quant="none",
         fm="softmax", rq="none", rk="none", alpha="none"),
    dict(name="l1_fp8_elu_shared_perrow", B=1, H=3, L=1, D=64, bq=128, topk=0.05,
         quant="int8_fp8", fm="elu", rq="shared", rk="shared", alpha="per_row"),
    dict(name="tie_l193_none_head", B=1, H=1, L=193, D=64, bq=128, topk=0.5,
         quant="none", fm="softmax", rq="none", rk="none", alpha="per_head",
         duplicate_k_block=(1, 2)),
    dict(name="int8_l65_relu_shared_perrow", B=1, H=2, L=65, D=64, bq=64, topk=0.5,
         quant="int8", fm="relu", rq="shared", rk="shared", alpha="per_row"),
    dict(name="fp8_l321_softmax_perhead_perrow", B=1, H=2, L=321, D=64, bq=128,
         topk=0.5, quant="int8_fp8", fm="softmax", rq="per_head", rk="per_head",
         alpha="per_row"),
    dict(name="int8_l130_softmax_perhead_head", B=1, H=2, L=130, D=64, bq=64,
         topk=0.5, quant="int8", fm="softmax", rq="per_head", rk="per_head",
         alpha="per_head"),
    dict(name="fp8_d128_l65_elu_head", B=1, H=2, L=65, D=128, bq=128, topk=0.5,
         quant="int8_fp8", fm="elu", rq="none", rk="none", alpha="per_head"),
    dict(name="none_d128_l65_relu_rq_perrow", B=1, H=2, L=65, D=128, bq=64,
         topk=0.05, quant="none", fm="relu", rq="shared", rk="none", alpha="per_row"),
    dict(name="int8_topk1_l40_head", B=1, H=2, L=40, D=64, bq=64, topk=1.0, quant="int8",
         fm="softmax", rq="none", rk="none", alpha="per_head"),
    dict(name="slav1_fp8_l130", B=1, H=2, L=130, D=64, bq=128, topk=0.2,
         quant="int8_fp8", fm="softmax", rq="none", rk="none", alpha="none",
         proj_l=True),
    dict(name="int8_b2_l66_elu_perhead", B=2, H=1, L=66, D=64, bq=64, topk=0.05,
         quant="int8", fm="elu", rq="per_head", rk="per_head", alpha="none"),
    dict(name="fp8_l70_relu_scale03_head", B=1, H=2, L=70, D=64, bq=64, topk=0.5,
         quant="int8_fp8", fm="relu", rq="per_head", rk="shared", alpha="per_head",
         softmax_scale=0.3),
    dict(name="dense_fp8_l33", B=1, H=2, L=33, D=64, bq=64, topk=1.0,
         quant="int8_fp8", fm="softmax", rq="none", rk="none", alpha="none"),
]


def _router(kind, H, D, g):
    if kind == "none":
        return None
    shape = (D, D) if kind == "shared" else (H, D, D)
    return (torch.eye(D) + torch.randn(shape, generator=g) / np.sqrt(D)).float()


def make_inputs(case, seed):
    """Random, non-zero inputs with some structure: K has a per-channel
    offset (so K smoothing matters to INT8), V's channels differ in scale (so
    FP8's per-channel sv matters), Q is sharper than unit variance."""
    g = torch.Generator().manual_seed(seed)
    B, H, L, D = case["B"], case["H"], case["L"], case["D"]
    q = 1.5 * torch.randn(B, H, L, D, generator=g)
    k = torch.randn(B, H, L, D, generator=g) + 2.0 * torch.randn(1, H, 1, D, generator=g)
    # exp in float64: float32 exp differs in the last bit between torch builds
    channel_scale = torch.exp(torch.randn(1, H, 1, D, generator=g).double()).float()
    v = torch.randn(B, H, L, D, generator=g) * channel_scale
    if "duplicate_k_block" in case:
        src, dst = case["duplicate_k_block"]
        rows = slice(src * BLOCK_K, (src + 1) * BLOCK_K)
        k[:, :, dst * BLOCK_K:(dst + 1) * BLOCK_K] = k[:, :, rows]
    params = {}
    params["router_q"] = _router(case["rq"], H, D, g)
    params["router_k"] = _router(case["rk"], H, D, g)
    if case["alpha"] == "per_head":
        params["alpha"] = torch.randn(H, generator=g).float()
    elif case["alpha"] == "per_row":
        params["alpha_w"] = (0.2 * torch.randn(H, D, generator=g)).float()
        params["alpha_b"] = torch.randn(H, generator=g).float()
    if case.get("proj_l"):
        params["proj_l_weight"] = (0.5 * torch.randn(D, D, generator=g) / np.sqrt(D)).float()
        params["proj_l_bias"] = (0.1 * torch.randn(D, generator=g)).float()
    return q.float(), k.float(), v.float(), params


def run_reference(case, q, k, v, params, dtype=torch.float64):
    p = {n: (t.to(dtype) if t is not None else None) for n, t in params.items()}
    return sla2_attention_details(
        q.to(dtype), k.to(dtype), v.to(dtype), block_q=case["bq"], block_k=BLOCK_K,
        topk=case["topk"], quant=case["quant"], feature_map=case["fm"],
        softmax_scale=case.get("softmax_scale"), **p)


def router_margin(scores, mask, tie_blocks=None):
    """Smallest score gap between a kept and a dropped block of one query
    block, relative to the row's largest |score|; the exactly equal pair of
    the tie case (decided by index, not by value) is skipped. inf when
    nothing is dropped."""
    s = scores.reshape(-1, scores.shape[-1]).tolist()
    m = mask.reshape(-1, mask.shape[-1]).tolist()
    worst = float("inf")
    for row, keep in zip(s, m):
        scale = max(abs(x) for x in row) + 1e-30
        for a, ka in enumerate(keep):
            for b, kb in enumerate(keep):
                if not ka or kb:
                    continue
                if tie_blocks and {a, b} == set(tie_blocks) and row[a] == row[b]:
                    continue
                worst = min(worst, (row[a] - row[b]) / scale)
    return worst


def tie_at_boundary(mask, scores, kept, tie_blocks):
    """How many query blocks keep exactly one of the two equal-scored blocks."""
    m = mask.reshape(-1, mask.shape[-1])
    src, dst = tie_blocks
    return int(((m[:, src] == 1) & (m[:, dst] == 0)).sum())


def build(case):
    seed = 1000 + CASES.index(case) * 100
    for attempt in range(200):
        q, k, v, params = make_inputs(case, seed + attempt)
        d = run_reference(case, q, k, v, params)
        kept = d["kept_idx"].shape[-1]
        tie = case.get("duplicate_k_block")
        margin = router_margin(d["scores"], d["mask"], tie)
        if margin < MIN_ROUTER_GAP:
            continue
        if tie and tie_at_boundary(d["mask"], d["scores"], kept, tie) == 0:
            continue
        return seed + attempt, q, k, v, params, d, margin
    raise RuntimeError(f"{case['name']}: no seed gives a clear router decision")


def serialise(case, seed, q, k, v, params, d):
    B, H, L, D = case["B"], case["H"], case["L"], case["D"]
    arrays = [("q", q), ("k", k), ("v", v)]
    for name in ("router_q", "router_k", "alpha", "alpha_w", "alpha_b",
                 "proj_l_weight", "proj_l_bias"):
        if params.get(name) is not None:
            arrays.append((name, params[name]))
    arrays.append(("out", d["out"].float()))
    mean_alpha = -1.0 if d["mean_alpha"] is None else d["mean_alpha"]
    header = {
        "name": case["name"], "B": B, "H": H, "L": L, "D": D,
        "block_q": case["bq"], "block_k": BLOCK_K, "topk": repr(float(case["topk"])),
        "quant": case["quant"], "feature_map": case["fm"],
        "softmax_scale": repr(float(case.get("softmax_scale") or 0.0)),
        "router_q": case["rq"], "router_k": case["rk"], "alpha": case["alpha"],
        "proj_l": int(bool(case.get("proj_l"))),
        "num_q_blocks": num_blocks(L, case["bq"]), "num_k_blocks": num_blocks(L, BLOCK_K),
        "kept": d["kept_idx"].shape[-1], "mean_alpha": f"{mean_alpha:.17g}",
        "seed": seed, "arrays": ",".join([n for n, _ in arrays] + ["mask"]),
    }
    line = MAGIC + " " + " ".join(f"{key}={val}" for key, val in header.items()) + "\n"
    assert len(line) < 1024
    blob = bytearray(line.encode("ascii"))
    for _, t in arrays:
        blob += t.detach().contiguous().numpy().astype("<f4").tobytes()
    blob += d["mask"].contiguous().numpy().astype(np.uint8).tobytes()
    return bytes(blob)


def rel_l2(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def load_fixture(data):
    """(header dict of strings, {array name: tensor}) from a fixture's bytes."""
    nl = data.index(b"\n")
    words = data[:nl].decode("ascii").split()
    if " ".join(words[:2]) != MAGIC:
        raise ValueError("not an operator fixture")
    hdr = dict(w.split("=", 1) for w in words[2:])
    B, H, L, D = (int(hdr[x]) for x in "BHLD")
    shapes = {"q": (B, H, L, D), "k": (B, H, L, D), "v": (B, H, L, D), "out": (B, H, L, D),
              "alpha": (H,), "alpha_w": (H, D), "alpha_b": (H,), "proj_l_weight": (D, D),
              "proj_l_bias": (D,),
              "mask": (B, H, int(hdr["num_q_blocks"]), int(hdr["num_k_blocks"]))}
    for r in ("router_q", "router_k"):
        shapes[r] = (D, D) if hdr[r] == "shared" else (H, D, D)
    off, arrays = nl + 1, {}
    for name in hdr["arrays"].split(","):
        dtype = np.uint8 if name == "mask" else np.dtype("<f4")
        n = int(np.prod(shapes[name]))
        arrays[name] = torch.from_numpy(np.frombuffer(data, dtype, n, off).reshape(shapes[name]).copy())
        off += n * np.dtype(dtype).itemsize
    if off != len(data):
        raise ValueError(f"{len(data) - off} bytes after the arrays")
    return hdr, arrays


def fixture_difference(new, old):
    """None when two fixture files agree: settings, inputs and mask exactly,
    the output to 1e-6 (the float64 oracle's last bits depend on the torch
    version's reduction order, and the output is stored in float32); else
    what differs."""
    (h1, a1), (h2, a2) = load_fixture(new), load_fixture(old)
    m1, m2 = float(h1.pop("mean_alpha")), float(h2.pop("mean_alpha"))
    if h1 != h2:
        return "settings: " + ", ".join(f"{k}={h1.get(k)} vs {h2.get(k)}"
                                        for k in sorted(set(h1) | set(h2)) if h1.get(k) != h2.get(k))
    if abs(m1 - m2) > 1e-12:
        return f"mean_alpha {m1!r} vs {m2!r}"
    for name in a1:
        if name != "out" and not torch.equal(a1[name], a2[name]):
            return f"{name} differs"
    err = rel_l2(a1["out"], a2["out"])
    return None if err < 1e-6 else f"out differs by rel L2 {err:.2e}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true",
                    help="compare with the files in --out instead of writing")
    args = ap.parse_args()
    torch.set_num_threads(1)  # reproducible reductions
    os.makedirs(args.out, exist_ok=True)
    total, stale = 0, []
    print(f"{'case':34s} {'bytes':>8s} kept/Nk  margin   f32-vs-f64  mean_alpha")
    for case in CASES:
        seed, q, k, v, params, d, margin = build(case)
        blob = serialise(case, seed, q, k, v, params, d)
        path = os.path.join(args.out, case["name"] + ".bin")
        # The same reference in float32: how far ulp-level differences move
        # the output (a near-tie in a rounding flips), the scale of what an
        # independent float32 implementation may differ by.
        d32 = run_reference(case, q, k, v, params, dtype=torch.float32)
        f32 = rel_l2(d32["out"], d["out"])
        same_mask = torch.equal(d32["mask"], d["mask"])
        nk = num_blocks(case["L"], BLOCK_K)
        print(f"{case['name']:34s} {len(blob):8d} {d['kept_idx'].shape[-1]}/{nk}"
              f"     {margin:8.2e} {f32:10.2e}{'' if same_mask else ' MASK DIFFERS'}"
              f"  {d['mean_alpha'] if d['mean_alpha'] is not None else '-'}")
        total += len(blob)
        if args.check:
            if not os.path.exists(path):
                stale.append(f"{path}: missing")
            else:
                with open(path, "rb") as f:
                    why = fixture_difference(blob, f.read())
                if why:
                    stale.append(f"{path}: {why}")
        else:
            with open(path, "wb") as f:
                f.write(blob)
    print(f"{len(CASES)} cases, {total} bytes")
    if stale:
        print("stale:", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
