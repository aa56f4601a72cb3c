"""pycomp.ops.score_loss (Triton) against the torch reference and finite differences.

On a machine without CUDA the kernels run under TRITON_INTERPRET=1 (set in
tests/ops/conftest.py), in float32 and float16; bfloat16 runs on a GPU only.
"""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from head_loss_cases import (  # noqa: E402
    FD_RTOL,
    assert_close,
    directional_fd,
    loss_and_grads,
    make_head,
)

from pycomp.ops import score_loss, score_loss_reference  # noqa: E402

HAS_CUDA = torch.cuda.is_available()


def score_set(kind, V):
    """(ids, values) of a score-token set: digits 1-5, 1-10, or scattered words."""
    if kind == "1-5":
        return list(range(16, 21)), [1.0, 2.0, 3.0, 4.0, 5.0]
    if kind == "1-10":
        return list(range(16, 26)), [float(i) for i in range(1, 11)]
    # words ("poor", "fair", "good", ...) anywhere in the vocabulary, incl. both ends
    return [V - 1, 0, V // 2, 7, V - 2], [0.0, 0.25, 0.5, 0.75, 1.0]


def targets(B, values, device, seed=0):
    """Gold scores spanning and slightly exceeding the value range."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = min(values), max(values)
    y = lo + (hi - lo) * (1.2 * torch.rand(B, generator=g) - 0.1)
    y[0] = lo
    if B > 1:
        y[1] = hi
    return y.to(device)


SHAPES = [
    (1, 24, 1000, "1-5", True),
    (3, 48, 32003, "1-10", False),
    (17, 24, 49152, "words", True),
    (17, 136, 1000, "1-10", False),
]
DTYPES = [torch.float32, torch.float16]


def _ids(shape):
    B, d, V, kind, train_w = shape
    return f"B{B}-d{d}-V{V}-{kind}-{'trainW' if train_w else 'frozenW'}"


def _fused(normalize, ids, vals, y, reduction="mean"):
    return lambda h, w: score_loss(h, w, ids, vals, y, normalize=normalize, reduction=reduction,
                                   backend="triton")


def _ref(normalize, ids, vals, y, reduction="mean"):
    return lambda h, w: score_loss_reference(h, w, ids, vals, y, normalize=normalize,
                                             reduction=reduction)


@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("normalize", ["vocab", "scores"])
def test_matches_reference(normalize, dtype, shape, device):
    B, d, V, kind, train_w = shape
    # the score tokens get larger logits so that P(score) is not ~K/V under "vocab"
    h, w = make_head(B, d, V, dtype, device, train_w=train_w, seed=1)
    ids, vals = score_set(kind, V)
    with torch.no_grad():
        w[ids] = w[ids] * 2.0
    y = targets(B, vals, device)
    loss, gh, gw = loss_and_grads(_fused(normalize, ids, vals, y), h, w)
    ref, rgh, rgw = loss_and_grads(_ref(normalize, ids, vals, y), h, w)
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
@pytest.mark.parametrize("normalize", ["vocab", "scores"])
def test_reductions(normalize, reduction, device):
    B, d, V = 5, 40, 1000
    h, w = make_head(B, d, V, torch.float32, device, train_w=True, seed=3)
    ids, vals = score_set("1-5", V)
    y = targets(B, vals, device, seed=3)
    up = torch.linspace(-1.0, 2.0, B, device=device) if reduction == "none" else None
    loss, gh, gw = loss_and_grads(_fused(normalize, ids, vals, y, reduction), h, w, up)
    ref, rgh, rgw = loss_and_grads(_ref(normalize, ids, vals, y, reduction), h, w, up)
    assert loss.shape == (() if reduction != "none" else (B,))
    assert_close(loss, ref, torch.float32, "loss")
    assert_close(gh, rgh, torch.float32, "grad hidden")
    assert_close(gw, rgw, torch.float32, "grad weight")


@pytest.mark.parametrize("normalize", ["vocab", "scores"])
def test_gradients_match_finite_differences(normalize, device):
    """Kernel gradients (float32) against float64 central differences of the reference."""
    B, d, V = 3, 20, 1000
    h, w = make_head(B, d, V, torch.float32, device, train_w=True, seed=5)
    ids, vals = score_set("1-5", V)
    with torch.no_grad():
        w[ids] = w[ids] * 3.0
    y = targets(B, vals, device, seed=5)
    _, gh, gw = loss_and_grads(_fused(normalize, ids, vals, y), h, w)
    g = torch.Generator().manual_seed(6)
    u_h = torch.randn(h.shape, generator=g).to(device)
    u_w = torch.zeros(w.shape)
    rows = torch.tensor(ids + torch.randint(0, V, (8,), generator=g).tolist())
    u_w[rows] = torch.randn(len(rows), d, generator=g)
    u_w = u_w.to(device)
    h64, w64 = h.detach().double(), w.detach().double()

    def f_h(x):
        return score_loss_reference(x, w64, ids, vals, y, normalize=normalize).item()

    def f_w(x):
        return score_loss_reference(h64, x, ids, vals, y, normalize=normalize).item()

    fd_h = directional_fd(f_h, h, u_h)
    fd_w = directional_fd(f_w, w, u_w)
    assert float((gh.double() * u_h.double()).sum()) == pytest.approx(fd_h, rel=FD_RTOL, abs=1e-7)
    assert float((gw.double() * u_w.double()).sum()) == pytest.approx(fd_w, rel=FD_RTOL, abs=1e-7)


@pytest.mark.parametrize("normalize", ["vocab", "scores"])
def test_reference_gradcheck(normalize):
    B, d, V = 3, 5, 11
    g = torch.Generator().manual_seed(7)
    h = torch.randn(B, d, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(V, d, generator=g, dtype=torch.float64, requires_grad=True)
    ids, vals = [2, 5, 7], [1.0, 2.0, 3.0]
    y = torch.tensor([1.0, 2.5, 3.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x, z: score_loss_reference(x, z, ids, vals, y, normalize=normalize), (h, w), fast_mode=True
    )


def test_known_values():
    """Two score tokens with logits 0 and log 3 (P = 1/4, 3/4 over the two), values 1 and 2."""
    h = torch.tensor([[1.0]])
    w = torch.tensor([[0.0], [float(torch.log(torch.tensor(3.0)))], [0.0]])
    loss = score_loss(h, w, [0, 1], [1.0, 2.0], 1.5, normalize="scores")
    assert float(loss) == pytest.approx((1.75 - 1.5) ** 2, rel=1e-6)
    # over the vocabulary the third token takes mass 1/5: P = 1/5, 3/5
    loss = score_loss(h, w, [0, 1], [1.0, 2.0], 1.5, normalize="vocab")
    assert float(loss) == pytest.approx((1.4 - 1.5) ** 2, rel=1e-5)


def test_single_score_token_has_zero_gradient_under_scores(device):
    h, w = make_head(3, 16, 1000, torch.float32, device, train_w=True)
    loss, gh, gw = loss_and_grads(_fused("scores", [5], [2.0], torch.tensor([1.0, 2.0, 3.0]).to(device)), h, w)
    assert float(loss) == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    assert float(gh.abs().max()) == 0.0 and float(gw.abs().max()) == 0.0


def test_tensor_inputs_and_scalar_target(device):
    B, d, V = 4, 16, 1000
    h, w = make_head(B, d, V, torch.float32, device)
    ids = torch.tensor([3, 4, 5], device=device, dtype=torch.int32)
    vals = torch.tensor([1.0, 2.0, 3.0], device=device)
    loss = score_loss(h, w, ids, vals, 2.0, backend="triton")
    ref = score_loss_reference(h, w, [3, 4, 5], [1.0, 2.0, 3.0], torch.full((B,), 2.0))
    assert_close(loss, ref, torch.float32, "loss")


# --------------------------------------------------------------------------- #
# bad input
# --------------------------------------------------------------------------- #
@pytest.fixture
def head():
    return make_head(4, 8, 49152, torch.float32, "cpu")


@pytest.mark.parametrize(
    "ids, vals, y, match",
    [
        ([1, 2, 3, 17, 17], [1, 2, 3, 4, 5], 1.0, r"score_ids\[4\] == score_ids\[3\] = 17: score tokens must be distinct"),
        ([17, 2, 3, 4, 17], [1, 2, 3, 4, 5], 1.0, r"score_ids\[4\] == score_ids\[0\] = 17"),
        ([1, 2, 49152], [1, 2, 3], 1.0, r"score_ids\[2\] = 49152 is outside \[0, V=49152\)"),
        ([-3, 2, 5], [1, 2, 3], 1.0, r"score_ids\[0\] = -3 is outside \[0, V=49152\)"),
        ([1, 2, 3], [1, 2], 1.0, r"score_values must have shape \(K,\) = \(3,\)"),
        ([1, 2, 3], [1, float("inf"), 3], 1.0, r"score_values\[1\] = inf is not a finite number"),
        ([1, 2, 3], [1, 2, 3], [1.0, 2.0, float("nan"), 1.0], r"target\[2\] = nan is not a finite number"),
        ([1, 2, 3], [1, 2, 3], [1.0, 2.0], r"target must have shape \(B,\) = \(4,\)"),
        ([], [], 1.0, r"score_ids is empty"),
        ([[1, 2]], [1, 2], 1.0, r"score_ids must be 1-D"),
        ([1.0, 2.0], [1, 2], 1.0, r"score_ids must hold integer token ids"),
    ],
)
@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_bad_score_inputs(head, ids, vals, y, match, backend):
    h, w = head
    with pytest.raises(ValueError, match=match):
        score_loss(h, w, ids, vals, y, backend=backend)
    with pytest.raises(ValueError, match=match):
        score_loss_reference(h, w, ids, vals, y)


def test_bad_options(head):
    h, w = head
    with pytest.raises(ValueError, match=r"normalize must be one of 'vocab', 'scores', got 'pair'"):
        score_loss(h, w, [1, 2], [1, 2], 1.0, normalize="pair")
    with pytest.raises(ValueError, match=r"reduction must be one of"):
        score_loss(h, w, [1, 2], [1, 2], 1.0, reduction="batchmean")


# --------------------------------------------------------------------------- #
# GPU only
# --------------------------------------------------------------------------- #
@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("normalize", ["vocab", "scores"])
@pytest.mark.parametrize("train_w", [False, True])
@pytest.mark.parametrize("B, d, V, kind", [(1, 200, 32003, "1-5"), (64, 512, 49152, "words"),
                                           (97, 264, 32000, "1-10")])
def test_bfloat16_on_gpu(normalize, train_w, B, d, V, kind):
    h, w = make_head(B, d, V, torch.bfloat16, "cuda", train_w=train_w, seed=11)
    ids, vals = score_set(kind, V)
    with torch.no_grad():
        w[ids] = w[ids] * 2.0
    y = targets(B, vals, "cuda", seed=11)
    loss, gh, gw = loss_and_grads(_fused(normalize, ids, vals, y), h, w)
    ref, rgh, rgw = loss_and_grads(_ref(normalize, ids, vals, y), h, w)
    assert_close(loss, ref, torch.bfloat16, "loss")
    assert_close(gh, rgh, torch.bfloat16, "grad hidden")
    if train_w:
        assert_close(gw, rgw, torch.bfloat16, "grad weight")
