"""Standard errors of PoE-BT: exact dense (pseudo-)inverse and the local approximation."""
import warnings

import numpy as np
import pytest

import pycomp
import reference as R

SE_RTOL = 1e-6  # exact se vs dense reference at the same scores
LOCAL_FORMULA_RTOL = 1e-6  # se_method="local" vs the spec's formula at the same scores
SOLVE_TOL = 1e-10

# Accuracy of the local approximation against the exact dense values, measured with
# tests/reference.py on the graphs below (rel. error |local - exact| / exact; the
# local values are biased low by about the median error):
#   n=2500, avg degree 8,  soft, alpha=1.0: median 0.0074, max 0.0153
#   n=2500, avg degree 8,  soft, alpha=0.0: median 0.0158, max 0.0391
#   n=2500, avg degree 20, soft, alpha=0.1: median 0.0270, max 0.0586
#   n=3000, avg degree 20, hard, alpha=1.0: median 0.0038, max 0.0070
# The bounds asserted are these with about 1.5-2x margin.
LOCAL_CASES = [
    # (n, avg degree, kind, alpha, seed, median bound, max bound)
    pytest.param(2500, 8, "soft", 1.0, 0, 0.012, 0.025, id="n2500-deg8-alpha1"),
    pytest.param(2500, 8, "soft", 0.0, 0, 0.025, 0.06, id="n2500-deg8-alpha0"),
    pytest.param(2500, 20, "soft", 0.1, 1, 0.04, 0.09, id="n2500-deg20-alpha0.1"),
]


def _graph(n, deg, kind, seed):
    rng = np.random.default_rng(seed)
    return R.random_comparisons(rng, n, n * deg // 2 - (n - 1), kind, weighted=True, spread=1.0)


def test_reference_pseudo_inverse_shortcut_matches_pinv():
    rng = np.random.default_rng(0)
    a = R.random_comparisons(rng, 6, 12, "soft")
    b = R.random_comparisons(rng, 5, 9, "soft")
    c = R.Comparisons(np.concatenate([a.i, b.i + 6]), np.concatenate([a.j, b.j + 6]),
                      np.concatenate([a.p, b.p]), np.concatenate([a.w, b.w]), 13)
    s = R.bt_solve(c, 0.0)
    H = R.bt_hessian(s, c, 0.0)
    R.assert_close(R._inverse(H, R.components(c)), np.linalg.pinv(H, hermitian=True), atol=1e-10)


def test_reference_local_formula_is_exact_on_a_single_pair():
    # two items: H = [[h + a, -h], [-h, h + a]]; local var = 1/(H00 - h^2/H11) is exact
    c = R.Comparisons.make([0], [1], [0.8])
    s = R.bt_solve(c, 0.5)
    H = R.bt_hessian(s, c, 0.5)
    R.assert_close(R.bt_se_local(s, c, 0.5), np.sqrt(np.diag(np.linalg.inv(H))), atol=0, rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 2.0])
@pytest.mark.parametrize("kind", ["soft", "mixed", "ties"])
def test_exact_se_matches_dense_inverse(kind, alpha, solve_clean):
    c = R.random_comparisons(np.random.default_rng(1), 40, 150, kind, weighted=True)
    if alpha == 0 and not R.bt_mle_exists(c):
        pytest.skip("no MLE")
    sol = solve_clean(**c.kwargs(), alpha=alpha, return_se=True, tol=SOLVE_TOL)
    assert sol.se_method == "exact"
    assert sol.se.dtype == np.float64 and sol.se.shape == (c.n_items,)
    R.assert_close(sol.se, R.bt_se(sol.scores, c, alpha), atol=0, rtol=SE_RTOL, what="exact se")
    # and at the reference optimum
    R.assert_close(sol.se, R.bt_se(R.bt_solve(c, alpha), c, alpha), atol=0, rtol=1e-5)


