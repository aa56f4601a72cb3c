"""Judge fine-tuning on the real SmolLM2-135M (CPU): objectives learn, adapters load, gradients match."""
import copy
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from train_cases import make_config  # noqa: E402

from pycomp.train import prepare_training, train_judge  # noqa: E402
from pycomp.train.objectives import PairObjective, RankObjective, ScoreObjective  # noqa: E402

pytestmark = pytest.mark.llm


def _loss_on(run, dataset):
    """The objective's loss on a whole dataset in one batch (no grad, eval mode)."""
    run.model.eval()
    with torch.no_grad():
        loss, _ = run.objective(run.model, run.collator(dataset), step=10**9)
    return float(loss)


@pytest.mark.parametrize("objective", ["soft", "hard", "rail", "rank"])
def test_a_few_steps_lower_the_loss(objective, fresh_base, tiny_items, tmp_path):
    """Three full-batch steps lower the objective on the (small) training set."""
    one_group = tiny_items[tiny_items["group"] == "g0"]
    cfg = make_config(tmp_path, objective=objective, max_steps=3, learning_rate=5e-4,
                      per_device_train_batch_size=6,
                      activation_checkpointing=objective == "hard")  # checkpointing through the decoder call
    run = prepare_training(one_group, cfg, base=fresh_base, echo=lambda s: None)
    assert run.train_dataset
    before = _loss_on(run, run.train_dataset)
    run.trainer().train()
    after = _loss_on(run, run.train_dataset)
    assert after < before, f"{objective}: loss {before:.4f} -> {after:.4f}"


def test_pair_prompts_and_tokens_are_the_judges(fresh_base, tiny_items, tmp_path):
    from pycomp.judge.prompts import load_template
    from pycomp.judge.run import PromptSettings, build_prompts
    from pycomp.judge.transformers_backend import TransformersBackend

    run = prepare_training(tiny_items, make_config(tmp_path), base=fresh_base, echo=lambda s: None)
    backend = TransformersBackend(fresh_base[0], fresh_base[1], fresh_base[2])
    texts = tiny_items["text"].tolist()[:3]
    judge_prompts = build_prompts(backend, load_template(), texts, np.array([[0, 1]]),
                                  PromptSettings(attribute="more positive", noun="review"))
    tok = fresh_base[1]
    train_ids = [ex["input_ids"] for ex in run.train_dataset]
    for prompt in judge_prompts:
        assert tok.encode(prompt, add_special_tokens=False) in train_ids
    for token, variants in zip(run.answer.ids, backend.label_ids):
        assert token in variants  # one of the judge's own answer tokens
    # the soft targets: A better -> t > 0.5 in one order, 1 - t in the other
    targets = sorted(ex["target"] for ex in run.train_dataset)
    np.testing.assert_allclose(targets, sorted(1 - t for t in targets))


def test_rail_with_rationales_runs_both_stages(fresh_base, tiny_items, tmp_path):
    items = tiny_items.assign(why=["It is negative.", "It is neutral.", "It is glowing."] * 2)
    cfg = make_config(tmp_path, objective="rail", rationale_field="why", rationale_steps=2, max_steps=4)
    run = prepare_training(items, cfg, base=fresh_base, echo=lambda s: None)
    assert all("labels" in ex for ex in run.train_dataset)
    trainer = run.trainer()
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert [("rationale_ce" in h) for h in logs] == [True, True, False, False]
    assert all("score_abs_error" in h for h in logs[2:])


