"""The SLA2 attention operator in PyTorch: an independent implementation of
ARCHITECTURE.md section 2, the oracle the SDK's C code is tested against
(tests/test_torch_parity.c) and the attention layer QAT fine-tuning trains.

Shapes are [B, H, L, D]. Blocks: block_q query rows and block_k key rows;
Nq = ceil(L / block_q), Nk = ceil(L / block_k); a partial last block counts
only its actual rows (means, maxima and sums never see padding).

Choices the architecture leaves open, fixed here and in the SDK alike:
  * Router: qbar_i = mean of the rows of query block i (raw Q);
    K~ = K - mean over all L tokens (per b, h, channel); kbar_j = mean of the
    K~ rows of block j; (x W)_e = sum_d x_d W[d, e] with W [D, D] shared or
    [H, D, D] per head (None = identity); s_ij = (qbar_i Wq).(kbar_j Wk)/sqrt(D);
    keep k = max(1, min(Nk, floor(topk * Nk + 0.5))) largest per query block,
    ties to the lower block index.
  * Sparse branch: online softmax over the kept blocks in ascending block
    order (this matters in the quantised modes, where P is rounded after
    subtracting the running maximum). Quantised modes quantise Q per query
    block and K~ (float32 K minus its mean rounded to float32) per key block
    to INT8 (scale max|x|/127, RNE, saturating)
    and compute scores = (q8 . k8) * scale_q * scale_k * softmax_scale. Per
    kept block: m_new = max(m_old, rowmax), p = exp(s - m_new),
    l = l * exp(m_old - m_new) + sum(p) (p unrounded),
    acc = acc * exp(m_old - m_new) + C, where
      int8:     C = sum_c f16(p_c) * f16(v_cd)
      int8_fp8: C_d = (sum_c e4m3(p_c * 448) * e4m3(v_cd / sv_d)) * sv_d / 448,
                sv_d = max over all L tokens |V[:, d]| / 448 per (b, h, d)
                (a channel with sv_d = 0 contributes 0).
    O_s = acc / l. Mode none computes in the inputs' dtype (float64 for the
    oracle's fixtures) on raw K.
  * Linear branch over the complement of the mask, on raw (never quantised)
    q and K: O_l[r] = phi(q_r) . sum_{j not in M_i} S_j /
    (phi(q_r) . sum_{j not in M_i} z_j + 1e-6), S_j = phi(K_j)^T V_j,
    z_j = sum over the rows of phi(K_j); 0 when the complement is empty.
  * Mix: alpha = sigmoid(alpha[h]) per head, or sigmoid(q_r . alpha_w[h] +
    alpha_b[h]) per row (raw q), or 1; O = alpha O_s + (1 - alpha) O_l.
  * SLA v1 (proj_l_weight given): linear branch over all keys,
    O = O_s + (O_l W^T + b); no alpha.

Rounding happens on float32 values (see quant.py); every other step runs in
the dtype of q (float32 for float16/bfloat16 inputs; the output comes back
in q's dtype).
"""
import math

import torch
import torch.nn.functional as F

from .quant import (FP8_MAX, int8_codes_ste, int8_scale, round_e4m3_ste,
                    round_f16_ste)

QUANT_MODES = ("none", "int8", "int8_fp8")
FEATURE_MAPS = ("softmax", "elu", "relu")
LINEAR_EPS = 1e-6


