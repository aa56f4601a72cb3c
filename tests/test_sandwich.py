"""The sandwich standard error against a NumPy finite sum over the comparisons."""
import numpy as np
import pytest

import pycomp
import reference as R


def _data(rng, n, m, weighted=True):
    i = rng.integers(0, n, m)
    j = rng.integers(0, n - 1, m)
    j[j >= i] += 1
    truth = rng.normal(size=n)
    q = 1.0 / (1.0 + np.exp(-(truth[i] - truth[j])))
    p = rng.beta(3 * q + 0.3, 3 * (1 - q) + 0.3)
    w = rng.uniform(0.2, 2.0, m) if weighted else np.ones(m)
    return i, j, p, w


def _numpy_sandwich(s, i, j, p, w, alpha, model, beta=0.5, cluster=None):
    """diag(H^-1 M H^-1), M = sum over comparisons (or clusters) of g g', from plain per-row sums."""
    n = s.shape[0]
    c = R.Comparisons.make(i, j, p, w, n_items=n)
    H = R.bt_hessian(s, c, alpha) if model == "bt" else R.gaussian_hessian(c, alpha)
    if alpha == 0:
        H = H + np.ones((n, n)) / n
    d = s[i] - s[j]
    r = w * (1 / (1 + np.exp(-d)) - p) if model == "bt" else w * (d + beta - p)
    groups = np.arange(i.shape[0]) if cluster is None else cluster
    M = np.zeros((n, n))
    for g in np.unique(groups):
        vec = np.zeros(n)
        rows = groups == g
        np.add.at(vec, i[rows], r[rows])
        np.add.at(vec, j[rows], -r[rows])
        M += np.outer(vec, vec)
    X = np.linalg.inv(H)
    return np.sqrt(np.diag(X @ M @ X))


@pytest.mark.parametrize("model,alpha", [("bt", 1.0), ("bt", 0.0), ("gaussian", 0.4), ("gaussian", 0.0)])
def test_sandwich_matches_the_finite_sum(model, alpha):
    rng = np.random.default_rng(1)
    i, j, p, w = _data(rng, 9, 700)
    sol = pycomp.solve(i, j, p, weights=w, model=model, alpha=alpha, return_se=True, se_method="sandwich", tol=1e-11)
    assert sol.se_method == "sandwich"
    np.testing.assert_allclose(sol.se, _numpy_sandwich(sol.scores, i, j, p, w, alpha, model), rtol=1e-8)


def test_cluster_sandwich_matches_the_finite_sum():
    rng = np.random.default_rng(2)
    i, j, p, w = _data(rng, 7, 500)
    users = rng.integers(0, 40, 500)
    sol = pycomp.solve(i, j, p, weights=w, alpha=0.5, return_se=True, se_method="sandwich", cluster=users)
    np.testing.assert_allclose(sol.se, _numpy_sandwich(sol.scores, i, j, p, w, 0.5, "bt", cluster=users), rtol=1e-8)


def test_sandwich_near_hessian_for_bernoulli_judgements():
    # Hard outcomes drawn from the model: the meat's expectation is the Hessian.
    rng = np.random.default_rng(3)
    n, m = 6, 60_000
    i = rng.integers(0, n, m)
    j = rng.integers(0, n - 1, m)
    j[j >= i] += 1
    truth = np.linspace(-1, 1, n)
    p = (rng.random(m) < 1 / (1 + np.exp(-(truth[i] - truth[j])))).astype(float)
    hess = pycomp.solve(i, j, p, alpha=0.0, return_se=True)
    sand = pycomp.solve(i, j, p, alpha=0.0, return_se=True, se_method="sandwich")
    np.testing.assert_allclose(sand.se, hess.se, rtol=0.05)


def test_isolated_item_without_prior_has_nan():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pycomp.exceptions.GraphWarning)
        sol = pycomp.solve([0, 1, 0], [1, 0, 1], [0.7, 0.4, 0.6], n_items=3, alpha=0.0, return_se=True,
                           se_method="sandwich")
    assert np.isnan(sol.se[2]) and np.all(np.isfinite(sol.se[:2]))
