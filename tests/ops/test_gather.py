"""pycomp.ops.gather_answer_hidden on a tiny randomly initialised Llama (no downloads)."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from head_loss_cases import assert_close  # noqa: E402

from pycomp.ops import (  # noqa: E402
    answer_positions,
    gather_answer_hidden,
    lm_head_weight,
    pair_loss,
    pair_loss_reference,
    score_loss,
)

V, T = 300, 9


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=V, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    m = transformers.LlamaForCausalLM(cfg).eval()
    return m


def _batch(padding):
    g = torch.Generator().manual_seed(1)
    lengths = [9, 4, 7, 1]
    ids = torch.randint(3, V, (len(lengths), T), generator=g)
    mask = torch.zeros(len(lengths), T, dtype=torch.long)
    for r, n in enumerate(lengths):
        if padding == "right":
            mask[r, :n] = 1
        else:
            mask[r, T - n:] = 1
    ids = ids.masked_fill(mask == 0, 0)
    return ids, mask, lengths


@pytest.mark.parametrize("padding", ["right", "left"])
def test_answer_positions(padding):
    _, mask, lengths = _batch(padding)
    expect = [n - 1 for n in lengths] if padding == "right" else [T - 1] * len(lengths)
    assert answer_positions(mask).tolist() == expect


@pytest.mark.parametrize("padding", ["right", "left"])
def test_matches_full_logits(model, padding):
    ids, mask, _ = _batch(padding)
    with torch.no_grad():
        hidden, weight = gather_answer_hidden(model, ids, mask)
        logits = model(input_ids=ids, attention_mask=mask).logits
    pos = answer_positions(mask)
    expect = logits[torch.arange(ids.shape[0]), pos]
    assert hidden.shape == (ids.shape[0], 48)
    assert weight is model.lm_head.weight
    assert_close(hidden @ weight.T, expect, torch.float32, "answer logits")


def test_fused_loss_backpropagates_like_full_logits(model):
    """pair_loss on gathered hidden states gives the same loss and model gradients as full logits."""
    ids, mask, _ = _batch("left")
    a, b = 5, 6
    t = torch.tensor([1.0, 0.0, 0.5, 0.8])
    probe = model.model.layers[0].mlp.up_proj.weight

    model.zero_grad()
    hidden, weight = gather_answer_hidden(model, ids, mask)
    fused = pair_loss(hidden, weight, a, b, t, normalize="vocab")
    fused.backward()
    g_fused = probe.grad.clone()
    gw_fused = model.lm_head.weight.grad.clone()

    model.zero_grad()
    logits = model(input_ids=ids, attention_mask=mask).logits[:, -1]
    logp = torch.log_softmax(logits.float(), dim=-1)
    full = -(t * logp[:, a] + (1 - t) * logp[:, b]).mean()
    full.backward()
    assert_close(fused.detach(), full.detach(), torch.float32, "loss")
    assert_close(g_fused, probe.grad, torch.float32, "grad of a decoder weight")
    assert_close(gw_fused, model.lm_head.weight.grad, torch.float32, "grad of the LM head")
    model.zero_grad()


def test_score_loss_on_gathered_hidden(model):
    ids, mask, _ = _batch("right")
    hidden, weight = gather_answer_hidden(model, ids, mask)
    loss = score_loss(hidden, weight, [10, 11, 12], [1.0, 2.0, 3.0],
                      torch.tensor([1.0, 2.0, 3.0, 2.5]))
    assert torch.isfinite(loss)


def test_peft_wrapped_model(model):
    peft = pytest.importorskip("peft")
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    import copy

    wrapped = peft.get_peft_model(copy.deepcopy(model), cfg)
    ids, mask, _ = _batch("right")
    hidden, weight = gather_answer_hidden(wrapped, ids, mask)
    with torch.no_grad():
        logits = wrapped(input_ids=ids, attention_mask=mask).logits
    pos = answer_positions(mask)
    assert_close((hidden @ weight.T).detach(), logits[torch.arange(4), pos], torch.float32, "logits")
    loss = pair_loss_reference(hidden, weight, 5, 6, 0.5)
    loss.backward()
    lora = [p for n, p in wrapped.named_parameters() if "lora_" in n]
    assert lora and all(p.grad is not None for p in lora)


def test_explicit_positions(model):
    ids, mask, _ = _batch("right")
    pos = torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        hidden, weight = gather_answer_hidden(model, ids, mask, positions=pos)
        logits = model(input_ids=ids, attention_mask=mask).logits
    assert_close(hidden @ weight.T, logits[torch.arange(4), pos], torch.float32, "logits")


def test_errors(model):
    ids, mask, _ = _batch("right")
    bad = mask.clone()
    bad[2] = 0
    with pytest.raises(ValueError, match=r"attention_mask\[2\] has no real token"):
        gather_answer_hidden(model, ids, bad)
    with pytest.raises(ValueError, match=r"positions\[1\] = 9 is outside \[0, T=9\)"):
        gather_answer_hidden(model, ids, mask, positions=torch.tensor([0, 9, 0, 0]))
    with pytest.raises(ValueError, match=r"input_ids must be 2-D"):
        gather_answer_hidden(model, ids[0], None)
    model.config.final_logit_softcapping = 30.0
    try:
        with pytest.raises(ValueError, match=r"final_logit_softcapping = 30.0"):
            lm_head_weight(model)
    finally:
        model.config.final_logit_softcapping = None
