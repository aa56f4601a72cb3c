"""Pointwise scoring (`pycomp score`): the expected score over the score tokens, on the real model."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from pycomp.cli import app
from pycomp.judge.backend import LabelScores, check_label_ids, check_labels
from pycomp.judge.pointwise import ScaleError, expected_scores, parse_scale, point_prompts, score_items
from pycomp.judge.run import PromptSettings
from pycomp.judge.transformers_backend import TransformersBackend

SUMMEVAL = Path(__file__).resolve().parents[1] / "data" / "summeval_excerpt.jsonl"
SETTINGS = PromptSettings(attribute="more positive", noun="review")
ATOL = 2e-4  # float32 logits: batched / padded / shared-prefix passes differ from one plain pass by ~1e-5
runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


# ---- no model -------------------------------------------------------------------------------

def test_scale_parsing():
    assert parse_scale("1-5")[0] == ("1", "2", "3", "4", "5")
    labels, values = parse_scale(" 0, 2,4 ")
    assert labels == ("0", "2", "4") and values.tolist() == [0.0, 2.0, 4.0]
    assert parse_scale(["1", "2"])[1].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("spec, message", [
    ("a,b", "--scale label 'a' is not a number"),
    ("1,nan", "--scale label 'nan' is not a number"),
    ("5", "must list two or more score labels"),
    ("1,,3", "must list two or more score labels"),
    ("1,01", "--scale labels '1' and '01' have the same value"),
    ("5-1", "the range 5-1 is empty"),
])
def test_bad_scales_are_refused(spec, message):
    with pytest.raises(ScaleError, match=message):
        parse_scale(spec)


def test_label_checks_name_the_labels():
    assert check_labels(["1", "2", "3"]) == ("1", "2", "3")
    with pytest.raises(ValueError, match=r"labels=\('1', '2', ' 1'\) must be different"):
        check_labels(["1", "2", " 1"])
    with pytest.raises(ValueError, match="two or more non-empty"):
        check_labels(["1"])
    with pytest.raises(ValueError, match=r"labels '2' and 'II' .* share token ids \[7\]"):
        check_label_ids(["1", "2", "II"], [[5], [6, 7], [7, 9]])


def test_label_scores_keep_the_two_label_form_and_give_the_expectation():
    pair = LabelScores(np.log([0.6, 0.1]), np.log([0.2, 0.3]))
    assert pair.logp.shape == (2, 2) and pair.n_labels == 2
    np.testing.assert_allclose(pair.p_a, [0.75, 0.25])
    np.testing.assert_allclose(pair.mass, [0.8, 0.4])
    p = np.array([[0.1, 0.2, 0.3, 0.2, 0.1], [0.0, 0.0, 0.0, 0.0, 0.5]]) + 1e-300
    five = LabelScores(logp=np.log(p))
    np.testing.assert_allclose(five.expected([1, 2, 3, 4, 5]), [3.0, 5.0])
    np.testing.assert_allclose(expected_scores(np.log(p), [1, 2, 3, 4, 5], "vocab"), [2.7, 2.5])
    np.testing.assert_allclose(five.probs.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="needs 5 values, one per label, got 2"):
        five.expected([1, 2])
    with pytest.raises(ValueError, match="n_labels >= 2"):
        LabelScores(logp=np.zeros((3, 1)))


# ---- the real model ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scorer(backend):
    """The session's SmolLM2 judge with the score labels 1..5."""
    return TransformersBackend(backend.model, backend.tokenizer, backend.info, labels=tuple("12345"))