def test_saved_adapter_loads_in_the_judge_and_moves_its_probabilities(base_model, tiny_items, tmp_path):
    """`pycomp train` writes an adapter; the judge (`pycomp rank --adapter`) loads it; p moves towards p*."""
    from typer.testing import CliRunner

    from pycomp.cli import app
    from pycomp.judge.prompts import load_template
    from pycomp.judge.run import PromptSettings, build_prompts
    from pycomp.judge.transformers_backend import TransformersBackend
    from pycomp.train.data import pair_examples

    items = tmp_path / "items.jsonl"
    tiny_items.to_json(items, orient="records", lines=True)
    out = tmp_path / "adapter"
    result = CliRunner().invoke(app, [
        "train", str(items), "--gold-field", "gold", "--group-field", "group", "--id-field", "id",
        "--noun", "review", "--attribute", "more positive", "--all-pairs", "--objective", "soft",
        "--max-steps", "3", "--batch-size", "12", "--lr", "5e-4", "--lora-r", "4", "--lora-alpha", "8", "--lora-dropout", "0", "--device", "cpu",
        "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "adapter_config.json").is_file() and (out / "pycomp-train.json").is_file()
    summary = json.loads((out / "pycomp-train.json").read_text())
    assert summary["train"]["global_step"] == 3 and (out / "train_log.jsonl").is_file()

    base = TransformersBackend(base_model[0], base_model[1], base_model[2])
    tuned = TransformersBackend.load("smollm2-135m", adapter=out, device="cpu")
    assert tuned.fingerprint()["adapter"] is not None
    texts, gold = tiny_items["text"].tolist(), tiny_items["gold"].to_numpy()
    ex = pair_examples(gold, tiny_items["group"].to_numpy(), all_pairs=True, scale=float(np.std(gold)))
    prompts = build_prompts(base, load_template(), texts, ex.pairs,
                            PromptSettings(attribute="more positive", noun="review"))
    p0, p1 = base.label_logprobs(prompts).p_a, tuned.label_logprobs(prompts).p_a
    assert np.max(np.abs(p1 - p0)) > 1e-3

    def bce(p):  # what the soft objective trains, read from the judge's own probabilities
        return float(np.mean(-(ex.target * np.log(p) + (1 - ex.target) * np.log(1 - p))))

    assert bce(p1) < bce(p0)


def _lora_model(fresh_base):
    from pycomp.train.model import add_lora

    model = add_lora(fresh_base[0], r=4, alpha=8, dropout=0.0, seed=0)
    with torch.no_grad():  # B = 0 at init would zero the gradients of A
        g = torch.Generator().manual_seed(1)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    model.eval()
    return model


def _grads(model, objective, batch):
    model.zero_grad()
    loss, _ = objective(model, batch)
    loss.backward()
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    return loss.detach(), torch.cat([dict(model.named_parameters())[n].grad.flatten() for n in names])


def _batch(tokenizer, texts, with_target=True):
    from pycomp.train.collator import PairCollator

    feats = [{"input_ids": tokenizer.encode(t, add_special_tokens=False), "target": 0.3 + 0.2 * k}
             for k, t in enumerate(texts)]
    return PairCollator(tokenizer.pad_token_id)(feats)


def _triton_here(normalize: str) -> bool:
    """Whether to check the Triton kernels inside the (CPU) model too: under the interpreter, only the
    two-row pair loss (the vocabulary-streaming kernels take minutes there; tests/ops checks them)."""
    from pycomp.ops import triton_unavailable_reason

    if torch.cuda.is_available():
        return False  # the model runs on CPU in these tests
    return triton_unavailable_reason(torch.empty(0)) is None and normalize == "pair"


TEXTS = ["Review A: great. Review B: poor. Which is better? The better one is review",
         "Short: which is better? review",
         "A long prompt with several more words in it, so that the batch is left padded: review"]


@pytest.mark.parametrize("normalize", ["pair", "vocab"])
def test_pair_gradients_through_ops_match_the_full_logits_reference(fresh_base, normalize):
    """LoRA gradients of the pycomp.ops pair loss (torch reference; Triton interpreter where it runs)
    equal those of the plain Hugging Face full-logits loss, inside the real model."""
    model = _lora_model(fresh_base)
    batch = _batch(fresh_base[1], TEXTS)
    a, b = 330, 389
    ref_loss, ref = _grads(model, PairObjective(a, b, normalize, backend="hf"), batch)
    backends = ["torch"] + (["triton"] if _triton_here(normalize) else [])
    for backend in backends:
        loss, g = _grads(model, PairObjective(a, b, normalize, backend=backend), batch)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6, msg=f"{backend} loss")
        # fp32 end to end, through 30 layers; the vocabulary softmax sums 49k terms in another order
        rel = float((g - ref).norm() / ref.norm())
        assert rel < 5e-4, f"{backend}: relative gradient error {rel:.2e}"
        assert float(ref.norm()) > 0


def test_score_gradients_through_ops_match_the_full_logits_reference(fresh_base):
    model = _lora_model(fresh_base)
    batch = _batch(fresh_base[1], TEXTS)
    batch["target"] = torch.tensor([1.0, 3.5, 5.0])
    ids, values = [33, 34, 35, 36, 37], [1.0, 2.0, 3.0, 4.0, 5.0]
    ref_loss, ref = _grads(model, ScoreObjective(ids, values, "vocab", backend="hf"), batch)
    backends = ["torch"] + (["triton"] if _triton_here("vocab") else [])
    for backend in backends:
        loss, g = _grads(model, ScoreObjective(ids, values, "vocab", backend=backend), batch)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
        assert float((g - ref).norm() / ref.norm()) < 5e-4, backend


def test_rank_logprobs_match_the_models_own_loss(fresh_base):
    """The fused linear cross-entropy log-probabilities equal the model's full-logits ones."""
    from pycomp.train.collator import RankCollator

    model = _lora_model(fresh_base)
    tok = fresh_base[1]
    prompt = tok.encode("Write a review.", add_special_tokens=False)
    seqs = [prompt + tok.encode(t, add_special_tokens=False) for t in (" Great film.", " Bad.", " It was fine, mostly.")]
    batch = RankCollator(tok.pad_token_id)([{"sequences": seqs, "prompt_lengths": [len(prompt)] * 3,
                                             "scores": [5.0, 1.0, 3.0]}])
    with torch.no_grad():
        r = RankObjective().scores(model, batch)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       position_ids=batch["position_ids"]).logits
        logp = torch.log_softmax(logits[:, :-1].float(), -1)
        lab = batch["labels"][:, 1:]
        keep = lab != -100
        tok_lp = logp.gather(-1, lab.clamp(min=0)[..., None])[..., 0] * keep
        expect = tok_lp.sum(1) / keep.sum(1)
    torch.testing.assert_close(r, expect, rtol=1e-5, atol=1e-5)


def test_resume_continues_from_the_last_checkpoint(base_model, tiny_items, tmp_path):
    from pycomp.train.data import TrainingDataError

    def fresh():
        return copy.deepcopy(base_model[0]), base_model[1], dict(base_model[2])

    cfg = make_config(tmp_path, max_steps=2, save_steps=1)
    first = train_judge(tiny_items, cfg, base=fresh(), echo=lambda s: None)
    assert first["train"]["global_step"] == 2 and first["resumed_from"] is None
    cfg = make_config(tmp_path, max_steps=3, save_steps=1)
    second = train_judge(tiny_items, cfg, base=fresh(), echo=lambda s: None)
    assert second["resumed_from"].endswith("checkpoint-2")
    assert second["train"]["global_step"] == 3
    with pytest.raises(TrainingDataError, match="gamma"):
        train_judge(tiny_items, make_config(tmp_path, max_steps=4, gamma=2.0), base=fresh(), echo=lambda s: None)
