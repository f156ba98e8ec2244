"""CPU checks of train/tiny: the training attention against the exact
reference operator (train/sla2), the batched forward against WanModel's
one-sample forward, the data generator against its own analyser.
  PYTHONPATH=. python3 -m unittest train.tiny.test_tiny"""
import unittest

import torch

from train.sla2.attention import sla2_attention
from train.tiny import common, data, sample
from train.tiny.attention import sla2_train_attention


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


class TinyTests(unittest.TestCase):
    def test_hard_modes_match_reference(self):
        torch.manual_seed(0)
        B, H, L, D = 1, 2, 1024, 64
        for topk in (0.1, 0.25, 1.0):
            q, k, v = torch.randn(B, H, L, D) * 1.5, torch.randn(B, H, L, D) + 0.3, torch.randn(B, H, L, D)
            rq = torch.eye(D) + 0.1 * torch.randn(H, D, D)
            rk = torch.eye(D) + 0.1 * torch.randn(H, D, D)
            al = torch.randn(H)
            for quant in ("none", "int8", "int8_fp8"):
                ref, mref = sla2_attention(q, k, v, topk=topk, quant=quant, router_q=rq, router_k=rk, alpha=al,
                                           return_mask=True)
                out, m = sla2_train_attention(q, k, v, rq, rk, al, topk=topk, quant=quant, return_mask=True)
                self.assertTrue(bool((m.to(torch.uint8) == mref).all()))
                self.assertLess(rel(out, ref), 1e-5, (topk, quant))

    def test_soft_topk_tends_to_hard_and_trains_router(self):
        torch.manual_seed(1)
        B, H, L, D = 1, 2, 1024, 64
        q, k, v = torch.randn(B, H, L, D) * 2, torch.randn(B, H, L, D) * 2, torch.randn(B, H, L, D)
        rq = (torch.eye(D).expand(H, D, D).clone()).requires_grad_()
        rk, al = torch.eye(D).expand(H, D, D).clone(), torch.zeros(H)
        hard = sla2_train_attention(q, k, v, rq, rk, al, topk=0.25)
        soft = sla2_train_attention(q, k, v, rq, rk, al, topk=0.25, mode="soft", tau=1e-4)
        self.assertLess(rel(soft, hard), 0.05)
        sla2_train_attention(q, k, v, rq, rk, al, topk=0.25, mode="soft", tau=0.1).square().mean().backward()
        self.assertGreater(rq.grad.abs().sum().item(), 0)

    def test_batched_forward_matches_wan(self):
        cfg = common.load_config()
        torch.manual_seed(0)
        m = common.build_model(cfg)
        common.init_weights(m)
        torch.nn.init.normal_(m.head.head.weight, std=0.02)
        x, c, s, d = data.sample_batch(1)
        ctx = data.context_batch(c, s, d, m.vocab_embedding, cfg["text_len"])
        with torch.no_grad():
            out = common.forward_batch(m, x, torch.tensor([333.0]), ctx)[0]
            ref = m(x[0], 333.0, m.embed_text(data.tokens_of(data.prompt_of(c[0], s[0], d[0]))))
        self.assertLess(rel(out, ref), 1e-5)

    def test_data_and_analyser(self):
        vid, c, s, d = data.sample_batch(64, torch.Generator().manual_seed(5))
        self.assertEqual(tuple(vid.shape), (64, 3, 16, 64, 64))
        for i in range(64):
            self.assertEqual(sample.analyse(vid[i]), (int(c[i]), int(s[i]), int(d[i])))
        self.assertEqual(data.tokens_of("red circle moving right"), [0, 6, 13, 10])


if __name__ == "__main__":
    unittest.main()
