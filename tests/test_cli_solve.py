"""``pycomp solve``: files in, scores out, checked against the reference."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import pycomp
import pycomp.exceptions
import reference as R
from pycomp.cli import app

ATOL = 1e-6
runner = CliRunner()


def _data():
    rng = np.random.default_rng(0)
    c = R.random_comparisons(rng, 7, 25, "soft", weighted=True)
    names = np.array(["g", "c", "a", "f", "b", "e", "d"])
    df = pd.DataFrame({"a": names[c.i], "b": names[c.j], "p": c.p, "weight": c.w})
    return c, names, df


def _write(df, path):
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    elif path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        raise ValueError(path)


def _read(path):
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix == ".jsonl":
        return pd.read_json(path, orient="records", lines=True)
    return pd.read_parquet(path)


def _by_id(out, names, values):
    """Reference values (indexed like names) in the order of out['id']."""
    pos = {n: k for k, n in enumerate(names)}
    return np.array([values[pos[str(x)]] for x in out["id"]])


def _invoke(args):
    result = runner.invoke(app, args)
    text = result.output + (str(result.exception) if result.exception else "")
    return result, text


@pytest.mark.parametrize("src", [".csv", ".jsonl", ".parquet"])
@pytest.mark.parametrize("dst", [".csv", ".jsonl", ".parquet"])
def test_solve_formats_round_trip(tmp_path, src, dst):
    c, names, df = _data()
    inp, out = tmp_path / f"cmp{src}", tmp_path / f"scores{dst}"
    _write(df, inp)
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--weight", "weight",
                            "--alpha", "0.5", "--tol", "1e-10", "--se", "--dispersion", "none"])
    assert result.exit_code == 0, text
    got = _read(out)
    assert list(got.columns) == ["id", "score", "se"]
    assert sorted(map(str, got["id"])) == sorted(names)
    ref = R.bt_solve(c, 0.5)
    R.assert_close(got["score"].to_numpy(float), _by_id(got, names, ref), atol=ATOL)
    R.assert_close(got["se"].to_numpy(float), _by_id(got, names, R.bt_se(ref, c, 0.5)), atol=0, rtol=1e-5)


def test_solve_column_options_and_gaussian(tmp_path):
    c, names, df = _data()
    df = df.rename(columns={"a": "left", "b": "right", "p": "prob", "weight": "wt"})
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.csv"
    _write(df, inp)
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--a", "left", "--b", "right",
                            "--p", "prob", "--weight", "wt", "--model", "gaussian", "--alpha", "0",
                            "--tol", "1e-10", "--no-se"])
    assert result.exit_code == 0, text
    got = _read(out)
    assert list(got.columns) == ["id", "score", "se"]
    ref = R.gaussian_solve(c, 0.0)
    R.assert_close(got["score"].to_numpy(float), _by_id(got, names, ref), atol=ATOL)


def test_solve_without_p_column_or_flag_is_an_error_listing_columns(tmp_path):
    """Before the fix, a table without 'p' was silently solved as "the first item won"."""
    df = pd.DataFrame({"item_a": ["x", "y", "z"], "item_b": ["y", "z", "x"], "prob": [0.2, 0.7, 0.4]})
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.csv"
    _write(df, inp)
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--a", "item_a", "--b", "item_b"])
    assert result.exit_code == 2, text
    assert "the table has no column 'p'" in text, text
    assert "columns are ['item_a', 'item_b', 'prob']" in text, text
    assert "--p COLUMN" in text and "--hard" in text, text
    assert not out.exists()


def test_hard_and_p_together_is_an_error(tmp_path):
    _, _, df = _data()
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.csv"
    _write(df, inp)
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--hard", "--p", "p"])
    assert result.exit_code == 2, text
    assert "--hard and --p p contradict each other" in text, text
    assert not out.exists()


def test_hard_means_the_first_item_won(tmp_path):
    df = pd.DataFrame({"a": ["x", "y", "z", "x", "y"], "b": ["y", "z", "x", "z", "x"]})
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.csv"
    _write(df, inp)
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--hard", "--alpha", "1", "--tol", "1e-10",
                            "--dispersion", "none"])
    assert result.exit_code == 0, text
    got = _read(out)
    i, j, ids = pycomp.encode_ids(df["a"], df["b"])
    direct = pycomp.solve(i, j, None, n_items=len(ids), alpha=1.0, tol=1e-10, return_se=True)
    assert list(got["id"]) == list(ids)
    R.assert_close(got["score"].to_numpy(float), direct.scores, atol=1e-12)
    R.assert_close(got["se"].to_numpy(float), direct.se, atol=1e-12)
    ref = R.bt_solve(R.Comparisons.make([0, 1, 2, 0, 1], [1, 2, 0, 2, 0]), 1.0)
    R.assert_close(got["score"].to_numpy(float), _by_id(got, ["x", "y", "z"], ref), atol=ATOL)
    best = got.sort_values("score", ascending=False)
    top = ", ".join(f"{i} ({s:.3f})" for i, s in zip(best["id"], best["score"]))
    assert result.output.strip().endswith(f"top: {top}"), result.output


def test_hard_ignores_a_p_column(tmp_path):
    c, names, df = _data()
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.csv"
    _write(df, inp)
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--hard", "--alpha", "0.5", "--tol", "1e-10",
                            "--dispersion", "none"])
    assert result.exit_code == 0, text
    got = _read(out)
    ref = R.bt_solve(R.Comparisons(c.i, c.j, np.ones_like(c.p), np.ones_like(c.w), c.n_items), 0.5)
    R.assert_close(got["score"].to_numpy(float), _by_id(got, names, ref), atol=ATOL)


def test_p_option_picks_another_column_over_p(tmp_path):
    c, names, df = _data()
    df["p2"] = 1.0 - df["p"]  # the same comparisons with the outcomes reversed
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.csv"
    _write(df, inp)
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--p", "p2", "--alpha", "0.5", "--tol", "1e-10",
                            "--dispersion", "none"])
    assert result.exit_code == 0, text
    got = _read(out)
    ref = R.bt_solve(R.Comparisons(c.i, c.j, 1.0 - c.p, np.ones_like(c.w), c.n_items), 0.5)
    R.assert_close(got["score"].to_numpy(float), _by_id(got, names, ref), atol=ATOL)


@pytest.mark.parametrize("method", ["newton", "mm", "newman"])
def test_solve_methods(tmp_path, method):
    c, names, df = _data()
    inp, out = tmp_path / "cmp.jsonl", tmp_path / "scores.jsonl"
    _write(df.drop(columns="weight"), inp)
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--method", method, "--alpha", "0",
                            "--tol", "1e-10"])
    assert result.exit_code == 0, text
    got = _read(out)
    ref = R.bt_solve(R.Comparisons(c.i, c.j, c.p, np.ones_like(c.w), c.n_items), 0.0)
    R.assert_close(got["score"].to_numpy(float), _by_id(got, names, ref), atol=ATOL)


@pytest.mark.parametrize("opt, col", [("--p", "prob"), ("--weight", "wt"), ("--a", "first"), ("--b", "second")])
def test_missing_column_names_it(tmp_path, opt, col):
    _, _, df = _data()
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.csv"
    _write(df, inp)
    result, text = _invoke(["solve", str(inp), "--out", str(out), opt, col])
    assert result.exit_code != 0
    assert col in text, text
    assert not out.exists()


def test_missing_default_b_column(tmp_path):
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.csv"
    pd.DataFrame({"a": ["x", "y"], "c": ["y", "x"]}).to_csv(inp, index=False)
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--hard"])
    assert result.exit_code == 2, text
    assert "column 'b' (for b) is not in the table; columns are ['a', 'c']" in text, text


def test_bad_file_and_extension(tmp_path):
    result, _ = _invoke(["solve", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "s.csv")])
    assert result.exit_code != 0
    bad = tmp_path / "cmp.txt"
    bad.write_text("a,b\nx,y\n")
    result, _ = _invoke(["solve", str(bad), "--out", str(tmp_path / "s.csv")])
    assert result.exit_code != 0


def test_bad_probability_row_is_reported(tmp_path):
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.csv"
    pd.DataFrame({"a": ["x", "y", "z"], "b": ["y", "z", "x"], "p": [0.4, 0.6, 1.7]}).to_csv(inp, index=False)
    result, text = _invoke(["solve", str(inp), "--out", str(out)])
    assert result.exit_code == 2, text
    assert "row 3: column 'p' = 1.7 is not a probability in [0, 1]" in text, text


# Each bad table is written as JSONL (one line per data row, no header) so that row N is line N.
BAD_ROWS = [
    ({"item_b": None}, "row 2: column 'item_b' has no id: every comparison needs two item ids"),
    ({"item_a": "  "}, "row 2: column 'item_a' has no id"),
    ({"item_a": "z", "item_b": "z"}, "row 2: item_a = item_b = 'z' compares an item with itself"),
    ({"prob": "high"}, "row 2: column 'prob' = 'high' is not a number"),
    ({"prob": None}, "row 2: column 'prob' is empty (NaN); give the probability that the first item wins, in [0, 1]"),
    ({"prob": 1.2}, "row 2: column 'prob' = 1.2 is not a probability in [0, 1]"),
    ({"prob": -0.25}, "row 2: column 'prob' = -0.25 is not a probability in [0, 1]"),
    ({"wt": -1.5}, "row 2: column 'wt' = -1.5 is not a weight: it must be finite and >= 0"),
    ({"wt": None}, "row 2: column 'wt' is empty (NaN); give a weight >= 0"),
    ({"wt": "heavy"}, "row 2: column 'wt' = 'heavy' is not a number"),
]


@pytest.mark.parametrize("change, message", BAD_ROWS)
def test_bad_row_names_column_id_and_one_based_row(tmp_path, change, message):
    rows = [{"item_a": "x", "item_b": "y", "prob": 0.3, "wt": 1.0},
            {"item_a": "y", "item_b": "z", "prob": 0.6, "wt": 2.0},
            {"item_a": "z", "item_b": "x", "prob": 0.5, "wt": 1.0}]
    rows[1].update(change)
    inp, out = tmp_path / "cmp.jsonl", tmp_path / "scores.csv"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--a", "item_a", "--b", "item_b",
                            "--p", "prob", "--weight", "wt"])
    assert result.exit_code == 2, text
    assert message in text, text
    assert not out.exists()


def test_missing_id_row_counts_data_rows_of_a_csv(tmp_path):
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.csv"
    inp.write_text("a,b\nx,y\ny,z\nz,\n")  # the 3rd data row (line 4) has no second id
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--hard"])
    assert result.exit_code == 2, text
    assert "row 3: column 'b' has no id" in text, text


@pytest.mark.parametrize("name", ["scores.xlsx", "scores"])
def test_output_format_checked_before_reading(tmp_path, name):
    out = tmp_path / name
    # the input does not even exist: the output's format is refused first
    result, text = _invoke(["solve", str(tmp_path / "absent.csv"), "--out", str(out), "--hard"])
    assert result.exit_code == 2, text
    assert f"--out '{out}'" in text, text
    assert "use one of .csv, .tsv, .jsonl (or .json, .ndjson), .parquet (or .pq)" in text, text
    assert not out.exists()


def test_xlsx_refused_without_solving(tmp_path):
    _, _, df = _data()
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.xlsx"
    _write(df, inp)
    result, text = _invoke(["solve", str(inp), "--out", str(out)])
    assert result.exit_code == 2, text
    assert "unknown table format '.xlsx'" in text, text
    assert "items from" not in result.output
    assert list(tmp_path.iterdir()) == [inp]


def test_output_under_a_file_is_a_clean_error(tmp_path):
    _, _, df = _data()
    inp = tmp_path / "cmp.csv"
    _write(df, inp)
    out = inp / "scores.csv"
    result, text = _invoke(["solve", str(inp), "--out", str(out)])
    assert result.exit_code == 2, text
    assert f"'{inp}' is a file, not a folder" in text, text


def test_parquet_without_engine_is_a_clean_error(tmp_path, monkeypatch):
    _, _, df = _data()
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.parquet"
    _write(df, inp)
    # As if no Parquet engine were installed; checked before the input is read (pandas,
    # having found pyarrow when it was imported, would otherwise fail to read the CSV).
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    result, text = _invoke(["solve", str(inp), "--out", str(out)])
    assert result.exit_code == 2, text
    assert f"writing '{out}' needs pyarrow: pip install 'pycomp[parquet]'" in text, text
    assert not out.exists()


def test_write_failure_after_solving_is_a_clean_error(tmp_path):
    """Ids of mixed types solve fine but Parquet cannot hold them in one column."""
    inp, out = tmp_path / "cmp.jsonl", tmp_path / "scores.parquet"
    inp.write_text('{"a": 1, "b": "x", "p": 0.3}\n{"a": "x", "b": 2, "p": 0.6}\n')
    result, text = _invoke(["solve", str(inp), "--out", str(out)])
    assert result.exit_code == 2, text
    assert f"could not write '{out}' as parquet" in text, text
    assert list(tmp_path.iterdir()) == [inp]  # no scores file, no temporary file left behind


def test_no_maximum_likelihood_names_ids(tmp_path):
    # 'top' beat every one of g1..g8, which only beat each other (a cycle): with alpha = 0
    # the group g1..g8 never beat anything outside it, so its scores diverge to -inf.
    group = [f"g{k}" for k in range(1, 9)]
    rows = [{"a": group[k], "b": group[(k + 1) % 8], "p": 0.7} for k in range(8)]
    rows += [{"a": "top", "b": g, "p": 1.0} for g in group]
    inp, out = tmp_path / "cmp.jsonl", tmp_path / "scores.csv"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--alpha", "0"])
    assert result.exit_code == 2, text
    assert ("the 8 items 'g1', 'g2', 'g3', 'g4', 'g5' and 3 more never beat any item outside this group, "
            "so their scores diverge to -inf") in text, text
    assert "--alpha 1" in text, text
    assert not out.exists()
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--alpha", "1"])
    assert result.exit_code == 0, text


def test_no_maximum_likelihood_single_item_never_lost(tmp_path):
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.csv"
    # 'b1', 'b2' never beat 'a_champ' either, but the first group found starts from the first id
    pd.DataFrame({"a": ["a_champ", "a_champ", "b1"], "b": ["b1", "b2", "b2"]}).to_csv(inp, index=False)
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--hard", "--alpha", "0"])
    assert result.exit_code == 2, text
    assert "the item 'a_champ' never lost to any other item it was compared with" in text, text
    assert "+inf" in text and "--alpha 1" in text, text


def test_module_entry_point_subprocess(tmp_path):
    c, names, df = _data()
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.jsonl"
    _write(df, inp)
    proc = subprocess.run(
        [sys.executable, "-m", "pycomp.cli", "solve", str(inp), "--out", str(out), "--weight", "weight",
         "--alpha", "0.5", "--tol", "1e-10", "--dispersion", "none"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    got = pd.DataFrame(rows)
    ref = R.bt_solve(c, 0.5)
    R.assert_close(got["score"].to_numpy(float), _by_id(got, names, ref), atol=ATOL)
    # and a failing run exits non-zero with the column in its message
    proc = subprocess.run(
        [sys.executable, "-m", "pycomp.cli", "solve", str(inp), "--out", str(out), "--p", "missing_col"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "missing_col" in proc.stdout + proc.stderr


def test_ids_repeating_across_groups_are_distinct_items(tmp_path):
    """`pycomp judge` output with per-group ids (S0 in every article): items are (group, id) pairs."""
    inp = tmp_path / "comparisons.csv"
    frame = pd.DataFrame({"a": ["S0", "S1", "S0", "S1", "S0", "S1"], "b": ["S1", "S2", "S2", "S0", "S2", "S2"],
                          "group": ["A0", "A0", "A0", "A1", "A1", "A1"], "p": [0.9, 0.8, 0.7, 0.6, 0.2, 0.4]})
    frame.to_csv(inp, index=False)
    out = tmp_path / "scores.csv"
    res = runner.invoke(app, ["solve", str(inp), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "items are (group, id) pairs: column 'group'" in res.output
    got = pd.read_csv(out)
    assert list(got.columns) == ["group", "id", "score", "se"]
    assert list(zip(got["group"], got["id"])) == [("A0", "S0"), ("A0", "S1"), ("A0", "S2"),
                                                  ("A1", "S0"), ("A1", "S1"), ("A1", "S2")]
    # independent reference: the two groups solved apart on their own indices
    index = {("A0", "S0"): 0, ("A0", "S1"): 1, ("A0", "S2"): 2, ("A1", "S0"): 3, ("A1", "S1"): 4, ("A1", "S2"): 5}
    i = np.array([index[(g, a)] for g, a in zip(frame["group"], frame["a"])])
    j = np.array([index[(g, b)] for g, b in zip(frame["group"], frame["b"])])
    # the command's default --dispersion auto is the library's dispersion="auto"
    ref = pycomp.solve(i, j, frame["p"].to_numpy(), n_items=6, return_se=True, dispersion="auto")
    assert ref.dispersion is not None and ref.dispersion_df == 2
    np.testing.assert_allclose(got["score"], ref.scores, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got["se"], ref.se, rtol=1e-9)

    merged = tmp_path / "merged.csv"
    res = runner.invoke(app, ["solve", str(inp), "--out", str(merged), "--group", ""])
    assert res.exit_code == 0, res.output
    assert list(pd.read_csv(merged).columns) == ["id", "score", "se"] and len(pd.read_csv(merged)) == 3


def test_self_comparison_within_a_group_names_the_group(tmp_path):
    inp = tmp_path / "c.csv"
    pd.DataFrame({"a": ["S0", "S1"], "b": ["S1", "S1"], "g": ["A0", "A1"], "p": [0.6, 0.5]}).to_csv(inp, index=False)
    res = runner.invoke(app, ["solve", str(inp), "--out", str(tmp_path / "s.csv"), "--group", "g"])
    assert res.exit_code == 2
    assert "row 2: a = b = 'S1' (group 'A1') compares an item with itself" in res.output
    res = runner.invoke(app, ["solve", str(inp), "--out", str(tmp_path / "s.csv"), "--group", "nope"])
    assert res.exit_code == 2 and "column 'nope' (--group) is not in the table" in res.output


def test_an_empty_group_column_is_not_a_grouping(tmp_path):
    """`pycomp rank` writes an empty 'group' column when items have no groups: items stay plain ids."""
    inp = tmp_path / "comparisons.csv"
    pd.DataFrame({"a": ["x", "y"], "b": ["y", "z"], "group": [None, None], "p": [0.7, 0.6]}).to_csv(inp, index=False)
    out = tmp_path / "scores.csv"
    res = runner.invoke(app, ["solve", str(inp), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "(group, id) pairs" not in res.output
    assert list(pd.read_csv(out).columns) == ["id", "score", "se"]
