"""Reference for the SDK's flow-matching samplers (sdk/src/pipeline/sampler.c).

A from-scratch reimplementation, in float64, of the sampler Wan2.1 uses:
FlowUniPCMultistepScheduler (solver_order 2, bh2, predict_x0, lower_order_final,
final sigma 0) and plain flow-matching Euler, driven by a toy model whose x0
prediction is analytic (the posterior mean of a two-Gaussian mixture), so the
C test can run the same model and compare trajectories step by step.

    /usr/bin/python3 train/unipc_reference.py > tests/fixtures/sampler/trajectories.txt

Output: per case a line `case <sampler> <steps> <shift> <n>`, the start x,
then one line per step with x after that step (%.9e).
"""
import math
import sys

import torch

# The toy data: x0 ~ 0.5 N(-0.6, 0.1^2) + 0.5 N(0.9, 0.2^2), per element.
MIX = ((0.5, -0.6, 0.1), (0.5, 0.9, 0.2))


def toy_x0(x, sigma):
    """E[x0 | x_sigma], x_sigma = (1 - sigma) x0 + sigma eps."""
    a = 1.0 - sigma
    logw, means = [], []
    for w, mu, s in MIX:
        var = a * a * s * s + sigma * sigma
        c = x - a * mu
        logw.append(math.log(w) - 0.5 * math.log(var) - 0.5 * c * c / var)
        means.append(mu + a * s * s * c / var)
    resp = torch.softmax(torch.stack(logw), dim=0)
    return (resp * torch.stack(means)).sum(dim=0)


def toy_velocity(x, sigma):
    return (x - toy_x0(x, sigma)) / sigma  # v = eps - x0, x0 = x - sigma v


def flow_sigmas(steps, shift):
    """Wan: linspace(sigma_max=0.999, sigma_min=0, steps + 1)[:-1], shifted, then 0."""
    out = []
    for i in range(steps):
        s = 0.999 + (0.0 - 0.999) * i / steps
        out.append(shift * s / (1.0 + (shift - 1.0) * s))
    return out + [0.0]


def lam(sigma):
    return math.log(1.0 - sigma) - math.log(sigma) if sigma > 0 else math.inf


def bh2(h):
    """h_phi_1, B_h (bh2) and the b vector for orders 1 and 2 (predict_x0: hh = -h)."""
    hh = -h
    h_phi_1 = math.expm1(hh)
    b_h = math.expm1(hh)
    h_phi_k = h_phi_1 / hh - 1.0
    fact, b = 1.0, []
    for i in (1, 2):
        b.append(h_phi_k * fact / b_h)
        fact *= i + 1
        h_phi_k = h_phi_k / hh - 1.0 / fact
    return h_phi_1, b_h, b


class UniPC:
    def __init__(self, sigmas):
        self.sigmas = sigmas
        self.steps = len(sigmas) - 1
        self.outputs = [None, None]  # x0 predictions, oldest first
        self.last_sample = None
        self.lower_order_nums = 0
        self.this_order = 1
        self.i = 0

    def predictor(self, x, order):
        s0, t = self.sigmas[self.i], self.sigmas[self.i + 1]
        h = lam(t) - lam(s0)
        h_phi_1, b_h, _ = bh2(h)
        m0 = self.outputs[-1]
        x_t = (t / s0) * x - (1.0 - t) * h_phi_1 * m0
        if order == 2:
            rk = (lam(self.sigmas[self.i - 1]) - lam(s0)) / h
            d1 = (self.outputs[-2] - m0) / rk
            x_t = x_t - (1.0 - t) * b_h * 0.5 * d1  # rhos_p = [0.5] at order 2
        return x_t

    def corrector(self, model_t, order):
        t, s0 = self.sigmas[self.i], self.sigmas[self.i - 1]
        h = lam(t) - lam(s0)
        h_phi_1, b_h, b = bh2(h)
        m0, x = self.outputs[-1], self.last_sample
        x_t = (t / s0) * x - (1.0 - t) * h_phi_1 * m0
        if order == 1:
            rho_t, corr = 0.5, 0.0
        else:
            rk = (lam(self.sigmas[self.i - 2]) - lam(s0)) / h
            rho = torch.linalg.solve(torch.tensor([[1.0, 1.0], [rk, 1.0]], dtype=torch.float64),
                                     torch.tensor(b, dtype=torch.float64))
            corr = rho[0].item() * (self.outputs[-2] - m0) / rk
            rho_t = rho[1].item()
        return x_t - (1.0 - t) * b_h * (corr + rho_t * (model_t - m0))

    def step(self, velocity, sample):
        x0 = sample - self.sigmas[self.i] * velocity
        if self.i > 0 and self.last_sample is not None:
            sample = self.corrector(x0, self.this_order)
        self.outputs = [self.outputs[-1], x0]
        order = min(2, self.steps - self.i)  # lower_order_final
        self.this_order = min(order, self.lower_order_nums + 1)  # warm-up
        self.last_sample = sample
        out = self.predictor(sample, self.this_order)
        self.lower_order_nums = min(self.lower_order_nums + 1, 2)
        self.i += 1
        return out


def run(sampler, steps, shift, n):
    sigmas = flow_sigmas(steps, shift)
    x = torch.linspace(-2.5, 2.5, n, dtype=torch.float64)
    traj = [x.clone()]
    solver = UniPC(sigmas)
    for i in range(steps):
        v = toy_velocity(x, sigmas[i])
        x = solver.step(v, x) if sampler == "unipc" else x + (sigmas[i + 1] - sigmas[i]) * v
        traj.append(x.clone())
    return traj


CASES = [("unipc", 1, 5.0), ("unipc", 2, 5.0), ("unipc", 3, 5.0), ("unipc", 6, 5.0),
         ("unipc", 20, 5.0), ("unipc", 10, 1.0), ("euler", 6, 5.0)]
N = 8

if __name__ == "__main__":
    w = sys.stdout.write
    w("# x after each sampler step on the toy mixture model; train/unipc_reference.py\n")
    for sampler, steps, shift in CASES:
        w(f"case {sampler} {steps} {shift:g} {N}\n")
        for x in run(sampler, steps, shift, N):
            w(" ".join(f"{v:.9e}" for v in x.tolist()) + "\n")
