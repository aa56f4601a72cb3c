"""The `pycomp rank`, `judge` and `evaluate` commands end to end, and their bad-input errors."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pycomp.cli import app
from pycomp.config import RankConfig
from pycomp.items import load_items
from pycomp.judge.transformers_backend import TransformersBackend
from pycomp.pipeline import rank

# 3 SummEval articles x 4 summaries (tests/data/README.md): summary_id (S0..S3) repeats in every article.
SUMMEVAL = Path(__file__).resolve().parents[1] / "data" / "summeval_excerpt.jsonl"
runner = CliRunner()


@pytest.fixture
def shared_model(backend, monkeypatch):
    """Let the commands use the session's already-loaded real model instead of loading it again."""
    monkeypatch.setattr(TransformersBackend, "load", classmethod(lambda cls, *a, **k: backend))
    return backend


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.llm
def test_readme_example_end_to_end_and_resume(shared_model, tmp_path):
    out = tmp_path / "run"
    res = _invoke("rank", "example:reviews", "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    for name in ("items.jsonl", "pairs.csv", "judgements.jsonl", "comparisons.jsonl", "scores.csv", "metrics.json",
                 "run.json", "predicted_vs_gold.png", "spearman_vs_comparisons.png"):
        assert (out / name).is_file(), name
    scores = pd.read_csv(out / "scores.csv")
    assert list(scores.columns) == ["id", "group", "score", "se"] and len(scores) == 20
    assert np.all(np.isfinite(scores["score"])) and np.all(scores["se"] > 0)
    metrics = json.loads((out / "metrics.json").read_text())
    # SmolLM2-135M can partly do this task: the ranking must agree with the gold sentiment level.
    assert metrics["spearman"] > 0.3, metrics
    assert metrics["pairwise_accuracy"] > 0.6
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["attribute"] == "more positive" and run["n_pairs"] == 60
    assert run["versions"]["torch"] and run["versions"]["transformers"]
    assert run["judge"]["summary"]["answer_mass_mean"] > 0.9
    assert "Spearman" in res.output and "scores:" in res.output and "plot:" in res.output
    comparisons = pd.read_json(out / "comparisons.jsonl", lines=True)
    assert {"a", "b", "p", "p_ab", "p_ba"} <= set(comparisons.columns) and len(comparisons) == 60

    # the default --dispersion auto: the library's solve with dispersion="auto" on the comparisons written
    import pycomp

    sol = pycomp.solve(comparisons["i"], comparisons["j"], comparisons["p"], n_items=20, return_se=True,
                       dispersion="auto")
    np.testing.assert_allclose(scores["score"], sol.scores, atol=1e-9)
    np.testing.assert_allclose(scores["se"], sol.se, rtol=1e-6)
    assert run["solver"]["dispersion"] == pytest.approx(sol.dispersion) and run["solver"]["dispersion_df"] == 41
    assert f"dispersion phi = {sol.dispersion:.3g} (estimated on 41 residual degrees of freedom)" in res.output

    again = _invoke("rank", "example:reviews", "--out", out, "--no-progress")
    assert again.exit_code == 0, again.output
    assert "judged 0 prompts" in again.output and "120 reused" in again.output
    assert json.loads((out / "metrics.json").read_text())["spearman"] == pytest.approx(metrics["spearman"])

    plain = _invoke("rank", "example:reviews", "--out", out, "--no-progress", "--dispersion", "none")
    assert plain.exit_code == 0 and "judged 0 prompts" in plain.output and "dispersion phi" not in plain.output
    want = pycomp.solve(comparisons["i"], comparisons["j"], comparisons["p"], n_items=20, return_se=True)
    np.testing.assert_allclose(pd.read_csv(out / "scores.csv")["score"], want.scores, atol=1e-9)
    assert json.loads((out / "run.json").read_text())["solver"]["dispersion"] is None
    bad = _invoke("rank", "example:reviews", "--out", out, "--no-progress", "--dispersion", "often")
    assert bad.exit_code == 2 and "--dispersion 'often' must be auto, pearson, none or a number > 0" in bad.output


