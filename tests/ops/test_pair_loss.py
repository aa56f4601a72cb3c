"""pycomp.ops.pair_loss (Triton) against the torch reference and finite differences.

On a machine without CUDA the kernels run under TRITON_INTERPRET=1 (set in
tests/ops/conftest.py), in float32 and float16; bfloat16 runs on a GPU only.
"""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from head_loss_cases import (  # noqa: E402
    FD_RTOL,
    answer_ids,
    assert_close,
    directional_fd,
    loss_and_grads,
    make_head,
    mixed_targets,
)

from pycomp.ops import pair_loss, pair_loss_reference  # noqa: E402
from pycomp.ops import _backend  # noqa: E402

HAS_CUDA = torch.cuda.is_available()

# (B, d, V, trainable head): B = 1, 3, 17 (17 spans two 16-row blocks under the
# interpreter); d not a power of two (136 spans two 128-wide chunks); V = 1000,
# 32003, 49152 (masked tails, several splits).
SHAPES = [
    (1, 24, 1000, True),
    (3, 48, 32003, False),
    (17, 24, 49152, True),
    (17, 136, 1000, False),
]
DTYPES = [torch.float32, torch.float16]


def _ref(normalize, a, b, t, reduction="mean"):
    return lambda h, w: pair_loss_reference(h, w, a, b, t, normalize=normalize, reduction=reduction)


def _fused(normalize, a, b, t, reduction="mean"):
    return lambda h, w: pair_loss(h, w, a, b, t, normalize=normalize, reduction=reduction,
                                  backend="triton")


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}-d{}-V{}-{}".format(*s[:3], "trainW" if s[3] else "frozenW"))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("normalize", ["pair", "vocab"])
def test_matches_reference(normalize, dtype, shape, device):
    B, d, V, train_w = shape
    h, w = make_head(B, d, V, dtype, device, train_w=train_w)
    a, b = answer_ids(B, V, device)
    t = mixed_targets(B, device)
    loss, gh, gw = loss_and_grads(_fused(normalize, a, b, t), h, w)
    ref, rgh, rgw = loss_and_grads(_ref(normalize, a, b, t), h, w)
    assert loss.dtype == torch.float32
    assert gh.dtype == dtype
    assert_close(loss, ref, dtype, "loss")
    assert_close(gh, rgh, dtype, "grad hidden")
    if train_w:
        assert gw.dtype == dtype
        assert_close(gw, rgw, dtype, "grad weight")
    else:
        assert gw is None


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("normalize", ["pair", "vocab"])
def test_reductions(normalize, reduction, device):
    B, d, V = 5, 40, 1000
    h, w = make_head(B, d, V, torch.float32, device, train_w=True, seed=3)
    a, b = answer_ids(B, V, device, seed=3)
    t = mixed_targets(B, device, seed=3)
    up = None
    if reduction == "none":
        up = torch.linspace(-1.0, 2.0, B, device=device)
    loss, gh, gw = loss_and_grads(_fused(normalize, a, b, t, reduction), h, w, up)
    ref, rgh, rgw = loss_and_grads(_ref(normalize, a, b, t, reduction), h, w, up)
    assert loss.shape == (() if reduction != "none" else (B,))
    assert_close(loss, ref, torch.float32, "loss")
    assert_close(gh, rgh, torch.float32, "grad hidden")
    assert_close(gw, rgw, torch.float32, "grad weight")


@pytest.mark.parametrize("normalize", ["pair", "vocab"])
def test_gradients_match_finite_differences(normalize, device):
    """Kernel gradients (float32) against float64 central differences of the reference."""
    B, d, V = 3, 20, 1000
    h, w = make_head(B, d, V, torch.float32, device, train_w=True, seed=5)
    a, b = answer_ids(B, V, device, seed=5)
    t = mixed_targets(B, device, seed=5)
    _, gh, gw = loss_and_grads(_fused(normalize, a, b, t), h, w)
    g = torch.Generator().manual_seed(6)
    u_h = torch.randn(h.shape, generator=g).to(device)
    u_w = torch.zeros(w.shape)
    rows = torch.cat([a, b, torch.randint(0, V, (8,), generator=g).to(device)]).cpu()
    u_w[rows] = torch.randn(len(rows), d, generator=g)  # answer rows and a few others
    u_w = u_w.to(device)
    w64 = w.detach().double()
    h64 = h.detach().double()

    def f_h(x):
        return pair_loss_reference(x, w64, a, b, t, normalize=normalize).item()

    def f_w(x):
        return pair_loss_reference(h64, x, a, b, t, normalize=normalize).item()

    fd_h = directional_fd(f_h, h, u_h)
    fd_w = directional_fd(f_w, w, u_w)
    an_h = float((gh.double() * u_h.double()).sum())
    an_w = float((gw.double() * u_w.double()).sum())
    assert an_h == pytest.approx(fd_h, rel=FD_RTOL, abs=1e-7)
    assert an_w == pytest.approx(fd_w, rel=FD_RTOL, abs=1e-7)


