"""Rounding of the SLA2 SDK's quantised sparse branch, in PyTorch.

The formats and rounding rules are those of ARCHITECTURE.md section 2 and of
sdk/src/numeric.c, re-implemented here from their definitions (not from the C
code) so that QAT fine-tuning rounds exactly as the SDK computes:

* INT8: round half to even, saturate to [-128, 127], NaN -> 0
  (PTX cvt.rni.sat.s8.f32). Per-block symmetric scale max|x| / 127; a block
  whose scale is 0 quantises to 0.
* FP8 e4m3 "fn" (OCP: bias 7, no infinities, largest finite 448): round half
  to even, saturate to +-448 (PTX cvt.rn.satfinite.e4m3x2); subnormals are
  multiples of 2^-9; NaN stays NaN.
* FP16: IEEE half, round half to even (PyTorch's own conversion).

Every rounding runs on float32 values, as the SDK's kernels and its CPU
reference do: a float64 input is first rounded to float32, so the oracle in
float64 and a float32 training run round the same numbers. The result comes
back in the input's dtype.

The *_ste functions are the fake-quantisation used by QAT: the forward pass
rounds exactly as above, the backward pass is the straight-through estimator
(the gradient of the unrounded expression; scales are treated as constants).
The plain functions (round_int8, round_e4m3, round_f16) carry no gradient.
"""
import torch

INT8_MAX = 127.0
FP8_MAX = 448.0  # largest finite e4m3fn value; also P's static scale
_E4M3_MANTISSA_BITS = 3
_E4M3_MIN_NORMAL_EXP = -6  # 2^-6 is the smallest normal; below it steps of 2^-9


def round_int8(x: torch.Tensor) -> torch.Tensor:
    """x rounded to an INT8 value (as a float tensor of x's dtype): half to
    even, saturating to [-128, 127], NaN -> 0."""
    r = torch.round(x.float())  # torch.round rounds half to even
    r = torch.nan_to_num(r, nan=0.0, posinf=INT8_MAX, neginf=-128.0)
    return r.clamp(-128.0, INT8_MAX).to(x.dtype)


def round_e4m3(x: torch.Tensor) -> torch.Tensor:
    """The value x becomes after a round trip through e4m3fn: half to even,
    saturating to +-448, NaN kept."""
    x32 = x.float()
    a = x32.abs()
    _, e = torch.frexp(a)  # a = m * 2^e with m in [0.5, 1): a's binade is e-1
    exponent = (e - 1).clamp(min=_E4M3_MIN_NORMAL_EXP)
    step = torch.ldexp(torch.ones_like(a), exponent - _E4M3_MANTISSA_BITS)
    r = torch.round(a / step) * step  # exact: step is a power of two
    r = torch.where(a >= FP8_MAX, torch.full_like(a, FP8_MAX), r)
    r = torch.copysign(r, x32)
    r = torch.where(torch.isnan(x32), x32, r)
    return r.to(x.dtype)


def round_f16(x: torch.Tensor) -> torch.Tensor:
    """The value x becomes after a round trip through IEEE half (RNE)."""
    return x.float().half().to(x.dtype)


def int8_scale(x: torch.Tensor, dims) -> torch.Tensor:
    """Per-block INT8 scale max|x| / 127 over dims (kept as size-1 dims),
    computed in float32 like the SDK; returned in x's dtype."""
    amax = x.float().abs().amax(dim=dims, keepdim=True)
    return (amax / INT8_MAX).to(x.dtype)


def quantize_int8(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """INT8 codes of x / scale (float32 division, then round_int8); 0 where the
    scale is 0. Returned as a float tensor of x's dtype holding integers."""
    s32 = scale.float()
    safe = torch.where(s32 > 0, s32, torch.ones_like(s32))
    codes = round_int8(x.float() / safe)
    return torch.where(s32 > 0, codes, torch.zeros_like(codes)).to(x.dtype)


class _Int8CodesSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(scale)
        return quantize_int8(x, scale)

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved_tensors
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        g = torch.where(scale > 0, grad / safe, torch.zeros_like(grad))
        return g, None


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, fn):
        return fn(x)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def int8_codes_ste(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """quantize_int8 with a straight-through gradient d codes / d x = 1/scale
    (the scale is a constant to the backward pass)."""
    return _Int8CodesSTE.apply(x, scale.detach())


def fake_quant_int8_ste(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x quantised to INT8 and dequantised (codes * scale); gradient 1."""
    scale = scale.detach()
    return int8_codes_ste(x, scale) * scale


def round_e4m3_ste(x: torch.Tensor) -> torch.Tensor:
    """round_e4m3 forward, identity backward."""
    return _RoundSTE.apply(x, round_e4m3)


def round_f16_ste(x: torch.Tensor) -> torch.Tensor:
    """round_f16 forward, identity backward."""
    return _RoundSTE.apply(x, round_f16)
