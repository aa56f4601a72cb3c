"""Both-order combination and resumable judging (real model, real files, a real killed process)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from pycomp.judge.prompts import PairTemplate
from pycomp.judge.run import (
    FORMAT, JudgementsMismatchError, PromptSettings, combine_orders, judge_pairs, judge_summary, summary_warnings,
)
from pycomp.plan import all_pairs

SETTINGS = PromptSettings(attribute="more positive", noun="review")


def _records(path):
    lines = open(path, encoding="utf-8").read().splitlines()
    header = json.loads(lines[0])
    return header, [json.loads(x) for x in lines[1:] if x.strip()]


# ---- combination (no model) -------------------------------------------------

def test_combine_orders_formula():
    p_first = np.array([0.9, 0.6, 0.5, 0.2])
    p_second = np.array([0.3, 0.6, 0.5, 0.9])
    assert np.allclose(combine_orders(p_first, p_second), [0.8, 0.5, 0.5, 0.15])


def test_combine_orders_cancels_a_constant_position_bias():
    rng = np.random.default_rng(0)
    true = rng.uniform(0.05, 0.95, size=50)
    logit = np.log(true / (1 - true))
    bias = 2.5  # the judge adds +2.5 to the logit of whatever is shown first
    p_first = 1 / (1 + np.exp(-(logit + bias)))
    p_second = 1 / (1 + np.exp(-(-logit + bias)))
    combined = combine_orders(p_first, p_second)
    assert np.all(np.sign(combined - 0.5) == np.sign(true - 0.5))
    summary = judge_summary(p_first, p_second, np.ones(50), np.ones(50))
    assert summary["position_bias"] > 0.25
    assert any("position bias" in w for w in summary_warnings(summary))


def test_summary_flags_a_judge_that_does_not_answer():
    summary = judge_summary([0.5], [0.5], [0.1], [0.2])
    assert summary["answer_mass_mean"] == pytest.approx(0.15)
    assert any("not answering" in w for w in summary_warnings(summary))


# ---- resumable judging with the real model ---------------------------------

@pytest.mark.llm
def test_interrupted_run_resumes_without_loss_or_duplicates(backend, small_items, tmp_path):
    texts = small_items["text"].tolist()
    ids = small_items["id"].tolist()
    pairs = all_pairs(len(texts))  # 10 pairs, 20 prompts
    out = tmp_path / "judgements.jsonl"

    class Stop(Exception):
        pass

    def stop_after_two_batches(done, total):
        if done >= 8:
            raise Stop

    with pytest.raises(Stop):
        judge_pairs(backend, PairTemplate(), texts, pairs, out=out, ids=ids, settings=SETTINGS, batch_size=4,
                    progress=False, on_batch=stop_after_two_batches)
    header, first = _records(out)
    assert header["format"] == FORMAT and len(first) == 8

    result = judge_pairs(backend, PairTemplate(), texts, pairs, out=out, ids=ids, settings=SETTINGS, batch_size=4,
                         progress=False)
    assert result.summary["n_reused"] == 8 and result.summary["n_judged"] == 12
    _, records = _records(out)
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)) == 20
    assert records[:8] == first  # finished judgements are never rewritten

    # Every pair appears once, with both orders; the result matches a fresh, uninterrupted run.
    comp = result.comparisons
    assert len(comp) == 10 and set(zip(comp["i"], comp["j"])) == set(map(tuple, pairs.tolist()))
    fresh = judge_pairs(backend, PairTemplate(), texts, pairs, out=tmp_path / "fresh.jsonl", ids=ids,
                        settings=SETTINGS, batch_size=8, progress=False)
    assert np.allclose(comp["p"], fresh.comparisons["p"], atol=2e-4)
    assert np.allclose(comp["p"], combine_orders(comp["p_ab"], comp["p_ba"]))
    # Rerunning a finished run judges nothing.
    again = judge_pairs(backend, PairTemplate(), texts, pairs, out=out, ids=ids, settings=SETTINGS,
                        progress=False)
    assert again.summary["n_judged"] == 0 and again.summary["n_reused"] == 20


@pytest.mark.llm
def test_groups_are_recorded_and_logs_without_them_resume(backend, small_items, tmp_path):
    """Ids that repeat across groups: records and comparisons carry the group; resuming is by prompt."""
    texts = small_items["text"].tolist()[:4]
    ids, groups = ["x", "y", "x", "y"], ["g1", "g1", "g2", "g2"]
    pairs = all_pairs(4, groups)
    assert pairs.tolist() == [[0, 1], [2, 3]]
    old = tmp_path / "old.jsonl"  # as written before records had a group
    judge_pairs(backend, PairTemplate(), texts, pairs, out=old, ids=ids, settings=SETTINGS, progress=False)
    assert all("group" not in r for r in _records(old)[1])
    resumed = judge_pairs(backend, PairTemplate(), texts, pairs, out=old, ids=ids, groups=groups, settings=SETTINGS,
                          progress=False)
    assert resumed.summary["n_judged"] == 0 and resumed.summary["n_reused"] == 4
    comp = resumed.comparisons
    assert comp[["a", "b", "group"]].values.tolist() == [["x", "y", "g1"], ["x", "y", "g2"]]

    new = tmp_path / "new.jsonl"
    fresh = judge_pairs(backend, PairTemplate(), texts, pairs, out=new, ids=ids, groups=groups, settings=SETTINGS,
                        progress=False)
    _, records = _records(new)
    assert sorted((r["group"], r["a"], r["b"]) for r in records) == [
        ("g1", "x", "y"), ("g1", "y", "x"), ("g2", "x", "y"), ("g2", "y", "x")]
    assert np.allclose(fresh.comparisons["p"], comp["p"], atol=2e-4)
    with pytest.raises(ValueError, match="groups has 3 entries for 4 items"):
        judge_pairs(backend, PairTemplate(), texts, pairs, out=new, ids=ids, groups=groups[:3], progress=False)


@pytest.mark.llm
def test_partial_last_line_is_dropped_and_rejudged(backend, small_items, tmp_path):
    texts = small_items["text"].tolist()[:3]
    pairs = all_pairs(3)
    out = tmp_path / "j.jsonl"
    judge_pairs(backend, PairTemplate(), texts, pairs, out=out, settings=SETTINGS, progress=False)
    lines = out.read_text().splitlines(keepends=True)
    # Simulate a kill in the middle of writing the last record.
    out.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    result = judge_pairs(backend, PairTemplate(), texts, pairs, out=out, settings=SETTINGS, progress=False)
    assert result.summary["n_judged"] == 1 and result.summary["n_reused"] == 5
    _, records = _records(out)
    assert len(records) == 6 and len({r["key"] for r in records}) == 6


@pytest.mark.llm
def test_changed_template_or_model_is_refused(backend, small_items, tmp_path):
    texts = small_items["text"].tolist()[:3]
    pairs = all_pairs(3)
    out = tmp_path / "j.jsonl"
    judge_pairs(backend, PairTemplate(), texts, pairs, out=out, settings=SETTINGS, progress=False)
    other = PairTemplate(text="{item_a}\n---\n{item_b}\nWhich {noun} is {attribute}?")
    with pytest.raises(JudgementsMismatchError, match="different template"):
        judge_pairs(backend, other, texts, pairs, out=out, settings=SETTINGS, progress=False)
    with pytest.raises(JudgementsMismatchError, match="different prompt"):
        judge_pairs(backend, PairTemplate(), texts, pairs, out=out, progress=False,
                    settings=PromptSettings(attribute="longer", noun="review"))
    header, records = _records(out)
    header["model"]["model"] = "some-other-model"
    out.write_text("\n".join(json.dumps(x) for x in [header] + records) + "\n")
    with pytest.raises(JudgementsMismatchError, match="different model"):
        judge_pairs(backend, PairTemplate(), texts, pairs, out=out, settings=SETTINGS, progress=False)


@pytest.mark.llm
def test_bad_pairs_are_refused(backend, tmp_path):
    with pytest.raises(ValueError, match=r"pairs\[1\] = \[0, 7\] is outside"):
        judge_pairs(backend, PairTemplate(), ["x", "y"], [[0, 1], [0, 7]], out=tmp_path / "j.jsonl", progress=False)
    with pytest.raises(ValueError, match="with itself"):
        judge_pairs(backend, PairTemplate(), ["x", "y"], [[1, 1]], out=tmp_path / "k.jsonl", progress=False)


@pytest.mark.llm
@pytest.mark.slow
def test_killed_process_loses_at_most_the_batch_in_flight(backend, small_items, tmp_path):
    """SIGKILL a real `pycomp judge` mid-run, rerun it, and check every prompt is there exactly once."""
    items = tmp_path / "items.csv"
    small_items.to_csv(items, index=False)
    out = tmp_path / "comparisons.jsonl"
    log = tmp_path / "comparisons.judgements.jsonl"
    cmd = [sys.executable, "-m", "pycomp.cli", "judge", str(items), "--id-field", "id", "--noun", "review",
           "--attribute", "more positive", "--all-pairs", "--batch-size", "2", "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if log.exists() and len(log.read_text().splitlines()) >= 1 + 4:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"judge finished or failed before it could be killed: {proc.stderr.read()!r}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    _, before = _records(log)
    assert 4 <= len(before) < 20

    from typer.testing import CliRunner

    from pycomp.cli import app

    res = CliRunner().invoke(app, cmd[3:])
    assert res.exit_code == 0, res.output
    _, after = _records(log)
    keys = [r["key"] for r in after]
    assert len(keys) == len(set(keys)) == 20  # 10 pairs x 2 orders, none lost, none twice
    assert after[: len(before)] == before
    comp = pd.read_json(out, lines=True)
    assert len(comp) == 10 and comp["p"].between(0, 1).all()
