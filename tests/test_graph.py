"""Graph structure: components, per-component centring, existence of the alpha = 0 optimum."""
import warnings

import numpy as np
import pytest

import pycomp
import reference as R

ATOL = 1e-6
TOL = 1e-10
METHODS = ["newton", "mm", "newman"]


def _no_mle_shapes():
    """Graphs whose alpha = 0 optimum does not exist (an item wins or loses everything, ...)."""
    rng = np.random.default_rng(0)
    base = R.random_comparisons(rng, 12, 40, "soft")
    # item 0 wins every comparison it takes part in
    p_win = np.where(base.i == 0, 1.0, np.where(base.j == 0, 0.0, base.p))
    # item 5 loses every comparison it takes part in
    p_lose = np.where(base.i == 5, 0.0, np.where(base.j == 5, 1.0, base.p))
    idx = np.arange(8)
    shapes = {
        "winner_takes_all": R.Comparisons(base.i, base.j, p_win, base.w, 12),
        "loser_loses_all": R.Comparisons(base.i, base.j, p_lose, base.w, 12),
        "hard_chain": R.Comparisons.make(idx[:-1], idx[1:]),
        "hard_star": R.Comparisons.make(np.zeros(6, int), np.arange(1, 7)),
        "two_items_one_hard": R.Comparisons.make([0], [1]),
        "two_items_same_winner_twice": R.Comparisons.make([0, 1], [1, 0], [1.0, 0.0]),
        # two cycles joined by hard wins in one direction only
        "one_way_bridge": R.Comparisons.make([0, 1, 2, 3, 4, 5, 0], [1, 2, 0, 4, 5, 3, 3]),
        # the only loss of item 0 has zero weight: ignored
        "zero_weight_loss": R.Comparisons.make([0, 1, 2, 1], [1, 2, 1, 0], w=[1.0, 1.0, 1.0, 0.0]),
        # one solvable component and one without an optimum
        "mixed_components": R.Comparisons.make([0, 1, 2, 3], [1, 2, 0, 4], n_items=5),
    }
    return shapes


NO_MLE = _no_mle_shapes()


@pytest.mark.parametrize("name", sorted(NO_MLE))
def test_reference_agrees_there_is_no_mle(name):
    assert not R.bt_mle_exists(NO_MLE[name])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(NO_MLE))
def test_no_mle_with_alpha_zero_raises_mentioning_alpha(name, method):
    c = NO_MLE[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pycomp.GraphWarning)
        with pytest.raises(ValueError, match="alpha"):
            pycomp.solve(**c.kwargs(), alpha=0.0, method=method)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(NO_MLE))
def test_no_mle_shapes_solve_with_alpha(name, method, solve_clean):
    c = NO_MLE[name]
    alpha = 0.5
    ref = R.bt_solve(c, alpha)
    tol = max(R.fair_tol(R.bt_hessian(ref, c, alpha), ATOL, alpha), 1e-11)
    sol = solve_clean(**c.kwargs(), alpha=alpha, method=method, tol=tol, max_iter=200_000)
    assert sol.converged
    R.assert_close(sol.scores, ref, atol=ATOL)


def test_winner_takes_all_is_ranked_first_with_alpha(solve_clean):
    c = NO_MLE["winner_takes_all"]
    sol = solve_clean(**c.kwargs(), alpha=0.5)
    assert np.argmax(sol.scores) == 0


def test_gaussian_never_needs_alpha():
    for name, c in NO_MLE.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pycomp.GraphWarning)
            sol = pycomp.solve(**c.kwargs(), model="gaussian", alpha=0.0, tol=TOL)
        R.assert_close(sol.scores, R.gaussian_solve(c, 0.0), atol=ATOL, what=name)


# --------------------------------------------------------------------------- #
# components
# --------------------------------------------------------------------------- #
def _three_blocks():
    rng = np.random.default_rng(1)
    parts, off = [], 0
    for n in (5, 7, 3):
        c = R.random_comparisons(rng, n, 3 * n, "soft")
        parts.append((c.i + off, c.j + off, c.p))
        off += n
    i, j, p = (np.concatenate(x) for x in zip(*parts))
    return R.Comparisons.make(i, j, p, n_items=off + 2)  # plus two isolated items


