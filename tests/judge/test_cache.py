"""The judgement cache: real SQLite files, real processes writing at once and killed, the real model."""
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pycomp.cli import app
from pycomp.judge.cache import DB_NAME, CacheError, JudgementCache, default_cache_dir, prompt_digest
from pycomp.judge.prompts import PairTemplate
from pycomp.judge.run import PromptSettings, judge_pairs
from pycomp.judge.transformers_backend import TransformersBackend
from pycomp.plan import all_pairs

SETTINGS = PromptSettings(attribute="more positive", noun="review")
FP_A = {"backend": "transformers", "model": "tiny@0001", "adapter": None, "dtype": "float32", "label_ids": [[1], [2]]}
FP_B = dict(FP_A, model="other@0002")
runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _records(path):
    lines = open(path, encoding="utf-8").read().splitlines()
    return [json.loads(x) for x in lines[1:] if x.strip()]


def _integrity(path):
    with sqlite3.connect(str(path)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


# ---- the store (real SQLite, no model) ---------------------------------------------------

def test_round_trip_is_exact_and_the_first_write_wins(tmp_path):
    cache = JudgementCache(tmp_path / "c")
    rng = np.random.default_rng(3)
    logp = -rng.exponential(size=(7, 2))
    digests = [prompt_digest(f"prompt {k}") for k in range(7)]
    assert cache.get(FP_A, 2, digests) == {}  # unknown fingerprint: nothing, and nothing created
    assert cache.put(FP_A, zip(digests, logp), labels=("A", "B")) == 7
    assert cache.put(FP_A, [(digests[0], [0.0, 0.0]), (prompt_digest("new"), [-1.0, -2.0])]) == 1
    found = cache.get(FP_A, 2, digests + [prompt_digest("absent")])
    assert set(found) == set(digests)
    for d, row in zip(digests, logp):
        assert found[d].tolist() == row.tolist()  # bit for bit, and the first write of digests[0] is kept
    cache.close()
    again = JudgementCache(tmp_path / "c")  # a later process reads the same
    assert again.get(FP_A, 2, digests[3:4])[digests[3]].tolist() == logp[3].tolist()
    with pytest.raises(CacheError, match="holds 2 labels, this backend has 3"):
        again.get(FP_A, 3, digests)


def test_fingerprints_are_kept_apart_and_info_counts_them(tmp_path):
    cache = JudgementCache(tmp_path)
    d = [prompt_digest(f"p{k}") for k in range(5)]
    cache.put(FP_A, [(x, [-1.0, -2.0]) for x in d], labels=("A", "B"))
    cache.put(FP_B, [(x, [-3.0, -4.0]) for x in d[:2]], labels=("A", "B"))
    assert cache.get(FP_B, 2, d).keys() == set(d[:2])
    assert cache.get(FP_A, 2, d[:1])[d[0]].tolist() == [-1.0, -2.0]
    info = cache.info()
    assert info["entries"] == 7 and info["size_bytes"] == sum(p.stat().st_size for p in cache.files()) > 0
    assert [(f["model"], f["entries"], f["labels"]) for f in info["fingerprints"]] == [
        ("tiny@0001", 5, ["A", "B"]), ("other@0002", 2, ["A", "B"])]


def test_clear_one_model_then_all(tmp_path):
    cache = JudgementCache(tmp_path)
    d = [prompt_digest(f"p{k}") for k in range(4)]
    cache.put(FP_A, [(x, [-1.0, -2.0]) for x in d])
    cache.put(FP_B, [(x, [-1.0, -2.0]) for x in d[:3]])
    with pytest.raises(CacheError, match=r"no cached judgements for model 'nope' .* it holds: other@0002, tiny@0001"):
        cache.clear("nope")
    assert cache.clear("tiny") == 4  # the name before the @
    assert [f["model"] for f in cache.info()["fingerprints"]] == ["other@0002"]
    assert cache.get(FP_A, 2, d) == {}
    assert cache.clear() == 3 and cache.info()["entries"] == 0


def test_a_file_that_is_not_a_cache_is_refused_clearly(tmp_path):
    (tmp_path / DB_NAME).write_bytes(b"these are not the bytes of a database" * 100)
    with pytest.raises(CacheError, match=r"is not a usable pycomp judgement cache .*--no-cache"):
        JudgementCache(tmp_path).get(FP_A, 2, [prompt_digest("x")])
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(CacheError, match=r"cannot open the judgement cache .*--cache-dir"):
        JudgementCache(blocker / "sub").put(FP_A, [(prompt_digest("x"), [-1.0, -2.0])])


def test_default_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("PYCOMP_CACHE_DIR", raising=False)
    monkeypatch.setenv("PYCOMP_CACHE", str(tmp_path / "pc"))
    assert default_cache_dir() == tmp_path / "pc" / "judgements"  # next to the models
    monkeypatch.setenv("PYCOMP_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"
    assert JudgementCache().path == tmp_path / "elsewhere" / DB_NAME


_WRITER = textwrap.dedent("""
    import sys
    from pycomp.judge.cache import JudgementCache, prompt_digest
    folder, start, stop, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    fp = {"backend": "transformers", "model": "tiny@0001", "adapter": None, "dtype": "float32",
          "label_ids": [[1], [2]]}
    cache = JudgementCache(folder, timeout=120)
    k = start
    while stop < 0 or k < stop:
        cache.put(fp, [(prompt_digest(f"p{i}"), [-float(i), -0.5 * i]) for i in range(k, k + step)])
        k += step
        print(k, flush=True)
""")


def test_two_processes_write_the_same_cache_at_once(tmp_path):
    """Two real processes put overlapping entries into one file at the same time: all arrive, once, intact."""
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    folder = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, str(script), str(folder), str(a), str(b), "50"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for a, b in ((0, 1500), (750, 2250))]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()
    cache = JudgementCache(folder)
    found = cache.get(FP_A, 2, [prompt_digest(f"p{i}") for i in range(2300)])
    assert len(found) == 2250 and cache.info()["entries"] == 2250
    assert all(found[prompt_digest(f"p{i}")].tolist() == [-float(i), -0.5 * i] for i in range(2250))
    assert _integrity(cache.path) == "ok"


def test_a_writer_killed_mid_write_leaves_a_consistent_cache(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    folder = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, str(script), str(folder), "0", "-1", "100"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        reported = 0
        while reported < 1000:  # ten committed transactions
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            reported = int(line)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _integrity(folder / DB_NAME) == "ok"
    cache = JudgementCache(folder)
    n = cache.info()["entries"]
    assert n >= reported and n % 100 == 0  # whole transactions only
    assert cache.put(FP_A, [(prompt_digest("after"), [-1.0, -1.0])]) == 1


# ---- judging with the cache (real model) ------------------------------------------------

@pytest.mark.llm
def test_a_larger_budget_judges_only_the_prompts_never_seen(backend, small_items, tmp_path):
    texts, ids = small_items["text"].tolist(), small_items["id"].tolist()
    cache = JudgementCache(tmp_path / "cache")
    every = all_pairs(5)  # 10 pairs
    first = every[[0, 3, 7, 9]]
    run1 = judge_pairs(backend, PairTemplate(), texts, first, out=tmp_path / "a" / "j.jsonl", ids=ids,
                       settings=SETTINGS, progress=False, cache=cache)
    assert (run1.summary["n_judged"], run1.summary["n_from_cache"]) == (8, 0)
    assert cache.info()["entries"] == 8

    # Another output folder, a larger budget: only the prompts of the 6 new pairs are judged.
    n_new = 2 * len(set(map(tuple, every.tolist())) - set(map(tuple, first.tolist())))
    run2 = judge_pairs(backend, PairTemplate(), texts, every, out=tmp_path / "b" / "j.jsonl", ids=ids,
                       settings=SETTINGS, progress=False, cache=cache)
    s = run2.summary
    assert (s["n_judged"], s["n_from_cache"], s["n_from_log"], s["n_reused"]) == (n_new, 8, 0, 8) == (12, 8, 0, 8)
    assert s["cache"] == str(cache.folder)
    cached = [r for r in _records(tmp_path / "b" / "j.jsonl") if r.get("cached")]
    assert len(cached) == 8  # written to the new run's file too, marked
    old = run1.comparisons.set_index(["a", "b"])
    new = run2.comparisons.set_index(["a", "b"]).loc[old.index]
    assert new["p_ab"].tolist() == old["p_ab"].tolist() and new["p"].tolist() == old["p"].tolist()

    # The first folder again with the larger budget: its own 8 from the file, the other 12 from the cache.
    run3 = judge_pairs(backend, PairTemplate(), texts, every, out=tmp_path / "a" / "j.jsonl", ids=ids,
                       settings=SETTINGS, progress=False, cache=cache)
    assert (run3.summary["n_judged"], run3.summary["n_from_log"], run3.summary["n_from_cache"]) == (0, 8, 12)
    assert np.array_equal(run3.comparisons["p"], run2.comparisons["p"])
    keys = [r["key"] for r in _records(tmp_path / "a" / "j.jsonl")]
    assert len(keys) == len(set(keys)) == 20


@pytest.mark.llm
def test_judgements_made_without_the_cache_fill_it(backend, small_items, tmp_path):
    texts = small_items["text"].tolist()[:3]
    judge_pairs(backend, PairTemplate(), texts, all_pairs(3), out=tmp_path / "j.jsonl", settings=SETTINGS,
                progress=False)  # no cache
    cache = JudgementCache(tmp_path / "cache")
    again = judge_pairs(backend, PairTemplate(), texts, all_pairs(3), out=tmp_path / "j.jsonl", settings=SETTINGS,
                        progress=False, cache=cache)
    assert again.summary["n_from_log"] == 6 and cache.info()["entries"] == 6
    other = judge_pairs(backend, PairTemplate(), texts, all_pairs(3), out=tmp_path / "k.jsonl", settings=SETTINGS,
                        progress=False, cache=cache)
    assert (other.summary["n_judged"], other.summary["n_from_cache"]) == (0, 6)


@pytest.mark.llm
def test_another_fingerprint_misses(backend, small_items, tmp_path):
    """Other answer labels, or an adapter (even one that changes nothing), never read another judge's entries."""
    from pycomp.judge import models
    from pycomp.train.model import add_lora

    texts = small_items["text"].tolist()[:3]
    pairs = all_pairs(3)
    cache = JudgementCache(tmp_path / "cache")
    base = judge_pairs(backend, PairTemplate(), texts, pairs, out=tmp_path / "base.jsonl", settings=SETTINGS,
                       progress=False, cache=cache)
    # Same prompts, the answer tokens swapped: p(first label) is now p(B).
    swapped = TransformersBackend(backend.model, backend.tokenizer, backend.info, labels=("B", "A"))
    assert swapped.fingerprint() != backend.fingerprint()
    res = judge_pairs(swapped, PairTemplate(), texts, pairs, out=tmp_path / "swapped.jsonl", settings=SETTINGS,
                      progress=False, cache=cache)
    assert (res.summary["n_judged"], res.summary["n_from_cache"]) == (6, 0)
    assert np.allclose(res.comparisons["p_ab"], 1 - base.comparisons["p_ab"], atol=1e-4)

    model, _, _ = models.load_model("smollm2-135m", device="cpu")
    add_lora(model, r=2, target_modules="q_proj", seed=0).save_pretrained(tmp_path / "adapter")  # B = 0: identity
    adapted = TransformersBackend.load("smollm2-135m", adapter=tmp_path / "adapter", device="cpu")
    res = judge_pairs(adapted, PairTemplate(), texts, pairs, out=tmp_path / "adapted.jsonl", settings=SETTINGS,
                      progress=False, cache=cache)
    assert (res.summary["n_judged"], res.summary["n_from_cache"]) == (6, 0)
    assert np.allclose(res.comparisons["p"], base.comparisons["p"], atol=1e-4)
    assert len(cache.info()["fingerprints"]) == 3


@pytest.fixture
def shared_model(backend, monkeypatch):
    """Let the commands use the session's already-loaded real model instead of loading it again."""
    monkeypatch.setattr(TransformersBackend, "load", classmethod(lambda cls, *a, **k: backend))
    return backend


def _pair_set(path):
    return {frozenset(x) for x in pd.read_csv(path, dtype=str)[["a", "b"]].values.tolist()}


@pytest.mark.llm
def test_rank_reuses_across_folders_and_cache_commands(shared_model, small_items, tmp_path):
    items = tmp_path / "items.csv"
    small_items.to_csv(items, index=False)
    cache_dir = tmp_path / "cache"
    common = ["rank", items, "--id-field", "id", "--noun", "review", "--attribute", "more positive",
              "--no-plots", "--no-progress", "--cache-dir", cache_dir]
    res = _invoke(*common, "-k", "2", "--out", tmp_path / "r1")
    assert res.exit_code == 0, res.output
    p1 = _pair_set(tmp_path / "r1" / "pairs.csv")
    res = _invoke(*common, "--all-pairs", "--out", tmp_path / "r2")
    assert res.exit_code == 0, res.output
    p2 = _pair_set(tmp_path / "r2" / "pairs.csv")
    assert len(p2) == 10 and p1 <= p2
    summary = json.loads((tmp_path / "r2" / "run.json").read_text())["judge"]["summary"]
    assert summary["n_from_cache"] == 2 * len(p1) and summary["n_judged"] == 2 * len(p2 - p1)
    assert f"judged {2 * len(p2 - p1)} prompts" in res.output
    assert f"{2 * len(p1)} reused: 0 from the judgements file, {2 * len(p1)} from the judgement cache" in res.output

    res = _invoke(*common, "--all-pairs", "--no-cache", "--out", tmp_path / "r3")
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "r3" / "run.json").read_text())["judge"]["summary"]
    assert summary["n_judged"] == 20 and summary["cache"] is None and "judgement cache off" in res.output

    res = _invoke("cache", "info", "--cache-dir", cache_dir)
    assert res.exit_code == 0, res.output
    assert "entries: 20," in res.output and "smollm2-135m@" in res.output and "labels ['A', 'B']" in res.output
    info = json.loads(_invoke("cache", "info", "--cache-dir", cache_dir, "--json").output)
    assert info["entries"] == 20 and len(info["fingerprints"]) == 1
    res = _invoke("cache", "clear", "--model", "gpt-17", "--cache-dir", cache_dir)
    assert res.exit_code == 2 and "no cached judgements for model 'gpt-17'" in res.output
    res = _invoke("cache", "clear", "--model", "smollm2-135m", "--cache-dir", cache_dir)
    assert res.exit_code == 0 and "deleted 20 cached judgements of model smollm2-135m (0 left)" in res.output
    assert json.loads(_invoke("cache", "info", "--cache-dir", cache_dir, "--json").output)["entries"] == 0