def _mini_summeval(n_articles=3, n_summaries=3, chars=150):
    frame = pd.read_json(SUMMEVAL, lines=True, dtype={"article_id": str, "summary_id": str})
    keep = frame["article_id"].drop_duplicates().iloc[:n_articles]
    frame = frame[frame["article_id"].isin(keep)].groupby("article_id").head(n_summaries).copy()
    frame["article"] = frame["article"].str.slice(0, chars)  # short prompts keep the test fast on 2 cores
    frame["summary"] = frame["summary"].str.slice(0, chars)
    frame["split"] = np.where(np.arange(len(frame)) % 2 == 0, "train", "test")
    return frame.reset_index(drop=True)


def _summeval_config(**kw):
    return RankConfig(text_field="summary", context_field="article", context_noun="Article",
                      group_field="article_id", id_field="summary_id", gold_field="coherence", noun="summary",
                      attribute="more coherent", progress=False, **kw)


SUMMEVAL_ARGS = ("--text-field", "summary", "--context-field", "article", "--context-noun", "Article",
                 "--group-field", "article_id", "--id-field", "summary_id", "--gold-field", "coherence",
                 "--noun", "summary", "--attribute", "more coherent", "--no-progress")


def test_excerpt_ids_repeat_across_articles():
    frame = pd.read_json(SUMMEVAL, lines=True, dtype={"article_id": str, "summary_id": str})
    assert len(frame) == 12 and frame.groupby("article_id")["summary_id"].apply(list).tolist() == [
        ["S0", "S1", "S2", "S3"]] * 3
    assert frame["article"].str.len().max() <= 600
    assert {"coherence", "fluency", "consistency", "relevance"} <= set(frame.columns)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_items_file_formats(tmp_path, suffix):
    frame = _mini_summeval()
    path = tmp_path / f"items{suffix}"
    {".jsonl": lambda: frame.to_json(path, orient="records", lines=True),
     ".csv": lambda: frame.to_csv(path, index=False),
     ".parquet": lambda: frame.to_parquet(path, index=False)}[suffix]()
    items, _ = load_items(str(path), _summeval_config())
    assert items.ids == frame["summary_id"].tolist() == ["S0", "S1", "S2"] * 3
    assert items.texts == frame["summary"].tolist() and items.contexts == frame["article"].tolist()
    assert np.allclose(items.gold, frame["coherence"]) and list(items.groups) == frame["article_id"].tolist()
    assert items.name(4) == "id 'S1' in group 'A1'"


def test_ids_need_only_be_unique_within_their_group(tmp_path):
    frame = pd.read_json(SUMMEVAL, lines=True, dtype={"article_id": str, "summary_id": str})
    path = _items_file(tmp_path, frame, "items.jsonl")
    # Without a group the repeated ids are refused, with a hint.
    res = _invoke("rank", path, "--text-field", "summary", "--id-field", "summary_id", "--out", tmp_path / "o")
    assert res.exit_code == 2, res.output
    assert ("error: duplicate id 'S0' in field 'summary_id': rows 1 and 5; ids must be unique "
            "(or unique within groups: give --group-field)") in res.output
    # Within a group (or within a shared context) an id must still be unique; both rows are named.
    frame.loc[2, "summary_id"] = "S0"
    path = _items_file(tmp_path, frame, "dup.jsonl")
    res = _invoke("rank", path, *SUMMEVAL_ARGS, "--out", tmp_path / "o")
    assert res.exit_code == 2, res.output
    assert ("error: duplicate id 'S0' in field 'summary_id' within group 'A0' (field 'article_id'): rows 1 and 3; "
            "ids must be unique within a group") in res.output
    res = _invoke("rank", path, "--text-field", "summary", "--id-field", "summary_id", "--context-field", "article",
                  "--out", tmp_path / "o")
    assert res.exit_code == 2, res.output
    assert ("error: duplicate id 'S0' in field 'summary_id' among items with the same context (field 'article'): "
            "rows 1 and 3") in res.output


def _spearman_per_group(scores, frame, score_column="score"):
    """Mean over articles of scipy's Spearman, items joined by (article_id, summary_id)."""
    from scipy import stats

    joined = frame.merge(scores.rename(columns={"group": "article_id", "id": "summary_id"}),
                         on=["article_id", "summary_id"], validate="one_to_one")
    assert len(joined) == len(frame)
    return float(np.mean([stats.spearmanr(g[score_column], g["coherence"])[0]
                          for _, g in joined.groupby("article_id")]))


