"""A compact, faithful PyTorch reimplementation of Wan2.1's DiT
(wan/modules/model.py: WanModel for t2v) for one sample, used as the
reference the SDK's C runtime is checked against and as the tiny demo
model's training architecture. Parameter names are Wan's, so state dicts
load unchanged. Attention is pluggable: dense (scaled dot product) by
default, or any callable (q, k, v) on [B, H, L, D] such as train/sla2's."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def sinusoidal_embedding_1d(dim, position):
    half = dim // 2
    position = position.type(torch.float64)
    sinusoid = torch.outer(position, torch.pow(10000, -torch.arange(half).to(position).div(half)))
    return torch.cat([torch.cos(sinusoid), torch.sin(sinusoid)], dim=1)


def rope_params(max_seq_len, dim, theta=10000):
    freqs = torch.outer(torch.arange(max_seq_len),
                        1.0 / torch.pow(theta, torch.arange(0, dim, 2).to(torch.float64).div(dim)))
    return torch.polar(torch.ones_like(freqs), freqs)


def rope_apply(x, grid, freqs):
    """x [L, n, d] of one sample, tokens ordered (f, h, w)."""
    L, n, d = x.shape
    c = d // 2
    freqs = freqs.split([c - 2 * (c // 3), c // 3, c // 3], dim=1)
    f, h, w = grid
    xc = torch.view_as_complex(x.to(torch.float64).reshape(L, n, -1, 2))
    freqs_i = torch.cat([
        freqs[0][:f].view(f, 1, 1, -1).expand(f, h, w, -1),
        freqs[1][:h].view(1, h, 1, -1).expand(f, h, w, -1),
        freqs[2][:w].view(1, 1, w, -1).expand(f, h, w, -1),
    ], dim=-1).reshape(L, 1, -1)
    return torch.view_as_real(xc * freqs_i).flatten(2).to(x.dtype)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


def dense_attention(q, k, v):
    """[B, H, L, D] softmax attention."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    p = torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1)
    return p @ v


class SelfAttention(nn.Module):
    def __init__(self, dim, heads, eps, qk_norm=True):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q = RMSNorm(dim, eps) if qk_norm else nn.Identity()
        self.norm_k = RMSNorm(dim, eps) if qk_norm else nn.Identity()

    def forward(self, x, grid, freqs, attention):
        L = x.shape[0]
        q = self.norm_q(self.q(x)).view(L, self.heads, self.head_dim)
        k = self.norm_k(self.k(x)).view(L, self.heads, self.head_dim)
        v = self.v(x).view(L, self.heads, self.head_dim)
        q, k = rope_apply(q, grid, freqs), rope_apply(k, grid, freqs)
        o = attention(q.transpose(0, 1)[None], k.transpose(0, 1)[None], v.transpose(0, 1)[None])
        return self.o(o[0].transpose(0, 1).reshape(L, -1))


class CrossAttention(SelfAttention):
    def forward(self, x, context):
        L, Lc = x.shape[0], context.shape[0]
        q = self.norm_q(self.q(x)).view(L, self.heads, self.head_dim).transpose(0, 1)
        k = self.norm_k(self.k(context)).view(Lc, self.heads, self.head_dim).transpose(0, 1)
        v = self.v(context).view(Lc, self.heads, self.head_dim).transpose(0, 1)
        return self.o(dense_attention(q, k, v).transpose(0, 1).reshape(L, -1))


