"""Collapsing repeated pairs: the sums and units against NumPy, the solve against the uncollapsed solve."""
import numpy as np
import pytest

import pycomp
import reference as R
from pycomp.collapse import collapse


def _arena(rng, n, m, ties=0.1, soft=False, weighted=False):
    i = rng.integers(0, n, m)
    j = rng.integers(0, n - 1, m)
    j[j >= i] += 1
    truth = rng.normal(size=n)
    q = 1.0 / (1.0 + np.exp(-(truth[i] - truth[j])))
    p = rng.beta(4 * q + 0.5, 4 * (1 - q) + 0.5) if soft else (rng.random(m) < q).astype(float)
    if not soft:
        p[rng.random(m) < ties] = 0.5
    w = rng.uniform(0.0, 2.0, m) if weighted else None
    return i, j, p, w


def _oriented(i, j, p):
    a, b = np.minimum(i, j), np.maximum(i, j)
    return a, b, np.where(i < j, p, 1.0 - p)


@pytest.mark.parametrize("n,m", [(2, 1), (5, 301), (13, 4000)])
def test_categorical_counts_match_numpy(n, m):
    rng = np.random.default_rng(n)
    i, j, p, _ = _arena(rng, n, m)
    c = collapse(i, j, p)
    assert c.categorical and c.draws == m
    a, b, po = _oriented(i, j, p)
    keys, counts = np.unique(np.stack([a, b, (2 * po).astype(int)]), axis=1, return_counts=True)
    units = np.stack([c.a[c.unit_pair], c.b[c.unit_pair], (2 * c.unit_wins).astype(int)])
    order = np.lexsort(units[::-1])
    np.testing.assert_array_equal(units[:, order], keys)
    np.testing.assert_array_equal(c.unit_count[order], counts)
    pair_keys, inverse = np.unique(a * n + b, return_inverse=True)
    np.testing.assert_array_equal(c.a * n + c.b, pair_keys)
    np.testing.assert_allclose(c.wins, np.bincount(inverse, po), rtol=1e-12)
    np.testing.assert_allclose(c.total, np.bincount(inverse), rtol=0)
    np.testing.assert_allclose(c.q2, np.bincount(inverse, po**2), rtol=1e-12)


@pytest.mark.parametrize("units", [False, True])
def test_soft_weighted_sums_match_numpy(units):
    rng = np.random.default_rng(3)
    i, j, p, w = _arena(rng, 9, 2000, soft=True, weighted=True)
    w[::7] = 0.0
    c = collapse(i, j, p, weights=w, units=units)
    assert not c.categorical
    a, b, po = _oriented(i, j, p)
    pair_keys, inverse = np.unique(a * 9 + b, return_inverse=True)
    np.testing.assert_array_equal(c.a * 9 + c.b, pair_keys)
    for got, want in [(c.wins, w * po), (c.total, w), (c.q0, w * w), (c.q1, w * w * po), (c.q2, (w * po) ** 2)]:
        np.testing.assert_allclose(got, np.bincount(inverse, want), rtol=1e-12, atol=1e-12)
    if units:  # continuous p: every row its own unit, counted once
        assert c.draws == 2000 and c.unit_count.sum() == 2000 and c.n_units == 2000


def test_cluster_units_hold_each_clusters_pair_sums():
    rng = np.random.default_rng(4)
    i, j, p, w = _arena(rng, 6, 500, soft=True, weighted=True)
    labels = rng.choice(np.array(["u1", "u2", "u3", "u4"]), 500)
    c = collapse(i, j, p, weights=w, cluster=labels)
    assert c.draws == 4 and c.n_units == 4
    np.testing.assert_array_equal(c.unit_count, [1, 1, 1, 1])
    a, b, po = _oriented(i, j, p)
    for u, name in enumerate(["u1", "u2", "u3", "u4"]):
        e = slice(c.unit_start[u], c.unit_start[u + 1])
        rows = labels == name
        keys, inverse = np.unique(a[rows] * 6 + b[rows], return_inverse=True)
        np.testing.assert_array_equal(c.a[c.unit_pair[e]] * 6 + c.b[c.unit_pair[e]], keys)
        np.testing.assert_allclose(c.unit_wins[e], np.bincount(inverse, (w * po)[rows]), rtol=1e-12)
        np.testing.assert_allclose(c.unit_total[e], np.bincount(inverse, w[rows]), rtol=1e-12)


