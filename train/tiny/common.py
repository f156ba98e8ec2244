"""Shared pieces of the tiny model's training, sampling and export: the
config, the model with its SLA2 parameters attached, a batched forward (same
math as train/wan/model.py's one-sample WanModel.forward, which the SDK's C
runtime matches), checkpoints in <= 16 MB parts."""
import glob
import io
import math
import os
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from train.wan.model import WanModel, sinusoidal_embedding_1d
from train.tiny.attention import TinySLA2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "models", "tiny-demo.yaml")


def _scalar(s):
    s = s.strip()
    if s.startswith("[") and s.endswith("]"):
        return [_scalar(x) for x in s[1:-1].split(",") if x.strip()]
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(s, s)


def load_config(path=CONFIG):
    """The model YAML (PyYAML when present, else a parser for this file's
    subset: scalars, one level of mappings, lists of scalars)."""
    try:
        import yaml
        if not os.environ.get("TINY_NO_YAML"):
            with open(path) as f:
                return yaml.safe_load(f)
    except ImportError:
        pass
    root, key = {}, None
    for raw in open(path):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        if text.startswith("- "):
            if root[key] is None:
                root[key] = []
            root[key].append(_scalar(text[2:]))
            continue
        k, _, v = text.partition(":")
        if indent == 0:
            if v.strip():
                root[k] = _scalar(v)
                key = None
            else:
                key = k
                root[k] = None
        else:
            if root[key] is None:
                root[key] = {}
            root[key][k] = _scalar(v)
    return root


def build_model(cfg):
    model = WanModel(cfg["dim"], cfg["ffn_dim"], cfg["freq_dim"], cfg["text_dim"], cfg["text_len"],
                     cfg["num_heads"], cfg["num_layers"], cfg["in_channels"], cfg["out_channels"],
                     cfg["patch_size"], cfg["eps"], cfg["qk_norm"], cfg["cross_attn_norm"],
                     vocabulary_size=len(cfg["vocabulary"]))
    heads, head_dim = cfg["num_heads"], cfg["dim"] // cfg["num_heads"]
    for b in model.blocks:
        b.self_attn.sla2 = TinySLA2(heads, head_dim)
    return model


def init_weights(model):
    """Wan's init_weights: xavier linears with zero bias, normal(0.02) text
    and time embeddings, zero head; the vocabulary normal(1)."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    nn.init.xavier_uniform_(model.patch_embedding.weight.flatten(1))
    for m in list(model.text_embedding.modules()) + list(model.time_embedding.modules()):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
    nn.init.zeros_(model.head.head.weight)
    nn.init.normal_(model.vocab_embedding.weight, std=1.0)


def set_attention(model, mode, quant="none", topk=0.1, tau=0.1):
    for b in model.blocks:
        a = b.self_attn.sla2
        a.mode, a.quant, a.topk, a.tau = mode, quant, topk, tau


class Rope:
    """Wan's 3-D RoPE for one grid as complex64 [L, D/2] (the float64 angles
    of train/wan/model.py rounded once to float32)."""

    def __init__(self, model, grid, device):
        d = model.dim // model.blocks[0].self_attn.heads
        c = d // 2
        freqs = model.freqs.split([c - 2 * (c // 3), c // 3, c // 3], dim=1)
        f, h, w = grid
        fr = torch.cat([
            freqs[0][:f].view(f, 1, 1, -1).expand(f, h, w, -1),
            freqs[1][:h].view(1, h, 1, -1).expand(f, h, w, -1),
            freqs[2][:w].view(1, 1, w, -1).expand(f, h, w, -1)], dim=-1).reshape(f * h * w, -1)
        self.freqs = fr.to(torch.complex64).to(device)

    def __call__(self, x):
        """x [B, L, H, D] -> same, float32."""
        B, L, H, D = x.shape
        xc = torch.view_as_complex(x.float().reshape(B, L, H, D // 2, 2))
        return torch.view_as_real(xc * self.freqs[None, :, None, :]).flatten(3)


_ROPE = {}


def forward_batch(model, x, t, context, aux=None):
    """x [B, C, F, H, W], t [B] timesteps (1000 sigma), context [B, text_len,
    text_dim] -> velocity [B, C, F, H, W]. Time embedding and modulation in
    float32 (autocast off), like Wan. aux: a list that receives, per layer,
    the relative error of SLA2's output against dense attention (stage 1)."""
    B = x.shape[0]
    x = model.patch_embedding(x)
    grid = tuple(x.shape[2:])
    key = (grid, x.device)
    if key not in _ROPE:
        _ROPE[key] = Rope(model, grid, x.device)
    rope = _ROPE[key]
    x = x.flatten(2).transpose(1, 2)  # [B, L, dim]
    with torch.autocast(device_type=x.device.type, enabled=False):
        e = model.time_embedding(sinusoidal_embedding_1d(model.freq_dim, t).float())  # [B, dim]
        e0 = model.time_projection(e).unflatten(1, (6, model.dim))                    # [B, 6, dim]
    ctx = model.text_embedding(context)
    for blk in model.blocks:
        x = _block(blk, x, e0, rope, ctx, aux)
    with torch.autocast(device_type=x.device.type, enabled=False):
        m = (model.head.modulation + e[:, None]).chunk(2, dim=1)
        h = model.head.norm(x.float()) * (1 + m[1]) + m[0]
    out = model.head.head(h)
    f, hh, ww = grid
    p1, p2, p3 = model.patch_size
    c = model.out_channels
    u = out.float().view(B, f, hh, ww, p1, p2, p3, c)
    u = torch.einsum("bfhwpqrc->bcfphqwr", u)
    return u.reshape(B, c, f * p1, hh * p2, ww * p3)


