"""The sandwich standard error against a NumPy finite sum over the comparisons."""
import warnings

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


# ---------------------------------------------------------------------------
# Above SANDWICH_LIMIT: dense per small component, the local approximation for large ones
# (pycomp.standard_errors.local_sandwich_variance). The references below are dense
# numpy sandwiches built from the rows (per-row squared gradients, the reference Hessian),
# not from the collapsed moments the package uses.

from pycomp import standard_errors as SE  # noqa: E402
from pycomp._native import core  # noqa: E402


def _regular_rows(rng, n, deg, kind, offset=0):
    """A near-regular graph (union of deg/2 random cycles), each pair judged 1-3 times."""
    edges = np.concatenate([np.stack([perm, np.roll(perm, 1)], 1)
                            for perm in (rng.permutation(n) for _ in range(deg // 2))])
    return _judge(rng, edges + offset, n + offset, kind)


def _er_rows(rng, n, deg, kind):
    """Uniformly random pairs (Poisson degrees) plus a spanning path, each judged 1-3 times."""
    m = n * deg // 2 - (n - 1)
    i = rng.integers(0, n, m)
    j = rng.integers(0, n - 1, m)
    j = j + (j >= i)
    perm = rng.permutation(n)
    edges = np.concatenate([np.stack([perm[:-1], perm[1:]], 1), np.stack([i, j], 1)])
    return _judge(rng, edges, n, kind)


def _judge(rng, edges, n, kind):
    e = np.repeat(edges, rng.integers(1, 4, edges.shape[0]), axis=0)
    flip = rng.random(e.shape[0]) < 0.5
    e[flip] = e[flip][:, ::-1]
    i, j = e[:, 0], e[:, 1]
    truth = rng.normal(0, 1, n)
    q = 1 / (1 + np.exp(-(truth[i] - truth[j])))
    p = rng.beta(3 * q + 0.3, 3 * (1 - q) + 0.3) if kind == "soft" else (rng.random(q.shape) < q).astype(float)
    return i, j, p, rng.uniform(0.2, 2.0, i.shape[0])


def _dense_sandwich_fast(s, i, j, p, w, alpha, labels=None):
    """diag(X M X) for PoE-BT, M the Laplacian of per-row squared gradients, X = inv(H) or the
    per-component centred pseudo-inverse when alpha = 0."""
    n = s.shape[0]
    H = R.bt_hessian(s, R.Comparisons.make(i, j, p, w, n_items=n), alpha)
    r2 = (w * (1 / (1 + np.exp(-(s[i] - s[j]))) - p)) ** 2
    M = np.zeros((n, n))
    np.add.at(M, (i, i), r2)
    np.add.at(M, (j, j), r2)
    np.add.at(M, (i, j), -r2)
    np.add.at(M, (j, i), -r2)
    if alpha == 0:
        labels = np.zeros(n, int) if labels is None else labels
        same = labels[:, None] == labels[None, :]
        H = H + same / np.bincount(labels)[labels][:, None]
    X = np.linalg.inv(H)
    return np.sqrt(np.maximum(np.einsum("ij,ij->i", X @ M, X), 0.0))


@pytest.fixture
def local_limits(monkeypatch):
    """Send every problem above 50 items and every component above 50 items to the local path."""
    monkeypatch.setattr(SE, "SANDWICH_LIMIT", 50)
    monkeypatch.setattr(SE, "EXACT_MAX_COMPONENT", 50)


# Accuracy of the local sandwich against the dense one, measured at n = 2000 with the
# generators above (/tmp/measure_sw.py; rel. error |local - dense| / dense, per item), beside
# the local Hessian's on the same graph (its error against the exact sqrt(diag(H^-1))):
#                                      local sandwich       local Hessian
#   near-regular deg 8,  soft, alpha 1: med 0.0025 max 0.022  med 0.0101 max 0.018
#   near-regular deg 8,  soft, alpha 0: med 0.0144 max 0.059  med 0.0159 max 0.030
#   random       deg 8,  bern, alpha 1: med 0.0021 max 0.037  med 0.0100 max 0.025
#   random       deg 20, soft, alpha 0: med 0.0012 max 0.006  med 0.0015 max 0.004
#   near-regular deg 4,  soft, alpha 1: med 0.0157 max 0.103  med 0.0201 max 0.054
# The medians are the local Hessian's or better; the largest errors are at items whose own
# residuals are tiny, where the neighbours' share (truncated after one step) dominates. The
# bounds asserted are these with about 1.5-2x margin.
LOCAL_SANDWICH_CASES = [
    # (graph, n, deg, kind, alpha, seed, median bound, max bound)
    pytest.param(_regular_rows, 2000, 8, "soft", 1.0, 0, 0.005, 0.04, id="regular-deg8-soft-alpha1"),
    pytest.param(_regular_rows, 2000, 8, "soft", 0.0, 0, 0.025, 0.10, id="regular-deg8-soft-alpha0"),
    pytest.param(_er_rows, 2000, 8, "bern", 1.0, 0, 0.004, 0.06, id="random-deg8-bernoulli-alpha1"),
    pytest.param(_er_rows, 2000, 20, "soft", 0.0, 0, 0.0025, 0.012, id="random-deg20-soft-alpha0"),
    pytest.param(_regular_rows, 2000, 4, "soft", 1.0, 0, 0.025, 0.16, id="regular-deg4-soft-alpha1"),
]


@pytest.mark.parametrize("graph, n, deg, kind, alpha, seed, med_bound, max_bound", LOCAL_SANDWICH_CASES)
def test_local_sandwich_accuracy(graph, n, deg, kind, alpha, seed, med_bound, max_bound, local_limits):
    i, j, p, w = graph(np.random.default_rng(seed), n, deg, kind)
    sol = pycomp.solve(i, j, p, weights=w, n_items=n, alpha=alpha, return_se=True, se_method="sandwich", tol=1e-10)
    assert sol.n_components == 1 and sol.se_method == "sandwich-local"
    exact = _dense_sandwich_fast(sol.scores, i, j, p, w, alpha)
    rel = np.abs(sol.se - exact) / exact
    assert np.median(rel) < med_bound, (np.median(rel), rel.max())
    assert rel.max() < max_bound, (np.median(rel), rel.max())


def test_local_sandwich_is_the_local_hessian_when_the_meat_is_the_hessian():
    # M = H (no prior): v_a^2 (D_a - 2 sum C^2/D_b + sum C^2 D_b/D_b^2) = v_a, the core's formula.
    rng = np.random.default_rng(11)
    i, j, _, _ = _er_rows(rng, 300, 6, "soft")
    curv = rng.uniform(0.05, 1.0, i.shape[0])
    prior = np.zeros(300)
    var = SE.local_sandwich_variance(i, j, curv, prior, curv, 300)
    ref = core().local_variance(i.astype(np.int32), j.astype(np.int32), curv, prior, 300, 1)
    np.testing.assert_allclose(var, ref, rtol=1e-10)


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_local_sandwich_is_exact_at_the_centre_of_a_star(alpha):
    # The centre's column of H^-1 is exactly x_b = C_ab / H_bb x_a: the approximation is exact there.
    rng = np.random.default_rng(12)
    n = 60
    i, j, p, w = _judge(rng, np.stack([np.zeros(n - 1, int), np.arange(1, n)], 1), n, "soft")
    sol = pycomp.solve(i, j, p, weights=w, alpha=alpha, tol=1e-12)
    col = pycomp.collapse.collapse(i, j, p, weights=w, n_items=n, units=False)
    se, used = SE.sandwich_standard_errors(col, sol.scores, sol.labels, model="bt", alpha=alpha, beta=0.5,
                                           method="local")
    assert used == "sandwich-local"
    exact = _dense_sandwich_fast(sol.scores, i, j, p, w, alpha)
    np.testing.assert_allclose(se[0], exact[0], rtol=1e-9)
    # the leaves are approximate: their neighbours' (the other leaves') share is dropped
    np.testing.assert_allclose(se[1:], exact[1:], rtol=0.1)


def test_local_sandwich_is_exact_on_pairs_with_a_prior():
    # Components of two items: each item is the centre of its star.
    rng = np.random.default_rng(13)
    edges = np.stack([np.arange(0, 40, 2), np.arange(1, 40, 2)], 1)
    i, j, p, w = _judge(rng, edges, 40, "soft")
    sol = pycomp.solve(i, j, p, weights=w, alpha=0.7, tol=1e-12)
    col = pycomp.collapse.collapse(i, j, p, weights=w, n_items=40, units=False)
    se, _ = SE.sandwich_standard_errors(col, sol.scores, sol.labels, model="bt", alpha=0.7, beta=0.5, method="local")
    np.testing.assert_allclose(se, _dense_sandwich_fast(sol.scores, i, j, p, w, 0.7), rtol=1e-9)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_above_the_limit_small_components_dense_large_ones_local(alpha, local_limits):
    # One component of 600 items (local), one of 30 (dense), two isolated items.
    rng = np.random.default_rng(14)
    a = _regular_rows(rng, 600, 8, "soft")
    b = _regular_rows(rng, 30, 6, "soft", offset=600)
    i, j, p, w = (np.concatenate([x, y]) for x, y in zip(a, b))
    n = 632
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pycomp.GraphWarning)
        sol = pycomp.solve(i, j, p, weights=w, n_items=n, alpha=alpha, return_se=True, se_method="sandwich",
                           tol=1e-10)
    assert sol.n_components == 4
    assert sol.se_method == "sandwich+sandwich-local"
    ref = _dense_sandwich_fast(sol.scores, i, j, p, w, alpha, labels=sol.labels)
    # the small component: the dense per-component sandwich, exact
    np.testing.assert_allclose(sol.se[600:630], ref[600:630], rtol=1e-8)
    # the large one: local, as accurate as measured on the large graphs
    rel = np.abs(sol.se[:600] - ref[:600]) / ref[:600]
    assert np.median(rel) < 0.025 and rel.max() < 0.10, (np.median(rel), rel.max())
    # isolated items: NaN without a prior (no information), 0 with one (no data in the meat), as the dense path
    if alpha == 0:
        assert np.all(np.isnan(sol.se[630:]))
    else:
        np.testing.assert_allclose(sol.se[630:], ref[630:], atol=1e-12)
    assert np.all(np.isfinite(sol.se[:630]))


def test_above_the_limit_all_small_components_match_the_whole_dense_sandwich(monkeypatch):
    rng = np.random.default_rng(15)
    parts = [_regular_rows(rng, 40, 4, "soft", offset=40 * k) for k in range(3)]
    i, j, p, w = (np.concatenate(x) for x in zip(*parts))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pycomp.GraphWarning)
        dense = pycomp.solve(i, j, p, weights=w, alpha=0.0, return_se=True, se_method="sandwich", tol=1e-11)
        monkeypatch.setattr(SE, "SANDWICH_LIMIT", 50)
        per_comp = pycomp.solve(i, j, p, weights=w, alpha=0.0, return_se=True, se_method="sandwich", tol=1e-11)
    assert dense.se_method == per_comp.se_method == "sandwich"
    np.testing.assert_allclose(per_comp.se, dense.se, rtol=1e-9)


def test_sandwich_picks_the_local_path_above_4000_items():
    assert SE.SANDWICH_LIMIT == 4000
    i, j, p, w = _regular_rows(np.random.default_rng(16), 4500, 8, "soft")
    sol = pycomp.solve(i, j, p, weights=w, return_se=True, se_method="sandwich")
    assert sol.se_method == "sandwich-local"
    assert np.all(np.isfinite(sol.se)) and np.all(sol.se > 0)


def test_cluster_sandwich_is_refused_above_the_limit():
    i, j, p, w = _regular_rows(np.random.default_rng(17), 4500, 4, "soft")
    users = np.arange(i.shape[0]) % 50
    with pytest.raises(ValueError, match=r"cluster.*4000.*bootstrap=B"):
        pycomp.solve(i, j, p, weights=w, return_se=True, se_method="sandwich", cluster=users)
