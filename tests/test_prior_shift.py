"""Solution.prior_shift (how far the prior moved each score) and the PriorWarning it drives."""
import warnings

import numpy as np
import pytest

import pycomp
from reference import (Comparisons, bt_gradient, bt_hessian, gaussian_gradient, gaussian_hessian,
                       random_comparisons)


def _reference_shift(gradient, hessian, s, c, alpha):
    """-H^-1 grad R: the prior's gradient as the difference of the plain objective's gradients."""
    prior_grad = gradient(s, c, alpha) - gradient(s, c, 0.0)
    return -np.linalg.solve(hessian, prior_grad)


@pytest.mark.parametrize("n_items, m, weighted", [(7, 40, False), (23, 150, True), (2, 5, True)])
def test_bt_prior_shift_matches_the_reference(n_items, m, weighted):
    rng = np.random.default_rng(n_items)
    c = random_comparisons(rng, n_items, m, kind="mixed", weighted=weighted)
    alpha = 0.7
    sol = pycomp.solve(c.i, c.j, c.p, weights=c.w, n_items=n_items, alpha=alpha, return_se=True,
                       se_method="sandwich", tol=1e-12)
    want = _reference_shift(bt_gradient, bt_hessian(sol.scores, c, alpha), sol.scores, c, alpha)
    np.testing.assert_allclose(sol.prior_shift, want, rtol=0, atol=1e-6 * np.abs(want).max())
    moved = np.abs(sol.scores) > 1e-6
    assert np.all(np.sign(sol.prior_shift[moved]) == -np.sign(sol.scores[moved]))  # toward 0


@pytest.mark.filterwarnings("ignore::pycomp.PriorWarning")
def test_gaussian_prior_shift_matches_the_reference():
    rng = np.random.default_rng(5)
    c = random_comparisons(rng, 11, 60, kind="soft", weighted=True)
    alpha = 2.5
    sol = pycomp.solve(c.i, c.j, c.p, weights=c.w, n_items=11, model="gaussian", alpha=alpha, bootstrap=20, seed=1,
                       tol=1e-12)
    want = _reference_shift(gaussian_gradient, gaussian_hessian(c, alpha), sol.scores, c, alpha)
    np.testing.assert_allclose(sol.prior_shift, want, rtol=0, atol=1e-6 * np.abs(want).max())


@pytest.mark.filterwarnings("ignore::pycomp.PriorWarning")
def test_an_item_without_comparisons_is_not_shifted():
    c = Comparisons.make([0, 1, 0], [1, 2, 2], [0.9, 0.8, 0.7], n_items=4)
    sol = pycomp.solve(c.i, c.j, c.p, n_items=4, bootstrap=10, seed=0)
    assert sol.prior_shift[3] == 0.0 and np.all(np.isfinite(sol.prior_shift))


def test_prior_shift_only_with_a_prior_and_a_bootstrap_or_sandwich():
    c = random_comparisons(np.random.default_rng(0), 6, 30)
    assert pycomp.solve(c.i, c.j, c.p, n_items=6, alpha=0.0, bootstrap=10, seed=0).prior_shift is None
    assert pycomp.solve(c.i, c.j, c.p, n_items=6).prior_shift is None
    assert pycomp.solve(c.i, c.j, c.p, n_items=6, return_se=True).prior_shift is None  # Hessian: not needed


def _confident_sparse_judge(n=100, m=400, seed=0):
    """A confident soft judge (p ~ Beta(20 q, 20 (1 - q))), 8 comparisons per item: the prior's pull
    is as large as the sandwich and bootstrap intervals are narrow (bench/bench_coverage.py: about
    half of the 90% intervals hold the truth at alpha = 1)."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=n)
    i = rng.integers(0, n, m)
    j = (i + 1 + rng.integers(0, n - 1, m)) % n
    q = 1.0 / (1.0 + np.exp(-(truth[i] - truth[j])))
    return i, j, rng.beta(20.0 * q, 20.0 * (1.0 - q)), n


def _prior_warnings(**kwargs):
    i, j, p, n = _confident_sparse_judge()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sol = pycomp.solve(i, j, p, n_items=n, **kwargs)
    return sol, [w for w in caught if issubclass(w.category, pycomp.PriorWarning)]


@pytest.mark.parametrize("kwargs", [dict(bootstrap=30, seed=0), dict(return_se=True, se_method="sandwich")])
def test_prior_warning_for_narrow_intervals_around_shrunk_scores(kwargs):
    sol, caught = _prior_warnings(alpha=1.0, **kwargs)
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "alpha = 1" in text and "Solution.prior_shift" in text
    low, high = sol.interval(0.9)
    assert pycomp.uncertainty.coverage_under_shift(sol.prior_shift, (high - low) / 2) < 0.85


def test_coverage_under_shift_against_scipy():
    from scipy.stats import norm

    shift = np.array([0.0, 0.1, -0.5, 2.0, 0.3, 0.0])
    half = np.array([1.0, 0.2, 0.5, 0.1, 0.0, 0.0])  # the last two: no width, with and without a shift
    sigma = half[:4] / norm.ppf(0.95)
    k = np.abs(shift[:4]) / sigma
    each = norm.cdf(norm.ppf(0.95) - k) - norm.cdf(-norm.ppf(0.95) - k)
    want = (each.sum() + 0.0 + 0.9) / 6
    assert pycomp.uncertainty.coverage_under_shift(shift, half) == pytest.approx(want, abs=1e-6)


def test_no_prior_warning_for_the_hessian_or_a_weak_prior():
    _, caught = _prior_warnings(alpha=1.0, return_se=True)  # the Hessian's interval holds the prior's width
    assert caught == []
    _, caught = _prior_warnings(alpha=0.01, bootstrap=30, seed=0)
    assert caught == []


def test_command_line_prints_the_warning_as_a_warning_line(tmp_path):
    import subprocess
    import sys

    i, j, p, _ = _confident_sparse_judge()
    inp = tmp_path / "c.csv"
    inp.write_text("a,b,p\n" + "".join(f"item{a},item{b},{x!r}\n" for a, b, x in zip(i, j, p.tolist())))

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "pycomp.cli", "solve", str(inp), "--out", str(tmp_path / "s.csv"),
                               "--bootstrap", "30", "--dispersion", "none", *extra], capture_output=True, text=True,
                              timeout=120)

    proc = run()
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "prior" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: the prior (alpha = 1)"), proc.stderr
    assert "--alpha 0.01" in lines[0] and "PriorWarning" not in proc.stderr
    proc = run("--alpha", "0.01")
    assert proc.returncode == 0 and "prior" not in proc.stderr, proc.stderr