@pytest.mark.llm
def test_groups_and_context_end_to_end(shared_model, tmp_path):
    frame = _mini_summeval()
    path = _items_file(tmp_path, frame, "items.jsonl")
    out = tmp_path / "out"
    res = _invoke("rank", path, *SUMMEVAL_ARGS, "--all-pairs", "--fit-on", "split=train", "--no-plots",
                  "--out", out)
    assert res.exit_code == 0, res.output
    key = ["group", "id"]
    items = pd.read_json(out / "items.jsonl", lines=True, dtype={"group": str, "id": str})
    assert items[key].values.tolist() == frame[["article_id", "summary_id"]].values.tolist()
    pairs = pd.read_csv(out / "pairs.csv", dtype=str)
    assert list(pairs.columns[:3]) == ["a", "b", "group"] and len(pairs) == 3 * 3
    for _, row in pairs.iterrows():  # (group, a) and (group, b) name the items at indices i and j
        assert items.loc[int(row["i"]), key].tolist() == [row["group"], row["a"]]
        assert items.loc[int(row["j"]), key].tolist() == [row["group"], row["b"]]
    comparisons = pd.read_json(out / "comparisons.jsonl", lines=True, dtype={"group": str, "a": str, "b": str})
    assert comparisons[["a", "b", "group"]].values.tolist() == pairs[["a", "b", "group"]].values.tolist()
    lines = (out / "judgements.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["prompt"]["context_noun"] == "Article"
    records = [json.loads(x) for x in lines[1:]]
    assert len(records) == 2 * 9
    assert {(r["group"], r["a"], r["b"]) for r in records} == (
        {(g, a, b) for a, b, g in pairs[["a", "b", "group"]].values} | {(g, b, a) for a, b, g in pairs[["a", "b", "group"]].values})
    scores = pd.read_csv(out / "scores.csv", dtype={"group": str, "id": str})
    assert list(scores.columns) == ["id", "group", "score", "se"]
    assert sorted(map(tuple, scores[key].values)) == sorted(map(tuple, frame[["article_id", "summary_id"]].values))

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_groups"] == 3 and metrics["rmse_affine"]["evaluated_on"] == "held-out"
    assert metrics["fit_on"] == "split=train" and set(metrics["spearman_per_group"]) == {"A0", "A1", "A2"}
    assert metrics["spearman_per_group_mean"] == pytest.approx(_spearman_per_group(scores, frame), abs=1e-12)

    # evaluate matches scores to items by (group, id), in any row order.
    shuffled = tmp_path / "shuffled.csv"
    scores.sample(frac=1.0, random_state=0).to_csv(shuffled, index=False)
    res = _invoke("evaluate", shuffled, "--items", path, "--id-field", "summary_id", "--group-field", "article_id",
                  "--gold-field", "coherence", "--comparisons", out / "comparisons.jsonl", "--out", tmp_path / "m.json")
    assert res.exit_code == 0, res.output
    again = json.loads((tmp_path / "m.json").read_text())
    for name in ("spearman", "spearman_per_group_mean", "pairwise_accuracy", "judge_accuracy"):
        assert again[name] == pytest.approx(metrics[name], abs=1e-12), name

    # Rerunning resumes from the judgements file: nothing is judged again.
    res = _invoke("rank", path, *SUMMEVAL_ARGS, "--all-pairs", "--fit-on", "split=train", "--no-plots",
                  "--out", out)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "run.json").read_text())["judge"]["summary"]
    assert summary["n_judged"] == 0 and summary["n_reused"] == 18


@pytest.mark.llm
def test_judge_explicit_pairs_with_groups(shared_model, tmp_path):
    frame = _mini_summeval()
    path = _items_file(tmp_path, frame, "items.jsonl")
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"a": ["S0", "S2"], "b": ["S1", "S0"], "group": ["A1", "A2"]}).to_csv(pairs, index=False)
    out = tmp_path / "c.jsonl"
    args = ("judge", path, *[a for a in SUMMEVAL_ARGS if a not in ("--gold-field", "coherence")])
    res = _invoke(*args, "--pairs", pairs, "--out", out)
    assert res.exit_code == 0, res.output
    comp = pd.read_json(out, lines=True, dtype={"a": str, "b": str, "group": str})
    assert comp[["a", "b", "group"]].values.tolist() == [["S0", "S1", "A1"], ["S2", "S0", "A2"]]
    assert comp[["i", "j"]].values.tolist() == [[3, 4], [8, 6]]
    records = [json.loads(x) for x in (tmp_path / "c.judgements.jsonl").read_text().splitlines()[1:]]
    assert sorted((r["group"], r["a"], r["b"]) for r in records) == [
        ("A1", "S0", "S1"), ("A1", "S1", "S0"), ("A2", "S0", "S2"), ("A2", "S2", "S0")]


