"""A LoRA training step through pycomp.ops on a CUDA GPU, on a tiny Llama made from a config.

The training objectives (:class:`pycomp.train.objectives.PairObjective`,
:class:`~pycomp.train.objectives.ScoreObjective`) run the decoder only and the
fused Triton head loss. They are checked against a loss written here plainly
from the Hugging Face full logits (``model(...).logits`` of the answer
position): the loss and the gradient of every LoRA parameter, in float32; in
bfloat16 against the same objective on the torch reference of pycomp.ops.
AdamW steps must lower the loss, and SGD steps must follow the reference
path step by step. No model is downloaded.
"""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
pytest.importorskip("transformers")
pytest.importorskip("peft")

import torch.nn.functional as F  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from pycomp.train.model import add_lora  # noqa: E402
from pycomp.train.objectives import PairObjective, ScoreObjective  # noqa: E402

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device seen by torch")]

DEVICE = "cuda"
V = 1003  # odd vocabulary: masked tails in the kernels
A_ID, B_ID = 7, V - 1
SCORE_IDS = [V - 2, 0, 11, 12, 500]
SCORE_VALUES = [1.0, 2.0, 3.0, 4.0, 5.0]
LENGTHS = [12, 9, 12, 5, 11, 12]  # left padding up to 12 tokens
OBJECTIVES = ["pair-pair", "pair-vocab", "score-scores", "score-vocab"]


def tiny_lora_model(dtype, seed=0):
    """A 2-layer Llama of hidden size 64 with LoRA (r=4) whose B matrices are non-zero."""
    cfg = LlamaConfig(vocab_size=V, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True)
    torch.manual_seed(seed)
    with torch.device(DEVICE):
        model = LlamaForCausalLM(cfg).to(dtype)
    model = add_lora(model, r=4, alpha=8, dropout=0.0, seed=seed)
    g = torch.Generator(device="cpu").manual_seed(seed + 1)
    with torch.no_grad():  # peft starts B at 0, which would leave every A without a gradient
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_((0.05 * torch.randn(p.shape, generator=g)).to(p))
    return model


def batch(kind, seed=0):
    """Left-padded prompts (the answer position is the last column), position ids and targets."""
    g = torch.Generator().manual_seed(seed)
    B, T = len(LENGTHS), max(LENGTHS)
    ids = torch.randint(1, V, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.long)
    for r, n in enumerate(LENGTHS):
        mask[r, T - n:] = 1
    ids = ids * mask
    if kind == "pair":
        target = torch.tensor([0.0, 1.0, 0.5, 0.2, 0.9, 0.7])
    else:
        target = torch.tensor([1.0, 5.0, 2.5, 3.0, 4.2, 1.7])
    return {"input_ids": ids.to(DEVICE), "attention_mask": mask.to(DEVICE),
            "position_ids": (mask.cumsum(1) - 1).clamp(min=0).to(DEVICE), "target": target.to(DEVICE)}


def objective(name, backend):
    kind, normalize = name.split("-")
    if kind == "pair":
        return PairObjective(A_ID, B_ID, normalize=normalize, backend=backend)
    return ScoreObjective(SCORE_IDS, SCORE_VALUES, normalize=normalize, backend=backend)


def full_logits_loss(model, bt, name):
    """The loss from the full Hugging Face logits, written plainly (no pycomp.ops)."""
    kind, normalize = name.split("-")
    z = model(input_ids=bt["input_ids"], attention_mask=bt["attention_mask"],
              position_ids=bt["position_ids"]).logits[:, -1, :].float()
    t = bt["target"].float()
    if kind == "pair":
        if normalize == "pair":
            delta = z[:, A_ID] - z[:, B_ID]
            return (t * F.softplus(-delta) + (1 - t) * F.softplus(delta)).mean()
        logp = torch.log_softmax(z, dim=-1)
        return -(t * logp[:, A_ID] + (1 - t) * logp[:, B_ID]).mean()
    p = torch.softmax(z[:, SCORE_IDS], dim=-1) if normalize == "scores" else torch.softmax(z, dim=-1)[:, SCORE_IDS]
    y_hat = p @ torch.tensor(SCORE_VALUES, device=z.device)
    return ((y_hat - t) ** 2).mean()


