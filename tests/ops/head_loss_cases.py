"""Shared helpers of the fused head-loss tests: tolerances, inputs, comparisons."""

from __future__ import annotations

import torch

# (atol, rtol) per input dtype, for the kernels against the fp32 reference run
# on the same (rounded) inputs. atol is relative to the largest |expected|.
TOL = {
    torch.float32: (2e-5, 1e-4),
    torch.float16: (2e-3, 2e-3),  # outputs rounded to float16
    torch.bfloat16: (2e-2, 2e-2),  # dlogits rounded to bfloat16 before the gradient GEMMs
}
FD_RTOL = 2e-4  # kernel (fp32) directional derivative vs float64 central differences


def make_head(B, d, V, dtype, device, *, seed=0, train_w=False, logit_scale=3.0):
    """Leaf tensors ``hidden`` (B, d) and ``weight`` (V, d) with logits of spread ~logit_scale."""
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, d, generator=g)
    weight = torch.randn(V, d, generator=g) * (logit_scale / d**0.5)
    hidden = hidden.to(device=device, dtype=dtype).requires_grad_(True)
    weight = weight.to(device=device, dtype=dtype).requires_grad_(train_w)
    return hidden, weight


def mixed_targets(B, device, seed=0):
    """Targets cycling through 0, 1, 0.5 and random values in (0, 1)."""
    g = torch.Generator().manual_seed(seed + 1)
    t = torch.rand(B, generator=g)
    fixed = torch.tensor([0.0, 1.0, 0.5])
    n = min(B, 3)
    t[:n] = fixed[:n]
    return t.to(device)


def answer_ids(B, V, device, seed=0):
    """Distinct (a, b) ids per row, including the first and last vocabulary entries."""
    g = torch.Generator().manual_seed(seed + 2)
    a = torch.randint(0, V, (B,), generator=g)
    b = (a + 1 + torch.randint(0, V - 1, (B,), generator=g)) % V
    a[0], b[0] = 0, V - 1
    if B > 1:
        a[1], b[1] = V - 1, 0
    return a.to(device), b.to(device)


def loss_and_grads(fn, hidden, weight, upstream=None):
    """Run ``fn(hidden, weight)``, backpropagate, return (loss, grad_hidden, grad_weight)."""
    hidden.grad = None
    weight.grad = None
    loss = fn(hidden, weight)
    if upstream is None:
        loss.backward()
    else:
        loss.backward(upstream)
    gw = None if weight.grad is None else weight.grad.detach().clone()
    return loss.detach(), hidden.grad.detach().clone(), gw


def assert_close(actual, expected, dtype, name):
    """``|a - e| <= atol * max|e| + rtol * |e|``, reporting the worst entry on failure."""
    atol, rtol = TOL[dtype]
    a = actual.detach().to(torch.float64).cpu()
    e = expected.detach().to(torch.float64).cpu()
    assert a.shape == e.shape, f"{name}: shape {tuple(a.shape)} != {tuple(e.shape)}"
    assert torch.isfinite(a).all(), f"{name}: non-finite values in the result"
    scale = float(e.abs().max()) if e.numel() else 0.0
    err = (a - e).abs()
    bound = atol * max(scale, 1e-30) + rtol * e.abs()
    bad = err > bound
    if bool(bad.any()):
        idx = torch.nonzero(bad)[0].tolist()
        worst = float((err / bound.clamp_min(1e-300)).max())
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {a.numel()} entries differ (max |err|/bound = {worst:.3g}); "
            f"first at {idx}: got {float(a[tuple(idx)]):.8g}, expected {float(e[tuple(idx)]):.8g} "
            f"(atol={atol} x max|e|={scale:.3g}, rtol={rtol})"
        )


def directional_fd(f64, x, direction, eps=1e-6):
    """Central difference of the float64 function ``f64`` at ``x`` along ``direction``."""
    with torch.no_grad():
        x64 = x.detach().to(torch.float64)
        u = direction.to(torch.float64)
        return (f64(x64 + eps * u) - f64(x64 - eps * u)) / (2 * eps)