@pytest.mark.parametrize("table,message", [
    ({"a": ["S0"], "b": ["S1"]},
     "row 1: a = 'S0' is ambiguous: items of 3 groups ('A0', 'A1', 'A2') have this id; add a column 'group' "
     "holding each row's group (the items' field 'article_id')"),
    ({"a": ["S0"], "b": ["S7"], "group": ["A1"]}, "row 1: b = 'S7' is not an item id in group 'A1'"),
    ({"a": ["S0"], "b": ["S0"], "group": ["A1"]}, "row 1: a and b are the same item (id 'S0' in group 'A1')"),
])
def test_explicit_pairs_need_their_group(tmp_path, table, message):
    path = _items_file(tmp_path, _mini_summeval(), "items.jsonl")
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame(table).to_csv(pairs, index=False)
    res = _invoke("judge", path, "--text-field", "summary", "--group-field", "article_id", "--id-field", "summary_id",
                  "--pairs", pairs, "--out", tmp_path / "c.jsonl")
    assert res.exit_code == 2, res.output
    assert f"error: {pairs}: {message}" in " ".join(res.output.split()), res.output


def test_evaluate_matches_scores_by_group_and_id(tmp_path):
    from scipy import stats

    frame = pd.read_json(SUMMEVAL, lines=True, dtype={"article_id": str, "summary_id": str})
    path = _items_file(tmp_path, frame, "items.jsonl")
    rng = np.random.default_rng(0)
    scores = pd.DataFrame({"id": frame["summary_id"], "group": frame["article_id"],
                           "score": frame["coherence"] + rng.normal(0, 0.7, len(frame))}).iloc[rng.permutation(12)]
    scores_path = tmp_path / "scores.csv"
    scores.to_csv(scores_path, index=False)
    args = ("evaluate", scores_path, "--items", path, "--id-field", "summary_id", "--gold-field", "coherence")
    res = _invoke(*args, "--group-field", "article_id", "--out", tmp_path / "m.json")
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    joined = frame.merge(scores.rename(columns={"group": "article_id", "id": "summary_id"}),
                         on=["article_id", "summary_id"])
    assert metrics["spearman"] == pytest.approx(stats.spearmanr(joined["score"], joined["coherence"])[0], abs=1e-12)
    assert metrics["spearman_per_group_mean"] == pytest.approx(_spearman_per_group(scores, frame), abs=1e-12)
    # Without the group column the ids are ambiguous; without --group-field the items' ids are not unique.
    scores.drop(columns="group").to_csv(scores_path, index=False)
    res = _invoke(*args, "--group-field", "article_id")
    assert res.exit_code == 2 and "row 1: id = 'S1' is ambiguous" in res.output, res.output
    res = _invoke(*args)
    assert res.exit_code == 2 and "duplicate id 'S0' in field 'summary_id': rows 1 and 5" in res.output, res.output


@pytest.mark.llm
def test_judge_then_solve_then_evaluate(shared_model, small_items, tmp_path):
    items = tmp_path / "items.csv"
    small_items.to_csv(items, index=False)
    comparisons = tmp_path / "comparisons.jsonl"
    res = _invoke("judge", items, "--id-field", "id", "--noun", "review", "--attribute", "more positive",
                  "--per-item", "2", "--design", "greedy", "--no-progress", "--out", comparisons)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "comparisons.judgements.jsonl").is_file() and "position bias" in res.output
    table = pd.read_json(comparisons, lines=True)
    assert len(table) == 5 and table["p"].between(0, 1).all()

    scores = tmp_path / "scores.csv"
    res = _invoke("solve", comparisons, "--out", scores)  # the core's command reads a, b, p
    assert res.exit_code == 0, res.output

    metrics = tmp_path / "metrics.json"
    res = _invoke("evaluate", scores, "--items", items, "--id-field", "id", "--gold-field", "stars",
                  "--comparisons", comparisons, "--out", metrics, "--plots", tmp_path / "plots")
    assert res.exit_code == 0, res.output
    out = json.loads(metrics.read_text())
    assert -1 <= out["spearman"] <= 1 and "judge_accuracy" in out and "rmse_affine" in out
    assert (tmp_path / "plots" / "predicted_vs_gold.png").is_file()

    # The judge stage on explicit pairs.
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"a": ["a", "b"], "b": ["e", "zz"]}).to_csv(pairs, index=False)
    res = _invoke("judge", items, "--id-field", "id", "--pairs", pairs, "--out", tmp_path / "c2.jsonl")
    assert res.exit_code == 2 and "row 2: b = 'zz' is not an item id" in res.output