@pytest.mark.llm
def test_expected_score_equals_a_plain_forward_pass(scorer, small_items, tmp_path):
    import torch

    texts, ids = small_items["text"].tolist(), small_items["id"].tolist()
    res = score_items(scorer, texts, out=tmp_path / "j.jsonl", ids=ids, settings=SETTINGS, batch_size=3,
                      progress=False)
    vocab = score_items(scorer, texts, out=tmp_path / "j.jsonl", ids=ids, settings=SETTINGS, normalize="vocab",
                        progress=False)  # resumed: the same judgements, the other estimate
    assert vocab.summary["n_from_log"] == 5 and vocab.summary["n_judged"] == 0

    tok, model = scorer.tokenizer, scorer.model
    # The prompt, written out: the user message of `pycomp train --objective rail`, the reply prefilled.
    user = ("Review:\nThe movie was awful.\n\nHow positive is this review? Rate it on a scale of 1 to 5, where 1 is "
            "worst and 5 is best. Answer with one digit.")
    first = tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                    add_generation_prompt=True) + "Score: "
    assert point_prompts(scorer, texts[:1], ("1", "2", "3", "4", "5"), np.arange(1.0, 6.0), SETTINGS) == [first]
    # every token that reads as the digit, found by decoding the whole vocabulary
    digit_ids = [[i for i in range(len(tok)) if tok.decode([i]).strip() == str(d)] for d in range(1, 6)]
    for k, text in enumerate(texts):
        prompt = point_prompts(scorer, [text], tuple("12345"), np.arange(1.0, 6.0), SETTINGS)[0]
        with torch.no_grad():
            ids_k = torch.tensor([tok.encode(prompt, add_special_tokens=False)])
            logp = torch.log_softmax(model(input_ids=ids_k).logits[0, -1].double(), dim=-1)
        p = np.array([float(torch.logsumexp(logp[d], dim=0).exp()) for d in digit_ids])
        row = res.table.iloc[k]
        assert row["mass"] == pytest.approx(p.sum(), abs=ATOL)
        assert row["score"] == pytest.approx(float(p @ np.arange(1, 6)) / p.sum(), abs=ATOL)
        assert vocab.table.iloc[k]["score"] == pytest.approx(float(p @ np.arange(1, 6)), abs=ATOL)
        np.testing.assert_allclose(row[[f"p_{d}" for d in range(1, 6)]].to_numpy(float), p / p.sum(), atol=ATOL)
        q = p / p.sum()
        assert row["sd"] == pytest.approx(np.sqrt(q @ np.arange(1, 6) ** 2 - (q @ np.arange(1, 6)) ** 2), abs=ATOL)


@pytest.mark.llm
def test_training_renders_and_scores_the_same_prompt(scorer, small_items, tmp_path):
    """The rail trainer's own prompt builder and expected score agree with `pycomp score`."""
    pytest.importorskip("peft")
    from pycomp.judge.prompts import load_template
    from pycomp.train.collator import PromptBuilder
    from pycomp.train.trainer import expected_scores as trainer_expected

    texts = small_items["text"].tolist()
    builder = PromptBuilder(scorer, load_template(), SETTINGS)
    assert [builder.point_prompt(t, None, 1, 5) for t in texts] == point_prompts(
        scorer, texts, tuple("12345"), np.arange(1.0, 6.0), SETTINGS)
    answer = builder.score_answer_tokens(1, 5)
    res = score_items(scorer, texts, out=tmp_path / "j.jsonl", settings=SETTINGS, normalize="vocab",
                      progress=False)
    assert answer.variants == [[i] for i in answer.ids]  # SmolLM2 spells each digit one way: the same sum
    np.testing.assert_allclose(res.table["score"], trainer_expected(scorer.model, builder, answer, texts), atol=ATOL)


@pytest.mark.llm
def test_over_long_prompt_and_wrong_labels_name_the_item(scorer, backend, small_items, tmp_path):
    short = TransformersBackend(backend.model, backend.tokenizer, backend.info, labels=tuple("12345"))
    short.max_length = 70
    texts = ["ok", "fine", "The movie was " + "really " * 40 + "long."]
    with pytest.raises(ValueError, match=r"the prompt scoring item 'c' \(row 3\) has \d+ tokens, more than the "
                                         r"model's context of 70"):
        score_items(short, texts, ids=["a", "b", "c"], out=tmp_path / "j.jsonl", progress=False)
    letters = TransformersBackend(backend.model, backend.tokenizer, backend.info, labels=("A", "B"))
    with pytest.raises(ScaleError, match="--scale label 'A' is not a number"):
        score_items(letters, texts, out=tmp_path / "k.jsonl", progress=False)
    with pytest.raises(ValueError, match="answer label '10' is not a single token"):
        TransformersBackend(backend.model, backend.tokenizer, backend.info, labels=("1", "5", "10"))
    with pytest.raises(ValueError, match="pairwise judging needs a backend with two answer labels"):
        from pycomp.judge.prompts import PairTemplate
        from pycomp.judge.run import judge_pairs

        judge_pairs(scorer, PairTemplate(), texts, [[0, 1]], out=tmp_path / "p.jsonl", progress=False)


