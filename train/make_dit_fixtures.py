"""Writes tests/fixtures/dit/: a small random Wan2.1 configuration (YAML),
its weights (safetensors, Wan's names) and one forward pass of the PyTorch
reference (train/wan/model.py) in float64, dense attention: the oracle of
tests/test_dit.c. Run: /usr/bin/python3 train/make_dit_fixtures.py"""
import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from safetensors_io import save_file  # noqa: E402
from wan.model import WanModel  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "dit"

CONFIG = dict(dim=128, ffn_dim=256, freq_dim=64, text_dim=32, text_len=6, num_heads=2, num_layers=2,
              in_channels=4, out_channels=4, patch_size=[1, 2, 2], eps=1e-6)
YAML = """# A small random Wan2.1 configuration for tests/test_dit.c (made by train/make_dit_fixtures.py).
name: dit-fixture
dim: 128
ffn_dim: 256
freq_dim: 64
text_dim: 32
text_len: 6
num_heads: 2
num_layers: 2
in_channels: 4
out_channels: 4
patch_size: [1, 2, 2]
eps: 1.0e-6
qk_norm: true
cross_attn_norm: true
sla2:
  router: none
  alpha: none
  formulation: sla2
video:
  space: pixel
  frames: 3
  height: 8
  width: 12
"""


def main():
    torch.manual_seed(1234)
    model = WanModel(**CONFIG).double()
    with torch.no_grad():
        # larger than the default init so every part of the block matters
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif "modulation" in name:
                p.copy_(0.5 * torch.randn_like(p))
        x = torch.randn(4, 3, 8, 12, dtype=torch.float64)
        context = torch.randn(3, 32, dtype=torch.float64)  # 3 of text_len 6 positions; the rest zero-padded
        t = 637.0
        out = model(x, t, context)
    OUT.mkdir(parents=True, exist_ok=True)
    weights = {k: v.float() for k, v in model.state_dict().items()}
    save_file(weights, OUT / "weights.safetensors")
    padded = torch.cat([context, context.new_zeros(3, 32)])
    save_file({"x": x.float(), "context": padded.float(), "timestep": torch.tensor([t]).float(),
               "velocity": out.float()}, OUT / "io.safetensors")
    (OUT / "model.yaml").write_text(YAML)
    print("wrote", OUT, "velocity rms", out.pow(2).mean().sqrt().item())


if __name__ == "__main__":
    main()
