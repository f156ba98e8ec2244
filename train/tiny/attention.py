"""Vectorised SLA2 attention for training the tiny demo model, on [B, H, L, D].

Same operator and conventions as ARCHITECTURE.md section 2 and the exact
reference train/sla2/attention.py (which is slow: one Python step per kept
block); this version is written for training speed. L must be a multiple of
both block sizes (the tiny model's L = 4096).

  router   qbar_i = mean of query block i (raw Q); K~ = K - mean over tokens;
           kbar_j = mean of K~ block j; (x W)_e = sum_d x_d W[d, e] with
           W [H, D, D]; s_ij = (qbar_i Wq).(kbar_j Wk) / sqrt(D).
  mask     hard: the k = max(1, min(Nk, floor(topk Nk + 0.5))) largest s_ij of
           each query block (ties to the lower index);
           soft (stage 1): M_ij = sigmoid((s_ij - thr_i) / (tau * std_i)), thr_i
           halfway between the k-th and (k+1)-th largest score (detached), std_i
           the spread of row i's scores (detached). Differentiable into the
           router. The sparse branch then softmaxes q.k*scale + log M_ij
           (exactly the hard branch when M is 0/1) and the linear branch weighs
           key block j by 1 - M_ij.
  sparse   hard: exact softmax over the kept blocks, computed on the gathered
           kept blocks (never the full L x L). Quantised (QAT, stage 2): INT8
           Q per query block and K~ per key block (scale max|x|/127, round half
           even, saturate), FP8 e4m3 P*448 and V/sv (sv = max_tokens |V[:, d]|
           / 448), online-softmax order over the kept blocks in ascending index
           (P rounded after subtracting the running max, row sums from the
           unrounded P), straight-through gradients (train/sla2/quant.py).
  linear   phi = softmax over the head dim of raw q and K;
           S_j = phi(K_j)^T V_j, z_j = sum_rows phi(K_j); complement =
           total - sum_j M_ij (S_j, z_j); O_l = phi(q) S_c / (phi(q) . z_c + 1e-6);
           0 when the complement is empty (k = Nk).
  mix      O = a O_s + (1 - a) O_l, a = sigmoid(alpha[h]).
Everything runs in float32 (autocast off), as the SDK does.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from train.sla2.quant import FP8_MAX, int8_codes_ste, int8_scale, round_e4m3_ste, round_f16_ste

LINEAR_EPS = 1e-6


def kept_blocks(nk, topk):
    topk32 = torch.tensor(topk, dtype=torch.float32).item()
    return max(1, min(nk, int(math.floor(topk32 * nk + 0.5))))


def router_scores(q, k, bq, bk, router_q, router_k):
    B, H, L, D = q.shape
    qbar = q.view(B, H, L // bq, bq, D).mean(3)
    ks = k - k.mean(dim=2, keepdim=True)
    kbar = ks.view(B, H, L // bk, bk, D).mean(3)
    if router_q is not None:
        qbar = torch.einsum("bhnd,hde->bhne", qbar, router_q.float())
        kbar = torch.einsum("bhnd,hde->bhne", kbar, router_k.float())
    return qbar @ kbar.transpose(-1, -2) / math.sqrt(D)


def hard_topk(scores, kept):
    """idx [B,H,Nq,kept] ascending, mask float [B,H,Nq,Nk]."""
    order = torch.sort(-scores, dim=-1, stable=True).indices[..., :kept]
    idx = torch.sort(order, dim=-1).values
    mask = torch.zeros_like(scores).scatter_(-1, idx, 1.0)
    return idx, mask


def soft_topk(scores, kept, tau):
    """Soft mask in (0, 1) and its log (stable), [B,H,Nq,Nk]."""
    nk = scores.shape[-1]
    with torch.no_grad():
        vals = torch.sort(scores, dim=-1, descending=True).values
        if kept < nk:
            thr = 0.5 * (vals[..., kept - 1] + vals[..., kept])
        else:
            thr = vals[..., -1] - 1.0
        spread = scores.std(dim=-1) + 1e-6
    z = (scores - thr[..., None]) / (tau * spread[..., None])
    return torch.sigmoid(z), F.logsigmoid(z)


def linear_branch(q, k, v, mask, bq, bk, kept_all):
    """mask [B,H,Nq,Nk] (1 = block in the sparse branch, soft or hard)."""
    B, H, L, D = q.shape
    nq, nk = L // bq, L // bk
    if kept_all:
        return torch.zeros_like(q)
    phi_k = torch.softmax(k, dim=-1).view(B, H, nk, bk, D)
    s_blocks = torch.einsum("bhnrd,bhnre->bhnde", phi_k, v.view(B, H, nk, bk, D))  # S_j
    z_blocks = phi_k.sum(dim=3)                                                     # z_j
    s_c = s_blocks.sum(2, keepdim=True) - torch.einsum("bhij,bhjde->bhide", mask, s_blocks)
    z_c = z_blocks.sum(2, keepdim=True) - torch.einsum("bhij,bhjd->bhid", mask, z_blocks)
    phi_q = torch.softmax(q, dim=-1).view(B, H, nq, bq, D)
    num = phi_q @ s_c
    den = (phi_q * z_c[:, :, :, None, :]).sum(-1, keepdim=True) + LINEAR_EPS
    return (num / den).reshape(B, H, L, D)


def sparse_soft(q, k, v, log_mask, bq, bk, scale):
    """softmax(q k^T scale + log M) v over all keys (stage 1)."""
    B, H, L, D = q.shape
    nq, nk = L // bq, L // bk
    s = (q @ k.transpose(-1, -2) * scale).view(B, H, nq, bq, nk, bk)
    s = s + log_mask[:, :, :, None, :, None]
    p = torch.softmax(s.view(B, H, L, L), dim=-1)
    return p @ v


def _gather(xb, idx):
    """xb [B,H,N,b,D], idx [B,H,Nq,kept] -> [B,H,Nq,kept,b,D]."""
    B, H = xb.shape[:2]
    bi = torch.arange(B, device=xb.device)[:, None, None, None]
    hi = torch.arange(H, device=xb.device)[None, :, None, None]
    return xb[bi, hi, idx]


def sparse_hard(q, k, v, idx, bq, bk, scale, quant):
    B, H, L, D = q.shape
    nq, nk = L // bq, L // bk
    qb = q.view(B, H, nq, bq, D)
    if quant == "none":
        kg = _gather(k.view(B, H, nk, bk, D), idx)
        vg = _gather(v.view(B, H, nk, bk, D), idx)
        s = torch.einsum("bhnqd,bhntcd->bhnqtc", qb, kg) * scale
        p = torch.softmax(s.flatten(-2), dim=-1).view_as(s)
        return torch.einsum("bhnqtc,bhntcd->bhnqd", p, vg).reshape(B, H, L, D)
    # INT8 Q (per query block) and smoothed K (per key block)
    ks = k - k.mean(dim=2, keepdim=True)
    kb = ks.view(B, H, nk, bk, D)
    scale_q = int8_scale(qb, dims=(-2, -1))             # [B,H,Nq,1,1]
    scale_k = int8_scale(kb, dims=(-2, -1))             # [B,H,Nk,1,1]
    q8 = int8_codes_ste(qb, scale_q)
    k8 = _gather(int8_codes_ste(kb, scale_k), idx)      # [B,H,Nq,T,bk,D]
    sk = _gather(scale_k, idx)[..., 0, 0]               # [B,H,Nq,T]
    dot = torch.einsum("bhnqd,bhntcd->bhnqtc", q8, k8)
    s = dot * (scale_q[..., None] * sk[:, :, :, None, :, None] * scale)  # [B,H,Nq,bq,T,bk]
    # online softmax over the kept blocks in ascending order, vectorised:
    # m_t = running max after block t; p_t = exp(s_t - m_t); the block's
    # contribution is later rescaled by exp(m_t - m_final).
    with torch.no_grad():
        m = torch.cummax(s.amax(dim=-1), dim=-1).values   # [B,H,Nq,bq,T]
        w = torch.exp(m - m[..., -1:])
    p = torch.exp(s - m[..., None])
    l = (p.sum(-1) * w).sum(-1, keepdim=True)           # [B,H,Nq,bq,1]
    if quant == "int8_fp8":
        sv = v.abs().amax(dim=2, keepdim=True) / FP8_MAX  # [B,H,1,D]
        sv_safe = torch.where(sv > 0, sv, torch.ones_like(sv))
        v8 = torch.where(sv > 0, round_e4m3_ste(v / sv_safe), torch.zeros_like(v))
        vg = _gather(v8.view(B, H, nk, bk, D), idx)
        p8 = round_e4m3_ste(p * FP8_MAX)
        c = torch.einsum("bhnqtc,bhntcd->bhnqtd", p8, vg) * (sv / FP8_MAX)[:, :, :, None, None, :]
    elif quant == "int8":
        vg = _gather(round_f16_ste(v).view(B, H, nk, bk, D), idx)
        c = torch.einsum("bhnqtc,bhntcd->bhnqtd", round_f16_ste(p), vg)
    else:
        raise ValueError(quant)
    acc = (c * w[..., None]).sum(-2)                   # [B,H,Nq,bq,D]
    return (acc / l).reshape(B, H, L, D)


def sla2_train_attention(q, k, v, router_q, router_k, alpha, *, topk, mode="hard", quant="none",
                         tau=0.1, bq=128, bk=64, return_mask=False):
    """mode 'hard' or 'soft'; quant 'none', 'int8' or 'int8_fp8' (hard only).
    Returns out in q's dtype (and the mask [B,H,Nq,Nk] with return_mask)."""
    B, H, L, D = q.shape
    assert L % bq == 0 and L % bk == 0, "the training attention needs L divisible by the blocks"
    dtype = q.dtype
    with torch.autocast(device_type=q.device.type, enabled=False):
        q, k, v = q.float(), k.float(), v.float()
        scale = 1.0 / math.sqrt(D)
        nk = L // bk
        kept = kept_blocks(nk, topk)
        scores = router_scores(q, k, bq, bk, router_q, router_k)
        if mode == "soft":
            assert quant == "none"
            mask, log_mask = soft_topk(scores, kept, tau)
            o_s = sparse_soft(q, k, v, log_mask, bq, bk, scale)
        else:
            idx, mask = hard_topk(scores.detach(), kept)
            o_s = sparse_hard(q, k, v, idx, bq, bk, scale, quant)
        o_l = linear_branch(q, k, v, mask, bq, bk, kept == nk and mode == "hard")
        a = torch.sigmoid(alpha.float())[None, :, None, None]
        out = (a * o_s + (1 - a) * o_l).to(dtype)
    return (out, mask) if return_mask else out


class TinySLA2(nn.Module):
    """Per-layer SLA2 parameters (ARCHITECTURE.md section 6 names: attached as
    blocks.N.self_attn.sla2 -> .router_q, .router_k [H, D, D], .alpha [H])
    and the training-time settings."""

    def __init__(self, heads, head_dim, alpha_init=0.0):
        super().__init__()
        eye = torch.eye(head_dim).expand(heads, head_dim, head_dim).clone()
        self.router_q = nn.Parameter(eye.clone())
        self.router_k = nn.Parameter(eye.clone())
        self.alpha = nn.Parameter(torch.full((heads,), float(alpha_init)))
        self.mode, self.quant, self.topk, self.tau = "dense", "none", 0.1, 0.1

    def forward(self, q, k, v, return_mask=False):
        if self.mode == "dense":
            if hasattr(F, "scaled_dot_product_attention"):
                return F.scaled_dot_product_attention(q, k, v)
            p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
            return p @ v
        return sla2_train_attention(q, k, v, self.router_q, self.router_k, self.alpha, topk=self.topk,
                                    mode=self.mode, quant=self.quant, tau=self.tau, return_mask=return_mask)