@pytest.mark.llm
@pytest.mark.slow
def test_a_killed_run_keeps_what_it_cached(shared_model, small_items, tmp_path):
    """SIGKILL a real `pycomp judge` mid-run: the cache is intact and a run elsewhere judges only the rest."""
    items = tmp_path / "items.csv"
    small_items.to_csv(items, index=False)
    cache_dir = tmp_path / "cache"
    cmd = [sys.executable, "-m", "pycomp.cli", "judge", str(items), "--id-field", "id", "--noun", "review",
           "--attribute", "more positive", "--all-pairs", "--batch-size", "2", "--no-progress",
           "--cache-dir", str(cache_dir)]
    log = tmp_path / "one" / "c.judgements.jsonl"
    proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "one" / "c.jsonl")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if log.exists() and len(log.read_text().splitlines()) >= 1 + 6:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"judge finished or failed before it could be killed: {proc.stderr.read()!r}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    logged = len(_records(log))
    assert _integrity(cache_dir / DB_NAME) == "ok"
    cached = JudgementCache(cache_dir).info()["entries"]
    assert logged - 2 <= cached <= logged < 20  # the log is written first; at most one batch missed the cache

    (tmp_path / "two").mkdir()
    res = runner.invoke(app, cmd[3:] + ["--out", str(tmp_path / "two" / "c.jsonl")])
    assert res.exit_code == 0, res.output
    records = _records(tmp_path / "two" / "c.judgements.jsonl")
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)) == 20  # none lost, none twice
    assert sum(bool(r.get("cached")) for r in records) == cached  # the rest, 20 - cached, judged now
    assert JudgementCache(cache_dir).info()["entries"] == 20