@pytest.fixture
def shared_model(backend, monkeypatch):
    """The commands build their judge on the session's loaded model (with the labels they ask for)."""
    def load(cls, *args, labels=("A", "B"), **kwargs):
        return cls(backend.model, backend.tokenizer, backend.info, labels=labels)

    monkeypatch.setattr(TransformersBackend, "load", classmethod(load))
    return backend


def _mini_summeval(tmp_path):
    frame = pd.read_json(SUMMEVAL, lines=True, dtype={"article_id": str, "summary_id": str})
    frame["article"] = frame["article"].str.slice(0, 200)  # short prompts keep the test fast on 2 cores
    path = tmp_path / "summeval.jsonl"
    frame.to_json(path, orient="records", lines=True)
    return frame, path


SUMMEVAL_ARGS = ("--text-field", "summary", "--context-field", "article", "--context-noun", "Article",
                 "--group-field", "article_id", "--id-field", "summary_id", "--gold-field", "coherence",
                 "--noun", "summary", "--attribute", "more coherent", "--no-progress")


@pytest.mark.llm
def test_score_cli_end_to_end_on_summeval(shared_model, tmp_path):
    frame, path = _mini_summeval(tmp_path)
    cache = tmp_path / "cache"
    out = tmp_path / "run"
    res = _invoke("score", path, *SUMMEVAL_ARGS, "--cache-dir", cache, "--out", out)
    assert res.exit_code == 0, res.output
    assert f"scored {len(frame)} items" in res.output and "Spearman" in res.output
    for name in ("items.jsonl", "judgements.jsonl", "scores.csv", "metrics.json", "predicted_vs_gold.png",
                 "run.json"):
        assert (out / name).is_file(), name
    scores = pd.read_csv(out / "scores.csv", dtype={"id": str, "group": str})
    p_cols = [f"p_{d}" for d in range(1, 6)]
    assert list(scores.columns) == ["id", "group", "score", "sd", "mass", *p_cols]
    assert sorted(map(tuple, scores[["group", "id"]].values)) == sorted(
        map(tuple, frame[["article_id", "summary_id"]].values))
    p = scores[p_cols].to_numpy(float)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(scores["score"], p @ np.arange(1, 6), atol=1e-9)
    assert scores["mass"].between(0, 1).all()

    # metrics as `pycomp rank` computes them, checked against scipy per article
    metrics = json.loads((out / "metrics.json").read_text())
    merged = scores.merge(frame, left_on=["group", "id"], right_on=["article_id", "summary_id"])
    per_group = {g: stats.spearmanr(d["score"], d["coherence"])[0] for g, d in merged.groupby("group")}
    assert metrics["n_groups"] == 3 and set(metrics["spearman_per_group"]) == set(per_group)
    for g, rho in per_group.items():
        assert metrics["spearman_per_group"][g] == pytest.approx(rho, abs=1e-12)
    assert metrics["spearman"] == pytest.approx(stats.spearmanr(merged["score"], merged["coherence"])[0], abs=1e-12)
    run = json.loads((out / "run.json").read_text())
    assert run["command"] == "score" and run["scale"]["labels"] == ["1", "2", "3", "4", "5"]
    assert run["judge"]["summary"]["n_judged"] == len(frame) and run["judge"]["summary"]["n_from_cache"] == 0

    res = _invoke("score", path, *SUMMEVAL_ARGS, "--cache-dir", cache, "--out", out)
    assert res.exit_code == 0 and f"scored 0 items in" in res.output
    assert f"{len(frame)} reused: {len(frame)} from the judgements file" in res.output
    res = _invoke("score", path, *SUMMEVAL_ARGS, "--cache-dir", cache, "--out", tmp_path / "other", "--no-plots")
    assert res.exit_code == 0 and f"0 from the judgements file, {len(frame)} from the judgement cache" in res.output
    again = pd.read_csv(tmp_path / "other" / "scores.csv", dtype={"id": str, "group": str})
    assert again["score"].tolist() == scores["score"].tolist()

    # another scale: other labels, another fingerprint, judged anew
    res = _invoke("score", path, *SUMMEVAL_ARGS, "--cache-dir", cache, "--scale", "1-3", "--out", tmp_path / "s3",
                  "--no-plots")
    assert res.exit_code == 0, res.output
    three = pd.read_csv(tmp_path / "s3" / "scores.csv")
    assert list(three.columns)[-3:] == ["p_1", "p_2", "p_3"] and three["score"].between(1, 3).all()
    assert json.loads((tmp_path / "s3" / "run.json").read_text())["judge"]["summary"]["n_judged"] == len(frame)