# ---- bad input: clear errors naming the field and the row (no model needed) ----

def _items_file(tmp_path, frame, name="items.csv"):
    path = tmp_path / name
    if path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("frame,args,message", [
    (pd.DataFrame({"body": ["x", "y"]}), [], r"field 'text' \(--text-field\) is not in .*its fields are: body"),
    (pd.DataFrame({"n": [1, 2, 3], "text": ["x", " ", "z"]}), [], "row 2: text field 'text' is empty"),
    (pd.DataFrame({"id": ["a", "b", "a"], "text": ["x", "y", "z"]}), ["--id-field", "id"],
     "duplicate id 'a' in field 'id': rows 1 and 3"),
    (pd.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "score": [1.0, "high"]}),
     ["--id-field", "id", "--gold-field", "score"], r"row 2 \(id 'b'\): gold field 'score' = 'high' is not a number"),
    (pd.DataFrame({"text": ["x", "y"], "score": [1.0, None]}), ["--gold-field", "score"],
     "row 2: gold field 'score' = .* is not a number"),
    (pd.DataFrame({"text": ["x", "y"], "g": ["u", None]}), ["--group-field", "g"], "row 2: group field 'g' is empty"),
    (pd.DataFrame({"text": ["x", "y"]}), ["--per-item", "2", "--all-pairs"], "either --per-item K or --all-pairs"),
    (pd.DataFrame({"text": ["x", "y"]}), ["--design", "best"], "--design 'best' is not one of"),
    (pd.DataFrame({"text": ["x", "y"]}), ["--labels", "A"], "two labels separated by a comma"),
    (pd.DataFrame({"text": ["x", "y"], "g": ["u", "v"]}), ["--group-field", "g"], "the plan has no pairs"),
])
def test_bad_items_fail_with_a_clear_message(tmp_path, frame, args, message):
    path = _items_file(tmp_path, frame)
    res = _invoke("rank", path, "--out", tmp_path / "out", *args)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ")
    import re

    assert re.search(message, res.output), res.output


def test_empty_and_missing_item_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = _invoke("rank", empty, "--out", tmp_path / "out")
    assert res.exit_code == 2 and "error:" in res.output
    res = _invoke("rank", tmp_path / "nope.csv", "--out", tmp_path / "out")
    assert res.exit_code == 2 and "does not exist" in res.output
    res = _invoke("rank", "example:nothing", "--out", tmp_path / "out")
    assert res.exit_code == 2 and "unknown example 'nothing'" in res.output