@pytest.mark.parametrize("method", METHODS)
def test_disconnected_alpha_zero_warns_and_centres_each_component(method):
    c = _three_blocks()
    with pytest.warns(pycomp.GraphWarning):
        sol = pycomp.solve(**c.kwargs(), alpha=0.0, method=method, tol=TOL)
    labels = R.components(c)
    assert sol.n_components == 5 == np.unique(labels).size
    assert R.same_partition(sol.labels, labels)
    assert np.asarray(sol.labels).shape == (c.n_items,)
    assert np.issubdtype(np.asarray(sol.labels).dtype, np.integer)
    for lab in np.unique(labels):
        assert abs(sol.scores[labels == lab].mean()) < 1e-12
    assert np.all(sol.scores[-2:] == 0.0)
    R.assert_close(sol.scores, R.bt_solve(c, 0.0), atol=ATOL)
    # each block solved alone gives the same scores
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        if idx.size < 2:
            continue
        keep = np.isin(c.i, idx)
        remap = np.full(c.n_items, -1)
        remap[idx] = np.arange(idx.size)
        alone = pycomp.solve(remap[c.i[keep]], remap[c.j[keep]], c.p[keep], alpha=0.0, tol=TOL)
        R.assert_close(sol.scores[idx], alone.scores, atol=ATOL)


def test_disconnected_with_alpha_is_solved_jointly():
    c = _three_blocks()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pycomp.GraphWarning)  # may or may not warn with alpha > 0
        sol = pycomp.solve(**c.kwargs(), alpha=0.3, tol=TOL)
    R.assert_close(sol.scores, R.bt_solve(c, 0.3), atol=ATOL)
    assert sol.n_components == 5
    assert R.same_partition(sol.labels, R.components(c))


def test_zero_weight_bridge_does_not_connect():
    c1 = R.Comparisons.make([0, 1, 2, 3, 4, 5], [1, 2, 0, 4, 5, 3], [0.8, 0.6, 0.7, 0.3, 0.9, 0.4])
    i = np.append(c1.i, 2)
    j = np.append(c1.j, 3)
    p = np.append(c1.p, 0.9)
    w = np.append(c1.w, 0.0)  # the only link between {0,1,2} and {3,4,5}
    with pytest.warns(pycomp.GraphWarning):
        sol = pycomp.solve(i, j, p, weights=w, alpha=0.0, tol=TOL)
    assert sol.n_components == 2
    assert R.same_partition(sol.labels, [0, 0, 0, 1, 1, 1])
    R.assert_close(sol.scores, R.bt_solve(c1, 0.0), atol=ATOL)
    # with weight the bridge connects: no warning, one component
    w[-1] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", pycomp.GraphWarning)
        sol = pycomp.solve(i, j, p, weights=w, alpha=0.0, tol=TOL)
    assert sol.n_components == 1


def test_connected_alpha_zero_does_not_warn(solve_clean):
    c = R.Comparisons.make([0, 1, 2], [1, 2, 0], [0.9, 0.8, 0.3])
    sol = solve_clean(**c.kwargs(), alpha=0.0, tol=TOL)
    assert sol.n_components == 1
    R.assert_close(sol.scores, R.bt_solve(c, 0.0), atol=ATOL)


@pytest.mark.parametrize("method", METHODS)
def test_hard_cycle_with_alpha_zero_is_all_zero(method, solve_clean):
    n = 13
    idx = np.arange(n)
    sol = solve_clean(idx, (idx + 1) % n, alpha=0.0, method=method, tol=TOL, max_iter=200_000)
    R.assert_close(sol.scores, np.zeros(n), atol=ATOL)


def test_two_items_closed_form(solve_clean):
    # alpha = 0: s0 - s1 = logit(mean p), centred
    p = np.array([0.9, 0.6, 0.3])
    w = np.array([1.0, 2.0, 0.5])
    sol = solve_clean([0, 0, 1], [1, 1, 0], p, weights=w, alpha=0.0, tol=TOL)
    pbar = (w[0] * p[0] + w[1] * p[1] + w[2] * (1 - p[2])) / w.sum()
    d = np.log(pbar / (1 - pbar))
    R.assert_close(sol.scores, [d / 2, -d / 2], atol=1e-9)
