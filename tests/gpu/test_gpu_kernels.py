"""The fused head-loss kernels (Triton) on a CUDA GPU against their torch references.

float32, float16 and bfloat16; forward and backward (hidden, and the head when
it trains); :func:`pycomp.ops.pair_loss` (``normalize="pair"`` / ``"vocab"``)
and :func:`pycomp.ops.score_loss` (``"scores"`` / ``"vocab"``); at LM-head
sizes (Llama-3's 128256-token vocabulary) and odd ones. The reference is
:mod:`pycomp.ops.reference` on the same (rounded) inputs in float32, with the
tolerances of the CPU kernel tests (``tests/ops/head_loss_cases.py``). Also
checked: ``backend="auto"`` picks the kernels on CUDA, and the kernels never
hold the (B, V) logits (peak memory).
"""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from head_loss_cases import answer_ids, assert_close, loss_and_grads, mixed_targets  # noqa: E402

from pycomp.ops import (  # noqa: E402
    pair_loss,
    pair_loss_reference,
    resolve_backend,
    score_loss,
    score_loss_reference,
)

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device seen by torch")]

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# (B, d, V, head trains)
SHAPES = [
    (64, 2048, 128256, False),  # Llama-3 vocabulary, frozen head (QLoRA)
    (33, 1000, 50257, True),  # odd sizes, GPT-2 vocabulary, trainable head
    (1, 4096, 32000, True),  # one row, wide hidden state
]
OPS = ["pair-pair", "pair-vocab", "score-scores", "score-vocab"]


def cuda_head(B, d, V, dtype, train_w, seed=0, logit_scale=3.0):
    """Leaf ``hidden`` (B, d) and ``weight`` (V, d) made on the GPU, logits of spread ~logit_scale."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    hidden = torch.randn(B, d, generator=g, device="cuda").to(dtype).requires_grad_(True)
    weight = (torch.randn(V, d, generator=g, device="cuda") * (logit_scale / d**0.5)).to(dtype)
    return hidden, weight.requires_grad_(train_w)


def score_case(B, V, seed=0):
    """Ten score tokens scattered over the vocabulary (both ends included), values 1..10, targets."""
    ids = [V - 1, 0, 17, V // 2, V // 3, 16, 18, 19, V - 2, 21]
    vals = [float(k) for k in range(1, 11)]
    g = torch.Generator().manual_seed(seed)
    y = 1.0 + 9.0 * (1.2 * torch.rand(B, generator=g) - 0.1)
    return ids, vals, y.cuda()


def losses(op, B, V, reduction="mean", seed=0):
    """(fused, reference) loss functions of (hidden, weight) for one op."""
    family, normalize = op.split("-")
    if family == "pair":
        a, b = answer_ids(B, V, "cuda", seed=seed)
        t = mixed_targets(B, "cuda", seed=seed)
        return (lambda h, w: pair_loss(h, w, a, b, t, normalize=normalize, reduction=reduction, backend="triton"),
                lambda h, w: pair_loss_reference(h, w, a, b, t, normalize=normalize, reduction=reduction))
    ids, vals, y = score_case(B, V, seed=seed)
    return (lambda h, w: score_loss(h, w, ids, vals, y, normalize=normalize, reduction=reduction, backend="triton"),
            lambda h, w: score_loss_reference(h, w, ids, vals, y, normalize=normalize, reduction=reduction))


def _shape_id(s):
    return "B{}-d{}-V{}-{}".format(*s[:3], "trainW" if s[3] else "frozenW")


@pytest.mark.parametrize("shape", SHAPES, ids=_shape_id)
@pytest.mark.parametrize("dtype", list(DTYPES), ids=str)
@pytest.mark.parametrize("op", OPS)
def test_kernels_match_reference(op, dtype, shape):
    B, d, V, train_w = shape
    dt = DTYPES[dtype]
    h, w = cuda_head(B, d, V, dt, train_w)
    fused, ref = losses(op, B, V)
    loss, gh, gw = loss_and_grads(fused, h, w)
    rloss, rgh, rgw = loss_and_grads(ref, h, w)
    assert loss.dtype == torch.float32 and loss.is_cuda
    assert gh.dtype == dt
    assert_close(loss, rloss, dt, "loss")
    assert_close(gh, rgh, dt, "grad hidden")
    if train_w:
        assert gw.dtype == dt
        assert_close(gw, rgw, dt, "grad weight")
    else:
        assert gw is None


@pytest.mark.parametrize("dtype", list(DTYPES), ids=str)
@pytest.mark.parametrize("op", ["pair-vocab", "score-vocab", "pair-pair"])
def test_per_row_losses_with_upstream_gradient(op, dtype):
    B, d, V = 37, 776, 100003
    dt = DTYPES[dtype]
    h, w = cuda_head(B, d, V, dt, train_w=True, seed=5)
    fused, ref = losses(op, B, V, reduction="none", seed=5)
    up = torch.linspace(-1.0, 2.0, B, device="cuda")
    rows, gh, gw = loss_and_grads(fused, h, w, up)
    rrows, rgh, rgw = loss_and_grads(ref, h, w, up)
    assert rows.shape == (B,)
    assert_close(rows, rrows, dt, "per-row losses")
    assert_close(gh, rgh, dt, "grad hidden")
    assert_close(gw, rgw, dt, "grad weight")


@pytest.mark.parametrize("dtype", list(DTYPES), ids=str)
def test_auto_backend_is_the_kernel_on_cuda(dtype):
    h = torch.zeros(2, 8, device="cuda", dtype=DTYPES[dtype])
    assert resolve_backend("auto", h) == "triton"


@pytest.mark.parametrize("op", ["pair-vocab", "score-vocab"])
def test_kernels_never_hold_the_logits(op):
    """Peak extra memory of forward + backward stays far below the (B, V) float32 logits."""
    B, d, V = 256, 2048, 128256
    h, w = cuda_head(B, d, V, torch.bfloat16, train_w=False, seed=2)
    fused, ref = losses(op, B, V, seed=2)
    logits_bytes = B * V * 4

    def peak_extra(fn):
        h.grad = None
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn(h, w).backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base

    peak_extra(fused)  # the first call compiles the kernels
    fused_peak, ref_peak = peak_extra(fused), peak_extra(ref)
    assert ref_peak >= logits_bytes, f"the reference should form the logits: peak {ref_peak} < {logits_bytes}"
    assert fused_peak < logits_bytes / 4, (
        f"fused {op}: peak extra memory {fused_peak / 2**20:.1f} MiB, the (B, V) float32 logits are "
        f"{logits_bytes / 2**20:.1f} MiB")