class Block(nn.Module):
    def __init__(self, dim, ffn_dim, heads, eps, qk_norm=True, cross_attn_norm=True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps, elementwise_affine=False)
        self.self_attn = SelfAttention(dim, heads, eps, qk_norm)
        self.norm3 = nn.LayerNorm(dim, eps, elementwise_affine=True) if cross_attn_norm else nn.Identity()
        self.cross_attn = CrossAttention(dim, heads, eps, qk_norm)
        self.norm2 = nn.LayerNorm(dim, eps, elementwise_affine=False)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(approximate='tanh'), nn.Linear(ffn_dim, dim))
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim ** 0.5)

    def forward(self, x, e0, grid, freqs, context, attention):
        e = (self.modulation[0] + e0).chunk(6, dim=0)
        y = self.self_attn(self.norm1(x) * (1 + e[1]) + e[0], grid, freqs, attention)
        x = x + y * e[2]
        x = x + self.cross_attn(self.norm3(x), context)
        y = self.ffn(self.norm2(x) * (1 + e[4]) + e[3])
        return x + y * e[5]


class Head(nn.Module):
    def __init__(self, dim, out_dim, patch_size, eps):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps, elementwise_affine=False)
        self.head = nn.Linear(dim, out_dim * math.prod(patch_size))
        self.modulation = nn.Parameter(torch.randn(1, 2, dim) / dim ** 0.5)

    def forward(self, x, e):
        m = (self.modulation[0] + e).chunk(2, dim=0)
        return self.head(self.norm(x) * (1 + m[1]) + m[0])


class WanModel(nn.Module):
    def __init__(self, dim, ffn_dim, freq_dim, text_dim, text_len, num_heads, num_layers, in_channels,
                 out_channels, patch_size, eps=1e-6, qk_norm=True, cross_attn_norm=True, vocabulary_size=0):
        super().__init__()
        self.dim, self.freq_dim, self.text_len = dim, freq_dim, text_len
        self.in_channels, self.out_channels, self.patch_size = in_channels, out_channels, tuple(patch_size)
        self.patch_embedding = nn.Conv3d(in_channels, dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.text_embedding = nn.Sequential(nn.Linear(text_dim, dim), nn.GELU(approximate='tanh'), nn.Linear(dim, dim))
        self.time_embedding = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim * 6))
        self.blocks = nn.ModuleList(Block(dim, ffn_dim, num_heads, eps, qk_norm, cross_attn_norm)
                                    for _ in range(num_layers))
        self.head = Head(dim, out_channels, patch_size, eps)
        if vocabulary_size:
            self.vocab_embedding = nn.Embedding(vocabulary_size, text_dim)
        d = dim // num_heads
        self.freqs = torch.cat([rope_params(1024, d - 4 * (d // 6)), rope_params(1024, 2 * (d // 6)),
                                rope_params(1024, 2 * (d // 6))], dim=1)

    def embed_text(self, token_ids):
        """The tiny model's built-in text encoder: one row per word, zero padding."""
        ctx = torch.zeros(self.text_len, self.vocab_embedding.weight.shape[1])
        ctx[:len(token_ids)] = self.vocab_embedding.weight[torch.tensor(token_ids, dtype=torch.long)]
        return ctx

    def forward(self, x, t, context, attention=dense_attention):
        """x [C, F, H, W], t a float timestep, context [Lc <= text_len, text_dim] -> [C, F, H, W]."""
        x = self.patch_embedding(x[None])[0]
        grid = tuple(x.shape[1:])
        x = x.flatten(1).transpose(0, 1)
        dtype = self.patch_embedding.weight.dtype
        e = self.time_embedding(sinusoidal_embedding_1d(self.freq_dim, torch.tensor([float(t)])).to(dtype))[0]
        e0 = self.time_projection(e).unflatten(0, (6, self.dim))
        context = torch.cat([context, context.new_zeros(self.text_len - context.shape[0], context.shape[1])])
        context = self.text_embedding(context)
        for block in self.blocks:
            x = block(x, e0, grid, self.freqs, context, attention)
        x = self.head(x, e)
        return self.unpatchify(x, grid)

    def unpatchify(self, x, grid):
        c = self.out_channels
        u = x.view(*grid, *self.patch_size, c)
        u = torch.einsum('fhwpqrc->cfphqwr', u)
        return u.reshape(c, *[g * p for g, p in zip(grid, self.patch_size)])