@pytest.mark.parametrize("args,n_pairs", [((), 20 * 6 // 2), (("--per-item", "4"), 20 * 4 // 2),
                                           (("--per-item", "3"), 20 * 3 // 2)])
def test_example_settings_never_replace_given_options(tmp_path, args, n_pairs):
    """example:reviews plans 6 comparisons per item, unless --per-item is given (even as the default, 4)."""
    out = tmp_path / "out"
    # The plan is written before the judge is loaded, so an unknown model stops the run just after it.
    res = _invoke("rank", "example:reviews", *args, "--model", "no-such-model", "--out", out)
    assert res.exit_code == 2 and "unknown model 'no-such-model'" in res.output, res.output
    assert len(pd.read_csv(out / "pairs.csv")) == n_pairs


def test_example_settings_fill_only_what_is_not_given():
    config = RankConfig(per_item=4, noun="text", attribute="better")
    _, config = load_items("example:reviews", config, given={"per_item", "noun"})
    assert (config.per_item, config.noun, config.attribute, config.gold_field) == (4, "text", "more positive", "stars")
    _, config = load_items("example:reviews", RankConfig(per_item=3))  # library use: non-defaults count as given
    assert (config.per_item, config.noun) == (3, "review")


def test_template_without_placeholders_is_refused(tmp_path):
    path = _items_file(tmp_path, pd.DataFrame({"text": ["x", "y", "z"]}))
    template = tmp_path / "t.txt"
    template.write_text("Which one is better, {item_a} or the other?")
    res = _invoke("rank", path, "--template", template, "--out", tmp_path / "out")
    assert res.exit_code == 2 and "no placeholder for item_b" in res.output


def test_unknown_model_is_refused(tmp_path):
    path = _items_file(tmp_path, pd.DataFrame({"text": ["x", "y", "z"]}))
    res = _invoke("rank", path, "--model", "no-such-model", "--out", tmp_path / "out")
    assert res.exit_code == 2 and "unknown model 'no-such-model'" in res.output


def test_context_must_be_shared_within_a_group(tmp_path):
    frame = pd.DataFrame({"text": ["x", "y"], "doc": ["one", "two"], "g": ["u", "u"]})
    path = _items_file(tmp_path, frame)
    res = _invoke("rank", path, "--context-field", "doc", "--group-field", "g", "--out", tmp_path / "out")
    assert res.exit_code == 2 and "row 2: context differs from that of row 1 in the same group 'u'" in res.output


def test_evaluate_reports_missing_scores(tmp_path):
    items = _items_file(tmp_path, pd.DataFrame({"id": ["a", "b", "c"], "text": ["x", "y", "z"], "s": [1, 2, 3]}))
    scores = tmp_path / "scores.csv"
    pd.DataFrame({"id": ["a", "b"], "score": [0.1, 0.2]}).to_csv(scores, index=False)
    res = _invoke("evaluate", scores, "--items", items, "--id-field", "id", "--gold-field", "s")
    assert res.exit_code == 2 and "no score for item id 'c'" in res.output


def test_old_import_paths_still_work():
    """Names that moved out of pycomp.pipeline and pycomp.cli_app stay importable from there."""
    import pycomp.cli_app
    from pycomp import config, evaluate, items, pipeline, plan_stage, report, solve_stage

    assert pycomp.cli_app.app is app
    moved = {config: ("PathLike", "RankConfig"),
             items: ("ItemsError", "Items", "validate_items", "load_items", "find_items", "pairs_from_table",
                     "scores_from_table"),
             plan_stage: ("plan_for",), solve_stage: ("solve_scores",),
             evaluate: ("parse_fit_on", "subsample_per_item", "spearman_curve", "evaluate_scores"),
             report: ("write_json", "versions")}
    for module, names in moved.items():
        for name in names:
            assert getattr(pipeline, name) is getattr(module, name), name


def test_judge_refuses_an_output_format_before_judging(tmp_path):
    """The comparisons file's format is checked before the judge is loaded (once, it was after judging)."""
    out = tmp_path / "comparisons.xlsx"
    res = _invoke("judge", "example:reviews", "--model", "no-such-model", "--out", out)
    assert res.exit_code == 2, res.output
    assert res.output.startswith(f"error: '{out}': unknown table format '.xlsx'"), res.output
    assert list(tmp_path.iterdir()) == []


def test_rank_into_a_file_is_a_clean_error(tmp_path):
    out = tmp_path / "taken"
    out.write_text("")
    res = _invoke("rank", "example:reviews", "--model", "no-such-model", "--out", out)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and f"File exists: '{out}'" in res.output, res.output


@pytest.mark.parametrize("option", ["--out", "--plots"])
def test_evaluate_write_failure_is_a_clean_error(tmp_path, option):
    items = _items_file(tmp_path, pd.DataFrame({"id": ["a", "b", "c"], "text": ["x", "y", "z"], "s": [1, 2, 3]}))
    scores = tmp_path / "scores.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "score": [0.1, 0.3, 0.2]}).to_csv(scores, index=False)
    blocker = tmp_path / "blocker"
    blocker.write_text("")  # a file where the output's folder should be
    target = blocker / ("m.json" if option == "--out" else "plots")
    res = _invoke("evaluate", scores, "--items", items, "--id-field", "id", "--gold-field", "s", option, target)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and str(blocker) in res.output, res.output


def test_command_names_of_the_old_rank_module_still_import():
    from pycomp.commands import evaluate as evaluate_module
    from pycomp.commands import judge as judge_module
    from pycomp.commands import models as models_module
    from pycomp.commands import rank as rank_module

    assert rank_module.judge_command is judge_module.judge_command
    assert rank_module.evaluate_command is evaluate_module.evaluate_command
    assert rank_module.models_app is models_module.app and rank_module.models_fetch is models_module.models_fetch
    assert rank_module.app is app
    with pytest.raises(AttributeError):
        rank_module.no_such_name  # noqa: B018
