#!/usr/bin/env python3
"""Random-problem parity of the SDK's CPU operator (libsla2.so, through
ctypes and the public API) with the PyTorch reference, beyond the committed
fixtures: random B, H, L, D, blocks, topk, quant, feature map, routers,
alpha, SLA v1, softmax scale, input dtype (F32/F16/BF16) and layout
([B,H,L,D] / [B,L,H,D]), on the reference and the fast path. It applies
tests/test_torch_parity.c's acceptance rule and prints the worst errors seen;
the tolerances stated there come from runs of this script.

    cmake -S . -B build && cmake --build build --target sla2
    /usr/bin/python3 train/sdk_parity_sweep.py --lib build/sdk/libsla2.so --seed 0 --count 300
"""
import argparse
import ctypes as C
import os
import random
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_operator_fixtures as fixtures  # noqa: E402
from sla2 import num_blocks  # noqa: E402

QUANT = {"none": 0, "int8": 1, "int8_fp8": 2}
FEATURE = {"softmax": 0, "elu": 1, "relu": 2}
PARAMS = ("router_q", "router_k", "alpha", "alpha_w", "alpha_b", "proj_l_weight", "proj_l_bias")
TOTAL = {"none": 1e-5, "int8": 1e-3, "int8_fp8": 1e-3}
TRIMMED = {"none": 1e-5, "int8": 5e-5, "int8_fp8": 5e-5}


class Options(C.Structure):
    _fields_ = [("size", C.c_size_t), ("backend", C.c_int), ("device", C.c_int),
                ("num_threads", C.c_int), ("cpu_reference", C.c_int)]


class Tensor(C.Structure):
    _fields_ = [("data", C.c_void_p), ("dtype", C.c_int), ("ndim", C.c_int),
                ("shape", C.c_int64 * 4), ("stride", C.c_int64 * 4)]


class Config(C.Structure):
    _fields_ = [("size", C.c_size_t), ("block_q", C.c_int), ("block_k", C.c_int),
                ("topk", C.c_float), ("quant", C.c_int), ("feature_map", C.c_int),
                ("softmax_scale", C.c_float)]


class Params(C.Structure):
    _fields_ = [(n, C.POINTER(Tensor)) for n in PARAMS]


class Stats(C.Structure):
    _fields_ = [("size", C.c_size_t), ("num_q_blocks", C.c_int64), ("num_k_blocks", C.c_int64),
                ("kept_per_q_block", C.c_int64), ("kept_blocks_total", C.c_int64),
                ("mean_alpha", C.c_double), ("quant_used", C.c_int), ("kept_blocks", C.c_void_p),
                ("block_mask", C.c_void_p), ("block_mask_elems", C.c_size_t)]


def load_library(path):
    lib = C.CDLL(path)
    for name in ("sla2_tensor_bhld", "sla2_tensor_blhd"):
        getattr(lib, name).restype = Tensor
        getattr(lib, name).argtypes = [C.c_void_p, C.c_int] + [C.c_int64] * 4
    lib.sla2_tensor_contiguous.restype = Tensor
    lib.sla2_tensor_contiguous.argtypes = [C.c_void_p, C.c_int, C.c_int, C.POINTER(C.c_int64)]
    lib.sla2_context_last_error.restype = C.c_char_p
    return lib


def sdk_forward(lib, case, q, k, v, params, reference, dtype, layout):
    """Runs the SDK; returns (out float32 [B,H,L,D], mask, mean_alpha)."""
    B, H, L, D = q.shape
    keep = []  # buffers that must outlive the call

    def buffer(t):
        if layout == "blhd":
            t = t.transpose(1, 2)
        t = t.contiguous()
        t = {0: t, 1: t.half().view(torch.int16), 2: t.bfloat16().view(torch.int16)}[dtype]
        a = t.numpy().copy()
        keep.append(a)
        return a.ctypes.data

    make = lib.sla2_tensor_blhd if layout == "blhd" else lib.sla2_tensor_bhld
    tq, tk, tv = (make(buffer(t), dtype, B, H, L, D) for t in (q, k, v))
    out = np.full((B, H, L, D), np.nan, np.float32)
    to = lib.sla2_tensor_bhld(out.ctypes.data, 0, B, H, L, D)

    opts = Options()
    lib.sla2_context_options_default(C.byref(opts))
    opts.backend, opts.cpu_reference = 1, reference
    ctx, err = C.c_void_p(), C.create_string_buffer(256)
    if lib.sla2_context_create(C.byref(opts), C.byref(ctx), err, 256) != 0:
        raise RuntimeError(err.value.decode())
    cfg = Config()
    lib.sla2_attention_config_default(C.byref(cfg))
    cfg.block_q, cfg.block_k, cfg.topk = case["bq"], fixtures.BLOCK_K, case["topk"]
    cfg.quant, cfg.feature_map = QUANT[case["quant"]], FEATURE[case["fm"]]
    cfg.softmax_scale = case.get("softmax_scale") or 0.0
    p = Params()
    for name in PARAMS:
        if params.get(name) is not None:
            a = np.ascontiguousarray(params[name].numpy(), np.float32)
            shape = (C.c_int64 * 4)(*a.shape)
            t = lib.sla2_tensor_contiguous(a.ctypes.data, 0, a.ndim, shape)
            keep.append((a, t))
            setattr(p, name, C.pointer(t))
    nq, nk = num_blocks(L, case["bq"]), num_blocks(L, fixtures.BLOCK_K)
    mask = np.full(B * H * nq * nk, 0xAA, np.uint8)
    st = Stats()
    lib.sla2_attention_stats_default(C.byref(st))
    st.block_mask, st.block_mask_elems = mask.ctypes.data, mask.size
    status = lib.sla2_attention_forward(ctx, C.byref(cfg), C.byref(p), C.byref(tq), C.byref(tk),
                                        C.byref(tv), C.byref(to), C.byref(st))
    message = lib.sla2_context_last_error(ctx).decode()
    lib.sla2_context_free(ctx)
    if status != 0:
        raise RuntimeError(f"sla2_attention_forward: {status}: {message}")
    return torch.from_numpy(out), torch.from_numpy(mask.reshape(B, H, nq, nk)), st.mean_alpha