def test_exact_se_per_component_with_alpha_zero():
    rng = np.random.default_rng(2)
    a = R.random_comparisons(rng, 10, 30, "soft")
    b = R.random_comparisons(rng, 7, 25, "soft", weighted=True)
    c = R.Comparisons(np.concatenate([a.i, b.i + 10]), np.concatenate([a.j, b.j + 10]),
                      np.concatenate([a.p, b.p]), np.concatenate([a.w, b.w]), 17)
    with pytest.warns(pycomp.GraphWarning):
        sol = pycomp.solve(**c.kwargs(), alpha=0.0, return_se=True, tol=SOLVE_TOL)
    ref = R.bt_se(sol.scores, c, 0.0)
    R.assert_close(sol.se, ref, atol=0, rtol=SE_RTOL)
    # sanity of the oracle: pseudo-inverse per component, not of the whole graph glued
    H = R.bt_hessian(sol.scores, c, 0.0)
    R.assert_close(ref**2, np.diag(np.linalg.pinv(H, hermitian=True)), atol=1e-12, rtol=1e-8)


def test_exact_se_with_alpha_gives_isolated_items_the_prior_variance(solve_clean):
    c = R.Comparisons.make([0, 1, 2], [1, 2, 0], [0.7, 0.6, 0.2], n_items=5)
    sol = solve_clean(**c.kwargs(), alpha=0.8, return_se=True, tol=SOLVE_TOL)
    # isolated item at s = 0: H_ii = 2 alpha sig(0)(1 - sig(0)) = alpha / 2
    R.assert_close(sol.se[3:], np.full(2, np.sqrt(2 / 0.8)), atol=0, rtol=1e-12)
    R.assert_close(sol.se, R.bt_se(sol.scores, c, 0.8), atol=0, rtol=SE_RTOL)


def test_no_se_unless_asked(solve_clean):
    c = R.random_comparisons(np.random.default_rng(3), 10, 20, "soft")
    sol = solve_clean(**c.kwargs())
    assert sol.se is None and sol.se_method is None


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_local_se_follows_the_formula_on_a_small_graph(alpha, solve_clean):
    c = R.random_comparisons(np.random.default_rng(4), 50, 200, "soft", weighted=True)
    # duplicate a few pairs so "total curvature between i and j" matters
    c = R.Comparisons(np.concatenate([c.i, c.i[:20]]), np.concatenate([c.j, c.j[:20]]),
                      np.concatenate([c.p, c.p[:20]]), np.concatenate([c.w, c.w[:20]]), 50)
    sol = solve_clean(**c.kwargs(), alpha=alpha, return_se=True, se_method="local", tol=SOLVE_TOL)
    assert sol.se_method == "local"
    R.assert_close(sol.se, R.bt_se_local(sol.scores, c, alpha), atol=0, rtol=LOCAL_FORMULA_RTOL)


def test_se_method_exact_can_be_forced(solve_clean):
    c = R.random_comparisons(np.random.default_rng(5), 30, 60, "soft")
    sol = solve_clean(**c.kwargs(), return_se=True, se_method="exact", tol=SOLVE_TOL)
    assert sol.se_method == "exact"
    R.assert_close(sol.se, R.bt_se(sol.scores, c, 1.0), atol=0, rtol=SE_RTOL)


def test_bad_se_method():
    c = R.random_comparisons(np.random.default_rng(6), 5, 5, "soft")
    with pytest.raises(ValueError, match="se_method"):
        pycomp.solve(**c.kwargs(), return_se=True, se_method="bogus")


@pytest.mark.parametrize("n, deg, kind, alpha, seed, med_bound, max_bound", LOCAL_CASES)
def test_local_se_accuracy_on_large_graphs(n, deg, kind, alpha, seed, med_bound, max_bound, solve_clean):
    c = _graph(n, deg, kind, seed)
    if alpha == 0:
        assert R.bt_mle_exists(c)
    sol = solve_clean(**c.kwargs(), alpha=alpha, return_se=True, tol=SOLVE_TOL)
    # a single component above 2000 items: auto picks the local approximation
    assert sol.n_components == 1
    assert sol.se_method == "local"
    assert np.max(np.abs(R.bt_gradient(sol.scores, c, alpha))) <= 1e-9
    R.assert_close(sol.se, R.bt_se_local(sol.scores, c, alpha), atol=0, rtol=LOCAL_FORMULA_RTOL,
                   what="local se vs formula")
    exact = R.bt_se(sol.scores, c, alpha)
    rel = np.abs(sol.se - exact) / exact
    assert np.median(rel) < med_bound, (np.median(rel), rel.max())
    assert rel.max() < max_bound, (np.median(rel), rel.max())


