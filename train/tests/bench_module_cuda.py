"""Forward + backward time of SLA2Attention on the GPU at the tiny demo
model's shape (ARCHITECTURE.md section 5: 4096 tokens), for planning QAT.
    python3 train/tests/bench_module_cuda.py"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sla2 import SLA2Attention  # noqa: E402

if __name__ == "__main__":
    if not torch.cuda.is_available():
        sys.exit("no GPU")
    B, H, L, D = 2, 4, 4096, 64
    for quant in ("none", "int8", "int8_fp8"):
        for topk in (0.1, 0.05):
            m = SLA2Attention(H, D, block_q=128, topk=topk, quant=quant).cuda()
            q, k, v = [torch.randn(B, H, L, D, device="cuda", requires_grad=True) for _ in range(3)]
            for i in range(6):
                if i == 2:
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                m(q, k, v).square().mean().backward()
            torch.cuda.synchronize()
            ms = (time.perf_counter() - t0) / 4 * 1e3
            print(f"B{B} H{H} L{L} D{D} quant={quant:8s} topk={topk}: fwd+bwd {ms:6.1f} ms, "
                  f"peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
            torch.cuda.reset_peak_memory_stats()
