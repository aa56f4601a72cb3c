"""``pycomp solve``: files in, scores out, checked against the reference."""
import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import pycomp.cli  # noqa: F401  (registers the commands)
import reference as R
from pycomp.cli_app import app

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
                            "--alpha", "0.5", "--tol", "1e-10", "--se"])
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


def test_solve_without_p_column_means_a_won(tmp_path):
    df = pd.DataFrame({"a": ["x", "y", "z", "x", "y"], "b": ["y", "z", "x", "z", "x"]})
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.csv"
    _write(df, inp)
    result, text = _invoke(["solve", str(inp), "--out", str(out), "--alpha", "1", "--tol", "1e-10"])
    assert result.exit_code == 0, text
    got = _read(out)
    ref = R.bt_solve(R.Comparisons.make([0, 1, 2, 0, 1], [1, 2, 0, 2, 0]), 1.0)
    R.assert_close(got["score"].to_numpy(float), _by_id(got, ["x", "y", "z"], ref), atol=ATOL)


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
    result, text = _invoke(["solve", str(inp), "--out", str(out)])
    assert result.exit_code != 0
    assert re.search(r"\bb\b", text), text


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
    assert result.exit_code != 0
    assert "1.7" in text and ("[2]" in text or "row 2" in text), text


def test_module_entry_point_subprocess(tmp_path):
    c, names, df = _data()
    inp, out = tmp_path / "cmp.csv", tmp_path / "scores.jsonl"
    _write(df, inp)
    proc = subprocess.run(
        [sys.executable, "-m", "pycomp.cli", "solve", str(inp), "--out", str(out), "--weight", "weight",
         "--alpha", "0.5", "--tol", "1e-10"],
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
