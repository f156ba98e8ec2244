"""Hand-checked values for train/sla2/quant.py: the rounding the SDK simulates
(sdk/src/numeric.h). Runs under pytest, or as a script:
    /usr/bin/python3 train/tests/test_quant.py
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sla2 import quant  # noqa: E402

NAN = float("nan")
INF = float("inf")


def _vals(fn, xs, dtype=torch.float32):
    return fn(torch.tensor(xs, dtype=dtype)).tolist()


def _same(got, want):
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want):
        if isinstance(w, float) and math.isnan(w):
            assert math.isnan(g), (got, want)
        else:
            assert g == w and math.copysign(1, g) == math.copysign(1, w), (got, want)


def test_int8_ties_round_to_even():
    _same(_vals(quant.round_int8, [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 126.5]),
          [0.0, 2.0, 2.0, -0.0, -2.0, -2.0, 4.0, 126.0])


def test_int8_non_ties():
    _same(_vals(quant.round_int8, [0.49999997, 0.50000006, -7.3, 99.9]),
          [0.0, 1.0, -7.0, 100.0])


def test_int8_saturates():
    _same(_vals(quant.round_int8, [127.4, 127.5, 128.0, 1e9, -128.4, -128.5, -129.0, -1e30, INF, -INF]),
          [127.0, 127.0, 127.0, 127.0, -128.0, -128.0, -128.0, -128.0, 127.0, -128.0])


def test_int8_nan_is_zero():
    _same(_vals(quant.round_int8, [NAN, -NAN]), [0.0, 0.0])


def test_int8_scale_and_zero_block():
    x = torch.tensor([[0.5, -1.27], [1.0, 0.0]])
    s = quant.int8_scale(x, dims=(-2, -1))
    assert s.shape == (1, 1) and s.item() == torch.tensor(1.27 / 127.0).item()
    codes = quant.quantize_int8(x, s)
    assert codes.tolist() == [[50.0, -127.0], [100.0, 0.0]]
    zero = torch.zeros(2, 3)
    assert quant.quantize_int8(zero, quant.int8_scale(zero, dims=(-2, -1))).abs().sum() == 0


def test_int8_float64_rounds_the_float32_value():
    # 2.5 + 1e-12 is above the tie in float64 but exactly the tie in float32.
    x = torch.tensor([2.5 + 1e-12], dtype=torch.float64)
    assert quant.round_int8(x).item() == 2.0
    assert quant.round_int8(x).dtype == torch.float64


def test_e4m3_normals():
    # [1, 2): step 1/8; [16, 32): step 2; [256, 448]: step 32.
    _same(_vals(quant.round_e4m3, [1.0, 1.0625, 1.1875, 1.2, 17.0, 19.0, 21.0, 300.0, 304.0, 336.0]),
          [1.0, 1.0, 1.25, 1.25, 16.0, 20.0, 20.0, 288.0, 320.0, 320.0])


def test_e4m3_subnormals_steps_of_2_pow_minus_9():
    u = 2.0 ** -9
    _same(_vals(quant.round_e4m3, [u, 0.5 * u, 1.5 * u, 2.5 * u, 0.5000001 * u, 3.49 * u, 7 * u, 7.5 * u, -2.5 * u]),
          [u, 0.0, 2 * u, 2 * u, u, 3 * u, 7 * u, 8 * u, -2 * u])
    # the smallest normal 2^-6 = 8u; between 2^-6 and 2^-5 the step is still u
    _same(_vals(quant.round_e4m3, [8.5 * u, 9.5 * u, 15.5 * u]), [8 * u, 10 * u, 16 * u])


def test_e4m3_saturates_to_448():
    _same(_vals(quant.round_e4m3, [416.0, 431.9, 432.0, 440.0, 448.0, 464.0, 479.0, 1e6, INF, -449.0, -INF]),
          [416.0, 416.0, 448.0, 448.0, 448.0, 448.0, 448.0, 448.0, 448.0, -448.0, -448.0])


def test_e4m3_nan_and_signed_zero():
    _same(_vals(quant.round_e4m3, [NAN, 0.0, -0.0, -1e-9]), [NAN, 0.0, -0.0, -0.0])


def test_e4m3_every_code_is_a_fixed_point():
    codes = []
    for e in range(16):
        for m in range(8):
            if e == 15 and m == 7:
                continue  # NaN
            codes.append(m * 2.0 ** -9 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7))
    assert max(codes) == 448.0
    x = torch.tensor(codes)
    assert torch.equal(quant.round_e4m3(x), x)
    assert torch.equal(quant.round_e4m3(-x), -x)


def test_e4m3_matches_torch_float8_where_available():
    if not hasattr(torch, "float8_e4m3fn"):
        return  # torch < 2.1
    x = torch.randn(200000) * torch.exp2(torch.randint(-14, 10, (200000,)).float())
    x = x.clamp(-448, 448)  # torch's own cast does not saturate
    want = x.to(torch.float8_e4m3fn).float()
    assert torch.equal(quant.round_e4m3(x), want)


def test_f16():
    _same(_vals(quant.round_f16, [1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 2.0 ** -25, 3 * 2.0 ** -25, 65519.0, 65520.0]),
          [1.0, 1.0 + 2 * 2.0 ** -10, 0.0, 2.0 ** -23, 65504.0, INF])


def test_ste_gradients():
    x = torch.tensor([0.3, -1.7, 2.2], requires_grad=True)
    quant.round_e4m3_ste(x * 100).sum().backward()
    assert x.grad.tolist() == [100.0, 100.0, 100.0]
    x.grad = None
    quant.round_f16_ste(x).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]
    x.grad = None
    scale = torch.tensor(0.5)
    y = quant.int8_codes_ste(x, scale)
    assert y.tolist() == [1.0, -3.0, 4.0]
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]
    x.grad = None
    quant.fake_quant_int8_ste(x, scale).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]
    x.grad = None
    quant.int8_codes_ste(x, torch.tensor(0.0)).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]


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
