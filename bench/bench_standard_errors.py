"""Accuracy of the local standard-error approximation against the exact values.

On random comparison graphs of one connected component (the same generator as
``tests/test_standard_errors.py``), the PoE-BT scores are solved, the standard
errors computed with ``se_method="local"`` and compared with the exact
``sqrt(diag(H^-1))`` from the dense NumPy reference (``tests/reference.py``).

    python bench/bench_standard_errors.py --out bench/results

writes ``standard_errors.json`` and ``standard_errors.md`` in ``--out``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import reference as R  # noqa: E402
from utils import git_commit, markdown_table  # noqa: E402

import pycomp  # noqa: E402

# (items, average degree, outcome kind, alpha, seed): the first three are the cases
# tests/test_standard_errors.py bounds; the hard-outcome case is measured here only.
CASES = [
    (2500, 8, "soft", 1.0, 0),
    (2500, 8, "soft", 0.0, 0),
    (2500, 20, "soft", 0.1, 1),
    (3000, 20, "hard", 1.0, 0),
]


def measure(n: int, deg: int, kind: str, alpha: float, seed: int) -> dict:
    """Relative error of the local standard errors on one graph."""
    rng = np.random.default_rng(seed)
    c = R.random_comparisons(rng, n, n * deg // 2 - (n - 1), kind, weighted=True, spread=1.0)
    sol = pycomp.solve(**c.kwargs(), alpha=alpha, return_se=True, se_method="local", tol=1e-10)
    exact = R.bt_se(sol.scores, c, alpha)
    rel = (sol.se - exact) / exact
    return {"n_items": n, "avg_degree": deg, "outcome": kind, "alpha": alpha, "seed": seed,
            "n_components": sol.n_components, "median_rel_error": float(np.median(np.abs(rel))),
            "max_rel_error": float(np.max(np.abs(rel))), "mean_signed_rel_error": float(np.mean(rel))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="results folder")
    args = parser.parse_args()
    rows = [measure(*case) for case in CASES]
    for row in rows:
        for key in ("median_rel_error", "max_rel_error", "mean_signed_rel_error"):
            row[key + "_fmt"] = f"{row[key]:+.4f}" if key.startswith("mean") else f"{row[key]:.4f}"
    commit = git_commit()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "standard_errors.json").write_text(json.dumps({"commit": commit, "rows": rows}, indent=2) + "\n")
    table = markdown_table(rows, [("items", "n_items"), ("average degree", "avg_degree"), ("outcomes", "outcome"),
                                  ("alpha", "alpha"), ("median relative error", "median_rel_error_fmt"),
                                  ("max relative error", "max_rel_error_fmt"),
                                  ("mean signed relative error", "mean_signed_rel_error_fmt")])
    text = (f"# Local standard errors vs exact (`python bench/bench_standard_errors.py`, commit `{commit}`)\n\n"
            + table + "\n")
    (args.out / "standard_errors.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