@pytest.mark.parametrize("normalize", ["pair", "vocab"])
def test_reference_gradcheck(normalize):
    """The float64 reference itself passes torch.autograd.gradcheck."""
    B, d, V = 3, 5, 11
    g = torch.Generator().manual_seed(7)
    h = torch.randn(B, d, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(V, d, generator=g, dtype=torch.float64, requires_grad=True)
    a = torch.tensor([0, 3, 10])
    b = torch.tensor([1, 2, 9])
    t = torch.tensor([0.0, 1.0, 0.3], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x, y: pair_loss_reference(x, y, a, b, t, normalize=normalize), (h, w), fast_mode=True
    )


@pytest.mark.parametrize("normalize", ["pair", "vocab"])
def test_known_values(normalize):
    """A hand-computed case: z_a = 2, z_b = 0, t = 0.75."""
    h = torch.tensor([[1.0, 0.0]])
    w = torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    loss = pair_loss(h, w, 0, 1, 0.75, normalize=normalize)
    if normalize == "pair":
        q = torch.sigmoid(torch.tensor(2.0))
        expect = -(0.75 * torch.log(q) + 0.25 * torch.log(1 - q))
    else:
        lse = torch.logsumexp(torch.tensor([2.0, 0.0, 0.0]), 0)
        expect = lse - 0.75 * 2.0
    assert float(loss) == pytest.approx(float(expect), rel=1e-6)


@pytest.mark.parametrize("normalize", ["pair", "vocab"])
def test_extreme_logits_stay_finite(normalize, device):
    """Logits of size ~1e3 (hard, confidently wrong targets) neither overflow nor NaN."""
    B, d, V = 4, 16, 1000
    h, w = make_head(B, d, V, torch.float32, device, train_w=True, seed=9, logit_scale=300.0)
    a, b = answer_ids(B, V, device, seed=9)
    t = torch.tensor([0.0, 1.0, 0.0, 1.0], device=device)
    loss, gh, gw = loss_and_grads(_fused(normalize, a, b, t), h, w)
    ref, rgh, rgw = loss_and_grads(_ref(normalize, a, b, t), h, w)
    assert torch.isfinite(loss) and torch.isfinite(gh).all() and torch.isfinite(gw).all()
    assert_close(loss, ref, torch.float32, "loss")
    assert_close(gh, rgh, torch.float32, "grad hidden")
    assert_close(gw, rgw, torch.float32, "grad weight")


def test_python_int_ids_and_scalar_target(device):
    B, d, V = 4, 16, 1000
    h, w = make_head(B, d, V, torch.float32, device)
    loss = pair_loss(h, w, 17, 923, 0.8, normalize="vocab", backend="triton")
    ref = pair_loss_reference(h, w, torch.full((B,), 17), torch.full((B,), 923),
                              torch.full((B,), 0.8), normalize="vocab")
    assert_close(loss, ref, torch.float32, "loss")


def test_strided_hidden(device):
    """A hidden slice with a row stride larger than d (e.g. gathered from a wider buffer)."""
    B, d, V = 3, 24, 1000
    big, w = make_head(B, 2 * d, V, torch.float32, device, train_w=True)
    a, b = answer_ids(B, V, device)
    t = mixed_targets(B, device)
    h = big[:, :d]
    assert h.stride(0) == 2 * d
    for normalize in ("pair", "vocab"):
        loss = pair_loss(h, w[:, :d], a, b, t, normalize=normalize, backend="triton")
        ref = pair_loss_reference(h, w[:, :d], a, b, t, normalize=normalize)
        assert_close(loss, ref, torch.float32, f"loss ({normalize})")


def test_only_weight_trainable(device):
    B, d, V = 3, 16, 1000
    h, w = make_head(B, d, V, torch.float32, device, train_w=True)
    h = h.detach()
    a, b = answer_ids(B, V, device)
    t = mixed_targets(B, device)
    for normalize in ("pair", "vocab"):
        w.grad = None
        pair_loss(h, w, a, b, t, normalize=normalize, backend="triton").backward()
        got = w.grad.clone()
        w.grad = None
        pair_loss_reference(h, w, a, b, t, normalize=normalize).backward()
        assert_close(got, w.grad, torch.float32, f"grad weight ({normalize})")


def test_no_grad_forward(device):
    h, w = make_head(3, 16, 1000, torch.float32, device)
    with torch.no_grad():
        loss = pair_loss(h, w, 1, 2, 0.5, normalize="vocab", backend="triton")
    assert not loss.requires_grad and torch.isfinite(loss)


def test_auto_backend_follows_the_interpreter_switch(monkeypatch, device):
    """Without TRITON_INTERPRET=1, CPU tensors take the torch path ("auto") or are refused."""
    if device != "cpu":
        pytest.skip("the interpreter switch is a CPU-only concern")
    h, w = make_head(3, 16, 1000, torch.float32, device)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert _backend.resolve_backend("auto", h) == "torch"
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1 is not set"):
        pair_loss(h, w, 1, 2, 0.5, backend="triton")
    ref = pair_loss(h, w, 1, 2, 0.5, normalize="vocab")  # auto -> torch reference
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert _backend.resolve_backend("auto", h) == "triton"
    got = pair_loss(h, w, 1, 2, 0.5, normalize="vocab")
    assert_close(got, ref, torch.float32, "loss")


def test_float64_uses_reference():
    h, w = make_head(2, 8, 50, torch.float64, "cpu")
    loss = pair_loss(h, w, 1, 2, 0.5)
    assert loss.dtype == torch.float64
    with pytest.raises(ValueError, match="float64 is not supported"):
        pair_loss(h, w, 1, 2, 0.5, backend="triton")


# --------------------------------------------------------------------------- #
# bad input
# --------------------------------------------------------------------------- #
V_ERR = 49152


@pytest.fixture
def head():
    return make_head(4, 8, V_ERR, torch.float32, "cpu")


@pytest.mark.parametrize(
    "a, b, t, match",
    [
        ([1, 2, 3, 50000], 5, 0.5, r"a_ids\[3\] = 50000 is outside \[0, V=49152\)"),
        (1, [5, -1, 5, 5], 0.5, r"b_ids\[1\] = -1 is outside \[0, V=49152\)"),
        ([1, 2, 17, 4], [5, 6, 17, 4], 0.5, r"a_ids\[2\] == b_ids\[2\] = 17: the two answer tokens must differ"),
        (1, 2, [1.5, 0.5, 0.5, 0.5], r"target\[0\] = 1.5 is outside \[0, 1\]"),
        (1, 2, [0.5, 0.5, -0.1, 0.5], r"target\[2\] = -0.1 is outside \[0, 1\]"),
        (1, 2, [0.5, float("nan"), 0.5, 0.5], r"target\[1\] = nan is not a finite number"),
        (1, 2, [0.5, 0.5], r"target must have shape \(B,\) = \(4,\)"),
        ([1.0, 2.0, 3.0, 4.0], 5, 0.5, r"a_ids must hold integer token ids"),
        (torch.tensor([[1, 2, 3, 4]]), 5, 0.5, r"a_ids must have shape \(B,\) = \(4,\)"),
    ],
)
@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_bad_ids_and_targets(head, a, b, t, match, backend):
    h, w = head
    with pytest.raises(ValueError, match=match):
        pair_loss(h, w, a, b, t, normalize="vocab", backend=backend)
    with pytest.raises(ValueError, match=match):
        pair_loss_reference(h, w, a, b, t, normalize="vocab")


def test_bad_shapes_and_options(head):
    h, w = head
    with pytest.raises(ValueError, match=r"weight must have d=8 columns to match hidden"):
        pair_loss(h, w[:, :5], 1, 2, 0.5)
    with pytest.raises(ValueError, match=r"hidden must be 2-D \(B, d\)"):
        pair_loss(h[None], w, 1, 2, 0.5)
    with pytest.raises(ValueError, match=r"same dtype"):
        pair_loss(h.half(), w, 1, 2, 0.5)
    with pytest.raises(ValueError, match=r"batch is empty"):
        pair_loss(h[:0], w, 1, 2, 0.5)
    with pytest.raises(ValueError, match=r"normalize must be one of 'pair', 'vocab', got 'scores'"):
        pair_loss(h, w, 1, 2, 0.5, normalize="scores")
    with pytest.raises(ValueError, match=r"reduction must be one of"):
        pair_loss(h, w, 1, 2, 0.5, reduction="avg")
    with pytest.raises(ValueError, match=r"backend must be one of"):
        pair_loss(h, w, 1, 2, 0.5, backend="cuda")


def test_bfloat16_needs_gpu(device):
    if HAS_CUDA:
        pytest.skip("bfloat16 runs on the GPU here")
    h, w = make_head(2, 16, 100, torch.bfloat16, "cpu")
    with pytest.raises(ValueError, match="bfloat16"):
        pair_loss(h, w, 1, 2, 0.5, backend="triton")
    loss = pair_loss(h, w, 1, 2, 0.5)  # auto falls back to the reference
    assert torch.isfinite(loss)


# --------------------------------------------------------------------------- #
# GPU only
# --------------------------------------------------------------------------- #
@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("normalize", ["pair", "vocab"])
@pytest.mark.parametrize("train_w", [False, True])
@pytest.mark.parametrize("B, d, V", [(1, 200, 32003), (64, 512, 49152), (97, 264, 32000)])
def test_bfloat16_on_gpu(normalize, train_w, B, d, V):
    h, w = make_head(B, d, V, torch.bfloat16, "cuda", train_w=train_w, seed=11)
    a, b = answer_ids(B, V, "cuda", seed=11)
    t = mixed_targets(B, "cuda", seed=11)
    loss, gh, gw = loss_and_grads(_fused(normalize, a, b, t), h, w)
    ref, rgh, rgw = loss_and_grads(_ref(normalize, a, b, t), h, w)
    assert_close(loss, ref, torch.bfloat16, "loss")
    assert_close(gh, rgh, torch.bfloat16, "grad hidden")
    if train_w:
        assert_close(gw, rgw, torch.bfloat16, "grad weight")