@pytest.mark.parametrize("kind", ["hard", "ties", "soft", "weighted"])
@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_collapsed_bt_solve_equals_uncollapsed(kind, alpha):
    rng = np.random.default_rng(5)
    i, j, p, w = _arena(rng, 11, 3001, ties=0.0 if kind == "hard" else 0.15, soft=kind in ("soft", "weighted"),
                        weighted=kind == "weighted")
    if kind == "hard":
        i, j = np.where(p == 1, i, j), np.where(p == 1, j, i)
        p = None
    full = pycomp.solve(i, j, p, weights=w, alpha=alpha, collapse=False, return_se=True, tol=1e-11)
    col = pycomp.solve(i, j, p, weights=w, alpha=alpha, collapse=True, return_se=True, tol=1e-11)
    ref = R.bt_solve(R.Comparisons.make(i, j, p, w), alpha, gtol=1e-11)
    np.testing.assert_allclose(col.scores, full.scores, atol=1e-9)
    np.testing.assert_allclose(col.scores, ref, atol=1e-9)
    np.testing.assert_allclose(col.se, full.se, rtol=1e-9)
    assert col.objective == pytest.approx(full.objective, rel=1e-12)


def test_collapsed_gaussian_solve_equals_uncollapsed():
    rng = np.random.default_rng(6)
    i, j, p, w = _arena(rng, 8, 900, soft=True, weighted=True)
    full = pycomp.solve(i, j, p, weights=w, model="gaussian", alpha=0.3, collapse=False, return_se=True, tol=1e-11)
    col = pycomp.solve(i, j, p, weights=w, model="gaussian", alpha=0.3, collapse=True, return_se=True, tol=1e-11)
    np.testing.assert_allclose(col.scores, full.scores, atol=1e-9)
    np.testing.assert_allclose(col.scores, R.gaussian_solve(R.Comparisons.make(i, j, p, w), 0.3), atol=1e-9)
    np.testing.assert_allclose(col.se, full.se, rtol=1e-9)


@pytest.mark.parametrize("p_kind", ["hard", "soft"])
def test_gaussian_with_beta_off_half_is_never_collapsed_silently(p_kind):
    # A collapsed pair keeps one orientation, which changes the Gaussian target p - beta unless beta = 1/2:
    # the automatic choice must solve the rows (5 items, 300 comparisons: 60 per possible pair).
    rng = np.random.default_rng(11)
    i, j, p, _ = _arena(rng, 5, 300, soft=p_kind == "soft")
    ref = R.gaussian_solve(R.Comparisons.make(i, j, p), 0.5, beta=0.3)
    sol = pycomp.solve(i, j, p, model="gaussian", alpha=0.5, beta=0.3, device="cpu")
    np.testing.assert_allclose(sol.scores, ref, atol=1e-9)
    for kwargs in ({"collapse": True}, {"bootstrap": 10}, {"return_se": True, "se_method": "sandwich"}):
        with pytest.raises(ValueError, match="need beta = 0.5 with model='gaussian'"):
            pycomp.solve(i, j, p, model="gaussian", alpha=0.5, beta=0.3, **kwargs)


def test_overflowing_weight_sums_solve_the_rows():
    # 30 comparisons of 3 items would be collapsed; their weight sums overflow, so the rows are solved and the
    # overflow is reported as on any other input (not converged, with a warning), never NaN scores from the sums.
    i = np.array([0, 1, 2] * 10)
    j = np.array([1, 2, 0] * 10)
    w = np.full(30, 1e308)
    with pytest.warns(pycomp.ConvergenceWarning):
        sol = pycomp.solve(i, j, np.full(30, 0.7), weights=w, device="cpu")
    assert not sol.converged


def test_default_collapses_many_repeats_only():
    from pycomp.collapse import worth_collapsing

    assert worth_collapsing(10_000_000, 130) and not worth_collapsing(200_000, 10_000)
    assert worth_collapsing(4 * 6, 4) and not worth_collapsing(4 * 6 - 1, 4)


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match=r"i\[1\] == j\[1\]"):
        collapse([0, 2], [1, 2], [1.0, 0.5])
    with pytest.raises(ValueError, match=r"p\[0\] = 1.5"):
        collapse([0, 2], [1, 1], [1.5, 0.5])
    with pytest.raises(ValueError, match="cluster must be 1-D with one label per comparison"):
        collapse([0, 2], [1, 1], cluster=[1])
    with pytest.raises(ValueError, match="collapse=False but the bootstrap"):
        pycomp.solve([0, 2], [1, 1], bootstrap=10, collapse=False)
    with pytest.raises(ValueError, match="cluster is used by the bootstrap"):
        pycomp.solve([0, 2], [1, 1], cluster=[0, 1])