def loss_and_lora_grads(model, fn):
    model.zero_grad(set_to_none=True)
    loss = fn()
    loss.backward()
    grads = {n: p.grad.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    return float(loss.detach()), grads


def assert_grads_close(got, ref, atol_frac, rtol, what):
    assert got.keys() == ref.keys() and len(ref) > 0
    for name, r in ref.items():
        scale = float(r.abs().max())
        assert scale > 0, f"{name}: zero reference gradient, the check would be vacuous"
        err = (got[name] - r).abs()
        bound = atol_frac * scale + rtol * r.abs()
        assert bool((err <= bound).all()), (
            f"{what}: {name}: max |grad - ref| = {float(err.max()):.3g}, max |ref| = {scale:.3g}")


@pytest.mark.parametrize("name", OBJECTIVES)
def test_fp32_step_matches_the_full_logits_loss(name):
    model = tiny_lora_model(torch.float32)
    model.train()
    bt = batch(name.split("-")[0])
    obj = objective(name, "triton")
    loss, grads = loss_and_lora_grads(model, lambda: obj(model, bt)[0])
    ref_loss, ref_grads = loss_and_lora_grads(model, lambda: full_logits_loss(model, bt, name))
    assert loss == pytest.approx(ref_loss, rel=1e-5, abs=1e-6)
    assert_grads_close(grads, ref_grads, 1e-4, 1e-4, f"{name} fp32")


@pytest.mark.parametrize("name", OBJECTIVES)
def test_bf16_step_matches_the_torch_reference(name):
    model = tiny_lora_model(torch.bfloat16)
    model.train()
    bt = batch(name.split("-")[0])
    loss, grads = loss_and_lora_grads(model, lambda: objective(name, "triton")(model, bt)[0])
    ref_loss, ref_grads = loss_and_lora_grads(model, lambda: objective(name, "torch")(model, bt)[0])
    assert loss == pytest.approx(ref_loss, rel=2e-2, abs=2e-2)
    assert_grads_close(grads, ref_grads, 5e-2, 5e-2, f"{name} bf16")


def train(name, backend, dtype, opt_cls, lr, steps=12):
    """Losses of ``steps`` optimizer steps on one batch, from the same initial model."""
    bt = batch(name.split("-")[0])
    model = tiny_lora_model(dtype, seed=3)
    model.train()
    obj = objective(name, backend)
    opt = opt_cls([p for p in model.parameters() if p.requires_grad], lr=lr)
    curve = []
    for _ in range(steps):
        loss = obj(model, bt)[0]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        curve.append(float(loss.detach()))
    return curve


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", ["pair-pair", "score-scores"])
def test_adamw_steps_lower_the_loss(name, dtype):
    curve = train(name, "triton", dtype, torch.optim.AdamW, lr=5e-2)
    assert curve[-1] < 0.8 * curve[0], f"{name}: the loss did not fall: {curve}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", OBJECTIVES)
def test_sgd_steps_follow_the_reference_path(name, dtype):
    """SGD (not Adam, which amplifies rounding-level differences in near-zero gradients) stays on the
    trajectory of the torch reference."""
    fused = train(name, "triton", dtype, torch.optim.SGD, lr=0.1)
    ref = train(name, "torch", dtype, torch.optim.SGD, lr=0.1)
    rel = 1e-3 if dtype == torch.float32 else 5e-2
    for step, (x, y) in enumerate(zip(fused, ref, strict=True)):
        assert x == pytest.approx(y, rel=rel, abs=rel), f"{name}: step {step}: {x} vs {y} (reference)"