def trimmed_rel_l2(x, ref):
    err = (x.double() - ref.double()).square().sum(-1).flatten()
    den = ref.double().square().sum(-1).flatten()
    drop = max(1, err.numel() // 100)
    if err.numel() <= drop:
        return 0.0
    keep = torch.argsort(err)[: err.numel() - drop]
    return (err[keep].sum() / den[keep].sum()).sqrt().item()


def random_case(rng, index):
    c = dict(name=f"sweep{index}", B=rng.choice([1, 2]), H=rng.choice([1, 2, 3]),
             L=rng.choice([1, 2, 31, 63, 64, 65, 127, 128, 129, 200, 257, 333, 400]),
             D=rng.choice([64, 128]), bq=rng.choice([64, 128]),
             topk=rng.choice([0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0]),
             quant=rng.choice(list(QUANT)), fm=rng.choice(list(FEATURE)),
             rq=rng.choice(["none", "shared", "per_head"]), rk=rng.choice(["none", "shared", "per_head"]),
             alpha=rng.choice(["none", "per_head", "per_row"]))
    if rng.random() < 0.15:
        c["proj_l"], c["alpha"] = True, "none"
    if rng.random() < 0.2:
        c["softmax_scale"] = rng.choice([0.05, 0.3, 1.0])
    return c, rng.choice([0, 0, 1, 2]), rng.choice(["bhld", "blhd"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", default=os.path.join(fixtures.REPO, "build", "sdk", "libsla2.so"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=100)
    args = ap.parse_args()
    lib = load_library(args.lib)
    rng = random.Random(args.seed)
    worst, worst_trimmed, failures = {}, {}, 0
    for i in range(args.count):
        case, dtype, layout = random_case(rng, i)
        q, k, v, params = fixtures.make_inputs(case, 100000 * args.seed + i)
        if dtype:  # the oracle sees the values the SDK is given
            half = torch.float16 if dtype == 1 else torch.bfloat16
            q, k, v = (t.to(half).float() for t in (q, k, v))
        d = fixtures.run_reference(case, q, k, v, params)
        for reference in (1, 0):
            out, mask, mean_alpha = sdk_forward(lib, case, q, k, v, params, reference, dtype, layout)
            err = fixtures.rel_l2(out, d["out"])
            trimmed = trimmed_rel_l2(out, d["out"])
            key = (case["quant"], "reference" if reference else "fast")
            worst[key] = max(worst.get(key, 0.0), err)
            worst_trimmed[key] = max(worst_trimmed.get(key, 0.0), trimmed)
            problems = []
            if not torch.equal(mask, d["mask"]):
                margin = fixtures.router_margin(d["scores"], d["mask"])
                problems.append(f"mask differs (router margin {margin:.1e})")
            if not torch.isfinite(out).all():
                problems.append("non-finite output")
            if err >= TOTAL[case["quant"]] or trimmed >= TRIMMED[case["quant"]]:
                problems.append(f"rel L2 {err:.2e}, trimmed {trimmed:.2e}")
            if d["mean_alpha"] is not None and abs(mean_alpha - d["mean_alpha"]) > 1e-6:
                problems.append(f"mean alpha {mean_alpha} vs {d['mean_alpha']}")
            if problems:
                failures += 1
                settings = {n: x for n, x in case.items() if n != "name"}
                print(f"MISMATCH {key[1]} {settings} dtype={dtype} layout={layout}: {'; '.join(problems)}")
    for key in sorted(worst):
        print(f"{key[0]:8s} {key[1]:9s} worst rel L2 {worst[key]:.2e}, worst trimmed {worst_trimmed[key]:.2e}")
    print(f"{args.count} problems x 2 paths, {failures} outside the acceptance rule")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
