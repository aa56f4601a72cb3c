"""`pycomp rank --design active` and `--calibrate` end to end with the real SmolLM2 judge, and their errors."""
import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit
from typer.testing import CliRunner

from pycomp.cli import app
from pycomp.judge.transformers_backend import TransformersBackend

runner = CliRunner()


@pytest.fixture
def shared_model(backend, monkeypatch):
    """Let the command use the session's already-loaded real model instead of loading it again."""
    monkeypatch.setattr(TransformersBackend, "load", classmethod(lambda cls, *a, **k: backend))
    return backend


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


ACTIVE = ("--design", "active", "--per-item", "1", "--budget", "16", "--batch-pairs", "6", "--no-progress",
          "--no-plots", "--no-cache")


@pytest.mark.llm
def test_active_rank_runs_resumes_with_the_same_choices_and_calibrates(shared_model, tmp_path):
    out = tmp_path / "run"
    res = _invoke("rank", "example:reviews", "--out", out, *ACTIVE)
    assert res.exit_code == 0, res.output
    assert "random first round of 10 pairs (1 per item), then 6 pairs per round" in res.output
    assert "active design: 16 pairs in 2 rounds, stopped: the budget is spent" in res.output
    pairs = pd.read_csv(out / "pairs.csv")
    assert list(pairs.columns) == ["a", "b", "group", "i", "j", "round"]
    assert pairs["round"].tolist() == [0] * 10 + [1] * 6
    keys = set(map(tuple, np.sort(pairs[["i", "j"]].to_numpy(), axis=1).tolist()))
    assert len(keys) == 16
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["design"] == "active" and run["config"]["budget"] == 16
    assert run["active"]["stop_reason"] == "budget"
    assert [r["n_pairs_total"] for r in run["active"]["rounds"]] == [10, 16]
    assert len(pd.read_json(out / "comparisons.jsonl", lines=True)) == 16
    assert len(pd.read_csv(out / "scores.csv")) == 20

    # Killed in round 1: keep round 0's 20 judgements, 5 of round 1's 12 and half a line.
    log = out / "judgements.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    assert len(lines) == 1 + 32
    log.write_bytes(b"".join(lines[:26]) + lines[26][:30])
    res = _invoke("rank", "example:reviews", "--out", out, *ACTIVE)
    assert res.exit_code == 0, res.output
    assert "judged 7 prompts" in res.output
    assert pd.read_csv(out / "pairs.csv").equals(pairs)

    # The same judgements, calibrated against the gold stars: nothing is judged again.
    res = _invoke("rank", "example:reviews", "--out", out, *ACTIVE, "--calibrate")
    assert res.exit_code == 0, res.output
    assert "judged 0 prompts" in res.output and "calibration: temperature" in res.output
    cal = json.loads((out / "run.json").read_text())["calibration"]
    assert json.loads((out / "metrics.json").read_text())["calibration"] == cal
    comps = pd.read_json(out / "comparisons.jsonl", lines=True)
    items = pd.read_json(out / "items.jsonl", lines=True)
    gold = items["gold"].to_numpy(float)
    g_i, g_j = gold[comps["i"]], gold[comps["j"]]
    y = np.where(g_i > g_j, 1.0, np.where(g_i < g_j, 0.0, 0.5))
    x = logit(np.clip(comps["p_raw"].to_numpy(), 1e-6, 1 - 1e-6))
    def nll(t):
        q = expit(x / t)
        return -np.sum(y * np.log(q) + (1 - y) * np.log(1 - q))
    ref = minimize_scalar(nll, bounds=(0.01, 100.0), method="bounded", options={"xatol": 1e-9}).x
    assert cal["temperature"] == pytest.approx(ref, rel=1e-4)
    assert cal["n_gold_pairs"] == 16
    assert np.allclose(comps["p"], expit(x / cal["temperature"]), rtol=1e-4)  # run.json rounds T to 6 digits


@pytest.mark.parametrize("args, message", [
    (("--design", "active"), "--design active needs --budget B"),
    (("--design", "active", "--budget", "0"), "--budget 0 must be a whole number of pairs > 0"),
    (("--design", "active", "--budget", "8", "--batch-pairs", "9"), "--budget 8 is smaller than one batch"),
    (("--design", "active", "--budget", "15"),
     "--budget 15 is smaller than the first round (60 pairs: a random design with 6 pairs per item over 20 items); "
     "raise --budget or lower --per-item"),
    (("--design", "active", "--budget", "80", "--stop-threshold", "1.5"), "--stop-threshold 1.5 must be in (0, 1)"),
    (("--design", "active", "--all-pairs", "--budget", "40"), "give either --all-pairs or --design active"),
    (("--design", "bandit",), "--design 'bandit' is not one of: random, greedy, active"),
])
def test_bad_active_settings_are_refused_before_the_model_loads(tmp_path, args, message):
    res = _invoke("rank", "example:reviews", "--out", tmp_path / "run", "--no-progress", *args)
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
    assert not (tmp_path / "run" / "judgements.jsonl").exists()


def test_calibrate_without_gold_is_refused(tmp_path):
    items = tmp_path / "items.csv"
    pd.DataFrame({"text": ["good", "bad", "fine"]}).to_csv(items, index=False)
    res = _invoke("rank", items, "--out", tmp_path / "run", "--calibrate", "--no-progress")
    assert res.exit_code == 2
    assert "--calibrate fits the judge to gold scores: give --gold-field" in res.output


def test_pycomp_judge_refuses_the_active_design(tmp_path):
    res = _invoke("judge", "example:reviews", "--out", tmp_path / "c.jsonl", "--design", "active")
    assert res.exit_code == 2
    message = "--design active chooses its pairs between rounds of judging: use pycomp rank"
    assert message in " ".join(res.output.split())
