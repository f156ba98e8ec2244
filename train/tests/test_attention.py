"""Properties of train/sla2/attention.py that follow from ARCHITECTURE.md
section 2, checked against direct O(L^2) formulas in float64. Runs under
pytest, or as a script: /usr/bin/python3 train/tests/test_attention.py
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sla2 import SLA2Attention, kept_blocks, sla2_attention, sla2_attention_details  # noqa: E402
from sla2.attention import feature_map, router_scores, topk_blocks  # noqa: E402


def _qkv(B, H, L, D, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, L, D, generator=g, dtype=torch.float64) for _ in range(3)]


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def _token_mask(mask, L, bq, bk):
    """Block mask [B, H, Nq, Nk] -> token mask [B, H, L, L] (bool)."""
    m = mask.bool().repeat_interleave(bq, dim=2).repeat_interleave(bk, dim=3)
    return m[:, :, :L, :L]


def test_kept_blocks():
    assert kept_blocks(1, 64, 0.05) == 1
    assert kept_blocks(333, 64, 0.05) == 1   # Nk 6: floor(0.8) = 0 -> 1
    assert kept_blocks(333, 64, 0.2) == 1    # floor(1.7)
    assert kept_blocks(333, 64, 0.25) == 2   # floor(2.0)
    assert kept_blocks(333, 64, 0.5) == 3
    assert kept_blocks(333, 64, 1.0) == 6
    assert kept_blocks(4096, 64, 0.05) == 3  # Nk 64: floor(3.7)


def test_dense_when_topk_is_one_and_no_alpha():
    for (L, D, bq) in [(1, 64, 128), (63, 64, 64), (200, 128, 128), (333, 64, 64)]:
        q, k, v = _qkv(2, 2, L, D, seed=L)
        ref = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D), dim=-1) @ v
        out = sla2_attention(q, k, v, block_q=bq, topk=1.0)
        assert _rel(out, ref) < 1e-13, (L, D, _rel(out, ref))


def test_topk_one_with_alpha_leaves_linear_branch_zero():
    q, k, v = _qkv(1, 2, 65, 64, seed=1)
    logits = torch.tensor([0.3, -1.0], dtype=torch.float64)
    d = sla2_attention_details(q, k, v, block_q=64, topk=1.0, alpha=logits)
    assert d["o_linear"].abs().max().item() == 0.0
    a = torch.sigmoid(logits)[None, :, None, None]
    assert _rel(d["out"], a * d["o_sparse"]) < 1e-15


def test_sparse_branch_is_masked_softmax():
    L, D, bq, bk = 333, 64, 64, 64
    q, k, v = _qkv(1, 3, L, D, seed=7)
    d = sla2_attention_details(q, k, v, block_q=bq, topk=0.5)
    keep = _token_mask(d["mask"], L, bq, bk)
    s = (q @ k.transpose(-1, -2) / math.sqrt(D)).masked_fill(~keep, float("-inf"))
    ref = torch.softmax(s, dim=-1) @ v
    assert _rel(d["o_sparse"], ref) < 1e-13


def test_linear_branch_is_complement_linear_attention():
    L, D, bq, bk = 200, 64, 128, 64
    q, k, v = _qkv(2, 2, L, D, seed=3)
    for fm in ("softmax", "elu", "relu"):
        d = sla2_attention_details(q, k, v, block_q=bq, topk=0.5, feature_map=fm)
        comp = ~_token_mask(d["mask"], L, bq, bk)
        w = (feature_map(q, fm) @ feature_map(k, fm).transpose(-1, -2)) * comp
        ref = (w @ v) / (w.sum(dim=-1, keepdim=True) + 1e-6)
        assert _rel(d["o_linear"], ref) < 1e-13, fm


def test_router_matches_definition():
    L, D, bq, bk = 200, 64, 128, 64
    q, k, v = _qkv(1, 2, L, D, seed=5)
    wq = torch.randn(2, D, D, dtype=torch.float64)
    wk = torch.randn(D, D, dtype=torch.float64)
    s = router_scores(q, k, bq, bk, wq, wk)
    kt = k - k.mean(dim=2, keepdim=True)
    for h in range(2):
        for i in range(2):
            qbar = q[0, h, i * bq:(i + 1) * bq].mean(0)
            for j in range(4):
                kbar = kt[0, h, j * bk:(j + 1) * bk].mean(0)
                want = (qbar @ wq[h]) @ (kbar @ wk) / math.sqrt(D)
                assert abs(s[0, h, i, j].item() - want.item()) < 1e-10


def test_topk_ties_go_to_the_lower_index():
    s = torch.tensor([[[[1.0, 3.0, 3.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0]]]])
    idx, mask = topk_blocks(s, 2)
    assert idx.tolist() == [[[[1, 2], [0, 1]]]]
    assert mask.tolist() == [[[[0, 1, 1, 0, 0], [1, 1, 0, 0, 0]]]]


def test_quantised_modes_close_to_exact_and_differentiable():
    q, k, v = _qkv(1, 2, 200, 64, seed=11)
    exact = sla2_attention(q, k, v, block_q=64, topk=0.5)
    for mode, bound in (("int8", 0.05), ("int8_fp8", 0.1)):
        out = sla2_attention(q, k, v, block_q=64, topk=0.5, quant=mode)
        assert _rel(out, exact) < bound, (mode, _rel(out, exact))
        qq, kk, vv = [t.clone().float().requires_grad_() for t in (q, k, v)]
        sla2_attention(qq, kk, vv, block_q=64, topk=0.5, quant=mode,
                       alpha=torch.tensor([0.0, 1.0])).square().sum().backward()
        for t in (qq, kk, vv):
            assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_module_parameters_and_forward():
    m = SLA2Attention(2, 64, block_q=64, topk=0.5, router="per_head", alpha="per_row")
    names = dict(m.named_parameters())
    assert set(names) == {"router_q", "router_k", "alpha_w", "alpha_b"}
    assert torch.equal(m.router_q[1], torch.eye(64))
    q, k, v = [t.float() for t in _qkv(1, 2, 130, 64, seed=2)]
    out, mask = m(q, k, v, return_mask=True)
    assert out.shape == q.shape and mask.shape == (1, 2, 3, 3)
    # identity router, alpha 0.5 everywhere
    ref = sla2_attention(q, k, v, block_q=64, topk=0.5, alpha=torch.zeros(2))
    assert _rel(out, ref) < 1e-6
    out.sum().backward()
    assert m.alpha_w.grad is not None and m.alpha_b.grad is not None


def test_sla_v1():
    L, D = 200, 64
    q, k, v = _qkv(1, 2, L, D, seed=13)
    w = torch.randn(D, D, dtype=torch.float64) / 8
    b = torch.randn(D, dtype=torch.float64)
    d = sla2_attention_details(q, k, v, block_q=128, topk=0.25, proj_l_weight=w, proj_l_bias=b)
    phq, phk = feature_map(q, "softmax"), feature_map(k, "softmax")
    lin = (phq @ (phk.transpose(-1, -2) @ v)) / (phq @ phk.sum(2, keepdim=True).transpose(-1, -2) + 1e-6)
    assert _rel(d["out"], d["o_sparse"] + lin @ w.T + b) < 1e-13


def test_cuda_matches_cpu():
    """Where a GPU exists: the same operator on CUDA (float64: the oracle's
    numbers; float32 and bfloat16: how training runs it)."""
    if not torch.cuda.is_available():
        return
    q, k, v = _qkv(2, 3, 333, 64, seed=17)
    g = torch.Generator().manual_seed(17)
    params = dict(router_q=torch.eye(64, dtype=torch.float64) + torch.randn(3, 64, 64, generator=g, dtype=torch.float64) / 8,
                  alpha_w=0.2 * torch.randn(3, 64, generator=g, dtype=torch.float64),
                  alpha_b=torch.randn(3, generator=g, dtype=torch.float64))
    for mode in ("none", "int8", "int8_fp8"):
        kw = dict(block_q=128, topk=0.5, quant=mode, feature_map="elu")
        cpu, cpu_mask = sla2_attention(q, k, v, return_mask=True, **params, **kw)
        on_gpu = {n: t.cuda() for n, t in params.items()}
        gpu, gpu_mask = sla2_attention(q.cuda(), k.cuda(), v.cuda(), return_mask=True, **on_gpu, **kw)
        assert torch.equal(cpu_mask, gpu_mask.cpu()), mode
        assert _rel(gpu.cpu(), cpu) < (1e-12 if mode == "none" else 1e-4), (mode, _rel(gpu.cpu(), cpu))
        for dtype, bound in ((torch.float32, 1e-3), (torch.bfloat16, 5e-2)):
            qq, kk, vv = [t.cuda().to(dtype).requires_grad_() for t in (q, k, v)]
            out = sla2_attention(qq, kk, vv, **{n: t.to(dtype) for n, t in on_gpu.items()}, **kw)
            assert out.dtype == dtype
            assert _rel(out.double().cpu(), cpu) < bound, (mode, dtype, _rel(out.double().cpu(), cpu))
            out.float().square().sum().backward()
            assert all(torch.isfinite(t.grad).all() for t in (qq, kk, vv)), (mode, dtype)


if __name__ == "__main__":
    failed = 0
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    for name, fn in tests:
        try:
            fn()
            print(f"ok    {name}")
        except Exception as e:  # report every failure, then fail
            failed += 1
            print(f"FAIL  {name}: {e!r}")
    print(f"{len(tests) - failed}/{len(tests)} passed")
    sys.exit(1 if failed else 0)