def num_blocks(length: int, block: int) -> int:
    return -(-length // block)


def kept_blocks(length: int, block_k: int, topk: float) -> int:
    """max(1, min(Nk, floor(topk * Nk + 0.5))); topk is taken as the float32
    the SDK's config holds."""
    nk = num_blocks(length, block_k)
    topk32 = torch.tensor(topk, dtype=torch.float32).item()
    return max(1, min(nk, int(math.floor(topk32 * nk + 0.5))))


def _pad_rows(x: torch.Tensor, rows: int) -> torch.Tensor:
    """Zero rows appended along dim -2 up to rows."""
    extra = rows - x.shape[-2]
    return F.pad(x, (0, 0, 0, extra)) if extra > 0 else x


def _as_blocks(x: torch.Tensor, block: int) -> torch.Tensor:
    """[B, H, L, D] -> [B, H, N, block, D], zero-padded."""
    B, H, L, D = x.shape
    n = num_blocks(L, block)
    return _pad_rows(x, n * block).reshape(B, H, n, block, D)


def _row_counts(length: int, block: int, device) -> torch.Tensor:
    n = num_blocks(length, block)
    starts = torch.arange(n, device=device) * block
    return torch.clamp(length - starts, max=block)


def block_means(x: torch.Tensor, block: int) -> torch.Tensor:
    """Mean of the actual rows of each block: [B, H, L, D] -> [B, H, N, D]."""
    counts = _row_counts(x.shape[2], block, x.device).to(x.dtype)
    return _as_blocks(x, block).sum(dim=3) / counts[:, None]


def smooth_k(k: torch.Tensor) -> torch.Tensor:
    """K~ = K - mean over the tokens (per b, h, channel), in k's dtype (the
    router's pooling)."""
    return k - k.mean(dim=2, keepdim=True)


def smooth_k_for_int8(k: torch.Tensor) -> torch.Tensor:
    """K~ as the quantiser sees it: the mean (taken in k's dtype) rounded to
    float32, then a float32 subtraction, as a float32 implementation computes
    it. K~ feeds a rounding, so where its last bit comes from decides INT8
    near-ties: K - mean rounded once from float64 differs from this in the
    last bit of about half the elements, which flips about one INT8 code in
    10^6 (each flip moves a whole row's scores for one key)."""
    mean32 = k.mean(dim=2, keepdim=True).float()
    return (k.float() - mean32).to(k.dtype)


def _project(x: torch.Tensor, w) -> torch.Tensor:
    """(x W)_e = sum_d x_d W[d, e]; W None, [D, D] or [H, D, D]."""
    if w is None:
        return x
    w = w.to(x.dtype)
    if w.dim() == 2:
        return torch.matmul(x, w)
    return torch.einsum("bhnd,hde->bhne", x, w)


def router_scores(q, k, block_q, block_k, router_q=None, router_k=None):
    """s_ij = (qbar_i Wq).(kbar_j Wk) / sqrt(D): [B, H, Nq, Nk]."""
    qbar = _project(block_means(q, block_q), router_q)
    kbar = _project(block_means(smooth_k(k), block_k), router_k)
    return torch.matmul(qbar, kbar.transpose(-1, -2)) / math.sqrt(q.shape[-1])


def topk_blocks(scores: torch.Tensor, kept: int):
    """The kept key blocks of each query block, in ascending order
    ([B, H, Nq, kept], int64), and the mask ([B, H, Nq, Nk], uint8). The
    largest scores win; among equal scores the lower index (stable sort)."""
    order = torch.sort(-scores, dim=-1, stable=True).indices[..., :kept]
    idx = torch.sort(order, dim=-1).values
    mask = torch.zeros(scores.shape, dtype=torch.uint8, device=scores.device)
    mask.scatter_(-1, idx, 1)
    return idx, mask


def _gather_blocks(xb: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """xb [B, H, Nk, bk, D], j [B, H, Nq] -> [B, H, Nq, bk, D]."""
    B, H, _, bk, D = xb.shape
    index = j[:, :, :, None, None].expand(B, H, j.shape[2], bk, D)
    return torch.gather(xb, 2, index)


def sparse_branch(q, k, v, idx, block_q, block_k, softmax_scale, quant):
    """Softmax attention of each query block over its kept key blocks idx
    ([B, H, Nq, kept], ascending), by online softmax, with the rounding of
    quant. Returns O_s [B, H, L, D]."""
    B, H, L, D = q.shape
    dtype = q.dtype
    nq, nk = num_blocks(L, block_q), num_blocks(L, block_k)
    q_blocks = _as_blocks(q, block_q)                      # [B,H,Nq,bq,D]
    key_valid = (torch.arange(nk * block_k, device=q.device) < L).reshape(nk, block_k)

    if quant == "none":
        k_blocks = _as_blocks(k, block_k)
    else:
        # Smoothing is exact for softmax but shrinks K's INT8 range. Padding is
        # added after smoothing so that padded rows stay 0 (not -mean).
        k_blocks = _as_blocks(smooth_k_for_int8(k), block_k)
        scale_q = int8_scale(q_blocks, dims=(-2, -1))      # [B,H,Nq,1,1]
        scale_k = int8_scale(k_blocks, dims=(-2, -1))      # [B,H,Nk,1,1]
        q_codes = int8_codes_ste(q_blocks, scale_q)
        k_codes = int8_codes_ste(k_blocks, scale_k)

    if quant == "int8_fp8":
        # sv_d = max|V[:, d]| / 448 in float32; V8 = e4m3(v / sv).
        sv = (v.float().abs().amax(dim=2, keepdim=True) / FP8_MAX)   # [B,H,1,D]
        sv_safe = torch.where(sv > 0, sv, torch.ones_like(sv))
        v8 = round_e4m3_ste(v.float() / sv_safe)
        v8 = torch.where(sv > 0, v8, torch.zeros_like(v8)).to(dtype)
        v_blocks = _as_blocks(v8, block_k)
        sv_over_max = (sv.to(dtype) / FP8_MAX)[:, :, None]            # [B,H,1,1,D]
    elif quant == "int8":
        v_blocks = _as_blocks(round_f16_ste(v), block_k)
    else:
        v_blocks = _as_blocks(v, block_k)

    m = torch.full((B, H, nq, block_q, 1), float("-inf"), dtype=dtype, device=q.device)
    l = torch.zeros((B, H, nq, block_q, 1), dtype=dtype, device=q.device)
    acc = torch.zeros((B, H, nq, block_q, D), dtype=dtype, device=q.device)
    for t in range(idx.shape[-1]):
        j = idx[..., t]                                    # [B,H,Nq]
        v_j = _gather_blocks(v_blocks, j)
        if quant == "none":
            s = torch.matmul(q_blocks, _gather_blocks(k_blocks, j).transpose(-1, -2)) * softmax_scale
        else:
            dot = torch.matmul(q_codes, _gather_blocks(k_codes, j).transpose(-1, -2))
            scale_kj = torch.gather(scale_k[..., 0, 0], 2, j)[..., None, None]
            s = dot * (scale_q * scale_kj * softmax_scale)
        s = s.masked_fill(~key_valid[j][:, :, :, None, :], float("-inf"))
        m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
        correction = torch.exp(m - m_new)
        p = torch.exp(s - m_new)
        l = l * correction + p.sum(dim=-1, keepdim=True)
        if quant == "int8_fp8":
            p8 = round_e4m3_ste(p.float() * FP8_MAX).to(dtype)
            contribution = torch.matmul(p8, v_j) * sv_over_max
        elif quant == "int8":
            contribution = torch.matmul(round_f16_ste(p), v_j)
        else:
            contribution = torch.matmul(p, v_j)
        acc = acc * correction + contribution
        m = m_new
    out = (acc / l).reshape(B, H, nq * block_q, D)
    return out[:, :, :L]


def feature_map(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "softmax":
        return torch.softmax(x, dim=-1)
    if kind == "elu":
        return F.elu(x) + 1.0
    if kind == "relu":
        return F.relu(x)
    raise ValueError(f"feature_map must be one of {FEATURE_MAPS}, got {kind!r}")


def linear_branch(q, k, v, include, block_q, block_k, kind):
    """Linear attention of each query block over the key blocks where include
    ([B, H, Nq, Nk], 1/0) is 1. Returns O_l [B, H, L, D]."""
    B, H, L, D = q.shape
    nq = num_blocks(L, block_q)
    phi_k = _as_blocks(feature_map(k, kind), block_k)      # padding rows are 0
    v_blocks = _as_blocks(v, block_k)
    s_blocks = torch.einsum("bhnrd,bhnre->bhnde", phi_k, v_blocks)   # S_j
    z_blocks = phi_k.sum(dim=3)                                      # z_j
    include = include.to(q.dtype)
    s_sum = torch.einsum("bhij,bhjde->bhide", include, s_blocks)
    z_sum = torch.einsum("bhij,bhjd->bhid", include, z_blocks)
    phi_q = _as_blocks(feature_map(q, kind), block_q)      # [B,H,Nq,bq,D]
    numerator = torch.matmul(phi_q, s_sum)
    denominator = (phi_q * z_sum[:, :, :, None, :]).sum(dim=-1, keepdim=True) + LINEAR_EPS
    out = (numerator / denominator).reshape(B, H, nq * block_q, D)[:, :, :L]
    empty = include.sum(dim=-1) == 0                       # [B,H,Nq]
    row_empty = empty.repeat_interleave(block_q, dim=2)[:, :, :L, None]
    return out.masked_fill(row_empty, 0.0)


def mix_alpha(q, alpha=None, alpha_w=None, alpha_b=None):
    """alpha per row, [B, H, L, 1] (or a broadcastable [1, H, 1, 1]), or None
    for alpha = 1."""
    if alpha is not None:
        return torch.sigmoid(alpha.to(q.dtype))[None, :, None, None]
    if alpha_w is not None:
        logits = torch.einsum("bhld,hd->bhl", q, alpha_w.to(q.dtype))
        if alpha_b is not None:
            logits = logits + alpha_b.to(q.dtype)[None, :, None]
        return torch.sigmoid(logits)[..., None]
    return None


def sla2_attention_details(q, k, v, *, block_q=128, block_k=64, topk,
                           quant="none", feature_map="softmax",
                           softmax_scale=None, router_q=None, router_k=None,
                           alpha=None, alpha_w=None, alpha_b=None,
                           proj_l_weight=None, proj_l_bias=None):
    """sla2_attention, returning every intermediate in a dict: out, mask
    (uint8 [B, H, Nq, Nk]), kept_idx, scores, o_sparse, o_linear, alpha
    (per row, or None), mean_alpha (None for SLA v1)."""
    if q.dim() != 4 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f"q, k, v must share one [B, H, L, D] shape, got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if quant not in QUANT_MODES:
        raise ValueError(f"quant must be one of {QUANT_MODES}, got {quant!r}")
    if feature_map not in FEATURE_MAPS:
        raise ValueError(f"feature_map must be one of {FEATURE_MAPS}, got {feature_map!r}")
    if not 0.0 < topk <= 1.0:
        raise ValueError(f"topk must be in (0, 1], got {topk}")
    v1 = proj_l_weight is not None
    if v1 and (alpha is not None or alpha_w is not None):
        raise ValueError("proj_l (SLA v1) cannot be combined with alpha")
    if alpha is not None and alpha_w is not None:
        raise ValueError("give alpha (per head) or alpha_w/alpha_b (per row), not both")
    # Half-precision inputs are computed in float32, as the SDK does (and so
    # that INT8 dot products stay exact).
    in_dtype = q.dtype
    work = torch.float32 if in_dtype in (torch.float16, torch.bfloat16) else in_dtype
    q, k, v = q.to(work), k.to(work), v.to(work)
    B, H, L, D = q.shape
    if softmax_scale is None or softmax_scale == 0:
        softmax_scale = 1.0 / math.sqrt(D)

    scores = router_scores(q, k, block_q, block_k, router_q, router_k)
    kept = kept_blocks(L, block_k, topk)
    idx, mask = topk_blocks(scores, kept)

    o_sparse = sparse_branch(q, k, v, idx, block_q, block_k, softmax_scale, quant)
    include = torch.ones_like(mask) if v1 else 1 - mask
    o_linear = linear_branch(q, k, v, include, block_q, block_k, feature_map)

    a = None
    if v1:
        out = o_sparse + F.linear(o_linear, proj_l_weight.to(q.dtype),
                                  None if proj_l_bias is None else proj_l_bias.to(q.dtype))
        mean_alpha = None
    else:
        a = mix_alpha(q, alpha, alpha_w, alpha_b)
        if a is None:
            out = o_sparse
            mean_alpha = 1.0
        else:
            out = a * o_sparse + (1 - a) * o_linear
            mean_alpha = a.expand(B, H, L, 1).double().mean().item()
    return dict(out=out.to(in_dtype), mask=mask, kept_idx=idx, scores=scores,
                o_sparse=o_sparse, o_linear=o_linear, alpha=a,
                mean_alpha=mean_alpha)


def sla2_attention(q, k, v, *, block_q=128, block_k=64, topk, quant="none",
                   feature_map="softmax", softmax_scale=None, router_q=None,
                   router_k=None, alpha=None, alpha_w=None, alpha_b=None,
                   proj_l_weight=None, proj_l_bias=None, return_mask=False):
    """The SLA2 operator on [B, H, L, D] tensors (see the module docstring).
    Returns out [B, H, L, D], or (out, mask) with return_mask (mask: uint8
    [B, H, Nq, Nk], 1 where a key block is kept)."""
    d = sla2_attention_details(
        q, k, v, block_q=block_q, block_k=block_k, topk=topk, quant=quant,
        feature_map=feature_map, softmax_scale=softmax_scale,
        router_q=router_q, router_k=router_k, alpha=alpha, alpha_w=alpha_w,
        alpha_b=alpha_b, proj_l_weight=proj_l_weight, proj_l_bias=proj_l_bias)
    return (d["out"], d["mask"]) if return_mask else d["out"]


class SLA2Attention(torch.nn.Module):
    """SLA2 attention with its learnable parameters, named as in the SDK's
    checkpoint layout (ARCHITECTURE.md section 6: `...self_attn.sla2.router_q`,
    `.router_k`, `.alpha` or `.alpha_w` / `.alpha_b`).

    router: 'per_head' ([H, D, D]), 'shared' ([D, D]) or 'none' (identity,
        SLA's heuristic router). Initialised to the identity, so training
        starts from SLA's mean-pooling router.
    alpha: 'per_head' (logits [H]), 'per_row' (alpha_w [H, D], alpha_b [H])
        or 'none' (alpha = 1). The logits start at alpha_init (default 0, so
        alpha = 0.5: both branches weigh the same until training decides);
        alpha_w starts at 0, so per-row alpha starts as a constant too.
    Router parameters get no gradient through the hard top-k (stage 2); stage
    1's soft top-k trains them.
    """

    def __init__(self, num_heads, head_dim, *, block_q=128, block_k=64,
                 topk=0.05, quant="none", feature_map="softmax",
                 router="per_head", alpha="per_head", alpha_init=0.0,
                 softmax_scale=None):
        super().__init__()
        if router not in ("per_head", "shared", "none"):
            raise ValueError(f"router must be per_head, shared or none, got {router!r}")
        if alpha not in ("per_head", "per_row", "none"):
            raise ValueError(f"alpha must be per_head, per_row or none, got {alpha!r}")
        self.num_heads, self.head_dim = num_heads, head_dim
        self.block_q, self.block_k, self.topk = block_q, block_k, topk
        self.quant, self.feature_map = quant, feature_map
        self.softmax_scale = softmax_scale
        eye = torch.eye(head_dim)
        if router == "per_head":
            eye = eye.expand(num_heads, head_dim, head_dim).clone()
        if router != "none":
            self.router_q = torch.nn.Parameter(eye.clone())
            self.router_k = torch.nn.Parameter(eye.clone())
        else:
            self.router_q = self.router_k = None
        self.alpha = self.alpha_w = self.alpha_b = None
        if alpha == "per_head":
            self.alpha = torch.nn.Parameter(torch.full((num_heads,), float(alpha_init)))
        elif alpha == "per_row":
            self.alpha_w = torch.nn.Parameter(torch.zeros(num_heads, head_dim))
            self.alpha_b = torch.nn.Parameter(torch.full((num_heads,), float(alpha_init)))

    def forward(self, q, k, v, return_mask=False):
        return sla2_attention(
            q, k, v, block_q=self.block_q, block_k=self.block_k, topk=self.topk,
            quant=self.quant, feature_map=self.feature_map,
            softmax_scale=self.softmax_scale, router_q=self.router_q,
            router_k=self.router_k, alpha=self.alpha, alpha_w=self.alpha_w,
            alpha_b=self.alpha_b, return_mask=return_mask)

    def extra_repr(self):
        return (f"heads={self.num_heads}, head_dim={self.head_dim}, "
                f"blocks={self.block_q}x{self.block_k}, topk={self.topk}, "
                f"quant={self.quant}, feature_map={self.feature_map}")