def _self_attn(sa, x, rope, aux):
    B, L, _ = x.shape
    H, D = sa.heads, sa.head_dim
    q = sa.norm_q(sa.q(x).float()).view(B, L, H, D)
    k = sa.norm_k(sa.k(x).float()).view(B, L, H, D)
    v = sa.v(x).view(B, L, H, D)
    q, k = rope(q).transpose(1, 2), rope(k).transpose(1, 2)
    v = v.transpose(1, 2)
    if sa.sla2.mode == "dense":
        low = v.dtype
        o = sa.sla2(q.to(low), k.to(low), v)
    else:
        o = sa.sla2(q, k, v.float())
        if aux is not None:
            with torch.no_grad():
                ref = F.scaled_dot_product_attention(q.to(v.dtype), k.to(v.dtype), v) \
                    if hasattr(F, "scaled_dot_product_attention") else \
                    torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D), -1) @ v.float()
                ref = ref.float()
            aux.append((o.float() - ref).pow(2).mean() / ref.pow(2).mean())
    o = o.transpose(1, 2).reshape(B, L, H * D)
    return sa.o(o.to(x.dtype) if x.dtype != torch.float32 else o)


def _cross_attn(ca, x, ctx):
    B, L, _ = x.shape
    Lc = ctx.shape[1]
    H, D = ca.heads, ca.head_dim
    q = ca.norm_q(ca.q(x).float()).view(B, L, H, D).transpose(1, 2)
    k = ca.norm_k(ca.k(ctx).float()).view(B, Lc, H, D).transpose(1, 2)
    v = ca.v(ctx).float().view(B, Lc, H, D).transpose(1, 2)
    p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D), dim=-1)
    return ca.o((p @ v).transpose(1, 2).reshape(B, L, H * D))


def _block(blk, x, e0, rope, ctx, aux):
    with torch.autocast(device_type=x.device.type, enabled=False):
        e = (blk.modulation + e0).chunk(6, dim=1)  # each [B, 1, dim], float32
        h = blk.norm1(x.float()) * (1 + e[1]) + e[0]
    y = _self_attn(blk.self_attn, h, rope, aux)
    x = x.float() + y.float() * e[2]
    x = x + _cross_attn(blk.cross_attn, blk.norm3(x), ctx).float()
    with torch.autocast(device_type=x.device.type, enabled=False):
        h = blk.norm2(x) * (1 + e[4]) + e[3]
    y = blk.ffn(h)
    return x + y.float() * e[5]


# ---------------------------------------------------------------- checkpoints
PART_BYTES = 15 * 1024 * 1024


def save_parts(obj, prefix):
    """torch.save(obj) split into <= 15 MB files prefix.part0, part1, ...
    (the device returns files of at most 16 MB)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    for old in glob.glob(prefix + ".part*"):
        os.remove(old)
    for i in range(0, len(data), PART_BYTES):
        with open(f"{prefix}.part{i // PART_BYTES}", "wb") as f:
            f.write(data[i:i + PART_BYTES])


def load_parts(prefix, map_location="cpu"):
    parts = sorted(glob.glob(prefix + ".part*"), key=lambda p: int(re.sub(r".*\.part", "", p)))
    if not parts:
        return None
    data = b"".join(open(p, "rb").read() for p in parts)
    return torch.load(io.BytesIO(data), map_location=map_location)