def test_auto_se_is_exact_for_components_up_to_2000_items():
    # two components of 1500 items (3000 in all): each small enough for the dense path
    rng = np.random.default_rng(7)
    a = R.random_comparisons(rng, 1500, 3000, "soft")
    b = R.random_comparisons(rng, 1500, 3000, "soft")
    c = R.Comparisons(np.concatenate([a.i, b.i + 1500]), np.concatenate([a.j, b.j + 1500]),
                      np.concatenate([a.p, b.p]), np.concatenate([a.w, b.w]), 3000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", pycomp.ConvergenceWarning)
        sol = pycomp.solve(**c.kwargs(), alpha=1.0, return_se=True, tol=SOLVE_TOL)
    assert sol.n_components == 2
    assert sol.se_method == "exact"
    # check one component against the dense inverse (1500 x 1500)
    sub = R.Comparisons(a.i, a.j, a.p, a.w, 1500)
    R.assert_close(sol.se[:1500], R.bt_se(sol.scores[:1500], sub, 1.0), atol=0, rtol=SE_RTOL)


def test_se_with_a_prior_is_relative_to_the_mean_not_the_prior_level():
    # 5 items, 100 hard outcomes per pair: the data pin every difference to about 0.1,
    # while only the prior pins the common level (sd about 0.6 at alpha = 1). The standard
    # errors describe the scores against each other, so they must agree with the sandwich
    # (equal in expectation for Bernoulli outcomes) and with the spread of the scores
    # around their mean over independent data sets, not carry the level's prior variance.
    rng = np.random.default_rng(0)
    truth = np.array([0.4, 0.1, 0.0, -0.2, -0.3])
    a, b = np.triu_indices(5, 1)
    i, j = np.repeat(a, 100), np.repeat(b, 100)

    def draw():
        return (rng.random(i.size) < 1 / (1 + np.exp(-(truth[i] - truth[j])))).astype(float)

    sol = pycomp.solve(i, j, draw(), alpha=1.0, return_se=True, tol=SOLVE_TOL)
    sand = pycomp.solve(i, j, draw(), alpha=1.0, return_se=True, se_method="sandwich", tol=SOLVE_TOL)
    R.assert_close(sol.se, sand.se, atol=0, rtol=0.15, what="hessian vs sandwich")
    spread = np.std([(s := pycomp.solve(i, j, draw(), alpha=1.0).scores) - s.mean() for _ in range(300)], axis=0)
    R.assert_close(sol.se, spread, atol=0, rtol=0.15, what="hessian vs Monte Carlo spread")


@pytest.mark.parametrize("model", ["bt", "gaussian"])
def test_se_is_continuous_as_the_prior_vanishes(model):
    # alpha -> 0 tends to the alpha = 0 (centred pseudo-inverse) standard errors, per component
    rng = np.random.default_rng(9)
    a = R.random_comparisons(rng, 12, 60, "soft")
    b = R.random_comparisons(rng, 6, 30, "soft")
    c = R.Comparisons(np.concatenate([a.i, b.i + 12]), np.concatenate([a.j, b.j + 12]),
                      np.concatenate([a.p, b.p]), np.concatenate([a.w, b.w]), 18)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pycomp.GraphWarning)
        zero = pycomp.solve(**c.kwargs(), model=model, alpha=0.0, return_se=True, tol=SOLVE_TOL)
        tiny = pycomp.solve(**c.kwargs(), model=model, alpha=1e-7, return_se=True, tol=SOLVE_TOL)
    R.assert_close(tiny.se, zero.se, atol=0, rtol=1e-4, what="alpha 1e-7 vs alpha 0")