@pytest.mark.llm
def test_score_cli_bad_input(shared_model, small_items, tmp_path):
    items = tmp_path / "items.csv"
    small_items.to_csv(items, index=False)
    res = _invoke("score", items, "--scale", "low,high", "--out", tmp_path / "a")
    assert res.exit_code == 2 and "error: --scale label 'low' is not a number" in res.output
    res = _invoke("score", items, "--scale", "1,5,10", "--out", tmp_path / "b", "--cache-dir", tmp_path / "c")
    assert res.exit_code == 2 and "answer label '10' is not a single token" in res.output
    res = _invoke("score", items, "--normalize", "softmax", "--out", tmp_path / "c")
    assert res.exit_code == 2 and "error: --normalize 'softmax' is not one of: scores, vocab" in res.output
    res = _invoke("score", items, "--text-field", "body", "--out", tmp_path / "d")
    assert res.exit_code == 2 and "body" in res.output
    # a judgements file of another scale is refused rather than mixed
    ok = _invoke("score", items, "--id-field", "id", "--out", tmp_path / "e", "--cache-dir", tmp_path / "c")
    assert ok.exit_code == 0, ok.output
    res = _invoke("score", items, "--id-field", "id", "--scale", "1-4", "--out", tmp_path / "e",
                  "--cache-dir", tmp_path / "c")
    assert res.exit_code == 2 and "holds judgements made with a different model" in res.output


@pytest.mark.llm
@pytest.mark.slow
def test_a_rail_adapter_changes_the_scores(tiny_items, tmp_path):
    """`pycomp train --objective rail` for a few steps, then `pycomp score --adapter`: the scores move towards gold."""
    pytest.importorskip("peft")
    items = tmp_path / "items.jsonl"
    tiny_items.to_json(items, orient="records", lines=True)
    adapter = tmp_path / "adapter"
    res = _invoke("train", items, "--gold-field", "gold", "--group-field", "group", "--id-field", "id",
                  "--noun", "review", "--attribute", "more positive", "--objective", "rail", "--score-min", "1",
                  "--score-max", "5", "--max-steps", "3", "--batch-size", "6", "--lr", "5e-4", "--lora-r", "4",
                  "--lora-alpha", "8", "--lora-dropout", "0", "--device", "cpu", "--no-progress", "--out", adapter)
    assert res.exit_code == 0, res.output
    common = ["score", items, "--gold-field", "gold", "--group-field", "group", "--id-field", "id", "--noun",
              "review", "--attribute", "more positive", "--normalize", "vocab", "--no-plots", "--no-progress",
              "--device", "cpu", "--cache-dir", tmp_path / "cache"]
    res = _invoke(*common, "--out", tmp_path / "base")
    assert res.exit_code == 0, res.output
    res = _invoke(*common, "--adapter", adapter, "--out", tmp_path / "tuned")
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "tuned" / "run.json").read_text())
    assert run["scale"]["labels"] == ["1", "2", "3", "4", "5"]  # the adapter's scale
    assert run["judge"]["summary"]["n_judged"] == 6  # another fingerprint: nothing from the base model's cache
    assert run["judge"]["backend"]["adapter"] is not None
    base = pd.read_csv(tmp_path / "base" / "scores.csv")["score"].to_numpy()
    tuned = pd.read_csv(tmp_path / "tuned" / "scores.csv")["score"].to_numpy()
    gold = tiny_items["gold"].to_numpy()
    assert np.max(np.abs(tuned - base)) > 1e-3
    # what rail trains: the squared error of the (vocabulary) expected score
    assert np.mean((tuned - gold) ** 2) < np.mean((base - gold) ** 2)


@pytest.fixture
def tiny_items():
    """Two groups of three short reviews with clearly ordered gold scores (as tests/train uses)."""
    rows = []
    for g, topic in enumerate(["The film", "The meal"]):
        for level, word in ((1, "awful"), (3, "fine"), (5, "wonderful")):
            rows.append({"id": f"{g}-{level}", "text": f"{topic} was {word}.", "gold": float(level),
                         "group": f"g{g}"})
    return pd.DataFrame(rows)
